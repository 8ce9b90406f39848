/*
 * version.c
 *		Which versions of taskflow's SQL objects this library runs against.
 *
 * After new binaries are installed, a database keeps the SQL objects of
 * the version it was created or last updated with until someone runs
 * ALTER EXTENSION taskflow UPDATE.  The library knows the versions it can
 * work with: its own, and the older ones whose tables and functions its C
 * code still finds (the upgrade test runs the engine and the workers on
 * the oldest one listed before updating).  Against any other version the
 * engine refuses with a hint to update, and the workers wait, saying why
 * in worker_status, until the update (which wakes them) commits.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "version.h"

#ifndef TASKFLOW_VERSION
#error "TASKFLOW_VERSION must be defined by the Makefile"
#endif

/* the SQL versions this library runs against, oldest first, its own last */
static const char *const supported_versions[] = {"0.1", TASKFLOW_VERSION};

/*
 * TaskflowInstalledVersion returns (palloc'd) the version of taskflow
 * installed in this database, or NULL when it is not installed.  Needs a
 * transaction.
 */
char *
TaskflowInstalledVersion(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	char	   *version = NULL;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("taskflow"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bool		isnull;
		Datum		datum = heap_getattr(tuple, Anum_pg_extension_extversion,
										 RelationGetDescr(rel), &isnull);

		if (!isnull)
			version = TextDatumGetCString(datum);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

/*
 * TaskflowVersionSupported says whether this library runs against the SQL
 * objects of the given version.
 */
bool
TaskflowVersionSupported(const char *version)
{
	for (int i = 0; i < lengthof(supported_versions); i++)
		if (strcmp(version, supported_versions[i]) == 0)
			return true;
	return false;
}

/*
 * TaskflowCheckInstalledVersion raises an error when taskflow's SQL
 * objects in this database are of a version this library cannot run
 * against.
 */
void
TaskflowCheckInstalledVersion(void)
{
	char	   *version = TaskflowInstalledVersion();

	if (version != NULL && !TaskflowVersionSupported(version))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("taskflow %s is installed in this database, but the taskflow library loaded is version %s",
						version, TASKFLOW_VERSION),
				 errhint("Run ALTER EXTENSION taskflow UPDATE, or install the binaries of version %s.",
						 version)));
}
