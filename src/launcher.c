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
#include "utils/varlena.h"

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
	bool		start_failed;	/* warned that it could not be started */
} SchedulerHandle;

static SchedulerHandle *handles = NULL;
static bool retry_soon = false;
static bool scan_again = false;	/* a slot was freed after it was needed */
static bool warned_no_slot = false; /* warned that taskflow.max_workers is used up */

/*
 * Databases where a scheduler found no taskflow keep their slot (so that
 * worker_status says "no taskflow here") until a database with taskflow
 * needs it: then the launcher remembers them here instead, so that
 * databases without taskflow never use up taskflow.max_workers.  CREATE
 * EXTENSION there takes one off the list.
 */
static Oid *no_taskflow = NULL;
static int	n_no_taskflow = 0;
static int	max_no_taskflow = 0;

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
 * SetStartFailed records in a database's slot whether its scheduler could
 * not be started for want of a background worker, for worker_status.
 */
static void
SetStartFailed(Oid dboid, bool failed)
{
	TaskflowDbSlot slot;

	LWLockAcquire(taskflow_shared->lock, LW_EXCLUSIVE);
	slot = TaskflowSlotFor(dboid, false);
	if (slot)
		slot->start_failed = failed;
	LWLockRelease(taskflow_shared->lock);
}

/*
 * StartScheduler registers a dynamic scheduler worker for a database.  When
 * no background worker slot is free it warns once (not at every retry, every
 * 5 seconds, until a start succeeds).
 */
static BackgroundWorkerHandle *
StartScheduler(SchedulerHandle *h, Oid dboid, const char *dbname)
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
		if (!h->start_failed)
			ereport(WARNING,
					(errmsg("taskflow: could not start a scheduler for database \"%s\": no background worker slot is free", dbname),
					 errdetail("It is tried again every 5 seconds; this is logged once."),
					 errhint("Raise max_worker_processes.")));
		h->start_failed = true;
		SetStartFailed(dboid, true);
		retry_soon = true;
		return NULL;
	}
	SetStartFailed(dboid, false);
	if (h->start_failed)
		ereport(LOG,
				(errmsg("taskflow: started the scheduler for database \"%s\"", dbname)));
	h->start_failed = false;
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
			handles[i].start_failed = false;
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
 * ReleaseHandle gives up the launcher's entry for a database that holds no
 * slot any more (its scheduler has exited), with its delivery workers'
 * handles (those workers exit by themselves).
 */
static void
ReleaseHandle(SchedulerHandle *h)
{
	if (h->handle)
		pfree(h->handle);
	for (int i = 0; i < TASKFLOW_MAX_DELIVERY_WORKERS; i++)
		if (h->delivery.handle[i])
			pfree(h->delivery.handle[i]);
	memset(h, 0, sizeof(SchedulerHandle));
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
 * KnownWithoutTaskflow says whether a scheduler found no taskflow in a
 * database (and no CREATE EXTENSION happened there since).
 */
static bool
KnownWithoutTaskflow(Oid dboid)
{
	for (int i = 0; i < n_no_taskflow; i++)
		if (no_taskflow[i] == dboid)
			return true;
	return false;
}

/*
 * ForgetWithoutTaskflow takes a database off the list of those without
 * taskflow.
 */
static void
ForgetWithoutTaskflow(Oid dboid)
{
	for (int i = 0; i < n_no_taskflow; i++)
		if (no_taskflow[i] == dboid)
			no_taskflow[i--] = no_taskflow[--n_no_taskflow];
}

/*
 * RememberWithoutTaskflow adds a database to the list of those without
 * taskflow.
 */
static void
RememberWithoutTaskflow(Oid dboid)
{
	if (KnownWithoutTaskflow(dboid))
		return;
	if (n_no_taskflow == max_no_taskflow)
	{
		max_no_taskflow = Max(16, max_no_taskflow * 2);
		no_taskflow = no_taskflow == NULL
			? MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * max_no_taskflow)
			: repalloc(no_taskflow, sizeof(Oid) * max_no_taskflow);
	}
	no_taskflow[n_no_taskflow++] = dboid;
}

/*
 * TakeCreatedDatabases runs at the start of a scan: databases where CREATE
 * EXTENSION happened while they held no slot leave the list of those
 * without taskflow.
 */
static void
TakeCreatedDatabases(void)
{
	LWLockAcquire(taskflow_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < taskflow_shared->ncreated; i++)
		ForgetWithoutTaskflow(taskflow_shared->created[i]);
	taskflow_shared->ncreated = 0;
	if (taskflow_shared->created_overflow)
		n_no_taskflow = 0;
	taskflow_shared->created_overflow = false;
	LWLockRelease(taskflow_shared->lock);
}

/*
 * EvictDatabaseWithoutTaskflow frees, when a database with taskflow needs
 * a slot and none is free, the slot of a database whose scheduler found no
 * taskflow there (and has exited), remembering that database in the
 * launcher's list instead (worker_status then no longer shows it).  False
 * when there is none.
 */
static bool
EvictDatabaseWithoutTaskflow(void)
{
	Oid			evicted = InvalidOid;

	LWLockAcquire(taskflow_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < taskflow_shared->nslots && !OidIsValid(evicted); i++)
	{
		TaskflowDbSlot slot = &taskflow_shared->slots[i];

		if (OidIsValid(slot->dboid) && slot->no_extension && !slot->extension_created &&
			slot->pid == 0 && slot->drop_requested_at == 0)
		{
			evicted = slot->dboid;
			slot->dboid = InvalidOid;
		}
	}
	LWLockRelease(taskflow_shared->lock);
	if (!OidIsValid(evicted))
		return false;
	RememberWithoutTaskflow(evicted);
	/* its scheduler has left its slot: it is exiting, forget its handle */
	for (int j = 0; j < taskflow_shared->nslots; j++)
		if (handles[j].dboid == evicted)
		{
			if (handles[j].handle)
				pfree(handles[j].handle);
			handles[j].handle = NULL;
			handles[j].dboid = InvalidOid;
		}
	return true;
}

/*
 * HasFreeSlot says whether a database that has no slot yet could get one.
 */
static bool
HasFreeSlot(Oid dboid)
{
	bool		free_slot;

	LWLockAcquire(taskflow_shared->lock, LW_SHARED);
	free_slot = TaskflowSlotFor(dboid, false) != NULL;
	for (int i = 0; i < taskflow_shared->nslots && !free_slot; i++)
		if (!OidIsValid(taskflow_shared->slots[i].dboid))
			free_slot = true;
	LWLockRelease(taskflow_shared->lock);
	return free_slot;
}

/*
 * OidInList says whether an oid is among the first n of a list.
 */
static bool
OidInList(Oid oid, const Oid *list, int n)
{
	for (int i = 0; i < n; i++)
		if (list[i] == oid)
			return true;
	return false;
}

/*
 * ReleaseUnservedSlots frees the slots of existing databases the launcher
 * no longer serves (taken out of taskflow.databases, made a template or
 * closed to connections) once their scheduler has exited, so that they no
 * longer count in taskflow.max_workers and a database left out gets the
 * slot; worker_status then has no row for them.  Returns how many it freed.
 */
static int
ReleaseUnservedSlots(const Oid *served, int nserved)
{
	int			nfreed = 0;

	for (int i = 0; i < taskflow_shared->nslots; i++)
	{
		TaskflowDbSlot slot = &taskflow_shared->slots[i];
		SchedulerHandle *h = NULL;
		Oid			dboid;
		bool		freed = false;

		LWLockAcquire(taskflow_shared->lock, LW_SHARED);
		dboid = slot->dboid;
		LWLockRelease(taskflow_shared->lock);
		if (!OidIsValid(dboid) || OidInList(dboid, served, nserved))
			continue;
		for (int j = 0; j < taskflow_shared->nslots; j++)
			if (handles[j].dboid == dboid)
				h = &handles[j];
		if (h && IsRunning(h))
			continue;			/* started, and not exited yet */
		LWLockAcquire(taskflow_shared->lock, LW_EXCLUSIVE);
		if (slot->dboid == dboid && slot->pid == 0)
		{
			slot->dboid = InvalidOid;
			freed = true;
		}
		LWLockRelease(taskflow_shared->lock);
		if (freed)
		{
			nfreed++;
			if (h)
				ReleaseHandle(h);
		}
	}
	return nfreed;
}

/*
 * PublishWaiting tells worker_status which databases the launcher left out
 * in its last scan because every taskflow.max_workers slot was in use.
 */
static void
PublishWaiting(const Oid *waiting, int nwaiting)
{
	LWLockAcquire(taskflow_shared->lock, LW_EXCLUSIVE);
	taskflow_shared->nwaiting = Min(nwaiting, TASKFLOW_WAITING_MAX);
	memcpy(taskflow_shared->waiting, waiting,
		   sizeof(Oid) * taskflow_shared->nwaiting);
	LWLockRelease(taskflow_shared->lock);
}

/*
 * ForgetMissingDatabases frees the slots of databases that no longer exist;
 * returns how many it freed.
 */
static int
ForgetMissingDatabases(Oid *present, int npresent)
{
	int			i;
	int			j;
	int			nfreed = 0;

	LWLockAcquire(taskflow_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < taskflow_shared->nslots; i++)
	{
		Oid			dboid = taskflow_shared->slots[i].dboid;
		bool		found = false;

		for (j = 0; j < npresent; j++)
			if (dboid == present[j])
				found = true;
		if (OidIsValid(dboid) && !found && taskflow_shared->slots[i].pid == 0)
		{
			nfreed++;
			taskflow_shared->slots[i].dboid = InvalidOid;
			for (j = 0; j < taskflow_shared->nslots; j++)
				if (handles[j].dboid == dboid)
					handles[j].dboid = InvalidOid;
		}
	}
	LWLockRelease(taskflow_shared->lock);
	for (i = 0; i < n_no_taskflow; i++)
	{
		bool		found = false;

		for (j = 0; j < npresent; j++)
			if (no_taskflow[i] == present[j])
				found = true;
		if (!found)
			no_taskflow[i--] = no_taskflow[--n_no_taskflow];
	}
	return nfreed;
}

/*
 * WarnUnknownListed warns, once for each value of taskflow.databases, about
 * a listed name no database has (names are compared as written: a
 * database "Salon" listed as salon is not served).  names: the databases'
 * names, as found by the scan.
 */
static void
WarnUnknownListed(List *names)
{
	static char *checked = NULL;	/* the value last checked */
	char	   *copy;
	List	   *listed;
	ListCell   *lc;

	if (taskflow_databases == NULL || strcmp(taskflow_databases, "*") == 0 ||
		(checked != NULL && strcmp(checked, taskflow_databases) == 0))
		return;
	if (checked)
		pfree(checked);
	checked = MemoryContextStrdup(TopMemoryContext, taskflow_databases);
	copy = pstrdup(taskflow_databases);
	if (!SplitGUCList(copy, ',', &listed))
		return;
	foreach(lc, listed)
	{
		char	   *name = lfirst(lc);
		ListCell   *lc2;
		char	   *folded = NULL;
		bool		found = false;

		foreach(lc2, names)
		{
			if (strcmp(lfirst(lc2), name) == 0)
				found = true;
			else if (pg_strcasecmp(lfirst(lc2), name) == 0)
				folded = lfirst(lc2);
		}
		if (found)
			continue;
		if (folded)
			ereport(WARNING,
					(errmsg("taskflow.databases lists database \"%s\", which does not exist", name),
					 errhint("Names are compared as written: list the database \"%s\" as %s.",
							 folded, folded)));
		else
			ereport(WARNING,
					(errmsg("taskflow.databases lists database \"%s\", which does not exist", name),
					 errhint("It is served once it is created with taskflow installed.")));
	}
}

/*
 * ScanDatabases starts a scheduler for every database that allows
 * connections, is not a template, is listed in taskflow.databases, and
 * has none running.  The slots of databases it no longer serves are freed,
 * and those it leaves out for want of a slot are shown in worker_status.
 */
static void
ScanDatabases(void)
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid		   *present = palloc(sizeof(Oid) * 1024);
	int			npresent = 0;
	Oid		   *served = palloc(sizeof(Oid) * 1024);
	int			nserved = 0;
	Oid			waiting[TASKFLOW_WAITING_MAX];
	int			nwaiting = 0;
	int			nfreed;
	bool		slot_missing = false;
	MemoryContext cxt = CurrentMemoryContext;
	List	   *names = NIL;	/* every database's name (in the transaction) */

	TakeCreatedDatabases();
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
		names = lappend(names, pstrdup(NameStr(db->datname)));
		if (!db->datallowconn || db->datistemplate ||
			!TaskflowServesDatabase(NameStr(db->datname)))
			continue;
		if (nserved < 1024)
			served[nserved++] = db->oid;
		if (KnownWithoutTaskflow(db->oid))
			continue;
		old = MemoryContextSwitchTo(TopMemoryContext);
		h = HandleFor(db->oid);
		/* no room: take it from a database known to have no taskflow */
		while ((h == NULL || !HasFreeSlot(db->oid)) && EvictDatabaseWithoutTaskflow())
			h = HandleFor(db->oid);
		if (h != NULL && !HasFreeSlot(db->oid))
		{
			if (!IsRunning(h))
				ReleaseHandle(h);	/* keep the entries for those with a slot */
			h = NULL;
		}
		if (h == NULL)
		{
			slot_missing = true;
			if (nwaiting < TASKFLOW_WAITING_MAX)
				waiting[nwaiting++] = db->oid;
		}
		if (h == NULL && !warned_no_slot)
		{
			ereport(WARNING,
					(errmsg("taskflow: database \"%s\" gets no scheduler: all %d of taskflow.max_workers are in use",
							NameStr(db->datname), taskflow_shared->nslots),
					 errdetail("This is logged once until a scheduler slot is free again."),
					 errhint("Raise taskflow.max_workers (needs a restart), or list fewer databases in taskflow.databases.")));
			warned_no_slot = true;
		}
		if (h && !IsRunning(h) && MayStart(db->oid))
			h->handle = StartScheduler(h, db->oid, NameStr(db->datname));
		if (h)
			TaskflowStartDeliveryWorkers(&h->delivery, db->oid, NameStr(db->datname),
										 IsRunning(h), &retry_soon);
		MemoryContextSwitchTo(old);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	MemoryContextSwitchTo(cxt);
	WarnUnknownListed(names);
	PopActiveSnapshot();
	CommitTransactionCommand();
	PublishWaiting(waiting, nwaiting);

	/*
	 * A slot freed by a dropped database, or by one no longer served, goes
	 * at once to one left out.  (A database beyond the first 1024 is not
	 * known to be served: its slot is kept, never freed by mistake.)
	 */
	nfreed = ForgetMissingDatabases(present, npresent);
	if (nserved < 1024)
		nfreed += ReleaseUnservedSlots(served, nserved);
	if (nfreed > 0 && slot_missing)
		scan_again = true;
	pfree(present);
	pfree(served);
	if (!slot_missing)
		warned_no_slot = false; /* warn again if it happens again */
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
		scan_again = false;
		ScanDatabases();
		if (scan_again)
			continue;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 retry_soon ? 5000L : taskflow_safety_interval * 1000L,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
