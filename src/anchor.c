/*
 * anchor.c
 *		Chains anchored on a member date (ステップ配信).
 *
 * Each member follows an occurrence of its anchor (the anchor itself, or
 * for a yearly chain this year's anniversary) and each step is due at its
 * offset from that occurrence.  On entry a member is placed at the first
 * step due today or later (or since the last entry check, if that was
 * earlier): older steps are skipped, not sent all at once.  The member's
 * anchor value is kept (chain_member.anchor_base) so a change is noticed at
 * the next entry check and handled as the chain says: restart, follow or
 * ignore.  Everything is set-based over the batch.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "anchor.h"
#include "criteria.h"
#include "preview_scope.h"
#include "preview_watch.h"
#include "privileges.h"
#include "settings.h"
#include "spi_util.h"

/*
 * Run as the owner: members who match the audience criteria, have an
 * anchor, and are not in the chain.  %s: criteria, the index ranges its
 * day counts imply (criteria_hint.c), anchor, the conditions of
 * CandidateConditions, and a preview's narrowing.
 */
static const char *candidates_format =
"SELECT pg_catalog.array_agg(x.member_id) FROM ("
" SELECT member.member_id FROM taskflow.member AS member"
"  WHERE member.member_id OPERATOR(pg_catalog.>) $2 AND (%s\n) %s"
"    AND (%s) IS NOT NULL %s %s"
"    AND NOT EXISTS (SELECT FROM taskflow.chain_member cm"
"                     WHERE cm.chain_id OPERATOR(pg_catalog.=) $1"
"                       AND cm.member_id OPERATOR(pg_catalog.=) member.member_id)"
"  ORDER BY member.member_id LIMIT $3) x";

/* the chain's zone, yearly flag, entry grace and last step's offset */
#define ANCHOR_CHAIN_CTE \
"c AS (SELECT ch.time_zone AS tz, ch.anchor_yearly AS yearly,"\
"             COALESCE(ch.entry_interval,"\
"                      pg_catalog.current_setting('taskflow.entry_interval')::interval) AS grace,"\
"             l.wait_days AS last_days, l.wait_at AS last_at"\
"        FROM taskflow.chain ch"\
"        JOIN taskflow.chain_step l ON l.chain_id OPERATOR(pg_catalog.=) ch.chain_id"\
"       WHERE ch.chain_id OPERATOR(pg_catalog.=) $1 ORDER BY l.position DESC LIMIT 1)"

/*
 * Bookkeeping: put members at the first step of their anchor occurrence
 * not due before the last entry check.  %s: the anchor expression.
 * $1 chain, $2 as_of, $3 ids, $4 chain name, $5 actor, $6 reason.
 */
static const char *enter_format =
"WITH " ANCHOR_CHAIN_CTE ","
" m AS (SELECT member.member_id, %s AS base FROM taskflow.member AS member"
"        WHERE member.member_id OPERATOR(pg_catalog.=) ANY ($3)),"
" o AS (SELECT m.member_id, m.base, c.tz, c.grace,"
"              taskflow.anchor_occurrence(m.base, c.yearly, c.last_days, c.last_at, c.tz,"
"                                         taskflow.anchor_entry_floor($2, c.grace, c.tz)) AS occ"
"         FROM m, c WHERE m.base IS NOT NULL),"
" p AS (SELECT o.member_id, o.base, o.occ, f.step_id, f.task_name,"
"              taskflow.anchor_due(o.occ, f.wait_days, f.wait_at, o.tz) AS due"
"         FROM o CROSS JOIN LATERAL ("
"              SELECT s.step_id, s.wait_days, s.wait_at, t.name AS task_name"
"                FROM taskflow.chain_step s"
"                JOIN taskflow.task t ON t.task_id OPERATOR(pg_catalog.=) s.task_id"
"               WHERE s.chain_id OPERATOR(pg_catalog.=) $1"
"                 AND taskflow.anchor_due(o.occ, s.wait_days, s.wait_at, o.tz)"
"                     OPERATOR(pg_catalog.>=) taskflow.anchor_entry_floor($2, o.grace, o.tz)"
"               ORDER BY s.position LIMIT 1) f),"
" e AS (INSERT INTO taskflow.chain_member AS cm (chain_id, member_id, step_id, iteration,"
"              state, entered_at, waiting_since, due_at, anchor_base, anchor_at)"
"       SELECT $1, p.member_id, p.step_id, 1, 'waiting', $2, $2, p.due, p.base, p.occ FROM p"
"       ON CONFLICT (chain_id, member_id) DO UPDATE"
"         SET step_id = EXCLUDED.step_id, iteration = cm.iteration OPERATOR(pg_catalog.+) 1,"
"             state = 'waiting', entered_at = EXCLUDED.entered_at,"
"             waiting_since = EXCLUDED.waiting_since, due_at = EXCLUDED.due_at,"
"             checked_at = NULL, finished_at = NULL, left_reason = NULL, rearmed = false,"
"             anchor_base = EXCLUDED.anchor_base, anchor_at = EXCLUDED.anchor_at"
"       RETURNING cm.member_id, cm.iteration, cm.step_id)"
"INSERT INTO taskflow.history (chain_id, chain_name, member_id, step_id, task_name,"
"                              iteration, event, at, actor, detail)"
"SELECT $1, $4, e.member_id, e.step_id, p.task_name, e.iteration, 'entered', $2, $5,"
"       CASE WHEN $6 IS NULL THEN '{}'::jsonb"
"            ELSE pg_catalog.jsonb_build_object('reason', $6) END"
"  FROM e JOIN p ON p.member_id OPERATOR(pg_catalog.=) e.member_id";

/*
 * members whose anchor changed since they were placed, and those waiting
 * in the chain whose anchor was removed; %s: anchor three times
 */
static const char *changed_format =
"SELECT pg_catalog.array_agg(cm.member_id) FILTER (WHERE (%s) IS NOT NULL),"
"       pg_catalog.array_agg(cm.member_id) FILTER (WHERE (%s) IS NULL"
"                                                   AND cm.state OPERATOR(pg_catalog.=) 'waiting')"
"  FROM taskflow.chain_member cm"
"  JOIN taskflow.member AS member ON member.member_id OPERATOR(pg_catalog.=) cm.member_id"
" WHERE cm.chain_id OPERATOR(pg_catalog.=) $1 AND cm.state OPERATOR(pg_catalog.=) ANY ($2)"
"   AND (%s) IS DISTINCT FROM cm.anchor_base %s";

/* follow: keep the step, recompute its due time from the new anchor */
static const char *follow_format =
"WITH " ANCHOR_CHAIN_CTE ","
" m AS (SELECT member.member_id, %s AS base FROM taskflow.member AS member"
"        WHERE member.member_id OPERATOR(pg_catalog.=) ANY ($3))"
"UPDATE taskflow.chain_member cm"
"   SET anchor_base = m.base,"
"       anchor_at = taskflow.anchor_occurrence(m.base, c.yearly, c.last_days, c.last_at, c.tz,"
"                                              taskflow.anchor_entry_floor($2, c.grace, c.tz)),"
"       due_at = taskflow.anchor_due(taskflow.anchor_occurrence(m.base, c.yearly, c.last_days,"
"                                        c.last_at, c.tz,"
"                                        taskflow.anchor_entry_floor($2, c.grace, c.tz)),"
"                                    s.wait_days, s.wait_at, c.tz)"
"  FROM m, c, taskflow.chain_step s"
" WHERE cm.chain_id OPERATOR(pg_catalog.=) $1 AND cm.member_id OPERATOR(pg_catalog.=) m.member_id"
"   AND s.step_id OPERATOR(pg_catalog.=) cm.step_id";

/*
 * Members leave, each recorded at the step it was waiting for.  $6 is the
 * reason.
 */
static const char *leave_sql =
"WITH l AS ("
" UPDATE taskflow.chain_member cm SET state = 'left', left_reason = $6, finished_at = $2,"
"        due_at = NULL, checked_at = NULL, rearmed = false"
"  WHERE cm.chain_id OPERATOR(pg_catalog.=) $1 AND cm.member_id OPERATOR(pg_catalog.=) ANY ($3)"
" RETURNING cm.member_id, cm.iteration, cm.step_id)"
"INSERT INTO taskflow.history (chain_id, chain_name, member_id, step_id, task_name,"
"                              iteration, event, at, actor, detail)"
"SELECT $1, $4, l.member_id, l.step_id, t.name, l.iteration, 'left', $2, $5,"
"       pg_catalog.jsonb_build_object('reason', $6)"
"  FROM l LEFT JOIN taskflow.chain_step s ON s.step_id OPERATOR(pg_catalog.=) l.step_id"
"  LEFT JOIN taskflow.task t ON t.task_id OPERATOR(pg_catalog.=) s.task_id";

/*
 * restart: members whose new anchor has no step left (not placed by the
 * entry statement) take it as their anchor, so it is not handled again at
 * every entry check; returns those of them waiting in the chain.  %s: the
 * anchor expression.
 */
static const char *settle_format =
"WITH s AS ("
" UPDATE taskflow.chain_member cm SET anchor_base = m.base"
"   FROM (SELECT member.member_id, %s AS base FROM taskflow.member AS member"
"          WHERE member.member_id OPERATOR(pg_catalog.=) ANY ($3)) m"
"  WHERE cm.chain_id OPERATOR(pg_catalog.=) $1 AND cm.member_id OPERATOR(pg_catalog.=) m.member_id"
"    AND cm.anchor_base IS DISTINCT FROM m.base"
" RETURNING cm.member_id, cm.state)"
"SELECT pg_catalog.array_agg(s.member_id) FILTER (WHERE s.state OPERATOR(pg_catalog.=) 'waiting')"
"  FROM s";

/* bookkeeping: next step due at its offset from the member's occurrence */
static const char *advance_sql =
"UPDATE taskflow.chain_member cm SET step_id = $9, state = 'waiting', waiting_since = $2,"
"       checked_at = NULL,"
"       due_at = (SELECT taskflow.anchor_due(cm.anchor_at, s.wait_days, s.wait_at, $8)"
"                   FROM taskflow.chain_step s WHERE s.step_id OPERATOR(pg_catalog.=) $9)"
" WHERE cm.chain_id OPERATOR(pg_catalog.=) $1 AND cm.member_id OPERATOR(pg_catalog.=) ANY ($4)";

/* bookkeeping: a yearly chain's last step done: next year's occurrence */
static const char *next_year_sql =
"WITH n AS ("
" SELECT x.member_id,"
"        taskflow.anchor_occurrence(x.anchor_base, true, l.wait_days, l.wait_at, $8,"
"            taskflow.anchor_due(x.anchor_at, l.wait_days, l.wait_at, $8)"
"            OPERATOR(pg_catalog.+) interval '1 second') AS occ"
"   FROM taskflow.chain_member x, taskflow.chain_step l"
"  WHERE x.chain_id OPERATOR(pg_catalog.=) $1 AND x.member_id OPERATOR(pg_catalog.=) ANY ($4)"
"    AND l.step_id OPERATOR(pg_catalog.=) $3),"
" r AS ("
" UPDATE taskflow.chain_member cm"
"    SET step_id = f.step_id, state = 'waiting', waiting_since = $2, checked_at = NULL,"
"        iteration = cm.iteration OPERATOR(pg_catalog.+) 1,"
"        anchor_at = n.occ,"
"        due_at = taskflow.anchor_due(n.occ, f.wait_days, f.wait_at, $8)"
"   FROM n, taskflow.chain_step f"
"  WHERE f.step_id OPERATOR(pg_catalog.=) $9 AND cm.chain_id OPERATOR(pg_catalog.=) $1"
"    AND cm.member_id OPERATOR(pg_catalog.=) n.member_id"
" RETURNING cm.member_id, cm.iteration)"
"INSERT INTO taskflow.history (chain_id, chain_name, member_id, step_id, task_name,"
"                              iteration, event, at, actor, detail)"
"SELECT $1, $5, r.member_id, $9, NULL, r.iteration, 'repeated', $2, $7,"
"       '{\"reason\": \"next year\"}'::jsonb FROM r";

/*
 * AnchorBookkeeping runs an anchor statement as the extension owner with
 * $1 chain, $2 as_of, $3 ids, $4 chain name, $5 actor, $6 reason; returns
 * the rows it processed, or with members set, the member ids it returns.
 */
static uint64
AnchorBookkeeping(TaskflowRun run, const char *sql, MemberSet ids,
				  const char *reason, MemberSet *members)
{
	Oid			types[6] = {INT4OID, TIMESTAMPTZOID, INT8ARRAYOID, TEXTOID,
		TEXTOID, TEXTOID};
	Datum		values[6];
	char		nulls[6] = "     n";
	TaskflowSavedUser saved;
	uint64		processed = 0;

	values[0] = Int32GetDatum(run->chain->chain_id);
	values[1] = TimestampTzGetDatum(run->as_of);
	values[2] = MemberSetToDatum(ids);
	values[3] = CStringGetTextDatum(run->chain->name);
	values[4] = CStringGetTextDatum(run->actor);
	if (reason)
	{
		values[5] = CStringGetTextDatum(reason);
		nulls[5] = ' ';
	}
	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	if (members)
		*members = TaskflowQueryMembers(sql, 6, types, values, nulls);
	else
		processed = TaskflowExec(sql, 6, types, values, nulls);
	TaskflowRestoreUser(&saved);
	return processed;
}

/*
 * CandidateConditions builds the owner query's extra conditions: for an
 * activation "new" chain only anchors after the chain was enabled (a date
 * anchor — birthday or a date property, local midnight — from the day it
 * was enabled on); for a chain that does not recur, only anchors recent
 * enough that a step is still ahead (the exact check is the entry
 * statement's).
 */
static char *
CandidateConditions(TaskflowRun run, const char *anchor)
{
	TaskflowChain chain = run->chain;
	int			last_days = chain->steps[chain->nsteps - 1].offset_days;
	char	   *activation = "";
	char	   *recent = "";

	if (chain->activation == 'n' && !chain->anchor_yearly)
		activation = psprintf("AND (%s) OPERATOR(pg_catalog.>=) "
							  "(SELECT CASE WHEN ch.anchor OPERATOR(pg_catalog.=) 'birthday'"
							  "              OR ch.anchor OPERATOR(pg_catalog.^@) 'properties.'"
							  "        THEN pg_catalog.date_trunc('day', ch.enabled_at AT TIME ZONE ch.time_zone)"
							  "             AT TIME ZONE ch.time_zone"
							  "        ELSE ch.enabled_at END"
							  " FROM taskflow.chain ch WHERE ch.chain_id OPERATOR(pg_catalog.=) $1)",
							  anchor);
	if (!chain->anchor_yearly)
		recent = psprintf("AND (%s) OPERATOR(pg_catalog.>=) ($4 OPERATOR(pg_catalog.-) "
						  "%s::interval OPERATOR(pg_catalog.-) "
						  "pg_catalog.make_interval(days => %d))",
						  anchor, quote_literal_cstr(chain->entry_interval),
						  last_days + 1);
	return psprintf("%s %s", activation, recent);
}

/*
 * TaskflowAnchorEntryBatch enters the next batch of members with an anchor
 * who match the audience criteria and have a step ahead; returns how many
 * were looked at (only those entered are counted as entered).
 */
int64
TaskflowAnchorEntryBatch(TaskflowRun run, TaskflowStep first)
{
	Oid			types[5] = {INT4OID, INT8OID, INT4OID, TIMESTAMPTZOID};
	Datum		values[5];
	TaskflowSavedUser saved;
	MemberSet	ids;
	char	   *anchor = run->chain->anchor_sql;
	char	   *conditions = CandidateConditions(run, anchor);
	char	   *criteria = first->criteria_sql ? first->criteria_sql : "true";

	values[0] = Int32GetDatum(run->chain->chain_id);
	values[1] = Int64GetDatum(run->entry_after);
	values[2] = Int32GetDatum(taskflow_batch_size);
	values[3] = TimestampTzGetDatum(run->as_of);
	TaskflowBecomeUser(run->chain->owner, &saved);
	if (run->entry_only)
	{
		types[4] = INT8ARRAYOID;
		values[4] = MemberSetToDatum(run->entry_only);
	}
	ids = TaskflowQueryMembers(psprintf(candidates_format, criteria,
										CriteriaIndexHint(first->criteria_sql), anchor, conditions,
										run->entry_only ? WATCH_ONLY_MEMBERS("member.member_id", 5) : ""),
							   run->entry_only ? 5 : 4, types, values, NULL);
	TaskflowRestoreUser(&saved);
	if (ids->count == 0)
		return 0;
	run->entry_after = ids->ids[ids->count - 1];
	run->counts.entered += AnchorBookkeeping(run, psprintf(enter_format, anchor), ids,
											 NULL, NULL);
	return ids->count;
}

/*
 * ChangedMembers returns the members waiting in the chain (and, when
 * finished_too, those who finished or left it) whose anchor changed to
 * another date, and the members waiting in the chain whose anchor was
 * removed.
 */
static void
ChangedMembers(TaskflowRun run, bool finished_too, MemberSet *changed,
			   MemberSet *lost)
{
	Oid			types[3] = {INT4OID, TEXTARRAYOID, INT8ARRAYOID};
	Datum		values[3];
	Datum		states[3];
	TaskflowSavedUser saved;
	char	   *anchor = run->chain->anchor_sql;
	MemberSet	only = TaskflowScoped(TaskflowWatchWrittenSince(run->chain->chain_id, 'c'));
	bool		isnull;
	Datum		d;

	if (only != NULL && only->count == 0)
	{
		/* a preview: no member (previewed) was written since the last check */
		*changed = *lost = MemberSetEmpty();
		return;
	}

	states[0] = CStringGetTextDatum("waiting");
	states[1] = CStringGetTextDatum("done");
	states[2] = CStringGetTextDatum("left");
	values[0] = Int32GetDatum(run->chain->chain_id);
	values[1] = PointerGetDatum(construct_array(states, finished_too ? 3 : 1,
												TEXTOID, -1, false, TYPALIGN_INT));
	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	if (only)
		values[2] = MemberSetToDatum(only);
	TaskflowExec(psprintf(changed_format, anchor, anchor, anchor,
						  only ? WATCH_ONLY_MEMBERS("cm.member_id", 3) : ""),
				 only ? 3 : 2, types, values, NULL);
	TaskflowRestoreUser(&saved);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	*changed = MemberSetFromDatum(d, isnull);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	*lost = MemberSetFromDatum(d, isnull);
	SPI_freetuptable(SPI_tuptable);
}

/*
 * AnchorLeave takes members out of the chain, recording the step each was
 * waiting for and why.
 */
static void
AnchorLeave(TaskflowRun run, MemberSet ids, const char *reason)
{
	if (ids->count == 0)
		return;
	run->counts.left += AnchorBookkeeping(run, leave_sql, ids, reason, NULL);
}

/*
 * TaskflowAnchorChanges handles members whose anchor date changed since
 * they were placed: "restart" puts them back at the first step of the new
 * anchor still ahead (a new iteration; also members who had finished or
 * left) — a member waiting in the chain whose new anchor has no step left
 * leaves it; "follow" keeps their step and moves its due time; "ignore"
 * does nothing.  Under every policy a member whose anchor was removed
 * leaves the chain.
 */
int64
TaskflowAnchorChanges(TaskflowRun run, TaskflowStep first)
{
	MemberSet	changed;
	MemberSet	unplaced;
	MemberSet	lost;
	char		policy = run->chain->anchor_change;
	char	   *anchor = run->chain->anchor_sql;

	ChangedMembers(run, policy == 'r', &changed, &lost);
	if (changed->count > 0 && policy == 'r')
	{
		run->counts.entered += AnchorBookkeeping(run, psprintf(enter_format, anchor),
												 changed, "anchor changed", NULL);
		AnchorBookkeeping(run, psprintf(settle_format, anchor), changed, NULL, &unplaced);
		AnchorLeave(run, unplaced, "the anchor changed and no step of the new one is left");
	}
	else if (changed->count > 0 && policy == 'f')
		AnchorBookkeeping(run, psprintf(follow_format, anchor), changed, NULL, NULL);
	AnchorLeave(run, lost, "the anchor date was removed");
	return 0;
}

/*
 * TaskflowAnchorAdvance moves members who finished a step of an anchor
 * chain on: to the next step at its offset from their anchor occurrence,
 * to next year's occurrence (yearly chains), or out (done).
 */
void
TaskflowAnchorAdvance(TaskflowRun run, TaskflowStep step, TaskflowStep next,
					  MemberSet ids)
{
	if (next)
		TaskflowBookkeeping(run, step, ids, advance_sql, run->chain->time_zone,
							next->step_id);
	else if (run->chain->anchor_yearly)
		TaskflowBookkeeping(run, step, ids, next_year_sql, run->chain->time_zone,
							run->chain->steps[0].step_id);
	else
		TaskflowFinish(run, step, ids);
}
