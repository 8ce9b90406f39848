/*
 * step.c
 *		Applying one step of a chain to a batch of members.
 *
 * Bookkeeping (member state, history, outbox) runs as the extension owner;
 * criteria and actions run as the chain's owner (see actions.c).  Every
 * statement takes the same parameters so each is written once:
 *	$1 chain_id, $2 the run's instant, $3 step_id, $4 member ids (bigint[]),
 *	$5 chain name, $6 task name, $7 actor, $8 a text (reason), $9 an integer
 *	(next step, template).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "actions.h"
#include "anchor.h"
#include "preview_scope.h"
#include "preview_watch.h"
#include "privileges.h"
#include "settings.h"
#include "spi_util.h"
#include "step.h"
#include "version.h"

#define BOOKKEEPING_NARGS 9
#define DUE_NARGS 11

/*
 * The next batch of members due at a step, locked, in (due_at, member_id)
 * order after the run's last batch of this step ($10, $11): each batch
 * starts where the previous one ended in chain_member_due_idx, instead of
 * walking again past the index entries of the members already moved on in
 * this transaction.  Returns the members to apply the step to, those who had
 * it applied in their current iteration already (possible after the chain's
 * steps were reordered), and the batch's last (due_at, member_id).  "only"
 * narrows it further.
 */
#define DUE_SQL(only) \
"WITH d AS MATERIALIZED (" \
" SELECT cm.member_id, cm.due_at, cm.iteration FROM taskflow.chain_member cm" \
"  WHERE cm.chain_id OPERATOR(pg_catalog.=) $1 AND cm.step_id OPERATOR(pg_catalog.=) $3" \
"    AND cm.state OPERATOR(pg_catalog.=) 'waiting' AND cm.due_at OPERATOR(pg_catalog.<=) $2" \
"    AND (cm.due_at, cm.member_id) OPERATOR(pg_catalog.>) ($10::timestamptz, $11::int8)" \
"    AND (cm.checked_at IS NULL OR cm.checked_at OPERATOR(pg_catalog.<) $2) " only \
"  ORDER BY cm.due_at, cm.member_id LIMIT $9" \
"  FOR UPDATE OF cm SKIP LOCKED)" \
"SELECT pg_catalog.array_agg(x.member_id) FILTER (WHERE NOT x.applied)," \
"       pg_catalog.array_agg(x.member_id) FILTER (WHERE x.applied)," \
"       (SELECT l.due_at FROM d l ORDER BY l.due_at DESC, l.member_id DESC LIMIT 1)," \
"       (SELECT l.member_id FROM d l ORDER BY l.due_at DESC, l.member_id DESC LIMIT 1)" \
"  FROM (SELECT d.member_id," \
"               EXISTS (SELECT FROM taskflow.history h" \
"                        WHERE h.chain_id OPERATOR(pg_catalog.=) $1" \
"                          AND h.member_id OPERATOR(pg_catalog.=) d.member_id" \
"                          AND h.iteration OPERATOR(pg_catalog.=) d.iteration" \
"                          AND h.step_id OPERATOR(pg_catalog.=) $3" \
"                          AND h.event OPERATOR(pg_catalog.=) 'applied') AS applied" \
"          FROM d) x"
static const char *due_sql = DUE_SQL("");

/* a scoped preview's (preview_scope.c): only the members of $4 */
static const char *due_scoped_sql = DUE_SQL(WATCH_ONLY_MEMBERS("cm.member_id", 4));

/* their generic plans (their plans do not depend on the values) */
static SPIPlanPtr due_plan = NULL;
static SPIPlanPtr due_scoped_plan = NULL;

static const char *enter_sql =
"WITH e AS ("
" INSERT INTO taskflow.chain_member AS cm (chain_id, member_id, step_id, iteration, state,"
"                                          entered_at, waiting_since, due_at)"
" SELECT $1, m, $3, 1, 'waiting', $2, $2, $2 FROM pg_catalog.unnest($4) AS m"
" ON CONFLICT (chain_id, member_id) DO UPDATE"
"   SET step_id = EXCLUDED.step_id, iteration = cm.iteration OPERATOR(pg_catalog.+) 1,"
"       state = 'waiting', entered_at = EXCLUDED.entered_at,"
"       waiting_since = EXCLUDED.waiting_since, due_at = EXCLUDED.due_at,"
"       checked_at = NULL, finished_at = NULL, left_reason = NULL, rearmed = false"
" RETURNING cm.member_id, cm.iteration)"
"INSERT INTO taskflow.history (chain_id, chain_name, member_id, step_id, task_name,"
"                              iteration, event, at, actor, detail)"
"SELECT $1, $5, e.member_id, $3, $6, e.iteration, 'entered', $2, $7, '{}'::jsonb FROM e";

static const char *pending_sql =
"WITH p AS ("
" UPDATE taskflow.chain_member cm SET state = 'pending', waiting_since = $2,"
"        due_at = NULL, checked_at = NULL"
"  WHERE cm.chain_id OPERATOR(pg_catalog.=) $1 AND cm.member_id OPERATOR(pg_catalog.=) ANY ($4)"
" RETURNING cm.member_id, cm.iteration)"
"INSERT INTO taskflow.history (chain_id, chain_name, member_id, step_id, task_name,"
"                              iteration, event, at, actor, detail)"
"SELECT $1, $5, p.member_id, $3, $6, p.iteration, 'pending', $2, $7, '{}'::jsonb FROM p";

static const char *checked_sql =
"UPDATE taskflow.chain_member cm SET checked_at = $2"
" WHERE cm.chain_id OPERATOR(pg_catalog.=) $1 AND cm.member_id OPERATOR(pg_catalog.=) ANY ($4)";

/* %s is the history event ('left' or 'cancelled'), $8 the reason */
static const char *leave_sql_format =
"WITH l AS ("
" UPDATE taskflow.chain_member cm SET state = 'left', left_reason = $8, finished_at = $2,"
"        due_at = NULL, checked_at = NULL, rearmed = false"
"  WHERE cm.chain_id OPERATOR(pg_catalog.=) $1 AND cm.member_id OPERATOR(pg_catalog.=) ANY ($4)"
" RETURNING cm.member_id, cm.iteration)"
"INSERT INTO taskflow.history (chain_id, chain_name, member_id, step_id, task_name,"
"                              iteration, event, at, actor, detail)"
"SELECT $1, $5, l.member_id, $3, $6, l.iteration, '%s', $2, $7,"
"       pg_catalog.jsonb_build_object('reason', $8) FROM l";

/* $8 is the reason */
static const char *skipped_sql =
"INSERT INTO taskflow.history (chain_id, chain_name, member_id, step_id, task_name,"
"                              iteration, event, at, actor, detail)"
"SELECT $1, $5, cm.member_id, $3, $6, cm.iteration, 'skipped', $2, $7,"
"       pg_catalog.jsonb_build_object('reason', $8)"
"  FROM taskflow.chain_member cm"
" WHERE cm.chain_id OPERATOR(pg_catalog.=) $1 AND cm.member_id OPERATOR(pg_catalog.=) ANY ($4)";

/* $8 is the history event ('applied' or 'skipped') */
static const char *history_sql =
"INSERT INTO taskflow.history (chain_id, chain_name, member_id, step_id, task_name,"
"                              iteration, event, at, actor, detail)"
"SELECT $1, $5, cm.member_id, $3, $6, cm.iteration, $8, $2, $7, '{}'::jsonb"
"  FROM taskflow.chain_member cm"
" WHERE cm.chain_id OPERATOR(pg_catalog.=) $1 AND cm.member_id OPERATOR(pg_catalog.=) ANY ($4)";

/*
 * The chain's time zone (quiet hours) and test flag go with each message.
 * _render_message() is inlined: each of the three columns is one
 * render_member() call.  recipient is the member's address on the channel
 * (its e-mail, or the channel's recipient property); a message without
 * one (no_recipient) is cancelled as it is queued, for the reason given.
 */
#define OUTBOX_SQL(recipient, no_recipient, reason) \
"INSERT INTO taskflow.outbox (chain_id, step_id, member_id, iteration, template_id, channel," \
"       recipient, sender_name, sender_address, reply_to, subject, body_text, body_html," \
"       transactional, state, state_reason, created_at, not_before, time_zone, is_test)" \
"SELECT $1, $3, m.member_id, cm.iteration, t.template_id, t.channel, " recipient "," \
"       t.sender_name, t.sender_address, t.reply_to," \
"       (taskflow._render_message(t, m, ch.kind)).subject," \
"       (taskflow._render_message(t, m, ch.kind)).body_text," \
"       (taskflow._render_message(t, m, ch.kind)).body_html," \
"       t.transactional," \
"       CASE WHEN " no_recipient " THEN 'cancelled'" \
"            WHEN m.unsubscribed_at IS NOT NULL AND NOT t.transactional THEN 'cancelled'" \
"            ELSE 'pending' END," \
"       CASE WHEN " no_recipient " THEN " reason \
"            WHEN m.unsubscribed_at IS NOT NULL AND NOT t.transactional" \
"            THEN 'member unsubscribed' END," \
"       $2, $2, c.time_zone, c.is_test" \
"  FROM taskflow.member m" \
"  JOIN taskflow.chain_member cm ON cm.chain_id OPERATOR(pg_catalog.=) $1" \
"                               AND cm.member_id OPERATOR(pg_catalog.=) m.member_id" \
"  JOIN taskflow.chain c ON c.chain_id OPERATOR(pg_catalog.=) $1" \
"  JOIN taskflow.template t ON t.template_id OPERATOR(pg_catalog.=) $9" \
"  JOIN taskflow.channel ch ON ch.name OPERATOR(pg_catalog.=) t.channel" \
" WHERE m.member_id OPERATOR(pg_catalog.=) ANY ($4)" \
" ORDER BY m.member_id"

/* the member's address on the channel: its e-mail or the channel's property */
#define CHANNEL_RECIPIENT \
"(CASE WHEN ch.recipient_property IS NULL THEN m.email" \
"      ELSE NULLIF(pg_catalog.btrim(m.properties OPERATOR(pg_catalog.->>) ch.recipient_property), '') END)"

static const char *outbox_sql =
OUTBOX_SQL(CHANNEL_RECIPIENT,
		   CHANNEL_RECIPIENT " IS NULL AND (ch.kind OPERATOR(pg_catalog.=) 'smtp'"
		   " OR ch.recipient_property IS NOT NULL)",
		   "CASE WHEN ch.recipient_property IS NULL THEN 'member has no e-mail address'"
		   " ELSE 'member has no ' OPERATOR(pg_catalog.||) ch.recipient_property END");

/* a database still at 0.1: its channels have no recipient property */
static const char *outbox_sql_0_1 =
OUTBOX_SQL("m.email", "m.email IS NULL AND ch.kind OPERATOR(pg_catalog.=) 'smtp'",
		   "'member has no e-mail address'");

/* $9 is the next step */
static const char *advance_sql =
"UPDATE taskflow.chain_member cm SET step_id = $9, state = 'waiting', waiting_since = $2,"
"       checked_at = NULL,"
"       due_at = (SELECT taskflow.wait_until($2, s.wait_kind, s.wait_after, s.wait_days,"
"                                            s.wait_at, $8)"
"                   FROM taskflow.chain_step s WHERE s.step_id OPERATOR(pg_catalog.=) $9)"
" WHERE cm.chain_id OPERATOR(pg_catalog.=) $1 AND cm.member_id OPERATOR(pg_catalog.=) ANY ($4)";

/* $9 is the first step */
static const char *repeat_sql =
"WITH r AS ("
" UPDATE taskflow.chain_member cm SET step_id = $9, state = 'waiting', waiting_since = $2,"
"        iteration = cm.iteration OPERATOR(pg_catalog.+) 1, checked_at = NULL,"
"        due_at = (SELECT taskflow.wait_until($2, c.repeat_wait_kind, c.repeat_wait_after,"
"                                             c.repeat_wait_days, c.repeat_wait_at, c.time_zone)"
"                    FROM taskflow.chain c WHERE c.chain_id OPERATOR(pg_catalog.=) $1)"
"  WHERE cm.chain_id OPERATOR(pg_catalog.=) $1 AND cm.member_id OPERATOR(pg_catalog.=) ANY ($4)"
" RETURNING cm.member_id, cm.iteration)"
"INSERT INTO taskflow.history (chain_id, chain_name, member_id, step_id, task_name,"
"                              iteration, event, at, actor, detail)"
"SELECT $1, $5, r.member_id, $9, NULL, r.iteration, 'repeated', $2, $7, '{}'::jsonb FROM r";

static const char *finish_sql =
"WITH f AS ("
" UPDATE taskflow.chain_member cm SET step_id = NULL, state = 'done', finished_at = $2,"
"        due_at = NULL, checked_at = NULL, rearmed = false"
"  WHERE cm.chain_id OPERATOR(pg_catalog.=) $1 AND cm.member_id OPERATOR(pg_catalog.=) ANY ($4)"
" RETURNING cm.member_id, cm.iteration)"
"INSERT INTO taskflow.history (chain_id, chain_name, member_id, step_id, task_name,"
"                              iteration, event, at, actor, detail)"
"SELECT $1, $5, f.member_id, $3, $6, f.iteration, 'finished', $2, $7, '{}'::jsonb FROM f";

static const char *matching_sql =
"SELECT pg_catalog.array_agg(member.member_id) FROM taskflow.member AS member"
" WHERE member.member_id OPERATOR(pg_catalog.=) ANY ($1) AND (%s\n)";

/*
 * OutboxSql is the statement that queues a step's messages, for the
 * version of taskflow's SQL objects installed.
 */
static const char *
OutboxSql(void)
{
	char	   *version = TaskflowInstalledVersion();

	return version && strcmp(version, "0.1") == 0 ? outbox_sql_0_1 : outbox_sql;
}

/*
 * TaskflowBookkeeping runs one of the statements above as the extension owner with
 * the standard parameters; NULL text/int arguments become SQL NULLs.
 */
uint64
TaskflowBookkeeping(TaskflowRun run, TaskflowStep step, MemberSet ids,
			const char *sql, const char *text8, int int9)
{
	Oid			types[BOOKKEEPING_NARGS] = {INT4OID, TIMESTAMPTZOID, INT4OID,
		INT8ARRAYOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID};
	Datum		values[BOOKKEEPING_NARGS];
	char		nulls[BOOKKEEPING_NARGS];
	TaskflowSavedUser saved;
	uint64		processed;

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int32GetDatum(run->chain->chain_id);
	values[1] = TimestampTzGetDatum(run->as_of);
	values[2] = Int32GetDatum(step ? step->step_id : 0);
	nulls[2] = step ? ' ' : 'n';
	values[3] = ids ? MemberSetToDatum(ids) : (Datum) 0;
	nulls[3] = ids ? ' ' : 'n';
	values[4] = CStringGetTextDatum(run->chain->name);
	values[5] = step ? CStringGetTextDatum(step->task_name) : (Datum) 0;
	nulls[5] = step ? ' ' : 'n';
	values[6] = CStringGetTextDatum(run->actor);
	values[7] = text8 ? CStringGetTextDatum(text8) : (Datum) 0;
	nulls[7] = text8 ? ' ' : 'n';
	values[8] = Int32GetDatum(int9);
	nulls[8] = int9 ? ' ' : 'n';

	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	processed = TaskflowExec(sql, BOOKKEEPING_NARGS, types, values, nulls);
	TaskflowRestoreUser(&saved);
	return processed;
}

/*
 * TaskflowMatching returns the members of ids that match a criteria
 * expression, evaluated as the chain's owner.
 */
MemberSet
TaskflowMatching(TaskflowRun run, const char *criteria_sql, MemberSet ids)
{
	Oid			types[1] = {INT8ARRAYOID};
	Datum		values[1];
	TaskflowSavedUser saved;
	MemberSet	matched;

	if (criteria_sql == NULL || ids->count == 0)
		return ids;
	values[0] = MemberSetToDatum(ids);
	TaskflowBecomeUser(run->chain->owner, &saved);
	matched = TaskflowQueryMembers(psprintf(matching_sql, criteria_sql),
								   1, types, values, NULL);
	TaskflowRestoreUser(&saved);
	return matched;
}

/*
 * NextStep returns the step after the given one, or NULL after the last.
 */
static TaskflowStep
NextStep(TaskflowRun run, TaskflowStep step)
{
	int			i;

	for (i = 0; i < run->chain->nsteps - 1; i++)
		if (run->chain->steps[i].step_id == step->step_id)
			return &run->chain->steps[i + 1];
	return NULL;
}

/*
 * TaskflowFinish takes members who finished the last step out (done).
 */
void
TaskflowFinish(TaskflowRun run, TaskflowStep step, MemberSet ids)
{
	TaskflowBookkeeping(run, step, ids, finish_sql, NULL, 0);
}

/*
 * Advance moves members who finished a step on: to the next step with its
 * wait counted from now, back to task 1 (repeat), or out (done); anchor
 * chains count from each member's anchor instead (anchor.c).
 */
static void
Advance(TaskflowRun run, TaskflowStep step, MemberSet ids)
{
	TaskflowStep next = NextStep(run, step);

	if (run->chain->anchor_sql)
		TaskflowAnchorAdvance(run, step, next, ids);
	else if (next)
		TaskflowBookkeeping(run, step, ids, advance_sql, run->chain->time_zone,
							next->step_id);
	else if (run->chain->repeat)
		TaskflowBookkeeping(run, step, ids, repeat_sql, NULL,
							run->chain->steps[0].step_id);
	else
		TaskflowFinish(run, step, ids);
}

/*
 * TaskflowApplyStep applies a step to members: its actions (as the owner),
 * its history rows, its messages, then moves the members on — all in the
 * caller's transaction, so they commit together or not at all.
 */
void
TaskflowApplyStep(TaskflowRun run, TaskflowStep step, MemberSet ids)
{
	if (ids->count == 0)
		return;
	TaskflowRunActions(run->chain, step, ids, run->as_of);
	TaskflowBookkeeping(run, step, ids, history_sql, "applied", 0);
	if (step->template_id != 0)
		TaskflowBookkeeping(run, step, ids, OutboxSql(), NULL, step->template_id);
	Advance(run, step, ids);
	run->counts.applied += ids->count;
}

/*
 * TaskflowSkipStep moves members past a step without applying it (an
 * operator's "skip").
 */
void
TaskflowSkipStep(TaskflowRun run, TaskflowStep step, MemberSet ids)
{
	if (ids->count == 0)
		return;
	TaskflowBookkeeping(run, step, ids, history_sql, "skipped", 0);
	Advance(run, step, ids);
}

/*
 * TaskflowLeaveChain takes members out of the chain, recording why.
 */
void
TaskflowLeaveChain(TaskflowRun run, TaskflowStep step, MemberSet ids,
				   const char *event, const char *reason)
{
	if (ids->count == 0)
		return;
	TaskflowBookkeeping(run, step, ids, psprintf(leave_sql_format, event), reason, 0);
	run->counts.left += ids->count;
}

/*
 * TaskflowHandleMatched does what a step does to members who match it:
 * apply it (auto) or put them on the pending list (manual).
 */
void
TaskflowHandleMatched(TaskflowRun run, TaskflowStep step, MemberSet ids)
{
	if (ids->count == 0)
		return;
	if (step->manual)
	{
		TaskflowBookkeeping(run, step, ids, pending_sql, NULL, 0);
		run->counts.pending += ids->count;
	}
	else
		TaskflowApplyStep(run, step, ids);
}

/*
 * TaskflowEnterMembers puts members at the chain's first step, due now, in
 * a new iteration when they were in the chain before.
 */
void
TaskflowEnterMembers(TaskflowRun run, MemberSet ids)
{
	if (ids->count == 0)
		return;
	TaskflowBookkeeping(run, &run->chain->steps[0], ids, enter_sql, NULL, 0);
	run->counts.entered += ids->count;
}

/*
 * SkipAlreadyApplied moves on, without applying the step again, members
 * who had it applied in their current iteration (possible after the
 * chain's steps were reordered: the step they reach next may be one they
 * already had).
 */
static void
SkipAlreadyApplied(TaskflowRun run, TaskflowStep step, MemberSet already)
{
	if (already->count == 0)
		return;
	TaskflowBookkeeping(run, step, already, skipped_sql,
				"already applied in this iteration (the chain's steps were reordered)", 0);
	Advance(run, step, already);
}

/*
 * TaskflowRunDueBatch takes the next batch of members due at a step
 * (locking them, skipping any an operator holds), re-checks the task's
 * criteria, and applies the step; returns how many members it took.
 * run->due_after_at / due_after_id hold where the previous batch of this
 * step ended (TaskflowResetDueBatches before a step's first batch).
 */
int64
TaskflowRunDueBatch(TaskflowRun run, TaskflowStep step)
{
	MemberSet	candidates;
	MemberSet	already;
	MemberSet	matched;
	MemberSet	mismatched;
	TaskflowSavedUser saved;
	Oid			types[DUE_NARGS] = {INT4OID, TIMESTAMPTZOID, INT4OID,
		INT8ARRAYOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID,
		TIMESTAMPTZOID, INT8OID};
	Datum		values[DUE_NARGS];
	char		nulls[DUE_NARGS] = "   nnnnn   ";
	HeapTuple	row;
	TupleDesc	desc;
	Datum		d;
	bool		isnull;
	MemberSet	scope = TaskflowPreviewScope();

	run->last_taken = NO_MEMBER;		/* none yet, if the due query fails */
	values[0] = Int32GetDatum(run->chain->chain_id);
	values[1] = TimestampTzGetDatum(run->as_of);
	values[2] = Int32GetDatum(step->step_id);
	values[8] = Int32GetDatum(run->batch_limit > 0 ? run->batch_limit : taskflow_batch_size);
	values[9] = TimestampTzGetDatum(run->due_after_at);
	values[10] = Int64GetDatum(run->due_after_id);
	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	if (scope)
	{
		values[3] = MemberSetToDatum(scope);
		nulls[3] = ' ';
		TaskflowExecSaved(&due_scoped_plan, due_scoped_sql, DUE_NARGS, types, values, nulls);
	}
	else
		TaskflowExecSaved(&due_plan, due_sql, DUE_NARGS, types, values, nulls);
	TaskflowRestoreUser(&saved);
	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	d = SPI_getbinval(row, desc, 1, &isnull);
	candidates = MemberSetFromDatum(d, isnull);
	d = SPI_getbinval(row, desc, 2, &isnull);
	already = MemberSetFromDatum(d, isnull);
	if (candidates->count + already->count == 0)
	{
		SPI_freetuptable(SPI_tuptable);
		return 0;
	}
	run->due_after_at = DatumGetTimestampTz(SPI_getbinval(row, desc, 3, &isnull));
	run->due_after_id = DatumGetInt64(SPI_getbinval(row, desc, 4, &isnull));
	SPI_freetuptable(SPI_tuptable);
	/* kept if the batch fails: with a limit of one, the member it fails for */
	run->last_taken = candidates->count > 0 ? candidates->ids[0] : already->ids[0];

	SkipAlreadyApplied(run, step, already);
	matched = TaskflowMatching(run, step->criteria_sql, candidates);
	mismatched = MemberSetMinus(candidates, matched);
	if (step->leave_on_mismatch)
		TaskflowLeaveChain(run, step, mismatched, "left",
						   psprintf("no longer matches criteria \"%s\"",
									step->criteria_name));
	else if (mismatched->count > 0)
		TaskflowBookkeeping(run, step, mismatched, checked_sql, NULL, 0);
	TaskflowHandleMatched(run, step, matched);
	return candidates->count + already->count;
}

/*
 * TaskflowResetDueBatches makes the next TaskflowRunDueBatch start from a
 * step's first due member.
 */
void
TaskflowResetDueBatches(TaskflowRun run)
{
	run->due_after_at = DT_NOBEGIN;
	run->due_after_id = PG_INT64_MIN;
}
