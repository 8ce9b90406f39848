/*
 * scheduler.c
 *		The scheduler: one background worker per database with taskflow.
 *
 * It runs the engine as taskflow.run() does (TaskflowRunDue: only the
 * chains with something to do) as of the current time, then sleeps
 * until the next instant something is due (a member's next step, a daily
 * slot, an "always" chain's next entry check), or until a change wakes it
 * (see wakeup.c), or at most the safety interval.  Each run is one
 * transaction, so a crash leaves nothing half-applied: the next run does it.
 * A database restored from a dump runs nothing until the DBA resumes it
 * (see hold.c).
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "engine.h"
#include "hold.h"
#include "settings.h"
#include "shared.h"
#include "spi_util.h"
#include "version.h"
#include "worker.h"

PGDLLEXPORT void taskflow_scheduler_main(Datum arg);

bool		taskflow_in_worker = false;

/* runs in a row that failed as a whole; RestartIfFailing's threshold */
#define RESTART_AFTER_FAILURES 3
static int	failed_in_a_row = 0;

static TaskflowDbSlot my_slot = NULL;

/*
 * A statement of its own, after the run's statements (each of which takes
 * its own snapshot), so that it sees what the run did.
 */
static const char *next_wakeup_sql = "SELECT taskflow.next_wakeup($1)";
static SPIPlanPtr next_wakeup_plan = NULL;

/* What one run did, for the status view. */
typedef struct RunResult
{
	int64		counts[5];
	bool		has_next;
	TimestampTz next;
	bool		busy;			/* a chain was skipped: another transaction held it */
} RunResult;

/*
 * ClearSlot forgets this scheduler in shared memory when it exits, and
 * wakes the launcher to start another if need be: the postmaster tells only
 * the launcher that started it, which may have been restarted since.
 */
static void
ClearSlot(int code, Datum arg)
{
	LWLockAcquire(taskflow_shared->lock, LW_EXCLUSIVE);
	if (my_slot && my_slot->pid == MyProcPid)
	{
		my_slot->pid = 0;
		my_slot->latch = NULL;
	}
	LWLockRelease(taskflow_shared->lock);
	TaskflowWakeLauncher(InvalidOid);
}

/*
 * ClaimSlot records this scheduler in its database's slot.
 */
static void
ClaimSlot(Oid dboid)
{
	LWLockAcquire(taskflow_shared->lock, LW_EXCLUSIVE);
	my_slot = TaskflowSlotFor(dboid, true);
	if (my_slot)
	{
		my_slot->pid = MyProcPid;
		my_slot->latch = &MyProc->procLatch;
		my_slot->started_at = GetCurrentTimestamp();
		my_slot->no_extension = false;
		my_slot->held = false;
		my_slot->disabled = !taskflow_enabled;
		my_slot->start_failed = false;
	}
	LWLockRelease(taskflow_shared->lock);
	if (my_slot == NULL)
		ereport(ERROR,
				(errmsg("taskflow: no free scheduler slot"),
				 errhint("Raise taskflow.max_workers.")));
	on_shmem_exit(ClearSlot, (Datum) 0);
}

/*
 * ExtensionMissing says (inside a transaction) whether taskflow is not
 * installed in this database.
 */
static bool
ExtensionMissing(void)
{
	return !OidIsValid(get_extension_oid("taskflow", true));
}

/*
 * StillInstalled says, after a failed run, whether taskflow is still
 * installed here: a run that began before a DROP EXTENSION committed fails
 * on the dropped tables, and the scheduler should then simply exit.
 */
static bool
StillInstalled(void)
{
	bool		installed;

	StartTransactionCommand();
	installed = !ExtensionMissing();
	CommitTransactionCommand();
	return installed;
}

/*
 * RunEngine runs the engine once as of now, in the current transaction,
 * and reads when it next has something to do.
 */
static void
RunEngine(RunResult *result)
{
	TimestampTz as_of = GetCurrentTimestamp();
	Oid			types[1] = {TIMESTAMPTZOID};
	Datum		values[1] = {TimestampTzGetDatum(as_of)};
	TaskflowCountsData counts = {0};

	SPI_connect();
	/* what taskflow.run(now()) does, without a row per chain */
	TaskflowRunDue(GetUserId(), as_of, &counts);
	result->counts[0] = counts.entered;
	result->counts[1] = counts.applied;
	result->counts[2] = counts.pending;
	result->counts[3] = counts.left;
	result->counts[4] = counts.errors;
	result->busy = counts.busy > 0;
	if (TaskflowExecSaved(&next_wakeup_plan, next_wakeup_sql, 1, types, values, NULL) != 1)
		elog(ERROR, "taskflow: reading the next wake-up failed");
	result->next = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
													 SPI_tuptable->tupdesc, 1,
													 &result->has_next));
	result->has_next = !result->has_next;
	SPI_finish();
}

/*
 * RecordRun stores a run in the slot, for taskflow.worker_status: when and
 * how long always, what it did (entered, applied, …) only when it did
 * something.  Many runs find nothing due — woken by a commit that changed
 * nothing for them, such as a delivery worker's mail_sent events — and
 * would otherwise replace the counts of the run that did the work at once.
 */
static void
RecordRun(RunResult *result, TimestampTz started, TimestampTz next_wakeup)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		did_something = false;

	for (int i = 0; i < 5; i++)
		did_something |= result->counts[i] != 0;
	LWLockAcquire(taskflow_shared->lock, LW_EXCLUSIVE);
	my_slot->last_run_at = started;
	my_slot->last_run_ms = (double) (now - started) / 1000.0;
	my_slot->runs++;
	if (did_something)
	{
		my_slot->last_entered = result->counts[0];
		my_slot->last_applied = result->counts[1];
		my_slot->last_pending = result->counts[2];
		my_slot->last_left = result->counts[3];
		my_slot->last_errors = result->counts[4];
	}
	my_slot->next_wakeup_at = next_wakeup;
	/* last_error says the last run failed: this one did not */
	my_slot->last_error[0] = '\0';
	my_slot->last_error_at = 0;
	LWLockRelease(taskflow_shared->lock);
}

/*
 * RecordError stores an error that stopped a whole run.
 */
static void
RecordError(const char *message)
{
	LWLockAcquire(taskflow_shared->lock, LW_EXCLUSIVE);
	my_slot->last_error_at = GetCurrentTimestamp();
	strlcpy(my_slot->last_error, message, TASKFLOW_ERROR_LEN);
	LWLockRelease(taskflow_shared->lock);
}

/*
 * NextWakeup is when to wake after a run: the next due instant, never later
 * than the safety interval, never in the past.
 */
static TimestampTz
NextWakeup(RunResult *result)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz latest = TimestampTzPlusMilliseconds(now, taskflow_safety_interval * 1000L);

	if (result->busy)
	{
		/* a chain held by another transaction: look again in a second */
		TimestampTz again = TimestampTzPlusMilliseconds(now, 1000);

		if (!result->has_next || result->next < again)
			return again;
	}
	if (!result->has_next || result->next > latest)
		return latest;
	return result->next < now ? now : result->next;
}

/*
 * WaitForUpdate says, once, that this library cannot run against the
 * version of taskflow installed here: the scheduler sleeps until ALTER
 * EXTENSION taskflow UPDATE wakes it (see version.c).
 */
static void
WaitForUpdate(const char *version)
{
	static bool told = false;
	char		message[TASKFLOW_ERROR_LEN];

	if (told)
		return;
	told = true;
	snprintf(message, sizeof(message),
			 "taskflow %s is installed here but the library is version %s: waiting for ALTER EXTENSION taskflow UPDATE",
			 version, TASKFLOW_VERSION);
	ereport(LOG, (errmsg("taskflow scheduler: %s", message)));
	RecordError(message);
}

/*
 * CheckHold says whether this database's automation is held (restored from
 * a dump, see hold.c): then it says so once in the log and shows it in
 * worker_status (state 'held', the reason and the command to resume in
 * last_error), which is cleared when the hold is released.
 */
static bool
CheckHold(void)
{
	char	   *message = TaskflowHoldMessage();
	bool		was_held;

	LWLockAcquire(taskflow_shared->lock, LW_EXCLUSIVE);
	was_held = my_slot->held;
	my_slot->held = (message != NULL);
	if (message != NULL)
	{
		my_slot->last_error_at = GetCurrentTimestamp();
		strlcpy(my_slot->last_error, message, TASKFLOW_ERROR_LEN);
	}
	else if (was_held)
	{
		my_slot->last_error_at = 0;
		my_slot->last_error[0] = '\0';
	}
	LWLockRelease(taskflow_shared->lock);
	if (message != NULL && !was_held)
		ereport(LOG, (errmsg("taskflow scheduler: automation held: %s", message)));
	else if (message == NULL && was_held)
		ereport(LOG, (errmsg("taskflow scheduler: automation resumed")));
	return message != NULL;
}

/*
 * RecordEnabled shows in worker_status whether this scheduler runs anything
 * (taskflow.enabled, read again at every wake-up, a reload included).
 */
static void
RecordEnabled(void)
{
	LWLockAcquire(taskflow_shared->lock, LW_EXCLUSIVE);
	my_slot->disabled = !taskflow_enabled;
	LWLockRelease(taskflow_shared->lock);
}

/*
 * RunOnce runs the engine in one transaction; false when taskflow is not
 * installed here (the scheduler then exits).  Errors are logged and kept
 * for the status view; the scheduler retries after a pause.
 */
static bool
RunOnce(TimestampTz *next_wakeup)
{
	MemoryContext cxt = CurrentMemoryContext;
	TimestampTz started = GetCurrentTimestamp();
	RunResult	result;
	volatile bool installed = true;
	volatile bool runnable = false;

	memset(&result, 0, sizeof(result));
	RecordEnabled();
	PG_TRY();
	{
		char	   *version;

		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "taskflow: running due work");
		version = TaskflowInstalledVersion();
		installed = (version != NULL);
		runnable = installed && TaskflowVersionSupported(version) && taskflow_enabled;
		if (installed && !TaskflowVersionSupported(version))
			WaitForUpdate(version);
		if (runnable && CheckHold())
			runnable = false;
		if (runnable)
			RunEngine(&result);
		PopActiveSnapshot();
		CommitTransactionCommand();
		*next_wakeup = NextWakeup(&result);
		if (runnable)
			RecordRun(&result, started, *next_wakeup);
		failed_in_a_row = 0;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		installed = StillInstalled();
		if (installed)
		{
			ereport(LOG,
					(errmsg("taskflow scheduler: run failed: %s", edata->message)));
			RecordError(edata->message);
			failed_in_a_row++;
		}
		FreeErrorData(edata);
		*next_wakeup = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 10000);
	}
	PG_END_TRY();

	/*
	 * A chain's code (a criteria's function, an sql action) may take a
	 * session-level advisory lock, which neither the end of the run nor a
	 * rollback releases: held by the scheduler from then on, it would
	 * block the application that uses that lock.  The scheduler takes none
	 * of its own, so it lets go of all of them after every run.
	 */
	LockReleaseSession(USER_LOCKMETHOD);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	return installed;
}

/*
 * MarkNoExtension tells the launcher not to restart this scheduler until
 * taskflow is installed here.
 */
static void
MarkNoExtension(void)
{
	LWLockAcquire(taskflow_shared->lock, LW_EXCLUSIVE);
	my_slot->no_extension = true;
	my_slot->started_at = 0;	/* a clean exit: restart at once when asked */
	LWLockRelease(taskflow_shared->lock);
}

/*
 * SleepUntil waits for the latch, the postmaster's death or the instant.
 */
static void
SleepUntil(TimestampTz when)
{
	long		ms = 0;
	long		secs;
	int			usecs;

	TimestampDifference(GetCurrentTimestamp(), when, &secs, &usecs);
	ms = secs * 1000L + (usecs + 999) / 1000;
	if (ms > 0)
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
}

/*
 * MyDatabaseName reads this database's name (for taskflow.databases).
 */
static char *
MyDatabaseName(void)
{
	char	   *name;

	StartTransactionCommand();
	name = MemoryContextStrdup(TopMemoryContext, get_database_name(MyDatabaseId));
	CommitTransactionCommand();
	return name;
}

/*
 * RestartIfFailing exits cleanly after RESTART_AFTER_FAILURES runs in a row
 * failed as a whole, for the launcher to start the scheduler again at
 * once: a scheduler reads the settings of its database and role (ALTER
 * DATABASE / ALTER ROLE ... SET) only when it starts, so one that fails
 * because of such a setting (default_transaction_read_only during a
 * maintenance freeze) would go on failing after the DBA reset it.
 */
static void
RestartIfFailing(const char *dbname)
{
	if (failed_in_a_row < RESTART_AFTER_FAILURES)
		return;
	LWLockAcquire(taskflow_shared->lock, LW_EXCLUSIVE);
	my_slot->started_at = 0;	/* a clean exit: restart at once */
	LWLockRelease(taskflow_shared->lock);
	ereport(LOG,
			(errmsg("taskflow scheduler: %d runs in a row failed in database \"%s\"; starting again",
					failed_in_a_row, dbname),
			 errdetail("A new scheduler reads the database's and its role's settings again.")));
	proc_exit(0);
}

/*
 * StopIfNotServed exits cleanly when taskflow.databases no longer lists
 * this database (the launcher starts it again if it comes back).
 */
static void
StopIfNotServed(const char *dbname)
{
	if (TaskflowServesDatabase(dbname))
		return;
	LWLockAcquire(taskflow_shared->lock, LW_EXCLUSIVE);
	my_slot->started_at = 0;
	LWLockRelease(taskflow_shared->lock);
	ereport(LOG,
			(errmsg("taskflow scheduler: database \"%s\" is no longer in taskflow.databases", dbname)));
	proc_exit(0);
}

/*
 * StopIfDropped exits cleanly when a DROP EXTENSION taskflow (or DROP
 * DATABASE) waits for this scheduler to go, before it starts a run that
 * would block the drop; the launcher starts it again if the drop fails.
 */
static void
StopIfDropped(void)
{
	bool		dropping;

	LWLockAcquire(taskflow_shared->lock, LW_EXCLUSIVE);
	dropping = my_slot->drop_requested_at != 0;
	if (dropping)
		my_slot->started_at = 0;	/* a clean exit: restart at once when asked */
	LWLockRelease(taskflow_shared->lock);
	if (dropping)
		proc_exit(0);
}

/*
 * taskflow_scheduler_main is a database scheduler's main loop.
 */
void
taskflow_scheduler_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	char	   *dbname;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);

	/*
	 * As autovacuum does: a search_path set for the database (by its owner,
	 * who need not be a superuser) must not pick the types and aggregates
	 * this worker's statements name (sum, ::int8 ...), run as superuser.
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	/* its statements are short batches: compiling them costs more than running them */
	SetConfigOption("jit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	pgstat_report_appname("taskflow scheduler");
	taskflow_in_worker = true;
	ClaimSlot(dboid);
	dbname = MyDatabaseName();

	for (;;)
	{
		TimestampTz next_wakeup;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		StopIfNotServed(dbname);
		StopIfDropped();
		if (!RunOnce(&next_wakeup))
		{
			MarkNoExtension();
			proc_exit(0);
		}
		RestartIfFailing(dbname);
		SleepUntil(next_wakeup);
	}
}
