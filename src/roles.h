/*
 * roles.h
 *		Roles that own taskflow objects: DROP ROLE and REASSIGN OWNED.
 */
#ifndef TASKFLOW_ROLES_H
#define TASKFLOW_ROLES_H

#include "nodes/parsenodes.h"

extern void TaskflowCheckDropRole(DropRoleStmt *stmt);
extern void TaskflowReassignOwned(ReassignOwnedStmt *stmt);

#endif							/* TASKFLOW_ROLES_H */
