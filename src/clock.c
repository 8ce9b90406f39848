/*
 * clock.c
 *		The engine's clock.
 *
 * Every time-relative criteria and action reads the instant it runs as from
 * taskflow.clock(), never from now(), so the engine, searches "as of" an
 * instant and the preview are exact and never sleep.  The instant lives in
 * the setting taskflow.as_of: a setting (unlike a static variable) is rolled
 * back with the transaction or function that set it and is passed on to
 * parallel workers.  Empty means "not set": clock() is then now().
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "clock.h"

PG_FUNCTION_INFO_V1(taskflow_clock);

static char *clock_setting = NULL;
static bool clock_is_set = false;
static TimestampTz clock_instant = 0;

/*
 * ClockParse parses a timestamptz without raising errors (a check hook must
 * not), returning false on anything timestamptz_in would refuse, including
 * instants past the end of the timestamp range.
 */
static bool
ClockParse(const char *text, TimestampTz *result)
{
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	int			tz;
	fsec_t		fsec;
	struct pg_tm tt;

	if (ParseDateTime(text, workbuf, sizeof(workbuf), field, ftype,
					  MAXDATEFIELDS, &nf) != 0)
		return false;
	if (DecodeDateTime(field, ftype, nf, &dtype, &tt, &fsec, &tz) != 0)
		return false;
	if (dtype != DTK_DATE)
		return false;
	return tm2timestamp(&tt, fsec, &tz, result) == 0 && IS_VALID_TIMESTAMP(*result);
}

/*
 * ClockCheck accepts an empty value or a valid timestamptz.
 */
static bool
ClockCheck(char **newval, void **extra, GucSource source)
{
	TimestampTz *parsed;
	TimestampTz instant;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (!ClockParse(*newval, &instant))
	{
		GUC_check_errdetail("\"%s\" is not a valid timestamp with time zone.",
							*newval);
		return false;
	}
	parsed = malloc(sizeof(TimestampTz));	/* GUC extras are malloc'd */
	if (parsed == NULL)
		return false;
	*parsed = instant;
	*extra = parsed;
	return true;
}

/*
 * ClockAssign caches the parsed instant so clock() costs nothing per row.
 */
static void
ClockAssign(const char *newval, void *extra)
{
	clock_is_set = (extra != NULL);
	clock_instant = extra ? *(TimestampTz *) extra : 0;
}

/*
 * TaskflowClockInit defines the taskflow.as_of setting.
 */
void
TaskflowClockInit(void)
{
	DefineCustomStringVariable("taskflow.as_of",
							   "Instant taskflow.clock() returns (empty: now()).",
							   "Set by the engine, searches and the preview; "
							   "a session may set it to look at members as of "
							   "another instant.",
							   &clock_setting,
							   "",
							   PGC_USERSET,
							   GUC_NOT_IN_SAMPLE,
							   ClockCheck, ClockAssign, NULL);
}

/*
 * TaskflowClockNow returns the engine's instant: taskflow.as_of when set,
 * otherwise the transaction's start (now()).
 */
TimestampTz
TaskflowClockNow(void)
{
	if (clock_is_set)
		return clock_instant;
	return GetCurrentTransactionStartTimestamp();
}

/*
 * TaskflowClockPush sets the clock to instant until TaskflowClockPop (or an
 * error) restores it; returns the nest level to pass to the pop.
 */
int
TaskflowClockPush(TimestampTz instant)
{
	int			nest_level = NewGUCNestLevel();
	char		text[MAXDATELEN + 1];
	struct pg_tm tt;
	fsec_t		fsec;

	/* ISO in UTC, so neither DateStyle nor TimeZone can change the value */
	if (TIMESTAMP_NOT_FINITE(instant) ||
		timestamp2tm(instant, NULL, &tt, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("taskflow cannot run as of an infinite or out-of-range instant")));
	/* timestamp2tm without a zone leaves tm_isdst -1, which drops the "+00" */
	tt.tm_isdst = 0;
	EncodeDateTime(&tt, fsec, true, 0, NULL, USE_ISO_DATES, text);
	(void) set_config_option("taskflow.as_of", text, PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return nest_level;
}

/*
 * TaskflowClockPop restores the clock as it was before the matching push,
 * and every other setting changed since (user code in between must not
 * leave any behind: see TaskflowUnpinSearchPath).
 */
void
TaskflowClockPop(int nest_level)
{
	AtEOXact_GUC(false, nest_level);
}

/*
 * taskflow.clock() — the instant the engine is running as.
 */
Datum
taskflow_clock(PG_FUNCTION_ARGS)
{
	PG_RETURN_TIMESTAMPTZ(TaskflowClockNow());
}
