/*
 * criteria.c
 *		Saved search criteria: validation, lookup and searches.
 *
 * A criteria is a SQL boolean expression over one member row, for example
 *		status = 'trial' AND days_since(joined_at) = 14
 * It is validated when it is saved, so a bad one is refused with a clear
 * message instead of failing at 3 a.m. in the worker:
 *
 *	1. the raw parser must see exactly one expression, not a statement;
 *	2. parse analysis, as the owner and with search_path pinned to
 *	   pg_catalog, taskflow, pg_temp, must find every name and give a
 *	   boolean; aggregates, window and set-returning functions, volatile
 *	   functions and the transaction's time (now(), CURRENT_DATE...) are
 *	   refused, so the answer depends only on the data and taskflow.clock();
 *	3. custom properties it reads must be defined, with a fitting type,
 *	   and the groups and event kinds it names with literals must exist;
 *	4. the normalized form, deparsed with only pg_catalog on search_path so
 *	   every other name is schema-qualified, must plan as the owner.
 *
 * The normalized form is what runs, always as the owner, with search_path
 * pinned and the clock set to the instant asked for; later changes to
 * anyone's search_path cannot change what a saved criteria means.
 */
#include "postgres.h"

#include <ctype.h>

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tstoreReceiver.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "parser/scansup.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/ruleutils.h"
#include "utils/timestamp.h"

#include "clock.h"
#include "criteria.h"
#include "privileges.h"

PG_FUNCTION_INFO_V1(taskflow_criteria_validate);
PG_FUNCTION_INFO_V1(taskflow_check_criteria);
PG_FUNCTION_INFO_V1(taskflow_search);
PG_FUNCTION_INFO_V1(taskflow_count);
PG_FUNCTION_INFO_V1(taskflow_search_expression);

/* The parser sees the expression as "SELECT <expression>". */
#define CRITERIA_PREFIX "SELECT "
#define CRITERIA_PREFIX_LEN 7

/* search_path while analysing, deparsing and running a criteria */
#define CRITERIA_ANALYZE_PATH "pg_catalog, taskflow, pg_temp"
#define CRITERIA_DEPARSE_PATH "pg_catalog"
#define CRITERIA_RUN_PATH "pg_catalog, pg_temp"

#define CRITERIA_EXAMPLE "status = 'paid' AND within_next(expires_at, '7 days')"
#define CRITERIA_CLOCK_HINT \
	"Use taskflow.clock(), or a helper such as days_since(), days_until(), " \
	"within_next() or within_last()."

/* A custom property a criteria reads. */
typedef struct CriteriaPropertyRef
{
	char	   *name;
	const char *reader;			/* "prop_number"...; NULL: a jsonb operator */
	Jsonb	   *value;			/* the value a containment (@>, <@) gives, or NULL */
	int			location;		/* in the parser's source text */
} CriteriaPropertyRef;

/*
 * A helper whose argument names a group or an event kind: a literal there
 * must name one that exists, or the criteria silently matches nobody.
 */
typedef struct CriteriaNamedArg
{
	const char *function;		/* taskflow.<function> */
	int			argno;			/* which argument, from 0 */
	const char *what;			/* "group", "event kind" */
	const char *lookup;			/* returns a row when $1 exists */
	const char *hint;
} CriteriaNamedArg;

#define CRITERIA_GROUP_LOOKUP \
	"SELECT FROM taskflow.member_group g WHERE g.name OPERATOR(pg_catalog.=) $1"
#define CRITERIA_KIND_LOOKUP \
	"SELECT FROM taskflow.event_kind k WHERE k.kind OPERATOR(pg_catalog.=) $1"
#define CRITERIA_GROUP_HINT \
	"Create it first with taskflow.create_group(), or check the spelling " \
	"(group names have no leading or trailing blanks)."
#define CRITERIA_KIND_HINT \
	"Define it first with taskflow.define_event_kind(), or check the spelling."

static const CriteriaNamedArg criteria_named_args[] = {
	{"in_group", 1, "group", CRITERIA_GROUP_LOOKUP, CRITERIA_GROUP_HINT},
	{"event_count", 1, "event kind", CRITERIA_KIND_LOOKUP, CRITERIA_KIND_HINT},
	{"last_event_at", 1, "event kind", CRITERIA_KIND_LOOKUP, CRITERIA_KIND_HINT},
};

/* A group or event kind a criteria names with a literal. */
typedef struct CriteriaNameRef
{
	const CriteriaNamedArg *arg;
	char	   *name;
	int			location;		/* in the parser's source text */
} CriteriaNameRef;

/* One validation in progress. */
typedef struct CriteriaCheckData
{
	const char *name;			/* criteria name for messages, or NULL */
	const char *expression;		/* what the user wrote */
	char	   *source;			/* CRITERIA_PREFIX || expression */
	Oid			owner;			/* the role it will run as */
	Oid			taskflow_namespace;
	Oid			member_relid;
	AttrNumber	properties_attno;
	int			depth;			/* sublink nesting while walking */
	List	   *refs;			/* CriteriaPropertyRef * */
	List	   *names;			/* CriteriaNameRef * */
	char	   *normalized;
} CriteriaCheckData;

typedef CriteriaCheckData *CriteriaCheck;

/* One search or count in progress. */
typedef struct CriteriaRunData
{
	const char *name;			/* for the error context, or NULL */
	TimestampTz as_of;
	TaskflowSavedUser saved;
	int			clock_level;
	int			env_level;
	ErrorContextCallback errcallback;
} CriteriaRunData;

typedef CriteriaRunData *CriteriaRun;

static bool CriteriaCheckWalker(Node *node, CriteriaCheck check);
static int	CriteriaStatementKeyword(CriteriaCheck check);


/* ---------------------------------------------------------------------
 * Error reporting
 * ---------------------------------------------------------------------
 */

/*
 * CriteriaLabel names the criteria at the start of every message.
 */
static char *
CriteriaLabel(CriteriaCheck check)
{
	if (check->name == NULL)
		return pstrdup("criteria");
	return psprintf("criteria \"%s\"", check->name);
}

/*
 * CriteriaErrPosition points the error being built at location (a byte
 * offset in the parser's source text) inside the user's expression, so
 * psql shows the expression with a caret under the problem.
 */
static int
CriteriaErrPosition(CriteriaCheck check, int location)
{
	int			offset = location - CRITERIA_PREFIX_LEN;

	if (location < 0 || offset < 0)
		return 0;
	internalerrposition(pg_mbstrlen_with_len(check->expression, offset) + 1);
	internalerrquery(check->expression);
	return 0;
}

/*
 * CriteriaThrow raises edata again with the criteria named in the message;
 * with map_position, a position in the parser's source text is moved into
 * the user's expression.  Context lines from inside are dropped: the
 * statement that failed is ours, not the user's.
 */
static void
pg_attribute_noreturn()
CriteriaThrow(CriteriaCheck check, ErrorData *edata, bool map_position)
{
	if (map_position && edata->cursorpos > 0)
	{
		edata->internalpos = Max(edata->cursorpos - CRITERIA_PREFIX_LEN, 1);
		edata->internalquery = pstrdup(check->expression);
		edata->cursorpos = 0;
	}
	edata->message = psprintf("%s: %s", CriteriaLabel(check), edata->message);
	edata->context = NULL;
	ThrowErrorData(edata);
	pg_unreachable();
}

/*
 * CriteriaCatch takes the error being handled out of the error state, to be
 * re-raised differently; it must be called from PG_CATCH.
 */
static ErrorData *
CriteriaCatch(MemoryContext mcxt)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(mcxt);
	edata = CopyErrorData();
	FlushErrorState();
	return edata;
}

/*
 * CriteriaHideErrorContext hides the callers' error context callbacks while
 * the parser runs, returning them to be put back; PG_CATCH puts them back
 * on error.  Were SPI's callback of a calling statement to see a parser
 * error, it would move the position into that statement before we could
 * move it into the user's expression.
 */
static ErrorContextCallback *
CriteriaHideErrorContext(void)
{
	ErrorContextCallback *outer = error_context_stack;

	error_context_stack = NULL;
	return outer;
}

/*
 * CriteriaNotExpression refuses input that is more, or other, than one
 * expression; what says what it is instead.
 */
static void
pg_attribute_noreturn()
CriteriaNotExpression(CriteriaCheck check, const char *what, int location)
{
	ereport(ERROR,
			(errcode(ERRCODE_SYNTAX_ERROR),
			 errmsg("%s: must be a single expression, not %s",
					CriteriaLabel(check), what),
			 errhint("Write only the condition, for example: %s. "
					 "A subquery goes in parentheses: EXISTS (SELECT ...).",
					 CRITERIA_EXAMPLE),
			 CriteriaErrPosition(check, location)));
}

/*
 * CriteriaNotExpressionAt refuses input that is not one expression, as
 * "a statement" when it starts like one (SELECT, DELETE...), else as what.
 */
static void
pg_attribute_noreturn()
CriteriaNotExpressionAt(CriteriaCheck check, const char *what, int location)
{
	int			keyword = CriteriaStatementKeyword(check);

	if (keyword >= 0)
		CriteriaNotExpression(check, "a statement", keyword);
	CriteriaNotExpression(check, what, location);
}

/*
 * CriteriaRefuseClock refuses a reading of the real time: a criteria must
 * follow taskflow.clock() so searches as of an instant, the preview and the
 * engine agree.
 */
static void
pg_attribute_noreturn()
CriteriaRefuseClock(CriteriaCheck check, const char *what, const char *detail,
					int location)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
			 errmsg("%s: %s does not follow taskflow's clock",
					CriteriaLabel(check), what),
			 errdetail_internal("%s", detail),
			 errhint(CRITERIA_CLOCK_HINT),
			 CriteriaErrPosition(check, location)));
}


/* ---------------------------------------------------------------------
 * Step 1: one expression, not a statement
 * ---------------------------------------------------------------------
 */

/*
 * CriteriaStatementKeyword returns the byte offset (in the source text) of
 * a leading keyword that starts a statement, such as SELECT or DELETE, or
 * -1: used to explain a syntax error.
 */
static int
CriteriaStatementKeyword(CriteriaCheck check)
{
	static const char *const keywords[] = {
		"select", "with", "values", "table", "insert", "update", "delete",
		"merge", "create", "drop", "alter", "grant", "revoke", "truncate",
		"copy", "call", "do", "set", "explain", NULL
	};
	const char *start = check->expression;
	int			len = 0;
	int			i;

	while (scanner_isspace(*start))
		start++;
	while (isalpha((unsigned char) start[len]))
		len++;
	for (i = 0; keywords[i] != NULL; i++)
		if (strlen(keywords[i]) == len &&
			pg_strncasecmp(start, keywords[i], len) == 0)
			return CRITERIA_PREFIX_LEN + (start - check->expression);
	return -1;
}

/*
 * CriteriaRawParse runs the raw parser on the source text, re-raising its
 * errors in the user's terms.
 */
static List *
CriteriaRawParse(CriteriaCheck check)
{
	MemoryContext mcxt = CurrentMemoryContext;
	List	   *volatile stmts = NIL;

	PG_TRY();
	{
		ErrorContextCallback *outer = CriteriaHideErrorContext();

		stmts = raw_parser(check->source, RAW_PARSE_DEFAULT);
		error_context_stack = outer;
	}
	PG_CATCH();
	{
		ErrorData  *edata = CriteriaCatch(mcxt);

		if (edata->sqlerrcode == ERRCODE_SYNTAX_ERROR &&
			CriteriaStatementKeyword(check) >= 0)
			CriteriaNotExpressionAt(check, "a statement", -1);
		CriteriaThrow(check, edata, true);
	}
	PG_END_TRY();
	return stmts;
}

/*
 * CriteriaClauseLocation returns the location of the first clause a plain
 * "SELECT <expression>" does not have (FROM, WHERE, ORDER BY...), -1 when
 * it has one without a known location, -2 when it has none.
 */
static int
CriteriaClauseLocation(SelectStmt *select)
{
	Node	   *clauses[] = {
		(Node *) select->distinctClause, (Node *) select->intoClause,
		(Node *) select->fromClause, select->whereClause,
		(Node *) select->groupClause, select->havingClause,
		(Node *) select->windowClause, (Node *) select->valuesLists,
		(Node *) select->sortClause, select->limitOffset, select->limitCount,
		(Node *) select->lockingClause, (Node *) select->withClause
	};
	int			i;

	for (i = 0; i < lengthof(clauses); i++)
		if (clauses[i] != NULL)
			return exprLocation(clauses[i]);
	return select->op == SETOP_NONE ? -2 : -1;
}

/*
 * CriteriaLiteralAsBoolean reads a bare string literal or NULL as a boolean
 * ('true'), as a WHERE clause would, instead of as text.
 */
static Node *
CriteriaLiteralAsBoolean(Node *expr)
{
	A_Const    *literal = (A_Const *) expr;
	TypeCast   *cast;

	if (!IsA(expr, A_Const) ||
		!(literal->isnull || IsA(&literal->val, String)))
		return expr;
	cast = makeNode(TypeCast);
	cast->arg = expr;
	cast->typeName = SystemTypeName("bool");
	cast->location = -1;
	return (Node *) cast;
}

/*
 * CriteriaSelect returns the one plain "SELECT <targets>" the raw parser
 * made of the source text, refusing statements, lists of statements and
 * clauses such as FROM or ORDER BY.
 */
static SelectStmt *
CriteriaSelect(CriteriaCheck check)
{
	List	   *stmts = CriteriaRawParse(check);
	RawStmt    *raw;
	SelectStmt *select;
	int			location;

	if (list_length(stmts) > 1)
		CriteriaNotExpressionAt(check, "a list of statements",
								((RawStmt *) lsecond(stmts))->stmt_location);
	raw = (RawStmt *) linitial(stmts);
	if (raw->stmt_len > 0)		/* ends with a semicolon */
		CriteriaNotExpressionAt(check, "a statement",
								raw->stmt_location + raw->stmt_len);
	select = (SelectStmt *) raw->stmt;
	if (!IsA(select, SelectStmt))
		CriteriaNotExpressionAt(check, "a statement", -1);
	location = CriteriaClauseLocation(select);
	if (location != -2)
		CriteriaNotExpressionAt(check, "a query", location);
	return select;
}

/*
 * CriteriaParse checks that the expression is one expression and returns
 * its raw parse tree.
 */
static Node *
CriteriaParse(CriteriaCheck check)
{
	SelectStmt *select = CriteriaSelect(check);
	ResTarget  *target;

	if (select->targetList == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: the expression is empty", CriteriaLabel(check)),
				 errhint("Write a condition, for example: %s.",
						 CRITERIA_EXAMPLE)));
	if (list_length(select->targetList) > 1)
		CriteriaNotExpressionAt(check, "a list of expressions",
								((ResTarget *) lsecond(select->targetList))->location);
	target = (ResTarget *) linitial(select->targetList);
	if (target->name != NULL)
		CriteriaNotExpressionAt(check, "an expression with an alias",
								target->location);
	if (IsA(target->val, ColumnRef) &&
		IsA(llast(((ColumnRef *) target->val)->fields), A_Star))
		CriteriaNotExpressionAt(check, "a list of columns", target->location);
	return CriteriaLiteralAsBoolean(target->val);
}


/* ---------------------------------------------------------------------
 * Step 2: parse analysis and what the expression may contain
 * ---------------------------------------------------------------------
 */

/*
 * CriteriaAnalyze analyses "SELECT <expression> FROM taskflow.member AS
 * member" built around the raw expression (so no text is pasted together)
 * and returns the query; errors point into the user's expression.
 */
static Query *
CriteriaAnalyze(CriteriaCheck check, Node *expr)
{
	MemoryContext mcxt = CurrentMemoryContext;
	ResTarget  *target = makeNode(ResTarget);
	RangeVar   *member = makeRangeVar("taskflow", "member", -1);
	SelectStmt *select = makeNode(SelectStmt);
	RawStmt    *raw = makeNode(RawStmt);
	Query	   *volatile query = NULL;

	target->val = expr;
	target->location = exprLocation(expr);
	member->alias = makeAlias("member", NIL);
	select->targetList = list_make1(target);
	select->fromClause = list_make1(member);
	raw->stmt = (Node *) select;

	PG_TRY();
	{
		ErrorContextCallback *outer = CriteriaHideErrorContext();

		query = parse_analyze_fixedparams(raw, check->source, NULL, 0, NULL);
		error_context_stack = outer;
	}
	PG_CATCH();
	{
		CriteriaThrow(check, CriteriaCatch(mcxt), true);
	}
	PG_END_TRY();
	return query;
}

/*
 * CriteriaCheckType requires a boolean result.
 */
static void
CriteriaCheckType(CriteriaCheck check, Node *expr)
{
	Oid			type = exprType(expr);

	if (getBaseType(type) == BOOLOID)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("%s: must be a boolean expression, not type %s",
					CriteriaLabel(check), format_type_be(type)),
			 errhint("Compare or test something, for example: %s.",
					 CRITERIA_EXAMPLE),
			 CriteriaErrPosition(check, exprLocation(expr))));
}

/*
 * CriteriaIsVolatile is a check_functions_in_node callback: true for a
 * volatile function, whose OID it stores in *context.
 */
static bool
CriteriaIsVolatile(Oid funcid, void *context)
{
	if (func_volatile(funcid) != PROVOLATILE_VOLATILE)
		return false;
	*(Oid *) context = funcid;
	return true;
}

/*
 * CriteriaCheckVolatile refuses a volatile function (random(), nextval(),
 * a function not marked STABLE or IMMUTABLE) anywhere in the expression.
 */
static void
CriteriaCheckVolatile(CriteriaCheck check, Node *node)
{
	Oid			funcid = InvalidOid;

	if (!IsA(node, NextValueExpr) &&
		!check_functions_in_node(node, CriteriaIsVolatile, &funcid))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
			 errmsg("%s: volatile function %s is not allowed",
					CriteriaLabel(check),
					OidIsValid(funcid) ? format_procedure(funcid) : "nextval()"),
			 errdetail("A criteria must give the same answer for the same data and clock, "
					   "so that a preview and the engine agree."),
			 errhint("Use only immutable or stable functions; for the time, use taskflow.clock()."),
			 CriteriaErrPosition(check, exprLocation(node))));
}

/*
 * CriteriaCheckClockFunction refuses now() and its relatives.
 */
static void
CriteriaCheckClockFunction(CriteriaCheck check, Oid funcid, int location)
{
	switch (funcid)
	{
		case F_NOW:
		case F_STATEMENT_TIMESTAMP:
		case F_TRANSACTION_TIMESTAMP:
		case F_CLOCK_TIMESTAMP:
		case F_TIMEOFDAY:
			CriteriaRefuseClock(check, format_procedure(funcid),
								"It reads the real time, not the instant taskflow runs as.",
								location);
		default:
			break;
	}
}

/*
 * CriteriaCheckValueFunction refuses CURRENT_DATE, CURRENT_TIMESTAMP and
 * the other SQL keywords for the transaction's time.
 */
static void
CriteriaCheckValueFunction(CriteriaCheck check, SQLValueFunction *svf)
{
	const char *what;

	switch (svf->op)
	{
		case SVFOP_CURRENT_DATE:
			what = "CURRENT_DATE";
			break;
		case SVFOP_CURRENT_TIME:
		case SVFOP_CURRENT_TIME_N:
			what = "CURRENT_TIME";
			break;
		case SVFOP_CURRENT_TIMESTAMP:
		case SVFOP_CURRENT_TIMESTAMP_N:
			what = "CURRENT_TIMESTAMP";
			break;
		case SVFOP_LOCALTIME:
		case SVFOP_LOCALTIME_N:
			what = "LOCALTIME";
			break;
		case SVFOP_LOCALTIMESTAMP:
		case SVFOP_LOCALTIMESTAMP_N:
			what = "LOCALTIMESTAMP";
			break;
		default:
			return;
	}
	CriteriaRefuseClock(check, what,
						"It reads the real time, not the instant taskflow runs as.",
						svf->location);
}

/*
 * CriteriaCheckNowLiteral refuses a date/time literal such as 'now' or
 * 'today', which would be turned into a fixed instant when saved.
 */
static void
CriteriaCheckNowLiteral(CriteriaCheck check, Const *con)
{
	static const char *const words[] = {"now", "today", "tomorrow", "yesterday"};
	const char *text;
	int			len;
	int			i;

	if (con->constisnull || con->location < 0 ||
		!(con->consttype == DATEOID || con->consttype == TIMEOID ||
		  con->consttype == TIMETZOID || con->consttype == TIMESTAMPOID ||
		  con->consttype == TIMESTAMPTZOID))
		return;
	text = check->source + con->location;
	if (*text++ != '\'')
		return;
	while (scanner_isspace(*text))
		text++;
	for (len = 0; isalpha((unsigned char) text[len]); len++)
		;
	for (i = 0; i < lengthof(words); i++)
		if (strlen(words[i]) == len && pg_strncasecmp(text, words[i], len) == 0)
			CriteriaRefuseClock(check, psprintf("'%s'", words[i]),
								"The literal is turned into a fixed instant when the criteria is saved.",
								con->location);
}

/*
 * CriteriaNoteProperty records that the criteria reads a custom property.
 */
static void
CriteriaNoteProperty(CriteriaCheck check, const char *name,
					 const char *reader, int location)
{
	CriteriaPropertyRef *ref = palloc(sizeof(CriteriaPropertyRef));

	ref->name = pstrdup(name);
	ref->reader = reader;
	ref->value = NULL;
	ref->location = location;
	check->refs = lappend(check->refs, ref);
}

/*
 * CriteriaNotePropertyReader records the property read by a call of
 * taskflow.prop_text/prop_number/prop_bool/prop_date, whose name must be a
 * constant so it can be checked.
 */
static void
CriteriaNotePropertyReader(CriteriaCheck check, FuncExpr *func)
{
	static const char *const readers[] = {
		"prop_text", "prop_number", "prop_bool", "prop_date"
	};
	char	   *name;
	Const	   *arg;
	int			i;

	if (get_func_namespace(func->funcid) != check->taskflow_namespace ||
		list_length(func->args) != 2)
		return;
	name = get_func_name(func->funcid);
	for (i = 0; i < lengthof(readers); i++)
		if (strcmp(name, readers[i]) == 0)
			break;
	if (i == lengthof(readers))
		return;
	arg = (Const *) lsecond(func->args);
	if (!IsA(arg, Const) || arg->constisnull || arg->consttype != TEXTOID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: the property name given to taskflow.%s() must be a constant",
						CriteriaLabel(check), readers[i]),
				 errhint("Write the name as a literal, for example taskflow.%s(properties, 'plan').",
						 readers[i]),
				 CriteriaErrPosition(check, exprLocation((Node *) arg))));
	CriteriaNoteProperty(check, TextDatumGetCString(arg->constvalue),
						 readers[i], arg->location);
}

/*
 * CriteriaNoteNamedArg records the group or event kind a call of
 * taskflow.in_group / event_count / last_event_at names with a literal;
 * any other argument (a column, an expression) cannot be checked.
 */
static void
CriteriaNoteNamedArg(CriteriaCheck check, FuncExpr *func)
{
	char	   *name;
	int			i;

	if (get_func_namespace(func->funcid) != check->taskflow_namespace)
		return;
	name = get_func_name(func->funcid);
	for (i = 0; i < lengthof(criteria_named_args); i++)
	{
		const CriteriaNamedArg *arg = &criteria_named_args[i];
		Const	   *con;
		CriteriaNameRef *ref;

		if (strcmp(name, arg->function) != 0 ||
			list_length(func->args) <= arg->argno)
			continue;
		con = (Const *) list_nth(func->args, arg->argno);
		if (!IsA(con, Const) || con->constisnull || con->consttype != TEXTOID)
			return;
		ref = palloc(sizeof(CriteriaNameRef));
		ref->arg = arg;
		ref->name = TextDatumGetCString(con->constvalue);
		ref->location = con->location;
		check->names = lappend(check->names, ref);
		return;
	}
}

/*
 * CriteriaIsPropertiesColumn tells whether node is the member's properties
 * column (from the criteria itself or from inside a subquery).
 */
static bool
CriteriaIsPropertiesColumn(CriteriaCheck check, Node *node)
{
	Var		   *var = (Var *) node;

	return IsA(node, Var) && var->varno == 1 &&
		var->varlevelsup == check->depth &&
		var->varattno == check->properties_attno;
}

/*
 * CriteriaNotePropertyArray records the property names in a constant text
 * array, or an ARRAY[...] of constants; only the first with first_only.
 */
static void
CriteriaNotePropertyArray(CriteriaCheck check, Node *array, bool first_only)
{
	Datum	   *names;
	int			count;
	int			i;
	ListCell   *lc;

	if (IsA(array, Const) && !((Const *) array)->constisnull &&
		((Const *) array)->consttype == TEXTARRAYOID)
	{
		deconstruct_array(DatumGetArrayTypeP(((Const *) array)->constvalue),
						  TEXTOID, -1, false, TYPALIGN_INT, &names, NULL,
						  &count);
		for (i = 0; i < (first_only ? Min(count, 1) : count); i++)
			CriteriaNoteProperty(check, TextDatumGetCString(names[i]), NULL,
								 ((Const *) array)->location);
		return;
	}
	if (!IsA(array, ArrayExpr))
		return;
	foreach(lc, ((ArrayExpr *) array)->elements)
	{
		Const	   *elem = (Const *) lfirst(lc);

		if (IsA(elem, Const) && !elem->constisnull &&
			elem->consttype == TEXTOID)
			CriteriaNoteProperty(check, TextDatumGetCString(elem->constvalue),
								 NULL, elem->location);
		if (first_only)
			break;
	}
}

/*
 * CriteriaNotePropertyObject records the keys of a constant JSON object
 * matched by containment against the properties column, each with the
 * value given for it, which must be one a member can hold.
 */
static void
CriteriaNotePropertyObject(CriteriaCheck check, Node *node)
{
	Const	   *con = (Const *) node;
	Jsonb	   *object;
	JsonbIterator *it;
	JsonbIteratorToken token;
	JsonbValue	v;
	char	   *key = NULL;

	if (!IsA(node, Const) || con->constisnull || con->consttype != JSONBOID)
		return;
	object = DatumGetJsonbP(con->constvalue);
	if (!JB_ROOT_IS_OBJECT(object))
		return;
	it = JsonbIteratorInit(&object->root);
	while ((token = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (token == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (token == WJB_VALUE && key != NULL)
		{
			CriteriaNoteProperty(check, key, NULL, con->location);
			((CriteriaPropertyRef *) llast(check->refs))->value =
				JsonbValueToJsonb(&v);
			key = NULL;
		}
	}
}

/*
 * CriteriaNotePropertyOperator records the properties named by a constant
 * on the right of a jsonb operator applied to the properties column:
 * properties ->> 'plan', -> 'plan', ? 'plan', ?| / ?& array['a', 'b'] and
 * #> / #>> '{plan, ...}' (the first path element); and the keys of a
 * constant object on either side of @> or <@ with the properties column
 * (properties @> '{"plan": "ゴールド"}').
 */
static void
CriteriaNotePropertyOperator(CriteriaCheck check, OpExpr *op)
{
	Const	   *right;
	char	   *opname;

	if (list_length(op->args) != 2)
		return;
	opname = get_opname(op->opno);
	if (strcmp(opname, "@>") == 0 || strcmp(opname, "<@") == 0)
	{
		if (CriteriaIsPropertiesColumn(check, linitial(op->args)))
			CriteriaNotePropertyObject(check, lsecond(op->args));
		else if (CriteriaIsPropertiesColumn(check, lsecond(op->args)))
			CriteriaNotePropertyObject(check, linitial(op->args));
		return;
	}
	if (!CriteriaIsPropertiesColumn(check, linitial(op->args)))
		return;
	right = (Const *) lsecond(op->args);
	if (strcmp(opname, "?|") == 0 || strcmp(opname, "?&") == 0)
		CriteriaNotePropertyArray(check, (Node *) right, false);
	else if (strcmp(opname, "#>") == 0 || strcmp(opname, "#>>") == 0)
		CriteriaNotePropertyArray(check, (Node *) right, true);
	else if ((strcmp(opname, "->>") == 0 || strcmp(opname, "->") == 0 ||
			  strcmp(opname, "?") == 0) &&
			 IsA(right, Const) && !right->constisnull &&
			 right->consttype == TEXTOID)
		CriteriaNoteProperty(check, TextDatumGetCString(right->constvalue),
							 NULL, right->location);
}

/*
 * CriteriaNotePropertySubscript records the property named by a constant
 * subscript of the properties column: properties['plan'] (the first one of
 * properties['a']['b']).
 */
static void
CriteriaNotePropertySubscript(CriteriaCheck check, SubscriptingRef *sbs)
{
	Const	   *index;

	if (!CriteriaIsPropertiesColumn(check, (Node *) sbs->refexpr) ||
		sbs->refupperindexpr == NIL)
		return;
	index = (Const *) linitial(sbs->refupperindexpr);
	if (IsA(index, Const) && !index->constisnull &&
		index->consttype == TEXTOID)
		CriteriaNoteProperty(check, TextDatumGetCString(index->constvalue),
							 NULL, index->location);
}

/*
 * CriteriaCheckNotApi refuses a call of taskflow's own search functions: a
 * criteria built on another criteria would hide a dependency (and could
 * call itself).
 */
static void
CriteriaCheckNotApi(CriteriaCheck check, FuncExpr *func)
{
	static const char *const api[] = {
		"search", "count", "search_expression", "check_criteria"
	};
	char	   *name;
	int			i;

	if (get_func_namespace(func->funcid) != check->taskflow_namespace)
		return;
	name = get_func_name(func->funcid);
	for (i = 0; i < lengthof(api); i++)
		if (strcmp(name, api[i]) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("%s: cannot call taskflow.%s()",
							CriteriaLabel(check), name),
					 errhint("Combine the expressions of the criteria instead."),
					 CriteriaErrPosition(check, func->location)));
}

/*
 * CriteriaCheckFunction checks a function call: not the real time, no set
 * in the criteria itself, nothing temporary; notes property readers.
 */
static void
CriteriaCheckFunction(CriteriaCheck check, FuncExpr *func)
{
	CriteriaCheckClockFunction(check, func->funcid, func->location);
	if (func->funcretset && check->depth == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s: set-returning function %s is not allowed",
						CriteriaLabel(check), format_procedure(func->funcid)),
				 errhint("Test the set in a subquery, for example: EXISTS (SELECT FROM ...)."),
				 CriteriaErrPosition(check, func->location)));
	if (isAnyTempNamespace(get_func_namespace(func->funcid)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("%s: cannot use temporary function %s",
						CriteriaLabel(check), format_procedure(func->funcid)),
				 CriteriaErrPosition(check, func->location)));
	CriteriaCheckNotApi(check, func);
	CriteriaNotePropertyReader(check, func);
	CriteriaNoteNamedArg(check, func);
}

/*
 * CriteriaCheckOperator checks an operator: no set in the criteria itself;
 * notes properties read with jsonb operators.
 */
static void
CriteriaCheckOperator(CriteriaCheck check, OpExpr *op)
{
	if (op->opretset && check->depth == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s: set-returning operator %s is not allowed",
						CriteriaLabel(check), get_opname(op->opno)),
				 CriteriaErrPosition(check, op->location)));
	CriteriaNotePropertyOperator(check, op);
}

/*
 * CriteriaRefuseGrouping refuses an aggregate or window function of the
 * criteria itself (inside a subquery they are fine).
 */
static void
pg_attribute_noreturn()
CriteriaRefuseGrouping(CriteriaCheck check, bool window, int location)
{
	ereport(ERROR,
			(errcode(window ? ERRCODE_WINDOWING_ERROR : ERRCODE_GROUPING_ERROR),
			 errmsg("%s: %s functions are not allowed",
					CriteriaLabel(check), window ? "window" : "aggregate"),
			 errdetail("A criteria is tested on one member at a time."),
			 window ? 0 :
			 errhint("Aggregate in a subquery, for example: "
					 "(SELECT count(*) FROM taskflow.event e WHERE e.member_id = member.member_id) > 3, "
					 "or use taskflow.event_count()."),
			 CriteriaErrPosition(check, location)));
}

/*
 * CriteriaCheckRangeTable refuses temporary tables in a subquery: they
 * would be gone, or be someone else's, when the criteria runs.
 */
static void
CriteriaCheckRangeTable(CriteriaCheck check, List *rtable)
{
	ListCell   *lc;

	foreach(lc, rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

		if (rte->rtekind == RTE_RELATION &&
			isAnyTempNamespace(get_rel_namespace(rte->relid)))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("%s: cannot use temporary table %s",
							CriteriaLabel(check), get_rel_name(rte->relid))));
	}
}

/*
 * CriteriaCheckNode checks one node of the analysed expression.
 */
static void
CriteriaCheckNode(CriteriaCheck check, Node *node)
{
	switch (nodeTag(node))
	{
		case T_Aggref:
			if (((Aggref *) node)->agglevelsup == check->depth)
				CriteriaRefuseGrouping(check, false, ((Aggref *) node)->location);
			break;
		case T_WindowFunc:
			if (check->depth == 0)
				CriteriaRefuseGrouping(check, true, ((WindowFunc *) node)->location);
			break;
		case T_FuncExpr:
			CriteriaCheckFunction(check, (FuncExpr *) node);
			break;
		case T_OpExpr:
			CriteriaCheckOperator(check, (OpExpr *) node);
			break;
		case T_SubscriptingRef:
			CriteriaNotePropertySubscript(check, (SubscriptingRef *) node);
			break;
		case T_SQLValueFunction:
			CriteriaCheckValueFunction(check, (SQLValueFunction *) node);
			break;
		case T_Const:
			CriteriaCheckNowLiteral(check, (Const *) node);
			break;
		default:
			break;
	}
	CriteriaCheckVolatile(check, node);
}

/*
 * CriteriaCheckWalker checks every node of the expression, including the
 * subqueries of its sublinks.
 */
static bool
CriteriaCheckWalker(Node *node, CriteriaCheck check)
{
	bool		result;

	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		check->depth++;
		CriteriaCheckRangeTable(check, ((Query *) node)->rtable);
		result = query_tree_walker((Query *) node, CriteriaCheckWalker,
								   check, 0);
		check->depth--;
		return result;
	}
	CriteriaCheckNode(check, node);
	return expression_tree_walker(node, CriteriaCheckWalker, check);
}

/*
 * CriteriaDeparse stores the normalized form: the analysed expression
 * printed with only pg_catalog on search_path, so every other function,
 * operator and table comes out schema-qualified.
 */
static void
CriteriaDeparse(CriteriaCheck check, Node *expr)
{
	int			nest_level = CriteriaEnvPush(CRITERIA_DEPARSE_PATH);
	List	   *context = deparse_context_for("member", check->member_relid);

	check->normalized = deparse_expression(expr, context, false, false);
	CriteriaEnvPop(nest_level);
}

/*
 * CriteriaCheckExpression analyses the expression as its owner, checks it
 * and deparses it.
 */
static void
CriteriaCheckExpression(CriteriaCheck check, Node *raw)
{
	TaskflowSavedUser saved;
	int			nest_level;
	Query	   *query;
	Node	   *expr;

	TaskflowBecomeUser(check->owner, &saved);
	nest_level = CriteriaEnvPush(CRITERIA_ANALYZE_PATH);
	query = CriteriaAnalyze(check, raw);
	expr = (Node *) linitial_node(TargetEntry, query->targetList)->expr;
	CriteriaCheckType(check, expr);
	(void) CriteriaCheckWalker(expr, check);
	CriteriaEnvPop(nest_level);
	CriteriaDeparse(check, expr);
	TaskflowRestoreUser(&saved);
}


/* ---------------------------------------------------------------------
 * Step 3: custom properties, groups and event kinds
 * ---------------------------------------------------------------------
 */

/*
 * CriteriaPropertyType returns the type of a defined custom property, or
 * NULL when there is no such property.
 */
static char *
CriteriaPropertyType(const char *name)
{
	MemoryContext mcxt = CurrentMemoryContext;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	char	   *type = NULL;

	values[0] = CStringGetTextDatum(name);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT p.type FROM taskflow.custom_property p "
							  "WHERE p.name OPERATOR(pg_catalog.=) $1",
							  1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read taskflow.custom_property");
	if (SPI_processed > 0)
		type = MemoryContextStrdup(mcxt, SPI_getvalue(SPI_tuptable->vals[0],
													  SPI_tuptable->tupdesc, 1));
	SPI_finish();
	return type;
}

/*
 * CriteriaReaderFor returns the prop_* function that reads a property type.
 */
static const char *
CriteriaReaderFor(const char *type)
{
	if (strcmp(type, "number") == 0)
		return "prop_number";
	if (strcmp(type, "boolean") == 0)
		return "prop_bool";
	if (strcmp(type, "date") == 0)
		return "prop_date";
	return "prop_text";
}

/*
 * CriteriaCheckContainedValue requires the value a containment gives for a
 * property to be one a member can hold (the rule of every write,
 * taskflow.check_property_value()): any other value never matches.
 */
static void
CriteriaCheckContainedValue(CriteriaCheck check, CriteriaPropertyRef *ref)
{
	MemoryContext mcxt = CurrentMemoryContext;
	Oid			argtypes[2] = {TEXTOID, JSONBOID};
	Datum		values[2];
	JsonbValue	scalar;

	if (JsonbExtractScalar(&ref->value->root, &scalar) &&
		scalar.type == jbvNull)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: property \"%s\" never holds null",
						CriteriaLabel(check), ref->name),
				 errdetail("A property without a value is absent from properties."),
				 errhint("Test that it is absent with NOT (properties ? '%s').",
						 ref->name),
				 CriteriaErrPosition(check, ref->location)));
	values[0] = CStringGetTextDatum(ref->name);
	values[1] = JsonbPGetDatum(ref->value);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PG_TRY();
	{
		if (SPI_execute_with_args("SELECT taskflow.check_property_value($1, $2)",
								  2, argtypes, values, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not check a property value");
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(mcxt);
		edata = CopyErrorData();
		FlushErrorState();
		ereport(ERROR,
				(errcode(edata->sqlerrcode),
				 errmsg("%s: %s", CriteriaLabel(check), edata->message),
				 edata->detail ? errdetail("%s", edata->detail) :
				 errdetail("No member can hold this value, so the criteria would never match."),
				 edata->hint ? errhint("%s", edata->hint) : 0,
				 CriteriaErrPosition(check, ref->location)));
	}
	PG_END_TRY();
	SPI_finish();
}

/*
 * CriteriaCheckProperty requires a property read to name a defined property
 * of a type its reader fits (prop_text reads any), and a value given by
 * containment to be one the property can hold.
 */
static void
CriteriaCheckProperty(CriteriaCheck check, CriteriaPropertyRef *ref)
{
	char	   *type = CriteriaPropertyType(ref->name);

	if (type == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("%s: unknown property \"%s\"",
						CriteriaLabel(check), ref->name),
				 errhint("Define it first with taskflow.define_property(), or check the spelling."),
				 CriteriaErrPosition(check, ref->location)));
	if (ref->value != NULL)
		CriteriaCheckContainedValue(check, ref);
	if (ref->reader == NULL || strcmp(ref->reader, "prop_text") == 0 ||
		strcmp(ref->reader, CriteriaReaderFor(type)) == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("%s: taskflow.%s() cannot read property \"%s\" of type %s",
					CriteriaLabel(check), ref->reader, ref->name, type),
			 errhint("Read a %s property with taskflow.%s().",
					 type, CriteriaReaderFor(type)),
			 CriteriaErrPosition(check, ref->location)));
}

/*
 * CriteriaCheckProperties checks every property read, looking properties
 * up as the extension owner (the owner may not read taskflow.custom_property).
 */
static void
CriteriaCheckProperties(CriteriaCheck check)
{
	TaskflowSavedUser saved;
	ListCell   *lc;

	if (check->refs == NIL)
		return;
	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	foreach(lc, check->refs)
		CriteriaCheckProperty(check, (CriteriaPropertyRef *) lfirst(lc));
	TaskflowRestoreUser(&saved);
}

/*
 * CriteriaNameExists runs a CriteriaNamedArg lookup for name.
 */
static bool
CriteriaNameExists(const char *lookup, const char *name)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	bool		found;

	values[0] = CStringGetTextDatum(name);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(lookup, 1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not run \"%s\"", lookup);
	found = SPI_processed > 0;
	SPI_finish();
	return found;
}

/*
 * CriteriaCheckNames requires every group and event kind named with a
 * literal to exist, looking them up as the extension owner, as properties.
 */
static void
CriteriaCheckNames(CriteriaCheck check)
{
	TaskflowSavedUser saved;
	ListCell   *lc;

	if (check->names == NIL)
		return;
	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	foreach(lc, check->names)
	{
		CriteriaNameRef *ref = (CriteriaNameRef *) lfirst(lc);

		if (!CriteriaNameExists(ref->arg->lookup, ref->name))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("%s: unknown %s \"%s\"",
							CriteriaLabel(check), ref->arg->what, ref->name),
					 errhint("%s", ref->arg->hint),
					 CriteriaErrPosition(check, ref->location)));
	}
	TaskflowRestoreUser(&saved);
}

/*
 * CriteriaNameCmp orders a list of C strings.
 */
static int
CriteriaNameCmp(const ListCell *a, const ListCell *b)
{
	return strcmp(lfirst(a), lfirst(b));
}

/*
 * CriteriaPropertyNames returns the names of the properties read, sorted
 * and without duplicates.
 */
static List *
CriteriaPropertyNames(CriteriaCheck check)
{
	List	   *sorted = NIL;
	List	   *names = NIL;
	ListCell   *lc;

	foreach(lc, check->refs)
		sorted = lappend(sorted, ((CriteriaPropertyRef *) lfirst(lc))->name);
	list_sort(sorted, CriteriaNameCmp);
	foreach(lc, sorted)
		if (names == NIL || strcmp(llast(names), lfirst(lc)) != 0)
			names = lappend(names, lfirst(lc));
	return names;
}


/* ---------------------------------------------------------------------
 * Step 4: it plans, as the owner
 * ---------------------------------------------------------------------
 */

/*
 * CriteriaCheckPlan plans and starts the normalized form as the owner,
 * fetching nothing, so a missing privilege or an error at plan time is
 * reported now rather than when the engine runs it.
 */
static void
CriteriaCheckPlan(CriteriaCheck check)
{
	MemoryContext mcxt = CurrentMemoryContext;
	char	   *sql = psprintf("SELECT 1 FROM taskflow.member AS member "
							   "WHERE (%s) LIMIT 0", check->normalized);
	TaskflowSavedUser saved;
	int			nest_level;

	TaskflowBecomeUser(check->owner, &saved);
	nest_level = CriteriaEnvPush(CRITERIA_RUN_PATH);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PG_TRY();
	{
		if (SPI_execute(sql, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not run \"%s\"", sql);
	}
	PG_CATCH();
	{
		CriteriaThrow(check, CriteriaCatch(mcxt), false);
	}
	PG_END_TRY();
	SPI_finish();
	CriteriaEnvPop(nest_level);
	TaskflowRestoreUser(&saved);
}

/*
 * CriteriaCheckInit prepares a validation, refusing a missing expression.
 */
static void
CriteriaCheckInit(CriteriaCheck check, const char *expression, Oid owner,
				  const char *name)
{
	const char *c;

	memset(check, 0, sizeof(CriteriaCheckData));
	check->name = name;
	check->expression = expression;
	check->owner = owner;
	for (c = expression; c != NULL && scanner_isspace(*c); c++)
		;
	if (c == NULL || *c == '\0')
		ereport(ERROR,
				(errcode(expression == NULL ? ERRCODE_NULL_VALUE_NOT_ALLOWED
						 : ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: the expression is %s", CriteriaLabel(check),
						expression == NULL ? "NULL" : "empty"),
				 errhint("Write a condition, for example: %s.", CRITERIA_EXAMPLE)));
	check->source = psprintf("%s%s", CRITERIA_PREFIX, expression);
	check->taskflow_namespace = get_namespace_oid("taskflow", false);
	check->member_relid = get_relname_relid("member", check->taskflow_namespace);
	check->properties_attno = get_attnum(check->member_relid, "properties");
	if (!OidIsValid(check->member_relid) ||
		check->properties_attno == InvalidAttrNumber)
		elog(ERROR, "taskflow.member is missing or has no properties column");
}

/*
 * CriteriaValidate validates an expression for a criteria owned by owner
 * (name, or NULL, is only for messages) and returns its normalized form;
 * *properties receives the names of the custom properties it reads.
 */
char *
CriteriaValidate(const char *expression, Oid owner, const char *name,
				 List **properties)
{
	CriteriaCheckData check;

	CriteriaCheckInit(&check, expression, owner, name);
	CriteriaCheckExpression(&check, CriteriaParse(&check));
	CriteriaCheckProperties(&check);
	CriteriaCheckNames(&check);
	CriteriaCheckPlan(&check);
	*properties = CriteriaPropertyNames(&check);
	return check.normalized;
}


/* ---------------------------------------------------------------------
 * Running criteria
 * ---------------------------------------------------------------------
 */

/*
 * CriteriaSetOption sets one setting until the matching AtEOXact_GUC.
 */
static void
CriteriaSetOption(const char *name, const char *value)
{
	(void) set_config_option(name, value, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/*
 * CriteriaEnvPush pins, until CriteriaEnvPop, the settings a criteria's
 * meaning must not depend on: search_path, and the date and interval styles
 * constants are printed and read in.  Returns the nest level to pop.
 */
int
CriteriaEnvPush(const char *search_path)
{
	int			nest_level = NewGUCNestLevel();

	CriteriaSetOption("search_path", search_path);
	CriteriaSetOption("DateStyle", "ISO, YMD");
	CriteriaSetOption("IntervalStyle", "postgres");
	return nest_level;
}

/*
 * CriteriaEnvPop restores the settings CriteriaEnvPush changed, and any the
 * criteria changed (see TaskflowUnpinSearchPath).
 */
void
CriteriaEnvPop(int nest_level)
{
	AtEOXact_GUC(false, nest_level);
}

/*
 * CriteriaFromTuple copies a criteria out of an SPI result row (criteria_id,
 * owner, normalized) into the current memory context.
 */
static Criteria
CriteriaFromTuple(HeapTuple tuple, TupleDesc tupdesc, const char *name)
{
	Criteria	criteria = palloc0(sizeof(CriteriaData));
	bool		isnull;

	criteria->criteria_id =
		DatumGetInt32(SPI_getbinval(tuple, tupdesc, 1, &isnull));
	criteria->name = pstrdup(name);
	criteria->owner =
		DatumGetObjectId(SPI_getbinval(tuple, tupdesc, 2, &isnull));
	criteria->normalized =
		TextDatumGetCString(SPI_getbinval(tuple, tupdesc, 3, &isnull));
	return criteria;
}

/*
 * CriteriaLookup reads a saved criteria by name (as the extension owner:
 * users cannot read taskflow.criteria); a missing one is an error.
 */
Criteria
CriteriaLookup(const char *name)
{
	MemoryContext mcxt = CurrentMemoryContext;
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];
	TaskflowSavedUser saved;
	Criteria	criteria;

	values[0] = CStringGetTextDatum(name);
	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT c.criteria_id, c.owner::pg_catalog.oid,"
							  " c.normalized FROM taskflow.criteria c"
							  " WHERE c.name OPERATOR(pg_catalog.=) $1",
							  1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read taskflow.criteria");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("criteria \"%s\" does not exist", name),
				 errhint("taskflow.criteria_list shows the criteria you can use.")));

	MemoryContextSwitchTo(mcxt);
	criteria = CriteriaFromTuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
								 name);
	SPI_finish();
	TaskflowRestoreUser(&saved);
	return criteria;
}

/*
 * CriteriaRunErrorContext names the criteria and instant in errors raised
 * while it runs.
 */
static void
CriteriaRunErrorContext(void *arg)
{
	CriteriaRun run = (CriteriaRun) arg;

	if (run->name != NULL)
		errcontext("criteria \"%s\" as of %s", run->name,
				   timestamptz_to_str(run->as_of));
	else
		errcontext("criteria as of %s", timestamptz_to_str(run->as_of));
}

/*
 * CriteriaRunBegin sets the stage for running a criteria: as owner, with
 * the clock at as_of, settings pinned and SPI connected.
 */
static void
CriteriaRunBegin(CriteriaRun run, const char *name, Oid owner,
				 TimestampTz as_of)
{
	run->name = name;
	run->as_of = as_of;
	run->errcallback.callback = CriteriaRunErrorContext;
	run->errcallback.arg = run;
	run->errcallback.previous = error_context_stack;
	error_context_stack = &run->errcallback;
	TaskflowBecomeUser(owner, &run->saved);
	run->clock_level = TaskflowClockPush(as_of);
	run->env_level = CriteriaEnvPush(CRITERIA_RUN_PATH);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/*
 * CriteriaRunEnd undoes CriteriaRunBegin.
 */
static void
CriteriaRunEnd(CriteriaRun run)
{
	SPI_finish();
	CriteriaEnvPop(run->env_level);
	TaskflowClockPop(run->clock_level);
	TaskflowRestoreUser(&run->saved);
	error_context_stack = run->errcallback.previous;
}

/*
 * CriteriaSearchInto puts the members matching a normalized expression as
 * of an instant into the tuplestore of a materialized SRF, by member_id.
 */
static void
CriteriaSearchInto(ReturnSetInfo *rsinfo, const char *name, Oid owner,
				   const char *normalized, TimestampTz as_of)
{
	CriteriaRunData run;
	SPIExecuteOptions options;
	DestReceiver *dest = CreateDestReceiver(DestTuplestore);
	char	   *sql = psprintf("SELECT member.* FROM taskflow.member AS member "
							   "WHERE (%s) ORDER BY member.member_id",
							   normalized);

	SetTuplestoreDestReceiverParams(dest, rsinfo->setResult,
									rsinfo->econtext->ecxt_per_query_memory,
									false, rsinfo->setDesc,
									gettext_noop("taskflow.member does not match the result type of the search"));
	memset(&options, 0, sizeof(options));
	options.read_only = true;
	options.dest = dest;

	CriteriaRunBegin(&run, name, owner, as_of);
	if (SPI_execute_extended(sql, &options) != SPI_OK_SELECT)
		elog(ERROR, "could not run \"%s\"", sql);
	CriteriaRunEnd(&run);
	dest->rDestroy(dest);
}

/*
 * CriteriaCount counts the members matching a normalized expression as of
 * an instant.
 */
static int64
CriteriaCount(const char *name, Oid owner, const char *normalized,
			  TimestampTz as_of)
{
	CriteriaRunData run;
	char	   *sql = psprintf("SELECT pg_catalog.count(*)"
							   " FROM taskflow.member AS member WHERE (%s)",
							   normalized);
	bool		isnull;
	int64		count;

	CriteriaRunBegin(&run, name, owner, as_of);
	if (SPI_execute(sql, true, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not run \"%s\"", sql);
	count = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1, &isnull));
	CriteriaRunEnd(&run);
	return count;
}


/* ---------------------------------------------------------------------
 * SQL-callable functions
 * ---------------------------------------------------------------------
 */

/*
 * CriteriaTextArg returns text argument n as a C string, NULL for NULL.
 */
static char *
CriteriaTextArg(FunctionCallInfo fcinfo, int n)
{
	if (PG_ARGISNULL(n))
		return NULL;
	return text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/*
 * CriteriaAsOfArg returns the instant argument n, which must not be NULL.
 */
static TimestampTz
CriteriaAsOfArg(FunctionCallInfo fcinfo, int n)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("as_of must not be NULL"),
				 errhint("Leave it out to search as of taskflow.clock().")));
	return PG_GETARG_TIMESTAMPTZ(n);
}

/*
 * CriteriaForCaller looks up the criteria named by argument 0 and checks
 * that the caller may use it (has the privileges of its owner).
 */
static Criteria
CriteriaForCaller(FunctionCallInfo fcinfo)
{
	char	   *name = CriteriaTextArg(fcinfo, 0);
	Criteria	criteria;

	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the criteria name must not be NULL")));
	criteria = CriteriaLookup(name);
	TaskflowCheckCanUse(GetUserId(), criteria->owner,
						psprintf("criteria \"%s\"", name));
	if (GetUserNameFromId(criteria->owner, true) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the role that owned criteria \"%s\" no longer exists",
						name),
				 errhint("A superuser can save the criteria again to take it over.")));
	return criteria;
}

/*
 * CriteriaTextArray turns a list of C strings into a text[].
 */
static Datum
CriteriaTextArray(List *names)
{
	Datum	   *elems = palloc(sizeof(Datum) * (list_length(names) + 1));
	ListCell   *lc;

	foreach(lc, names)
		elems[foreach_current_index(lc)] = CStringGetTextDatum(lfirst(lc));
	return PointerGetDatum(construct_array(elems, list_length(names), TEXTOID,
										   -1, false, TYPALIGN_INT));
}

/*
 * taskflow._criteria_validate(owner regrole, expression text,
 * criteria_name text, OUT normalized text, OUT properties text[]) —
 * internal, for taskflow._save_criteria: validates as the future owner.
 */
Datum
taskflow_criteria_validate(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {false, false};
	List	   *properties;
	char	   *normalized;

	if (!has_privs_of_role(GetUserId(), TaskflowExtensionOwner()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("taskflow._criteria_validate is internal"),
				 errhint("Use taskflow.check_criteria() or taskflow.save_criteria().")));
	if (PG_ARGISNULL(0))
		elog(ERROR, "taskflow._criteria_validate needs an owner");
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "taskflow._criteria_validate must return a record");

	normalized = CriteriaValidate(CriteriaTextArg(fcinfo, 1), PG_GETARG_OID(0),
								  CriteriaTextArg(fcinfo, 2), &properties);
	values[0] = CStringGetTextDatum(normalized);
	values[1] = CriteriaTextArray(properties);
	tupdesc = BlessTupleDesc(tupdesc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * taskflow.check_criteria(expression text) RETURNS text — validates an
 * expression as the caller, without saving it; returns the normalized form.
 */
Datum
taskflow_check_criteria(PG_FUNCTION_ARGS)
{
	List	   *properties;

	PG_RETURN_TEXT_P(cstring_to_text(CriteriaValidate(CriteriaTextArg(fcinfo, 0),
													  GetUserId(), NULL,
													  &properties)));
}

/*
 * taskflow.search(criteria text, as_of timestamptz) RETURNS SETOF
 * taskflow.member — the members a saved criteria matches as of an instant,
 * by member_id; it runs as the criteria's owner, whose privileges the
 * caller must have.
 */
Datum
taskflow_search(PG_FUNCTION_ARGS)
{
	Criteria	criteria = CriteriaForCaller(fcinfo);
	TimestampTz as_of = CriteriaAsOfArg(fcinfo, 1);

	InitMaterializedSRF(fcinfo, 0);
	CriteriaSearchInto((ReturnSetInfo *) fcinfo->resultinfo, criteria->name,
					   criteria->owner, criteria->normalized, as_of);
	return (Datum) 0;
}

/*
 * taskflow.count(criteria text, as_of timestamptz) RETURNS bigint — how
 * many members a saved criteria matches as of an instant.
 */
Datum
taskflow_count(PG_FUNCTION_ARGS)
{
	Criteria	criteria = CriteriaForCaller(fcinfo);
	TimestampTz as_of = CriteriaAsOfArg(fcinfo, 1);

	PG_RETURN_INT64(CriteriaCount(criteria->name, criteria->owner,
								  criteria->normalized, as_of));
}

/*
 * taskflow.search_expression(expression text, as_of timestamptz) RETURNS
 * SETOF taskflow.member — an ad-hoc search: the expression is validated
 * like a criteria and runs as the caller.
 */
Datum
taskflow_search_expression(PG_FUNCTION_ARGS)
{
	Oid			caller = GetUserId();
	List	   *properties;
	char	   *normalized = CriteriaValidate(CriteriaTextArg(fcinfo, 0), caller,
											  NULL, &properties);
	TimestampTz as_of = CriteriaAsOfArg(fcinfo, 1);

	InitMaterializedSRF(fcinfo, 0);
	CriteriaSearchInto((ReturnSetInfo *) fcinfo->resultinfo, NULL, caller,
					   normalized, as_of);
	return (Datum) 0;
}
