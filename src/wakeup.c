/*
 * wakeup.c
 *		Waking the workers when something changes.
 *
 * Statement triggers on the tables that decide what is due (members,
 * events, criteria, tasks, chains, member states) and the manual-step
 * functions ask for a wake-up; it is delivered when the transaction
 * commits (never for a rolled-back change), by setting the database's
 * scheduler latch.  CREATE EXTENSION and CREATE DATABASE wake the launcher;
 * DROP DATABASE and DROP EXTENSION taskflow first stop the database's
 * scheduler and delivery workers, so they never block the drop (nor
 * deadlock with it).  A restore's COPY into taskflow's tables holds the
 * automation (see hold.c).
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/timestamp.h"

#include "delivery.h"
#include "hold.h"
#include "roles.h"
#include "shared.h"
#include "status.h"
#include "wakeup.h"

PG_FUNCTION_INFO_V1(taskflow_wake_trigger);
PG_FUNCTION_INFO_V1(taskflow_wake_launcher);

static bool wake_scheduler = false;
static bool wake_launcher = false;
static bool rescan_databases = false;
static Oid	dropping_db = InvalidOid;	/* a DROP stopped its workers */
static bool dropping_extension = false; /* DROP EXTENSION taskflow here */
static ProcessUtility_hook_type prev_process_utility = NULL;

/*
 * WakeXactCallback delivers the wake-ups asked for in this transaction
 * once it has committed, and forgets them when it aborts.
 */
static void
WakeXactCallback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT)
	{
		if (dropping_extension)
			TaskflowExtensionDropped(MyDatabaseId);
		if (wake_scheduler)
			TaskflowWakeScheduler(MyDatabaseId);
		if (wake_launcher)
			TaskflowWakeLauncher(MyDatabaseId);
		if (rescan_databases)
			TaskflowWakeLauncher(InvalidOid);
	}
	/* the DROP DATABASE or DROP EXTENSION failed: the workers may run again */
	if (event == XACT_EVENT_ABORT && OidIsValid(dropping_db))
		TaskflowDropFailed(dropping_db);
	/*
	 * PREPARE TRANSACTION: nothing is committed yet, and COMMIT PREPARED
	 * (perhaps in another session) wakes the workers instead.
	 */
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		wake_scheduler = wake_launcher = rescan_databases = false;
		dropping_extension = false;
		dropping_db = InvalidOid;
	}
}

/*
 * TaskflowWakeAtCommit asks for the scheduler to be woken at commit.
 */
void
TaskflowWakeAtCommit(void)
{
	wake_scheduler = true;
}

/*
 * taskflow._wake() — statement trigger: wake the scheduler at commit.
 */
Datum
taskflow_wake_trigger(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("taskflow._wake() must be called as a trigger")));
	wake_scheduler = true;
	return PointerGetDatum(NULL);
}

/*
 * taskflow._wake_launcher() — called by CREATE EXTENSION: the launcher
 * starts a scheduler for this database once the extension is committed.
 */
Datum
taskflow_wake_launcher(PG_FUNCTION_ARGS)
{
	wake_launcher = true;
	PG_RETURN_VOID();
}

/*
 * WaitForExit waits up to 5 s for the scheduler pid to leave its slot; false
 * if it is still there.
 */
static bool
WaitForExit(TaskflowDbSlot slot, pid_t pid)
{
	int			i;

	for (i = 0; i < 500; i++)
	{
		bool		gone;

		LWLockAcquire(taskflow_shared->lock, LW_SHARED);
		gone = (slot->pid != pid);
		LWLockRelease(taskflow_shared->lock);
		if (gone)
			return true;
		pg_usleep(10000L);
		CHECK_FOR_INTERRUPTS();
	}
	return false;
}

/*
 * StopSchedulerForDrop stops the scheduler and delivery workers of a
 * database about to be dropped, or whose taskflow is about to be dropped,
 * and waits (up to 5 s) for the scheduler to exit, so it never blocks the
 * drop (nor, holding a run's locks, deadlocks with it); they are not
 * started again until the drop fails.  Gently (DROP EXTENSION): the
 * scheduler is woken and exits cleanly once its run is over, and is only
 * terminated if the run takes longer than 5 s.
 */
static void
StopSchedulerForDrop(Oid dboid, bool gently)
{
	TaskflowDbSlot slot;
	pid_t		pid = 0;

	if (!OidIsValid(dboid) || taskflow_shared == NULL)
		return;
	LWLockAcquire(taskflow_shared->lock, LW_EXCLUSIVE);
	slot = TaskflowSlotFor(dboid, false);
	if (slot)
	{
		slot->drop_requested_at = GetCurrentTimestamp();
		pid = slot->pid;
		dropping_db = dboid;
		if (pid != 0 && gently && slot->latch)
			SetLatch(slot->latch);
	}
	LWLockRelease(taskflow_shared->lock);
	TaskflowStopDeliveryWorkers(dboid);
	if (pid == 0)
		return;
	if (gently && WaitForExit(slot, pid))
		return;
	kill(pid, SIGTERM);
	(void) WaitForExit(slot, pid);
}

/*
 * DropsTaskflow says whether a DROP statement drops the taskflow extension.
 */
static bool
DropsTaskflow(Node *parsetree)
{
	DropStmt   *stmt = (DropStmt *) parsetree;
	ListCell   *lc;

	if (!IsA(parsetree, DropStmt) || stmt->removeType != OBJECT_EXTENSION)
		return false;
	foreach(lc, stmt->objects)
		if (strcmp(strVal(lfirst(lc)), "taskflow") == 0)
			return true;
	return false;
}

/*
 * TaskflowProcessUtility watches the utility commands that change which
 * databases the workers serve, or what they run against (an update), and
 * those that drop or reassign the roles owning taskflow objects.
 */
static void
TaskflowProcessUtility(PlannedStmt *pstmt, const char *queryString,
					   bool readOnlyTree, ProcessUtilityContext context,
					   ParamListInfo params, QueryEnvironment *queryEnv,
					   DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;

	/* a database that cannot hold taskflow's text is refused at once */
	TaskflowCheckCreateExtension(parsetree);
	if (IsA(parsetree, DropdbStmt))
		StopSchedulerForDrop(get_database_oid(((DropdbStmt *) parsetree)->dbname, true),
							 false);
	/* a role that owns taskflow objects here is not dropped (roles.c) */
	if (IsA(parsetree, DropRoleStmt))
		TaskflowCheckDropRole((DropRoleStmt *) parsetree);
	if (DropsTaskflow(parsetree))
	{
		/* a run's locks would block the drop, or deadlock with it */
		StopSchedulerForDrop(MyDatabaseId, true);
		dropping_extension = true;
		wake_scheduler = true;
		TaskflowWakeDeliveryAtCommit();
	}

	/* a restore loading taskflow's tables: hold the automation (hold.c) */
	TaskflowHoldIfRestoring(parsetree);

	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params,
							 queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);

	/*
	 * At commit, when the launcher's scan can see it: a new database may
	 * have taskflow already (copied from its template); a dropped one's slot
	 * is freed.
	 */
	if (IsA(parsetree, CreatedbStmt) || IsA(parsetree, DropdbStmt))
		rescan_databases = true;

	/* and REASSIGN OWNED BY gives away its taskflow objects too */
	if (IsA(parsetree, ReassignOwnedStmt))
		TaskflowReassignOwned((ReassignOwnedStmt *) parsetree);

	/*
	 * COMMIT PREPARED has committed a prepared transaction of this database,
	 * whose own wake-ups were dropped at PREPARE: wake the workers when this
	 * statement's transaction commits, as if it had made the changes.
	 */
	if (IsA(parsetree, TransactionStmt) &&
		((TransactionStmt *) parsetree)->kind == TRANS_STMT_COMMIT_PREPARED)
	{
		wake_scheduler = true;
		TaskflowWakeDeliveryAtCommit();
	}

	/* workers waiting for the update (see version.c) go on at commit */
	if (IsA(parsetree, AlterExtensionStmt) &&
		strcmp(((AlterExtensionStmt *) parsetree)->extname, "taskflow") == 0)
	{
		wake_scheduler = true;
		TaskflowWakeDeliveryAtCommit();
	}
}

/*
 * TaskflowWakeupInit installs the commit callback and the utility hook.
 */
void
TaskflowWakeupInit(void)
{
	RegisterXactCallback(WakeXactCallback, NULL);
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = TaskflowProcessUtility;
}
