/*
 * status.c
 *		taskflow.worker_status: what each database's scheduler last did,
 *		when it wakes next, and its last error — read from shared memory.
 *		And what CREATE EXTENSION checks first: the preload, the encoding.
 */
#include "postgres.h"

#include "commands/dbcommands.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "settings.h"
#include "shared.h"
#include "status.h"

PG_FUNCTION_INFO_V1(taskflow_worker_status);
PG_FUNCTION_INFO_V1(taskflow_check_preloaded);

#define STATUS_COLUMNS 15

/*
 * RequirePreloaded raises unless the workers' shared memory exists.
 */
static void
RequirePreloaded(void)
{
	if (taskflow_shared == NULL && !IsBinaryUpgrade)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("taskflow is not in shared_preload_libraries"),
				 errhint("Add taskflow to shared_preload_libraries in postgresql.conf and restart the server; its background workers run due work.")));
}

/*
 * taskflow._check_preloaded() — CREATE EXTENSION refuses to install
 * taskflow where its workers cannot run.
 */
Datum
taskflow_check_preloaded(PG_FUNCTION_ARGS)
{
	RequirePreloaded();
	PG_RETURN_VOID();
}

/*
 * TaskflowCheckCreateExtension refuses CREATE EXTENSION taskflow in a
 * database whose encoding is not UTF8, before the install script (Japanese
 * text, converted from UTF8) is read: a LATIN1 database would otherwise
 * fail with a bare conversion error, and an SQL_ASCII one would install a
 * taskflow that refuses every Japanese name.  The install script makes the
 * same check first, for a session where the library is not loaded yet.
 */
void
TaskflowCheckCreateExtension(Node *parsetree)
{
	if (!IsA(parsetree, CreateExtensionStmt) ||
		strcmp(((CreateExtensionStmt *) parsetree)->extname, "taskflow") != 0 ||
		GetDatabaseEncoding() == PG_UTF8)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("taskflow needs a UTF8 database; database \"%s\" uses encoding %s",
					get_database_name(MyDatabaseId), GetDatabaseEncodingName()),
			 errdetail("taskflow stores names, templates and mail text in Japanese."),
			 errhint("Create a database with CREATE DATABASE ... TEMPLATE template0 ENCODING 'UTF8' and install taskflow there.")));
}

/*
 * SlotState says what a slot's database is doing, for the status view, and
 * why when that is not evident (NULL: the slot's own last_error stands).
 */
static const char *
SlotState(TaskflowDbSlotData *s, const char *dbname, const char **reason)
{
	*reason = NULL;
	if (s->pid != 0 && s->disabled)
	{
		*reason = "taskflow.enabled is off: the scheduler runs nothing until it is turned on";
		return "disabled";
	}
	if (s->pid != 0)
		return s->held ? "held" : "running";
	if (dbname != NULL && !TaskflowServesDatabase(dbname))
	{
		*reason = "not listed in taskflow.databases: no scheduler is started for it";
		return "not served";
	}
	if (s->no_extension)
		return "no taskflow here";
	if (s->start_failed)
	{
		*reason = "no background worker slot is free (raise max_worker_processes); the launcher tries again every 5 seconds";
		return "waiting for a worker slot";
	}
	return "stopped";
}

/*
 * SlotValues fills one row of the status view from a slot.
 */
static void
SlotValues(TaskflowDbSlotData *s, Datum *values, bool *nulls)
{
	char	   *dbname = get_database_name(s->dboid);
	const char *reason;

	values[0] = ObjectIdGetDatum(s->dboid);
	values[1] = dbname ? CStringGetTextDatum(dbname) : (Datum) 0;
	nulls[1] = (dbname == NULL);
	values[2] = CStringGetTextDatum(SlotState(s, dbname, &reason));
	if (reason != NULL)
		strlcpy(s->last_error, reason, TASKFLOW_ERROR_LEN);
	values[3] = Int32GetDatum(s->pid);
	nulls[3] = (s->pid == 0);
	values[4] = TimestampTzGetDatum(s->started_at);
	nulls[4] = (s->started_at == 0);
	values[5] = TimestampTzGetDatum(s->last_run_at);
	nulls[5] = (s->last_run_at == 0);
	values[6] = Float8GetDatum(s->last_run_ms);
	nulls[6] = (s->last_run_at == 0);
	values[7] = Int64GetDatum(s->runs);
	values[8] = Int64GetDatum(s->last_entered);
	values[9] = Int64GetDatum(s->last_applied);
	values[10] = Int64GetDatum(s->last_pending);
	values[11] = Int64GetDatum(s->last_left);
	values[12] = Int64GetDatum(s->last_errors);
	values[13] = TimestampTzGetDatum(s->next_wakeup_at);
	nulls[13] = (s->next_wakeup_at == 0 || s->pid == 0 || s->disabled);
	values[14] = CStringGetTextDatum(s->last_error);
	nulls[14] = (s->last_error[0] == '\0');
}

/*
 * WaitingValues fills one row of the status view for a database the
 * launcher left out because every taskflow.max_workers slot is in use;
 * false when the row is not worth showing (dropped, or no longer served).
 */
static bool
WaitingValues(Oid dboid, Datum *values, bool *nulls)
{
	TaskflowDbSlotData s;
	char		reason[TASKFLOW_ERROR_LEN];
	char	   *dbname = get_database_name(dboid);

	if (dbname == NULL || !TaskflowServesDatabase(dbname))
		return false;
	memset(&s, 0, sizeof(s));
	s.dboid = dboid;
	SlotValues(&s, values, nulls);
	values[2] = CStringGetTextDatum("waiting for a worker slot");
	snprintf(reason, sizeof(reason),
			 "all %d of taskflow.max_workers are in use: raise taskflow.max_workers (needs a restart), or list fewer databases in taskflow.databases",
			 taskflow_shared->nslots);
	values[14] = CStringGetTextDatum(reason);
	nulls[14] = false;
	return true;
}

/*
 * taskflow.worker_status() — one row per database the launcher looked at,
 * and one per database it left out for want of a slot.
 */
Datum
taskflow_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TaskflowDbSlotData *copy;
	Oid			waiting[TASKFLOW_WAITING_MAX];
	int			nwaiting;
	int			n;
	int			i;

	RequirePreloaded();
	InitMaterializedSRF(fcinfo, 0);
	n = taskflow_shared->nslots;
	copy = palloc(sizeof(TaskflowDbSlotData) * n);
	LWLockAcquire(taskflow_shared->lock, LW_SHARED);
	memcpy(copy, taskflow_shared->slots, sizeof(TaskflowDbSlotData) * n);
	nwaiting = taskflow_shared->nwaiting;
	memcpy(waiting, taskflow_shared->waiting, sizeof(Oid) * nwaiting);
	LWLockRelease(taskflow_shared->lock);
	for (i = 0; i < n; i++)
	{
		Datum		values[STATUS_COLUMNS];
		bool		nulls[STATUS_COLUMNS] = {false};

		if (copy[i].dboid == InvalidOid)
			continue;
		SlotValues(&copy[i], values, nulls);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	for (i = 0; i < nwaiting; i++)
	{
		Datum		values[STATUS_COLUMNS];
		bool		nulls[STATUS_COLUMNS] = {false};
		bool		has_slot = false;

		/* the launcher's list is from its last scan: a slot may be newer */
		for (int j = 0; j < n; j++)
			if (copy[j].dboid == waiting[i])
				has_slot = true;
		if (!has_slot && WaitingValues(waiting[i], values, nulls))
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
