/*
 * chain.h
 *		A chain as the engine sees it: its settings and its steps in order.
 */
#ifndef TASKFLOW_CHAIN_H
#define TASKFLOW_CHAIN_H

#include "postgres.h"

#include "datatype/timestamp.h"

typedef struct TaskflowStepData
{
	int			step_id;
	int			position;
	int			task_id;
	char	   *task_name;
	bool		manual;			/* mode manual: members wait for an operator */
	char	   *criteria_name;	/* NULL: the task targets everyone */
	char	   *criteria_sql;	/* normalized criteria expression */
	char	   *actions;		/* jsonb text */
	int			template_id;	/* 0: no message */
	int			offset_days;	/* anchor chains: days from the anchor */
	bool		leave_on_mismatch;
	Oid			task_owner;		/* who may change the task */
	Oid			criteria_owner; /* who may change its criteria (or InvalidOid) */
} TaskflowStepData;

typedef TaskflowStepData *TaskflowStep;

typedef struct TaskflowChainData
{
	int			chain_id;
	char	   *name;
	Oid			owner;
	bool		owner_could_login;	/* at creation: pause if it loses LOGIN */
	char	   *time_zone;
	bool		repeat;
	char		reentry;		/* 'n'ever, 'r'ematch, 'c'ooldown */
	char	   *reentry_cooldown;	/* interval text, for cooldown */
	char	   *entry_interval; /* effective entry interval, as text */
	char	   *anchor_sql;		/* anchor chains: the member's anchor (SQL) */
	bool		anchor_yearly;
	char		anchor_change;	/* 'r'estart, 'f'ollow, 'i'gnore */
	char		activation;		/* 'n'ew, 'e'xisting */
	int			nsteps;
	TaskflowStepData *steps;	/* in position order */
} TaskflowChainData;

typedef TaskflowChainData *TaskflowChain;

/* What a run did, per chain (the summary taskflow.run() returns). */
typedef struct TaskflowCountsData
{
	int64		entered;
	int64		applied;
	int64		pending;
	int64		left;
	int64		errors;
	int64		busy;			/* chains skipped: another transaction held them */
} TaskflowCountsData;

typedef TaskflowCountsData *TaskflowCounts;

extern TaskflowChain TaskflowLoadChain(int chain_id, MemoryContext cxt);
extern TaskflowStep TaskflowChainStepById(TaskflowChain chain, int step_id);
extern char *TaskflowOwnerProblem(TaskflowChain chain);

#endif							/* TASKFLOW_CHAIN_H */
