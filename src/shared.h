/*
 * shared.h
 *		Shared memory of the background workers: the launcher and one slot
 *		per database scheduler, with what the status view shows.
 */
#ifndef TASKFLOW_SHARED_H
#define TASKFLOW_SHARED_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "storage/lwlock.h"

#define TASKFLOW_ERROR_LEN 256
#define TASKFLOW_CREATED_QUEUE 64
#define TASKFLOW_WAITING_MAX 64

typedef struct TaskflowDbSlotData
{
	Oid			dboid;			/* InvalidOid: free */
	pid_t		pid;			/* scheduler's pid, 0 when not running */
	Latch	   *latch;			/* scheduler's latch, to wake it */
	bool		no_extension;	/* taskflow is not installed there */
	bool		extension_created;	/* CREATE EXTENSION since: forget that */
	bool		held;			/* restored from a dump: waits for the DBA */
	bool		disabled;		/* its scheduler saw taskflow.enabled = off */
	bool		start_failed;	/* no background worker slot was free for it */
	TimestampTz drop_requested_at;	/* a DROP wants it gone (0: no) */
	TimestampTz started_at;
	TimestampTz last_run_at;
	TimestampTz next_wakeup_at;
	double		last_run_ms;
	int64		runs;
	int64		last_entered;
	int64		last_applied;
	int64		last_pending;
	int64		last_left;
	int64		last_errors;
	TimestampTz last_error_at;
	char		last_error[TASKFLOW_ERROR_LEN];
} TaskflowDbSlotData;

typedef TaskflowDbSlotData *TaskflowDbSlot;

typedef struct TaskflowSharedData
{
	LWLock	   *lock;
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	bool		rescan;			/* launcher: look at the databases again */
	/* CREATE EXTENSION in databases holding no slot (see launcher.c) */
	int			ncreated;
	bool		created_overflow;	/* more than fit: look at every database */
	Oid			created[TASKFLOW_CREATED_QUEUE];
	/* databases the launcher left out: all taskflow.max_workers in use */
	int			nwaiting;
	Oid			waiting[TASKFLOW_WAITING_MAX];
	int			nslots;
	TaskflowDbSlotData slots[FLEXIBLE_ARRAY_MEMBER];
} TaskflowSharedData;

typedef TaskflowSharedData *TaskflowShared;

extern TaskflowShared taskflow_shared;

extern void TaskflowSharedRequest(void);
extern TaskflowDbSlot TaskflowSlotFor(Oid dboid, bool create);
extern void TaskflowWakeScheduler(Oid dboid);
extern void TaskflowWakeLauncher(Oid rescan_db);
extern void TaskflowDropFailed(Oid dboid);
extern void TaskflowExtensionDropped(Oid dboid);

#endif							/* TASKFLOW_SHARED_H */
