/*
 * smtp.c
 *		One message sent over SMTP with libcurl: the transfer's options, the
 *		server's replies, and what the reply means for the message.
 *
 * libcurl hands every reply line of the SMTP dialogue to the header
 * callback; the last few complete replies are kept in the job, and when
 * the transfer ends the one carrying the final reply code
 * (CURLINFO_RESPONSE_CODE) is the message's reply.  2xx: sent; 4xx, a
 * network error or a timeout: temporary; 5xx: permanent, except a refused
 * AUTH (535: the channel's credentials are wrong, not the message), which
 * is temporary.  The enhanced status code (RFC 3463, "5.1.1") is read from
 * the reply text.
 */
#include "postgres.h"

#include <ctype.h>

#include "smtp.h"

/*
 * SafeAddress says whether an envelope address can go into MAIL FROM /
 * RCPT TO as it is: not empty, no spaces, controls or angle brackets (which
 * could end the command and start another).
 */
static bool
SafeAddress(const char *address)
{
	const unsigned char *p;

	if (address == NULL || address[0] == '\0')
		return false;
	for (p = (const unsigned char *) address; *p; p++)
		if (*p <= ' ' || *p == 0x7f || *p == '<' || *p == '>')
			return false;
	return true;
}

/*
 * ReadPayload is libcurl's read callback: the next part of the message.
 */
static size_t
ReadPayload(char *buffer, size_t size, size_t nitems, void *arg)
{
	DeliveryJob *job = (DeliveryJob *) arg;
	size_t		room = size * nitems;
	size_t		left = job->payload_len - job->payload_sent;
	size_t		n = Min(room, left);

	memcpy(buffer, job->payload + job->payload_sent, n);
	job->payload_sent += n;
	return n;
}

/*
 * ReplyLine is libcurl's header callback: one line of a server reply.
 * Lines of a multi-line reply ("250-...", then "250 ...") are joined; a
 * complete reply goes into the job's ring of recent replies.  Control
 * characters become spaces.  Never allocates.
 */
static size_t
ReplyLine(char *data, size_t size, size_t nitems, void *arg)
{
	DeliveryJob *job = (DeliveryJob *) arg;
	size_t		len = size * nitems;
	size_t		n = len;
	size_t		used = strlen(job->partial);
	size_t		start = 0;
	size_t		i;
	bool		final;

	while (n > 0 && (data[n - 1] == '\r' || data[n - 1] == '\n'))
		n--;
	final = !(n >= 4 && isdigit((unsigned char) data[0]) &&
			  isdigit((unsigned char) data[1]) &&
			  isdigit((unsigned char) data[2]) && data[3] == '-');
	/* a continuation line adds its text only, after a space */
	if (used > 0 && n >= 4 && isdigit((unsigned char) data[0]))
		start = 4;
	if (used > 0 && used < DELIVERY_REPLY_LEN - 1)
		job->partial[used++] = ' ';
	for (i = start; i < n && used < DELIVERY_REPLY_LEN - 1; i++)
	{
		unsigned char c = (unsigned char) data[i];

		job->partial[used++] = (c < ' ' || c == 0x7f) ? ' ' : (char) c;
	}
	job->partial[used] = '\0';
	if (final)
	{
		strlcpy(job->replies[job->nreplies % DELIVERY_REPLIES], job->partial,
				DELIVERY_REPLY_LEN);
		job->nreplies++;
		job->partial[0] = '\0';
	}
	return len;
}

/*
 * ReplyCode is the three-digit code a reply starts with (0: none).
 */
static int
ReplyCode(const char *reply)
{
	if (!isdigit((unsigned char) reply[0]) || !isdigit((unsigned char) reply[1]) ||
		!isdigit((unsigned char) reply[2]))
		return 0;
	return (reply[0] - '0') * 100 + (reply[1] - '0') * 10 + (reply[2] - '0');
}

/*
 * SmtpSetup sets a (reset) easy handle up to send one job; false when the
 * job cannot be sent at all (it is then finished as a permanent failure).
 */
bool
SmtpSetup(CURL *curl, DeliveryChannel *channel, DeliveryJob *job)
{
	char		address[1024];
	struct curl_slist *rcpt;

	if (!SafeAddress(job->mail_from))
	{
		DeliveryFinishJob(job, DELIVERY_PERMANENT, 0,
						  "the message has no usable sender address");
		return false;
	}
	if (!SafeAddress(job->rcpt))
	{
		DeliveryFinishJob(job, DELIVERY_PERMANENT, 0,
						  "the message has no usable recipient address");
		return false;
	}
	snprintf(address, sizeof(address), "<%s>", job->rcpt);
	rcpt = curl_slist_append(NULL, address);
	if (rcpt == NULL)
	{
		DeliveryFinishJob(job, DELIVERY_TEMPORARY, 0, "out of memory");
		return false;
	}
	job->slist[0] = rcpt;
	snprintf(address, sizeof(address), "<%s>", job->mail_from);

	curl_easy_setopt(curl, CURLOPT_URL, channel->url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(curl, CURLOPT_MAIL_FROM, address);
	curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(curl, CURLOPT_READFUNCTION, ReadPayload);
	curl_easy_setopt(curl, CURLOPT_READDATA, job);
	curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t) job->payload_len);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, ReplyLine);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, job);
	/* smtps:// is TLS from the start; smtp:// upgrades with STARTTLS */
	curl_easy_setopt(curl, CURLOPT_USE_SSL,
					 channel->require_starttls ? (long) CURLUSESSL_ALL
					 : (long) CURLUSESSL_NONE);
	if (channel->username != NULL)
	{
		curl_easy_setopt(curl, CURLOPT_USERNAME, channel->username);
		curl_easy_setopt(curl, CURLOPT_PASSWORD,
						 channel->password ? channel->password : "");
	}
	job->payload_sent = 0;
	return true;
}

/*
 * SmtpEnhancedCode reads the RFC 3463 enhanced status code that follows
 * the reply code ("550 5.1.1 <a@b>: ..." gives "5.1.1"); "" when none.
 */
void
SmtpEnhancedCode(const char *reply, char *out, size_t outlen)
{
	const char *p = reply;
	int			part;

	out[0] = '\0';
	if (reply == NULL || strlen(reply) < 4 ||
		!isdigit((unsigned char) p[0]) || !isdigit((unsigned char) p[1]) ||
		!isdigit((unsigned char) p[2]) || (p[3] != ' ' && p[3] != '-'))
		return;
	p += 4;
	if (*p != '2' && *p != '4' && *p != '5')
		return;
	/* class "." subject (1-3 digits) "." detail (1-3 digits) */
	{
		const char *q = p + 1;

		for (part = 0; part < 2; part++)
		{
			int			digits = 0;

			if (*q != '.')
				return;
			q++;
			while (isdigit((unsigned char) *q) && digits < 4)
				q++, digits++;
			if (digits == 0 || digits > 3)
				return;
		}
		if (*q != '\0' && *q != ' ')
			return;
		if ((size_t) (q - p) >= outlen)
			return;
		memcpy(out, p, q - p);
		out[q - p] = '\0';
	}
}

/*
 * SmtpFinish records what became of a job once libcurl is done with it.
 */
void
SmtpFinish(CURL *curl, CURLcode result, DeliveryJob *job)
{
	long		code = 0;
	const char *reply = NULL;
	char		text[DELIVERY_REPLY_LEN * 2];
	int			i;
	DeliveryOutcome outcome;

	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);

	/* the newest complete reply that carries the final code */
	for (i = job->nreplies - 1; i >= 0 && i >= job->nreplies - DELIVERY_REPLIES; i--)
	{
		const char *r = job->replies[i % DELIVERY_REPLIES];

		if (code > 0 && ReplyCode(r) == code)
		{
			reply = r;
			break;
		}
	}

	if (result == CURLE_OK)
		outcome = DELIVERY_SENT;
	else if (result == CURLE_LOGIN_DENIED && code > 0)
		/* the channel's credentials, not the message: retried */
		outcome = DELIVERY_TEMPORARY;
	else if (code >= 400 && code < 500)
		outcome = DELIVERY_TEMPORARY;
	else if (code >= 500 && code < 600)
		outcome = DELIVERY_PERMANENT;
	else
	{
		/* no refusal from the server: a network error, a timeout, TLS */
		outcome = DELIVERY_TEMPORARY;
		strlcpy(text, job->errbuf[0] ? job->errbuf : curl_easy_strerror(result),
				sizeof(text));
		reply = text;
		code = 0;
	}
	if (reply == NULL)
	{
		snprintf(text, sizeof(text), "%ld %s", code,
				 result == CURLE_OK ? "OK" : curl_easy_strerror(result));
		reply = text;
	}
	DeliveryFinishJob(job, outcome, (int) code, reply);
	if (code > 0)
		SmtpEnhancedCode(reply, job->enhanced, sizeof(job->enhanced));
}
