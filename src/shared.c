/*
 * shared.c
 *		Shared memory of the background workers.
 *
 * Allocated only when taskflow is in shared_preload_libraries; every
 * function here copes with taskflow_shared being NULL (not preloaded).
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"

#include "settings.h"
#include "shared.h"

TaskflowShared taskflow_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*
 * SharedSize is the size of the shared state for max_workers databases.
 */
static Size
SharedSize(void)
{
	return add_size(offsetof(TaskflowSharedData, slots),
					mul_size(sizeof(TaskflowDbSlotData), taskflow_max_workers));
}

/*
 * SharedRequest asks the postmaster for our memory and lock.
 */
static void
SharedRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(SharedSize());
	RequestNamedLWLockTranche("taskflow", 1);
}

/*
 * SharedStartup creates (or attaches to) the shared state.
 */
static void
SharedStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	taskflow_shared = ShmemInitStruct("taskflow", SharedSize(), &found);
	if (!found)
	{
		memset(taskflow_shared, 0, SharedSize());
		taskflow_shared->lock = &(GetNamedLWLockTranche("taskflow"))->lock;
		taskflow_shared->nslots = taskflow_max_workers;
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * TaskflowSharedRequest installs the hooks that set up shared memory.
 */
void
TaskflowSharedRequest(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = SharedRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = SharedStartup;
}

/*
 * TaskflowSlotFor finds the slot of a database (optionally taking a free
 * one); the caller holds the lock.  NULL when there is none.
 */
TaskflowDbSlot
TaskflowSlotFor(Oid dboid, bool create)
{
	int			i;

	if (taskflow_shared == NULL)
		return NULL;
	for (i = 0; i < taskflow_shared->nslots; i++)
		if (taskflow_shared->slots[i].dboid == dboid)
			return &taskflow_shared->slots[i];
	if (!create)
		return NULL;
	for (i = 0; i < taskflow_shared->nslots; i++)
		if (taskflow_shared->slots[i].dboid == InvalidOid)
		{
			memset(&taskflow_shared->slots[i], 0, sizeof(TaskflowDbSlotData));
			taskflow_shared->slots[i].dboid = dboid;
			return &taskflow_shared->slots[i];
		}
	return NULL;
}

/*
 * TaskflowWakeScheduler sets the latch of a database's scheduler.
 */
void
TaskflowWakeScheduler(Oid dboid)
{
	TaskflowDbSlot slot;

	if (taskflow_shared == NULL)
		return;
	LWLockAcquire(taskflow_shared->lock, LW_SHARED);
	slot = TaskflowSlotFor(dboid, false);
	if (slot && slot->latch && slot->pid != MyProcPid)
		SetLatch(slot->latch);
	LWLockRelease(taskflow_shared->lock);
}

/*
 * TaskflowWakeLauncher asks the launcher to look at the databases again,
 * forgetting that rescan_db had no taskflow (CREATE EXTENSION there).  The
 * mark is kept per database until the launcher looks at it, so several
 * databases getting taskflow before the launcher's next scan are all served.
 */
void
TaskflowWakeLauncher(Oid rescan_db)
{
	TaskflowDbSlot slot;

	if (taskflow_shared == NULL)
		return;
	LWLockAcquire(taskflow_shared->lock, LW_EXCLUSIVE);
	taskflow_shared->rescan = true;
	slot = OidIsValid(rescan_db) ? TaskflowSlotFor(rescan_db, false) : NULL;
	if (slot)
		slot->extension_created = true;
	else if (OidIsValid(rescan_db))
	{
		/* a database the launcher knew had no taskflow, holding no slot */
		if (taskflow_shared->ncreated < TASKFLOW_CREATED_QUEUE)
			taskflow_shared->created[taskflow_shared->ncreated++] = rescan_db;
		else
			taskflow_shared->created_overflow = true;
	}
	if (taskflow_shared->launcher_latch)
		SetLatch(taskflow_shared->launcher_latch);
	LWLockRelease(taskflow_shared->lock);
}

/*
 * TaskflowDropFailed undoes what a DROP DATABASE or DROP EXTENSION that
 * failed asked for: the launcher may start the database's workers again,
 * and is woken to do so.
 */
void
TaskflowDropFailed(Oid dboid)
{
	TaskflowDbSlot slot;

	if (taskflow_shared == NULL)
		return;
	LWLockAcquire(taskflow_shared->lock, LW_EXCLUSIVE);
	slot = TaskflowSlotFor(dboid, false);
	if (slot)
		slot->drop_requested_at = 0;
	LWLockRelease(taskflow_shared->lock);
	TaskflowWakeLauncher(InvalidOid);
}

/*
 * TaskflowExtensionDropped records, once DROP EXTENSION taskflow has
 * committed, that the database has no taskflow: its workers, stopped for
 * the drop, are started again only when CREATE EXTENSION wakes the launcher.
 */
void
TaskflowExtensionDropped(Oid dboid)
{
	TaskflowDbSlot slot;

	if (taskflow_shared == NULL)
		return;
	LWLockAcquire(taskflow_shared->lock, LW_EXCLUSIVE);
	slot = TaskflowSlotFor(dboid, false);
	if (slot)
	{
		slot->no_extension = true;
		slot->drop_requested_at = 0;
		slot->started_at = 0;
	}
	LWLockRelease(taskflow_shared->lock);
}
