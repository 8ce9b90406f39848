/*
 * settings.h
 *		The taskflow.* settings.
 */
#ifndef TASKFLOW_SETTINGS_H
#define TASKFLOW_SETTINGS_H

extern int	taskflow_entry_interval;	/* seconds */
extern int	taskflow_batch_size;

extern void TaskflowSettingsInit(void);

#endif							/* TASKFLOW_SETTINGS_H */
