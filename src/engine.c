/*
 * engine.c
 *		The engine's entry point: taskflow.run(as_of) runs, for every enabled
 *		chain, the entries its schedule makes due and every step due for its
 *		members, as of the given instant.
 *
 * Each batch runs in its own subtransaction: an error rolls back only that
 * batch, is recorded against the chain (which is paused after too many
 * consecutive failures), and the other chains go on.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "clock.h"
#include "engine.h"
#include "entry.h"
#include "isolate.h"
#include "memberset.h"
#include "preview_scope.h"
#include "preview_watch.h"
#include "privileges.h"
#include "settings.h"
#include "spi_util.h"
#include "step.h"
#include "version.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(taskflow_run);

/*
 * What makes a chain (alias c) have something to do as of $3: an entry
 * check due, as _entry_slot() decides (a daily chain's next_slot_at, kept by
 * a trigger, has come; an always/anchor chain's entry interval has passed),
 * a member due at a step, or a failure to retry.
 */
#define INTERVAL_ENTRY_AT(c) \
"COALESCE(" c ".last_entry_at OPERATOR(pg_catalog.+)" \
"         COALESCE(" c ".entry_interval," \
"                  pg_catalog.current_setting('taskflow.entry_interval')::interval)," \
"         '-infinity')"

/*
 * The chains a run looks at: enabled, not paused, the one named ($1) if
 * any.  $2: the scheduler is asking, which retries a chain that failed
 * only 10 seconds after the failure (next_wakeup() wakes it then), not at
 * every wake-up in between: others' changes wake it all the time, and a
 * failing chain would be retried at once and paused after
 * pause_after_failures wake-ups instead of as many 10-second retries.
 */
#define RUNNABLE_CHAIN \
"    c.enabled AND c.paused_reason IS NULL" \
"    AND ($1::text IS NULL OR c.name OPERATOR(pg_catalog.=) $1)" \
"    AND (NOT $2 OR c.consecutive_failures OPERATOR(pg_catalog.=) 0" \
"         OR c.last_error_at IS NULL" \
"         OR c.last_error_at OPERATOR(pg_catalog.<=)" \
"            ($3 OPERATOR(pg_catalog.-) interval '10 seconds'))"

/*
 * every runnable chain, and whether it has something to do ("only" narrows
 * the members due)
 */
#define CHAINS_SQL(only) \
"SELECT c.chain_id, c.name, c.owner::oid," \
"       COALESCE(c.consecutive_failures OPERATOR(pg_catalog.>) 0" \
"                OR CASE WHEN c.schedule OPERATOR(pg_catalog.=) 'daily'" \
"                        THEN c.next_slot_at OPERATOR(pg_catalog.<=) $3" \
"                        ELSE " INTERVAL_ENTRY_AT("c") " OPERATOR(pg_catalog.<=) $3 END" \
"                OR c.chain_id OPERATOR(pg_catalog.=) ANY (" \
"                   SELECT cm.chain_id FROM taskflow.chain_member cm" \
"                    WHERE cm.state OPERATOR(pg_catalog.=) 'waiting'" \
"                      AND cm.due_at OPERATOR(pg_catalog.<=) $3" \
"                      AND (cm.checked_at IS NULL OR cm.checked_at OPERATOR(pg_catalog.<) $3) " \
only "),"  \
"                false)" \
"  FROM taskflow.chain c" \
" WHERE " RUNNABLE_CHAIN \
" ORDER BY c.chain_id"
static const char *chains_sql = CHAINS_SQL("");

/*
 * a preview's of a few members (preview_scope.c): only their due steps
 * count, so a chain runs only at the instants something is due for them
 * or for the chain itself
 */
static const char *chains_scoped_sql = CHAINS_SQL(WATCH_ONLY_MEMBERS("cm.member_id", 4));

/* every runnable chain, when the probe found that none has anything to do */
static const char *idle_chains_sql =
"SELECT c.chain_id, c.name, c.owner::oid, false"
"  FROM taskflow.chain c"
" WHERE " RUNNABLE_CHAIN
" ORDER BY c.chain_id";

/*
 * every runnable chain, as having something to do: a watching preview's
 * (preview_watch.c) due scans start at each step's floor, while chains_sql
 * would walk every index entry the simulation left behind at every instant
 */
static const char *busy_chains_sql =
"SELECT c.chain_id, c.name, c.owner::oid, true"
"  FROM taskflow.chain c"
" WHERE " RUNNABLE_CHAIN
" ORDER BY c.chain_id";

/*
 * The probe: the earliest instant anything could be due, from one index
 * entry each (chain_member_next_due_idx; chain_next_slot_idx,
 * chain_interval_idx, chain_failing_idx), or NULL.  When it is after the
 * run's instant, no chain has anything to do and none is read: with many
 * chains and nothing due, a scheduler wake-up costs this one statement.  A
 * waiting member counts even with checked_at set, and a failed chain at
 * once: the full check (chains_sql) then says which chains have work.
 */
static const char *probe_sql =
"SELECT LEAST("
"  (SELECT cm.due_at FROM taskflow.chain_member cm"
"    WHERE cm.state OPERATOR(pg_catalog.=) 'waiting' ORDER BY cm.due_at LIMIT 1),"
"  (SELECT d.next_slot_at FROM taskflow.chain d"
"    WHERE d.schedule OPERATOR(pg_catalog.=) 'daily' AND d.enabled AND d.paused_reason IS NULL"
"    ORDER BY d.next_slot_at LIMIT 1),"
"  (SELECT pg_catalog.min(" INTERVAL_ENTRY_AT("a") ") FROM taskflow.chain a"
"    WHERE a.schedule OPERATOR(pg_catalog.<>) 'daily' AND a.enabled AND a.paused_reason IS NULL),"
"  (SELECT '-infinity'::timestamptz FROM taskflow.chain f"
"    WHERE f.consecutive_failures OPERATOR(pg_catalog.>) 0 AND f.enabled"
"      AND f.paused_reason IS NULL LIMIT 1))";

/* generic plans of the statements every run makes (TaskflowExecSaved) */
static SPIPlanPtr idle_chains_plan = NULL;
static SPIPlanPtr probe_plan = NULL;
static SPIPlanPtr lock_chain_plan = NULL;
static SPIPlanPtr try_lock_chain_plan = NULL;
static SPIPlanPtr finish_run_plan = NULL;
static SPIPlanPtr finish_preview_run_plan = NULL;

static const char *named_chain_sql =
"SELECT c.owner::oid FROM taskflow.chain c WHERE c.name OPERATOR(pg_catalog.=) $1";

static const char *record_error_sql =
"WITH e AS (INSERT INTO taskflow.chain_error (chain_id, step_id, at, sqlstate, message,"
"                                            detail, hint, context)"
"           VALUES ($1, $2, $3, $4, $5, $6, $7, $8))"
"UPDATE taskflow.chain c"
"   SET consecutive_failures = c.consecutive_failures OPERATOR(pg_catalog.+) 1,"
"       last_error = $5, last_error_at = $3,"
"       paused_reason = CASE WHEN c.consecutive_failures OPERATOR(pg_catalog.+) 1"
"                                 OPERATOR(pg_catalog.>=) c.pause_after_failures"
"                            THEN pg_catalog.format('paused after %s consecutive failures; last: %s',"
"                                 c.consecutive_failures OPERATOR(pg_catalog.+) 1, $5)"
"                            ELSE c.paused_reason END,"
"       paused_at = CASE WHEN c.consecutive_failures OPERATOR(pg_catalog.+) 1"
"                             OPERATOR(pg_catalog.>=) c.pause_after_failures"
"                        THEN $3 ELSE c.paused_at END"
" WHERE c.chain_id OPERATOR(pg_catalog.=) $1"
" RETURNING c.paused_at OPERATOR(pg_catalog.=) $3 AND c.paused_reason IS NOT NULL,"
"           c.paused_reason";

static const char *pause_sql =
"UPDATE taskflow.chain c SET paused_reason = $2, paused_at = $3, last_error = $2,"
"       last_error_at = $3"
" WHERE c.chain_id OPERATOR(pg_catalog.=) $1";

/* waits for any other transaction running the chain; none if it stopped */
static const char *lock_chain_sql =
"SELECT FROM taskflow.chain c"
" WHERE c.chain_id OPERATOR(pg_catalog.=) $1 AND c.enabled AND c.paused_reason IS NULL"
"   FOR NO KEY UPDATE OF c";

/*
 * the scheduler's: does not wait.  No row: the chain stopped; false: it is
 * held by another transaction (or stopped by one that just committed: the
 * next run sees it), true: locked, still runnable in its latest version.
 */
static const char *try_lock_chain_sql =
"SELECT (SELECT true FROM taskflow.chain l"
"         WHERE l.chain_id OPERATOR(pg_catalog.=) c.chain_id"
"           AND l.enabled AND l.paused_reason IS NULL"
"           FOR NO KEY UPDATE OF l SKIP LOCKED) IS NOT NULL"
"  FROM taskflow.chain c"
" WHERE c.chain_id OPERATOR(pg_catalog.=) $1 AND c.enabled AND c.paused_reason IS NULL";

static const char *finish_run_sql =
"UPDATE taskflow.chain c SET last_run_at = $2,"
"       consecutive_failures = CASE WHEN $3 THEN 0 ELSE c.consecutive_failures END"
" WHERE c.chain_id OPERATOR(pg_catalog.=) $1";

/*
 * A preview's FinishChainRun: only a clean run after failures is written
 * (last_run_at is not shown by a preview, and each write of a chain row
 * left one more version of it for the rest of the simulation to walk: the
 * foreign-key checks of every chain_member row it updates read the row).
 */
static const char *finish_preview_run_sql =
"UPDATE taskflow.chain c SET consecutive_failures = 0"
" WHERE c.chain_id OPERATOR(pg_catalog.=) $1 AND $3"
"   AND c.consecutive_failures OPERATOR(pg_catalog.>) 0";

/*
 * TaskflowPushRunSettings sets, until the matching pop, what a chain runs
 * with: the engine's clock, the chain's time zone, a search_path that
 * holds nothing a user could plant objects in, and no JIT compilation (a
 * batch's statements are planned as costly enough to compile, and the
 * compilation cost more than the run: 68 s of a year's preview).
 */
int
TaskflowPushRunSettings(TimestampTz as_of, const char *time_zone)
{
	int			nest_level = TaskflowClockPush(as_of);

	(void) set_config_option("TimeZone", time_zone, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nest_level;
}

/*
 * TaskflowPopRunSettings restores what TaskflowPushRunSettings changed.
 */
void
TaskflowPopRunSettings(int nest_level)
{
	TaskflowClockPop(nest_level);
}

/*
 * TaskflowErrorRow fills the first eight columns of a taskflow.chain_error
 * row (chain_id, step_id, at, sqlstate, message, detail, hint, context) for
 * an error of a run's step (or of the chain, step NULL).
 */
void
TaskflowErrorRow(TaskflowRun run, TaskflowStep step, ErrorData *edata,
				 Datum *values, char *nulls)
{
	values[0] = Int32GetDatum(run->chain->chain_id);
	values[1] = Int32GetDatum(step ? step->step_id : 0);
	nulls[1] = step ? ' ' : 'n';
	values[2] = TimestampTzGetDatum(run->as_of);
	values[3] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
	values[4] = CStringGetTextDatum(edata->message ? edata->message : "error");
	values[5] = edata->detail ? CStringGetTextDatum(edata->detail) : (Datum) 0;
	nulls[5] = edata->detail ? ' ' : 'n';
	values[6] = edata->hint ? CStringGetTextDatum(edata->hint) : (Datum) 0;
	nulls[6] = edata->hint ? ' ' : 'n';
	values[7] = edata->context ? CStringGetTextDatum(edata->context) : (Datum) 0;
	nulls[7] = edata->context ? ' ' : 'n';
}

/*
 * TaskflowRecordError keeps an error of a chain's batch and counts the
 * failure, pausing the chain once it has failed pause_after_failures runs
 * in a row.
 */
void
TaskflowRecordError(TaskflowRun run, TaskflowStep step, ErrorData *edata)
{
	Oid			types[8] = {INT4OID, INT4OID, TIMESTAMPTZOID, TEXTOID, TEXTOID,
		TEXTOID, TEXTOID, TEXTOID};
	Datum		values[8];
	char		nulls[8] = "        ";
	TaskflowSavedUser saved;

	bool		isnull;
	char	   *paused = NULL;

	TaskflowErrorRow(run, step, edata, values, nulls);
	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	TaskflowExec(record_error_sql, 8, types, values, nulls);
	TaskflowRestoreUser(&saved);
	/* this failure paused it: say so, as a lost owner's pause does */
	if (SPI_processed == 1 &&
		DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) &&
		!isnull)
		paused = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	ereport(WARNING,
			(errmsg("taskflow: chain \"%s\" failed: %s", run->chain->name,
					edata->message),
			 errdetail("The batch was rolled back; the error is in taskflow.chain_error.")));
	if (paused)
		ereport(WARNING,
				(errmsg("taskflow: chain \"%s\" paused: %s", run->chain->name, paused),
				 errhint("Fix the cause, then resume it with taskflow.enable_chain('%s').",
						 run->chain->name)));
}

/*
 * ArmChainTimeout starts (or stops) the per-batch time limit
 * taskflow.chain_statement_timeout.  Only in a scheduler: a client calling
 * taskflow.run() has its own statement_timeout for the whole call.
 */
static void
ArmChainTimeout(bool start)
{
	if (!taskflow_in_worker || taskflow_chain_timeout <= 0)
		return;
	if (start)
		enable_timeout_after(STATEMENT_TIMEOUT, taskflow_chain_timeout);
	else
		disable_timeout(STATEMENT_TIMEOUT, false);
}

/*
 * AddCounts adds a finished batch's counts to the chain's.
 */
static void
AddCounts(TaskflowCounts total, TaskflowCounts batch)
{
	total->entered += batch->entered;
	total->applied += batch->applied;
	total->pending += batch->pending;
	total->left += batch->left;
}

/*
 * While true, units run without a subtransaction of their own, and an error
 * aborts the caller's whole attempt instead of being recorded.  A preview
 * sets it for its first attempt (see preview.c): thousands of
 * subtransactions inside one transaction make every row a batch locks or
 * writes carry a multixact that grows with each later batch touching it.
 */
bool		taskflow_unguarded_units = false;

/*
 * True while a preview simulates (preview.c): it runs the engine only at
 * instants something is due (no probe first), and a run does not stamp
 * the chain's last_run_at.
 */
bool		taskflow_previewing = false;

/*
 * TaskflowTryUnit runs one unit of work in a subtransaction with its own
 * SPI connection.  On error the subtransaction is rolled back, *edata gets
 * the error (not recorded anywhere) and false is returned.  The counts of
 * a unit that succeeded are added to total.
 */
bool
TaskflowTryUnit(TaskflowRun run, TaskflowUnit unit, TaskflowStep step,
				TaskflowCounts total, int64 *taken, ErrorData **edata)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = true;

	memset(&run->counts, 0, sizeof(run->counts));
	*taken = 0;
	*edata = NULL;
	if (taskflow_unguarded_units)
	{
		SPI_connect();
		*taken = unit(run, step);
		SPI_finish();
		AddCounts(total, &run->counts);
		return true;
	}
	ArmChainTimeout(true);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		SPI_connect();
		*taken = unit(run, step);
		SPI_finish();
		ArmChainTimeout(false);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		AddCounts(total, &run->counts);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		ArmChainTimeout(false);
		*edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;

		/*
		 * A client's cancel or statement_timeout stops its whole run() or
		 * preview(), not just this batch (in a scheduler, a query cancel is
		 * the per-batch taskflow.chain_statement_timeout: the chain's
		 * failure).
		 */
		if (!taskflow_in_worker && (*edata)->sqlerrcode == ERRCODE_QUERY_CANCELED)
			ReThrowError(*edata);
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/*
 * RunGuarded runs one unit of work with TaskflowTryUnit and records its
 * error, if any.  Returns false on error.
 */
static bool
RunGuarded(TaskflowRun run, TaskflowUnit unit, TaskflowStep step,
		   TaskflowCounts total, int64 *taken)
{
	ErrorData  *edata;

	if (TaskflowTryUnit(run, unit, step, total, taken, &edata))
		return true;
	TaskflowRecordError(run, step, edata);
	FreeErrorData(edata);
	total->errors++;
	return false;
}

/*
 * TaskflowRunBatches repeats a unit in batches until a batch takes fewer
 * members than the batch size; false if a batch failed.
 */
bool
TaskflowRunBatches(TaskflowRun run, TaskflowUnit unit, TaskflowStep step,
			 TaskflowCounts total)
{
	int64		taken;

	do
	{
		CHECK_FOR_INTERRUPTS();
		if (!RunGuarded(run, unit, step, total, &taken))
			return false;
	} while (taken >= taskflow_batch_size);
	return true;
}

/*
 * FinishChainRun stamps the chain's last run and, after a clean run, clears
 * its failure count (a preview only clears the count).
 */
static void
FinishChainRun(TaskflowRun run, bool ok)
{
	Oid			types[3] = {INT4OID, TIMESTAMPTZOID, BOOLOID};
	Datum		values[3];
	TaskflowSavedUser saved;

	values[0] = Int32GetDatum(run->chain->chain_id);
	values[1] = TimestampTzGetDatum(run->as_of);
	values[2] = BoolGetDatum(ok);
	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	if (taskflow_previewing)
		TaskflowExecSaved(&finish_preview_run_plan, finish_preview_run_sql, 3, types, values, NULL);
	else
		TaskflowExecSaved(&finish_run_plan, finish_run_sql, 3, types, values, NULL);
	TaskflowRestoreUser(&saved);
}

/*
 * PauseChain pauses a chain that cannot run at all, with the reason.
 */
static void
PauseChain(TaskflowRun run, const char *reason)
{
	Oid			types[3] = {INT4OID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[3];
	TaskflowSavedUser saved;

	values[0] = Int32GetDatum(run->chain->chain_id);
	values[1] = CStringGetTextDatum(reason);
	values[2] = TimestampTzGetDatum(run->as_of);
	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	TaskflowExec(pause_sql, 3, types, values, NULL);
	TaskflowRestoreUser(&saved);
	ereport(WARNING,
			(errmsg("taskflow: chain \"%s\" paused: %s", run->chain->name, reason)));
}

/*
 * RunSteps runs every step's due members, in step order, so a member whose
 * next step is already due moves on in the same run.  A preview's scan of
 * a step starts at the step's floor (preview_watch.c).
 */
static bool
RunSteps(TaskflowRun run, TaskflowCounts total)
{
	int			i;

	for (i = 0; i < run->chain->nsteps; i++)
	{
		TaskflowStep step = &run->chain->steps[i];

		TaskflowResetDueBatches(run);
		run->due_after_at = TaskflowWatchScanStart(step->step_id);
		if (!TaskflowRunDueBatches(run, step, total))
			return false;
		TaskflowWatchScanDone(step->step_id, run->as_of);
	}
	return true;
}

/*
 * LockChain makes runs of one chain take turns: it waits until no other
 * transaction is running the chain and holds it until this one ends.  Two
 * runs at once would both see a new member as not in the chain yet and
 * enter it (and apply and message its first step) twice.  False when the
 * chain was dropped, disabled or paused meanwhile.  The scheduler does not
 * wait: a chain another transaction holds (a client's run(), an
 * alter_chain() or disable_chain() not committed yet) is skipped for this
 * run and counted in counts->busy, so that one open transaction does not
 * stop every other chain of the database.
 */
static bool
LockChain(int chain_id, TaskflowCounts counts)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	TaskflowSavedUser saved;
	uint64		locked;
	bool		isnull;

	values[0] = Int32GetDatum(chain_id);
	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	if (!taskflow_in_worker)
	{
		locked = TaskflowExecSaved(&lock_chain_plan, lock_chain_sql, 1, types, values, NULL);
		TaskflowRestoreUser(&saved);
		return locked > 0;
	}
	locked = TaskflowExecSaved(&try_lock_chain_plan, try_lock_chain_sql, 1, types, values, NULL);
	TaskflowRestoreUser(&saved);
	if (locked == 0)
		return false;
	if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		return true;
	counts->busy++;
	return false;
}

/*
 * TaskflowRunChain runs one chain as of an instant: entries if its schedule
 * is due, then every due step.  Needs an SPI connection; returns false if
 * the chain failed (the error is recorded).
 */
bool
TaskflowRunChain(int chain_id, TimestampTz as_of, TaskflowCounts counts)
{
	TaskflowRunData run;
	char	   *problem;
	int			nest_level;
	bool		ok;

	memset(&run, 0, sizeof(run));
	if (!LockChain(chain_id, counts))
		return true;
	run.chain = TaskflowLoadChain(chain_id, CurrentMemoryContext);
	if (run.chain == NULL)
		return true;
	run.as_of = as_of;
	run.actor = "taskflow";

	problem = TaskflowOwnerProblem(run.chain);
	if (problem)
	{
		PauseChain(&run, problem);
		counts->errors++;
		return false;
	}
	nest_level = TaskflowPushRunSettings(as_of, run.chain->time_zone);
	ok = TaskflowRunEntries(&run, counts) && RunSteps(&run, counts);
	TaskflowPopRunSettings(nest_level);
	FinishChainRun(&run, ok);
	return ok;
}

/*
 * CallerMayRun says whether the caller may run a chain of this owner:
 * superusers run every chain, others only chains of roles they belong to.
 */
static bool
CallerMayRun(Oid caller, Oid owner)
{
	return superuser_arg(caller) || has_privs_of_role(caller, owner);
}

/*
 * TaskflowCheckRunnable raises unless the chain a caller named exists and the
 * caller may run it, so a misspelt name is an error, not a silent no-op.
 */
void
TaskflowCheckRunnable(Oid caller, const char *chain_name)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {CStringGetTextDatum(chain_name)};
	TaskflowSavedUser saved;
	bool		isnull;
	Oid			owner;

	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	TaskflowExec(named_chain_sql, 1, types, args, NULL);
	TaskflowRestoreUser(&saved);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("chain \"%s\" does not exist", chain_name)));
	owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	if (!CallerMayRun(caller, owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for chain \"%s\"", chain_name),
				 errhint("Only members of the role that owns a chain may run it.")));
}

/*
 * MaybeDue says whether any chain may have something to do as of an
 * instant (probe_sql).
 */
static bool
MaybeDue(TimestampTz as_of)
{
	bool		isnull;
	TimestampTz earliest;

	TaskflowExecSaved(&probe_plan, probe_sql, 0, NULL, NULL, NULL);
	earliest = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
												 SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return !isnull && earliest <= as_of;
}

/*
 * RunChains runs, as of an instant, the enabled chains the caller may run
 * (or only the one named) that have anything to do, adding their counts to
 * total.  With a result, every such chain gets a summary row (zeros when it
 * had nothing to do); without, chains with nothing to do are not even read.
 * Needs an SPI connection.
 */
static void
RunChains(Oid caller, const char *chain_name, TimestampTz as_of,
		  Tuplestorestate *result, TupleDesc desc, TaskflowCounts total)
{
	Oid			types[4] = {TEXTOID, BOOLOID, TIMESTAMPTZOID, INT8ARRAYOID};
	Datum		args[4];
	char		nulls[4] = {chain_name ? ' ' : 'n', ' ', ' ', ' '};
	TaskflowSavedUser saved;
	SPITupleTable *chains;
	uint64		nchains;
	uint64		i;
	MemberSet	scope = TaskflowPreviewScope();

	args[0] = chain_name ? CStringGetTextDatum(chain_name) : (Datum) 0;
	args[1] = BoolGetDatum(taskflow_in_worker);
	args[2] = TimestampTzGetDatum(as_of);
	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	if (scope)
	{
		args[3] = MemberSetToDatum(scope);
		TaskflowExec(chains_scoped_sql, 4, types, args, nulls);
	}
	else if (TaskflowWatching())
		TaskflowExec(busy_chains_sql, 3, types, args, nulls);
	else if (taskflow_previewing || MaybeDue(as_of))
		TaskflowExec(chains_sql, 3, types, args, nulls);
	else if (result)
		TaskflowExecSaved(&idle_chains_plan, idle_chains_sql, 3, types, args, nulls);
	else
	{
		TaskflowRestoreUser(&saved);
		return;
	}
	TaskflowRestoreUser(&saved);
	chains = SPI_tuptable;
	nchains = SPI_processed;
	for (i = 0; i < nchains; i++)
	{
		bool		isnull;
		int			chain_id = DatumGetInt32(SPI_getbinval(chains->vals[i], chains->tupdesc, 1, &isnull));
		Datum		name = SPI_getbinval(chains->vals[i], chains->tupdesc, 2, &isnull);
		Oid			owner = DatumGetObjectId(SPI_getbinval(chains->vals[i], chains->tupdesc, 3, &isnull));
		bool		has_work = DatumGetBool(SPI_getbinval(chains->vals[i], chains->tupdesc, 4, &isnull));
		TaskflowCountsData counts = {0};
		Datum		values[6];
		bool		rnulls[6] = {false};

		if (!CallerMayRun(caller, owner))
			continue;
		if (has_work)
			TaskflowRunChain(chain_id, as_of, &counts);
		if (total)
		{
			AddCounts(total, &counts);
			total->errors += counts.errors;
		}
		if (result == NULL)
			continue;
		values[0] = name;
		values[1] = Int64GetDatum(counts.entered);
		values[2] = Int64GetDatum(counts.applied);
		values[3] = Int64GetDatum(counts.pending);
		values[4] = Int64GetDatum(counts.left);
		values[5] = Int64GetDatum(counts.errors);
		tuplestore_putvalues(result, desc, values, rnulls);
	}
	SPI_freetuptable(chains);
}

/*
 * TaskflowRunAll runs, as of an instant, every enabled chain the caller may
 * run (or only the one named) that has anything to do, adding a summary row
 * per chain (zeros for those with nothing to do) to result when one is
 * given.  Needs an SPI connection.
 */
void
TaskflowRunAll(Oid caller, const char *chain_name, TimestampTz as_of,
			   Tuplestorestate *result, TupleDesc desc)
{
	RunChains(caller, chain_name, as_of, result, desc, NULL);
}

/*
 * TaskflowRunDue runs, as of an instant, every chain the caller may run that
 * has anything to do, and adds up what they did (the scheduler's wake-up:
 * run() without a row per chain).  Needs an SPI connection.
 */
void
TaskflowRunDue(Oid caller, TimestampTz as_of, TaskflowCounts total)
{
	RunChains(caller, NULL, as_of, NULL, NULL, total);
}

/*
 * taskflow.run(as_of, chain) — runs everything due as of an instant and
 * returns, per chain, how many members entered, had a step applied, became
 * pending, left, and how many batches failed.  Runs with search_path pinned
 * (TaskflowPinSearchPath): the statements that find, lock and load chains
 * run before a chain's own settings are in force.
 */
Datum
taskflow_run(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TimestampTz as_of;
	int			path_level;

	/* an instant that is NULL is a caller's bug: never guess it */
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("as_of cannot be NULL"),
				 errhint("Pass the instant to run as, or leave the argument out to run as of now().")));
	as_of = PG_GETARG_TIMESTAMPTZ(0);
	TaskflowCheckInstalledVersion();
	InitMaterializedSRF(fcinfo, 0);
	path_level = TaskflowPinSearchPath();
	SPI_connect();
	if (!PG_ARGISNULL(1))
		TaskflowCheckRunnable(GetUserId(), TextDatumGetCString(PG_GETARG_DATUM(1)));
	TaskflowRunAll(GetUserId(), PG_ARGISNULL(1) ? NULL : TextDatumGetCString(PG_GETARG_DATUM(1)),
				   as_of, rsinfo->setResult, rsinfo->setDesc);
	SPI_finish();
	TaskflowUnpinSearchPath(path_level);
	return (Datum) 0;
}
