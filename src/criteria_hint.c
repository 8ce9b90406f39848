/*
 * criteria_hint.c
 *		What the engine can learn from a saved criteria's normalized form
 *		before running it: the index ranges its day counts imply, whether
 *		it reads anything but the member row, and whether it reads anything
 *		but the data of its own member.
 *
 * A criteria such as "status = 'paid' AND days_since(joined_at) = 30" is
 * true of few members on any one day, but PostgreSQL cannot use the index
 * on joined_at for it: days_since() is a difference of dates.  The engine's
 * entry checks (every day for a daily chain) then read every member.  A
 * top-level condition comparing days_since(column) or days_until(column)
 * with a constant implies a range of the column (its local date is today
 * minus, or plus, the constant); CriteriaIndexHint writes that range as
 * extra conditions the entry check adds to the criteria.  They are
 * necessary, not sufficient: the criteria itself still decides, and the
 * range is three hours wider on each side, so that days that do not start
 * at midnight (a daylight-saving change at 00:00) lose no one.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "criteria.h"
#include "privileges.h"

/* constants further than this (about 270 years) get no hint */
#define HINT_MAX_DAYS 100000

/*
 * CriteriaAnalyzeNormalized parses and analyses a saved criteria's
 * normalized form over taskflow.member (as the extension owner, with
 * search_path pinned) and returns the expression.
 */
Node *
CriteriaAnalyzeNormalized(const char *normalized, bool *has_sublinks)
{
	char	   *sql = psprintf("SELECT (%s\n) FROM taskflow.member AS member", normalized);
	TaskflowSavedUser saved;
	int			nest_level;
	RawStmt    *raw;
	Query	   *query;

	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	nest_level = CriteriaEnvPush("pg_catalog, pg_temp");
	raw = linitial_node(RawStmt, raw_parser(sql, RAW_PARSE_DEFAULT));
	query = parse_analyze_fixedparams(raw, sql, NULL, 0, NULL);
	CriteriaEnvPop(nest_level);
	TaskflowRestoreUser(&saved);
	*has_sublinks = query->hasSubLinks;
	return (Node *) linitial_node(TargetEntry, query->targetList)->expr;
}

/*
 * CriteriaReadsOnlyTheRow says whether a criteria reads nothing but the
 * member row, without the clock: no subquery, only immutable functions.
 */
bool
CriteriaReadsOnlyTheRow(const char *normalized)
{
	bool		has_sublinks;
	Node	   *expr = CriteriaAnalyzeNormalized(normalized, &has_sublinks);

	return !has_sublinks && !contain_mutable_functions(expr);
}

/*
 * The taskflow predicates that read rows of the member given as their first
 * argument (its groups, events, payments).
 */
static const char *const member_keyed_predicates[] = {
	"in_group", "event_count", "last_event_at", "paid_count", "last_payment_at",
	"paid_within", "paid_for", "paid_for_month", NULL
};

/* The taskflow predicates that read only their arguments and the clock. */
static const char *const clock_predicates[] = {
	"clock", "days_since", "days_until", "days_until_anniversary", "within_next",
	"within_last", "prop_date", NULL
};

/*
 * InList says whether name is one of a NULL-terminated list.
 */
static bool
InList(const char *name, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(name, *list) == 0)
			return true;
	return false;
}

/*
 * ReadsOtherRows says whether a function may read rows other than its
 * arguments: anything volatile, a stable function outside pg_catalog
 * other than the clock predicates, and pg_catalog's stable functions that
 * read whole tables (table_to_xml and its kin).  Immutable functions are
 * taken at their word.
 */
static bool
ReadsOtherRows(Oid funcid, void *context)
{
	char		volatility = func_volatile(funcid);
	Oid			namespace = get_func_namespace(funcid);
	char	   *name;

	if (volatility == PROVOLATILE_IMMUTABLE)
		return false;
	if (volatility == PROVOLATILE_VOLATILE)
		return true;
	name = get_func_name(funcid);
	if (namespace == PG_CATALOG_NAMESPACE)
		return strstr(name, "_to_xml") != NULL;
	return namespace != get_namespace_oid("taskflow", false) ||
		!InList(name, clock_predicates);
}

/*
 * IsMemberId says whether an expression is the member row's member_id.
 */
static bool
IsMemberId(Node *node)
{
	Var		   *var = (Var *) node;

	return IsA(node, Var) && var->varlevelsup == 0 &&
		var->varattno == get_attnum(get_relname_relid("member",
													  get_namespace_oid("taskflow", false)),
									"member_id");
}

/*
 * ReadsOtherMembers is the expression walker of CriteriaReadsOnlyItsMember:
 * true at the first node that may read another member's data.
 */
static bool
ReadsOtherMembers(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, SubLink) || IsA(node, Query))
		return true;
	if (IsA(node, FuncExpr))
	{
		FuncExpr   *func = (FuncExpr *) node;

		if (get_func_namespace(func->funcid) == get_namespace_oid("taskflow", false) &&
			InList(get_func_name(func->funcid), member_keyed_predicates))
			return list_length(func->args) < 1 || !IsMemberId(linitial(func->args)) ||
				ReadsOtherMembers((Node *) list_delete_first(list_copy(func->args)), context);
	}
	if (check_functions_in_node(node, ReadsOtherRows, context))
		return true;
	return expression_tree_walker(node, ReadsOtherMembers, context);
}

/*
 * CriteriaReadsOnlyItsMember says whether a criteria reads nothing but the
 * data of the member it is evaluated for: its row, the clock, and its own
 * groups, events and payments (the taskflow predicates given its
 * member_id).  Whether such a criteria matches a member cannot depend on
 * what happens to other members.
 */
bool
CriteriaReadsOnlyItsMember(const char *normalized)
{
	bool		has_sublinks;
	Node	   *expr = CriteriaAnalyzeNormalized(normalized, &has_sublinks);

	return !has_sublinks && !ReadsOtherMembers(expr, NULL);
}

/*
 * DayCount returns the column a days_since(column) or days_until(column)
 * call reads (its sign in *sign: -1 since, +1 until), or NULL.
 */
static char *
DayCount(Node *node, int *sign)
{
	FuncExpr   *func;
	Var		   *var;
	char	   *name;

	if (!IsA(node, FuncExpr))
		return NULL;
	func = (FuncExpr *) node;
	if (list_length(func->args) != 1 || !IsA(linitial(func->args), Var) ||
		get_func_namespace(func->funcid) != get_namespace_oid("taskflow", false))
		return NULL;
	name = get_func_name(func->funcid);
	if (strcmp(name, "days_since") == 0)
		*sign = -1;
	else if (strcmp(name, "days_until") == 0)
		*sign = 1;
	else
		return NULL;
	var = linitial_node(Var, func->args);
	if (var->varlevelsup != 0 || var->vartype != TIMESTAMPTZOID || var->varattno <= 0)
		return NULL;
	return get_attname(get_relname_relid("member", get_namespace_oid("taskflow", false)),
					   var->varattno, false);
}

/*
 * DayStart is the SQL for the start of the local day "days" days from
 * today, moved by the three-hour margin (-1 earlier, +1 later).
 */
static char *
DayStart(int64 days, int margin)
{
	return psprintf("((taskflow.clock()::date OPERATOR(pg_catalog.+) %d)::timestamptz"
					" OPERATOR(pg_catalog.%s) interval '3 hours')",
					(int) days, margin < 0 ? "-" : "+");
}

/*
 * Commuted is the comparison that holds with its two sides swapped
 * (a < b is b > a); = and others are their own.
 */
static char *
Commuted(char *opname)
{
	if (strcmp(opname, "<") == 0)
		return ">";
	if (strcmp(opname, "<=") == 0)
		return ">=";
	if (strcmp(opname, ">") == 0)
		return "<";
	if (strcmp(opname, ">=") == 0)
		return "<=";
	return opname;
}

/*
 * ComparisonHint writes the range of one "day count <op> constant" (either
 * way round), or returns NULL when the condition is not one.
 */
static char *
ComparisonHint(OpExpr *op)
{
	Node	   *left;
	Node	   *right;
	char	   *opname = get_opname(op->opno);
	char	   *column;
	Const	   *value;
	int			sign;
	int64		day;
	char	   *col;

	if (list_length(op->args) != 2 || opname == NULL)
		return NULL;
	left = linitial(op->args);
	right = lsecond(op->args);
	if (IsA(left, Const))
	{
		/* N op f(column) is f(column) op' N */
		Node	   *swap = left;

		left = right;
		right = swap;
		opname = Commuted(opname);
	}
	column = DayCount(left, &sign);
	if (column == NULL || !IsA(right, Const))
		return NULL;
	value = (Const *) right;
	if (value->constisnull || value->consttype != INT4OID ||
		Abs(DatumGetInt32(value->constvalue)) > HINT_MAX_DAYS)
		return NULL;
	/* the column's local date compared with today + day */
	day = (int64) sign * DatumGetInt32(value->constvalue);
	if (sign < 0)
		opname = Commuted(opname);	/* today - date op N: date op' today - N */
	col = psprintf("member.%s", quote_identifier(column));
	if (strcmp(opname, "=") == 0)
		return psprintf("%s OPERATOR(pg_catalog.>=) %s AND %s OPERATOR(pg_catalog.<) %s",
						col, DayStart(day, -1), col, DayStart(day + 1, 1));
	if (strcmp(opname, "<") == 0)
		return psprintf("%s OPERATOR(pg_catalog.<) %s", col, DayStart(day, 1));
	if (strcmp(opname, "<=") == 0)
		return psprintf("%s OPERATOR(pg_catalog.<) %s", col, DayStart(day + 1, 1));
	if (strcmp(opname, ">") == 0)
		return psprintf("%s OPERATOR(pg_catalog.>=) %s", col, DayStart(day + 1, -1));
	if (strcmp(opname, ">=") == 0)
		return psprintf("%s OPERATOR(pg_catalog.>=) %s", col, DayStart(day, -1));
	return NULL;
}

/*
 * CollectHints adds the hints of the conditions ANDed at the top of a
 * criteria to *hints.
 */
static void
CollectHints(Node *node, StringInfo hints)
{
	char	   *hint;

	if (is_andclause(node))
	{
		ListCell   *lc;

		foreach(lc, ((BoolExpr *) node)->args)
			CollectHints(lfirst(lc), hints);
		return;
	}
	if (!IsA(node, OpExpr) || (hint = ComparisonHint((OpExpr *) node)) == NULL)
		return;
	appendStringInfo(hints, " AND %s", hint);
}

/*
 * CriteriaIndexHint returns extra conditions (" AND ...") implied by a
 * criteria's day counts, for an entry check to add to it; "" when there
 * are none.
 */
char *
CriteriaIndexHint(const char *normalized)
{
	StringInfoData hints;
	bool		has_sublinks;

	initStringInfo(&hints);
	if (normalized != NULL)
		CollectHints(CriteriaAnalyzeNormalized(normalized, &has_sublinks), &hints);
	return hints.data;
}
