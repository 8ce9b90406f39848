/*
 * step.h
 *		Applying one step of a chain to a set of members, set-based: every
 *		operation is a fixed number of statements over the whole batch.
 */
#ifndef TASKFLOW_STEP_H
#define TASKFLOW_STEP_H

#include "chain.h"
#include "memberset.h"

/* One chain being run as of an instant, by the engine or an operator. */
typedef struct TaskflowRunData
{
	TaskflowChain chain;
	TimestampTz as_of;
	const char *actor;			/* "taskflow", or the operator's role name */
	TaskflowCountsData counts;	/* of the batch in progress */
	int64		entry_after;	/* entry batches: last member id entered */
	TimestampTz due_after_at;	/* due batches of a step: the last one's */
	int64		due_after_id;	/* (due_at, member_id) */
	int			batch_limit;	/* due batches: members at most (0: batch_size) */
	int64		last_taken;		/* a member the last batch took (or NO_MEMBER) */
	int64		entry_upto;		/* entry batches: members up to this id only */
	bool		entry_bounded;	/* (whether entry_upto applies) */
	MemberSet	entry_only;		/* entry batches: the only candidates (NULL: all) */
} TaskflowRunData;

typedef TaskflowRunData *TaskflowRun;

/* last_taken before a batch has taken anyone (member ids may be negative:
 * a preview's hypothetical member is -1) */
#define NO_MEMBER PG_INT64_MIN

extern int64 TaskflowRunDueBatch(TaskflowRun run, TaskflowStep step);
extern void TaskflowResetDueBatches(TaskflowRun run);
extern uint64 TaskflowBookkeeping(TaskflowRun run, TaskflowStep step,
								  MemberSet ids, const char *sql,
								  const char *text8, int int9);
extern void TaskflowFinish(TaskflowRun run, TaskflowStep step, MemberSet ids);
extern void TaskflowEnterMembers(TaskflowRun run, MemberSet ids);
extern void TaskflowHandleMatched(TaskflowRun run, TaskflowStep step,
								  MemberSet ids);
extern void TaskflowApplyStep(TaskflowRun run, TaskflowStep step, MemberSet ids);
extern void TaskflowSkipStep(TaskflowRun run, TaskflowStep step, MemberSet ids);
extern void TaskflowLeaveChain(TaskflowRun run, TaskflowStep step,
							   MemberSet ids, const char *event,
							   const char *reason);
extern MemberSet TaskflowMatching(TaskflowRun run, const char *criteria_sql,
								  MemberSet ids);

#endif							/* TASKFLOW_STEP_H */
