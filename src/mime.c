/*
 * mime.c
 *		The MIME builder: one outbox message as an RFC 5322 / MIME mail.
 *
 * Everything taskflow sends by mail goes through MimeBuildMessage(): the
 * delivery worker calls it for every claimed row, and the SQL functions
 * taskflow.mime_build() (pure, for tests and previews) and
 * taskflow.mime_message() (an outbox row, in src/sql/42_mime.sql) wrap it.
 *
 * The output is pure ASCII with CRLF line endings:
 *
 * - header lines are at most 76 characters, folded with CRLF SP before a
 *   space of the value (only a single token longer than a line, such as a
 *   very long URL, can make one longer; 998 is refused);
 * - a Subject or display name that is not plain ASCII is written as RFC 2047
 *   encoded-words "=?UTF-8?B?...?=" of at most 75 characters, each holding
 *   whole UTF-8 characters (a multibyte sequence is never split across two
 *   words), so every word decodes on its own;
 * - bodies are UTF-8 with CRLF line breaks (the canonical form of text
 *   types, RFC 2046 4.1.1), base64-encoded by PostgreSQL's pg_b64_encode()
 *   in lines of 76 characters; with an HTML body the message is
 *   multipart/alternative, text first, then HTML;
 * - the multipart boundary starts with "=_", which base64 text can never
 *   contain, so it cannot collide with a body line.  It is derived from the
 *   message id and a hash of the bodies, so the same message is built byte
 *   for byte the same way (tests compare whole messages).
 *
 * A control character (CR, LF, any other C0 or C1 control, DEL) in a header
 * value is refused, naming the header: this is what stops header injection,
 * whatever the template validation did before.
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/base64.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "mime.h"

PG_FUNCTION_INFO_V1(taskflow_mime_build);

/* characters of a header or body line, CRLF not counted */
#define MIME_LINE_MAX 76

/* a longer header line is refused (RFC 5322 2.1.1) */
#define MIME_LINE_HARD_MAX 998

/* characters of one encoded-word (RFC 2047 2) */
#define MIME_WORD_MAX 75

#define MIME_WORD_PREFIX "=?UTF-8?B?"
#define MIME_WORD_SUFFIX "?="
#define MIME_WORD_OVERHEAD 12	/* the prefix and the suffix */

/* longest plain ASCII word left unencoded in a Subject or display name */
#define MIME_PLAIN_WORD_MAX 60

#define CRLF "\r\n"

/* A header being written: the output and the width of its current line. */
typedef struct HeaderWriterData
{
	StringInfo	out;
	const char *name;			/* the header's name, for errors */
	int			col;			/* characters on the current line */
} HeaderWriterData;

typedef HeaderWriterData *HeaderWriter;

static const char *const mime_days[] =
{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

static const char *const mime_months[] =
{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/*
 * mime_utf8 returns a value in UTF-8 (converted from the server encoding,
 * checked when it already is UTF-8), or NULL for NULL.
 */
static const char *
mime_utf8(const char *value)
{
	int			len;

	if (value == NULL)
		return NULL;
	len = strlen(value);
	if (GetDatabaseEncoding() == PG_UTF8)
	{
		pg_verify_mbstr(PG_UTF8, value, len, false);
		return value;
	}
	return pg_server_to_any(value, len, PG_UTF8);
}

/*
 * mime_server returns a UTF-8 value in the server encoding again, for error
 * messages.
 */
static const char *
mime_server(const char *value)
{
	return pg_any_to_server(value, strlen(value), PG_UTF8);
}

/* mime_empty: true for NULL and "". */
static inline bool
mime_empty(const char *value)
{
	return value == NULL || value[0] == '\0';
}

/*
 * mime_check_header raises unless a UTF-8 header value is free of control
 * characters: C0 (CR and LF among them), DEL and C1 (U+0080 to U+009F).
 * header names the header ("Subject"), part what of it the value is
 * ("display name"; NULL for the whole value).
 */
static void
mime_check_header(const char *header, const char *part, const char *value)
{
	const unsigned char *p = (const unsigned char *) value;
	int			position = 0;

	if (value == NULL)
		return;
	while (*p)
	{
		int			len = pg_utf_mblen(p);
		pg_wchar	c = utf8_to_unicode(p);

		position++;
		if (MimeIsHeaderControl(c))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s header%s%s contains a line break or control character (U+%04X) at character %d",
							header, part ? " " : "", part ? part : "",
							(unsigned int) c, position),
					 errhint("A mail header is one line: line breaks and control characters are refused so no text can add headers.")));
		p += len;
	}
}

/* mime_is_atext: an atext character of RFC 5322 3.2.3. */
static bool
mime_is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/*
 * mime_check_address raises unless value is one plain ASCII address
 * local@domain (letters, digits, atext specials and dots, no spaces,
 * brackets or quotes): what an address header holds besides its display
 * name.  Internationalized addresses would need SMTPUTF8 and are refused.
 */
static void
mime_check_address(const char *header, const char *value)
{
	const unsigned char *p;
	int			at = 0;
	bool		ok = true;

	if (mime_empty(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s header needs an address", header)));
	mime_check_header(header, "address", value);
	for (p = (const unsigned char *) value; *p; p++)
	{
		if (*p >= 0x80)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s header address \"%s\" is not ASCII", header,
							mime_server(value)),
					 errhint("Internationalized addresses (SMTPUTF8) are not supported; give the domain in its xn-- form.")));
		if (*p == '@')
			at++;
		else if (!mime_is_atext(*p) && *p != '.')
			ok = false;
	}
	if (!ok || at != 1 || value[0] == '@' ||
		value[strlen(value) - 1] == '@' || strlen(value) > 254)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s header address \"%s\" is not one e-mail address",
						header, mime_server(value)),
				 errhint("Give one address like info@example.jp, without a display name, spaces or brackets.")));
}

/* mime_is_plain_ascii: printable ASCII only (space included). */
static bool
mime_is_plain_ascii(const char *value)
{
	const unsigned char *p;

	for (p = (const unsigned char *) value; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			return false;
	return true;
}

/*
 * mime_words_fit: true when value can be written as it is, as words for a
 * header to fold between: printable ASCII, words separated by single spaces
 * (no leading, trailing or double spaces, which folding could not keep),
 * each word short enough for a continuation line, and nothing a reader
 * could take for an encoded-word ("=?").  With atoms_only, every word must
 * also be made of atext (a display name that needs no quotes).
 */
static bool
mime_words_fit(const char *value, bool atoms_only)
{
	const char *p;
	int			word = 0;

	if (value[0] == ' ' || !mime_is_plain_ascii(value) ||
		strstr(value, "=?") != NULL)
		return false;
	for (p = value; *p; p++)
	{
		if (*p == ' ')
		{
			if (word == 0)
				return false;	/* a double space */
			word = 0;
			continue;
		}
		if (atoms_only && !mime_is_atext((unsigned char) *p))
			return false;
		if (++word > MIME_PLAIN_WORD_MAX)
			return false;
	}
	return word > 0;			/* no trailing space */
}

/* mime_header_begin starts a header line "Name:". */
static void
mime_header_begin(HeaderWriter w, StringInfo out, const char *name)
{
	w->out = out;
	w->name = name;
	appendStringInfo(out, "%s:", name);
	w->col = strlen(name) + 1;
}

/*
 * mime_header_token appends one token after a space, folding before it
 * (CRLF SP) when it would not fit on the current line.
 */
static void
mime_header_token(HeaderWriter w, const char *token, int len)
{
	if (w->col + 1 + len > MIME_LINE_MAX)
	{
		appendBinaryStringInfo(w->out, CRLF " ", 3);
		w->col = 1;
	}
	else
	{
		appendStringInfoChar(w->out, ' ');
		w->col++;
	}
	appendBinaryStringInfo(w->out, token, len);
	w->col += len;
	if (w->col > MIME_LINE_HARD_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s header has a part longer than %d characters that cannot be folded",
						w->name, MIME_LINE_HARD_MAX)));
}

/* mime_header_end ends a header. */
static void
mime_header_end(HeaderWriter w)
{
	appendBinaryStringInfo(w->out, CRLF, 2);
}

/* mime_header_words appends the space-separated words of value. */
static void
mime_header_words(HeaderWriter w, const char *value)
{
	const char *p = value;

	while (*p)
	{
		const char *end = strchr(p, ' ');

		if (end == NULL)
			end = p + strlen(p);
		mime_header_token(w, p, end - p);
		p = *end ? end + 1 : end;
	}
}

/*
 * mime_word_bytes: how many bytes of whole UTF-8 characters from s (len
 * bytes) fit in one encoded-word of at most width characters.
 */
static int
mime_word_bytes(const char *s, int len, int width)
{
	int			b64 = Min(width, MIME_WORD_MAX) - MIME_WORD_OVERHEAD;
	int			room;
	int			n = 0;

	if (b64 < 4)
		return 0;
	room = b64 / 4 * 3;
	while (n < len)
	{
		int			clen = pg_utf_mblen((const unsigned char *) s + n);

		if (n + clen > room)
			break;
		n += clen;
	}
	return n;
}

/*
 * mime_header_encoded appends UTF-8 text as RFC 2047 B encoded-words, each
 * after a space (or a fold), each as long as the line allows and holding
 * only whole characters.  Readers ignore the whitespace between adjacent
 * encoded-words, so the words decode back to exactly the text.
 */
static void
mime_header_encoded(HeaderWriter w, const char *s, int len)
{
	int			pos = 0;

	while (pos < len)
	{
		char		b64[MIME_WORD_MAX];
		int			n;
		int			b64_len;

		n = mime_word_bytes(s + pos, len - pos, MIME_LINE_MAX - w->col - 1);
		if (n > 0)
		{
			appendStringInfoChar(w->out, ' ');
			w->col++;
		}
		else
		{
			appendBinaryStringInfo(w->out, CRLF " ", 3);
			w->col = 1;
			n = mime_word_bytes(s + pos, len - pos, MIME_LINE_MAX - 1);
			Assert(n > 0);
		}
		b64_len = pg_b64_encode(s + pos, n, b64, sizeof(b64));
		if (b64_len < 0)
			elog(ERROR, "taskflow: base64 encoding of a header failed");
		appendStringInfoString(w->out, MIME_WORD_PREFIX);
		appendBinaryStringInfo(w->out, b64, b64_len);
		appendStringInfoString(w->out, MIME_WORD_SUFFIX);
		w->col += MIME_WORD_OVERHEAD + b64_len;
		pos += n;
	}
}

/*
 * mime_header_phrase appends a display name (or the phrase of List-Id):
 * as atoms when it is ASCII words needing no quotes, as one quoted-string
 * when it is ASCII with specials ("Yamada, Taro"), else (non-ASCII, too
 * long, odd spacing) as encoded-words.
 */
static void
mime_header_phrase(HeaderWriter w, const char *value)
{
	if (mime_words_fit(value, true))
		mime_header_words(w, value);
	else
	{
		StringInfoData quoted;
		const char *p;

		initStringInfo(&quoted);
		appendStringInfoChar(&quoted, '"');
		for (p = value; *p; p++)
		{
			if (*p == '"' || *p == '\\')
				appendStringInfoChar(&quoted, '\\');
			appendStringInfoChar(&quoted, *p);
		}
		appendStringInfoChar(&quoted, '"');
		/* quoted when that fits on a line, else encoded */
		if (mime_is_plain_ascii(value) && strstr(value, "=?") == NULL &&
			quoted.len <= MIME_PLAIN_WORD_MAX)
			mime_header_token(w, quoted.data, quoted.len);
		else
			mime_header_encoded(w, value, strlen(value));
		pfree(quoted.data);
	}
}

/*
 * mime_header_unstructured appends an unstructured value (Subject): as it
 * is when mime_words_fit() says it can be, else as encoded-words.  An
 * empty value writes nothing.
 */
static void
mime_header_unstructured(HeaderWriter w, const char *value)
{
	if (value[0] == '\0')
		return;
	if (mime_words_fit(value, false))
		mime_header_words(w, value);
	else
		mime_header_encoded(w, value, strlen(value));
}

/* mime_angle: "<value>", palloc'd. */
static char *
mime_angle(const char *value)
{
	return psprintf("<%s>", value);
}

/*
 * mime_message_id returns the Message-ID to write, in angle brackets:
 * message_id checked (brackets added when missing), or for NULL one
 * derived from the content and the From domain, so the same message gets
 * the same id.
 */
static char *
mime_message_id(const MimeMessageData *m, const char *from_address)
{
	const char *id = m->message_id;
	const char *inner;
	int			len;
	const char *p;
	const char *at = NULL;

	if (mime_empty(id))
	{
		uint64		h;

		h = hash_bytes_extended((const unsigned char *) m->to_address,
								strlen(m->to_address), (uint64) m->date);
		if (m->subject)
			h = hash_bytes_extended((const unsigned char *) m->subject,
									strlen(m->subject), h);
		if (m->body_text)
			h = hash_bytes_extended((const unsigned char *) m->body_text,
									strlen(m->body_text), h);
		return psprintf("<taskflow.%016llx@%s>", (unsigned long long) h,
						strchr(from_address, '@') + 1);
	}
	mime_check_header("Message-ID", NULL, id);
	inner = id;
	len = strlen(id);
	if (id[0] == '<' && len >= 2 && id[len - 1] == '>')
	{
		inner = id + 1;
		len -= 2;
	}
	for (p = inner; p < inner + len; p++)
	{
		if (*p == '@')
			at = p;
		if ((unsigned char) *p <= ' ' || (unsigned char) *p > '~' ||
			*p == '<' || *p == '>' || *p == '"' || *p == '\\')
			break;
	}
	if (p < inner + len || at == NULL || at == inner || at == inner + len - 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("Message-ID header value \"%s\" is not of the form <left@right>",
						mime_server(id)),
				 errhint("A message id is ASCII without spaces, like <123.4@mail.example.jp>.")));
	return psprintf("<%.*s>", len, inner);
}

/*
 * mime_url appends an URL for List-Unsubscribe: non-ASCII bytes and the
 * characters that would end or confuse the <...> (space, quote, angle
 * brackets) percent-encoded; controls were refused before.
 */
static void
mime_url(StringInfo buf, const char *url)
{
	const unsigned char *p;

	appendStringInfoChar(buf, '<');
	for (p = (const unsigned char *) url; *p; p++)
	{
		if (*p >= 0x80 || *p == ' ' || *p == '"' || *p == '<' || *p == '>')
			appendStringInfo(buf, "%%%02X", *p);
		else
			appendStringInfoChar(buf, *p);
	}
	appendStringInfoChar(buf, '>');
}

/*
 * mime_date appends an RFC 5322 date-time, "Mon, 1 Jul 2024 09:00:00
 * +0900", in time zone zone (NULL: UTC, written +0000).
 */
static void
mime_date(StringInfo out, TimestampTz date, const char *zone)
{
	pg_tz	   *tz;
	struct pg_tm tm;
	fsec_t		fsec;
	int			tzoff;
	const char *tzn;
	int			east;

	if (TIMESTAMP_NOT_FINITE(date))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("the Date header of a mail cannot be infinite")));
	tz = pg_tzset(mime_empty(zone) ? "UTC" : zone);
	if (tz == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time zone \"%s\" of the Date header is not recognized", zone)));
	if (timestamp2tm(date, &tzoff, &tm, &fsec, &tzn, tz) != 0 ||
		tm.tm_year < 1900 || tm.tm_year > 9999)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("the Date header of a mail must be between the years 1900 and 9999")));
	east = -tzoff;				/* tzoff counts seconds west of UTC */
	appendStringInfo(out, "%s, %d %s %04d %02d:%02d:%02d %c%02d%02d",
					 mime_days[j2day(date2j(tm.tm_year, tm.tm_mon, tm.tm_mday))],
					 tm.tm_mday, mime_months[tm.tm_mon - 1], tm.tm_year,
					 tm.tm_hour, tm.tm_min, tm.tm_sec,
					 east < 0 ? '-' : '+',
					 abs(east) / 3600, abs(east) % 3600 / 60);
}

/*
 * mime_body appends a text as UTF-8 with CRLF line breaks (a lone LF or CR
 * becomes CRLF), base64-encoded in lines of 76 characters.
 */
static void
mime_body(StringInfo out, const char *text)
{
	StringInfoData canon;
	const char *p;
	char	   *b64;
	int			b64_len;
	int			i;

	initStringInfo(&canon);
	for (p = text; *p; p++)
	{
		if (*p == '\r' || *p == '\n')
		{
			appendBinaryStringInfo(&canon, CRLF, 2);
			if (p[0] == '\r' && p[1] == '\n')
				p++;
		}
		else
			appendStringInfoChar(&canon, *p);
	}
	b64 = palloc(pg_b64_enc_len(canon.len) + 1);
	b64_len = pg_b64_encode(canon.data, canon.len, b64,
							pg_b64_enc_len(canon.len));
	if (b64_len < 0)
		elog(ERROR, "taskflow: base64 encoding of a mail body failed");
	for (i = 0; i < b64_len; i += MIME_LINE_MAX)
	{
		appendBinaryStringInfo(out, b64 + i, Min(MIME_LINE_MAX, b64_len - i));
		appendBinaryStringInfo(out, CRLF, 2);
	}
	pfree(b64);
	pfree(canon.data);
}

/* mime_part appends the headers of a text part, the blank line, the body. */
static void
mime_part(StringInfo out, const char *subtype, const char *text)
{
	appendStringInfo(out,
					 "Content-Type: text/%s; charset=UTF-8" CRLF
					 "Content-Transfer-Encoding: base64" CRLF CRLF,
					 subtype);
	mime_body(out, text);
}

/*
 * mime_boundary: "=_taskflow_" and hashes of the message id and of the
 * bodies.  "=_" never occurs in base64, and the part headers are fixed, so
 * no line of the parts can look like the boundary.
 */
static char *
mime_boundary(const char *message_id, const char *text, const char *html)
{
	uint64		id_hash;
	uint64		h;

	id_hash = hash_bytes_extended((const unsigned char *) message_id,
								  strlen(message_id), 0);
	h = hash_bytes_extended((const unsigned char *) text, strlen(text),
							id_hash);
	h = hash_bytes_extended((const unsigned char *) html, strlen(html), h);
	return psprintf("=_taskflow_%08x_%016llx", (uint32) id_hash,
					(unsigned long long) h);
}

/*
 * MimeBuildMessage returns the message m as the bytes to send (see the
 * header comment of this file), palloc'd in the current memory context.
 * Raises ERRCODE_INVALID_PARAMETER_VALUE, naming the header, for a control
 * character in a header value, a malformed address or message id.
 */
char *
MimeBuildMessage(const MimeMessageData *m)
{
	const char *from_name = mime_utf8(m->from_name);
	const char *from_address = mime_utf8(m->from_address);
	const char *to_address = mime_utf8(m->to_address);
	const char *reply_to = mime_utf8(m->reply_to);
	const char *subject = mime_utf8(m->subject);
	const char *body_text = mime_utf8(m->body_text);
	const char *body_html = mime_utf8(m->body_html);
	const char *list_id = mime_utf8(m->list_id);
	const char *unsubscribe_url = mime_utf8(m->unsubscribe_url);
	const char *unsubscribe_mailto = mime_utf8(m->unsubscribe_mailto);
	char	   *message_id;
	char	   *list_phrase = NULL;
	char	   *list_label = NULL;
	StringInfoData out;
	HeaderWriterData w;

	/* every header value is checked before anything is written */
	mime_check_header("From", "display name", from_name);
	mime_check_address("From", from_address);
	mime_check_address("To", to_address);
	if (!mime_empty(reply_to))
		mime_check_address("Reply-To", reply_to);
	mime_check_header("Subject", NULL, subject);
	mime_check_header("List-Id", NULL, list_id);
	mime_check_header("List-Unsubscribe", "URL", unsubscribe_url);
	mime_check_header("List-Unsubscribe", "mailto", unsubscribe_mailto);
	if (subject == NULL)
		subject = "";
	if (body_text == NULL)
		body_text = "";
	{
		MimeMessageData utf8 = *m;

		utf8.to_address = to_address;
		utf8.subject = subject;
		utf8.body_text = body_text;
		utf8.message_id = mime_utf8(m->message_id);
		message_id = mime_message_id(&utf8, from_address);
	}

	/* List-Id: "label" or "phrase <label>" (RFC 2919) */
	if (!mime_empty(list_id))
	{
		const char *open = strrchr(list_id, '<');
		const char *p;

		if (open != NULL && list_id[strlen(list_id) - 1] == '>')
		{
			const char *end = open;

			while (end > list_id && end[-1] == ' ')
				end--;
			list_phrase = pnstrdup(list_id, end - list_id);
			list_label = pnstrdup(open + 1, strlen(open + 1) - 1);
		}
		else
			list_label = pstrdup(list_id);
		for (p = list_label; *p; p++)
			if ((unsigned char) *p <= ' ' || (unsigned char) *p > '~' ||
				*p == '<' || *p == '>')
				break;
		if (*p || list_label[0] == '\0' || strchr(list_label, '.') == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("List-Id header value \"%s\" has no valid list id",
							mime_server(list_id)),
					 errhint("A list id is ASCII without spaces, like news.example.jp, optionally after a name: Members News <news.example.jp>.")));
	}

	initStringInfo(&out);

	appendStringInfoString(&out, "Date: ");
	mime_date(&out, m->date, m->time_zone);
	appendBinaryStringInfo(&out, CRLF, 2);

	mime_header_begin(&w, &out, "From");
	if (!mime_empty(from_name))
	{
		char	   *addr = mime_angle(from_address);

		mime_header_phrase(&w, from_name);
		mime_header_token(&w, addr, strlen(addr));
	}
	else
		mime_header_token(&w, from_address, strlen(from_address));
	mime_header_end(&w);

	mime_header_begin(&w, &out, "To");
	mime_header_token(&w, to_address, strlen(to_address));
	mime_header_end(&w);

	if (!mime_empty(reply_to))
	{
		mime_header_begin(&w, &out, "Reply-To");
		mime_header_token(&w, reply_to, strlen(reply_to));
		mime_header_end(&w);
	}

	mime_header_begin(&w, &out, "Subject");
	mime_header_unstructured(&w, subject);
	mime_header_end(&w);

	mime_header_begin(&w, &out, "Message-ID");
	mime_header_token(&w, message_id, strlen(message_id));
	mime_header_end(&w);

	if (list_label != NULL)
	{
		char	   *label = mime_angle(list_label);

		mime_header_begin(&w, &out, "List-Id");
		if (!mime_empty(list_phrase))
			mime_header_phrase(&w, list_phrase);
		mime_header_token(&w, label, strlen(label));
		mime_header_end(&w);
	}

	/* List-Unsubscribe (RFC 2369), one-click with an https URL (RFC 8058) */
	if (!mime_empty(unsubscribe_url) || !mime_empty(unsubscribe_mailto))
	{
		StringInfoData url;

		initStringInfo(&url);
		mime_header_begin(&w, &out, "List-Unsubscribe");
		if (!mime_empty(unsubscribe_url))
		{
			mime_url(&url, unsubscribe_url);
			if (!mime_empty(unsubscribe_mailto))
				appendStringInfoChar(&url, ',');
			mime_header_token(&w, url.data, url.len);
		}
		if (!mime_empty(unsubscribe_mailto))
		{
			resetStringInfo(&url);
			mime_url(&url,
					 pg_strncasecmp(unsubscribe_mailto, "mailto:", 7) == 0 ?
					 unsubscribe_mailto :
					 psprintf("mailto:%s", unsubscribe_mailto));
			mime_header_token(&w, url.data, url.len);
		}
		mime_header_end(&w);
		if (!mime_empty(unsubscribe_url) &&
			pg_strncasecmp(unsubscribe_url, "https://", 8) == 0)
			appendStringInfoString(&out,
								   "List-Unsubscribe-Post: List-Unsubscribe=One-Click" CRLF);
		pfree(url.data);
	}

	appendStringInfoString(&out, "MIME-Version: 1.0" CRLF);

	if (!mime_empty(body_html) && body_text[0] != '\0')
	{
		char	   *boundary = mime_boundary(message_id, body_text, body_html);
		char	   *param = psprintf("boundary=\"%s\"", boundary);

		mime_header_begin(&w, &out, "Content-Type");
		mime_header_token(&w, "multipart/alternative;", 22);
		mime_header_token(&w, param, strlen(param));
		mime_header_end(&w);
		appendBinaryStringInfo(&out, CRLF, 2);
		appendStringInfo(&out, "--%s" CRLF, boundary);
		mime_part(&out, "plain", body_text);
		appendStringInfo(&out, "--%s" CRLF, boundary);
		mime_part(&out, "html", body_html);
		appendStringInfo(&out, "--%s--" CRLF, boundary);
	}
	else if (!mime_empty(body_html))
		mime_part(&out, "html", body_html);
	else
		mime_part(&out, "plain", body_text);

	return out.data;
}

/*
 * taskflow.mime_build(from_name, from_address, to_address, subject,
 * body_text, body_html, message_id, reply_to, list_id, unsubscribe_url,
 * date, unsubscribe_mailto, time_zone): MimeBuildMessage() from SQL, for
 * tests and previews.  A NULL date is the transaction's start.
 */
Datum
taskflow_mime_build(PG_FUNCTION_ARGS)
{
	MimeMessageData m;

#define TEXT_ARG(n) \
	(PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n)))
	m.from_name = TEXT_ARG(0);
	m.from_address = TEXT_ARG(1);
	m.to_address = TEXT_ARG(2);
	m.subject = TEXT_ARG(3);
	m.body_text = TEXT_ARG(4);
	m.body_html = TEXT_ARG(5);
	m.message_id = TEXT_ARG(6);
	m.reply_to = TEXT_ARG(7);
	m.list_id = TEXT_ARG(8);
	m.unsubscribe_url = TEXT_ARG(9);
	m.date = PG_ARGISNULL(10) ? GetCurrentTransactionStartTimestamp() :
		PG_GETARG_TIMESTAMPTZ(10);
	m.unsubscribe_mailto = TEXT_ARG(11);
	m.time_zone = TEXT_ARG(12);
#undef TEXT_ARG

	PG_RETURN_TEXT_P(cstring_to_text(MimeBuildMessage(&m)));
}
