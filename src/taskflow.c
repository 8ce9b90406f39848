/*
 * taskflow.c
 *		Module entry point: _PG_init only calls each module's init.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "clock.h"
#include "delivery.h"
#include "launcher.h"
#include "settings.h"
#include "shared.h"
#include "wakeup.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/*
 * _PG_init registers every module's settings and hooks; the background
 * workers only when taskflow is preloaded (and never during pg_upgrade).
 * Then it reserves the "taskflow." prefix so a misspelt setting is
 * reported instead of silently ignored.
 */
void
_PG_init(void)
{
	TaskflowClockInit();
	TaskflowSettingsInit();
	if (process_shared_preload_libraries_in_progress && !IsBinaryUpgrade)
	{
		TaskflowWorkerSettingsInit();
		TaskflowSharedRequest();
		TaskflowRegisterLauncher();
	}
	TaskflowWakeupInit();
	TaskflowDeliveryInit();
	MarkGUCPrefixReserved("taskflow");
}
