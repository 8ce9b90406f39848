/*
 * preview_scope.c
 *		Which members a preview simulates.
 *
 * A preview for a few members (member_ids, or a hypothetical member) shows
 * only their rows, but what happens to them may depend on the others: a
 * criteria with a subquery can count other members, an "sql" action can
 * change any row, and a member waiting for a later task's criteria to
 * match again (on_mismatch 'wait') is looked at whenever the engine runs,
 * which other members' steps decide.  When nothing in the chains previewed
 * can make one member's timeline depend on another's — every criteria
 * reads only its member's own data (CriteriaReadsOnlyItsMember: its row,
 * the clock, its groups, events and payments), no task has an "sql"
 * action and none after the first waits for its criteria — the
 * engine's scans in the simulation look only at the members previewed:
 * their entry checks, anchor checks and due steps, and the preview's clock
 * stops only where something is due for them or for a chain.  The timeline
 * is the same, and a year for one member among a million costs about what
 * it costs among ten.  Otherwise every member is simulated.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "criteria.h"
#include "preview_scope.h"
#include "spi_util.h"

/*
 * The criteria of every task of the chains running in the simulated world
 * (those not previewed are off), and whether the task makes members depend
 * on each other otherwise: an "sql" action, or waiting for its criteria.
 */
static const char *previewed_tasks_sql =
"SELECT cr.normalized,"
"       EXISTS (SELECT FROM pg_catalog.jsonb_array_elements(t.actions) a"
"                WHERE a OPERATOR(pg_catalog.?) 'sql')"
"       OR (s.position OPERATOR(pg_catalog.>) 1 AND t.criteria_id IS NOT NULL"
"           AND t.on_mismatch OPERATOR(pg_catalog.=) 'wait')"
"  FROM taskflow.chain c"
"  JOIN taskflow.chain_step s ON s.chain_id OPERATOR(pg_catalog.=) c.chain_id"
"  JOIN taskflow.task t ON t.task_id OPERATOR(pg_catalog.=) s.task_id"
"  LEFT JOIN taskflow.criteria cr ON cr.criteria_id OPERATOR(pg_catalog.=) t.criteria_id"
" WHERE c.enabled";

/* the members simulated (NULL: all), in TopTransactionContext */
static MemberSet scope = NULL;

/*
 * ReadsOnlyItsMember is CriteriaReadsOnlyItsMember, false when the criteria
 * cannot even be analysed (a function it calls was dropped): the engine
 * records that as the chain's error, and the preview must simulate it.
 */
static bool
ReadsOnlyItsMember(const char *normalized)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool result = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		result = CriteriaReadsOnlyItsMember(normalized);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		result = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;
	return result;
}

/*
 * MembersIndependent says whether no member's timeline in the simulated
 * world can depend on what happens to another member.  Runs inside SPI, as
 * the extension owner.
 */
static bool
MembersIndependent(void)
{
	SPITupleTable *tasks;
	uint64		n;
	uint64		i;

	TaskflowExec(previewed_tasks_sql, 0, NULL, NULL, NULL);
	tasks = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		bool		no_criteria;
		bool		isnull;
		Datum		criteria = SPI_getbinval(tasks->vals[i], tasks->tupdesc, 1, &no_criteria);

		if (DatumGetBool(SPI_getbinval(tasks->vals[i], tasks->tupdesc, 2, &isnull)))
			return false;
		if (!no_criteria && !ReadsOnlyItsMember(TextDatumGetCString(criteria)))
			return false;
	}
	return true;
}

/*
 * TaskflowPreviewScopeBegin makes the simulation look only at these
 * members (NULL: everyone) when that cannot change their timeline.
 */
void
TaskflowPreviewScopeBegin(MemberSet members)
{
	MemoryContext oldcxt;
	MemberSet	copy;

	scope = NULL;
	if (members == NULL || !MembersIndependent())
		return;
	oldcxt = MemoryContextSwitchTo(TopTransactionContext);
	copy = MemberSetEmpty();
	copy->count = members->count;
	copy->ids = palloc(sizeof(int64) * Max(members->count, 1));
	memcpy(copy->ids, members->ids, sizeof(int64) * members->count);
	MemoryContextSwitchTo(oldcxt);
	scope = copy;
}

/*
 * TaskflowPreviewScopeEnd: the simulation is over (or failed).
 */
void
TaskflowPreviewScopeEnd(void)
{
	scope = NULL;
}

/*
 * TaskflowPreviewScope returns the members the simulation looks at, NULL
 * for everyone (and outside a preview).
 */
MemberSet
TaskflowPreviewScope(void)
{
	return scope;
}

/*
 * TaskflowScoped narrows a set of candidates (NULL: every member) to the
 * members simulated.
 */
MemberSet
TaskflowScoped(MemberSet only)
{
	if (scope == NULL)
		return only;
	return only ? MemberSetIntersect(only, scope) : scope;
}
