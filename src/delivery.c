/*
 * delivery.c
 *		The delivery workers: taskflow.delivery_workers background workers
 *		per served database (started by the launcher next to the scheduler)
 *		that send the outbox's messages through the enabled channels.
 *
 * One round, for each enabled channel (taskflow.channel):
 *	1. a short transaction: read the channel's password / secret files,
 *	   claim a batch (taskflow.claim_messages: leases the rows, applies the
 *	   guardrails), build each message (taskflow.mime_message for SMTP; the
 *	   body and its HMAC signature for webhooks); commit;
 *	2. no transaction: send the batch with libcurl (sender.c);
 *	3. one transaction: write every outcome back (taskflow.complete_messages).
 * Full batches are followed at once by the next one.  Then the worker
 * sleeps until the next message becomes ready (taskflow.next_delivery_at),
 * at most taskflow.safety_interval, or until a statement on taskflow.outbox
 * or taskflow.channel commits (a statement trigger sets the workers' latches
 * at commit, like the scheduler's in wakeup.c).
 *
 * A worker that dies (even kill -9) leaves its claimed rows 'sending' under
 * its lease: any worker claims them again once the lease expires, and a
 * restarted worker with the same number releases its predecessor's leases
 * at once.  The resend carries the same Message-ID, derived from the row.
 */
#include "postgres.h"

#include <curl/curl.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "delivery.h"
#include "hold.h"
#include "settings.h"
#include "shared.h"
#include "version.h"
#include "webhook.h"

PG_FUNCTION_INFO_V1(taskflow_wake_delivery);
PG_FUNCTION_INFO_V1(taskflow_delivery_status);

PGDLLEXPORT void taskflow_delivery_main(Datum arg);

#define SECRET_FILE_MAX (64 * 1024)
#define DEFAULT_CONNECT_TIMEOUT_MS 10000
#define DEFAULT_TIMEOUT_MS 60000

/* ---------------------------------------------------------------- shared */

/* One delivery worker, for the wake-ups and taskflow.delivery_status. */
typedef struct DeliverySlot
{
	Oid			dboid;
	int			number;			/* 1 .. taskflow.delivery_workers */
	pid_t		pid;			/* 0: not running */
	bool		held;			/* the database's automation is held */
	bool		no_worker_slot; /* could not be started: max_worker_processes */
	Latch	   *latch;
	TimestampTz started_at;
	TimestampTz last_batch_at;
	double		last_batch_ms;
	int			last_batch_size;
	TimestampTz next_wakeup_at;
	int64		batches;
	int64		sent;
	int64		temporary;
	int64		permanent;
	TimestampTz last_error_at;
	char		last_error[TASKFLOW_ERROR_LEN];
} DeliverySlot;

typedef struct DeliveryShared
{
	LWLock	   *lock;
	int			nslots;
	DeliverySlot slots[FLEXIBLE_ARRAY_MEMBER];
} DeliveryShared;

static DeliveryShared *delivery_shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* in a delivery worker: this worker's slot, number and lease owner name */
static DeliverySlot *my_slot = NULL;
static int	my_number = 0;
static char my_name[64];
static bool am_delivery_worker = false;

/* a statement on the outbox asked for the workers to be woken at commit */
static bool wake_delivery = false;

/*
 * SharedSize: one slot per possible worker of every servable database.
 */
static Size
SharedSize(void)
{
	return add_size(offsetof(DeliveryShared, slots),
					mul_size(sizeof(DeliverySlot),
							 mul_size(taskflow_max_workers,
									  TASKFLOW_MAX_DELIVERY_WORKERS)));
}

/*
 * SharedRequest asks the postmaster for the slots and their lock.
 */
static void
SharedRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(SharedSize());
	RequestNamedLWLockTranche("taskflow delivery", 1);
}

/*
 * SharedStartup creates (or attaches to) the slots.
 */
static void
SharedStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	delivery_shared = ShmemInitStruct("taskflow delivery", SharedSize(), &found);
	if (!found)
	{
		memset(delivery_shared, 0, SharedSize());
		delivery_shared->lock = &(GetNamedLWLockTranche("taskflow delivery"))->lock;
		delivery_shared->nslots = taskflow_max_workers * TASKFLOW_MAX_DELIVERY_WORKERS;
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * WakeDelivery sets the latches of a database's delivery workers (other
 * than this process).
 */
static void
WakeDelivery(Oid dboid)
{
	int			i;

	if (delivery_shared == NULL)
		return;
	LWLockAcquire(delivery_shared->lock, LW_SHARED);
	for (i = 0; i < delivery_shared->nslots; i++)
	{
		DeliverySlot *s = &delivery_shared->slots[i];

		if (s->dboid == dboid && s->pid != 0 && s->pid != MyProcPid && s->latch)
			SetLatch(s->latch);
	}
	LWLockRelease(delivery_shared->lock);
}

/*
 * DeliveryXactCallback wakes the workers once a transaction that changed
 * the outbox or a channel has committed.
 */
static void
DeliveryXactCallback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT && wake_delivery)
		WakeDelivery(MyDatabaseId);
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		wake_delivery = false;
}

/*
 * TaskflowWakeDeliveryAtCommit asks for the delivery workers to be woken
 * at commit (DROP EXTENSION: they then exit).
 */
void
TaskflowWakeDeliveryAtCommit(void)
{
	wake_delivery = true;
}

/*
 * taskflow._wake_delivery() — statement trigger on taskflow.outbox and
 * taskflow.channel.  The workers' own claims and completions wake no one
 * (two workers would otherwise keep waking each other).
 */
Datum
taskflow_wake_delivery(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("taskflow._wake_delivery() must be called as a trigger")));
	if (!am_delivery_worker)
		wake_delivery = true;
	return PointerGetDatum(NULL);
}

/*
 * TaskflowDeliveryInit installs the commit callback, and when taskflow is
 * preloaded the shared memory hooks.
 */
void
TaskflowDeliveryInit(void)
{
	RegisterXactCallback(DeliveryXactCallback, NULL);
	if (process_shared_preload_libraries_in_progress && !IsBinaryUpgrade)
	{
		prev_shmem_request_hook = shmem_request_hook;
		shmem_request_hook = SharedRequest;
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = SharedStartup;
	}
}

/* -------------------------------------------------------------- launcher */

/*
 * MayStartDelivery says whether a database's delivery workers may run: its
 * scheduler runs (this launcher started it, or its slot says so: started
 * by an earlier launcher) and no DROP DATABASE is stopping its workers.
 */
static bool
MayStartDelivery(Oid dboid, bool scheduler_started)
{
	TaskflowDbSlot slot;
	bool		result = false;

	if (taskflow_shared == NULL)
		return false;
	LWLockAcquire(taskflow_shared->lock, LW_SHARED);
	slot = TaskflowSlotFor(dboid, false);
	if (slot && (scheduler_started || slot->pid != 0) && slot->drop_requested_at == 0)
		result = true;
	LWLockRelease(taskflow_shared->lock);
	return result;
}

/*
 * DeliveryWorkerRunning says whether a database's worker with this number
 * runs (started by an earlier launcher, which was restarted since).
 */
static bool
DeliveryWorkerRunning(Oid dboid, int number)
{
	bool		result = false;
	int			i;

	if (delivery_shared == NULL)
		return false;
	LWLockAcquire(delivery_shared->lock, LW_SHARED);
	for (i = 0; i < delivery_shared->nslots; i++)
	{
		DeliverySlot *s = &delivery_shared->slots[i];

		if (s->dboid == dboid && s->number == number && s->pid != 0)
			result = true;
	}
	LWLockRelease(delivery_shared->lock);
	return result;
}

/*
 * MarkNoWorkerSlot records in shared memory (for delivery_status) that a
 * database's delivery worker could not be started for want of a
 * background worker slot, or clears that once it could.
 */
static void
MarkNoWorkerSlot(Oid dboid, int number, bool waiting)
{
	DeliverySlot *slot = NULL;
	int			i;

	LWLockAcquire(delivery_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < delivery_shared->nslots && slot == NULL; i++)
		if (delivery_shared->slots[i].dboid == dboid &&
			delivery_shared->slots[i].number == number)
			slot = &delivery_shared->slots[i];
	for (i = 0; i < delivery_shared->nslots && slot == NULL && waiting; i++)
		if (delivery_shared->slots[i].pid == 0 && !delivery_shared->slots[i].no_worker_slot)
		{
			slot = &delivery_shared->slots[i];
			memset(slot, 0, sizeof(DeliverySlot));
			slot->dboid = dboid;
			slot->number = number;
		}
	if (slot && slot->pid == 0)
	{
		slot->no_worker_slot = waiting;
		if (waiting)
		{
			slot->last_error_at = GetCurrentTimestamp();
			strlcpy(slot->last_error,
					"could not be started: no background worker slot is free (raise max_worker_processes)",
					TASKFLOW_ERROR_LEN);
		}
	}
	LWLockRelease(delivery_shared->lock);
}

/*
 * TaskflowStartDeliveryWorkers (in the launcher) starts the database's
 * missing delivery workers, numbers 1 .. taskflow.delivery_workers, while
 * its scheduler runs (scheduler_started: the launcher has a live handle).  A worker that stopped within 5 s of its start
 * is retried later (retry_soon), so a failing worker never spins.  Workers
 * above a lowered setting exit by themselves.  The handles are allocated
 * in the caller's (long-lived) memory context.
 */
void
TaskflowStartDeliveryWorkers(TaskflowDeliveryHandles *handles, Oid dboid,
							 const char *dbname, bool scheduler_started,
							 bool *retry_soon)
{
	int			i;

	if (!MayStartDelivery(dboid, scheduler_started))
		return;
	for (i = 0; i < TASKFLOW_MAX_DELIVERY_WORKERS; i++)
	{
		BackgroundWorker worker;
		pid_t		pid;
		int			number = i + 1;

		if (handles->handle[i] != NULL &&
			GetBackgroundWorkerPid(handles->handle[i], &pid) == BGWH_STOPPED)
		{
			pfree(handles->handle[i]);
			handles->handle[i] = NULL;
		}
		if (handles->handle[i] != NULL || i >= taskflow_delivery_workers ||
			DeliveryWorkerRunning(dboid, number))
			continue;
		if (handles->started_at[i] != 0 &&
			!TimestampDifferenceExceeds(handles->started_at[i],
										GetCurrentTimestamp(), 5000))
		{
			*retry_soon = true;
			continue;
		}

		memset(&worker, 0, sizeof(worker));
		worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
		worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
		worker.bgw_restart_time = BGW_NEVER_RESTART;
		worker.bgw_main_arg = ObjectIdGetDatum(dboid);
		memcpy(worker.bgw_extra, &number, sizeof(number));
		worker.bgw_notify_pid = MyProcPid;
		snprintf(worker.bgw_library_name, BGW_MAXLEN, "taskflow");
		snprintf(worker.bgw_function_name, BGW_MAXLEN, "taskflow_delivery_main");
		snprintf(worker.bgw_name, BGW_MAXLEN, "taskflow delivery %d %s", number, dbname);
		snprintf(worker.bgw_type, BGW_MAXLEN, "taskflow delivery");
		handles->started_at[i] = GetCurrentTimestamp();
		if (!RegisterDynamicBackgroundWorker(&worker, &handles->handle[i]))
		{
			handles->handle[i] = NULL;
			if (!handles->warned[i])
				ereport(WARNING,
						(errmsg("taskflow: could not start delivery worker %d for database \"%s\": no background worker slot is free",
								number, dbname),
						 errdetail("It is tried again every 5 seconds; this is logged once, and delivery_status shows it."),
						 errhint("Raise max_worker_processes.")));
			handles->warned[i] = true;
			MarkNoWorkerSlot(dboid, number, true);
			*retry_soon = true;
			return;
		}
		if (handles->warned[i])
			MarkNoWorkerSlot(dboid, number, false);
		handles->warned[i] = false;
	}
}

/*
 * TaskflowStopDeliveryWorkers stops a database's delivery workers (DROP
 * DATABASE) and waits up to 5 s for them to exit.
 */
void
TaskflowStopDeliveryWorkers(Oid dboid)
{
	int			i;
	int			tries;

	if (delivery_shared == NULL)
		return;
	for (tries = 0; tries < 500; tries++)
	{
		bool		any = false;

		LWLockAcquire(delivery_shared->lock, LW_SHARED);
		for (i = 0; i < delivery_shared->nslots; i++)
		{
			DeliverySlot *s = &delivery_shared->slots[i];

			if (s->dboid == dboid && s->pid != 0)
			{
				if (tries == 0)
					kill(s->pid, SIGTERM);
				any = true;
			}
		}
		LWLockRelease(delivery_shared->lock);
		if (!any)
			break;
		pg_usleep(10000L);
		CHECK_FOR_INTERRUPTS();
	}
	/* and forget those that could not be started */
	LWLockAcquire(delivery_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < delivery_shared->nslots; i++)
		if (delivery_shared->slots[i].dboid == dboid &&
			delivery_shared->slots[i].pid == 0 && delivery_shared->slots[i].no_worker_slot)
			memset(&delivery_shared->slots[i], 0, sizeof(DeliverySlot));
	LWLockRelease(delivery_shared->lock);
}

/* ---------------------------------------------------------------- worker */

/* set when the worker exits because it is no longer wanted */
static bool slot_retired = false;

/*
 * ClearSlot forgets this worker in shared memory when it exits; a worker
 * no longer wanted (fewer delivery_workers, the database not served)
 * frees the slot, so delivery_status no longer lists it.
 */
static void
ClearSlot(int code, Datum arg)
{
	LWLockAcquire(delivery_shared->lock, LW_EXCLUSIVE);
	if (my_slot && my_slot->pid == MyProcPid)
	{
		my_slot->pid = 0;
		my_slot->latch = NULL;
		if (slot_retired)
			memset(my_slot, 0, sizeof(DeliverySlot));
	}
	LWLockRelease(delivery_shared->lock);
	/* the launcher that started this worker may be gone: wake the current one */
	TaskflowWakeLauncher(InvalidOid);
}

/*
 * ClaimSlot records this worker in its slot (the one it had before, or a
 * free one).
 */
static void
ClaimSlot(Oid dboid)
{
	DeliverySlot *free_slot = NULL;
	int			i;

	LWLockAcquire(delivery_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < delivery_shared->nslots; i++)
	{
		DeliverySlot *s = &delivery_shared->slots[i];

		if (s->dboid == dboid && s->number == my_number)
		{
			my_slot = s;
			break;
		}
		if (free_slot == NULL && s->pid == 0 && !s->no_worker_slot)
			free_slot = s;
	}
	if (my_slot && my_slot->pid != 0 && my_slot->pid != MyProcPid)
	{
		/* this number runs already: never two workers under one name */
		LWLockRelease(delivery_shared->lock);
		ereport(LOG,
				(errmsg("taskflow delivery worker %d is already running (pid %d)",
						my_number, (int) my_slot->pid)));
		proc_exit(0);
	}
	if (my_slot == NULL && free_slot != NULL)
	{
		my_slot = free_slot;
		memset(my_slot, 0, sizeof(DeliverySlot));
		my_slot->dboid = dboid;
		my_slot->number = my_number;
	}
	if (my_slot)
	{
		my_slot->pid = MyProcPid;
		my_slot->held = false;
		if (my_slot->no_worker_slot)
		{
			/* started at last: the reason it could not be is over */
			my_slot->no_worker_slot = false;
			my_slot->last_error_at = 0;
			my_slot->last_error[0] = '\0';
		}
		my_slot->latch = &MyProc->procLatch;
		my_slot->started_at = GetCurrentTimestamp();
	}
	LWLockRelease(delivery_shared->lock);
	if (my_slot == NULL)
		ereport(ERROR,
				(errmsg("taskflow: no free delivery worker slot")));
	on_shmem_exit(ClearSlot, (Datum) 0);
}

/*
 * RecordError keeps an error for taskflow.delivery_status and logs it.
 */
static void
RecordError(const char *channel, const char *message)
{
	char		text[TASKFLOW_ERROR_LEN];

	if (channel)
		snprintf(text, sizeof(text), "channel \"%s\": %s", channel, message);
	else
		strlcpy(text, message, sizeof(text));
	ereport(LOG, (errmsg("taskflow delivery worker %d: %s", my_number, text)));
	LWLockAcquire(delivery_shared->lock, LW_EXCLUSIVE);
	my_slot->last_error_at = GetCurrentTimestamp();
	strlcpy(my_slot->last_error, text, TASKFLOW_ERROR_LEN);
	LWLockRelease(delivery_shared->lock);
}

/*
 * RecordHold shows in taskflow.delivery_status whether this database's
 * automation is held (hold.c: a restored copy, or hold_automation()): state
 * 'held', and in last_error why and how to resume, as worker_status shows
 * it for the scheduler.  Cleared when the hold is released; logged once
 * each way.
 */
static void
RecordHold(const char *message)
{
	bool		was_held;

	LWLockAcquire(delivery_shared->lock, LW_EXCLUSIVE);
	was_held = my_slot->held;
	my_slot->held = (message != NULL);
	if (message != NULL &&
		(!was_held || strcmp(my_slot->last_error, message) != 0))
	{
		my_slot->last_error_at = GetCurrentTimestamp();
		strlcpy(my_slot->last_error, message, TASKFLOW_ERROR_LEN);
	}
	else if (message == NULL && was_held)
	{
		my_slot->last_error_at = 0;
		my_slot->last_error[0] = '\0';
	}
	LWLockRelease(delivery_shared->lock);
	if (message != NULL && !was_held)
		ereport(LOG,
				(errmsg("taskflow delivery worker %d: automation held, nothing is sent: %s",
						my_number, message)));
	else if (message == NULL && was_held)
		ereport(LOG,
				(errmsg("taskflow delivery worker %d: automation resumed", my_number)));
}

/*
 * RecordBatch counts a batch's outcomes for taskflow.delivery_status.
 */
static void
RecordBatch(DeliveryJob *jobs, int njobs, TimestampTz started)
{
	int64		counts[3] = {0, 0, 0};
	int			i;

	for (i = 0; i < njobs; i++)
		counts[jobs[i].outcome]++;
	LWLockAcquire(delivery_shared->lock, LW_EXCLUSIVE);
	my_slot->batches++;
	my_slot->sent += counts[DELIVERY_SENT];
	my_slot->temporary += counts[DELIVERY_TEMPORARY];
	my_slot->permanent += counts[DELIVERY_PERMANENT];
	my_slot->last_batch_at = started;
	my_slot->last_batch_size = njobs;
	my_slot->last_batch_ms = (double) (GetCurrentTimestamp() - started) / 1000.0;
	LWLockRelease(delivery_shared->lock);
}

/*
 * BeginWork starts a transaction with a snapshot and an SPI connection.
 */
static void
BeginWork(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	pgstat_report_activity(STATE_RUNNING, activity);
}

/*
 * CommitWork ends what BeginWork started.
 */
static void
CommitWork(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * AbortWork rolls back after an error, keeping the error's message (in
 * the caller's memory context).
 */
static char *
AbortWork(MemoryContext cxt)
{
	ErrorData  *edata;
	char	   *message;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	AbortCurrentTransaction();
	MemoryContextSwitchTo(cxt);
	message = pstrdup(edata->message);
	FreeErrorData(edata);
	pgstat_report_activity(STATE_IDLE, NULL);
	return message;
}

/*
 * GetText reads a text column of the current SPI row (NULL when null),
 * copied into the current memory context.
 */
static char *
GetText(HeapTuple tuple, TupleDesc desc, int column)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, column, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/*
 * GetInt reads an integer column (def when null).
 */
static int
GetInt(HeapTuple tuple, TupleDesc desc, int column, int def)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tuple, desc, column, &isnull);

	return isnull ? def : DatumGetInt32(d);
}

/*
 * ReadSecretFile reads a password or secret file (without its trailing
 * newline); NULL with *error set when it cannot.  The contents never
 * appear in a message.
 */
static char *
ReadSecretFile(const char *path, size_t *len, char **error)
{
	FILE	   *f = AllocateFile(path, "r");
	char	   *buf;
	size_t		n;

	if (f == NULL)
	{
		*error = psprintf("could not open \"%s\": %m", path);
		return NULL;
	}
	buf = palloc(SECRET_FILE_MAX + 1);
	n = fread(buf, 1, SECRET_FILE_MAX + 1, f);
	if (ferror(f) || n > SECRET_FILE_MAX)
	{
		*error = ferror(f) ? psprintf("could not read \"%s\": %m", path)
			: psprintf("\"%s\" is larger than %d bytes", path, SECRET_FILE_MAX);
		FreeFile(f);
		return NULL;
	}
	FreeFile(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

/*
 * ReadSecrets reads a channel's password and webhook secret from their
 * files (for each batch, so a changed password applies at once); false,
 * with the reason in *error, when a configured file cannot be read.
 */
static bool
ReadSecrets(DeliveryChannel *ch, char **error)
{
	ch->password = NULL;
	ch->secret = NULL;
	ch->secret_len = 0;
	if (ch->password_file && ch->username &&
		(ch->password = ReadSecretFile(ch->password_file, NULL, error)) == NULL)
		return false;
	if (ch->secret_file &&
		(ch->secret = ReadSecretFile(ch->secret_file, &ch->secret_len, error)) == NULL)
		return false;
	return true;
}

static const char *ready_sql =
"SELECT pg_catalog.to_regclass('taskflow.channel') IS NOT NULL"
"   AND pg_catalog.to_regprocedure('taskflow.complete_messages(text,bigint[],text[],integer[],text[],text[],timestamptz)') IS NOT NULL";

static const char *channels_sql =
"SELECT c.name::text, c.kind::text, c.url::text, c.require_starttls, c.username::text,"
"       c.password_file::text, c.webhook_secret_file::text, c.connect_timeout_ms::int4,"
"       c.timeout_ms::int4, c.connections::int4"
"  FROM taskflow.channel c WHERE c.enabled AND c.url IS NOT NULL"
" ORDER BY c.name";

/*
 * LoadChannels reads the enabled channels (in the current transaction)
 * into the given memory context.
 */
static List *
LoadChannels(MemoryContext cxt)
{
	List	   *channels = NIL;
	uint64		i;

	if (SPI_execute(channels_sql, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "taskflow: reading the channels failed");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(cxt);
		DeliveryChannel *ch = palloc0(sizeof(DeliveryChannel));
		bool		isnull;

		ch->name = GetText(t, d, 1);
		ch->kind = GetText(t, d, 2);
		ch->url = GetText(t, d, 3);
		ch->require_starttls = DatumGetBool(SPI_getbinval(t, d, 4, &isnull));
		if (isnull)
			ch->require_starttls = true;
		ch->username = GetText(t, d, 5);
		ch->password_file = GetText(t, d, 6);
		ch->secret_file = GetText(t, d, 7);
		ch->connect_timeout_ms = GetInt(t, d, 8, DEFAULT_CONNECT_TIMEOUT_MS);
		ch->timeout_ms = GetInt(t, d, 9, DEFAULT_TIMEOUT_MS);
		ch->connections = Max(1, Min(GetInt(t, d, 10, 4), 64));
		if (ch->kind && (strcmp(ch->kind, "smtp") == 0 || strcmp(ch->kind, "webhook") == 0))
			channels = lappend(channels, ch);
		MemoryContextSwitchTo(old);
	}
	return channels;
}

/*
 * Plans of the statements a worker runs for every batch, prepared once and
 * kept for the worker's life (the plan cache replans them after DDL).
 */
static SPIPlanPtr claim_plan = NULL;
static SPIPlanPtr mime_batch_plan = NULL;
static SPIPlanPtr complete_plan = NULL;
static SPIPlanPtr next_plan = NULL;

/*
 * KeptPlan returns the kept plan of a statement, preparing it at the first
 * call (SPI connected).
 */
static SPIPlanPtr
KeptPlan(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types)
{
	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, types);

		if (p == NULL)
			elog(ERROR, "taskflow: could not prepare a delivery statement: %s",
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "taskflow: could not keep a delivery statement's plan");
		*plan = p;
	}
	return *plan;
}

static const char *claim_sql =
"SELECT o.outbox_id, o.recipient::text, o.sender_address::text, o.body_text::text,"
"       o.message_id::text"
"  FROM taskflow.claim_messages($1, $2, $3,"
"                               $4 OPERATOR(pg_catalog.*) interval '1 second', $5) o"
" ORDER BY o.outbox_id";

/*
 * The batch, set-based (what taskflow.mime_message() returns for each row),
 * in outbox_id order as the jobs are (claim_sql).
 */
static const char *mime_batch_sql =
"SELECT m.message FROM taskflow._mime_messages($1, $2) m ORDER BY m.outbox_id";

static const char *mime_one_sql =
"SELECT taskflow.mime_message($1, $2)";

/*
 * BuildMimeOne builds one message in a subtransaction: a message that
 * cannot be built because of its data (a data exception: a header value
 * refused) fails alone, permanently; any other error (the channel's set-up,
 * say) defers it, to be retried.
 */
static void
BuildMimeOne(DeliveryJob *job, TimestampTz as_of, MemoryContext cxt)
{
	Oid			types[2] = {INT8OID, TIMESTAMPTZOID};
	Datum		values[2] = {Int64GetDatum(job->outbox_id), TimestampTzGetDatum(as_of)};
	ResourceOwner owner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		if (SPI_execute_with_args(mime_one_sql, 2, types, values, NULL, false, 1) != SPI_OK_SELECT)
			elog(ERROR, "taskflow: building the message failed");
		MemoryContextSwitchTo(cxt);
		job->payload = GetText(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		char	   *reason;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		reason = psprintf("the message could not be built: %s", edata->message);
		/* bad data in the message fails it; anything else is retried */
		DeliveryFinishJob(job,
						  ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_DATA_EXCEPTION
						  ? DELIVERY_PERMANENT : DELIVERY_TEMPORARY,
						  0, reason);
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

/*
 * BuildMime builds the MIME text of every SMTP job: all at once, or, when
 * one of them fails, each on its own.
 */
static void
BuildMime(DeliveryJob *jobs, int njobs, TimestampTz as_of, MemoryContext cxt)
{
	Datum	   *ids = palloc(sizeof(Datum) * njobs);
	Oid			types[2] = {INT8ARRAYOID, TIMESTAMPTZOID};
	Datum		values[2];
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool failed = false;
	int			i;

	for (i = 0; i < njobs; i++)
		ids[i] = Int64GetDatum(jobs[i].outbox_id);
	values[0] = PointerGetDatum(construct_array(ids, njobs, INT8OID, 8, true, TYPALIGN_DOUBLE));
	values[1] = TimestampTzGetDatum(as_of);

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		if (SPI_execute_plan(KeptPlan(&mime_batch_plan, mime_batch_sql, 2, types),
							 values, NULL, false, 0) != SPI_OK_SELECT ||
			SPI_processed != (uint64) njobs)
			elog(ERROR, "taskflow: building the messages failed");
		MemoryContextSwitchTo(cxt);
		for (i = 0; i < njobs; i++)
			jobs[i].payload = GetText(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		failed = true;
	}
	PG_END_TRY();
	if (failed)
		for (i = 0; i < njobs; i++)
			BuildMimeOne(&jobs[i], as_of, cxt);
	for (i = 0; i < njobs; i++)
		if (!jobs[i].done && jobs[i].payload == NULL)
			DeliveryFinishJob(&jobs[i], DELIVERY_PERMANENT, 0, "the message is empty");
		else if (jobs[i].payload)
			jobs[i].payload_len = strlen(jobs[i].payload);
}

/*
 * ClaimInWork claims up to taskflow.delivery_batch_size messages of a
 * channel and builds them, in the current transaction (SPI connected).
 * Returns how many (jobs allocated in cxt); raises on error.
 */
static int
ClaimInWork(DeliveryChannel *ch, DeliveryJob **jobs_out, MemoryContext cxt)
{
	Oid			types[5] = {TEXTOID, TEXTOID, INT4OID, INT4OID, TIMESTAMPTZOID};
	Datum		values[5];
	TimestampTz now;
	char	   *error = NULL;
	char		activity[128];
	DeliveryJob *jobs;
	int			njobs;
	uint64		i;

	snprintf(activity, sizeof(activity), "taskflow delivery: claiming messages of channel %s",
			 ch->name);
	pgstat_report_activity(STATE_RUNNING, activity);
	now = GetCurrentTimestamp();
	MemoryContextSwitchTo(cxt);
	if (!ReadSecrets(ch, &error))
		ereport(ERROR, (errmsg("%s", error)));
	values[0] = CStringGetTextDatum(ch->name);
	values[1] = CStringGetTextDatum(my_name);
	values[2] = Int32GetDatum(taskflow_delivery_batch_size);
	values[3] = Int32GetDatum(taskflow_delivery_lease);
	values[4] = TimestampTzGetDatum(now);
	if (SPI_execute_plan(KeptPlan(&claim_plan, claim_sql, 5, types),
						 values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "taskflow: claiming messages failed");
	MemoryContextSwitchTo(cxt);
	jobs = palloc0(sizeof(DeliveryJob) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		bool		isnull;

		jobs[i].outbox_id = DatumGetInt64(SPI_getbinval(t, d, 1, &isnull));
		jobs[i].rcpt = GetText(t, d, 2);
		jobs[i].mail_from = GetText(t, d, 3);
		jobs[i].message_id = GetText(t, d, 5);
		if (strcmp(ch->kind, "webhook") == 0)
		{
			jobs[i].payload = GetText(t, d, 4);
			if (jobs[i].payload)
			{
				jobs[i].payload_len = strlen(jobs[i].payload);
				if (ch->secret)
					WebhookSign(ch->secret, ch->secret_len, jobs[i].payload,
								jobs[i].payload_len, jobs[i].signature);
			}
		}
	}
	njobs = (int) SPI_processed;
	if (njobs > 0 && strcmp(ch->kind, "smtp") == 0)
		BuildMime(jobs, njobs, now, cxt);
	*jobs_out = jobs;
	return njobs;
}

/*
 * ClaimBatch claims and builds a batch in a short transaction of its own.
 * Returns how many (jobs allocated in cxt); -1 after an error (recorded).
 */
static int
ClaimBatch(DeliveryChannel *ch, DeliveryJob **jobs_out, MemoryContext cxt)
{
	MemoryContext old = CurrentMemoryContext;
	volatile int njobs = 0;

	PG_TRY();
	{
		BeginWork("taskflow delivery: claiming messages");
		njobs = ClaimInWork(ch, jobs_out, cxt);
		CommitWork();
	}
	PG_CATCH();
	{
		char	   *message = AbortWork(cxt);

		RecordError(ch->name, message);
		njobs = -1;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	return njobs;
}

/*
 * ClaimInSubtransaction claims and builds a batch in a subtransaction of
 * the current transaction, so that a failed claim does not undo the report
 * it follows.  Returns how many; -1 after an error (recorded).
 */
static int
ClaimInSubtransaction(DeliveryChannel *ch, DeliveryJob **jobs_out, MemoryContext cxt)
{
	MemoryContext old = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile int njobs = 0;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		njobs = ClaimInWork(ch, jobs_out, cxt);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(old);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(old);
		CurrentResourceOwner = owner;
		RecordError(ch->name, edata->message);
		njobs = -1;
	}
	PG_END_TRY();
	return njobs;
}

static const char *complete_sql =
"SELECT taskflow.complete_messages($1, $2, $3, $4, $5, $6, $7)";

/*
 * CompleteInWork writes a batch's outcomes back in the current transaction
 * (SPI connected); raises on error.
 */
static void
CompleteInWork(DeliveryJob *jobs, int njobs, MemoryContext cxt)
{
	static const char *const outcome_names[] = {"sent", "temporary", "permanent"};
	Oid			types[7] = {TEXTOID, INT8ARRAYOID, TEXTARRAYOID, INT4ARRAYOID,
		TEXTARRAYOID, TEXTARRAYOID, TIMESTAMPTZOID};
	Datum		values[7];
	Datum	   *ids;
	Datum	   *outcomes;
	Datum	   *codes;
	Datum	   *enhanced;
	Datum	   *replies;
	bool	   *code_nulls;
	bool	   *enhanced_nulls;
	int			dims[1] = {njobs};
	int			lbs[1] = {1};
	int			i;

	pgstat_report_activity(STATE_RUNNING, "taskflow delivery: writing results");
	MemoryContextSwitchTo(cxt);
	ids = palloc(sizeof(Datum) * njobs);
	outcomes = palloc(sizeof(Datum) * njobs);
	codes = palloc(sizeof(Datum) * njobs);
	enhanced = palloc(sizeof(Datum) * njobs);
	replies = palloc(sizeof(Datum) * njobs);
	code_nulls = palloc(sizeof(bool) * njobs);
	enhanced_nulls = palloc(sizeof(bool) * njobs);
	for (i = 0; i < njobs; i++)
	{
		DeliveryJob *job = &jobs[i];

		if (!job->done)
			DeliveryFinishJob(job, DELIVERY_TEMPORARY, 0, "not sent");
		ids[i] = Int64GetDatum(job->outbox_id);
		outcomes[i] = CStringGetTextDatum(outcome_names[job->outcome]);
		codes[i] = Int32GetDatum(job->code);
		code_nulls[i] = (job->code == 0);
		enhanced[i] = CStringGetTextDatum(job->enhanced);
		enhanced_nulls[i] = (job->enhanced[0] == '\0');
		replies[i] = CStringGetTextDatum(job->reply);
	}
	values[0] = CStringGetTextDatum(my_name);
	values[1] = PointerGetDatum(construct_array(ids, njobs, INT8OID, 8, true, TYPALIGN_DOUBLE));
	values[2] = PointerGetDatum(construct_array(outcomes, njobs, TEXTOID, -1, false, TYPALIGN_INT));
	values[3] = PointerGetDatum(construct_md_array(codes, code_nulls, 1, dims, lbs,
												   INT4OID, 4, true, TYPALIGN_INT));
	values[4] = PointerGetDatum(construct_md_array(enhanced, enhanced_nulls, 1, dims, lbs,
												   TEXTOID, -1, false, TYPALIGN_INT));
	values[5] = PointerGetDatum(construct_array(replies, njobs, TEXTOID, -1, false, TYPALIGN_INT));
	values[6] = TimestampTzGetDatum(GetCurrentTimestamp());
	if (SPI_execute_plan(KeptPlan(&complete_plan, complete_sql, 7, types),
						 values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "taskflow: writing the results failed");
}

/*
 * CompleteAndClaim writes a batch's outcomes back and, when next_jobs is
 * not NULL, claims and builds the next batch (in next_cxt), all in one
 * transaction: one commit, one wait for the disk, per batch.  The claim
 * runs in a subtransaction: when it fails (*next_njobs -1, recorded) the
 * report still commits.  False when the report failed (recorded; the rows
 * are sent again once their lease expires, and nothing was claimed).
 */
static bool
CompleteAndClaim(DeliveryJob *jobs, int njobs, MemoryContext cxt, DeliveryChannel *ch,
				 DeliveryJob **next_jobs, int *next_njobs, MemoryContext next_cxt)
{
	MemoryContext old = CurrentMemoryContext;
	volatile bool ok = true;

	*next_njobs = 0;
	PG_TRY();
	{
		BeginWork("taskflow delivery: writing results");
		CompleteInWork(jobs, njobs, cxt);
		if (next_jobs)
			*next_njobs = ClaimInSubtransaction(ch, next_jobs, next_cxt);
		CommitWork();
	}
	PG_CATCH();
	{
		char	   *message = AbortWork(cxt);

		RecordError(NULL, psprintf("writing the results of %d messages failed: %s",
								   njobs, message));
		*next_njobs = 0;
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	return ok;
}

/*
 * DeliverChannel sends a channel's ready messages, batch after batch,
 * while batches come back full (at most 50 batches, then the other
 * channels get their turn; *more is then set, so that the worker goes on
 * without sleeping).  The report of a full batch and the claim of the next
 * one share a transaction.  False when a step failed.
 */
static bool
DeliverChannel(DeliveryChannel *ch, MemoryContext cxt, bool *more, bool *claimed)
{
	MemoryContext batch_cxt[2];
	DeliveryJob *jobs = NULL;
	int			njobs;
	TimestampTz started = GetCurrentTimestamp();
	int			cur = 0;
	bool		ok = true;
	int			round;

	batch_cxt[0] = AllocSetContextCreate(cxt, "taskflow delivery batch", ALLOCSET_DEFAULT_SIZES);
	batch_cxt[1] = AllocSetContextCreate(cxt, "taskflow delivery batch", ALLOCSET_DEFAULT_SIZES);
	njobs = ClaimBatch(ch, &jobs, batch_cxt[cur]);
	if (njobs < 0)
		ok = false;
	if (njobs > 0)
		*claimed = true;

	for (round = 1; njobs > 0; round++)
	{
		int			nxt = 1 - cur;
		bool		full = (njobs >= taskflow_delivery_batch_size);
		bool		claim_next = full && round < 50 && !ConfigReloadPending;
		DeliveryJob *next_jobs = NULL;
		int			next_njobs = 0;
		TimestampTz next_started;
		char		activity[128];

		snprintf(activity, sizeof(activity),
				 "taskflow delivery: sending %d messages through channel %s", njobs, ch->name);
		pgstat_report_activity(STATE_RUNNING, activity);
		DeliverySend(ch, jobs, njobs);
		if (claim_next)
			MemoryContextReset(batch_cxt[nxt]);
		next_started = GetCurrentTimestamp();
		if (CompleteAndClaim(jobs, njobs, batch_cxt[cur], ch,
							 claim_next ? &next_jobs : NULL, &next_njobs, batch_cxt[nxt]))
			RecordBatch(jobs, njobs, started);
		else
			ok = false;
		if (next_njobs < 0)
			ok = false;
		if (ok && full && round >= 50)
			*more = true;
		CHECK_FOR_INTERRUPTS();
		cur = nxt;
		jobs = next_jobs;
		njobs = next_njobs;
		started = next_started;
	}
	MemoryContextDelete(batch_cxt[0]);
	MemoryContextDelete(batch_cxt[1]);
	return ok;
}

static const char *next_sql =
"SELECT pg_catalog.min(taskflow.next_delivery_at(c.name, $2))"
"  FROM pg_catalog.unnest($1) c(name)";

/*
 * NextDelivery reads when the next message of these channels is ready
 * (NULL: none), in its own transaction; false after an error.
 */
static bool
NextDelivery(List *channels, TimestampTz *next, bool *has_next, MemoryContext cxt)
{
	MemoryContext old = CurrentMemoryContext;
	volatile bool ok = true;

	*has_next = false;
	if (channels == NIL)
		return true;
	PG_TRY();
	{
		Datum	   *names = palloc(sizeof(Datum) * list_length(channels));
		Oid			types[2] = {TEXTARRAYOID, TIMESTAMPTZOID};
		Datum		values[2];
		ListCell   *lc;
		int			n = 0;
		bool		isnull;

		foreach(lc, channels)
			names[n++] = CStringGetTextDatum(((DeliveryChannel *) lfirst(lc))->name);
		BeginWork("taskflow delivery: looking for the next message");
		values[0] = PointerGetDatum(construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT));
		values[1] = TimestampTzGetDatum(GetCurrentTimestamp());
		if (SPI_execute_plan(KeptPlan(&next_plan, next_sql, 2, types),
							 values, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "taskflow: next_delivery_at failed");
		*next = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
												  SPI_tuptable->tupdesc, 1, &isnull));
		*has_next = !isnull;
		CommitWork();
	}
	PG_CATCH();
	{
		char	   *message = AbortWork(cxt);

		RecordError(NULL, message);
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	return ok;
}

static const char *release_sql =
"UPDATE taskflow.outbox SET lease_expires_at = $2"
" WHERE state OPERATOR(pg_catalog.=) 'sending'"
"   AND lease_owner OPERATOR(pg_catalog.~~) $1"
"   AND lease_expires_at OPERATOR(pg_catalog.>) $2";

/*
 * StartRound reads the channels (false: taskflow is not installed here),
 * releasing at the first round the leases of an earlier worker with this
 * number (it died: nothing else holds them).  While the database's
 * automation is held there are no channels to serve (claim_messages would
 * claim nothing): the round only records the hold for the status view, and
 * the hold's release wakes the worker.
 */
static bool
StartRound(List **channels, MemoryContext cxt, bool *failed)
{
	MemoryContext old = CurrentMemoryContext;
	static bool released = false;
	static bool told_version = false;
	volatile bool installed = true;
	volatile bool ready = true;
	volatile bool held = false;
	bool		isnull;

	*channels = NIL;
	*failed = false;
	PG_TRY();
	{
		char	   *version;

		BeginWork("taskflow delivery: reading the channels");
		version = TaskflowInstalledVersion();
		installed = (version != NULL);
		/* SQL objects this library runs against: wait for an update */
		if (installed && !TaskflowVersionSupported(version))
		{
			ready = false;
			if (!told_version)
				RecordError(NULL, psprintf("taskflow %s is installed here but the library is version %s: waiting for ALTER EXTENSION taskflow UPDATE",
										   version, TASKFLOW_VERSION));
			told_version = true;
		}
		/* the channels and the claim functions exist (not an older script) */
		if (installed && ready &&
			(SPI_execute(ready_sql, true, 1) != SPI_OK_SELECT ||
			 !DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull))))
			ready = false;
		if (installed && ready)
		{
			char	   *hold = TaskflowHoldMessage();

			RecordHold(hold);
			held = (hold != NULL);
		}
		if (installed && ready && !held)
		{
			if (!released)
			{
				Oid			types[2] = {TEXTOID, TIMESTAMPTZOID};
				Datum		values[2];
				char		pattern[64];

				snprintf(pattern, sizeof(pattern), "taskflow delivery %d (pid %%", my_number);
				values[0] = CStringGetTextDatum(pattern);
				values[1] = TimestampTzGetDatum(GetCurrentTimestamp());
				SPI_execute_with_args(release_sql, 2, types, values, NULL, false, 0);
				if (SPI_processed > 0)
					ereport(LOG,
							(errmsg("taskflow delivery worker %d: released %lu messages leased by an earlier worker %d",
									my_number, (unsigned long) SPI_processed, my_number)));
			}
			*channels = LoadChannels(cxt);
		}
		CommitWork();
		if (installed && ready && !held)
			released = true;
	}
	PG_CATCH();
	{
		char	   *message = AbortWork(cxt);

		RecordError(NULL, message);
		*failed = true;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	return installed;
}

/*
 * DeliverRound sends what is ready in every channel and says when to wake
 * up next.  False when taskflow is not installed here.
 */
static bool
DeliverRound(TimestampTz *wake_at, MemoryContext cxt)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz latest = TimestampTzPlusMilliseconds(now, taskflow_safety_interval * 1000L);
	TimestampTz next = 0;
	List	   *channels;
	ListCell   *lc;
	bool		failed;
	bool		has_next;
	bool		more = false;
	bool		claimed = false;
	static int	unclaimable_ms = 0; /* back-off while "ready" rows stay locked */

	MemoryContextReset(cxt);
	*wake_at = latest;
	if (!StartRound(&channels, cxt, &failed))
		return false;
	foreach(lc, channels)
		if (!DeliverChannel((DeliveryChannel *) lfirst(lc), cxt, &more, &claimed))
			failed = true;
	if (more && !failed)
	{
		/* a channel stopped after 50 full batches: more is ready now */
		*wake_at = GetCurrentTimestamp();
		return true;
	}
	if (!NextDelivery(channels, &next, &has_next, cxt))
		failed = true;
	now = GetCurrentTimestamp();
	if (failed)
		*wake_at = TimestampTzPlusMilliseconds(now, 10000);
	else if (has_next && next < latest)
	{
		/*
		 * A row "ready now" this round could not claim: locked by another
		 * transaction (a report blocked by an application's lock on its
		 * member, an expired lease still held).  Wait 50 ms, doubling up
		 * to 5 s while it stays so, instead of claiming nothing 20 times
		 * a second (each claim a transaction that also wakes the
		 * scheduler).
		 */
		if (claimed || next > now)
			unclaimable_ms = 0;
		else
			unclaimable_ms = Min(Max(unclaimable_ms * 2, 50), 5000);
		*wake_at = Max(next, TimestampTzPlusMilliseconds(now, Max(unclaimable_ms, 50)));
	}
	if (channels == NIL)
		DeliveryForgetPools();
	return true;
}

/*
 * SleepUntil waits for the latch, the postmaster's death or the instant.
 */
static void
SleepUntil(TimestampTz when)
{
	long		secs;
	int			usecs;
	long		ms;

	LWLockAcquire(delivery_shared->lock, LW_EXCLUSIVE);
	my_slot->next_wakeup_at = when;
	LWLockRelease(delivery_shared->lock);
	TimestampDifference(GetCurrentTimestamp(), when, &secs, &usecs);
	ms = secs * 1000L + (usecs + 999) / 1000;
	if (ms > 0)
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
}

/*
 * taskflow_delivery_main is a delivery worker's main loop.
 */
void
taskflow_delivery_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	MemoryContext round_cxt;
	char	   *dbname;

	memcpy(&my_number, MyBgworkerEntry->bgw_extra, sizeof(my_number));
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);

	/*
	 * As autovacuum does: a search_path set for the database (by its owner,
	 * who need not be a superuser) must not pick the objects this worker's
	 * statements name, run with a superuser's rights.
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	/* its statements are short batches: compiling them costs more than running them */
	SetConfigOption("jit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	pgstat_report_appname("taskflow delivery");
	am_delivery_worker = true;
	snprintf(my_name, sizeof(my_name), "taskflow delivery %d (pid %d)", my_number, MyProcPid);
	ClaimSlot(dboid);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		ereport(ERROR, (errmsg("taskflow: could not initialize libcurl")));
	round_cxt = AllocSetContextCreate(TopMemoryContext, "taskflow delivery round",
									  ALLOCSET_DEFAULT_SIZES);
	StartTransactionCommand();
	dbname = MemoryContextStrdup(TopMemoryContext, get_database_name(MyDatabaseId));
	CommitTransactionCommand();

	for (;;)
	{
		TimestampTz wake_at;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (my_number > taskflow_delivery_workers || !TaskflowServesDatabase(dbname))
		{
			ereport(LOG,
					(errmsg("taskflow delivery worker %d of database \"%s\" is no longer needed",
							my_number, dbname)));
			slot_retired = true;
			proc_exit(0);
		}
		if (!taskflow_enabled)
			wake_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												  taskflow_safety_interval * 1000L);
		else if (!DeliverRound(&wake_at, round_cxt))
			proc_exit(0);		/* no taskflow here (DROP EXTENSION) */
		SleepUntil(wake_at);
	}
}

/* ---------------------------------------------------------------- status */

#define STATUS_COLUMNS 14

/*
 * taskflow.delivery_status() — one row per running (or stopped but not
 * yet reused) delivery worker of this database.
 */
Datum
taskflow_delivery_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	if (delivery_shared == NULL)
		PG_RETURN_VOID();
	for (i = 0; i < delivery_shared->nslots; i++)
	{
		DeliverySlot s;
		Datum		values[STATUS_COLUMNS];
		bool		nulls[STATUS_COLUMNS];

		LWLockAcquire(delivery_shared->lock, LW_SHARED);
		s = delivery_shared->slots[i];
		LWLockRelease(delivery_shared->lock);
		if (s.dboid != MyDatabaseId || s.number == 0 ||
			(s.pid == 0 && s.number > taskflow_delivery_workers))
			continue;
		memset(nulls, 0, sizeof(nulls));
		values[0] = Int32GetDatum(s.number);
		/*
		 * taskflow.enabled = off: the worker sleeps and sends nothing; held:
		 * the database's automation is held (last_error says why)
		 */
		values[1] = CStringGetTextDatum(s.pid == 0 && s.no_worker_slot ? "waiting for a worker slot"
										: s.pid == 0 ? "stopped"
										: !taskflow_enabled ? "disabled"
										: s.held ? "held" : "running");
		values[2] = Int32GetDatum(s.pid);
		nulls[2] = (s.pid == 0);
		values[3] = TimestampTzGetDatum(s.started_at);
		nulls[3] = (s.started_at == 0);
		values[4] = Int64GetDatum(s.batches);
		values[5] = Int64GetDatum(s.sent);
		values[6] = Int64GetDatum(s.temporary);
		values[7] = Int64GetDatum(s.permanent);
		values[8] = TimestampTzGetDatum(s.last_batch_at);
		nulls[8] = (s.last_batch_at == 0);
		values[9] = Int32GetDatum(s.last_batch_size);
		values[10] = Float8GetDatum(s.last_batch_ms);
		values[11] = TimestampTzGetDatum(s.next_wakeup_at);
		nulls[11] = (s.next_wakeup_at == 0 || s.pid == 0 || !taskflow_enabled);
		values[12] = TimestampTzGetDatum(s.last_error_at);
		nulls[12] = (s.last_error_at == 0);
		values[13] = CStringGetTextDatum(s.last_error);
		nulls[13] = (s.last_error_at == 0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}
