/*
 * anchor_dates.c
 *		The date arithmetic of anchor chains: when a step is due from an
 *		anchor, and which yearly occurrence of an anchor a member follows.
 *
 * taskflow.anchor_due() and taskflow.anchor_occurrence() are called for
 * every member an anchor chain enters or moves on.  Written in SQL, the
 * occurrence (a subquery over four candidate years) cost about 80 µs a
 * call, most of a year's preview of a birthday chain; here it is the same
 * arithmetic with the same built-in functions (AT TIME ZONE, date and
 * interval addition), so DST gaps and 29 February behave exactly as the
 * SQL did.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(taskflow_anchor_due);
PG_FUNCTION_INFO_V1(taskflow_anchor_occurrence);

/*
 * LocalTime is t AT TIME ZONE tz: the wall-clock time in the zone.
 */
static Timestamp
LocalTime(TimestampTz t, text *tz)
{
	return DatumGetTimestamp(DirectFunctionCall2(timestamptz_zone, PointerGetDatum(tz),
												 TimestampTzGetDatum(t)));
}

/*
 * FromLocalTime is local AT TIME ZONE tz: the instant of a wall-clock time
 * in the zone.
 */
static TimestampTz
FromLocalTime(Timestamp local, text *tz)
{
	return DatumGetTimestampTz(DirectFunctionCall2(timestamp_zone, PointerGetDatum(tz),
												   TimestampGetDatum(local)));
}

/*
 * AddToLocal adds months and days to a wall-clock time (timestamp +
 * interval: the 29th of February plus a year is the 28th).
 */
static Timestamp
AddToLocal(Timestamp local, int32 months, int32 days)
{
	Interval	span;

	memset(&span, 0, sizeof(span));
	span.month = months;
	span.day = days;
	return DatumGetTimestamp(DirectFunctionCall2(timestamp_pl_interval, TimestampGetDatum(local),
												 IntervalPGetDatum(&span)));
}

/*
 * AnchorDue is when a step "days" days from an anchor occurrence is due:
 * at local time *at, or the occurrence's own time of day when at is NULL.
 */
static TimestampTz
AnchorDue(TimestampTz anchor_at, int32 days, TimeADT *at, text *tz)
{
	Timestamp	local = LocalTime(anchor_at, tz);

	if (at == NULL)
		local = AddToLocal(local, 0, days);
	else
	{
		Datum		day = DirectFunctionCall1(timestamp_date, TimestampGetDatum(local));

		day = DirectFunctionCall2(date_pli, day, Int32GetDatum(days));
		local = DatumGetTimestamp(DirectFunctionCall2(datetime_timestamp, day,
													  TimeADTGetDatum(*at)));
	}
	return FromLocalTime(local, tz);
}

/*
 * LocalYear is the year of a wall-clock time, as extract(year ...) gives it.
 */
static int32
LocalYear(Timestamp local)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(local))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("a yearly anchor must be a finite date")));
	if (timestamp2tm(local, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return tm.tm_year > 0 ? tm.tm_year : tm.tm_year - 1;
}

/*
 * taskflow.anchor_due(anchor_at, days, at, tz): when a step at "days" days
 * (at local time "at", or the anchor's own time of day when NULL) from an
 * anchor occurrence is due, in zone tz.  NULL when anchor_at, days or tz
 * is.
 */
Datum
taskflow_anchor_due(PG_FUNCTION_ARGS)
{
	TimeADT		at;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(3))
		PG_RETURN_NULL();
	if (!PG_ARGISNULL(2))
		at = PG_GETARG_TIMEADT(2);
	PG_RETURN_TIMESTAMPTZ(AnchorDue(PG_GETARG_TIMESTAMPTZ(0), PG_GETARG_INT32(1),
									PG_ARGISNULL(2) ? NULL : &at, PG_GETARG_TEXT_PP(3)));
}

/*
 * taskflow.anchor_occurrence(base, yearly, last_days, last_at, tz,
 * not_before): the anchor itself, or for a yearly chain the first
 * anniversary (from the year before not_before's to two years after)
 * whose last step is due at or after not_before; NULL when there is none.
 * A 29 February anchor falls on 28 February in common years.
 */
Datum
taskflow_anchor_occurrence(PG_FUNCTION_ARGS)
{
	TimestampTz base;
	TimestampTz not_before;
	Timestamp	local_base;
	text	   *tz;
	TimeADT		last_at;
	int32		last_days;
	int32		years;
	int			k;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	base = PG_GETARG_TIMESTAMPTZ(0);
	if (!PG_ARGISNULL(1) && !PG_GETARG_BOOL(1))
		PG_RETURN_TIMESTAMPTZ(base);
	if (PG_ARGISNULL(2) || PG_ARGISNULL(4) || PG_ARGISNULL(5))
		PG_RETURN_NULL();
	last_days = PG_GETARG_INT32(2);
	if (!PG_ARGISNULL(3))
		last_at = PG_GETARG_TIMEADT(3);
	tz = PG_GETARG_TEXT_PP(4);
	not_before = PG_GETARG_TIMESTAMPTZ(5);
	local_base = LocalTime(base, tz);
	years = LocalYear(LocalTime(not_before, tz)) - LocalYear(local_base);
	for (k = -1; k <= 2; k++)
	{
		TimestampTz occurrence = FromLocalTime(AddToLocal(local_base, (years + k) * 12, 0), tz);

		if (AnchorDue(occurrence, last_days, PG_ARGISNULL(3) ? NULL : &last_at, tz) >= not_before)
			PG_RETURN_TIMESTAMPTZ(occurrence);
	}
	PG_RETURN_NULL();
}
