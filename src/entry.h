/*
 * entry.h
 *		Members entering a chain when its schedule is due.
 */
#ifndef TASKFLOW_ENTRY_H
#define TASKFLOW_ENTRY_H

#include "step.h"

extern bool TaskflowRunEntries(TaskflowRun run, TaskflowCounts counts);

#endif							/* TASKFLOW_ENTRY_H */
