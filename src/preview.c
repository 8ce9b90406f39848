/*
 * preview.c
 *		taskflow.preview: what the engine would do over a date range, with
 *		no side effects.
 *
 * The real engine runs at every instant something is due in the range,
 * inside a subtransaction that is always rolled back; the rows it writes to
 * the history (with the subject of any message) are collected when it ends.
 * taskflow's sequences are restarted at their current values inside the
 * subtransaction (ALTER SEQUENCE is transactional), so the rollback leaves
 * them exactly as they were: while a preview runs, other sessions drawing
 * ids from them wait.  Entry checks of "always" and anchor chains are made
 * every entry_step (default one day) instead of every few minutes, the
 * first at the start of the range (as the real ones, every few minutes,
 * would find a member added just before it at once).  Only
 * the chains previewed (the one named, or all the caller may run) are on
 * in the simulated world, so the others' due work does not hold the
 * simulation's clock back.  A batch that fails shows as an "error" row:
 * the simulation first runs with the engine's batches unguarded (no
 * subtransaction each, far cheaper over thousands of instants), and only
 * when something fails runs again guarded, as taskflow.run() does.
 * The simulation's own bookkeeping runs as the extension owner; the engine
 * runs chains as it does for taskflow.run() by the caller.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "engine.h"
#include "memberset.h"
#include "preview_scope.h"
#include "preview_watch.h"
#include "privileges.h"
#include "spi_util.h"
#include "version.h"

PG_FUNCTION_INFO_V1(taskflow_preview);

#define PREVIEW_MAX_RUNS 100000

/*
 * For every taskflow sequence, the query that makes the statement which
 * restarts it at the value nextval() would return next (transactional).
 * Read from the sequence itself: pg_sequences has no last_value for a
 * sequence restarted or never used (its next value is then last_value, not
 * start_value), and its pg_sequence_last_value() locks each sequence for
 * the rest of the caller's transaction, not just the preview's.
 */
static const char *restart_sequences_sql =
"SELECT pg_catalog.format('SELECT pg_catalog.format(''ALTER SEQUENCE %%I.%%I RESTART WITH %%s'', %L, %L,"
"                          CASE WHEN s.is_called THEN s.last_value OPERATOR(pg_catalog.+) 1"
"                               ELSE s.last_value END) FROM %I.%I s',"
"                         n.nspname, c.relname, n.nspname, c.relname)"
"  FROM pg_catalog.pg_class c"
"  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
" WHERE n.nspname OPERATOR(pg_catalog.=) 'taskflow' AND c.relkind OPERATOR(pg_catalog.=) 'S'";

/* the first entry check of "always" and anchor chains at the start */
static const char *first_entry_check_sql =
"UPDATE taskflow.chain c SET last_entry_at = NULL"
" WHERE c.schedule OPERATOR(pg_catalog.<>) 'daily' AND c.last_entry_at IS NOT NULL";

/*
 * after it, their entry checks at most every $1.  Not before: an anchor
 * chain's entry interval is also how far back a step missed counts at an
 * entry check (anchor_entry_floor), and the first check must count what
 * the worker's would, as explain() does.
 */
static const char *coarsen_sql =
"UPDATE taskflow.chain c SET entry_interval = GREATEST(COALESCE(c.entry_interval,"
"       pg_catalog.current_setting('taskflow.entry_interval')::interval), $1)"
" WHERE c.schedule OPERATOR(pg_catalog.<>) 'daily'";

/* only the chains previewed run: $1 the chain named (NULL: all), $2 the caller */
static const char *only_previewed_sql =
"UPDATE taskflow.chain c SET enabled = false"
" WHERE c.enabled AND (($1::text IS NOT NULL AND c.name OPERATOR(pg_catalog.<>) $1)"
"                      OR NOT pg_catalog.pg_has_role($2, c.owner, 'USAGE'))";

static const char *hypothetical_sql =
"SELECT taskflow._insert_hypothetical_member($1, $2)";

static const char *last_ids_sql =
"SELECT COALESCE(max(h.history_id), 0), COALESCE((SELECT max(e.error_id) FROM taskflow.chain_error e), 0)"
"  FROM taskflow.history h";

/*
 * What happened in the simulation, in order: the history rows after $1 for
 * the members of $3 (NULL: all), with the subject of any message (marked
 * "[not sent: reason]" when it is cancelled as it is queued), and the
 * batches that failed (chain_error rows after $2: those of a batch, and
 * those of a member of $3 its batch was narrowed down to).
 * Read once, when the simulation ends (the member's name is as of then):
 * read after every instant, the query was planned each time with the
 * statistics of before the simulation, and a plan that read the whole
 * history made a year of 10,000 members take minutes.  The subject is a
 * subquery on the outbox's unique key, not a join, for the same reason.
 */
#define HAPPENED_SQL(member) \
"SELECT x.at, x.chain, x.member_id, x.member_name, x.task, x.event, x.changes, x.subject" \
"  FROM (SELECT h.at, 0 AS source, h.history_id AS id, h.chain_name AS chain, h.member_id," \
"               m.name AS member_name, h.task_name AS task, h.event," \
"               CASE WHEN h.event OPERATOR(pg_catalog.=) 'applied' THEN t.actions" \
"                    ELSE h.detail END AS changes," \
"               (SELECT CASE WHEN o.state OPERATOR(pg_catalog.=) 'cancelled'" \
"                            THEN '[not sent: ' OPERATOR(pg_catalog.||) o.state_reason" \
"                                 OPERATOR(pg_catalog.||) ']' OPERATOR(pg_catalog.||)" \
"                                 COALESCE(' ' OPERATOR(pg_catalog.||) o.subject, '')" \
"                            ELSE o.subject END FROM taskflow.outbox o" \
"                 WHERE h.event OPERATOR(pg_catalog.=) 'applied'" \
"                   AND o.chain_id OPERATOR(pg_catalog.=) h.chain_id" \
"                   AND o.member_id OPERATOR(pg_catalog.=) h.member_id" \
"                   AND o.iteration OPERATOR(pg_catalog.=) h.iteration" \
"                   AND o.step_id OPERATOR(pg_catalog.=) h.step_id) AS subject" \
"          FROM taskflow.history h" \
"          JOIN taskflow.member m ON m.member_id OPERATOR(pg_catalog.=) h.member_id" \
"          LEFT JOIN taskflow.chain_step s ON s.step_id OPERATOR(pg_catalog.=) h.step_id" \
"          LEFT JOIN taskflow.task t ON t.task_id OPERATOR(pg_catalog.=) s.task_id" \
"         WHERE h.history_id OPERATOR(pg_catalog.>) $1" \
"           AND ($3 IS NULL OR h.member_id OPERATOR(pg_catalog.=) ANY ($3))" \
"        UNION ALL" \
"        SELECT e.at, 1, e.error_id, c.name, " member ", em.name, t.name, 'error'," \
"               pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('sqlstate', e.sqlstate," \
"                   'error', e.message, 'detail', e.detail, 'hint', e.hint))," \
"               NULL::text" \
"          FROM taskflow.chain_error e" \
"          JOIN taskflow.chain c ON c.chain_id OPERATOR(pg_catalog.=) e.chain_id" \
"          LEFT JOIN taskflow.chain_step s ON s.step_id OPERATOR(pg_catalog.=) e.step_id" \
"          LEFT JOIN taskflow.task t ON t.task_id OPERATOR(pg_catalog.=) s.task_id" \
"          LEFT JOIN taskflow.member em ON em.member_id OPERATOR(pg_catalog.=) " member \
"         WHERE e.error_id OPERATOR(pg_catalog.>) $2" \
"           AND ($3 IS NULL OR " member " IS NULL OR " member " OPERATOR(pg_catalog.=) ANY ($3))) x" \
" ORDER BY x.at, x.source, x.id"
static const char *happened_sql = HAPPENED_SQL("e.member_id");

/* (a database still at 0.1, whose errors have no member) */
static const char *happened_sql_0_1 = HAPPENED_SQL("NULL::bigint");

/* (a database still at 0.1, which has no _next_wakeup) */
static const char *next_sql_0_1 = "SELECT taskflow.next_wakeup($1)";

/* the chain of id x is on, not paused and not failing (a filter, not a join) */
#define CHAIN_RUNS(x) \
"(SELECT c.enabled AND c.paused_reason IS NULL" \
"        AND c.consecutive_failures OPERATOR(pg_catalog.=) 0" \
"   FROM taskflow.chain c WHERE c.chain_id OPERATOR(pg_catalog.=) " x ")"

/*
 * The next instant after $1 anything is due.  Every step the simulation
 * applied left index entries behind (its transaction never ends), all due
 * at or before the instant it ran at, and next_wakeup() walked them all at
 * every instant; so the members due after $1 are asked from the index, and
 * those still due at $1 are looked for among the members the last run
 * wrote history for (history after $2, up to $3): a run leaves nothing
 * else of a chain that is not failing due (a failing chain is
 * next_wakeup()'s part).  Each is looked up by its key alone: OFFSET 0
 * keeps the other conditions out of the lookup, for with them the plans
 * made with the statistics of before the simulation read the chain's whole
 * due index, or the entries left behind, for every row (a year did not
 * end in 20 minutes).  The chain is a filter, not a join, for the same
 * reason: joined, the history rows were found through the chain's index,
 * all of the chain's history at every instant.
 */
#define NEXT_DUE "taskflow._next_wakeup($1, $1)"
#define STILL_DUE \
"  (SELECT $1 FROM taskflow.history h," \
"          LATERAL (SELECT cm.state, cm.checked_at, cm.due_at FROM taskflow.chain_member cm" \
"                    WHERE cm.chain_id OPERATOR(pg_catalog.=) h.chain_id" \
"                      AND cm.member_id OPERATOR(pg_catalog.=) h.member_id OFFSET 0) cm" \
"    WHERE h.history_id OPERATOR(pg_catalog.>) $2 AND h.history_id OPERATOR(pg_catalog.<=) $3" \
"      AND cm.state OPERATOR(pg_catalog.=) 'waiting' AND cm.checked_at IS NULL" \
"      AND cm.due_at OPERATOR(pg_catalog.<=) $1" \
"      AND " CHAIN_RUNS("h.chain_id") \
"    LIMIT 1)"
static const char *next_sql = "SELECT LEAST(" NEXT_DUE "," STILL_DUE ")";

/*
 * The next instant after $1 anything is due, when the run at $1 left
 * nothing due (it placed no member due at $1 or before: preview_watch.c)
 */
static const char *next_later_sql = "SELECT LEAST(" NEXT_DUE ")";

/*
 * A scoped preview's (preview_scope.c) next instants: what is due for a
 * chain (_next_wakeup counting no member), or for a member previewed ($4),
 * after $1; the others' steps do not stop its clock.  The members are
 * looked up by their key (OFFSET 0): a plan reading the due index in order
 * for the earliest read the entries of every other member first.
 */
#define NEXT_DUE_SCOPED \
"taskflow._next_wakeup($1, 'infinity')," \
"  (SELECT pg_catalog.min(cm.due_at)" \
"     FROM (SELECT cm.chain_id, cm.state, cm.checked_at, cm.due_at" \
"             FROM taskflow.chain_member cm" \
"            WHERE cm.member_id OPERATOR(pg_catalog.=) ANY ($4) OFFSET 0) cm" \
"    WHERE cm.state OPERATOR(pg_catalog.=) 'waiting' AND cm.checked_at IS NULL" \
"      AND cm.due_at OPERATOR(pg_catalog.>) $1" \
"      AND " CHAIN_RUNS("cm.chain_id") ")"
static const char *next_scoped_sql = "SELECT LEAST(" NEXT_DUE_SCOPED "," STILL_DUE ")";
static const char *next_later_scoped_sql = "SELECT LEAST(" NEXT_DUE_SCOPED ")";

/*
 * The newest history id drawn (0: none), from the sequence: the preview
 * restarted it and holds it, so only the simulation draws from it.  Read
 * with max(), the plan made with the statistics of before the simulation
 * (an empty table) read the whole pkey index at every instant.
 */
static const char *newest_history_sql =
"SELECT CASE WHEN s.is_called THEN s.last_value ELSE s.last_value OPERATOR(pg_catalog.-) 1 END"
"  FROM taskflow.history_history_id_seq s";

/* The arguments of one preview. */
typedef struct PreviewArgs
{
	TimestampTz from;
	TimestampTz to;
	char	   *chain;
	Datum		members;		/* bigint[] or 0 */
	Datum		hypothetical;	/* jsonb or 0 */
	Datum		entry_step;		/* interval */
	Oid			caller;
	int64		last_history;	/* the newest rows before the simulation */
	bool		simulating;		/* the world is made: the simulation runs */
	int64		last_error;
	Tuplestorestate *result;
	TupleDesc	desc;
} PreviewArgs;

/*
 * PrepareWorld makes the subtransaction's world: sequences restarted,
 * the first entry checks at the start, chains not previewed off, the
 * hypothetical member added (and watched).  Runs as the extension owner.
 */
static void
PrepareWorld(PreviewArgs *args)
{
	Oid			types[2] = {JSONBOID, TIMESTAMPTZOID};
	Datum		values[2];
	char		nulls[2] = {args->chain ? ' ' : 'n', ' '};
	uint64		i;
	uint64		n;
	SPITupleTable *stmts;

	TaskflowExec(restart_sequences_sql, 0, NULL, NULL, NULL);
	stmts = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		TaskflowExec(SPI_getvalue(stmts->vals[i], stmts->tupdesc, 1), 0, NULL,
					 NULL, NULL);
		TaskflowExec(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), 0,
					 NULL, NULL, NULL);
	}
	TaskflowExec(first_entry_check_sql, 0, NULL, NULL, NULL);
	types[0] = TEXTOID;
	values[0] = args->chain ? CStringGetTextDatum(args->chain) : (Datum) 0;
	types[1] = OIDOID;
	values[1] = ObjectIdGetDatum(args->caller);
	TaskflowExec(only_previewed_sql, 2, types, values, nulls);
	if (args->hypothetical)
	{
		types[0] = JSONBOID;
		types[1] = TIMESTAMPTZOID;
		values[0] = args->hypothetical;
		values[1] = TimestampTzGetDatum(args->from);
		TaskflowExec(hypothetical_sql, 2, types, values, NULL);
		args->members = PointerGetDatum(construct_array(&(Datum) {Int64GetDatum(-1)},
														1, INT8OID, 8, FLOAT8PASSBYVAL,
														TYPALIGN_DOUBLE));
	}
}

/*
 * CoarsenEntryChecks makes the entry checks of "always" and anchor chains
 * every entry_step (after the first, at the start).  Runs as the extension
 * owner.
 */
static void
CoarsenEntryChecks(PreviewArgs *args)
{
	Oid			types[1] = {INTERVALOID};
	Datum		values[1] = {args->entry_step};

	TaskflowExec(coarsen_sql, 1, types, values, NULL);
}

/*
 * LastIds notes the newest history and error rows (0: none): what exists
 * before the simulation is not shown.
 */
static void
LastIds(PreviewArgs *args)
{
	bool		isnull;

	TaskflowExec(last_ids_sql, 0, NULL, NULL, NULL);
	args->last_history = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
													 SPI_tuptable->tupdesc, 1, &isnull));
	args->last_error = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 2, &isnull));
	SPI_freetuptable(SPI_tuptable);
}

/*
 * Collect copies what happened in the simulation into the result (at_0_2:
 * the database is at 0.2 or later).
 */
static void
Collect(PreviewArgs *args, bool at_0_2)
{
	Oid			types[3] = {INT8OID, INT8OID, INT8ARRAYOID};
	Datum		values[3] = {Int64GetDatum(args->last_history),
	Int64GetDatum(args->last_error), args->members};
	char		nulls[3] = {' ', ' ', args->members ? ' ' : 'n'};
	uint64		i;

	TaskflowExec(at_0_2 ? happened_sql : happened_sql_0_1, 3, types, values, nulls);
	for (i = 0; i < SPI_processed; i++)
	{
		Datum		row[8];
		bool		isnull[8];
		int			c;

		for (c = 0; c < 8; c++)
			row[c] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
								   c + 1, &isnull[c]);
		tuplestore_putvalues(args->result, args->desc, row, isnull);
	}
	SPI_freetuptable(SPI_tuptable);
}

/*
 * NewestHistory is the id of the newest history row the simulation wrote
 * (or of the newest before it), 0 when there is none.
 */
static int64
NewestHistory(void)
{
	bool		isnull;
	int64		id;

	TaskflowExec(newest_history_sql, 0, NULL, NULL, NULL);
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return id;
}

/*
 * NextInstant is the next instant after t anything is due (never t itself),
 * or 0 when nothing is; the run at t wrote the history rows after
 * history_before, up to history_after.  When the run placed no member due
 * at t or before (preview_watch.c), its history is not looked at.
 */
static TimestampTz
NextInstant(TimestampTz t, int64 history_before, int64 history_after,
			bool has_next_wakeup)
{
	Oid			types[4] = {TIMESTAMPTZOID, INT8OID, INT8OID, INT8ARRAYOID};
	Datum		values[4] = {TimestampTzGetDatum(t), Int64GetDatum(history_before),
	Int64GetDatum(history_after), (Datum) 0};
	MemberSet	scope = TaskflowPreviewScope();
	bool		later = TaskflowWatchEarliestPlaced() > t;
	bool		isnull;
	TimestampTz next;

	if (scope)
		values[3] = MemberSetToDatum(scope);
	if (!has_next_wakeup)
		TaskflowExec(next_sql_0_1, 1, types, values, NULL);
	else if (scope)
		TaskflowExec(later ? next_later_scoped_sql : next_scoped_sql, 4, types, values, NULL);
	else
		TaskflowExec(later ? next_later_sql : next_sql, 3, types, values, NULL);
	next = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	if (isnull)
		return 0;
	return next > t ? next : t + USECS_PER_SEC;
}

/*
 * Simulate runs the engine at every due instant from..to, then collects.
 */
static void
Simulate(PreviewArgs *args)
{
	TimestampTz t = args->from;
	int			runs = 0;
	char	   *version = TaskflowInstalledVersion();
	bool		has_next_wakeup = version == NULL || strcmp(version, "0.1") != 0;
	int64		history_before;
	int64		history_after;
	TaskflowSavedUser saved;

	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	args->simulating = false;
	PrepareWorld(args);
	args->simulating = true;
	LastIds(args);
	TaskflowPreviewScopeBegin(args->members ? MemberSetFromDatum(args->members, false) : NULL);
	TaskflowRestoreUser(&saved);
	history_after = args->last_history;
	while (t != 0 && t <= args->to)
	{
		if (++runs > PREVIEW_MAX_RUNS)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("preview needs more than %d engine runs", PREVIEW_MAX_RUNS),
					 errhint("Preview a shorter range, or a larger entry_step.")));
		CHECK_FOR_INTERRUPTS();
		history_before = history_after;
		TaskflowWatchPlacedFrom();
		TaskflowRunAll(args->caller, args->chain, t, NULL, NULL);
		TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
		if (runs == 1)
			CoarsenEntryChecks(args);
		if (has_next_wakeup)
			history_after = NewestHistory();
		t = NextInstant(t, history_before, history_after, has_next_wakeup);
		TaskflowRestoreUser(&saved);
	}
	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	Collect(args, has_next_wakeup);
	TaskflowRestoreUser(&saved);
}

/*
 * RetryGuarded says whether a first, unguarded attempt that failed with
 * this error is worth running again guarded: not when it was cancelled, or
 * ran out of resources or past a limit (a second attempt would too).
 */
static bool
RetryGuarded(int sqlerrcode)
{
	int			category = ERRCODE_TO_CATEGORY(sqlerrcode);

	return category != ERRCODE_OPERATOR_INTERVENTION &&
		category != ERRCODE_INSUFFICIENT_RESOURCES &&
		category != ERRCODE_PROGRAM_LIMIT_EXCEEDED;
}

/*
 * RunRolledBack runs the simulation in a subtransaction that is always
 * rolled back.  Guarded, each batch of the engine runs in a subtransaction
 * of its own (as in taskflow.run()), so a failing batch becomes an "error"
 * row; an error of the simulation itself is re-raised.  Unguarded, the
 * batches run in the simulation's one subtransaction, which keeps every
 * row's locks and versions under one transaction id (much cheaper over
 * thousands of instants); the first error ends the attempt, and false is
 * returned when a guarded attempt may do better.  An unguarded attempt
 * watches what it writes, so the engine's scans skip what cannot have
 * changed (preview_watch.c).
 */
static bool
RunRolledBack(PreviewArgs *args, bool guarded)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = true;
	char	   *version = TaskflowInstalledVersion();
	/* 0.1 has no preview_watch triggers */
	bool		watchable = version == NULL || strcmp(version, "0.1") != 0;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		taskflow_unguarded_units = !guarded;
		taskflow_previewing = true;
		if (!guarded && watchable)
			TaskflowWatchBegin();
		SPI_connect();
		Simulate(args);
		SPI_finish();
		TaskflowWatchEnd();
		TaskflowPreviewScopeEnd();
		taskflow_unguarded_units = false;
		taskflow_previewing = false;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		TaskflowWatchEnd();
		TaskflowPreviewScopeEnd();
		taskflow_unguarded_units = false;
		taskflow_previewing = false;
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		/* a failure making the world (a lock wait) would fail again */
		if (guarded || !args->simulating || !RetryGuarded(edata->sqlerrcode))
		{
			FreeErrorData(edata);
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(oldcxt);
			CurrentResourceOwner = oldowner;
			PG_RE_THROW();
		}
		FreeErrorData(edata);
		FlushErrorState();
		ok = false;
	}
	PG_END_TRY();
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;
	return ok;
}

/*
 * Run runs the simulation unguarded, and again guarded (from the start,
 * with what was collected dropped) when that failed: a failing batch then
 * shows as its "error" row, exactly as if every batch had been guarded.
 */
static void
Run(PreviewArgs *args)
{
	Datum		members = args->members;

	if (RunRolledBack(args, false))
		return;
	tuplestore_clear(args->result);
	args->members = members;
	RunRolledBack(args, true);
}

/*
 * CheckMembersExist refuses member_ids naming a member that does not
 * exist, as explain() does: an empty preview would look like "nothing
 * happens to them".
 */
static void
CheckMembersExist(Datum members)
{
	Oid			types[1] = {INT8ARRAYOID};
	Datum		values[1] = {members};
	TaskflowSavedUser saved;
	bool		isnull;
	int64		missing = 0;

	SPI_connect();
	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	TaskflowExec("SELECT x.id FROM pg_catalog.unnest($1) AS x(id)"
				 " WHERE x.id IS NOT NULL AND NOT EXISTS (SELECT FROM taskflow.member m"
				 "                  WHERE m.member_id OPERATOR(pg_catalog.=) x.id)"
				 " LIMIT 1", 1, types, values, NULL);
	if (SPI_processed > 0)
		missing = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
											  1, &isnull));
	TaskflowRestoreUser(&saved);
	SPI_finish();
	if (missing != 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("member " INT64_FORMAT " does not exist", missing),
				 errhint("member_ids names members of taskflow.member; preview a member not yet "
						 "created with hypothetical => '{\"name\": …}'.")));
}

/*
 * CheckArgs refuses infinite, reversed or over five years long ranges, and
 * an entry_step that is not positive or over a year (a huge one overflowed
 * the instants it is added to: "timestamp out of range").
 */
static void
CheckArgs(PreviewArgs *args)
{
	Interval   *step = DatumGetIntervalP(args->entry_step);
	double		step_usecs = (double) step->time +
		((double) step->day + (double) step->month * DAYS_PER_MONTH) * USECS_PER_DAY;

	if (TIMESTAMP_NOT_FINITE(args->from) || TIMESTAMP_NOT_FINITE(args->to))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("preview range must be finite")));
	if (step_usecs < USECS_PER_SEC || step_usecs > 366.0 * USECS_PER_DAY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("entry_step %s is out of range",
						DatumGetCString(DirectFunctionCall1(interval_out, args->entry_step))),
				 errhint("Use between 1 second and 366 days; the default, 1 day, checks entries once a day.")));
	if (args->to < args->from)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("preview range ends before it starts")));
	if (args->to - args->from > 5 * 366 * USECS_PER_DAY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("preview range is longer than five years"),
				 errhint("Preview a shorter range.")));
}

/*
 * taskflow.preview(from_at, to_at, chain, member_ids, hypothetical,
 * entry_step): the timeline the engine would produce, with no side effects.
 */
Datum
taskflow_preview(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	PreviewArgs args;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("preview needs from_at, to_at and entry_step")));
	memset(&args, 0, sizeof(args));
	args.from = PG_GETARG_TIMESTAMPTZ(0);
	args.to = PG_GETARG_TIMESTAMPTZ(1);
	args.chain = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	args.members = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);
	args.hypothetical = PG_ARGISNULL(4) ? (Datum) 0 : PG_GETARG_DATUM(4);
	args.entry_step = PG_GETARG_DATUM(5);
	args.caller = GetUserId();
	TaskflowCheckInstalledVersion();
	CheckArgs(&args);
	InitMaterializedSRF(fcinfo, 0);
	args.result = rsinfo->setResult;
	args.desc = rsinfo->setDesc;
	if (args.chain)
	{
		SPI_connect();
		TaskflowCheckRunnable(args.caller, args.chain);
		SPI_finish();
	}
	if (args.members)
		CheckMembersExist(args.members);
	Run(&args);
	return (Datum) 0;
}
