/*
 * settings.c
 *		The taskflow.* settings: those the engine reads (usable from SQL
 *		whether or not taskflow is preloaded) and those of the background
 *		workers (defined only when it is).
 */
#include "postgres.h"

#include <limits.h>

#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/varlena.h"

#include "settings.h"

int			taskflow_entry_interval = 300;
int			taskflow_batch_size = 10000;
bool		taskflow_enabled = true;
int			taskflow_max_workers = 8;
char	   *taskflow_databases = NULL;
int			taskflow_chain_timeout = 600000;
int			taskflow_safety_interval = 300;
int			taskflow_delivery_workers = 1;
int			taskflow_delivery_batch_size = 100;
int			taskflow_delivery_lease = 300;

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

/*
 * CheckDatabases accepts "*" or a comma-separated list of database names
 * (compared as written, upper case included; double quotes are optional).
 */
static bool
CheckDatabases(char **newval, void **extra, GucSource source)
{
	char	   *copy = pstrdup(*newval);
	List	   *names;
	bool		ok = SplitGUCList(copy, ',', &names);

	if (!ok)
		GUC_check_errdetail("List syntax is invalid.");
	list_free(names);
	pfree(copy);
	return ok;
}

/*
 * TaskflowWorkerSettingsInit defines the background workers' settings.
 */
void
TaskflowWorkerSettingsInit(void)
{
	DefineCustomBoolVariable("taskflow.enabled",
							 "Whether taskflow's background workers run due work.",
							 "When off, the schedulers sleep; taskflow.run() still works.",
							 &taskflow_enabled, true, PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("taskflow.max_workers",
							"How many databases taskflow can serve at once (one scheduler each).",
							NULL, &taskflow_max_workers, 8, 1, 128,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("taskflow.databases",
							   "Databases taskflow serves: * for every database where it is installed, or a list.",
							   NULL, &taskflow_databases, "*", PGC_SIGHUP, 0,
							   CheckDatabases, NULL, NULL);
	DefineCustomIntVariable("taskflow.chain_statement_timeout",
							"Longest time the worker lets one batch of one chain run (0: no limit).",
							"A batch that takes longer is cancelled and recorded as the chain's error.",
							&taskflow_chain_timeout, 600000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("taskflow.safety_interval",
							"Longest a scheduler sleeps when nothing is due.",
							"Work is normally run on time and on change; this is only a safety net.",
							&taskflow_safety_interval, 300, 1, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("taskflow.delivery_workers",
							"Delivery workers per served database (0: none).",
							"Each sends the outbox's messages through every enabled channel.",
							&taskflow_delivery_workers, 1, 0, TASKFLOW_MAX_DELIVERY_WORKERS,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("taskflow.delivery_batch_size",
							"Messages a delivery worker claims at once from one channel.",
							"Results are written back in one transaction per batch.",
							&taskflow_delivery_batch_size, 100, 1, 10000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("taskflow.delivery_lease",
							"How long a claimed message stays leased to its delivery worker.",
							"A message whose worker died is sent again after its lease expires; "
							"make it longer than a batch takes to send.",
							&taskflow_delivery_lease, 300, 1, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
}

/*
 * TaskflowServesDatabase says whether taskflow.databases includes dbname.
 * Names are compared as written: a database "Salon" is listed as Salon
 * (SplitGUCList strips double quotes but does not fold case).
 */
bool
TaskflowServesDatabase(const char *dbname)
{
	char	   *copy;
	List	   *names;
	ListCell   *lc;
	bool		found = false;

	if (taskflow_databases == NULL || strcmp(taskflow_databases, "*") == 0)
		return true;
	copy = pstrdup(taskflow_databases);
	if (!SplitGUCList(copy, ',', &names))
		return false;
	foreach(lc, names)
		if (strcmp((char *) lfirst(lc), dbname) == 0)
			found = true;
	return found;
}
