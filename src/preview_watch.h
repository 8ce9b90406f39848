/*
 * preview_watch.h
 *		What a preview's simulation writes, so that the engine's scans skip
 *		what cannot have changed (see preview_watch.c).
 */
#ifndef TASKFLOW_PREVIEW_WATCH_H
#define TASKFLOW_PREVIEW_WATCH_H

#include "datatype/timestamp.h"

#include "memberset.h"

/* a check narrowed to the members of the bigint[] parameter $n */
#define WATCH_ONLY_MEMBERS(column, n) \
	"AND " column " OPERATOR(pg_catalog.=) ANY ($" #n ")"

extern void TaskflowWatchBegin(void);
extern void TaskflowWatchEnd(void);
extern bool TaskflowWatching(void);
extern TimestampTz TaskflowWatchScanStart(int32 step_id);
extern void TaskflowWatchScanDone(int32 step_id, TimestampTz as_of);
extern void TaskflowWatchPlacedFrom(void);
extern TimestampTz TaskflowWatchEarliestPlaced(void);
extern MemberSet TaskflowWatchWrittenSince(int32 chain_id, char kind);
extern bool TaskflowWatchTimeless(const char *criteria_sql);

#endif							/* TASKFLOW_PREVIEW_WATCH_H */
