/*
 * preview_watch.c
 *		What a preview's simulation writes, so that the engine's scans skip
 *		what cannot have changed.
 *
 * A preview runs the engine over months inside one transaction, where no
 * superseded row version or index entry can be removed.  The due scan of a
 * step walked the index entries of every member it had already moved on,
 * and the entry and anchor-change checks of anchor chains read every
 * member at every daily check; over a year of 10,000 members that was most
 * of the time.  While an unguarded preview runs (preview.c), the row
 * triggers preview_watch on taskflow.member and taskflow.chain_member (they
 * do nothing otherwise) tell this file:
 *
 *	- for each step, the lowest due_at of a member placed at it since its
 *	  last due scan; the next due scan of the step starts there (its
 *	  "floor") instead of at the oldest entry.  A scan that ended leaves the
 *	  floor at its instant: every member due by then was taken, and a member
 *	  left waiting (its criteria did not match) was written again, so it
 *	  lowers the floor to its own due_at;
 *	  A run that placed no member due at its instant or before left none
 *	  due: the preview then asks only for what is due later;
 *	- which members were written, in order.  An anchor chain's change check,
 *	  and an entry check whose criteria reads only the member row and not
 *	  the clock (and whose chain has no re-entry cooldown, which ends with
 *	  time), then look only at the members written since the chain's
 *	  previous check: nothing else can have changed anchor or become a
 *	  candidate (a member never leaves a chain's table; a re-armed one was
 *	  written when it stopped matching and again when it matched again).
 *
 * The first scan or check of each is a full one.  A guarded simulation
 * (after a batch failed) does not watch: a batch rolled back leaves its
 * members due without writing them.
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "executor/spi.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "criteria.h"
#include "preview_watch.h"

PG_FUNCTION_INFO_V1(taskflow_preview_watch);

/* A step's due floor. */
typedef struct StepFloor
{
	int32		step_id;		/* hash key */
	TimestampTz floor;			/* no member waits at the step due before it */
	bool		scanning;		/* a scan started and has not ended */
} StepFloor;

/* Where a chain's previous check of one kind stood in the written log. */
typedef struct ChainMark
{
	int64		key;			/* hash key: chain id * 2 + kind */
	int64		position;
} ChainMark;

/* A criteria expression and whether it reads only the member row, timeless. */
typedef struct TimelessCriteria
{
	char	   *sql;
	bool		timeless;
} TimelessCriteria;

static MemoryContext watch_cxt = NULL;
static LocalTransactionId watch_lxid = InvalidLocalTransactionId;
static HTAB *floors = NULL;
static HTAB *marks = NULL;
static List *criteria_seen = NIL;	/* TimelessCriteria * */
static int64 *written = NULL;	/* member ids, in the order written */
static int64 nwritten = 0;
static int64 written_size = 0;
static TimestampTz earliest_placed = DT_NOEND;	/* since TaskflowWatchPlacedFrom */

/*
 * TaskflowWatchBegin starts watching the simulation's writes, for the rest
 * of this transaction at most (TaskflowWatchEnd ends it sooner).
 */
void
TaskflowWatchBegin(void)
{
	HASHCTL		ctl;

	TaskflowWatchEnd();
	watch_cxt = AllocSetContextCreate(TopTransactionContext, "taskflow preview watch",
									  ALLOCSET_DEFAULT_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int32);
	ctl.entrysize = sizeof(StepFloor);
	ctl.hcxt = watch_cxt;
	floors = hash_create("taskflow due floors", 64, &ctl,
						 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(ChainMark);
	marks = hash_create("taskflow check marks", 64, &ctl,
						HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	criteria_seen = NIL;
	written_size = 1024;
	written = MemoryContextAlloc(watch_cxt, written_size * sizeof(int64));
	nwritten = 0;
	watch_lxid = MyProc->lxid;
}

/*
 * TaskflowWatchEnd stops watching and forgets what was seen.
 */
void
TaskflowWatchEnd(void)
{
	if (watch_cxt != NULL && watch_lxid == MyProc->lxid)
		MemoryContextDelete(watch_cxt);
	watch_cxt = NULL;
	watch_lxid = InvalidLocalTransactionId;
	floors = marks = NULL;
	criteria_seen = NIL;
	written = NULL;
	nwritten = written_size = 0;
}

/*
 * TaskflowWatching says whether a preview is watching now (never after the
 * transaction it started in ended: its memory went with it).
 */
bool
TaskflowWatching(void)
{
	return watch_cxt != NULL && watch_lxid == MyProc->lxid;
}

/*
 * TaskflowWatchScanStart returns where a step's due scan may start (no
 * member waits at the step due before it; -infinity when not known) and
 * notes that the scan started.
 */
TimestampTz
TaskflowWatchScanStart(int32 step_id)
{
	StepFloor  *entry;
	bool		found;
	TimestampTz start;

	if (!TaskflowWatching())
		return DT_NOBEGIN;
	entry = hash_search(floors, &step_id, HASH_ENTER, &found);
	start = found && !entry->scanning ? entry->floor : DT_NOBEGIN;
	entry->scanning = true;
	entry->floor = DT_NOEND;	/* lowered by what is placed at the step */
	return start;
}

/*
 * TaskflowWatchScanDone notes that a step's due scan took every member due
 * up to the instant it ran at.
 */
void
TaskflowWatchScanDone(int32 step_id, TimestampTz as_of)
{
	StepFloor  *entry;

	if (!TaskflowWatching())
		return;
	entry = hash_search(floors, &step_id, HASH_FIND, NULL);
	if (entry == NULL || !entry->scanning)
		return;
	entry->scanning = false;
	entry->floor = Min(entry->floor, as_of);
}

/*
 * TaskflowWatchPlacedFrom starts noting the earliest due time a member is
 * placed at (TaskflowWatchEarliestPlaced reads it).
 */
void
TaskflowWatchPlacedFrom(void)
{
	earliest_placed = DT_NOEND;
}

/*
 * TaskflowWatchEarliestPlaced is the earliest due time a member was placed
 * at (and not checked) since TaskflowWatchPlacedFrom; -infinity when not
 * watching (anything may be due).  A run that placed no member due at its
 * instant or before left none due: the preview then asks only for what is
 * due later.
 */
TimestampTz
TaskflowWatchEarliestPlaced(void)
{
	return TaskflowWatching() ? earliest_placed : DT_NOBEGIN;
}

/*
 * TaskflowWatchWrittenSince returns the members written since the chain's
 * previous check of this kind ('c'hange, 'e'ntry), or NULL when every
 * member must be looked at (not watching, or the chain's first check).
 */
MemberSet
TaskflowWatchWrittenSince(int32 chain_id, char kind)
{
	int64		key = (int64) chain_id * 2 + (kind == 'e');
	ChainMark  *mark;
	bool		found;
	int64		from;
	int64	   *ids;

	if (!TaskflowWatching())
		return NULL;
	mark = hash_search(marks, &key, HASH_ENTER, &found);
	from = found ? mark->position : -1;
	mark->position = nwritten;
	if (from < 0)
		return NULL;
	if (from == nwritten)
		return MemberSetEmpty();
	ids = palloc((nwritten - from) * sizeof(int64));
	memcpy(ids, written + from, (nwritten - from) * sizeof(int64));
	return MemberSetFromIds(ids, (int) (nwritten - from));
}

/*
 * TaskflowWatchTimeless says whether a criteria (NULL: everyone) matches
 * the same members for as long as no member is written.
 */
bool
TaskflowWatchTimeless(const char *criteria_sql)
{
	ListCell   *lc;
	TimelessCriteria *seen;
	MemoryContext oldcxt;

	if (criteria_sql == NULL)
		return true;
	if (!TaskflowWatching())
		return false;
	foreach(lc, criteria_seen)
	{
		seen = lfirst(lc);
		if (strcmp(seen->sql, criteria_sql) == 0)
			return seen->timeless;
	}
	oldcxt = MemoryContextSwitchTo(watch_cxt);
	seen = palloc(sizeof(TimelessCriteria));
	seen->sql = pstrdup(criteria_sql);
	MemoryContextSwitchTo(oldcxt);
	seen->timeless = CriteriaReadsOnlyTheRow(criteria_sql);
	oldcxt = MemoryContextSwitchTo(watch_cxt);
	criteria_seen = lappend(criteria_seen, seen);
	MemoryContextSwitchTo(oldcxt);
	return seen->timeless;
}

/*
 * NoteMember adds a written member to the log.
 */
static void
NoteMember(int64 member_id)
{
	if (nwritten == written_size)
	{
		written_size *= 2;
		written = repalloc_huge(written, written_size * sizeof(int64));
	}
	written[nwritten++] = member_id;
}

/*
 * NotePlaced lowers the floor of the step a chain_member row waits at to
 * its due_at, and notes the earliest due_at placed (not for a member
 * waiting for its criteria to match: it waits for the next run anyway).
 */
static void
NotePlaced(HeapTuple row, TupleDesc desc)
{
	bool		isnull;
	Datum		state = heap_getattr(row, SPI_fnumber(desc, "state"), desc, &isnull);
	Datum		step_id;
	Datum		due_at;
	bool		step_null;
	bool		due_null;
	bool		checked_null;
	StepFloor  *entry;
	int32		step;

	if (isnull || strcmp(TextDatumGetCString(state), "waiting") != 0)
		return;
	step_id = heap_getattr(row, SPI_fnumber(desc, "step_id"), desc, &step_null);
	due_at = heap_getattr(row, SPI_fnumber(desc, "due_at"), desc, &due_null);
	if (step_null || due_null)
		return;
	(void) heap_getattr(row, SPI_fnumber(desc, "checked_at"), desc, &checked_null);
	if (checked_null)
		earliest_placed = Min(earliest_placed, DatumGetTimestampTz(due_at));
	step = DatumGetInt32(step_id);
	entry = hash_search(floors, &step, HASH_FIND, NULL);
	/* no entry: never scanned, the scan starts at the oldest entry anyway */
	if (entry != NULL)
		entry->floor = Min(entry->floor, DatumGetTimestampTz(due_at));
}

/*
 * taskflow._preview_watch() — BEFORE INSERT OR UPDATE row trigger on
 * taskflow.member and taskflow.chain_member: while a preview watches, notes
 * the member written, or the step and due_at a member is placed at.
 * Otherwise it does nothing.
 */
Datum
taskflow_preview_watch(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	row;
	TupleDesc	desc;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("taskflow._preview_watch() must be called as a BEFORE row trigger")));
	row = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple
		: trigdata->tg_trigtuple;
	if (!TaskflowWatching() || TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		return PointerGetDatum(row);
	desc = RelationGetDescr(trigdata->tg_relation);
	if (strcmp(RelationGetRelationName(trigdata->tg_relation), "chain_member") == 0)
		NotePlaced(row, desc);
	else
	{
		bool		isnull;
		Datum		id = heap_getattr(row, SPI_fnumber(desc, "member_id"), desc, &isnull);

		if (!isnull)
			NoteMember(DatumGetInt64(id));
	}
	return PointerGetDatum(row);
}
