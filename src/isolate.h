/*
 * isolate.h
 *		A step's due batches, with the members a failing batch fails for
 *		found and set aside so the others go on.
 */
#ifndef TASKFLOW_ISOLATE_H
#define TASKFLOW_ISOLATE_H

#include "step.h"

#include "engine.h"

extern bool TaskflowRunIsolated(TaskflowRun run, TaskflowUnit unit, TaskflowStep step,
								TaskflowCounts total, bool entering);
extern bool TaskflowRunDueBatches(TaskflowRun run, TaskflowStep step,
								  TaskflowCounts total);

#endif							/* TASKFLOW_ISOLATE_H */
