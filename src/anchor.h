/*
 * anchor.h
 *		Chains anchored on a member date: entry, anchor changes, and moving
 *		members on to the step due at its offset from their anchor.
 */
#ifndef TASKFLOW_ANCHOR_H
#define TASKFLOW_ANCHOR_H

#include "step.h"

extern int64 TaskflowAnchorEntryBatch(TaskflowRun run, TaskflowStep first);
extern int64 TaskflowAnchorChanges(TaskflowRun run, TaskflowStep first);
extern void TaskflowAnchorAdvance(TaskflowRun run, TaskflowStep step,
								  TaskflowStep next, MemberSet ids);

#endif							/* TASKFLOW_ANCHOR_H */
