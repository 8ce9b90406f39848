/*
 * privileges.c
 *		Privileged writes without SECURITY DEFINER, and running user code
 *		as the role that owns it.
 *
 * Definitions (criteria; later templates, tasks and chains) live in tables
 * no user may write.  Each API function that changes them is declared in
 * SQL as LANGUAGE c with the symbol taskflow_api_call, a dispatcher: it
 * notes who called, becomes the extension owner and calls the internal
 * function taskflow._<name>(caller regrole, <the same arguments>).  The
 * internal function is told its caller explicitly, instead of guessing it
 * from session_user or current_user inside a SECURITY DEFINER function,
 * and it checks ownership against that caller.
 *
 * Expressions users write (criteria, later actions) run as their owner in a
 * security-restricted operation, so they can neither use more privileges
 * than the owner has nor change role on the way.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "privileges.h"
#include "version.h"

PG_FUNCTION_INFO_V1(taskflow_api_call);
PG_FUNCTION_INFO_V1(taskflow_api_call_set);

/* What the dispatcher needs to call one internal function, cached. */
typedef struct ApiCallData
{
	char	   *sql;			/* SELECT [* FROM] schema._name($1, ...) */
	int			nargs;			/* arguments of the internal function */
	Oid			argtypes[FUNC_MAX_ARGS];
	Oid			rettype;
	int16		typlen;
	bool		typbyval;
} ApiCallData;

typedef ApiCallData *ApiCall;

/*
 * TaskflowExtensionOwner returns the role that owns the taskflow extension
 * in this database: the role privileged writes run as.
 */
Oid
TaskflowExtensionOwner(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			owner = InvalidOid;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("taskflow"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
		owner = ((Form_pg_extension) GETSTRUCT(tuple))->extowner;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	if (!OidIsValid(owner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"taskflow\" is not installed in this database")));
	return owner;
}

/*
 * TaskflowBecomeUser runs what follows as role, inside a security-restricted
 * operation (no SET ROLE, no temporary tables, no WITH HOLD cursors), with
 * search_path pinned to "pg_catalog, pg_temp" (TaskflowPinSearchPath), until
 * TaskflowRestoreUser; an error restores both with the (sub)transaction.
 * Whatever runs as another role — the extension owner above all — so never
 * resolves a name through the caller's search_path, where the caller (or a
 * database owner's ALTER DATABASE ... SET search_path) may have planted a
 * look-alike.  Code that needs another path sets it after this.
 */
void
TaskflowBecomeUser(Oid role, TaskflowSavedUser *saved)
{
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(role)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role with OID %u does not exist", role)));
	GetUserIdAndSecContext(&saved->userid, &saved->sec_context);
	saved->path_level = TaskflowPinSearchPath();
	SetUserIdAndSecContext(role, saved->sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
}

/*
 * TaskflowRestoreUser goes back to the user (and search_path)
 * TaskflowBecomeUser saved.
 */
void
TaskflowRestoreUser(const TaskflowSavedUser *saved)
{
	SetUserIdAndSecContext(saved->userid, saved->sec_context);
	TaskflowUnpinSearchPath(saved->path_level);
}

/*
 * TaskflowPinSearchPath sets search_path to "pg_catalog, pg_temp" until
 * TaskflowUnpinSearchPath (or the end of the (sub)transaction), and returns
 * the nest level to unpin.  Entry points written in C call it first: the
 * SQL they run before a chain's own settings are in force (finding and
 * loading chains, locking pending members) names types and functions that
 * a caller's search_path could otherwise resolve to look-alikes of its
 * own, run with the extension owner's rights.
 */
int
TaskflowPinSearchPath(void)
{
	int			nest_level = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return nest_level;
}

/*
 * TaskflowUnpinSearchPath restores the search_path TaskflowPinSearchPath
 * replaced, and every other setting changed since: code a user wrote (a
 * criteria, an action) runs in between and may call set_config(); what it
 * set must not stay in the session that ran it (the scheduler's, for
 * every other chain).  "Abort" semantics restore all of them, as
 * PostgreSQL does after running user code in index builds and VACUUM.
 */
void
TaskflowUnpinSearchPath(int nest_level)
{
	AtEOXact_GUC(false, nest_level);
}

/*
 * TaskflowCheckCanUse refuses unless caller has the privileges of owner
 * (is owner, an inheriting member of it, or a superuser); what names the
 * object for the message, for example: criteria "期限切れ間近".
 */
void
TaskflowCheckCanUse(Oid caller, Oid owner, const char *what)
{
	char	   *owner_name;
	char	   *caller_name;

	if (has_privs_of_role(caller, owner))
		return;
	owner_name = GetUserNameFromId(owner, true);
	if (owner_name == NULL)
		owner_name = psprintf("with OID %u (dropped)", owner);
	else
		owner_name = psprintf("\"%s\"", owner_name);
	caller_name = GetUserNameFromId(caller, false);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied for %s", what),
			 errdetail("It belongs to role %s, whose privileges role \"%s\" does not have.",
					   owner_name, caller_name),
			 errhint("Only the owning role and its members can use or change it.")));
}

/*
 * ApiCallSql returns the statement calling the internal function of the API
 * function proc: SELECT schema._name($1, ..., $n+1), or SELECT * FROM it
 * for a function returning a set.
 */
static char *
ApiCallSql(Form_pg_proc proc)
{
	StringInfoData sql;
	char	   *internal_name = psprintf("_%s", NameStr(proc->proname));
	int			i;

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %s%s.%s($1", proc->proretset ? "* FROM " : "",
					 quote_identifier(get_namespace_name(proc->pronamespace)),
					 quote_identifier(internal_name));
	for (i = 0; i < proc->pronargs; i++)
		appendStringInfo(&sql, ", $%d", i + 2);
	appendStringInfoChar(&sql, ')');
	return sql.data;
}

/*
 * ApiCallCheckShape refuses an API function the dispatcher cannot forward:
 * one returning a set (unless set), or not (if set), taking polymorphic
 * arguments or too many of them.
 */
static void
ApiCallCheckShape(Form_pg_proc proc, bool set)
{
	int			i;

	if (proc->proretset != set || proc->pronargs >= FUNC_MAX_ARGS)
		elog(ERROR, "taskflow_api_call cannot implement function %s",
			 NameStr(proc->proname));
	for (i = 0; i < proc->pronargs; i++)
		if (IsPolymorphicType(proc->proargtypes.values[i]))
			elog(ERROR, "taskflow_api_call cannot implement function %s",
				 NameStr(proc->proname));
}

/*
 * ApiCallLookup describes the internal function behind the API function
 * being called, caching the answer for the life of the FmgrInfo.
 */
static ApiCall
ApiCallLookup(FmgrInfo *flinfo, bool set)
{
	HeapTuple	tuple;
	Form_pg_proc proc;
	ApiCall		call;

	if (flinfo->fn_extra != NULL)
		return (ApiCall) flinfo->fn_extra;

	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(flinfo->fn_oid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for function %u", flinfo->fn_oid);
	proc = (Form_pg_proc) GETSTRUCT(tuple);
	ApiCallCheckShape(proc, set);

	call = MemoryContextAllocZero(flinfo->fn_mcxt, sizeof(ApiCallData));
	call->sql = MemoryContextStrdup(flinfo->fn_mcxt, ApiCallSql(proc));
	call->nargs = proc->pronargs + 1;
	call->argtypes[0] = REGROLEOID;
	memcpy(&call->argtypes[1], proc->proargtypes.values,
		   proc->pronargs * sizeof(Oid));
	call->rettype = proc->prorettype;
	get_typlenbyval(call->rettype, &call->typlen, &call->typbyval);
	ReleaseSysCache(tuple);

	flinfo->fn_extra = call;
	return call;
}

/*
 * ApiCallRethrow re-raises the error being handled without the context
 * lines of the internal function and SPI: to the user the error comes from
 * the API function they called.  The context of their own callers is added
 * again as the error is thrown from here.
 */
static void
pg_attribute_noreturn()
ApiCallRethrow(MemoryContext mcxt)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(mcxt);
	edata = CopyErrorData();
	FlushErrorState();
	edata->context = NULL;
	ThrowErrorData(edata);
	pg_unreachable();
}

/*
 * ApiCallArguments fills the internal function's arguments: the caller,
 * then the API function's own.
 */
static void
ApiCallArguments(ApiCall call, Oid caller, FunctionCallInfo fcinfo,
				 Datum *values, char *nulls)
{
	values[0] = ObjectIdGetDatum(caller);
	nulls[0] = ' ';
	for (int i = 1; i < call->nargs; i++)
	{
		values[i] = fcinfo->args[i - 1].value;
		nulls[i] = fcinfo->args[i - 1].isnull ? 'n' : ' ';
	}
}

/*
 * ApiCallStart describes the API function being called and refuses the
 * call when it cannot run: taskflow's SQL objects of a version the library
 * does not know, or inside a security-restricted operation (an index
 * expression, a materialized view refresh, a criteria), where code runs on
 * someone else's behalf.
 */
static ApiCall
ApiCallStart(FunctionCallInfo fcinfo, bool set)
{
	ApiCall		call;

	if (fcinfo->flinfo == NULL || !OidIsValid(fcinfo->flinfo->fn_oid))
		elog(ERROR, "taskflow_api_call must be called as a SQL function");
	call = ApiCallLookup(fcinfo->flinfo, set);
	TaskflowCheckInstalledVersion();
	if (InSecurityRestrictedOperation())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot call %s within a security-restricted operation",
						get_func_name(fcinfo->flinfo->fn_oid)),
				 errdetail("Taskflow functions cannot be called from an index expression, a materialized view or a criteria.")));
	return call;
}

/*
 * ApiCallExecute runs the internal function through SPI with the caller as
 * first argument and returns its result, copied out of SPI.
 */
static Datum
ApiCallExecute(ApiCall call, Oid caller, FunctionCallInfo fcinfo,
			   bool *isnull)
{
	Datum		values[FUNC_MAX_ARGS];
	char		nulls[FUNC_MAX_ARGS];
	Datum		result;

	ApiCallArguments(call, caller, fcinfo, values, nulls);

	if (SPI_execute_with_args(call->sql, call->nargs, call->argtypes,
							  values, nulls, false, 0) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "taskflow: \"%s\" did not return one row", call->sql);

	*isnull = false;
	if (call->rettype == VOIDOID)
		return (Datum) 0;
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
						   isnull);
	if (*isnull)
		return (Datum) 0;
	return SPI_datumTransfer(result, call->typbyval, call->typlen);
}

/*
 * ApiCallInternal calls the internal function inside an SPI connection,
 * reporting its errors as the API function's own.
 */
static Datum
ApiCallInternal(ApiCall call, Oid caller, FunctionCallInfo fcinfo,
				bool *isnull)
{
	MemoryContext mcxt = CurrentMemoryContext;
	volatile Datum result = (Datum) 0;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PG_TRY();
	{
		result = ApiCallExecute(call, caller, fcinfo, isnull);
	}
	PG_CATCH();
	{
		ApiCallRethrow(mcxt);
	}
	PG_END_TRY();
	SPI_finish();
	return result;
}

/*
 * taskflow_api_call is the C symbol of API functions that write
 * definitions: it calls taskflow._<name>(caller, <arguments>) as the
 * extension owner and returns its result.  It refuses to run inside a
 * security-restricted operation (an index expression, a materialized view
 * refresh, a criteria), where code runs on someone else's behalf.
 */
Datum
taskflow_api_call(PG_FUNCTION_ARGS)
{
	ApiCall		call;
	Oid			caller = GetUserId();
	Oid			save_userid;
	int			save_sec_context;
	Datum		result;
	bool		isnull;

	call = ApiCallStart(fcinfo, false);

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(TaskflowExtensionOwner(),
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	result = ApiCallInternal(call, caller, fcinfo, &isnull);
	SetUserIdAndSecContext(save_userid, save_sec_context);

	if (isnull)
		PG_RETURN_NULL();
	return result;
}

/*
 * ApiCallRows runs the internal function of a set-returning API function
 * through SPI with the caller as first argument, and puts every row it
 * returns into the caller's tuplestore.
 */
static void
ApiCallRows(ApiCall call, Oid caller, FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext mcxt = CurrentMemoryContext;
	Datum		values[FUNC_MAX_ARGS];
	char		nulls[FUNC_MAX_ARGS];

	ApiCallArguments(call, caller, fcinfo, values, nulls);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PG_TRY();
	{
		uint64		row;

		if (SPI_execute_with_args(call->sql, call->nargs, call->argtypes,
								  values, nulls, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "taskflow: \"%s\" failed", call->sql);
		if (SPI_tuptable->tupdesc->natts != rsinfo->setDesc->natts)
			elog(ERROR, "taskflow: \"%s\" returns %d columns, not %d", call->sql,
				 SPI_tuptable->tupdesc->natts, rsinfo->setDesc->natts);
		for (row = 0; row < SPI_processed; row++)
			tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[row]);
	}
	PG_CATCH();
	{
		ApiCallRethrow(mcxt);
	}
	PG_END_TRY();
	SPI_finish();
}

/*
 * taskflow_api_call_set is taskflow_api_call for API functions that return
 * a set (explain, preview_template): SELECT * FROM taskflow._<name>(caller,
 * <arguments>) as the extension owner, every row returned, so what the
 * caller sees is limited to what its role may see.
 */
Datum
taskflow_api_call_set(PG_FUNCTION_ARGS)
{
	ApiCall		call;
	Oid			caller = GetUserId();
	Oid			save_userid;
	int			save_sec_context;

	call = ApiCallStart(fcinfo, true);
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(TaskflowExtensionOwner(),
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	ApiCallRows(call, caller, fcinfo);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return (Datum) 0;
}
