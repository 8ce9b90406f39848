/*
 * settings.h
 *		The taskflow.* settings.
 */
#ifndef TASKFLOW_SETTINGS_H
#define TASKFLOW_SETTINGS_H

extern int	taskflow_entry_interval;	/* seconds */
extern int	taskflow_batch_size;
extern bool taskflow_enabled;
extern int	taskflow_max_workers;
extern char *taskflow_databases;
extern int	taskflow_chain_timeout;	/* milliseconds, 0 = none */
extern int	taskflow_safety_interval;	/* seconds */
extern int	taskflow_delivery_workers;
extern int	taskflow_delivery_batch_size;
extern int	taskflow_delivery_lease;	/* seconds */

/* the most delivery workers per database (taskflow.delivery_workers) */
#define TASKFLOW_MAX_DELIVERY_WORKERS 16

extern void TaskflowSettingsInit(void);
extern void TaskflowWorkerSettingsInit(void);
extern bool TaskflowServesDatabase(const char *dbname);

#endif							/* TASKFLOW_SETTINGS_H */
