/*
 * manual.c
 *		Manual steps (処理待ちタスク): operators process, skip or cancel the
 *		members pending at a manual task, in bulk.
 *
 * All chosen members advance or none: the pending rows are locked first,
 * and if any chosen member is not pending at the task (another operator or
 * a change got there first) the whole call fails.  Waits after a manual
 * task count from the moment it was processed (the as_of argument).
 *
 * Only the chains the caller may work are looked at (their owner's
 * privileges, or taskflow_operator), before anything is said about their
 * members.  A member pending at the task in two chains is processed in
 * neither unless the chain is named.  Processing checks the task's
 * criteria again: a member who no longer matches is not processed — named
 * in an error when chosen, else handled as the task's on_mismatch says
 * (leaves the chain, or stays pending).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "engine.h"
#include "privileges.h"
#include "spi_util.h"
#include "step.h"
#include "version.h"

PG_FUNCTION_INFO_V1(taskflow_process);
PG_FUNCTION_INFO_V1(taskflow_skip);
PG_FUNCTION_INFO_V1(taskflow_cancel);

typedef enum ManualAction
{
	MANUAL_PROCESS,
	MANUAL_SKIP,
	MANUAL_CANCEL
} ManualAction;

/* The pending rows of one (chain, step) locked for processing. */
typedef struct PendingRow
{
	int			chain_id;
	int			step_id;
	int64		member_id;
	TimestampTz pending_since;
} PendingRow;

static const char *task_sql =
"SELECT t.task_id FROM taskflow.task t WHERE t.name OPERATOR(pg_catalog.=) $1";

static const char *chain_sql =
"SELECT c.chain_id FROM taskflow.chain c WHERE c.name OPERATOR(pg_catalog.=) $1";

/* the chains with the task as a step ($2: only that chain, if not NULL) */
static const char *task_chains_sql =
"SELECT pg_catalog.array_agg(x.chain_id::bigint) FROM ("
" SELECT DISTINCT s.chain_id FROM taskflow.chain_step s"
"  WHERE s.task_id OPERATOR(pg_catalog.=) $1"
"    AND ($2 IS NULL OR s.chain_id OPERATOR(pg_catalog.=) $2)) x";

static const char *lock_pending_sql =
"SELECT cm.chain_id, cm.step_id, cm.member_id, cm.waiting_since FROM taskflow.chain_member cm"
"  JOIN taskflow.chain_step s ON s.step_id OPERATOR(pg_catalog.=) cm.step_id"
" WHERE s.task_id OPERATOR(pg_catalog.=) $1 AND cm.state OPERATOR(pg_catalog.=) 'pending'"
"   AND ($2 IS NULL OR cm.member_id OPERATOR(pg_catalog.=) ANY ($2))"
"   AND cm.chain_id OPERATOR(pg_catalog.=) ANY ($3)"
" ORDER BY cm.chain_id, cm.step_id, cm.member_id"
"   FOR UPDATE OF cm";

/*
 * ChainIdsDatum makes an integer[] of chain ids (kept in a MemberSet).
 */
static Datum
ChainIdsDatum(MemberSet chains)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(chains->count, 1));

	for (int i = 0; i < chains->count; i++)
		elems[i] = Int32GetDatum((int32) chains->ids[i]);
	return PointerGetDatum(construct_array(elems, chains->count, INT4OID, 4, true,
										   TYPALIGN_INT));
}

/*
 * LockPending locks the members pending at a task (all, or those chosen)
 * and returns them sorted by chain, step and member.
 */
static PendingRow *
LockPending(int task_id, Datum chosen, bool all, MemberSet chains, uint64 *nrows)
{
	Oid			types[3] = {INT4OID, INT8ARRAYOID, INT4ARRAYOID};
	Datum		values[3] = {Int32GetDatum(task_id), chosen, ChainIdsDatum(chains)};
	char		nulls[3] = {' ', all ? 'n' : ' ', ' '};
	PendingRow *rows;
	uint64		i;
	bool		isnull;

	TaskflowExec(lock_pending_sql, 3, types, values, nulls);
	*nrows = SPI_processed;
	rows = palloc(sizeof(PendingRow) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		rows[i].chain_id = DatumGetInt32(SPI_getbinval(tuple, desc, 1, &isnull));
		rows[i].step_id = DatumGetInt32(SPI_getbinval(tuple, desc, 2, &isnull));
		rows[i].member_id = DatumGetInt64(SPI_getbinval(tuple, desc, 3, &isnull));
		rows[i].pending_since = DatumGetTimestampTz(SPI_getbinval(tuple, desc, 4, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	return rows;
}

/*
 * FindId returns the id the query (sql, $1 the name) finds for a task or
 * a chain (what), or raises naming it.
 */
static int
FindId(const char *sql, const char *what, const char *name)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(name)};
	bool		isnull;
	int			id;

	TaskflowExec(sql, 1, types, values, NULL);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("%s \"%s\" does not exist", what, name)));
	id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return id;
}

/*
 * MayProcess says whether the caller may work a chain's pending list: it
 * has the privileges of the chain's owner, or of taskflow_operator.
 */
static bool
MayProcess(Oid caller, TaskflowChain chain)
{
	Oid			operator_role = get_role_oid("taskflow_operator", true);

	return has_privs_of_role(caller, chain->owner) ||
		(OidIsValid(operator_role) && has_privs_of_role(caller, operator_role));
}

/*
 * ChainsToWork returns the ids of the chains with the task as a step
 * (only chain_id's when it is not 0) that the caller may work; raises when
 * the task is in such chains and the caller may work none of them, or when
 * the named chain does not have the task.
 */
static MemberSet
ChainsToWork(Oid caller, int task_id, const char *task_name, int chain_id,
			 const char *chain_name)
{
	Oid			types[2] = {INT4OID, INT4OID};
	Datum		values[2] = {Int32GetDatum(task_id), Int32GetDatum(chain_id)};
	char		nulls[2] = {' ', chain_id ? ' ' : 'n'};
	MemberSet	found;
	MemberSet	allowed = MemberSetEmpty();
	char	   *denied = NULL;

	found = TaskflowQueryMembers(task_chains_sql, 2, types, values, nulls);
	if (found->count == 0 && chain_id)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("task \"%s\" is not a step of chain \"%s\"", task_name, chain_name)));
	allowed->ids = palloc(sizeof(int64) * Max(found->count, 1));
	for (int i = 0; i < found->count; i++)
	{
		TaskflowChain chain = TaskflowLoadChain((int) found->ids[i], CurrentMemoryContext);

		if (chain && MayProcess(caller, chain))
			allowed->ids[allowed->count++] = found->ids[i];
		else if (chain && denied == NULL)
			denied = chain->name;
	}
	if (allowed->count == 0 && denied)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to process pending members of task \"%s\"",
						task_name),
				 errhint("Operators need the taskflow_operator role; an application role "
						 "works the pending lists of its own chains.")));
	return allowed;
}

/*
 * CompareMember orders pending rows by member id (qsort).
 */
static int
CompareMember(const void *a, const void *b)
{
	int64		x = ((const PendingRow *) a)->member_id;
	int64		y = ((const PendingRow *) b)->member_id;

	return (x > y) - (x < y);
}

/*
 * CheckOneChainEach raises when a chosen member is pending at the task in
 * more than one chain: which pending step to work must be said (chain =>).
 */
static void
CheckOneChainEach(const char *task_name, PendingRow *rows, uint64 nrows)
{
	PendingRow *sorted = palloc(sizeof(PendingRow) * Max(nrows, 1));

	memcpy(sorted, rows, sizeof(PendingRow) * nrows);
	qsort(sorted, nrows, sizeof(PendingRow), CompareMember);
	for (uint64 i = 1; i < nrows; i++)
		if (sorted[i].member_id == sorted[i - 1].member_id)
		{
			TaskflowChain first = TaskflowLoadChain(sorted[i - 1].chain_id, CurrentMemoryContext);
			TaskflowChain second = TaskflowLoadChain(sorted[i].chain_id, CurrentMemoryContext);

			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("member " INT64_FORMAT " is pending at task \"%s\" in more than one chain",
							sorted[i].member_id, task_name),
					 errdetail("It is pending in chains \"%s\" and \"%s\"; nothing was changed.",
							   first ? first->name : "?", second ? second->name : "?"),
					 errhint("Say which chain's pending step is meant: chain => '%s'.",
							 first ? first->name : "?")));
		}
	pfree(sorted);
}

/*
 * CheckAllPending raises unless every chosen member is among the locked
 * pending rows: processing is all or nothing.
 */
static void
CheckAllPending(const char *task_name, MemberSet chosen, PendingRow *rows,
				uint64 nrows)
{
	int64	   *found = palloc(sizeof(int64) * Max(nrows, 1));
	MemberSet	missing;
	uint64		i;

	for (i = 0; i < nrows; i++)
		found[i] = rows[i].member_id;
	missing = MemberSetMinus(chosen, MemberSetFromIds(found, (int) nrows));
	if (missing->count > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("member " INT64_FORMAT " is not pending at task \"%s\"",
						missing->ids[0], task_name),
				 errdetail_plural("%d of the chosen members is not pending there; nothing was changed.",
								  "%d of the chosen members are not pending there; nothing was changed.",
								  missing->count, missing->count),
				 errhint("Someone may have processed them already; see taskflow.pending_tasks.")));
}

/*
 * CheckNotBeforePending refuses an as_of earlier than the moment a chosen
 * member became pending: a member cannot be processed before it was
 * waiting for it (backdating to a later moment is fine).
 */
static void
CheckNotBeforePending(const char *task_name, PendingRow *rows, uint64 nrows,
					  TimestampTz as_of)
{
	uint64		i;

	for (i = 0; i < nrows; i++)
		if (rows[i].pending_since > as_of)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("member " INT64_FORMAT " is pending at task \"%s\" only since %s",
							rows[i].member_id, task_name,
							timestamptz_to_str(rows[i].pending_since)),
					 errdetail("as_of %s is earlier; nothing was changed.",
							   timestamptz_to_str(as_of))));
}

/*
 * CheckNotInFuture refuses an as_of later than the real time to a caller
 * who works the chain as an operator only: the owner's actions compute
 * from as_of (an expiry extended by a month, the wait to the next step)
 * and history is dated at it, so an operator, who may not write members,
 * records work done, not work dated at will.  The owner's roles (and
 * superusers) may simulate any instant.
 */
static void
CheckNotInFuture(Oid caller, TaskflowChain chain, TimestampTz as_of)
{
	TimestampTz now = GetCurrentTimestamp();

	if (as_of <= now || has_privs_of_role(caller, chain->owner))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("as_of %s is in the future", timestamptz_to_str(as_of)),
			 errdetail("An operator records work done on chain \"%s\": as_of may be any instant "
					   "from when the member became pending up to now; nothing was changed.",
					   chain->name),
			 errhint("Leave as_of out to process as of now.")));
}

/*
 * CheckMayProcess lets operators (taskflow_operator) and members of the
 * chain owner's role work a chain's pending list.
 */
static void
CheckMayProcess(Oid caller, TaskflowChain chain)
{
	if (MayProcess(caller, chain))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to process pending members of chain \"%s\"",
					chain->name),
			 errhint("Operators need the taskflow_operator role.")));
}

/*
 * ProcessMatching applies a manual task to the members who still match its
 * criteria (as of the run's instant, as the chain's owner); of those who
 * no longer do, chosen ones are an error (nothing is processed) and the
 * others are handled as the task's on_mismatch says.  Returns how many
 * were processed.
 */
static int64
ProcessMatching(TaskflowRun run, TaskflowStep step, MemberSet ids, bool chosen)
{
	MemberSet	matched = TaskflowMatching(run, step->criteria_sql, ids);
	MemberSet	mismatched = MemberSetMinus(ids, matched);

	if (mismatched->count > 0 && chosen)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("member " INT64_FORMAT " no longer matches the criteria \"%s\" of task \"%s\"",
						mismatched->ids[0], step->criteria_name, step->task_name),
				 errdetail_plural("%d of the chosen members no longer matches; nothing was processed.",
								  "%d of the chosen members no longer match; nothing was processed.",
								  mismatched->count, mismatched->count),
				 errhint("skip() moves them past the task without applying it; cancel() takes them out of the chain.")));
	if (mismatched->count > 0)
	{
		if (step->leave_on_mismatch)
			TaskflowLeaveChain(run, step, mismatched, "left",
							   psprintf("no longer matches criteria \"%s\"",
										step->criteria_name));
		ereport(NOTICE,
				(errmsg_plural("%d member pending at task \"%s\" of chain \"%s\" no longer matches its criteria \"%s\"",
							   "%d members pending at task \"%s\" of chain \"%s\" no longer match its criteria \"%s\"",
							   mismatched->count, mismatched->count, step->task_name,
							   run->chain->name, step->criteria_name),
				 errdetail("%s", mismatched->count == 1
						   ? (step->leave_on_mismatch
							  ? "It was not processed and left the chain."
							  : "It was not processed and stays pending until it matches again.")
						   : (step->leave_on_mismatch
							  ? "They were not processed and left the chain."
							  : "They were not processed and stay pending until they match again."))));
	}
	if (matched->count > 0)
		TaskflowApplyStep(run, step, matched);
	return matched->count;
}

/*
 * CheckChainRuns refuses to process or skip the pending members of a chain
 * that is disabled or paused: nothing of such a chain runs (cancelling
 * them, which takes them out, is allowed).
 */
static void
CheckChainRuns(TaskflowChain chain)
{
	Oid			types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(chain->chain_id)};
	TaskflowSavedUser saved;
	bool		enabled;
	bool		isnull;
	char	   *paused;

	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	TaskflowExec("SELECT c.enabled, c.paused_reason FROM taskflow.chain c"
				 " WHERE c.chain_id OPERATOR(pg_catalog.=) $1", 1, types, values, NULL);
	TaskflowRestoreUser(&saved);
	enabled = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	paused = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	SPI_freetuptable(SPI_tuptable);
	if (!enabled)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("chain \"%s\" is disabled: nothing of it runs, its pending members included",
						chain->name),
				 errhint("Enable it with taskflow.enable_chain('%s'), or take the members out with taskflow.cancel().",
						 chain->name)));
	if (paused)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("chain \"%s\" is paused: %s", chain->name, paused),
				 errhint("Fix the cause, then resume it with taskflow.enable_chain('%s').",
						 chain->name)));
}

/*
 * DoGroup processes, skips or cancels members pending at one step of one
 * chain, with the chain's settings in force; returns how many it handled.
 */
static int64
DoGroup(ManualAction action, Oid caller, const char *actor, int chain_id,
		int step_id, MemberSet ids, TimestampTz as_of, bool chosen)
{
	TaskflowRunData run;
	TaskflowStep step;
	char	   *problem;
	int			nest_level;
	int64		handled = ids->count;

	memset(&run, 0, sizeof(run));
	run.chain = TaskflowLoadChain(chain_id, CurrentMemoryContext);
	step = run.chain ? TaskflowChainStepById(run.chain, step_id) : NULL;
	if (step == NULL)
		elog(ERROR, "taskflow: step %d of chain %d vanished", step_id, chain_id);
	CheckMayProcess(caller, run.chain);
	CheckNotInFuture(caller, run.chain, as_of);
	if (action != MANUAL_CANCEL)
		CheckChainRuns(run.chain);
	problem = TaskflowOwnerProblem(run.chain);
	if (problem)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s", problem)));
	run.as_of = as_of;
	run.actor = actor;
	nest_level = TaskflowPushRunSettings(as_of, run.chain->time_zone);
	if (action == MANUAL_PROCESS)
		handled = ProcessMatching(&run, step, ids, chosen);
	else if (action == MANUAL_SKIP)
		TaskflowSkipStep(&run, step, ids);
	else
		TaskflowLeaveChain(&run, step, ids, "cancelled",
						   psprintf("cancelled by %s", actor));
	TaskflowPopRunSettings(nest_level);
	return handled;
}

/*
 * DoGroups walks the locked rows one (chain, step) group at a time;
 * returns how many members were handled.
 */
static int64
DoGroups(ManualAction action, Oid caller, const char *actor, PendingRow *rows,
		 uint64 nrows, TimestampTz as_of, bool chosen)
{
	uint64		start = 0;
	int64		handled = 0;

	while (start < nrows)
	{
		uint64		end = start;
		MemberSet	ids = MemberSetEmpty();

		while (end < nrows && rows[end].chain_id == rows[start].chain_id &&
			   rows[end].step_id == rows[start].step_id)
			end++;
		ids->ids = palloc(sizeof(int64) * (end - start));
		for (; start < end; start++)
			ids->ids[ids->count++] = rows[start].member_id;
		handled += DoGroup(action, caller, actor, rows[end - 1].chain_id,
						   rows[end - 1].step_id, ids, as_of, chosen);
	}
	return handled;
}

/*
 * ManualRun is the body of process(), skip() and cancel(): arguments are
 * (task, member_ids or NULL for all pending, as_of, chain or NULL for
 * every chain with the task; 0.1's functions have no chain); returns the
 * number of members handled.  It runs with search_path pinned
 * (TaskflowPinSearchPath).
 */
static Datum
ManualRun(FunctionCallInfo fcinfo, ManualAction action)
{
	char	   *task_name;
	char	   *chain_name = NULL;
	bool		all = PG_ARGISNULL(1);
	TimestampTz as_of;
	Oid			caller = GetUserId();
	char	   *actor = GetUserNameFromId(caller, false);
	TaskflowSavedUser saved;
	PendingRow *rows;
	uint64		nrows;
	int			path_level;
	int			task_id;
	MemberSet	chains;
	int64		handled;

	TaskflowCheckInstalledVersion();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("a task name is required")));
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("as_of cannot be NULL"),
				 errhint("Pass the instant the members were processed at, or leave the argument out for now().")));
	as_of = PG_GETARG_TIMESTAMPTZ(2);
	task_name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (PG_NARGS() > 3 && !PG_ARGISNULL(3))
		chain_name = text_to_cstring(PG_GETARG_TEXT_PP(3));
	path_level = TaskflowPinSearchPath();
	SPI_connect();
	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	task_id = FindId(task_sql, "task", task_name);
	chains = ChainsToWork(caller, task_id, task_name,
						  chain_name ? FindId(chain_sql, "chain", chain_name) : 0, chain_name);
	rows = LockPending(task_id, all ? (Datum) 0 : PG_GETARG_DATUM(1), all, chains, &nrows);
	TaskflowRestoreUser(&saved);
	if (!all)
		CheckAllPending(task_name, MemberSetFromDatum(PG_GETARG_DATUM(1), false),
						rows, nrows);
	CheckOneChainEach(task_name, rows, nrows);
	CheckNotBeforePending(task_name, rows, nrows, as_of);
	handled = DoGroups(action, caller, actor, rows, nrows, as_of, !all);
	SPI_finish();
	TaskflowUnpinSearchPath(path_level);
	PG_RETURN_INT64(handled);
}

/*
 * taskflow.process(task, member_ids, as_of): applies a manual task to the
 * chosen pending members (NULL: all pending at it) and moves them on.
 */
Datum
taskflow_process(PG_FUNCTION_ARGS)
{
	return ManualRun(fcinfo, MANUAL_PROCESS);
}

/*
 * taskflow.skip(task, member_ids, as_of): moves pending members past the
 * manual task without applying it.
 */
Datum
taskflow_skip(PG_FUNCTION_ARGS)
{
	return ManualRun(fcinfo, MANUAL_SKIP);
}

/*
 * taskflow.cancel(task, member_ids, as_of): takes pending members out of
 * the chain.
 */
Datum
taskflow_cancel(PG_FUNCTION_ARGS)
{
	return ManualRun(fcinfo, MANUAL_CANCEL);
}
