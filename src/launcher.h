/*
 * launcher.h
 *		The launcher background worker.
 */
#ifndef TASKFLOW_LAUNCHER_H
#define TASKFLOW_LAUNCHER_H

extern void TaskflowRegisterLauncher(void);

#endif							/* TASKFLOW_LAUNCHER_H */
