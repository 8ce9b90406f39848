/*
 * member_write.c
 *		Validating and normalising a member row before it is written: the
 *		triggers member_before_insert and member_before_update
 *		(src/sql/11_member_validation.sql).
 *
 * A row trigger in C because it runs for every member the engine changes:
 * an UPDATE of a batch adding a tag calls it once per member.  It checks
 * what the write sets — on INSERT every column, on UPDATE only the columns
 * whose value changes (the others were checked when they were written):
 * the e-mail address (taskflow.is_valid_email), each custom property
 * (taskflow.check_property_value), and the tags, which it trims, sorts
 * (the database's collation) and de-duplicates.
 *
 * Like CREATE FUNCTION, it skips its checks while check_function_bodies is
 * off: pg_dump sets that while restoring, and restores the data of
 * extension tables in an order that may load members before the property
 * definitions they are checked against.  The rows were checked when they
 * were first written.
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
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/varlena.h"

PG_FUNCTION_INFO_V1(taskflow_member_before_write);

/* longest tag, in characters */
#define TAG_MAX_CHARS 100
/* characters of a refused tag quoted in the error */
#define TAG_QUOTED_CHARS 20

/* What the trigger keeps between rows (in fn_extra). */
typedef struct MemberWriteCache
{
	FmgrInfo	is_valid_email;		/* taskflow.is_valid_email(text) */
	FmgrInfo	check_property;		/* taskflow.check_property_value(text, jsonb, text) */
	text	   *cntrl_pattern;		/* '[[:cntrl:]]' */
} MemberWriteCache;

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
 * BadTag says whether a tag is refused: empty once trimmed of spaces, over
 * 100 characters, or with a control character ('[[:cntrl:]]' in the
 * database's collation, as the SQL checks read it).
 */
static bool
BadTag(MemberWriteCache *cache, text *tag)
{
	const unsigned char *p = (const unsigned char *) VARDATA_ANY(tag);
	int			len = VARSIZE_ANY_EXHDR(tag);
	bool		plain = true;
	bool		blank = true;
	int			i;

	for (i = 0; i < len; i++)
	{
		if (p[i] != ' ')
			blank = false;
		if (p[i] < 0x20 || p[i] >= 0x7f)
			plain = false;
	}
	if (blank || pg_mbstrlen_with_len((const char *) p, len) > TAG_MAX_CHARS)
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
 * NormalizeTags checks every tag and returns the tags trimmed of spaces,
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
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			RefuseTag(NULL, tuple, desc);
		if (BadTag(cache, DatumGetTextPP(elems[i])))
			RefuseTag(DatumGetTextPP(elems[i]), tuple, desc);
	}
	if (n == 0)
	{
		*changed = ARR_NDIM(array) != 0;
		return *changed ? PointerGetDatum(construct_empty_array(TEXTOID)) : tags;
	}

	sorted = palloc(sizeof(text *) * n);
	for (i = 0; i < n; i++)
		sorted[i] = DatumGetTextPP(DirectFunctionCall1(btrim1, elems[i]));
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
 * taskflow.member_before_write() — BEFORE INSERT / UPDATE row trigger on
 * taskflow.member: validates and normalises the row (see the file header).
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

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ||
		  TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("taskflow.member_before_write() must be a BEFORE INSERT OR UPDATE row trigger")));
	newtuple = trigdata->tg_trigtuple;
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		oldtuple = trigdata->tg_trigtuple;
		newtuple = trigdata->tg_newtuple;
	}
	if (!check_function_bodies)
		return PointerGetDatum(newtuple);

	cache = GetCache(fcinfo);
	desc = trigdata->tg_relation->rd_att;

	if (Changes(newtuple, oldtuple, desc, "email"))
	{
		value = Column(newtuple, desc, "email", &isnull);
		if (!isnull)
			CheckEmail(cache, value, newtuple, desc);
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

		value = NormalizeTags(cache, heap_getattr(newtuple, attnum, desc, &isnull),
							  isnull, newtuple, desc, &changed);
		if (changed)
			newtuple = heap_modify_tuple_by_cols(newtuple, desc, 1, &attnum,
												 &value, &replace_null);
	}
	return PointerGetDatum(newtuple);
}
