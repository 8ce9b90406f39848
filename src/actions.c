/*
 * actions.c
 *		Running and checking a task's actions.
 *
 * taskflow._compile_actions (SQL) turns the actions array into a few
 * set-based statements taking $1 = member ids (bigint[]) and $2 = the
 * engine's instant.  Here they are checked (custom SQL must be one DML
 * statement; every statement must plan and pass permission checks as the
 * owner) and run as the chain's owner.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/regproc.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "actions.h"
#include "clock.h"
#include "privileges.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(taskflow_check_actions);

/*
 * CompileActions returns the statements of a task's actions (compiled as
 * the extension owner, which reads the definitions they refer to).
 */
static List *
CompileActions(const char *task_name, const char *actions)
{
	Oid			types[2] = {TEXTOID, JSONBOID};
	Datum		values[2];
	TaskflowSavedUser saved;
	List	   *stmts = NIL;
	Datum	   *elems;
	bool	   *nulls;
	bool		isnull;
	int			n;
	int			i;

	values[0] = CStringGetTextDatum(task_name);
	values[1] = DirectFunctionCall1(jsonb_in, CStringGetDatum(actions));
	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	TaskflowExec("SELECT taskflow._compile_actions($1, $2)", 2, types, values,
				 NULL);
	TaskflowRestoreUser(&saved);
	if (SPI_processed != 1)
		return NIL;
	values[0] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
							  &isnull);
	if (isnull)
		return NIL;
	deconstruct_array(DatumGetArrayTypeP(values[0]), TEXTOID, -1, false,
					  TYPALIGN_INT, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
		stmts = lappend(stmts, TextDatumGetCString(elems[i]));
	return stmts;
}

/*
 * ExecAsOwner runs one action statement for the batch as role owner.
 */
static void
ExecAsOwner(Oid owner, const char *sql, Datum ids, TimestampTz as_of)
{
	Oid			types[2] = {INT8ARRAYOID, TIMESTAMPTZOID};
	Datum		values[2];
	TaskflowSavedUser saved;

	values[0] = ids;
	values[1] = TimestampTzGetDatum(as_of);
	TaskflowBecomeUser(owner, &saved);
	TaskflowExec(sql, 2, types, values, NULL);
	TaskflowRestoreUser(&saved);
}

/*
 * TaskflowRunActions applies a step's actions to a batch of members, as the
 * chain's owner, with a fixed number of statements whatever the batch size.
 */
void
TaskflowRunActions(TaskflowChain chain, TaskflowStep step, MemberSet ids,
				   TimestampTz as_of)
{
	List	   *stmts = CompileActions(step->task_name, step->actions);
	Datum		id_array;
	ListCell   *lc;

	if (stmts == NIL)
		return;
	id_array = MemberSetToDatum(ids);
	foreach(lc, stmts)
		ExecAsOwner(chain->owner, (const char *) lfirst(lc), id_array, as_of);
}

/*
 * CheckOneStatement refuses anything but a single INSERT, UPDATE, DELETE or
 * SELECT: no utility commands, no transaction control, no second statement.
 */
static void
CheckOneStatement(const char *task_name, const char *sql)
{
	List	   *parsed = raw_parser(sql, RAW_PARSE_DEFAULT);
	Node	   *stmt;

	if (list_length(parsed) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sql action of task \"%s\" must be exactly one statement",
						task_name),
				 errhint("Use $1 (the members' ids, bigint[]) and $2 (the engine's clock) in one INSERT, UPDATE, DELETE or SELECT."),
				 internalerrquery(sql)));
	stmt = ((RawStmt *) linitial(parsed))->stmt;
	if (!IsA(stmt, InsertStmt) && !IsA(stmt, UpdateStmt) &&
		!IsA(stmt, DeleteStmt) && !IsA(stmt, SelectStmt))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sql action of task \"%s\" must be an INSERT, UPDATE, DELETE or SELECT",
						task_name),
				 errhint("Utility commands, transaction control and SET are not allowed in actions."),
				 internalerrquery(sql)));
}

/*
 * TemporaryWalker refuses temporary tables and functions anywhere in an
 * analysed statement: they are gone, or are another session's, when the
 * engine runs it.
 */
static bool
TemporaryWalker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		if (rte->rtekind == RTE_RELATION &&
			isAnyTempNamespace(get_rel_namespace(rte->relid)))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("cannot use temporary table %s", get_rel_name(rte->relid)),
					 errhint("The engine runs actions in other sessions, where a temporary table is gone or is another one.")));
		return false;
	}
	if (IsA(node, FuncExpr) &&
		isAnyTempNamespace(get_func_namespace(((FuncExpr *) node)->funcid)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("cannot use temporary function %s",
						format_procedure(((FuncExpr *) node)->funcid))));
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, TemporaryWalker, context,
								 QTW_EXAMINE_RTES_BEFORE);
	return expression_tree_walker(node, TemporaryWalker, context);
}

/*
 * CheckNoTemporary analyses a statement as role owner and refuses it if it
 * uses anything temporary.
 */
static void
CheckNoTemporary(Oid owner, const char *sql)
{
	Oid			types[2] = {INT8ARRAYOID, TIMESTAMPTZOID};
	TaskflowSavedUser saved;
	SPIPlanPtr	plan;
	ListCell   *lc;
	ListCell   *lq;

	TaskflowBecomeUser(owner, &saved);
	plan = SPI_prepare(sql, 2, types);
	TaskflowRestoreUser(&saved);
	if (plan == NULL)
		elog(ERROR, "taskflow: SPI_prepare failed (%s)",
			 SPI_result_code_string(SPI_result));
	foreach(lc, SPI_plan_get_plan_sources(plan))
		foreach(lq, ((CachedPlanSource *) lfirst(lc))->query_list)
			(void) TemporaryWalker((Node *) lfirst(lq), NULL);
	SPI_freeplan(plan);
}

/*
 * TryAsCaller plans and runs a statement for zero members as the caller,
 * inside a subtransaction that is always rolled back: unknown tables and
 * columns, type errors and missing privileges surface now, nothing stays.
 */
static void
TryAsCaller(Oid caller, const char *task_name, const char *sql)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;
	MemberSetData none = {0, NULL};

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		CheckNoTemporary(caller, sql);
		ExecAsOwner(caller, sql, MemberSetToDatum(&none), TaskflowClockNow());
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
	}
	PG_END_TRY();
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;
	if (edata)
		ereport(ERROR,
				(errcode(edata->sqlerrcode),
				 errmsg("action of task \"%s\" cannot run: %s", task_name,
						edata->message),
				 edata->detail ? errdetail_internal("%s", edata->detail) : 0,
				 edata->hint ? errhint("%s", edata->hint) : 0,
				 internalerrquery(sql)));
}

/*
 * taskflow._check_actions(caller, task_name, actions): raises unless every
 * action of the task is well-formed and can run as the caller.
 */
Datum
taskflow_check_actions(PG_FUNCTION_ARGS)
{
	Oid			caller = PG_GETARG_OID(0);
	char	   *task_name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *actions = JsonbToCString(NULL, &PG_GETARG_JSONB_P(2)->root, 0);
	List	   *stmts;
	ListCell   *lc;

	SPI_connect();
	stmts = CompileActions(task_name, actions);
	foreach(lc, stmts)
	{
		CheckOneStatement(task_name, (const char *) lfirst(lc));
		TryAsCaller(caller, task_name, (const char *) lfirst(lc));
	}
	SPI_finish();
	PG_RETURN_VOID();
}
