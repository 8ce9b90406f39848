/*
 * settings.c
 *		The taskflow.* settings used by the engine.
 *
 * Settings of the background workers live with the workers; these are the
 * ones the engine itself reads, so they work the same whether the engine is
 * called from SQL or from a worker.
 */
#include "postgres.h"

#include "utils/guc.h"

#include "settings.h"

int			taskflow_entry_interval = 300;
int			taskflow_batch_size = 10000;

/*
 * TaskflowSettingsInit defines the engine's settings.
 */
void
TaskflowSettingsInit(void)
{
	DefineCustomIntVariable("taskflow.entry_interval",
							"How often chains scheduled \"always\" look for members who match.",
							"A chain may set its own entry_interval.",
							&taskflow_entry_interval,
							300, 1, 86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("taskflow.batch_size",
							"Members handled per statement batch by the engine.",
							"Bounds memory: a step due for more members runs in several batches.",
							&taskflow_batch_size,
							10000, 1, 1000000,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);
}
