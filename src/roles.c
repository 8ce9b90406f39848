/*
 * roles.c
 *		Roles that own taskflow objects: DROP ROLE and REASSIGN OWNED.
 *
 * Criteria, templates, tasks and chains record their owner in a regrole
 * column, which PostgreSQL does not count as a dependency.  So that a DBA
 * dropping an application role does not silently leave its chains without
 * an owner (they would pause when their next step falls due), the utility
 * hook asks here first: DROP ROLE of a role that owns taskflow objects in
 * the current database is refused, saying which, and REASSIGN OWNED BY
 * gives them to the new owner as it does the role's tables.  Like
 * REASSIGN OWNED itself, this sees the current database only: taskflow
 * objects in other databases still pause, with the reason, when their
 * owner is gone.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "privileges.h"
#include "roles.h"

/* what a role owns, in words: 'chain "…", task "…"' (at most 10 named) */
static const char *owned_sql =
"SELECT pg_catalog.string_agg(o.kind OPERATOR(pg_catalog.||) ' \"' OPERATOR(pg_catalog.||) o.name"
"                             OPERATOR(pg_catalog.||) '\"', ', ' ORDER BY o.kind, o.name)"
"  FROM (SELECT 'chain' AS kind, c.name FROM taskflow.chain c WHERE c.owner OPERATOR(pg_catalog.=) $1"
"        UNION ALL SELECT 'task', t.name FROM taskflow.task t WHERE t.owner OPERATOR(pg_catalog.=) $1"
"        UNION ALL SELECT 'template', t.name FROM taskflow.template t WHERE t.owner OPERATOR(pg_catalog.=) $1"
"        UNION ALL SELECT 'criteria', c.name FROM taskflow.criteria c WHERE c.owner OPERATOR(pg_catalog.=) $1"
"        ORDER BY 1, 2 LIMIT 10) AS o";

static const char *owned_count_sql =
"SELECT (SELECT pg_catalog.count(*) FROM taskflow.chain c WHERE c.owner OPERATOR(pg_catalog.=) $1)"
"     OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM taskflow.task t WHERE t.owner OPERATOR(pg_catalog.=) $1)"
"     OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM taskflow.template t WHERE t.owner OPERATOR(pg_catalog.=) $1)"
"     OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM taskflow.criteria c WHERE c.owner OPERATOR(pg_catalog.=) $1)";

static const char *reassign_sql[] = {
	"UPDATE taskflow.chain SET owner = $2 WHERE owner OPERATOR(pg_catalog.=) $1",
	"UPDATE taskflow.task SET owner = $2 WHERE owner OPERATOR(pg_catalog.=) $1",
	"UPDATE taskflow.template SET owner = $2 WHERE owner OPERATOR(pg_catalog.=) $1",
	"UPDATE taskflow.criteria SET owner = $2 WHERE owner OPERATOR(pg_catalog.=) $1",
};

/*
 * BeginAsOwner starts running SQL on taskflow's tables as the extension
 * owner (who sees every row), with the search_path pinned; false when
 * taskflow is not installed in this database.
 */
static bool
BeginAsOwner(TaskflowSavedUser *saved)
{
	if (!OidIsValid(get_extension_oid("taskflow", true)))
		return false;
	GetUserIdAndSecContext(&saved->userid, &saved->sec_context);
	SetUserIdAndSecContext(TaskflowExtensionOwner(),
						   saved->sec_context | SECURITY_LOCAL_USERID_CHANGE);
	saved->path_level = TaskflowPinSearchPath();
	SPI_connect();
	return true;
}

/*
 * EndAsOwner goes back to the calling user.
 */
static void
EndAsOwner(TaskflowSavedUser *saved)
{
	SPI_finish();
	TaskflowUnpinSearchPath(saved->path_level);
	SetUserIdAndSecContext(saved->userid, saved->sec_context);
}

/*
 * TaskflowCheckDropRole refuses DROP ROLE of a role that owns taskflow
 * criteria, templates, tasks or chains in this database.
 */
void
TaskflowCheckDropRole(DropRoleStmt *stmt)
{
	TaskflowSavedUser saved;
	ListCell   *lc;

	if (!BeginAsOwner(&saved))
		return;
	foreach(lc, stmt->roles)
	{
		RoleSpec   *spec = lfirst(lc);
		Oid			roleid = get_rolespec_oid(spec, true);
		Oid			types[1] = {REGROLEOID};
		Datum		values[1];
		bool		isnull;
		char	   *owned;
		int64		count;

		if (!OidIsValid(roleid))
			continue;
		values[0] = ObjectIdGetDatum(roleid);
		if (SPI_execute_with_args(owned_count_sql, 1, types, values, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "taskflow: counting what role %u owns failed", roleid);
		count = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		if (count == 0)
			continue;
		if (SPI_execute_with_args(owned_sql, 1, types, values, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "taskflow: listing what role %u owns failed", roleid);
		owned = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("role \"%s\" cannot be dropped because it owns taskflow objects in this database",
						get_rolespec_name(spec)),
				 errdetail("It owns %s%s.", owned,
						   count > 10 ? psprintf(" and %lld more", (long long) (count - 10)) : ""),
				 errhint("Drop them (taskflow.drop_chain(), drop_task(), drop_template(), drop_criteria()), or give them to another role with REASSIGN OWNED BY %s TO ….",
						 quote_identifier(get_rolespec_name(spec)))));
	}
	EndAsOwner(&saved);
}

/*
 * TaskflowReassignOwned gives the taskflow objects of the roles named by
 * REASSIGN OWNED BY to the new role, in this database (after PostgreSQL
 * has checked the statement and reassigned the role's own objects).
 */
void
TaskflowReassignOwned(ReassignOwnedStmt *stmt)
{
	TaskflowSavedUser saved;
	Oid			newrole = get_rolespec_oid(stmt->newrole, false);
	ListCell   *lc;

	if (!BeginAsOwner(&saved))
		return;
	foreach(lc, stmt->roles)
	{
		Oid			oldrole = get_rolespec_oid(lfirst(lc), false);
		Oid			types[2] = {REGROLEOID, REGROLEOID};
		Datum		values[2] = {ObjectIdGetDatum(oldrole), ObjectIdGetDatum(newrole)};

		for (int i = 0; i < lengthof(reassign_sql); i++)
			if (SPI_execute_with_args(reassign_sql[i], 2, types, values, NULL, false, 0) != SPI_OK_UPDATE)
				elog(ERROR, "taskflow: reassigning what role %u owns failed", oldrole);
	}
	EndAsOwner(&saved);
}
