/*
 * entry.h
 *		Members entering a chain when its schedule is due.
 */
#ifndef TASKFLOW_ENTRY_H
#define TASKFLOW_ENTRY_H

#include "step.h"

extern bool TaskflowRunEntries(TaskflowRun run, TaskflowCounts counts);
extern bool TaskflowEntryRange(TaskflowRun run, int64 *first, int64 *last);
extern bool TaskflowEntryEligible(TaskflowRun run, int64 member_id);

#endif							/* TASKFLOW_ENTRY_H */
