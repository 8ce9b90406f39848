/*
 * hold.c
 *		Holding the automation of a database restored from a dump.
 *
 * pg_restore (or psql with a plain dump) runs CREATE EXTENSION taskflow,
 * which starts the database's scheduler and delivery workers at commit,
 * and then loads taskflow's tables one by one.  Run on that half-loaded
 * data, the engine would enter members whose place in a chain is not
 * loaded yet (again: duplicate steps and mail), and a copy of a production
 * database would send the messages the original also sends.
 *
 * Only a restore loads taskflow's internal tables with COPY (the API never
 * does; applications COPY only members, events and group stays).  So such
 * a COPY first records a hold (taskflow.hold), in its own transaction:
 * before it nothing the engine acts on is loaded, and from its commit on
 * the scheduler runs nothing and taskflow.claim_messages() claims nothing,
 * until the DBA runs SELECT taskflow.resume_automation().
 *
 * A run reads with a new snapshot at each statement, so a run that found
 * no hold must not see a restore's data committed while it goes on: the
 * scheduler (and claim_messages) hold taskflow.hold in SHARE mode for the
 * whole transaction and read it after the lock is granted; the restore's
 * INSERT into it (ROW EXCLUSIVE) waits for runs in progress, and runs that
 * start later wait for the restore's transaction and then see the hold.
 * A database at version 0.1 has no taskflow.hold: nothing is held there.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#include "hold.h"

/* the tables applications load with COPY themselves: not a restore */
static const char *const application_tables[] = {
	"member", "event", "group_membership", "hold"
};

/*
 * HoldRelation returns taskflow.hold's oid, or InvalidOid where it does not
 * exist (taskflow not installed, or at version 0.1).
 */
static Oid
HoldRelation(void)
{
	Oid			nsp = get_namespace_oid("taskflow", true);

	if (!OidIsValid(nsp))
		return InvalidOid;
	return get_relname_relid("hold", nsp);
}

/*
 * TaskflowHoldMessage returns (palloc'd in the caller's context) why this
 * database's automation is held and how to resume it, for the status view
 * and the log; NULL when it is not held.  Called at the start of a
 * scheduler's run transaction (an active snapshot pushed): it locks
 * taskflow.hold in SHARE mode until the run commits, then reads it with a
 * new snapshot (see above).
 */
char *
TaskflowHoldMessage(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	   *message = NULL;

	if (!OidIsValid(HoldRelation()))
		return NULL;
	SPI_connect();
	if (SPI_execute("LOCK TABLE taskflow.hold IN SHARE MODE", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "taskflow: locking taskflow.hold failed");
	if (SPI_execute("SELECT pg_catalog.format('%s (held since %s); check the channels, then run SELECT taskflow.resume_automation()',"
					" pg_catalog.\"left\"(h.reason, 100), pg_catalog.date_trunc('second', h.held_at))"
					"  FROM taskflow.hold h", false, 1) != SPI_OK_SELECT)
		elog(ERROR, "taskflow: reading taskflow.hold failed");
	if (SPI_processed > 0)
	{
		char	   *value = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		message = MemoryContextStrdup(cxt, value ? value : "held");
	}
	SPI_finish();
	return message;
}

/*
 * RestoresTaskflow says whether a utility statement loads one of taskflow's
 * internal tables with COPY, which only a restore does; sets *relname.
 */
static bool
RestoresTaskflow(Node *parsetree, char **relname)
{
	CopyStmt   *copy = (CopyStmt *) parsetree;
	Oid			relid;
	Oid			nsp;

	if (!IsA(parsetree, CopyStmt) || !copy->is_from || copy->relation == NULL)
		return false;
	nsp = get_namespace_oid("taskflow", true);
	relid = RangeVarGetRelid(copy->relation, NoLock, true);
	if (!OidIsValid(nsp) || !OidIsValid(relid) || get_rel_namespace(relid) != nsp)
		return false;
	/* a COPY that will be refused loads nothing: let it say why */
	if (pg_class_aclcheck(relid, GetUserId(), ACL_INSERT) != ACLCHECK_OK)
		return false;
	*relname = get_rel_name(relid);
	for (int i = 0; i < lengthof(application_tables); i++)
		if (*relname == NULL || strcmp(*relname, application_tables[i]) == 0)
			return false;
	return true;
}

/*
 * TaskflowHoldIfRestoring (before a utility statement runs) records a hold
 * when the statement is a restore's COPY into an internal table: in the
 * same transaction, so the workers never see the loaded rows unheld.  The
 * INSERT waits for a scheduler's run in progress (see above); it comes
 * before the COPY, so this session holds no lock a run could wait for.
 * The first hold is kept.
 */
void
TaskflowHoldIfRestoring(Node *parsetree)
{
	char	   *relname = NULL;
	bool		pushed = false;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	if (!RestoresTaskflow(parsetree, &relname) || !OidIsValid(HoldRelation()))
		return;
	values[0] = CStringGetTextDatum(psprintf("restored from a dump (COPY into taskflow.%s)",
											 relname));
	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pushed = true;
	}
	SPI_connect();
	if (SPI_execute_with_args("INSERT INTO taskflow.hold (reason) VALUES ($1)"
							  " ON CONFLICT DO NOTHING",
							  1, types, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "taskflow: recording the hold of a restored database failed");
	if (SPI_processed > 0)
		ereport(LOG,
				(errmsg("taskflow: this database is being restored from a dump: its automation is held"),
				 errhint("Once the restore is complete, check the channels, then run SELECT taskflow.resume_automation().")));
	SPI_finish();
	if (pushed)
		PopActiveSnapshot();
}
