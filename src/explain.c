/*
 * explain.c
 *		Evaluating a chain's criteria for one member, as the chain's owner,
 *		for taskflow.explain ("why did this member (not) get it?").
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/timestamp.h"

#include "engine.h"
#include "privileges.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(taskflow_member_matches);

static const char *member_matches_format =
"SELECT EXISTS (SELECT FROM taskflow.member AS member"
" WHERE member.member_id OPERATOR(pg_catalog.=) $1 AND (%s\n))";

/*
 * MatchesAsOwner evaluates a criteria for one member as the chain owner,
 * with the chain's clock and time zone.
 */
static bool
MatchesAsOwner(TaskflowChain chain, TaskflowStep step, int64 member_id,
			   TimestampTz as_of)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(member_id)};
	TaskflowSavedUser saved;
	int			nest_level;
	bool		isnull;
	bool		result;

	if (step->criteria_sql == NULL)
		return true;
	nest_level = TaskflowPushRunSettings(as_of, chain->time_zone);
	TaskflowBecomeUser(chain->owner, &saved);
	TaskflowExec(psprintf(member_matches_format, step->criteria_sql), 1, types,
				 values, NULL);
	TaskflowRestoreUser(&saved);
	TaskflowPopRunSettings(nest_level);
	result = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1, &isnull));
	return !isnull && result;
}

/*
 * taskflow._member_matches(chain_id, step_id, member_id, as_of): whether the
 * member matches the criteria of that step's task (NULL step: the first),
 * as the chain's owner would see it; NULL if the chain or step is gone.
 */
Datum
taskflow_member_matches(PG_FUNCTION_ARGS)
{
	int			chain_id = PG_GETARG_INT32(0);
	int64		member_id = PG_GETARG_INT64(2);
	TimestampTz as_of = PG_GETARG_TIMESTAMPTZ(3);
	TaskflowChain chain;
	TaskflowStep step;
	bool		result;

	SPI_connect();
	chain = TaskflowLoadChain(chain_id, CurrentMemoryContext);
	step = chain == NULL ? NULL
		: PG_ARGISNULL(1) ? &chain->steps[0]
		: TaskflowChainStepById(chain, PG_GETARG_INT32(1));
	if (step == NULL || TaskflowOwnerProblem(chain) != NULL)
	{
		SPI_finish();
		PG_RETURN_NULL();
	}
	result = MatchesAsOwner(chain, step, member_id, as_of);
	SPI_finish();
	PG_RETURN_BOOL(result);
}
