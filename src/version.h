/*
 * version.h
 *		Which versions of taskflow's SQL objects this library runs against.
 */
#ifndef TASKFLOW_VERSION_H
#define TASKFLOW_VERSION_H

extern char *TaskflowInstalledVersion(void);
extern bool TaskflowVersionSupported(const char *version);
extern void TaskflowCheckInstalledVersion(void);

#endif							/* TASKFLOW_VERSION_H */
