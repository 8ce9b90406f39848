/*
 * isolate.c
 *		A step's due batches, with the members a failing batch fails for
 *		found and set aside so the others go on.
 *
 * A batch applies a step to many members in a few statements, all or
 * nothing.  When one member makes it fail (its data breaks a constraint of
 * the application's table, a trigger or an action refuses it), retrying
 * the same batch would fail forever and hold up every other member of the
 * step.  So a batch that fails with an error that is a member's own — a
 * data exception, an integrity violation, an error raised by a trigger or
 * an action: SQLSTATE classes 21, 22, 23, 2F, 38, 39, 44, P0 — is split:
 * the limit is halved and the same members taken again, until a batch of
 * one member fails.  That member is set aside: its step is tried again
 * after 10 minutes, doubled at each failure at that step (at most a day),
 * until it succeeds; each failure is kept in taskflow.chain_error with its
 * member_id, and explain() tells it.  Nothing is lost: the member stays at
 * its step, and the others go on.  Any other error (a missing column, a
 * permission, a timeout, a deadlock, out of memory) is the chain's, as
 * before: the batch is rolled back, the error recorded, the chain retried
 * later and paused after pause_after_failures failing runs.  A failing
 * batch costs about twice its work; a step with no failure, nothing more.
 * An entry check whose candidates query fails (the first task's criteria
 * raised for a member, which one unknown) is narrowed by member id
 * instead.  After MAX_SET_ASIDE members set aside in one run of a unit,
 * the next failure is the chain's.  (In a database still at 0.1, whose
 * chain_error cannot name the member, every failure is the chain's, as it
 * was in 0.1.)
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "engine.h"
#include "entry.h"
#include "isolate.h"
#include "privileges.h"
#include "settings.h"
#include "spi_util.h"
#include "version.h"

/*
 * Sets the member's step aside: due again after 10 minutes doubled at each
 * failure at this step so far (at most a day), its failures there counted
 * from the errors kept since it reached the step.  Returns that count,
 * this failure included.
 */
static const char *set_aside_sql =
"WITH f AS ("
"  SELECT pg_catalog.count(e.error_id) OPERATOR(pg_catalog.+) 1 AS failures"
"    FROM taskflow.chain_member cm"
"    LEFT JOIN taskflow.chain_error e"
"      ON e.chain_id OPERATOR(pg_catalog.=) cm.chain_id"
"     AND e.member_id OPERATOR(pg_catalog.=) cm.member_id"
"     AND e.step_id OPERATOR(pg_catalog.=) $3"
"     AND e.at OPERATOR(pg_catalog.>=) cm.waiting_since"
"   WHERE cm.chain_id OPERATOR(pg_catalog.=) $1 AND cm.member_id OPERATOR(pg_catalog.=) $2)"
"UPDATE taskflow.chain_member cm"
"   SET due_at = $4 OPERATOR(pg_catalog.+) LEAST(interval '1 day',"
"                interval '10 minutes' OPERATOR(pg_catalog.*)"
"                pg_catalog.power(2, LEAST(f.failures OPERATOR(pg_catalog.-) 1, 10)))"
"  FROM f"
" WHERE cm.chain_id OPERATOR(pg_catalog.=) $1 AND cm.member_id OPERATOR(pg_catalog.=) $2"
" RETURNING f.failures";

/* halvings of the member ids of a failing entry batch, at most */
#define MAX_NARROWING 64
/* members set aside in one run of a unit before it is the chain's failure */
#define MAX_SET_ASIDE 100

static const char *member_error_sql =
"INSERT INTO taskflow.chain_error (chain_id, step_id, at, sqlstate, message, detail, hint,"
"                                  context, member_id)"
"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/*
 * MemberSpecific says whether an error can be one member's own: caused by
 * its data, not by the chain's definition or the server's state.
 */
static bool
MemberSpecific(ErrorData *edata)
{
	static const char *const classes[] = {"21", "22", "23", "2F", "38", "39", "44", "P0"};
	const char *state = unpack_sql_state(edata->sqlerrcode);

	for (int i = 0; i < lengthof(classes); i++)
		if (strncmp(state, classes[i], 2) == 0)
			return true;
	return false;
}

/*
 * SetAside postpones a member's step (see set_aside_sql), entering it at
 * the first step first if the entry batch failed for it; returns its
 * failures at the step.
 */
static int64
SetAside(TaskflowRun run, TaskflowStep step, int64 member_id, bool entering)
{
	Oid			types[4] = {INT4OID, INT8OID, INT4OID, TIMESTAMPTZOID};
	Datum		values[4];
	TaskflowSavedUser saved;
	bool		isnull;
	int64		failures;

	values[0] = Int32GetDatum(run->chain->chain_id);
	values[1] = Int64GetDatum(member_id);
	values[2] = Int32GetDatum(step->step_id);
	values[3] = TimestampTzGetDatum(run->as_of);
	SPI_connect();
	/* a member the entry batch failed for enters, due at the first step */
	if (entering)
		TaskflowEnterMembers(run, MemberSetFromIds(&member_id, 1));
	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	if (TaskflowExec(set_aside_sql, 4, types, values, NULL) != 1)
		elog(ERROR, "taskflow: member " INT64_FORMAT " of chain %d is not in it",
			 member_id, run->chain->chain_id);
	failures = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	TaskflowRestoreUser(&saved);
	SPI_finish();
	return failures;
}

/*
 * RecordMemberError keeps a member's own failure in taskflow.chain_error;
 * the chain's failure count is not touched.
 */
static void
RecordMemberError(TaskflowRun run, TaskflowStep step, int64 member_id,
				  ErrorData *edata, int64 failures)
{
	Oid			types[9] = {INT4OID, INT4OID, TIMESTAMPTZOID, TEXTOID, TEXTOID,
		TEXTOID, TEXTOID, TEXTOID, INT8OID};
	Datum		values[9];
	char		nulls[9] = "         ";
	const char *message = edata->message ? edata->message : "error";
	TaskflowSavedUser saved;

	TaskflowErrorRow(run, step, edata, values, nulls);
	values[8] = Int64GetDatum(member_id);
	SPI_connect();
	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	TaskflowExec(member_error_sql, 9, types, values, nulls);
	TaskflowRestoreUser(&saved);
	SPI_finish();
	ereport(WARNING,
			(errmsg("taskflow: chain \"%s\": task \"%s\" failed for member " INT64_FORMAT ": %s",
					run->chain->name, step->task_name, member_id, message),
			 errdetail("The member's step is tried again later (failure %lld at this step); the other members go on.",
					   (long long) failures)));
}

/*
 * IsolateMember sets aside the member a batch of one failed for and keeps
 * the failure as its own.
 */
static void
IsolateMember(TaskflowRun run, TaskflowStep step, TaskflowCounts total,
			  bool entering, int64 member_id, ErrorData *edata)
{
	int64		failures;

	memset(&run->counts, 0, sizeof(run->counts));
	failures = SetAside(run, step, member_id, entering);
	total->entered += run->counts.entered;
	total->errors++;
	RecordMemberError(run, step, member_id, edata, failures);
}

/*
 * NarrowEntries keeps the entry batches to the lower half of the members
 * they could take after an entry batch's candidates query failed, the
 * bound it had pushed on bounds (see TaskflowRunIsolated).  Returns true
 * when narrowed; else *member is the one member left to blame, or
 * NO_MEMBER when none is left (the failure is then the chain's).
 */
static bool
NarrowEntries(TaskflowRun run, int64 *bounds, int *depth, int64 *member)
{
	int64		first;
	int64		last;

	*member = NO_MEMBER;
	if (!TaskflowEntryRange(run, &first, &last))
		return false;
	if (first == last)
	{
		*member = first;
		return false;
	}
	if (*depth >= MAX_NARROWING)
		return false;
	bounds[(*depth)++] = run->entry_bounded ? run->entry_upto : NO_MEMBER;
	run->entry_bounded = true;
	run->entry_upto = first + (last - first) / 2;
	return true;
}

/*
 * WidenEntries goes back to the bound the last narrowing replaced, once
 * the members up to the current one are done; false at the top (no bound
 * left: the entry batches are done).
 */
static bool
WidenEntries(TaskflowRun run, int64 *bounds, int *depth)
{
	if (!run->entry_bounded)
		return false;
	run->entry_after = run->entry_upto;
	if (*depth == 0)
		elog(ERROR, "taskflow: entry bound without a narrowing");
	run->entry_upto = bounds[--(*depth)];
	run->entry_bounded = run->entry_upto != NO_MEMBER;
	return true;
}

/*
 * PassEntry moves the entry batches past the one member left by
 * NarrowEntries: set aside, or in the chain already.
 */
static void
PassEntry(TaskflowRun run, int64 member_id, int64 *bounds, int *depth)
{
	if (!WidenEntries(run, bounds, depth))
		run->entry_after = member_id;
}

/*
 * TooManySetAside turns a member's failure into the chain's once more than
 * MAX_SET_ASIDE members failed in one run of the unit: a failure that
 * many members share is the chain's to fix (a criteria or an action that
 * fails for nearly everyone), and setting each aside would fill the log.
 */
static bool
TooManySetAside(TaskflowRun run, TaskflowStep step, int set_aside, ErrorData *edata)
{
	if (set_aside < MAX_SET_ASIDE)
		return false;
	edata->detail = psprintf("Task \"%s\" failed for more than %d members in one run; "
							 "this is treated as the chain's failure.",
							 step->task_name, MAX_SET_ASIDE);
	return true;
}

/*
 * TaskflowRunIsolated runs a unit that takes members batch by batch (a
 * step's due batches, or entry batches that also apply the first step:
 * entering), each batch in its own subtransaction, setting aside the
 * members a batch fails for (see the head of this file).  The unit must
 * take at most run->batch_limit members after run's cursor and leave one
 * of them in run->last_taken (NO_MEMBER when it failed before taking any).  An
 * entry batch whose candidates query fails (the first task's criteria
 * raised for some member, which one unknown) is narrowed by member id
 * instead: the lower half of the ids it could take, then the upper half,
 * each halved again while it fails, until the one member it fails for is
 * left.  False when the chain failed (the error is recorded).
 */
bool
TaskflowRunIsolated(TaskflowRun run, TaskflowUnit unit, TaskflowStep step,
					TaskflowCounts total, bool entering)
{
	int			limit = taskflow_batch_size;
	bool		ok = true;
	char	   *version = TaskflowInstalledVersion();
	/* 0.1's chain_error has no member_id: no member is set aside there */
	bool		isolating = version == NULL || strcmp(version, "0.1") != 0;
	int64		bounds[MAX_NARROWING];
	int			depth = 0;
	int			set_aside = 0;

	run->entry_bounded = false;
	for (;;)
	{
		TimestampTz after_at = run->due_after_at;
		int64		after_id = run->due_after_id;
		int64		entry_after = run->entry_after;
		ErrorData  *edata;
		int64		taken;
		int64		blamed;

		CHECK_FOR_INTERRUPTS();
		run->batch_limit = limit;
		if (TaskflowTryUnit(run, unit, step, total, &taken, &edata))
		{
			if (taken < limit && !(entering && WidenEntries(run, bounds, &depth)))
				break;
			if (taken == limit)
				limit = Min(limit * 2, taskflow_batch_size);
			continue;
		}
		/* the batch was rolled back: take the same members again */
		run->due_after_at = after_at;
		run->due_after_id = after_id;
		run->entry_after = entry_after;
		blamed = NO_MEMBER;
		if (!isolating || !MemberSpecific(edata))
			;
		else if (run->last_taken != NO_MEMBER && limit > 1)
		{
			limit = (limit + 1) / 2;
			FreeErrorData(edata);
			continue;
		}
		else if (run->last_taken != NO_MEMBER)
			blamed = run->last_taken;
		else if (entering && NarrowEntries(run, bounds, &depth, &blamed))
		{
			FreeErrorData(edata);
			continue;
		}
		if (blamed != NO_MEMBER && !TooManySetAside(run, step, set_aside, edata))
		{
			bool		narrowed = run->last_taken == NO_MEMBER;

			/*
			 * A member already in the chain fails the entry criteria at
			 * every check: its failures are its step's, not the entry's.
			 */
			if (!narrowed || TaskflowEntryEligible(run, blamed))
				IsolateMember(run, step, total, entering, blamed, edata);
			if (narrowed)
				PassEntry(run, blamed, bounds, &depth);
			FreeErrorData(edata);
			set_aside++;
			limit = 1;			/* then doubling back to the batch size */
			continue;
		}
		TaskflowRecordError(run, step, edata);
		FreeErrorData(edata);
		total->errors++;
		ok = false;
		break;
	}
	run->entry_bounded = false;
	run->batch_limit = 0;
	return ok;
}

/*
 * TaskflowRunDueBatches applies a step to its due members (see
 * TaskflowRunIsolated).
 */
bool
TaskflowRunDueBatches(TaskflowRun run, TaskflowStep step, TaskflowCounts total)
{
	return TaskflowRunIsolated(run, TaskflowRunDueBatch, step, total, false);
}
