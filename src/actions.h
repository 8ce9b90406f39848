/*
 * actions.h
 *		A task's data-change actions (STEP3): checked when saved, run as the
 *		chain's owner over a whole batch of members.
 */
#ifndef TASKFLOW_ACTIONS_H
#define TASKFLOW_ACTIONS_H

#include "chain.h"
#include "memberset.h"

extern void TaskflowRunActions(TaskflowChain chain, TaskflowStep step,
							   MemberSet ids, TimestampTz as_of);

#endif							/* TASKFLOW_ACTIONS_H */
