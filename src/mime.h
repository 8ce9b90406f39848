/*
 * mime.h
 *		The MIME builder: one outbox message as an RFC 5322 / MIME mail.
 *
 * MimeBuildMessage() turns the rendered parts of a message (what an outbox
 * row holds, plus what its channel adds) into the bytes handed to SMTP:
 * CRLF line endings, every header line folded to at most 76 characters,
 * non-ASCII subjects and display names as RFC 2047 B-encoded UTF-8 words
 * split on character boundaries, bodies base64-encoded UTF-8, text and
 * HTML as multipart/alternative (text first).  The output is pure ASCII.
 *
 * A CR, LF or any other control character in a header value is refused
 * with ERRCODE_INVALID_PARAMETER_VALUE naming the header: no value can add
 * headers of its own.  See doc/mail_format.md.
 */
#ifndef TASKFLOW_MIME_H
#define TASKFLOW_MIME_H

#include "datatype/timestamp.h"
#include "mb/pg_wchar.h"

/*
 * MimeIsHeaderControl: a character no header value may hold, which the
 * builder refuses: C0 controls (CR, LF and tab among them), DEL and the C1
 * controls U+0080 to U+009F.  The renderer (template.c) writes a space for
 * each of them in a subject, so what it renders is what the builder takes.
 */
static inline bool
MimeIsHeaderControl(pg_wchar c)
{
	return c < 0x20 || (c >= 0x7f && c <= 0x9f);
}

/*
 * One message.  Strings are in the server encoding (converted to UTF-8
 * here) and NUL-terminated; "nullable" members may be NULL or empty, in
 * which case the header (or part) is left out.
 */
typedef struct MimeMessageData
{
	const char *from_name;		/* display name of From; nullable */
	const char *from_address;	/* addr-spec, e.g. info@example.jp */
	const char *to_address;		/* addr-spec */
	const char *reply_to;		/* addr-spec; nullable */
	const char *subject;		/* NULL is an empty subject */
	const char *body_text;		/* NULL is an empty text */
	const char *body_html;		/* nullable: text/plain only */
	const char *message_id;		/* "<left@right>" (brackets added if missing);
								 * nullable: derived from the content and the
								 * From domain */
	TimestampTz date;			/* the Date header */
	const char *time_zone;		/* zone of the Date header (the chain's, e.g.
								 * Asia/Tokyo); nullable: +0000 */
	const char *list_id;		/* "list.example.jp" or "Name
								 * <list.example.jp>"; nullable */
	const char *unsubscribe_url;	/* https URL; nullable.  An https URL also
									 * adds List-Unsubscribe-Post (RFC 8058) */
	const char *unsubscribe_mailto; /* address or mailto: URL; nullable */
} MimeMessageData;

typedef MimeMessageData *MimeMessage;

/* The whole message (headers, blank line, body), palloc'd, NUL-terminated. */
extern char *MimeBuildMessage(const MimeMessageData *m);

#endif							/* TASKFLOW_MIME_H */
