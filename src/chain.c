/*
 * chain.c
 *		Loading a chain and its steps for a run.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/syscache.h"

#include "chain.h"
#include "privileges.h"
#include "spi_util.h"

/* load_chain_sql's generic plan, made once per backend (TaskflowExecSaved) */
static SPIPlanPtr load_chain_plan = NULL;

static const char *load_chain_sql =
"SELECT c.chain_id, c.name, c.owner::oid, c.time_zone, c.repeat, c.reentry,"
"       c.reentry_cooldown::text, s.step_id, s.position, t.task_id, t.name,"
"       t.mode, cr.name, cr.normalized, t.actions::text,"
"       COALESCE(t.template_id, 0), t.on_mismatch, c.owner_could_login,"
"       taskflow._anchor_sql(c.anchor, c.time_zone), c.anchor_yearly, c.anchor_change,"
"       c.activation, COALESCE(s.wait_days, 0),"
"       COALESCE(c.entry_interval,"
"                pg_catalog.current_setting('taskflow.entry_interval')::interval)::text,"
"       t.owner::oid, cr.owner::oid"
"  FROM taskflow.chain c"
"  JOIN taskflow.chain_step s ON s.chain_id OPERATOR(pg_catalog.=) c.chain_id"
"  JOIN taskflow.task t ON t.task_id OPERATOR(pg_catalog.=) s.task_id"
"  LEFT JOIN taskflow.criteria cr ON cr.criteria_id OPERATOR(pg_catalog.=) t.criteria_id"
" WHERE c.chain_id OPERATOR(pg_catalog.=) $1"
" ORDER BY s.position";

/*
 * ColumnText copies column col of row i into cxt (NULL stays NULL).
 */
static char *
ColumnText(int i, int col, MemoryContext cxt)
{
	char	   *value = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
									 col);

	return value ? MemoryContextStrdup(cxt, value) : NULL;
}

/*
 * ColumnInt reads an integer column of row i.
 */
static int
ColumnInt(int i, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
								  col, &isnull);

	return isnull ? 0 : DatumGetInt32(d);
}

/*
 * ColumnOid reads an oid column of row i (NULL: InvalidOid).
 */
static Oid
ColumnOid(int i, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
								  col, &isnull);

	return isnull ? InvalidOid : DatumGetObjectId(d);
}

/*
 * LoadStep fills one step from row i of the chain query.
 */
static void
LoadStep(TaskflowStep step, int i, MemoryContext cxt)
{
	char	   *mode = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 12);
	char	   *on_mismatch = SPI_getvalue(SPI_tuptable->vals[i],
										   SPI_tuptable->tupdesc, 17);

	step->step_id = ColumnInt(i, 8);
	step->position = ColumnInt(i, 9);
	step->task_id = ColumnInt(i, 10);
	step->task_name = ColumnText(i, 11, cxt);
	step->manual = (strcmp(mode, "manual") == 0);
	step->criteria_name = ColumnText(i, 13, cxt);
	step->criteria_sql = ColumnText(i, 14, cxt);
	step->actions = ColumnText(i, 15, cxt);
	step->template_id = ColumnInt(i, 16);
	step->offset_days = ColumnInt(i, 23);
	step->leave_on_mismatch = (strcmp(on_mismatch, "leave") == 0);
	step->task_owner = ColumnOid(i, 25);
	step->criteria_owner = ColumnOid(i, 26);
}

/*
 * LoadAnchor reads the anchor settings of an anchor chain (anchor_sql is
 * NULL for the other chains) and the effective entry interval.
 */
static void
LoadAnchor(TaskflowChain chain, MemoryContext cxt)
{
	char	   *change = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 21);
	char	   *activation = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 22);
	bool		isnull;

	chain->anchor_sql = ColumnText(0, 19, cxt);
	chain->anchor_yearly = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
													  SPI_tuptable->tupdesc, 20,
													  &isnull));
	chain->anchor_change = change[0];
	chain->activation = activation[0];
	chain->entry_interval = ColumnText(0, 24, cxt);
}

/*
 * TaskflowLoadChain reads a chain with its steps into cxt; NULL when the
 * chain does not exist or has no steps.  Needs an SPI connection.  Reads
 * as the extension owner: the callers (an application role running its
 * chains, an operator processing a manual step) cannot read the criteria
 * table.
 */
TaskflowChain
TaskflowLoadChain(int chain_id, MemoryContext cxt)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(chain_id)};
	TaskflowChain chain;
	char	   *reentry;
	bool		isnull;
	TaskflowSavedUser saved;
	int			i;

	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	TaskflowExecSaved(&load_chain_plan, load_chain_sql, 1, types, values, NULL);
	TaskflowRestoreUser(&saved);
	if (SPI_processed == 0)
		return NULL;

	chain = MemoryContextAllocZero(cxt, sizeof(TaskflowChainData));
	chain->chain_id = chain_id;
	chain->name = ColumnText(0, 2, cxt);
	chain->owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
												  SPI_tuptable->tupdesc, 3,
												  &isnull));
	chain->time_zone = ColumnText(0, 4, cxt);
	chain->repeat = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 5,
											   &isnull));
	chain->owner_could_login = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
														  SPI_tuptable->tupdesc, 18,
														  &isnull));
	reentry = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 6);
	chain->reentry = reentry[0];
	chain->reentry_cooldown = ColumnText(0, 7, cxt);
	LoadAnchor(chain, cxt);
	chain->nsteps = (int) SPI_processed;
	chain->steps = MemoryContextAllocZero(cxt, sizeof(TaskflowStepData) *
										  chain->nsteps);
	for (i = 0; i < chain->nsteps; i++)
		LoadStep(&chain->steps[i], i, cxt);
	SPI_freetuptable(SPI_tuptable);
	return chain;
}

/*
 * TaskflowChainStepById finds a step of the chain; NULL if it is not there.
 */
TaskflowStep
TaskflowChainStepById(TaskflowChain chain, int step_id)
{
	int			i;

	for (i = 0; i < chain->nsteps; i++)
		if (chain->steps[i].step_id == step_id)
			return &chain->steps[i];
	return NULL;
}

/*
 * RoleLabel names a role for a message, by its OID if it was dropped.
 */
static char *
RoleLabel(Oid role)
{
	char	   *name = GetUserNameFromId(role, true);

	return name ? psprintf("\"%s\"", name) : psprintf("with OID %u", role);
}

/*
 * StepOwnerProblem says why a step's task or criteria may not run with the
 * chain owner's privileges: its owner, who may change it at any time, does
 * not have them (a role membership revoked since the chain was built, or a
 * chain of a database from before this was checked), or returns NULL.
 */
static char *
StepOwnerProblem(TaskflowChain chain, TaskflowStep step)
{
	if (!has_privs_of_role(step->task_owner, chain->owner))
		return psprintf("task \"%s\" of chain \"%s\" belongs to role %s, which does not have "
						"the privileges of the chain's owner %s, with which the chain would run it",
						step->task_name, chain->name, RoleLabel(step->task_owner),
						RoleLabel(chain->owner));
	if (OidIsValid(step->criteria_owner) &&
		!has_privs_of_role(step->criteria_owner, chain->owner))
		return psprintf("criteria \"%s\" of task \"%s\" in chain \"%s\" belongs to role %s, which "
						"does not have the privileges of the chain's owner %s, with which the chain would run it",
						step->criteria_name, step->task_name, chain->name,
						RoleLabel(step->criteria_owner), RoleLabel(chain->owner));
	return NULL;
}

/*
 * TaskflowOwnerProblem says why the chain's owner cannot run it (the role
 * was dropped, or could log in when it created the chain and no longer
 * may: an account that was locked; or a task or criteria belongs to a role
 * without the owner's privileges), or returns NULL when it can.
 */
char *
TaskflowOwnerProblem(TaskflowChain chain)
{
	HeapTuple	tuple = SearchSysCache1(AUTHOID, ObjectIdGetDatum(chain->owner));
	char	   *problem = NULL;
	int			i;

	if (!HeapTupleIsValid(tuple))
		return psprintf("the owner role (OID %u) of chain \"%s\" no longer exists",
						chain->owner, chain->name);
	if (chain->owner_could_login &&
		!((Form_pg_authid) GETSTRUCT(tuple))->rolcanlogin)
		problem = psprintf("the owner role \"%s\" of chain \"%s\" may no longer log in",
						   NameStr(((Form_pg_authid) GETSTRUCT(tuple))->rolname),
						   chain->name);
	ReleaseSysCache(tuple);
	for (i = 0; problem == NULL && i < chain->nsteps; i++)
		problem = StepOwnerProblem(chain, &chain->steps[i]);
	return problem;
}
