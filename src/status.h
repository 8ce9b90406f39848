/*
 * status.h
 *		What CREATE EXTENSION taskflow checks before its script runs.
 */
#ifndef TASKFLOW_STATUS_H
#define TASKFLOW_STATUS_H

#include "nodes/nodes.h"

extern void TaskflowCheckCreateExtension(Node *parsetree);

#endif							/* TASKFLOW_STATUS_H */
