/*
 * entry.c
 *		Entering a chain: when the first task's schedule is due, members who
 *		match its criteria and may (re-)enter are put at step 1 and the step
 *		is applied to them at once, in batches.
 *
 * Re-entry of members who finished or left: never; rematch (only after an
 * entry check at which they did not match — they are then "re-armed");
 * cooldown (once the cooldown interval since they finished has passed).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "anchor.h"
#include "criteria.h"
#include "engine.h"
#include "entry.h"
#include "isolate.h"
#include "preview_scope.h"
#include "preview_watch.h"
#include "privileges.h"
#include "settings.h"
#include "spi_util.h"

static const char *entry_slot_sql =
"SELECT taskflow._entry_slot(c, $2) FROM taskflow.chain c"
" WHERE c.chain_id OPERATOR(pg_catalog.=) $1";

static const char *entered_slot_sql =
"UPDATE taskflow.chain c SET last_entry_at = $2"
" WHERE c.chain_id OPERATOR(pg_catalog.=) $1";

/* their generic plans (run at every run of every chain) */
static SPIPlanPtr entry_slot_plan = NULL;
static SPIPlanPtr entered_slot_plan = NULL;

/*
 * run as the owner: %s is the criteria, the index ranges its day counts
 * imply (criteria_hint.c), a preview's narrowing (preview_watch.c), then
 * the re-entry condition
 */
static const char *candidates_format =
"SELECT pg_catalog.array_agg(x.member_id) FROM ("
" SELECT member.member_id FROM taskflow.member AS member"
"  WHERE member.member_id OPERATOR(pg_catalog.>) $2 %s AND (%s\n) %s %s"
"    AND NOT EXISTS (SELECT FROM taskflow.chain_member cm"
"                     WHERE cm.chain_id OPERATOR(pg_catalog.=) $1"
"                       AND cm.member_id OPERATOR(pg_catalog.=) member.member_id"
"                       AND NOT (%s))"
"  ORDER BY member.member_id LIMIT $3) x"
" WHERE $4 IS NOT NULL";

/*
 * run as the owner: members who finished or left and no longer match.  The
 * criteria is evaluated in a subquery over the member alone, so its
 * unqualified columns (member_id) cannot clash with chain_member's.
 */
static const char *rearm_candidates_format =
"SELECT pg_catalog.array_agg(cm.member_id) FROM taskflow.chain_member cm"
" WHERE cm.chain_id OPERATOR(pg_catalog.=) $1"
"   AND cm.state OPERATOR(pg_catalog.=) ANY (ARRAY['done', 'left']) AND NOT cm.rearmed"
"   AND NOT EXISTS (SELECT FROM taskflow.member AS member"
"                    WHERE member.member_id OPERATOR(pg_catalog.=) cm.member_id"
"                      AND (%s\n)) %s";

/* the member ids an entry batch could take, whatever the criteria */
static const char *entry_range_sql =
"SELECT pg_catalog.min(member.member_id), pg_catalog.max(member.member_id)"
"  FROM taskflow.member AS member"
" WHERE member.member_id OPERATOR(pg_catalog.>) $1"
"   AND ($2 IS NULL OR member.member_id OPERATOR(pg_catalog.<=) $2)"
"   AND ($3 IS NULL OR member.member_id OPERATOR(pg_catalog.=) ANY ($3))";

/* whether member $2 may enter chain $1 ($3 unused, $4 the instant) */
static const char *eligible_format =
"SELECT NOT EXISTS (SELECT FROM taskflow.chain_member cm"
"                    WHERE cm.chain_id OPERATOR(pg_catalog.=) $1"
"                      AND cm.member_id OPERATOR(pg_catalog.=) $2 AND NOT (%s))"
"   AND $3 IS NOT NULL";

static const char *rearm_sql =
"UPDATE taskflow.chain_member cm SET rearmed = true"
" WHERE cm.chain_id OPERATOR(pg_catalog.=) $1 AND cm.member_id OPERATOR(pg_catalog.=) ANY ($2)";

/*
 * ReentryCondition is the SQL condition under which a member already in
 * the chain's state table (alias cm) may enter again.
 */
static char *
ReentryCondition(TaskflowChain chain)
{
	switch (chain->reentry)
	{
		case 'r':
			return "cm.state OPERATOR(pg_catalog.=) ANY (ARRAY['done', 'left']) AND cm.rearmed";
		case 'c':
			return psprintf("cm.state OPERATOR(pg_catalog.=) ANY (ARRAY['done', 'left'])"
							" AND cm.finished_at OPERATOR(pg_catalog.+) %s::interval"
							" OPERATOR(pg_catalog.<=) $4",
							quote_literal_cstr(chain->reentry_cooldown));
		default:
			return "false";
	}
}

/*
 * CriteriaOrTrue is the first task's criteria, or "true" for a task that
 * targets everyone.
 */
static const char *
CriteriaOrTrue(TaskflowRun run)
{
	return run->chain->steps[0].criteria_sql ? run->chain->steps[0].criteria_sql : "true";
}

/*
 * EntryUpperBound is the candidates query's condition that keeps it to the
 * members up to run->entry_upto, while a failing entry batch is narrowed
 * down (isolate.c); empty otherwise.
 */
static const char *
EntryUpperBound(TaskflowRun run)
{
	if (!run->entry_bounded)
		return "";
	return psprintf("AND member.member_id OPERATOR(pg_catalog.<=) " INT64_FORMAT,
					run->entry_upto);
}

/*
 * TaskflowEntryRange finds the first and last member ids an entry batch
 * could take (after run->entry_after, up to run->entry_upto when bounded,
 * among run->entry_only when set), whatever the criteria; false when there
 * is none.
 */
bool
TaskflowEntryRange(TaskflowRun run, int64 *first, int64 *last)
{
	Oid			types[3] = {INT8OID, INT8OID, INT8ARRAYOID};
	Datum		values[3];
	char		nulls[3] = {' ', run->entry_bounded ? ' ' : 'n', run->entry_only ? ' ' : 'n'};
	TaskflowSavedUser saved;
	bool		isnull;
	bool		found;

	values[0] = Int64GetDatum(run->entry_after);
	values[1] = Int64GetDatum(run->entry_upto);
	values[2] = run->entry_only ? MemberSetToDatum(run->entry_only) : (Datum) 0;
	SPI_connect();
	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	TaskflowExec(entry_range_sql, 3, types, values, nulls);
	TaskflowRestoreUser(&saved);
	*first = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	found = !isnull;
	*last = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	SPI_freetuptable(SPI_tuptable);
	SPI_finish();
	return found;
}

/*
 * TaskflowEntryEligible says whether a member may enter the chain now: it
 * is not in it, or finished or left it and may enter again.
 */
bool
TaskflowEntryEligible(TaskflowRun run, int64 member_id)
{
	Oid			types[4] = {INT4OID, INT8OID, INT4OID, TIMESTAMPTZOID};
	Datum		values[4];
	TaskflowSavedUser saved;
	bool		isnull;
	bool		eligible;

	values[0] = Int32GetDatum(run->chain->chain_id);
	values[1] = Int64GetDatum(member_id);
	values[2] = Int32GetDatum(0);
	values[3] = TimestampTzGetDatum(run->as_of);
	SPI_connect();
	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	TaskflowExec(psprintf(eligible_format, ReentryCondition(run->chain)), 4, types, values, NULL);
	TaskflowRestoreUser(&saved);
	eligible = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	return eligible;
}

/*
 * EntryBatch enters the next batch of matching members (in member id order)
 * and applies the first step to them; returns how many entered.
 */
static int64
EntryBatch(TaskflowRun run, TaskflowStep first)
{
	Oid			types[5] = {INT4OID, INT8OID, INT4OID, TIMESTAMPTZOID, INT8ARRAYOID};
	Datum		values[5];
	TaskflowSavedUser saved;
	MemberSet	ids;

	values[0] = Int32GetDatum(run->chain->chain_id);
	values[1] = Int64GetDatum(run->entry_after);
	values[2] = Int32GetDatum(run->batch_limit > 0 ? run->batch_limit : taskflow_batch_size);
	values[3] = TimestampTzGetDatum(run->as_of);
	if (run->entry_only)
		values[4] = MemberSetToDatum(run->entry_only);
	/* if the query fails, no member is known to have made it fail */
	run->last_taken = NO_MEMBER;
	TaskflowBecomeUser(run->chain->owner, &saved);
	ids = TaskflowQueryMembers(psprintf(candidates_format, EntryUpperBound(run),
										CriteriaOrTrue(run),
										CriteriaIndexHint(first->criteria_sql),
										run->entry_only ? WATCH_ONLY_MEMBERS("member.member_id", 5) : "",
										ReentryCondition(run->chain)),
							   run->entry_only ? 5 : 4, types, values, NULL);
	TaskflowRestoreUser(&saved);
	if (ids->count == 0)
		return 0;
	run->entry_after = ids->ids[ids->count - 1];
	run->last_taken = ids->ids[0];	/* kept if the batch fails (isolate.c) */
	TaskflowEnterMembers(run, ids);
	TaskflowHandleMatched(run, first, ids);
	return ids->count;
}

/*
 * Rearm marks members who finished or left and no longer match, so that
 * they enter again when they match again (re-entry "rematch").
 */
static int64
Rearm(TaskflowRun run, TaskflowStep first)
{
	Oid			types[2] = {INT4OID, INT8ARRAYOID};
	Datum		values[2];
	TaskflowSavedUser saved;
	MemberSet	ids;
	MemberSet	scope = TaskflowPreviewScope();

	values[0] = Int32GetDatum(run->chain->chain_id);
	if (scope)
		values[1] = MemberSetToDatum(scope);
	TaskflowBecomeUser(run->chain->owner, &saved);
	ids = TaskflowQueryMembers(psprintf(rearm_candidates_format, CriteriaOrTrue(run),
										scope ? WATCH_ONLY_MEMBERS("cm.member_id", 2) : ""),
							   scope ? 2 : 1, types, values, NULL);
	TaskflowRestoreUser(&saved);
	if (ids->count > 0)
	{
		values[1] = MemberSetToDatum(ids);
		TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
		TaskflowExec(rearm_sql, 2, types, values, NULL);
		TaskflowRestoreUser(&saved);
	}
	return 0;
}

/*
 * ChainIdAndInstant runs a statement taking $1 chain id and $2 the run's
 * instant as the extension owner, with its saved plan.
 */
static void
ChainIdAndInstant(TaskflowRun run, SPIPlanPtr *plan, const char *sql)
{
	Oid			types[2] = {INT4OID, TIMESTAMPTZOID};
	Datum		values[2];
	TaskflowSavedUser saved;

	values[0] = Int32GetDatum(run->chain->chain_id);
	values[1] = TimestampTzGetDatum(run->as_of);
	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	TaskflowExecSaved(plan, sql, 2, types, values, NULL);
	TaskflowRestoreUser(&saved);
}

/*
 * TaskflowRunEntries enters members if the chain's schedule is due as of
 * the run's instant; false if a batch failed (the slot is then retried).
 */
bool
TaskflowRunEntries(TaskflowRun run, TaskflowCounts counts)
{
	bool		isnull;

	ChainIdAndInstant(run, &entry_slot_plan, entry_slot_sql);
	(void) SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	SPI_freetuptable(SPI_tuptable);
	if (isnull)
		return true;
	if (run->chain->reentry == 'r' &&
		!TaskflowRunBatches(run, Rearm, &run->chain->steps[0], counts))
		return false;
	if (run->chain->anchor_sql &&
		!TaskflowRunBatches(run, TaskflowAnchorChanges, &run->chain->steps[0], counts))
		return false;
	run->entry_after = PG_INT64_MIN;
	/*
	 * a preview looks only at the members written since the last check when
	 * nothing else can make a member a candidate: a criteria on the member
	 * row alone, and no cooldown (it ends with time)
	 */
	run->entry_only = (run->chain->anchor_sql || run->chain->reentry != 'c') &&
		TaskflowWatchTimeless(CriteriaOrTrue(run))
		? TaskflowWatchWrittenSince(run->chain->chain_id, 'e') : NULL;
	/* and a preview of a few members looks only at them (preview_scope.c) */
	run->entry_only = TaskflowScoped(run->entry_only);
	/* (a preview with no member written since the last check has none) */
	if (run->entry_only == NULL || run->entry_only->count > 0)
	{
		if (run->chain->anchor_sql
			? !TaskflowRunBatches(run, TaskflowAnchorEntryBatch, &run->chain->steps[0], counts)
			: !TaskflowRunIsolated(run, EntryBatch, &run->chain->steps[0], counts, true))
			return false;
	}
	/* the latest slot is at or before as_of, so any later one is after it */
	ChainIdAndInstant(run, &entered_slot_plan, entered_slot_sql);
	return true;
}
