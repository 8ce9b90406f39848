/*
 * taskflow.c
 *		Module entry point: _PG_init only calls each module's init.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "clock.h"
#include "settings.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/*
 * _PG_init registers every module's settings, then reserves the "taskflow."
 * prefix so a misspelt setting is reported instead of silently ignored.
 */
void
_PG_init(void)
{
	TaskflowClockInit();
	TaskflowSettingsInit();
	MarkGUCPrefixReserved("taskflow");
}
