/*
 * member_write.c
 *		Validating and normalising what is written about a member: the
 *		member row (triggers member_before_insert and member_before_update)
 *		its timeline events (event_before_insert and event_before_update)
 *		and its stays in groups (group_membership_before_write), all in
 *		src/sql/11_member_validation.sql.
 *
 * Row triggers in C because they run for every member the engine changes:
 * an UPDATE of a batch adding a tag calls the member trigger once per
 * member, and writes one tag_added event per member.  They check what the
 * write sets — on INSERT every column, on UPDATE only the columns whose
 * value changes (the others were checked when they were written).  For a
 * member: the e-mail address (taskflow.is_valid_email), the status (a row
 * of taskflow.member_status), each custom property
 * (taskflow.check_property_value), and the tags, which it trims, sorts
 * (the database's collation) and de-duplicates.  For an event: the kind (a
 * row of taskflow.event_kind), a finite occurred_at, and for a payment a
 * finite amount of 0 or more and a period, as record_payment() requires;
 * and recorded_by, the role that wrote the event: a role other than a
 * superuser or the extension owner cannot set it, its own name is written
 * there (taskflow's own code runs as the owner and names the writer
 * itself: a delivery worker, 'taskflow', the operator who cancelled a
 * message).
 * Statuses and kinds found are remembered for the rest of the statement,
 * so a COPY of many rows looks each one up once.  A bad row is refused
 * with an error naming the member, before the foreign keys (checked only
 * at the end of the statement, without the member or the COPY line) see
 * it.
 *
 * Restoring a dump is the one exception: like CREATE FUNCTION, the checks
 * are skipped while check_function_bodies is off — pg_dump's scripts set
 * it, and restore the data of extension tables in an order that may load
 * members before the property definitions they are checked against — but
 * only for a superuser, who alone can create the extension a dump
 * restores.  Any role may set check_function_bodies, so for everyone else
 * the checks always run.  The rows restored were checked when they were
 * first written.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rangetypes.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
#include "utils/varlena.h"

#include "privileges.h"
#include "spi_util.h"

PG_FUNCTION_INFO_V1(taskflow_member_before_write);
PG_FUNCTION_INFO_V1(taskflow_event_before_write);
PG_FUNCTION_INFO_V1(taskflow_group_membership_before_write);

/* longest tag, in characters */
#define TAG_MAX_CHARS 100
/* characters of a refused tag quoted in the error */
#define TAG_QUOTED_CHARS 20
/* U+3000 IDEOGRAPHIC SPACE, the blank a Japanese input method types */
#define IDEOGRAPHIC_SPACE "\xe3\x80\x80"
#define IDEOGRAPHIC_SPACE_LEN 3

/* looking up a status or an event kind */
#define STATUS_QUERY \
	"SELECT FROM taskflow.member_status s WHERE s.status OPERATOR(pg_catalog.=) $1"
#define KIND_QUERY \
	"SELECT FROM taskflow.event_kind k WHERE k.kind OPERATOR(pg_catalog.=) $1"

/* locking a group's row (writes of its stays take turns); its name */
#define GROUP_LOCK_QUERY \
	"SELECT g.name FROM taskflow.member_group g" \
	" WHERE g.group_id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE"
/*
 * The stays of member $1 in group $2 that overlap [$3, $4) (NULL $4: open),
 * but the stay $5, $6, $7 being updated; two open stays first.
 */
#define OVERLAP_QUERY \
	"SELECT gm.joined_at, gm.left_at," \
	"       gm.left_at IS NULL AND $4 IS NULL AS both_open" \
	"  FROM taskflow.group_membership gm" \
	" WHERE gm.member_id OPERATOR(pg_catalog.=) $1" \
	"   AND gm.group_id OPERATOR(pg_catalog.=) $2" \
	"   AND gm.joined_at OPERATOR(pg_catalog.<)" \
	"       COALESCE($4, 'infinity'::pg_catalog.timestamptz)" \
	"   AND $3 OPERATOR(pg_catalog.<)" \
	"       COALESCE(gm.left_at, 'infinity'::pg_catalog.timestamptz)" \
	"   AND ($5 IS NULL OR NOT (gm.member_id OPERATOR(pg_catalog.=) $5" \
	"        AND gm.group_id OPERATOR(pg_catalog.=) $6" \
	"        AND gm.joined_at OPERATOR(pg_catalog.=) $7))" \
	" ORDER BY 3 DESC, gm.joined_at LIMIT 1"

/* prepared once per backend */
static SPIPlanPtr group_lock_plan = NULL;
static SPIPlanPtr overlap_plan = NULL;

/* What the trigger keeps between rows (in fn_extra). */
typedef struct MemberWriteCache
{
	FmgrInfo	is_valid_email;		/* taskflow.is_valid_email(text) */
	FmgrInfo	check_property;		/* taskflow.check_property_value(text, jsonb, text) */
	text	   *cntrl_pattern;		/* '[[:cntrl:]]' */
	List	   *known_statuses;		/* statuses found in this statement */
} MemberWriteCache;

/* What the event trigger keeps between rows (in fn_extra). */
typedef struct EventWriteCache
{
	List	   *known_kinds;		/* event kinds found in this statement */
	Oid			extension_owner;	/* owner of the taskflow extension */
} EventWriteCache;

/*
 * LookupTaskflowFunction finds taskflow.name(args) and prepares a call.
 */
static void
LookupTaskflowFunction(const char *name, int nargs, Oid *argtypes,
					   FmgrInfo *finfo, MemoryContext cxt)
{
	List	   *qualified = list_make2(makeString("taskflow"), makeString((char *) name));
	Oid			fn = LookupFuncName(qualified, nargs, argtypes, false);

	fmgr_info_cxt(fn, finfo, cxt);
}

/*
 * GetCache returns the functions the checks call, looked up once per
 * statement.
 */
static MemberWriteCache *
GetCache(FunctionCallInfo fcinfo)
{
	MemberWriteCache *cache = (MemberWriteCache *) fcinfo->flinfo->fn_extra;

	if (cache == NULL)
	{
		MemoryContext cxt = fcinfo->flinfo->fn_mcxt;
		Oid			email_args[1] = {TEXTOID};
		Oid			property_args[3] = {TEXTOID, JSONBOID, TEXTOID};

		cache = MemoryContextAllocZero(cxt, sizeof(MemberWriteCache));
		LookupTaskflowFunction("is_valid_email", 1, email_args,
							   &cache->is_valid_email, cxt);
		LookupTaskflowFunction("check_property_value", 3, property_args,
							   &cache->check_property, cxt);
		cache->cntrl_pattern = (text *) MemoryContextAlloc(cxt, VARHDRSZ + 11);
		SET_VARSIZE(cache->cntrl_pattern, VARHDRSZ + 11);
		memcpy(VARDATA(cache->cntrl_pattern), "[[:cntrl:]]", 11);
		fcinfo->flinfo->fn_extra = cache;
	}
	return cache;
}

/*
 * RestoringDump says whether the checks are skipped: check_function_bodies
 * is off, as pg_dump's scripts set it, and the current user is a superuser
 * (see the file header).
 */
static bool
RestoringDump(void)
{
	return !check_function_bodies && superuser();
}

/*
 * DefinitionExists says whether name is a row of a definition table, by
 * query (STATUS_QUERY or KIND_QUERY); a name found is remembered in *known
 * (allocated in cxt, for the rest of the statement).  The query sees what
 * this transaction wrote so far, the current statement included.
 */
static bool
DefinitionExists(List **known, const char *query, text *name, MemoryContext cxt)
{
	char	   *value = text_to_cstring(name);
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {PointerGetDatum(name)};
	ListCell   *lc;
	bool		found;
	int			rc;

	foreach(lc, *known)
		if (strcmp((char *) lfirst(lc), value) == 0)
			return true;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "taskflow: SPI_connect failed");
	rc = SPI_execute_with_args(query, 1, argtypes, args, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "taskflow: looking up %s failed: %s", value,
			 SPI_result_code_string(rc));
	found = SPI_processed > 0;
	SPI_finish();
	if (found)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		*known = lappend(*known, pstrdup(value));
		MemoryContextSwitchTo(old);
	}
	return found;
}

/*
 * Column reads column name of a row.
 */
static Datum
Column(HeapTuple tuple, TupleDesc desc, const char *name, bool *isnull)
{
	int			attnum = SPI_fnumber(desc, name);

	if (attnum <= 0)
		elog(ERROR, "taskflow: taskflow.member has no column \"%s\"", name);
	return heap_getattr(tuple, attnum, desc, isnull);
}

/*
 * Changes says whether a write sets column name to a new value: always on
 * INSERT; on UPDATE when the new value is distinct from the old one.
 */
static bool
Changes(HeapTuple newtuple, HeapTuple oldtuple, TupleDesc desc, const char *name)
{
	int			attnum = SPI_fnumber(desc, name);
	Form_pg_attribute att = TupleDescAttr(desc, attnum - 1);
	bool		newnull;
	bool		oldnull;
	Datum		newvalue;
	Datum		oldvalue;

	if (oldtuple == NULL)
		return true;
	newvalue = heap_getattr(newtuple, attnum, desc, &newnull);
	oldvalue = heap_getattr(oldtuple, attnum, desc, &oldnull);
	if (newnull || oldnull)
		return newnull != oldnull;
	/* equal bytes are the same value; anything else is checked again */
	return !datumIsEqual(newvalue, oldvalue, att->attbyval, att->attlen);
}

/*
 * MemberLabel names the member in messages: its external id quoted, or its
 * member id.
 */
static char *
MemberLabel(HeapTuple tuple, TupleDesc desc)
{
	bool		isnull;
	Datum		value = Column(tuple, desc, "external_id", &isnull);

	if (!isnull)
		return quote_literal_cstr(TextDatumGetCString(value));
	value = Column(tuple, desc, "member_id", &isnull);
	if (!isnull)
		return DatumGetCString(DirectFunctionCall1(int8out, value));
	return "<NULL>";
}

/*
 * JsonString is a text as a JSON string, as to_json() writes it.
 */
static char *
JsonString(const char *value)
{
	StringInfoData buf;

	initStringInfo(&buf);
	escape_json(&buf, value);
	return buf.data;
}

/*
 * CheckEmail refuses an e-mail address taskflow.is_valid_email rejects.
 */
static void
CheckEmail(MemberWriteCache *cache, Datum email, HeapTuple tuple, TupleDesc desc)
{
	if (DatumGetBool(FunctionCall1Coll(&cache->is_valid_email, DEFAULT_COLLATION_OID,
									   email)))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid e-mail address %s for member %s",
					JsonString(TextDatumGetCString(email)), MemberLabel(tuple, desc)),
			 errhint("Give an address like name@example.jp, without spaces or line breaks.")));
}

/*
 * CheckStatus refuses a status that is not a row of taskflow.member_status
 * (the foreign key would, but only at the end of the statement, without
 * naming the member or the COPY line).
 */
static void
CheckStatus(MemberWriteCache *cache, Datum status, HeapTuple tuple, TupleDesc desc,
			MemoryContext cxt)
{
	text	   *name = DatumGetTextPP(status);

	if (DefinitionExists(&cache->known_statuses, STATUS_QUERY, name, cxt))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("unknown status %s for member %s",
					JsonString(text_to_cstring(name)), MemberLabel(tuple, desc)),
			 errhint("Define it first with taskflow.define_status().")));
}

/*
 * CheckProperties refuses properties that are not a JSON object, and checks
 * each value against its definition (taskflow.check_property_value), in
 * the order jsonb_each() lists them.
 */
static void
CheckProperties(MemberWriteCache *cache, Datum properties, HeapTuple tuple,
				TupleDesc desc)
{
	Jsonb	   *jb = DatumGetJsonbP(properties);
	char	   *label = MemberLabel(tuple, desc);
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken token;
	text	   *key = NULL;

	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("properties of member %s must be a JSON object, not %s", label,
						text_to_cstring(DatumGetTextPP(DirectFunctionCall1(jsonb_typeof,
																		   properties))))));
	it = JsonbIteratorInit(&jb->root);
	while ((token = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (token == WJB_KEY)
			key = cstring_to_text_with_len(v.val.string.val, v.val.string.len);
		else if (token == WJB_VALUE)
			FunctionCall3Coll(&cache->check_property, DEFAULT_COLLATION_OID,
							  PointerGetDatum(key),
							  JsonbPGetDatum(JsonbValueToJsonb(&v)),
							  CStringGetTextDatum(label));
	}
}

/*
 * TrimTag returns a tag without the blanks at its ends: ASCII spaces and
 * U+3000, the full-width space a Japanese input method types (the SQL
 * helpers trim the same with btrim(tag, E' \u3000')).
 */
static text *
TrimTag(text *tag)
{
	const char *p = VARDATA_ANY(tag);
	int			len = VARSIZE_ANY_EXHDR(tag);
	int			start = 0;
	int			end = len;

	for (;;)
	{
		if (start < end && p[start] == ' ')
			start++;
		else if (end - start >= IDEOGRAPHIC_SPACE_LEN &&
				 memcmp(p + start, IDEOGRAPHIC_SPACE, IDEOGRAPHIC_SPACE_LEN) == 0)
			start += IDEOGRAPHIC_SPACE_LEN;
		else
			break;
	}
	for (;;)
	{
		/* a lead byte 0xe3 is never inside another character */
		if (end > start && p[end - 1] == ' ')
			end--;
		else if (end - start >= IDEOGRAPHIC_SPACE_LEN &&
				 memcmp(p + end - IDEOGRAPHIC_SPACE_LEN, IDEOGRAPHIC_SPACE,
						IDEOGRAPHIC_SPACE_LEN) == 0)
			end -= IDEOGRAPHIC_SPACE_LEN;
		else
			break;
	}
	if (start == 0 && end == len)
		return tag;
	return cstring_to_text_with_len(p + start, end - start);
}

/*
 * BadTag says whether a trimmed tag is refused: empty, over 100
 * characters, or with a control character ('[[:cntrl:]]' in the
 * database's collation, as the SQL checks read it).
 */
static bool
BadTag(MemberWriteCache *cache, text *tag)
{
	const unsigned char *p = (const unsigned char *) VARDATA_ANY(tag);
	int			len = VARSIZE_ANY_EXHDR(tag);
	bool		plain = true;
	int			i;

	for (i = 0; i < len; i++)
		if (p[i] < 0x20 || p[i] >= 0x7f)
			plain = false;
	if (len == 0 || pg_mbstrlen_with_len((const char *) p, len) > TAG_MAX_CHARS)
		return true;
	/* printable ASCII has no control character; anything else asks the regex */
	return !plain &&
		DatumGetBool(DirectFunctionCall2Coll(textregexeq, DEFAULT_COLLATION_OID,
											 PointerGetDatum(tag),
											 PointerGetDatum(cache->cntrl_pattern)));
}

/*
 * RefuseTag raises the error for a refused tag (NULL: a NULL element),
 * quoting its first 20 characters.
 */
static void
RefuseTag(text *tag, HeapTuple tuple, TupleDesc desc)
{
	char	   *quoted = "NULL";

	if (tag)
	{
		char	   *value = text_to_cstring(tag);
		int			len = strlen(value);
		int			cut = pg_mbcharcliplen(value, len, TAG_QUOTED_CHARS);

		if (pg_mbstrlen_with_len(value, len) > TAG_QUOTED_CHARS)
			quoted = JsonString(psprintf("%.*s…", cut, value));
		else
			quoted = JsonString(value);
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid tag %s for member %s", quoted, MemberLabel(tuple, desc)),
			 errhint("A tag is 1 to 100 characters without control characters.")));
}

/*
 * CompareTags orders tags as ORDER BY does in the database's collation.
 */
static int
CompareTags(const void *a, const void *b)
{
	text	   *x = *(text *const *) a;
	text	   *y = *(text *const *) b;

	return varstr_cmp(VARDATA_ANY(x), VARSIZE_ANY_EXHDR(x),
					  VARDATA_ANY(y), VARSIZE_ANY_EXHDR(y), DEFAULT_COLLATION_OID);
}

/*
 * NormalizeTags checks every tag and returns the tags trimmed of blanks,
 * sorted and without duplicates (NULL tags: none); *changed says whether
 * that differs from the array written.
 */
static Datum
NormalizeTags(MemberWriteCache *cache, Datum tags, bool isnull, HeapTuple tuple,
			  TupleDesc desc, bool *changed)
{
	ArrayType  *array;
	Datum	   *elems;
	bool	   *nulls;
	text	  **sorted;
	int			n;
	int			kept;
	int			i;

	*changed = isnull;
	if (isnull)
		return PointerGetDatum(construct_empty_array(TEXTOID));
	array = DatumGetArrayTypeP(tags);
	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n == 0)
	{
		*changed = ARR_NDIM(array) != 0;
		return *changed ? PointerGetDatum(construct_empty_array(TEXTOID)) : tags;
	}

	sorted = palloc(sizeof(text *) * n);
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			RefuseTag(NULL, tuple, desc);
		sorted[i] = TrimTag(DatumGetTextPP(elems[i]));
		if (BadTag(cache, sorted[i]))
			RefuseTag(DatumGetTextPP(elems[i]), tuple, desc);
	}
	qsort(sorted, n, sizeof(text *), CompareTags);
	kept = 0;
	for (i = 0; i < n; i++)
		if (kept == 0 || CompareTags(&sorted[kept - 1], &sorted[i]) != 0)
			sorted[kept++] = sorted[i];

	/* the same elements in the same order, from 1: keep the array as it is */
	*changed = ARR_NDIM(array) != 1 || ARR_LBOUND(array)[0] != 1 || kept != n;
	for (i = 0; i < kept && !*changed; i++)
	{
		text	   *given = DatumGetTextPP(elems[i]);

		*changed = VARSIZE_ANY_EXHDR(given) != VARSIZE_ANY_EXHDR(sorted[i]) ||
			memcmp(VARDATA_ANY(given), VARDATA_ANY(sorted[i]),
				   VARSIZE_ANY_EXHDR(given)) != 0;
	}
	if (!*changed)
		return tags;
	for (i = 0; i < kept; i++)
		elems[i] = PointerGetDatum(sorted[i]);
	return PointerGetDatum(construct_array(elems, kept, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * WrittenRow checks that a validation trigger is a BEFORE INSERT OR UPDATE
 * row trigger and returns the row being written (and the old one of an
 * UPDATE in *oldtuple).
 */
static HeapTuple
WrittenRow(FunctionCallInfo fcinfo, const char *name, HeapTuple *oldtuple)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ||
		  TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("taskflow.%s() must be a BEFORE INSERT OR UPDATE row trigger", name)));
	*oldtuple = NULL;
	if (!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		return trigdata->tg_trigtuple;
	*oldtuple = trigdata->tg_trigtuple;
	return trigdata->tg_newtuple;
}

/*
 * taskflow.member_before_write() — BEFORE INSERT / UPDATE row trigger on
 * taskflow.member: validates and normalises the row (see the file header).
 * (NULL in a NOT NULL column is left to the constraint.)
 */
Datum
taskflow_member_before_write(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	MemberWriteCache *cache;
	HeapTuple	newtuple;
	HeapTuple	oldtuple = NULL;
	TupleDesc	desc;
	Datum		value;
	bool		isnull;

	newtuple = WrittenRow(fcinfo, "member_before_write", &oldtuple);
	if (RestoringDump())
		return PointerGetDatum(newtuple);

	cache = GetCache(fcinfo);
	desc = trigdata->tg_relation->rd_att;

	if (Changes(newtuple, oldtuple, desc, "email"))
	{
		value = Column(newtuple, desc, "email", &isnull);
		if (!isnull)
			CheckEmail(cache, value, newtuple, desc);
	}
	if (Changes(newtuple, oldtuple, desc, "status"))
	{
		value = Column(newtuple, desc, "status", &isnull);
		if (!isnull)
			CheckStatus(cache, value, newtuple, desc, fcinfo->flinfo->fn_mcxt);
	}
	if (Changes(newtuple, oldtuple, desc, "properties"))
	{
		value = Column(newtuple, desc, "properties", &isnull);
		if (!isnull)
			CheckProperties(cache, value, newtuple, desc);
	}
	if (Changes(newtuple, oldtuple, desc, "tags"))
	{
		int			attnum = SPI_fnumber(desc, "tags");
		bool		changed;
		bool		replace_null = false;
		Datum		tags = heap_getattr(newtuple, attnum, desc, &isnull);

		/* read first: isnull must be set before it is passed (NULL tags) */
		value = NormalizeTags(cache, tags, isnull, newtuple, desc, &changed);
		if (changed)
			newtuple = heap_modify_tuple_by_cols(newtuple, desc, 1, &attnum,
												 &value, &replace_null);
	}
	return PointerGetDatum(newtuple);
}

/*
 * EventLabel names the member of an event in messages: its member id.
 */
static char *
EventLabel(HeapTuple tuple, TupleDesc desc)
{
	bool		isnull;
	Datum		value = Column(tuple, desc, "member_id", &isnull);

	if (isnull)
		return "<NULL>";
	return DatumGetCString(DirectFunctionCall1(int8out, value));
}

/*
 * CheckKind refuses an event kind that is not a row of taskflow.event_kind.
 */
static void
CheckKind(EventWriteCache *cache, Datum kind, HeapTuple tuple, TupleDesc desc,
		  MemoryContext cxt)
{
	text	   *name = DatumGetTextPP(kind);

	if (DefinitionExists(&cache->known_kinds, KIND_QUERY, name, cxt))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("unknown event kind %s for member %s",
					quote_literal_cstr(text_to_cstring(name)), EventLabel(tuple, desc)),
			 errhint("Define it first with taskflow.define_event_kind().")));
}

/*
 * CheckOccurredAt refuses an infinite occurred_at: such an event would sit
 * at the top (or the bottom) of the member's timeline for ever.
 */
static void
CheckOccurredAt(Datum occurred_at, HeapTuple tuple, TupleDesc desc)
{
	if (!TIMESTAMP_NOT_FINITE(DatumGetTimestampTz(occurred_at)))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("an event of member %s cannot occur at %s", EventLabel(tuple, desc),
					DatumGetCString(DirectFunctionCall1(timestamptz_out, occurred_at))),
			 errhint("Give the instant it happened, or leave occurred_at out for the current time.")));
}

/*
 * CheckPaymentAmount refuses what record_payment() refuses, with its
 * messages: no amount, a negative one, NaN or Infinity.
 */
static void
CheckPaymentAmount(Datum amount, bool isnull, HeapTuple tuple, TupleDesc desc)
{
	const char *label = EventLabel(tuple, desc);
	Numeric		num;

	if (isnull ||
		DatumGetBool(DirectFunctionCall2(numeric_lt, amount,
										 NumericGetDatum(int64_to_numeric(0)))))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a payment needs a non-negative amount"),
				 errdetail("The payment of member %s has amount %s.", label,
						   isnull ? "NULL" :
						   DatumGetCString(DirectFunctionCall1(numeric_out, amount)))));
	num = DatumGetNumeric(amount);
	if (numeric_is_nan(num) || numeric_is_inf(num))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a payment needs a finite amount, not %s",
						DatumGetCString(DirectFunctionCall1(numeric_out, amount))),
				 errdetail("The payment of member %s has amount %s.", label,
						   DatumGetCString(DirectFunctionCall1(numeric_out, amount)))));
}

/*
 * CheckPaymentPeriod refuses a payment without the dates it pays for: a
 * NULL or empty period, or one without a finite start and end (what
 * record_payment(period_from, period_to) always writes).
 */
static void
CheckPaymentPeriod(Datum period, bool isnull, HeapTuple tuple, TupleDesc desc)
{
	bool		bad = isnull;

	if (!isnull)
	{
		RangeType  *range = DatumGetRangeTypeP(period);
		TypeCacheEntry *typcache = lookup_type_cache(RangeTypeGetOid(range),
													 TYPECACHE_RANGE_INFO);
		RangeBound	lower;
		RangeBound	upper;
		bool		empty;

		range_deserialize(typcache, range, &lower, &upper, &empty);
		bad = empty || lower.infinite || upper.infinite ||
			DATE_NOT_FINITE(DatumGetDateADT(lower.val)) ||
			DATE_NOT_FINITE(DatumGetDateADT(upper.val));
	}
	if (!bad)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("a payment needs a period with period_from <= period_to"),
			 errdetail("The payment of member %s has period %s.", EventLabel(tuple, desc),
					   isnull ? "NULL" :
					   DatumGetCString(OidOutputFunctionCall(F_RANGE_OUT, period))),
			 errhint("Give the dates it pays for, for example '[2026-04-10,2026-05-10)'.")));
}

/*
 * IsPayment says whether an event's kind is 'payment'.
 */
static bool
IsPayment(Datum kind)
{
	text	   *name = DatumGetTextPP(kind);

	return VARSIZE_ANY_EXHDR(name) == 7 && memcmp(VARDATA_ANY(name), "payment", 7) == 0;
}

/*
 * WriterSetsRecordedBy says whether the current role may write recorded_by
 * as it likes: a superuser, or the extension owner, which taskflow's own
 * code (the engine's bookkeeping, the delivery functions, the SECURITY
 * DEFINER functions) runs as.
 */
static bool
WriterSetsRecordedBy(EventWriteCache *cache)
{
	return superuser() || GetUserId() == cache->extension_owner;
}

/*
 * StampRecordedBy returns the event row with recorded_by set to the name of
 * the current role, the one writing it (unchanged when it already says so).
 */
static HeapTuple
StampRecordedBy(HeapTuple tuple, TupleDesc desc)
{
	int			attnum = SPI_fnumber(desc, "recorded_by");
	char	   *writer = GetUserNameFromId(GetUserId(), false);
	Datum		value;
	bool		isnull;
	bool		replace_null = false;

	if (attnum <= 0)
		elog(ERROR, "taskflow: taskflow.event has no column \"recorded_by\"");
	value = heap_getattr(tuple, attnum, desc, &isnull);
	if (!isnull && strcmp(TextDatumGetCString(value), writer) == 0)
		return tuple;
	value = CStringGetTextDatum(writer);
	return heap_modify_tuple_by_cols(tuple, desc, 1, &attnum, &value, &replace_null);
}

/*
 * taskflow.event_before_write() — BEFORE INSERT / UPDATE row trigger on
 * taskflow.event: the kind exists, occurred_at is finite, a payment has a
 * finite amount of 0 or more and a period, recorded_by names the role
 * writing it unless that is a superuser or the extension owner (see the
 * file header).  An unknown member is left to the foreign key, which names
 * the member_id.
 */
Datum
taskflow_event_before_write(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	EventWriteCache *cache;
	HeapTuple	newtuple;
	HeapTuple	oldtuple = NULL;
	TupleDesc	desc;
	Datum		kind;
	Datum		value;
	bool		kindnull;
	bool		isnull;

	newtuple = WrittenRow(fcinfo, "event_before_write", &oldtuple);
	if (RestoringDump())
		return PointerGetDatum(newtuple);

	cache = (EventWriteCache *) fcinfo->flinfo->fn_extra;
	if (cache == NULL)
	{
		cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(EventWriteCache));
		cache->extension_owner = TaskflowExtensionOwner();
		fcinfo->flinfo->fn_extra = cache;
	}
	desc = trigdata->tg_relation->rd_att;

	kind = Column(newtuple, desc, "kind", &kindnull);
	if (!kindnull && Changes(newtuple, oldtuple, desc, "kind"))
		CheckKind(cache, kind, newtuple, desc, fcinfo->flinfo->fn_mcxt);
	value = Column(newtuple, desc, "occurred_at", &isnull);
	if (!isnull && Changes(newtuple, oldtuple, desc, "occurred_at"))
		CheckOccurredAt(value, newtuple, desc);
	if (!kindnull && IsPayment(kind) &&
		(Changes(newtuple, oldtuple, desc, "kind") ||
		 Changes(newtuple, oldtuple, desc, "amount") ||
		 Changes(newtuple, oldtuple, desc, "period")))
	{
		value = Column(newtuple, desc, "amount", &isnull);
		CheckPaymentAmount(value, isnull, newtuple, desc);
		value = Column(newtuple, desc, "period", &isnull);
		CheckPaymentPeriod(value, isnull, newtuple, desc);
	}
	if (!WriterSetsRecordedBy(cache))
		newtuple = StampRecordedBy(newtuple, desc);
	return PointerGetDatum(newtuple);
}

/*
 * StayText describes a stay for messages: "from A to B", or "from A on"
 * for one still open.
 */
static char *
StayText(Datum joined_at, Datum left_at, bool open)
{
	char	   *from = DatumGetCString(DirectFunctionCall1(timestamptz_out, joined_at));

	if (open)
		return psprintf("from %s on", from);
	return psprintf("from %s to %s", from,
					DatumGetCString(DirectFunctionCall1(timestamptz_out, left_at)));
}

/*
 * OverlappingStay looks for another stay of the member in the group that
 * overlaps the one written (args as OVERLAP_QUERY's; nulls as SPI's), and
 * describes it (StayText, allocated in cxt); NULL when there is none, or
 * when both are open (the unique index group_membership_open_idx decides
 * then, so that INSERT ... ON CONFLICT DO NOTHING stays a no-op for a
 * member already in the group).  It reads the latest snapshot, as the
 * foreign key checks do: a stay committed by the transaction the group
 * lock waited for is seen whatever the isolation level.
 */
static char *
OverlappingStay(Datum *args, const char *nulls, MemoryContext cxt)
{
	Oid			argtypes[7] = {INT8OID, INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID,
							   INT8OID, INT4OID, TIMESTAMPTZOID};
	HeapTuple	row;
	TupleDesc	desc;
	Datum		joined_at;
	Datum		left_at;
	bool		open;
	int			rc;

	if (overlap_plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(OVERLAP_QUERY, 7, argtypes);

		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "taskflow: preparing the stay overlap query failed: %s",
				 SPI_result_code_string(SPI_result));
		overlap_plan = plan;
	}
	rc = SPI_execute_snapshot(overlap_plan, args, nulls, GetLatestSnapshot(),
							  InvalidSnapshot, false, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "taskflow: the stay overlap query failed: %s",
			 SPI_result_code_string(rc));
	if (SPI_processed == 0)
		return NULL;
	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	if (DatumGetBool(SPI_getbinval(row, desc, 3, &open)))
		return NULL;
	joined_at = SPI_getbinval(row, desc, 1, &open);
	left_at = SPI_getbinval(row, desc, 2, &open);
	return MemoryContextStrdup(cxt, StayText(joined_at, left_at, open));
}

/*
 * taskflow.group_membership_before_write() — BEFORE INSERT / UPDATE row
 * trigger on taskflow.group_membership: refuses a stay of a member in a
 * group that overlaps another stay of the same member in the same group,
 * whatever writes it (join_group(), the engine's join_group action,
 * INSERT, COPY, UPDATE), so that in_group() and the group predicates find
 * one stay at any instant.  Stays are half-open, [joined_at, left_at); the
 * next may start the instant the one before ends.  Writes of a group's
 * stays take turns: the group's row is locked (as the extension owner,
 * since writers of stays may not lock it) until the transaction ends, so
 * two transactions cannot each add a stay the other does not see.  NULLs,
 * an unknown group and a second open stay are left to the constraints,
 * which name them; skipped in a superuser's restore like the other checks.
 */
Datum
taskflow_group_membership_before_write(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	MemoryContext cxt = CurrentMemoryContext;
	Oid			lock_type[1] = {INT4OID};
	TaskflowSavedUser saved;
	HeapTuple	newtuple;
	HeapTuple	oldtuple = NULL;
	TupleDesc	desc;
	Datum		args[7];
	char		nulls[7] = "       ";
	bool		isnull[4];
	char	   *group_name = NULL;
	char	   *other = NULL;
	int			i;

	newtuple = WrittenRow(fcinfo, "group_membership_before_write", &oldtuple);
	if (RestoringDump())
		return PointerGetDatum(newtuple);
	desc = trigdata->tg_relation->rd_att;
	args[0] = Column(newtuple, desc, "member_id", &isnull[0]);
	args[1] = Column(newtuple, desc, "group_id", &isnull[1]);
	args[2] = Column(newtuple, desc, "joined_at", &isnull[2]);
	args[3] = Column(newtuple, desc, "left_at", &isnull[3]);
	if (isnull[0] || isnull[1] || isnull[2])
		return PointerGetDatum(newtuple);
	nulls[3] = isnull[3] ? 'n' : ' ';
	for (i = 4; i < 7; i++)
		nulls[i] = 'n';
	if (oldtuple)
	{
		args[4] = Column(oldtuple, desc, "member_id", &isnull[0]);
		args[5] = Column(oldtuple, desc, "group_id", &isnull[0]);
		args[6] = Column(oldtuple, desc, "joined_at", &isnull[0]);
		memset(nulls + 4, ' ', 3);
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "taskflow: SPI_connect failed");
	TaskflowBecomeUser(TaskflowExtensionOwner(), &saved);
	if (TaskflowExecSaved(&group_lock_plan, GROUP_LOCK_QUERY, 1, lock_type,
						  &args[1], NULL) > 0)
	{
		group_name = MemoryContextStrdup(cxt, SPI_getvalue(SPI_tuptable->vals[0],
														   SPI_tuptable->tupdesc, 1));
		other = OverlappingStay(args, nulls, cxt);
	}
	TaskflowRestoreUser(&saved);
	SPI_finish();

	if (other)
		ereport(ERROR,
				(errcode(ERRCODE_EXCLUSION_VIOLATION),
				 errmsg("member %s cannot be in group \"%s\" %s: they were in it %s",
						DatumGetCString(DirectFunctionCall1(int8out, args[0])), group_name,
						StayText(args[2], args[3], isnull[3]), other),
				 errhint("Stays of a member in one group cannot overlap: a stay may start when the one before ends (taskflow.leave_group())."),
				 errtablecol(trigdata->tg_relation, SPI_fnumber(desc, "joined_at"))));
	return PointerGetDatum(newtuple);
}
