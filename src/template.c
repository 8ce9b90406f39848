/*
 * template.c
 *		Message templates: the merge-field tokenizer and the renderer.
 *
 * The engine renders a message for every due member in one set-based
 * INSERT ... SELECT, so rendering runs once per row and must be cheap:
 *
 * - a template is parsed once per query, not once per row: parses are
 *   cached in fn_extra, keyed by the bytes the template datum is stored as
 *   (for a TOASTed body, the TOAST pointer), so a long HTML body is not even
 *   decompressed again for the next member;
 * - taskflow.render_member() reads the member row directly, with its column
 *   types (timestamps, dates, arrays, the properties jsonb), instead of going
 *   through to_jsonb() of the row;
 * - the result is built in place as a text datum, without a final copy.
 *
 * The tokenizer is the only parser of merge fields: taskflow.template_fields()
 * (used by the validation in SQL when a template is saved) and the renderers
 * share it, so what was accepted when saving is exactly what is rendered.
 */
#include "postgres.h"

#include <ctype.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "mime.h"
#include "template.h"

PG_FUNCTION_INFO_V1(taskflow_template_fields);
PG_FUNCTION_INFO_V1(taskflow_render);
PG_FUNCTION_INFO_V1(taskflow_render_member);

/* characters of template text quoted in a syntax error */
#define SNIPPET_CHARS 24

/* separator between the elements of an array value (tags) */
#define LIST_SEPARATOR ", "

/* parsed templates remembered per function call site */
#define RENDER_CACHE_SIZE 4

/* State of TemplateParse. */
typedef struct TemplateParser
{
	const char *src;
	int			len;
	const char *what;			/* "subject of template ...", or NULL */
	TemplateData *tpl;
	int			allocated;		/* size of tpl->parts */
} TemplateParser;

/* Where a merge field of a template is found in the member row type. */
typedef struct FieldRefData
{
	int			attno;			/* 0-based column, -1 when there is none */
	const char *path;			/* key path inside a jsonb column, or NULL */
	int			path_len;
} FieldRefData;

typedef FieldRefData *FieldRef;

/* How one column of the member row type is written. */
typedef struct ColumnOutputData
{
	Oid			typid;
	Oid			elemtype;		/* element type of an array, else invalid */
	int16		elmlen;
	bool		elmbyval;
	char		elmalign;
	FmgrInfo	output;			/* output function of the type or element */
} ColumnOutputData;

typedef ColumnOutputData *ColumnOutput;

/* One parsed template in the cache. */
typedef struct RenderCacheEntry
{
	MemoryContext cxt;			/* owns all below; NULL when unused */
	char	   *key;			/* the template datum's stored bytes */
	Size		key_len;
	Template	tpl;
	FieldRef	refs;			/* per part, for the member row type */
} RenderCacheEntry;

/* What a renderer keeps in fn_extra between rows. */
typedef struct RenderCacheData
{
	RenderCacheEntry entries[RENDER_CACHE_SIZE];
	int			victim;			/* entry replaced on the next miss */
	StringInfoData value;		/* scratch buffer for one field's value */
	Oid			member_type;	/* the member row type seen, if any */
	int32		member_typmod;
	TupleDesc	member_desc;
	ColumnOutput columns;		/* per column of member_desc */
	Datum	   *values;			/* the deformed member row */
	bool	   *nulls;
} RenderCacheData;

typedef RenderCacheData *RenderCache;

/* Looks the value of merge field number part up, appending it to value. */
typedef void (*TemplateLookup) (void *arg, int part, StringInfo value);

/* Lookup argument of taskflow.render(): the fields object. */
typedef struct JsonbFieldsData
{
	Template	tpl;
	Jsonb	   *fields;
} JsonbFieldsData;

/* Lookup argument of taskflow.render_member(): the deformed member row. */
typedef struct MemberRowData
{
	RenderCache cache;
	FieldRef	refs;
	bool		present;		/* false for a NULL member */
} MemberRowData;


/* ---------------------------------------------------------------- parsing */

/*
 * TemplateBracesAt tells whether "{{" ('{') or "}}" ('}') starts at offset
 * i of the source, else 0.
 */
static char
TemplateBracesAt(TemplateParser *p, int i)
{
	if (i + 1 >= p->len || p->src[i] != p->src[i + 1])
		return 0;
	if (p->src[i] == '{' || p->src[i] == '}')
		return p->src[i];
	return 0;
}

/*
 * TemplateAddPart appends a part of the given kind and source range.
 */
static TemplatePart
TemplateAddPart(TemplateParser *p, TemplatePartKind kind, int offset, int len)
{
	TemplatePart part;

	if (p->tpl->nparts == p->allocated)
	{
		p->allocated *= 2;
		p->tpl->parts = repalloc(p->tpl->parts,
								 p->allocated * sizeof(TemplatePartData));
	}
	part = &p->tpl->parts[p->tpl->nparts++];
	part->kind = kind;
	part->text = p->src + offset;
	part->len = len;
	part->fallback = NULL;
	part->fallback_len = 0;
	return part;
}

/*
 * TemplateAddLiteral appends literal text; empty pieces are left out.
 */
static void
TemplateAddLiteral(TemplateParser *p, int offset, int len)
{
	if (len > 0)
		(void) TemplateAddPart(p, TEMPLATE_LITERAL, offset, len);
}

/*
 * TemplateWhere returns " in <what>" for error messages, or "" when the
 * caller did not name the text.
 */
static const char *
TemplateWhere(TemplateParser *p)
{
	return p->what ? psprintf(" in %s", p->what) : "";
}

/*
 * TemplatePosition converts a byte offset into the 1-based character
 * position users see (Japanese characters are several bytes each).
 */
static int
TemplatePosition(TemplateParser *p, int offset)
{
	return pg_mbstrlen_with_len(p->src, offset) + 1;
}

/*
 * TemplateSnippet quotes the source from a byte offset, up to a line break
 * or SNIPPET_CHARS characters, so an error shows the text it is about.
 */
static char *
TemplateSnippet(TemplateParser *p, int offset)
{
	int			rest = p->len - offset;
	int			clip = pg_mbcharcliplen(p->src + offset, rest, SNIPPET_CHARS);
	const char *newline = memchr(p->src + offset, '\n', clip);

	if (newline != NULL)
		clip = newline - (p->src + offset);
	return psprintf("%.*s%s", clip, p->src + offset, clip < rest ? "..." : "");
}

/*
 * TemplateStrayClose reports "}}" outside a merge field.
 */
static void
TemplateStrayClose(TemplateParser *p, int offset)
{
	ereport(ERROR,
			(errcode(ERRCODE_SYNTAX_ERROR),
			 errmsg("stray \"}}\"%s at character %d",
					TemplateWhere(p), TemplatePosition(p, offset)),
			 errdetail("The text from there is \"%s\".",
					   TemplateSnippet(p, offset)),
			 errhint("A merge field is written {{name}}; write \\}} for literal braces.")));
}

/*
 * TemplateFindClose returns the offset of the "}}" closing the merge field
 * opened at offset open; a field must close before the next "{{".
 */
static int
TemplateFindClose(TemplateParser *p, int open)
{
	int			i;

	for (i = open + 2; i < p->len; i++)
	{
		char		braces = TemplateBracesAt(p, i);

		if (braces == '}')
			return i;
		if (braces == '{')
			break;
	}
	ereport(ERROR,
			(errcode(ERRCODE_SYNTAX_ERROR),
			 errmsg("unclosed merge field%s at character %d",
					TemplateWhere(p), TemplatePosition(p, open)),
			 errdetail("\"%s\" has no closing \"}}\".",
					   TemplateSnippet(p, open)),
			 errhint("Close it with \"}}\", or write \\{{ for literal braces.")));
	return -1;					/* not reached */
}

/*
 * TemplateTrim narrows [*start, *end) of the source to exclude surrounding
 * whitespace.
 */
static void
TemplateTrim(const char *src, int *start, int *end)
{
	while (*start < *end && isspace((unsigned char) src[*start]))
		(*start)++;
	while (*end > *start && isspace((unsigned char) src[*end - 1]))
		(*end)--;
}

/*
 * TemplateValidName accepts an ASCII identifier, optionally followed by
 * dot-separated ones (properties.plan).
 */
static bool
TemplateValidName(const char *name, int len)
{
	int			i;
	bool		segment_start = true;

	for (i = 0; i < len; i++)
	{
		unsigned char c = name[i];

		if (c == '.' && !segment_start)
			segment_start = true;
		else if (isalpha(c) || c == '_' || (isdigit(c) && !segment_start))
			segment_start = false;
		else
			return false;
	}
	return !segment_start;
}

/*
 * TemplateCheckName raises unless a merge field's name is well formed.
 */
static void
TemplateCheckName(TemplateParser *p, int open, int start, int end)
{
	if (start == end)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("empty merge field%s at character %d",
						TemplateWhere(p), TemplatePosition(p, open)),
				 errdetail("The text from there is \"%s\".",
						   TemplateSnippet(p, open)),
				 errhint("Name a member column or property, as in {{name}} or {{properties.plan}}.")));
	if (!TemplateValidName(p->src + start, end - start))
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("invalid merge field name \"%.*s\"%s at character %d",
						end - start, p->src + start,
						TemplateWhere(p), TemplatePosition(p, open)),
				 errdetail("A field name is ASCII letters, digits and underscores, or properties.<property name>."),
				 errhint("Name a member column or property, as in {{name}} or {{properties.plan}}.")));
}

/*
 * TemplateParseField parses the merge field opened at offset open:
 * "{{ name }}" or "{{ name | default text }}".  Returns the offset after it.
 */
static int
TemplateParseField(TemplateParser *p, int open)
{
	int			close = TemplateFindClose(p, open);
	int			start = open + 2;
	int			end = close;
	const char *bar = memchr(p->src + start, '|', close - start);
	TemplatePart part;

	if (bar != NULL)
		end = bar - p->src;
	TemplateTrim(p->src, &start, &end);
	TemplateCheckName(p, open, start, end);
	part = TemplateAddPart(p, TEMPLATE_FIELD, start, end - start);
	p->tpl->nfields++;
	if (bar != NULL)
	{
		start = bar - p->src + 1;
		end = close;
		TemplateTrim(p->src, &start, &end);
		part->fallback = p->src + start;
		part->fallback_len = end - start;
	}
	return close + 2;
}

/*
 * TemplateParse splits template text into literal and merge-field parts,
 * raising a syntax error (with the character position, and naming the text
 * as what when given) on an unclosed "{{", a stray "}}", an empty field or a
 * bad field name.  \{{ and \}} stand for literal braces.  The parts point
 * into src, which must outlive the result.
 */
Template
TemplateParse(const char *src, int len, const char *what)
{
	TemplateParser p;
	int			start = 0;
	int			i = 0;

	p.src = src;
	p.len = len;
	p.what = what;
	p.allocated = 8;
	p.tpl = palloc0(sizeof(TemplateData));
	p.tpl->parts = palloc(p.allocated * sizeof(TemplatePartData));

	while (i < len)
	{
		char		braces = TemplateBracesAt(&p, i);

		if (src[i] == '\\' && TemplateBracesAt(&p, i + 1))
		{
			TemplateAddLiteral(&p, start, i - start);
			TemplateAddLiteral(&p, i + 1, 2);
			i += 3;
			start = i;
		}
		else if (braces == '{')
		{
			TemplateAddLiteral(&p, start, i - start);
			i = TemplateParseField(&p, i);
			start = i;
		}
		else if (braces == '}')
			TemplateStrayClose(&p, i);
		else
			i++;
	}
	TemplateAddLiteral(&p, start, len - start);
	return p.tpl;
}


/* ---------------------------------------------------------------- values */

/*
 * TemplateJsonEscapeOf returns what replaces character c inside a JSON
 * string, or NULL; buf (8 bytes) holds a \u escape.
 */
static const char *
TemplateJsonEscapeOf(char c, char *buf)
{
	switch (c)
	{
		case '"':
			return "\\\"";
		case '\\':
			return "\\\\";
		case '\n':
			return "\\n";
		case '\r':
			return "\\r";
		case '\t':
			return "\\t";
	}
	if ((unsigned char) c >= 0x20 && c != 0x7f)
		return NULL;
	snprintf(buf, 8, "\\u%04x", (unsigned char) c);
	return buf;
}

/*
 * TemplateEscapeOf returns what replaces character c in a value written
 * as HTML or JSON, or NULL when c stays as it is; buf (8 bytes) may hold
 * the replacement.
 */
static const char *
TemplateEscapeOf(TemplateEscape escape, char c, char *buf)
{
	if (escape == TEMPLATE_ESCAPE_JSON)
		return TemplateJsonEscapeOf(c, buf);
	if (escape == TEMPLATE_ESCAPE_HTML)
	{
		switch (c)
		{
			case '&':
				return "&amp;";
			case '<':
				return "&lt;";
			case '>':
				return "&gt;";
			case '"':
				return "&quot;";
			case '\'':
				return "&#39;";
		}
	}
	return NULL;
}

/*
 * TemplateAppendHeaderUtf8 writes UTF-8 text on one header line: every
 * character the MIME builder refuses in a header (MimeIsHeaderControl: C0,
 * DEL, C1) becomes a space, so no value can add a header or stop the mail
 * from being built.  A malformed sequence (possible in SQL_ASCII) is taken
 * byte by byte.
 */
static void
TemplateAppendHeaderUtf8(StringInfo out, const char *value, int len)
{
	int			start = 0;
	int			i = 0;

	while (i < len)
	{
		const unsigned char *p = (const unsigned char *) value + i;
		int			n = (*p < 0x80) ? 1 : pg_utf_mblen(p);
		pg_wchar	c;

		if (n < 1 || n > len - i)
			n = 1;
		c = (n == 1) ? *p : utf8_to_unicode(p);
		if (MimeIsHeaderControl(c))
		{
			appendBinaryStringInfo(out, value + start, i - start);
			appendStringInfoChar(out, ' ');
			start = i + n;
		}
		i += n;
	}
	appendBinaryStringInfo(out, value + start, len - start);
}

/*
 * TemplateAppendHeader writes text of a subject (a value, a default or the
 * template's own text) on one header line, whatever the server encoding:
 * text with non-ASCII bytes in another encoding than UTF-8 is converted to
 * UTF-8 and back, so C1 controls are found as characters, not bytes.
 */
static void
TemplateAppendHeader(StringInfo out, const char *value, int len)
{
	int			encoding = GetDatabaseEncoding();
	StringInfoData utf8_out;
	char	   *utf8;
	int			i;

	if (encoding == PG_UTF8 || encoding == PG_SQL_ASCII)
	{
		TemplateAppendHeaderUtf8(out, value, len);
		return;
	}
	for (i = 0; i < len; i++)
		if (IS_HIGHBIT_SET(value[i]))
			break;
	if (i == len)
	{
		TemplateAppendHeaderUtf8(out, value, len);
		return;
	}
	utf8 = pg_server_to_any(value, len, PG_UTF8);
	initStringInfo(&utf8_out);
	TemplateAppendHeaderUtf8(&utf8_out, utf8, strlen(utf8));
	appendStringInfoString(out, pg_any_to_server(utf8_out.data, utf8_out.len,
												 PG_UTF8));
	pfree(utf8_out.data);
}

/*
 * TemplateAppendEscaped writes a merge-field value (or default) into out:
 * as it is in text, HTML-escaped in HTML, on one line in a header (see
 * TemplateAppendHeader), as JSON-string content in JSON.  HTML and JSON
 * replace only ASCII bytes, so multibyte characters pass untouched.
 */
void
TemplateAppendEscaped(StringInfo out, TemplateEscape escape,
					  const char *value, int len)
{
	int			start = 0;
	int			i;
	char		buf[8];

	if (escape == TEMPLATE_ESCAPE_TEXT)
	{
		appendBinaryStringInfo(out, value, len);
		return;
	}
	if (escape == TEMPLATE_ESCAPE_HEADER)
	{
		TemplateAppendHeader(out, value, len);
		return;
	}
	for (i = 0; i < len; i++)
	{
		const char *replacement = TemplateEscapeOf(escape, value[i], buf);

		if (replacement == NULL)
			continue;
		appendBinaryStringInfo(out, value + start, i - start);
		appendStringInfoString(out, replacement);
		start = i + 1;
	}
	appendBinaryStringInfo(out, value + start, len - start);
}

/*
 * AppendTimestamp writes a timestamp as "YYYY-MM-DD HH24:MI", a timestamp
 * with time zone in the session's TimeZone.
 */
static void
AppendTimestamp(StringInfo out, Timestamp ts, bool with_zone)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;

	if (TIMESTAMP_NOT_FINITE(ts))
	{
		appendStringInfoString(out, TIMESTAMP_IS_NOBEGIN(ts) ?
							   "-infinity" : "infinity");
		return;
	}
	if (timestamp2tm(ts, with_zone ? &tz : NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	appendStringInfo(out, "%04d-%02d-%02d %02d:%02d",
					 tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min);
}

/*
 * AppendDate writes a date as "YYYY-MM-DD".
 */
static void
AppendDate(StringInfo out, DateADT date)
{
	int			year;
	int			month;
	int			day;

	if (DATE_NOT_FINITE(date))
	{
		appendStringInfoString(out, DATE_IS_NOBEGIN(date) ?
							   "-infinity" : "infinity");
		return;
	}
	j2date(date + POSTGRES_EPOCH_JDATE, &year, &month, &day);
	appendStringInfo(out, "%04d-%02d-%02d", year, month, day);
}

/*
 * LooksLikeJsonTimestamp recognises exactly what to_jsonb() writes for a
 * timestamp: "YYYY-MM-DDTHH:MI:SS[.ffffff][+HH[:MI[:SS]]]".
 */
static bool
LooksLikeJsonTimestamp(const char *s, int len)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	int			i;

	if (len < (int) sizeof(shape) - 1 || len > MAXDATELEN)
		return false;
	for (i = 0; shape[i] != '\0'; i++)
	{
		bool		ok = shape[i] == 'd' ? isdigit((unsigned char) s[i]) :
		s[i] == shape[i];

		if (!ok)
			return false;
	}
	if (i < len && s[i] == '.')
		while (++i < len && isdigit((unsigned char) s[i]))
			;
	if (i < len && (s[i] == '+' || s[i] == '-'))
		while (++i < len && (isdigit((unsigned char) s[i]) || s[i] == ':'))
			;
	return i == len;
}

/*
 * AppendJsonTimestamp writes a to_jsonb() timestamp string like a timestamp
 * column; returns false (writing nothing) for any other string.
 */
static bool
AppendJsonTimestamp(StringInfo out, const char *s, int len)
{
	char		copy[MAXDATELEN + 1];
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	int			tz;
	fsec_t		fsec;
	struct pg_tm tm;
	TimestampTz ts;

	if (!LooksLikeJsonTimestamp(s, len))
		return false;
	memcpy(copy, s, len);
	copy[len] = '\0';
	if (ParseDateTime(copy, workbuf, sizeof(workbuf), field, ftype,
					  MAXDATEFIELDS, &nf) != 0 ||
		DecodeDateTime(field, ftype, nf, &dtype, &tm, &fsec, &tz) != 0 ||
		dtype != DTK_DATE || tm2timestamp(&tm, fsec, &tz, &ts) != 0)
		return false;
	AppendTimestamp(out, ts, true);
	return true;
}

static void AppendJsonbValue(StringInfo out, JsonbValue *v, bool top_level);

/*
 * AppendJsonbArray writes the non-empty elements of a JSON array separated
 * by LIST_SEPARATOR.
 */
static void
AppendJsonbArray(StringInfo out, JsonbContainer *array)
{
	JsonbIterator *it = JsonbIteratorInit(array);
	JsonbValue	v;
	JsonbIteratorToken token;
	int			start = out->len;

	while ((token = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		int			before = out->len;
		int			mark;

		if (token != WJB_ELEM)
			continue;
		if (out->len > start)
			appendStringInfoString(out, LIST_SEPARATOR);
		mark = out->len;
		if (v.type == jbvBinary)
			(void) JsonbToCString(out, v.val.binary.data, v.val.binary.len);
		else
			AppendJsonbValue(out, &v, false);
		if (out->len == mark)
		{
			out->len = before;	/* an empty element: drop its separator */
			out->data[before] = '\0';
		}
	}
}

/*
 * AppendJsonbValue writes a JSON value: strings as they are (a top-level
 * timestamp string formatted like a timestamp column), numbers and
 * booleans as in JSON, arrays as lists, objects as JSON; null as nothing.
 */
static void
AppendJsonbValue(StringInfo out, JsonbValue *v, bool top_level)
{
	Datum		number;

	switch (v->type)
	{
		case jbvString:
			if (!top_level ||
				!AppendJsonTimestamp(out, v->val.string.val,
									 v->val.string.len))
				appendBinaryStringInfo(out, v->val.string.val,
									   v->val.string.len);
			break;
		case jbvNumeric:
			number = NumericGetDatum(v->val.numeric);
			number = DirectFunctionCall1(numeric_out, number);
			appendStringInfoString(out, DatumGetCString(number));
			break;
		case jbvBool:
			appendStringInfoString(out, v->val.boolean ? "true" : "false");
			break;
		case jbvBinary:
			if (JsonContainerIsArray(v->val.binary.data))
				AppendJsonbArray(out, v->val.binary.data);
			else
				(void) JsonbToCString(out, v->val.binary.data,
									  v->val.binary.len);
			break;
		default:				/* null */
			break;
	}
}

/*
 * JsonbLookupPath finds the value at a dotted key path ("properties.plan")
 * in a JSON object; returns false when any step is missing.
 */
static bool
JsonbLookupPath(JsonbContainer *container, const char *path, int len,
				JsonbValue *result)
{
	for (;;)
	{
		const char *dot = memchr(path, '.', len);
		int			keylen = dot ? dot - path : len;
		JsonbValue *v;

		if (!JsonContainerIsObject(container))
			return false;
		v = getKeyJsonValueFromContainer(container, path, keylen, result);
		if (v == NULL)
			return false;
		if (dot == NULL)
			return true;
		if (v->type != jbvBinary)
			return false;
		container = v->val.binary.data;
		path = dot + 1;
		len -= keylen + 1;
	}
}


/* -------------------------------------------------------------- rendering */

/*
 * TemplateRender writes tpl into out, taking field values from lookup.  A
 * field whose value is missing, NULL or empty gets its default text, else
 * nothing.  Returns the index of the first field left empty without a
 * default (-1 when none), so a caller refusing missing fields can say which.
 */
static int
TemplateRender(Template tpl, TemplateEscape escape, TemplateLookup lookup,
			   void *arg, StringInfo out, StringInfo value)
{
	int			missing = -1;
	int			i;

	for (i = 0; i < tpl->nparts; i++)
	{
		TemplatePart part = &tpl->parts[i];

		if (part->kind == TEMPLATE_LITERAL)
		{
			/*
			 * the template's own subject text too: whatever its validation
			 * let through (a template saved by an older version), the
			 * subject is one line the MIME builder takes
			 */
			if (escape == TEMPLATE_ESCAPE_HEADER)
				TemplateAppendHeader(out, part->text, part->len);
			else
				appendBinaryStringInfo(out, part->text, part->len);
			continue;
		}
		resetStringInfo(value);
		lookup(arg, i, value);
		if (value->len > 0)
			TemplateAppendEscaped(out, escape, value->data, value->len);
		else if (part->fallback != NULL)
			TemplateAppendEscaped(out, escape, part->fallback,
								  part->fallback_len);
		else if (missing < 0)
			missing = i;
	}
	return missing;
}

/*
 * RenderBegin starts a result buffer laid out as a text datum, so the
 * result needs no final copy.
 */
static void
RenderBegin(StringInfo out)
{
	initStringInfo(out);
	appendStringInfoSpaces(out, VARHDRSZ);
}

/*
 * RenderEnd turns the buffer started by RenderBegin into a text datum.
 */
static text *
RenderEnd(StringInfo out)
{
	SET_VARSIZE(out->data, out->len);
	return (text *) out->data;
}

/*
 * RenderRaiseMissing reports a merge field without a value when missing
 * fields are refused, naming the field, the member and the template.
 */
static void
RenderRaiseMissing(TemplatePart part, const char *member,
				   const char *template_name)
{
	char	   *field = pnstrdup(part->text, part->len);

	ereport(ERROR,
			(errcode(ERRCODE_NO_DATA_FOUND),
			 member ? errmsg("merge field \"%s\" has no value for member %s",
							 field, member)
			 : errmsg("merge field \"%s\" has no value", field),
			 template_name ?
			 errdetail("Template \"%s\" refuses empty merge fields (missing_field = 'refuse').",
					   template_name)
			 : errdetail("Missing merge fields were refused (refuse_missing)."),
			 errhint("Give the field a default, as in {{%s|...}}, or fill in the member's value.",
					 field)));
}


/* ---------------------------------------------------------------- cache */

/*
 * RenderCacheGet returns the call site's cache, creating it on first use.
 */
static RenderCache
RenderCacheGet(FunctionCallInfo fcinfo)
{
	MemoryContext old;
	RenderCache cache = fcinfo->flinfo->fn_extra;

	if (cache != NULL)
		return cache;
	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	cache = palloc0(sizeof(RenderCacheData));
	initStringInfo(&cache->value);
	MemoryContextSwitchTo(old);
	fcinfo->flinfo->fn_extra = cache;
	return cache;
}

/*
 * RenderCacheFill parses a template into the next cache entry to replace.
 * raw is the datum as stored; key_len its size; template_name (or NULL)
 * names the template in syntax errors.  The parse happens in the entry's
 * own context, deleted again if the template has a syntax error.
 */
static RenderCacheEntry *
RenderCacheFill(RenderCache cache, MemoryContext parent, struct varlena *raw,
				Size key_len, text *template_name)
{
	RenderCacheEntry *entry = &cache->entries[cache->victim];
	MemoryContext cxt = AllocSetContextCreate(parent, "taskflow template",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	struct varlena *detoasted = pg_detoast_datum_packed(raw);
	int			len = VARSIZE_ANY_EXHDR(detoasted);
	char	   *src = palloc(len + 1);
	Template	tpl;

	memcpy(src, VARDATA_ANY(detoasted), len);
	src[len] = '\0';
	PG_TRY();
	{
		tpl = TemplateParse(src, len, template_name == NULL ? NULL :
							psprintf("template \"%s\"",
									 text_to_cstring(template_name)));
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (entry->cxt != NULL)
		MemoryContextDelete(entry->cxt);
	entry->cxt = cxt;
	entry->key = palloc(key_len);
	memcpy(entry->key, raw, key_len);
	entry->key_len = key_len;
	entry->tpl = tpl;
	entry->refs = NULL;
	MemoryContextSwitchTo(old);
	cache->victim = (cache->victim + 1) % RENDER_CACHE_SIZE;
	return entry;
}

/*
 * RenderCacheLookup returns the parsed template of a template text datum.
 * The key is the datum as stored: a TOAST pointer for a TOASTed body (so a
 * hit costs no detoasting), else the inline (maybe compressed) bytes.
 */
static RenderCacheEntry *
RenderCacheLookup(RenderCache cache, MemoryContext parent, Datum datum,
				  text *template_name)
{
	struct varlena *raw = (struct varlena *) DatumGetPointer(datum);
	Size		key_len;
	int			i;

	if (VARATT_IS_EXTERNAL(raw) && !VARATT_IS_EXTERNAL_ONDISK(raw))
		raw = pg_detoast_datum_packed(raw); /* in-memory: use the content */
	key_len = VARSIZE_ANY(raw);
	for (i = 0; i < RENDER_CACHE_SIZE; i++)
	{
		RenderCacheEntry *entry = &cache->entries[i];

		if (entry->cxt != NULL && entry->key_len == key_len &&
			memcmp(entry->key, raw, key_len) == 0)
			return entry;
	}
	return RenderCacheFill(cache, parent, raw, key_len, template_name);
}


/* ------------------------------------------------------------ member rows */

/*
 * MemberFindColumn returns the 0-based number of the named column of a row
 * type, or -1.
 */
static int
MemberFindColumn(TupleDesc desc, const char *name, int len)
{
	int			i;

	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);
		const char *attname = NameStr(attr->attname);

		if (!attr->attisdropped && strncmp(attname, name, len) == 0 &&
			attname[len] == '\0')
			return i;
	}
	return -1;
}

/*
 * MemberColumnSetup looks up how to write a column of the given type.
 */
static void
MemberColumnSetup(ColumnOutput col, Oid typid)
{
	Oid			output;
	bool		is_varlena;

	col->typid = typid;
	col->elemtype = get_element_type(typid);
	if (OidIsValid(col->elemtype))
	{
		get_typlenbyvalalign(col->elemtype, &col->elmlen, &col->elmbyval,
							 &col->elmalign);
		getTypeOutputInfo(col->elemtype, &output, &is_varlena);
	}
	else
		getTypeOutputInfo(typid, &output, &is_varlena);
	fmgr_info_cxt(output, &col->output, CurrentMemoryContext);
}

/*
 * MemberDescSetup loads the member row type of a row the first time (or
 * when it changes) and how to write each of its columns.
 */
static void
MemberDescSetup(RenderCache cache, MemoryContext mcxt, HeapTupleHeader row)
{
	Oid			type = HeapTupleHeaderGetTypeId(row);
	int32		typmod = HeapTupleHeaderGetTypMod(row);
	MemoryContext old;
	TupleDesc	desc;
	int			i;

	if (cache->member_desc != NULL && cache->member_type == type &&
		cache->member_typmod == typmod)
		return;
	old = MemoryContextSwitchTo(mcxt);
	desc = lookup_rowtype_tupdesc(type, typmod);
	cache->member_desc = CreateTupleDescCopy(desc);
	ReleaseTupleDesc(desc);
	desc = cache->member_desc;
	cache->columns = palloc0(desc->natts * sizeof(ColumnOutputData));
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);

		if (!attr->attisdropped)
			MemberColumnSetup(&cache->columns[i], attr->atttypid);
	}
	cache->values = palloc(desc->natts * sizeof(Datum));
	cache->nulls = palloc(desc->natts * sizeof(bool));
	cache->member_type = type;
	cache->member_typmod = typmod;
	for (i = 0; i < RENDER_CACHE_SIZE; i++)
		cache->entries[i].refs = NULL;	/* resolved against the old type */
	MemoryContextSwitchTo(old);
}

/*
 * MemberResolveFields finds each merge field of a cached template in the
 * member row type: "name" is a column, "properties.plan" a key path inside
 * the jsonb column properties.  A field matching nothing stays empty (the
 * template was validated when saved; a column may have gone since).
 */
static void
MemberResolveFields(RenderCacheEntry *entry, TupleDesc desc)
{
	Size		size = entry->tpl->nparts * sizeof(FieldRefData);
	FieldRef	refs = MemoryContextAllocZero(entry->cxt, size);
	int			i;

	for (i = 0; i < entry->tpl->nparts; i++)
	{
		TemplatePart part = &entry->tpl->parts[i];
		const char *dot = memchr(part->text, '.', part->len);
		int			column_len = dot ? dot - part->text : part->len;

		if (part->kind != TEMPLATE_FIELD)
			continue;
		refs[i].attno = MemberFindColumn(desc, part->text, column_len);
		if (dot == NULL || refs[i].attno < 0)
			continue;
		refs[i].path = dot + 1;
		refs[i].path_len = part->len - column_len - 1;
		if (TupleDescAttr(desc, refs[i].attno)->atttypid != JSONBOID)
			refs[i].attno = -1;
	}
	entry->refs = refs;
}

/*
 * AppendArray writes the non-empty elements of an array column (tags)
 * separated by LIST_SEPARATOR.
 */
static void
AppendArray(StringInfo out, ColumnOutput col, ArrayType *array)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	int			start = out->len;

	deconstruct_array(array, col->elemtype, col->elmlen, col->elmbyval,
					  col->elmalign, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
	{
		char	   *s;

		if (nulls[i])
			continue;
		s = OutputFunctionCall(&col->output, elems[i]);
		if (*s == '\0')
			continue;
		if (out->len > start)
			appendStringInfoString(out, LIST_SEPARATOR);
		appendStringInfoString(out, s);
	}
}

/*
 * AppendOutput writes a value with its type's output function.
 */
static void
AppendOutput(StringInfo out, ColumnOutput col, Datum datum)
{
	appendStringInfoString(out, OutputFunctionCall(&col->output, datum));
}

/*
 * AppendJsonbColumn writes a key path of a jsonb column (a custom property),
 * or the whole value as JSON when the field names the column itself.
 */
static void
AppendJsonbColumn(StringInfo out, Jsonb *jb, FieldRef ref)
{
	JsonbValue	v;

	if (ref->path == NULL)
		(void) JsonbToCString(out, &jb->root, VARSIZE(jb));
	else if (JsonbLookupPath(&jb->root, ref->path, ref->path_len, &v))
		AppendJsonbValue(out, &v, false);
}

/*
 * AppendColumn writes one column value of the member row by its type:
 * text as it is, timestamps and dates readably, arrays as lists, jsonb
 * properties by key, anything else with its output function.
 */
static void
AppendColumn(StringInfo out, ColumnOutput col, Datum datum, FieldRef ref)
{
	switch (col->typid)
	{
		case TEXTOID:
		case VARCHAROID:
			{
				text	   *t = DatumGetTextPP(datum);

				appendBinaryStringInfo(out, VARDATA_ANY(t),
									   VARSIZE_ANY_EXHDR(t));
				break;
			}
		case TIMESTAMPTZOID:
			AppendTimestamp(out, DatumGetTimestampTz(datum), true);
			break;
		case TIMESTAMPOID:
			AppendTimestamp(out, DatumGetTimestamp(datum), false);
			break;
		case DATEOID:
			AppendDate(out, DatumGetDateADT(datum));
			break;
		case JSONBOID:
			AppendJsonbColumn(out, DatumGetJsonbP(datum), ref);
			break;
		default:
			if (OidIsValid(col->elemtype))
				AppendArray(out, col, DatumGetArrayTypeP(datum));
			else
				AppendOutput(out, col, datum);
	}
}

/*
 * MemberLookup is the TemplateLookup of a member row.
 */
static void
MemberLookup(void *arg, int part, StringInfo value)
{
	MemberRowData *row = arg;
	FieldRef	ref = &row->refs[part];
	RenderCache cache = row->cache;

	if (!row->present || ref->attno < 0 || cache->nulls[ref->attno])
		return;
	AppendColumn(value, &cache->columns[ref->attno],
				 cache->values[ref->attno], ref);
}

/*
 * MemberLabel names a member in errors as the member functions do: its
 * external_id quoted, else its member_id.
 */
static char *
MemberLabel(RenderCache cache)
{
	TupleDesc	desc = cache->member_desc;
	int			ext = MemberFindColumn(desc, "external_id", 11);
	int			id = MemberFindColumn(desc, "member_id", 9);

	if (ext >= 0 && !cache->nulls[ext] && cache->columns[ext].typid == TEXTOID)
		return quote_literal_cstr(TextDatumGetCString(cache->values[ext]));
	if (id >= 0 && !cache->nulls[id])
		return OutputFunctionCall(&cache->columns[id].output,
								  cache->values[id]);
	return NULL;
}

/*
 * MemberRowLoad deforms a member row datum into the cache, resolving the
 * template's fields against its type first if needed.
 */
static void
MemberRowLoad(FunctionCallInfo fcinfo, RenderCache cache,
			  RenderCacheEntry *entry, MemberRowData *row)
{
	HeapTupleHeader th = PG_GETARG_HEAPTUPLEHEADER(1);
	HeapTupleData tuple;

	MemberDescSetup(cache, fcinfo->flinfo->fn_mcxt, th);
	if (entry->refs == NULL)
		MemberResolveFields(entry, cache->member_desc);
	tuple.t_len = HeapTupleHeaderGetDatumLength(th);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = th;
	heap_deform_tuple(&tuple, cache->member_desc, cache->values, cache->nulls);
	row->refs = entry->refs;
	row->present = true;
}

/*
 * JsonbFieldsLookup is the TemplateLookup of taskflow.render()'s fields.
 */
static void
JsonbFieldsLookup(void *arg, int part, StringInfo value)
{
	JsonbFieldsData *f = arg;
	TemplatePart p = &f->tpl->parts[part];
	JsonbValue	v;

	if (f->fields == NULL ||
		!JsonbLookupPath(&f->fields->root, p->text, p->len, &v))
		return;
	AppendJsonbValue(value, &v, memchr(p->text, '.', p->len) == NULL);
}

/*
 * JsonbFieldsLabel names the member of a fields object in errors: its
 * external_id quoted, else its member_id; NULL when it has neither.
 */
static char *
JsonbFieldsLabel(Jsonb *fields)
{
	JsonbValue	v;
	StringInfoData label;

	if (fields == NULL)
		return NULL;
	initStringInfo(&label);
	if (JsonbLookupPath(&fields->root, "external_id", strlen("external_id"),
						&v) && v.type == jbvString)
		return quote_literal_cstr(pnstrdup(v.val.string.val,
										   v.val.string.len));
	if (JsonbLookupPath(&fields->root, "member_id", strlen("member_id"), &v))
		AppendJsonbValue(&label, &v, false);
	return label.len > 0 ? label.data : NULL;
}

/*
 * RenderEscapeArg reads the part argument of render_member(): 'subject',
 * 'text' or 'html'.
 */
static TemplateEscape
RenderEscapeArg(FunctionCallInfo fcinfo, int argno)
{
	text	   *arg;
	char	   *part;

	if (!PG_ARGISNULL(argno))
	{
		arg = PG_GETARG_TEXT_PP(argno);
		part = VARDATA_ANY(arg);
		if (VARSIZE_ANY_EXHDR(arg) == 4 && memcmp(part, "text", 4) == 0)
			return TEMPLATE_ESCAPE_TEXT;
		if (VARSIZE_ANY_EXHDR(arg) == 4 && memcmp(part, "html", 4) == 0)
			return TEMPLATE_ESCAPE_HTML;
		if (VARSIZE_ANY_EXHDR(arg) == 4 && memcmp(part, "json", 4) == 0)
			return TEMPLATE_ESCAPE_JSON;
		if (VARSIZE_ANY_EXHDR(arg) == 7 && memcmp(part, "subject", 7) == 0)
			return TEMPLATE_ESCAPE_HEADER;
	}
	part = PG_ARGISNULL(argno) ? "NULL" :
		quote_literal_cstr(text_to_cstring(PG_GETARG_TEXT_PP(argno)));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid template part %s", part),
			 errhint("The parts are 'subject', 'text', 'html' and 'json'.")));
	return TEMPLATE_ESCAPE_TEXT;	/* not reached */
}


/* ---------------------------------------------------------- SQL functions */

/*
 * taskflow.template_fields(template_text text, part text DEFAULT NULL)
 * returns the distinct merge-field names of a template in order of first
 * use, and raises on a syntax error (naming part, when given, and the
 * character position).  The validation of saved templates is built on it.
 */
Datum
taskflow_template_fields(PG_FUNCTION_ARGS)
{
	text	   *src;
	char	   *what = NULL;
	Template	tpl;
	Datum	   *names;
	int			n = 0;
	int			i;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	src = PG_GETARG_TEXT_PP(0);
	if (!PG_ARGISNULL(1))
		what = text_to_cstring(PG_GETARG_TEXT_PP(1));
	tpl = TemplateParse(VARDATA_ANY(src), VARSIZE_ANY_EXHDR(src), what);
	if (tpl->nfields == 0)
		PG_RETURN_ARRAYTYPE_P(construct_empty_array(TEXTOID));
	names = palloc(tpl->nfields * sizeof(Datum));
	for (i = 0; i < tpl->nparts; i++)
	{
		TemplatePart part = &tpl->parts[i];
		text	   *name;
		int			j;

		if (part->kind != TEMPLATE_FIELD)
			continue;
		name = cstring_to_text_with_len(part->text, part->len);
		for (j = 0; j < n; j++)
			if (VARSIZE(DatumGetPointer(names[j])) == VARSIZE(name) &&
				memcmp(DatumGetPointer(names[j]), name, VARSIZE(name)) == 0)
				break;
		if (j == n)
			names[n++] = PointerGetDatum(name);
	}
	PG_RETURN_ARRAYTYPE_P(construct_array_builtin(names, n, TEXTOID));
}

/*
 * taskflow.render(template_text text, fields jsonb, html boolean,
 * refuse_missing boolean) renders a template with the values of a JSON
 * object, typically to_jsonb() of a member row (custom properties nested
 * under "properties").  HTML-escapes values when html; raises naming the
 * field when refuse_missing and a field without default has no value.
 */
Datum
taskflow_render(PG_FUNCTION_ARGS)
{
	RenderCache cache;
	RenderCacheEntry *entry;
	JsonbFieldsData f;
	StringInfoData out;
	TemplateEscape escape = TEMPLATE_ESCAPE_TEXT;
	int			missing;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	cache = RenderCacheGet(fcinfo);
	entry = RenderCacheLookup(cache, fcinfo->flinfo->fn_mcxt,
							  PG_GETARG_DATUM(0), NULL);
	f.tpl = entry->tpl;
	f.fields = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	if (f.fields != NULL && !JB_ROOT_IS_OBJECT(f.fields))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("merge field values must be a JSON object"),
				 errhint("Pass to_jsonb() of a member row, or jsonb_build_object(...).")));
	if (!PG_ARGISNULL(2) && PG_GETARG_BOOL(2))
		escape = TEMPLATE_ESCAPE_HTML;
	RenderBegin(&out);
	missing = TemplateRender(entry->tpl, escape, JsonbFieldsLookup, &f, &out,
							 &cache->value);
	if (missing >= 0 && !PG_ARGISNULL(3) && PG_GETARG_BOOL(3))
		RenderRaiseMissing(&entry->tpl->parts[missing],
						   JsonbFieldsLabel(f.fields), NULL);
	PG_RETURN_TEXT_P(RenderEnd(&out));
}

/*
 * taskflow.render_member(template_text text, m taskflow.member, part text,
 * refuse_missing boolean, template_name text) renders one part ('subject',
 * 'text', 'html' or 'json') of a template for a member row, read directly
 * with its column types.  A subject gets values on one line (no header
 * injection), html HTML-escaped, json escaped as JSON-string content (a
 * webhook body).  taskflow.render_message() is built on it.
 */
Datum
taskflow_render_member(PG_FUNCTION_ARGS)
{
	RenderCache cache;
	RenderCacheEntry *entry;
	MemberRowData row = {0};
	StringInfoData out;
	TemplateEscape escape;
	text	   *name = PG_ARGISNULL(4) ? NULL : PG_GETARG_TEXT_PP(4);
	int			missing;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	escape = RenderEscapeArg(fcinfo, 2);
	cache = RenderCacheGet(fcinfo);
	entry = RenderCacheLookup(cache, fcinfo->flinfo->fn_mcxt,
							  PG_GETARG_DATUM(0), name);
	row.cache = cache;
	if (!PG_ARGISNULL(1) && entry->tpl->nfields > 0)
		MemberRowLoad(fcinfo, cache, entry, &row);
	RenderBegin(&out);
	missing = TemplateRender(entry->tpl, escape, MemberLookup, &row, &out,
							 &cache->value);
	if (missing >= 0 && !PG_ARGISNULL(3) && PG_GETARG_BOOL(3))
		RenderRaiseMissing(&entry->tpl->parts[missing],
						   row.present ? MemberLabel(cache) : NULL,
						   name ? text_to_cstring(name) : NULL);
	PG_RETURN_TEXT_P(RenderEnd(&out));
}
