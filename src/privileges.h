/*
 * privileges.h
 *		Who taskflow code runs as: the extension owner for privileged
 *		writes, a chain's or criteria's owner for user-defined expressions.
 */
#ifndef TASKFLOW_PRIVILEGES_H
#define TASKFLOW_PRIVILEGES_H

/* The user and security context to go back to after running as a role. */
typedef struct TaskflowSavedUser
{
	Oid			userid;
	int			sec_context;
	int			path_level;		/* GUC nest level of the pinned search_path */
} TaskflowSavedUser;

extern Oid	TaskflowExtensionOwner(void);
extern void TaskflowBecomeUser(Oid role, TaskflowSavedUser *saved);
extern void TaskflowRestoreUser(const TaskflowSavedUser *saved);
extern void TaskflowCheckCanUse(Oid caller, Oid owner, const char *what);
extern int	TaskflowPinSearchPath(void);
extern void TaskflowUnpinSearchPath(int nest_level);

#endif							/* TASKFLOW_PRIVILEGES_H */
