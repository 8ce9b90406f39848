/*
 * manual.c
 *		Manual steps (処理待ちタスク): operators process, skip or cancel the
 *		members pending at a manual task, in bulk.
 *
 * All chosen members advance or none: the pending rows are locked first,
 * and if any chosen member is not pending at the task (another operator or
 * a change got there first) the whole call fails.  Waits after a manual
 * task count from the moment it was processed (the as_of argument).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "engine.h"
#include "privileges.h"
#include "spi_util.h"
#include "step.h"
#include "version.h"

PG_FUNCTION_INFO_V1(taskflow_process);
PG_FUNCTION_INFO_V1(taskflow_skip);
PG_FUNCTION_INFO_V1(taskflow_cancel);

typedef enum ManualAction
{
	MANUAL_PROCESS,
	MANUAL_SKIP,
	MANUAL_CANCEL
} ManualAction;

/* The pending rows of one (chain, step) locked for processing. */
typedef struct PendingRow
{
	int			chain_id;
	int			step_id;
	int64		member_id;
	TimestampTz pending_since;
} PendingRow;

static const char *task_sql =
"SELECT t.task_id FROM taskflow.task t WHERE t.name OPERATOR(pg_catalog.=) $1";

static const char *lock_pending_sql =
"SELECT cm.chain_id, cm.step_id, cm.member_id, cm.waiting_since FROM taskflow.chain_member cm"
"  JOIN taskflow.chain_step s ON s.step_id OPERATOR(pg_catalog.=) cm.step_id"
" WHERE s.task_id OPERATOR(pg_catalog.=) $1 AND cm.state OPERATOR(pg_catalog.=) 'pending'"
"   AND ($2 IS NULL OR cm.member_id OPERATOR(pg_catalog.=) ANY ($2))"
" ORDER BY cm.chain_id, cm.step_id, cm.member_id"
"   FOR UPDATE OF cm";

/*
 * LockPending locks the members pending at a task (all, or those chosen)
 * and returns them sorted by chain, step and member.
 */
static PendingRow *
LockPending(int task_id, Datum chosen, bool all, uint64 *nrows)
{
	Oid			types[2] = {INT4OID, INT8ARRAYOID};
	Datum		values[2] = {Int32GetDatum(task_id), chosen};
	char		nulls[2] = {' ', all ? 'n' : ' '};
	PendingRow *rows;
	uint64		i;
	bool		isnull;

	TaskflowExec(lock_pending_sql, 2, types, values, nulls);
	*nrows = SPI_processed;
	rows = palloc(sizeof(PendingRow) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		rows[i].chain_id = DatumGetInt32(SPI_getbinval(tuple, desc, 1, &isnull));
		rows[i].step_id = DatumGetInt32(SPI_getbinval(tuple, desc, 2, &isnull));
		rows[i].member_id = DatumGetInt64(SPI_getbinval(tuple, desc, 3, &isnull));
		rows[i].pending_since = DatumGetTimestampTz(SPI_getbinval(tuple, desc, 4, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	return rows;
}

/*
 * FindTask returns the id of a task by name, or raises.
 */
static int
FindTask(const char *task_name)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(task_name)};
	bool		isnull;
	int			task_id;

	TaskflowExec(task_sql, 1, types, values, NULL);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("task \"%s\" does not exist", task_name)));
	task_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return task_id;
}

/*
 * CheckAllPending raises unless every chosen member is among the locked
 * pending rows: processing is all or nothing.
 */
static void
CheckAllPending(const char *task_name, MemberSet chosen, PendingRow *rows,
				uint64 nrows)
{
	int64	   *found = palloc(sizeof(int64) * Max(nrows, 1));
	MemberSet	missing;
	uint64		i;

	for (i = 0; i < nrows; i++)
		found[i] = rows[i].member_id;
	missing = MemberSetMinus(chosen, MemberSetFromIds(found, (int) nrows));
	if (missing->count > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("member " INT64_FORMAT " is not pending at task \"%s\"",
						missing->ids[0], task_name),
				 errdetail_plural("%d of the chosen members is not pending there; nothing was processed.",
								  "%d of the chosen members are not pending there; nothing was processed.",
								  missing->count, missing->count),
				 errhint("Someone may have processed them already; see taskflow.pending_tasks.")));
}

/*
 * CheckNotBeforePending refuses an as_of earlier than the moment a chosen
 * member became pending: a member cannot be processed before it was
 * waiting for it (backdating to a later moment is fine).
 */
static void
CheckNotBeforePending(const char *task_name, PendingRow *rows, uint64 nrows,
					  TimestampTz as_of)
{
	uint64		i;

	for (i = 0; i < nrows; i++)
		if (rows[i].pending_since > as_of)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("member " INT64_FORMAT " is pending at task \"%s\" only since %s",
							rows[i].member_id, task_name,
							timestamptz_to_str(rows[i].pending_since)),
					 errdetail("as_of %s is earlier; nothing was processed.",
							   timestamptz_to_str(as_of))));
}

/*
 * CheckMayProcess lets operators (taskflow_operator) and members of the
 * chain owner's role work a chain's pending list.
 */
static void
CheckMayProcess(Oid caller, TaskflowChain chain)
{
	Oid			operator_role = get_role_oid("taskflow_operator", true);

	if (has_privs_of_role(caller, chain->owner) ||
		(OidIsValid(operator_role) && has_privs_of_role(caller, operator_role)))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to process pending members of chain \"%s\"",
					chain->name),
			 errhint("Operators need the taskflow_operator role.")));
}

/*
 * DoGroup processes, skips or cancels members pending at one step of one
 * chain, with the chain's settings in force.
 */
static void
DoGroup(ManualAction action, Oid caller, const char *actor, int chain_id,
		int step_id, MemberSet ids, TimestampTz as_of)
{
	TaskflowRunData run;
	TaskflowStep step;
	char	   *problem;
	int			nest_level;

	memset(&run, 0, sizeof(run));
	run.chain = TaskflowLoadChain(chain_id, CurrentMemoryContext);
	step = run.chain ? TaskflowChainStepById(run.chain, step_id) : NULL;
	if (step == NULL)
		elog(ERROR, "taskflow: step %d of chain %d vanished", step_id, chain_id);
	CheckMayProcess(caller, run.chain);
	problem = TaskflowOwnerProblem(run.chain);
	if (problem)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s", problem)));
	run.as_of = as_of;
	run.actor = actor;
	nest_level = TaskflowPushRunSettings(as_of, run.chain->time_zone);
	if (action == MANUAL_PROCESS)
		TaskflowApplyStep(&run, step, ids);
	else if (action == MANUAL_SKIP)
		TaskflowSkipStep(&run, step, ids);
	else
		TaskflowLeaveChain(&run, step, ids, "cancelled",
						   psprintf("cancelled by %s", actor));
	TaskflowPopRunSettings(nest_level);
}

/*
 * DoGroups walks the locked rows one (chain, step) group at a time.
 */
static void
DoGroups(ManualAction action, Oid caller, const char *actor, PendingRow *rows,
		 uint64 nrows, TimestampTz as_of)
{
	uint64		start = 0;

	while (start < nrows)
	{
		uint64		end = start;
		MemberSet	ids = MemberSetEmpty();

		while (end < nrows && rows[end].chain_id == rows[start].chain_id &&
			   rows[end].step_id == rows[start].step_id)
			end++;
		ids->ids = palloc(sizeof(int64) * (end - start));
		for (; start < end; start++)
			ids->ids[ids->count++] = rows[start].member_id;
		DoGroup(action, caller, actor, rows[end - 1].chain_id,
				rows[end - 1].step_id, ids, as_of);
	}
}

/*
 * ManualRun is the body of process(), skip() and cancel(): arguments are
 * (task, member_ids or NULL for all pending, as_of); returns the number of
 * members handled.  It runs with search_path pinned (TaskflowPinSearchPath).
 */
static Datum
ManualRun(FunctionCallInfo fcinfo, ManualAction action)
{
	char	   *task_name;
	bool		all = PG_ARGISNULL(1);
	TimestampTz as_of;
	Oid			caller = GetUserId();
	char	   *actor = GetUserNameFromId(caller, false);
	TaskflowSavedUser saved;
	PendingRow *rows;
	uint64		nrows;
	int			path_level;

	TaskflowCheckInstalledVersion();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("a task name is required")));
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("as_of cannot be NULL"),
				 errhint("Pass the instant the members were processed at, or leave the argument out for now().")));
	as_of = PG_GETARG_TIMESTAMPTZ(2);
	task_name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	path_level = TaskflowPinSearchPath();
	SPI_connect();
	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	rows = LockPending(FindTask(task_name), all ? (Datum) 0 : PG_GETARG_DATUM(1),
					   all, &nrows);
	TaskflowRestoreUser(&saved);
	if (!all)
		CheckAllPending(task_name, MemberSetFromDatum(PG_GETARG_DATUM(1), false),
						rows, nrows);
	CheckNotBeforePending(task_name, rows, nrows, as_of);
	DoGroups(action, caller, actor, rows, nrows, as_of);
	SPI_finish();
	TaskflowUnpinSearchPath(path_level);
	PG_RETURN_INT64((int64) nrows);
}

/*
 * taskflow.process(task, member_ids, as_of): applies a manual task to the
 * chosen pending members (NULL: all pending at it) and moves them on.
 */
Datum
taskflow_process(PG_FUNCTION_ARGS)
{
	return ManualRun(fcinfo, MANUAL_PROCESS);
}

/*
 * taskflow.skip(task, member_ids, as_of): moves pending members past the
 * manual task without applying it.
 */
Datum
taskflow_skip(PG_FUNCTION_ARGS)
{
	return ManualRun(fcinfo, MANUAL_SKIP);
}

/*
 * taskflow.cancel(task, member_ids, as_of): takes pending members out of
 * the chain.
 */
Datum
taskflow_cancel(PG_FUNCTION_ARGS)
{
	return ManualRun(fcinfo, MANUAL_CANCEL);
}
