/*
 * hold.h
 *		Holding the automation of a database restored from a dump.
 */
#ifndef TASKFLOW_HOLD_H
#define TASKFLOW_HOLD_H

#include "postgres.h"

#include "nodes/nodes.h"

extern char *TaskflowHoldMessage(void);
extern void TaskflowHoldIfRestoring(Node *parsetree);

#endif							/* TASKFLOW_HOLD_H */
