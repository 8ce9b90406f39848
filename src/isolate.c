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
 * (In a database still at 0.1, whose chain_error cannot name the member,
 * every failure is the chain's, as it was in 0.1.)
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "engine.h"
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
 * TaskflowRunIsolated runs a unit that takes members batch by batch (a
 * step's due batches, or entry batches that also apply the first step:
 * entering), each batch in its own subtransaction, setting aside the
 * members a batch fails for (see the head of this file).  The unit must
 * take at most run->batch_limit members after run's cursor and leave one
 * of them in run->last_taken.  False when the chain failed (the error is
 * recorded).
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

	for (;;)
	{
		TimestampTz after_at = run->due_after_at;
		int64		after_id = run->due_after_id;
		int64		entry_after = run->entry_after;
		ErrorData  *edata;
		int64		taken;

		CHECK_FOR_INTERRUPTS();
		run->batch_limit = limit;
		if (TaskflowTryUnit(run, unit, step, total, &taken, &edata))
		{
			if (taken < limit)
				break;
			limit = Min(limit * 2, taskflow_batch_size);
			continue;
		}
		/* the batch was rolled back: take the same members again */
		run->due_after_at = after_at;
		run->due_after_id = after_id;
		run->entry_after = entry_after;
		if (isolating && MemberSpecific(edata) && limit > 1)
		{
			limit = (limit + 1) / 2;
			FreeErrorData(edata);
			continue;
		}
		if (isolating && MemberSpecific(edata))
		{
			IsolateMember(run, step, total, entering, run->last_taken, edata);
			FreeErrorData(edata);
			limit = 1;			/* then doubling back to the batch size */
			continue;
		}
		TaskflowRecordError(run, step, edata);
		FreeErrorData(edata);
		total->errors++;
		ok = false;
		break;
	}
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
