/*
 * wakeup.h
 *		Waking the workers when something changes, at commit.
 */
#ifndef TASKFLOW_WAKEUP_H
#define TASKFLOW_WAKEUP_H

extern void TaskflowWakeupInit(void);
extern void TaskflowWakeAtCommit(void);

#endif							/* TASKFLOW_WAKEUP_H */
