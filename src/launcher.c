/*
 * launcher.c
 *		The launcher: one background worker per cluster that starts a
 *		scheduler for every database where taskflow may be installed, and
 *		restarts schedulers that stop.
 *
 * It connects to no database (it reads only the shared catalog
 * pg_database).  A scheduler that finds no taskflow in its database says
 * so in shared memory and exits; the launcher leaves that database alone
 * until CREATE EXTENSION (or CREATE DATABASE) wakes it.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "delivery.h"
#include "launcher.h"
#include "settings.h"
#include "shared.h"

/* What the launcher knows of each scheduler it started. */
typedef struct SchedulerHandle
{
	Oid			dboid;
	BackgroundWorkerHandle *handle;
	TaskflowDeliveryHandles delivery;	/* its delivery workers */
} SchedulerHandle;

static SchedulerHandle *handles = NULL;
static bool retry_soon = false;

PGDLLEXPORT void taskflow_launcher_main(Datum arg);

/*
 * TaskflowRegisterLauncher registers the launcher with the postmaster;
 * called from _PG_init while shared_preload_libraries is processed.
 */
void
TaskflowRegisterLauncher(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "taskflow");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "taskflow_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "taskflow launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "taskflow launcher");
	RegisterBackgroundWorker(&worker);
}

/*
 * StartScheduler registers a dynamic scheduler worker for a database.
 */
static BackgroundWorkerHandle *
StartScheduler(Oid dboid, const char *dbname)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	worker.bgw_main_arg = ObjectIdGetDatum(dboid);
	worker.bgw_notify_pid = MyProcPid;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "taskflow");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "taskflow_scheduler_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "taskflow scheduler %s", dbname);
	snprintf(worker.bgw_type, BGW_MAXLEN, "taskflow scheduler");
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		ereport(WARNING,
				(errmsg("taskflow: could not start a scheduler for database \"%s\"", dbname),
				 errhint("Raise max_worker_processes.")));
		return NULL;
	}
	return handle;
}

/*
 * HandleFor returns the launcher's entry for a database (creating one).
 */
static SchedulerHandle *
HandleFor(Oid dboid)
{
	int			i;

	for (i = 0; i < taskflow_shared->nslots; i++)
		if (handles[i].dboid == dboid)
			return &handles[i];
	for (i = 0; i < taskflow_shared->nslots; i++)
		if (handles[i].dboid == InvalidOid)
		{
			handles[i].dboid = dboid;
			handles[i].handle = NULL;
			memset(&handles[i].delivery, 0, sizeof(TaskflowDeliveryHandles));
			return &handles[i];
		}
	return NULL;
}

/*
 * IsRunning says whether a scheduler the launcher started is still alive.
 */
static bool
IsRunning(SchedulerHandle *h)
{
	pid_t		pid;

	if (h->handle == NULL)
		return false;
	if (GetBackgroundWorkerPid(h->handle, &pid) == BGWH_STOPPED)
	{
		pfree(h->handle);
		h->handle = NULL;
		return false;
	}
	return true;
}

/*
 * MayStart says whether the launcher should (re)start a database's
 * scheduler: not while one runs there (also one started by an earlier
 * launcher, which this one has no handle for), not when taskflow is known
 * to be missing there, nor while a DROP DATABASE is under way (given up
 * after 30 s: the drop failed).
 */
static bool
MayStart(Oid dboid)
{
	TaskflowDbSlot slot;
	bool		result = true;

	LWLockAcquire(taskflow_shared->lock, LW_EXCLUSIVE);
	slot = TaskflowSlotFor(dboid, true);
	if (slot && slot->extension_created)
	{
		slot->no_extension = false;
		slot->extension_created = false;
	}
	if (slot == NULL)
		result = false;
	else if (slot->pid != 0)
		result = false;
	else if (slot->no_extension)
		result = false;
	else if (slot->started_at != 0 &&
			 !TimestampDifferenceExceeds(slot->started_at, GetCurrentTimestamp(), 5000))
	{
		/* it stopped right after starting: try again in a few seconds */
		result = false;
		retry_soon = true;
	}
	else if (slot->drop_requested_at != 0)
	{
		if (TimestampDifferenceExceeds(slot->drop_requested_at,
									   GetCurrentTimestamp(), 30000))
			slot->drop_requested_at = 0;
		else
			result = false;
	}
	LWLockRelease(taskflow_shared->lock);
	return result;
}

/*
 * ForgetMissingDatabases frees the slots of databases that no longer exist.
 */
static void
ForgetMissingDatabases(Oid *present, int npresent)
{
	int			i;
	int			j;

	LWLockAcquire(taskflow_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < taskflow_shared->nslots; i++)
	{
		bool		found = false;

		for (j = 0; j < npresent; j++)
			if (taskflow_shared->slots[i].dboid == present[j])
				found = true;
		if (!found && taskflow_shared->slots[i].pid == 0)
		{
			taskflow_shared->slots[i].dboid = InvalidOid;
			handles[i].dboid = InvalidOid;
		}
	}
	LWLockRelease(taskflow_shared->lock);
}

/*
 * ScanDatabases starts a scheduler for every database that allows
 * connections, is not a template, is listed in taskflow.databases, and
 * has none running.
 */
static void
ScanDatabases(void)
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid		   *present = palloc(sizeof(Oid) * 1024);
	int			npresent = 0;
	MemoryContext cxt = CurrentMemoryContext;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
		SchedulerHandle *h;
		MemoryContext old;

		if (npresent < 1024)
			present[npresent++] = db->oid;
		if (!db->datallowconn || db->datistemplate ||
			!TaskflowServesDatabase(NameStr(db->datname)))
			continue;
		old = MemoryContextSwitchTo(TopMemoryContext);
		h = HandleFor(db->oid);
		if (h && !IsRunning(h) && MayStart(db->oid))
			h->handle = StartScheduler(db->oid, NameStr(db->datname));
		if (h)
			TaskflowStartDeliveryWorkers(&h->delivery, db->oid, NameStr(db->datname),
										 IsRunning(h), &retry_soon);
		MemoryContextSwitchTo(old);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
	ForgetMissingDatabases(present, npresent);
}

/*
 * taskflow_launcher_main is the launcher's main loop: scan, then sleep
 * until a scheduler stops, something asks for a rescan, or the safety
 * interval passes.
 */
void
taskflow_launcher_main(Datum arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("taskflow launcher");

	handles = MemoryContextAllocZero(TopMemoryContext,
									 sizeof(SchedulerHandle) * taskflow_shared->nslots);
	LWLockAcquire(taskflow_shared->lock, LW_EXCLUSIVE);
	taskflow_shared->launcher_pid = MyProcPid;
	taskflow_shared->launcher_latch = &MyProc->procLatch;
	LWLockRelease(taskflow_shared->lock);

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		LWLockAcquire(taskflow_shared->lock, LW_EXCLUSIVE);
		taskflow_shared->rescan = false;
		LWLockRelease(taskflow_shared->lock);
		retry_soon = false;
		ScanDatabases();
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 retry_soon ? 5000L : taskflow_safety_interval * 1000L,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
