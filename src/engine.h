/*
 * engine.h
 *		The engine: runs everything due as of an instant.
 */
#ifndef TASKFLOW_ENGINE_H
#define TASKFLOW_ENGINE_H

#include "chain.h"

#include "step.h"

/* A unit of work run in its own subtransaction; returns members taken. */
typedef int64 (*TaskflowUnit) (TaskflowRun run, TaskflowStep step);

extern bool taskflow_unguarded_units;
extern bool taskflow_previewing;

extern bool TaskflowRunBatches(TaskflowRun run, TaskflowUnit unit,
							   TaskflowStep step, TaskflowCounts total);
extern bool TaskflowTryUnit(TaskflowRun run, TaskflowUnit unit, TaskflowStep step,
							TaskflowCounts total, int64 *taken, ErrorData **edata);
extern void TaskflowRecordError(TaskflowRun run, TaskflowStep step, ErrorData *edata);
extern void TaskflowErrorRow(TaskflowRun run, TaskflowStep step, ErrorData *edata,
							 Datum *values, char *nulls);
#include "utils/tuplestore.h"

extern void TaskflowRunAll(Oid caller, const char *chain_name, TimestampTz as_of,
						   Tuplestorestate *result, TupleDesc desc);
extern void TaskflowRunDue(Oid caller, TimestampTz as_of, TaskflowCounts total);
extern void TaskflowCheckRunnable(Oid caller, const char *chain_name);
extern bool TaskflowRunChain(int chain_id, TimestampTz as_of,
							 TaskflowCounts counts);
extern int	TaskflowPushRunSettings(TimestampTz as_of, const char *time_zone);
extern void TaskflowPopRunSettings(int nest_level);

#endif							/* TASKFLOW_ENGINE_H */
