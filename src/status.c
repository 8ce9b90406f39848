/*
 * status.c
 *		taskflow.worker_status: what each database's scheduler last did,
 *		when it wakes next, and its last error — read from shared memory.
 */
#include "postgres.h"

#include "commands/dbcommands.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "shared.h"

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
 * SlotValues fills one row of the status view from a slot.
 */
static void
SlotValues(TaskflowDbSlotData *s, Datum *values, bool *nulls)
{
	char	   *dbname = get_database_name(s->dboid);

	values[0] = ObjectIdGetDatum(s->dboid);
	values[1] = dbname ? CStringGetTextDatum(dbname) : (Datum) 0;
	nulls[1] = (dbname == NULL);
	values[2] = CStringGetTextDatum(s->pid != 0 ? (s->held ? "held" : "running")
									: s->no_extension ? "no taskflow here"
									: "stopped");
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
	nulls[13] = (s->next_wakeup_at == 0 || s->pid == 0);
	values[14] = CStringGetTextDatum(s->last_error);
	nulls[14] = (s->last_error[0] == '\0');
}

/*
 * taskflow.worker_status() — one row per database the launcher looked at.
 */
Datum
taskflow_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TaskflowDbSlotData *copy;
	int			n;
	int			i;

	RequirePreloaded();
	InitMaterializedSRF(fcinfo, 0);
	n = taskflow_shared->nslots;
	copy = palloc(sizeof(TaskflowDbSlotData) * n);
	LWLockAcquire(taskflow_shared->lock, LW_SHARED);
	memcpy(copy, taskflow_shared->slots, sizeof(TaskflowDbSlotData) * n);
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
	return (Datum) 0;
}
