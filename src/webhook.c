/*
 * webhook.c
 *		One message sent as an HTTP POST with libcurl, for gateways (LINE,
 *		SMS...): the body is the row's body_text (the template renders JSON),
 *		signed with HMAC-SHA256 of a secret read from a file.
 *
 * Headers: Content-Type: application/json; X-Taskflow-Signature:
 * sha256=<hex HMAC-SHA256 of the exact body bytes>; Idempotency-Key: the
 * message's Message-ID (the same on every attempt, so a receiver can drop
 * a repeat); X-Taskflow-Recipient: the member's address on the channel
 * (its e-mail, or the channel's recipient property: a phone number), read
 * when the message was claimed.  2xx: sent; 408, 429, 5xx, a network error or a timeout:
 * temporary; any other status (other 4xx, and 3xx: redirects are not
 * followed, the signed body goes only where it was configured to):
 * permanent.
 */
#include "postgres.h"

#include "common/hmac.h"
#include "common/sha2.h"

#include "webhook.h"

/*
 * WebhookSign writes "sha256=<hex>" for a body into out (at least
 * DELIVERY_SIGNATURE_LEN bytes).  Called inside a transaction: PostgreSQL's
 * HMAC context is tracked by the current resource owner.
 */
void
WebhookSign(const char *secret, size_t secret_len,
			const char *body, size_t body_len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);
	int			i;

	if (ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	if (pg_hmac_init(ctx, (const uint8 *) secret, secret_len) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) body, body_len) < 0 ||
		pg_hmac_final(ctx, digest, sizeof(digest)) < 0)
	{
		const char *reason = pg_hmac_error(ctx);

		pg_hmac_free(ctx);
		ereport(ERROR,
				(errmsg("taskflow: could not compute the webhook signature: %s",
						reason)));
	}
	pg_hmac_free(ctx);
	strcpy(out, "sha256=");
	for (i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
	{
		out[7 + 2 * i] = hex[digest[i] >> 4];
		out[8 + 2 * i] = hex[digest[i] & 0x0f];
	}
	out[7 + 2 * PG_SHA256_DIGEST_LENGTH] = '\0';
}

/*
 * StatusLine is libcurl's header callback: keeps the last status line
 * ("HTTP/1.1 500 Internal Server Error"; after a 100 Continue the final
 * one) and forgets the body of an earlier response.  Never allocates.
 */
static size_t
StatusLine(char *data, size_t size, size_t nitems, void *arg)
{
	DeliveryJob *job = (DeliveryJob *) arg;
	size_t		len = size * nitems;
	size_t		n = len;
	size_t		i;

	if (len < 5 || strncmp(data, "HTTP/", 5) != 0)
		return len;
	while (n > 0 && (data[n - 1] == '\r' || data[n - 1] == '\n'))
		n--;
	n = Min(n, DELIVERY_REPLY_LEN - 1);
	for (i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) data[i];

		job->partial[i] = (c < ' ' || c == 0x7f) ? ' ' : (char) c;
	}
	job->partial[n] = '\0';
	job->body_len = 0;
	return len;
}

/*
 * ResponseBody is libcurl's write callback: keeps the start of the body
 * (for the attempt's reply text) and drops the rest.
 */
static size_t
ResponseBody(char *data, size_t size, size_t nitems, void *arg)
{
	DeliveryJob *job = (DeliveryJob *) arg;
	size_t		len = size * nitems;
	size_t		room = DELIVERY_REPLY_LEN - 1 - job->body_len;
	size_t		n = Min(len, room);
	size_t		i;

	for (i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) data[i];

		job->body[job->body_len++] = (c < ' ' || c == 0x7f) ? ' ' : (char) c;
	}
	job->body[job->body_len] = '\0';
	return len;
}

/*
 * WebhookSetup sets a (reset) easy handle up to POST one job; false when
 * it cannot be sent (the job is then finished).
 */
bool
WebhookSetup(CURL *curl, DeliveryChannel *channel, DeliveryJob *job)
{
	struct curl_slist *headers = NULL;
	char		line[1024];

	if (job->payload == NULL)
	{
		DeliveryFinishJob(job, DELIVERY_PERMANENT, 0, "the message has no body");
		return false;
	}
	headers = curl_slist_append(headers, "Content-Type: application/json; charset=utf-8");
	if (headers && job->signature[0])
	{
		snprintf(line, sizeof(line), "X-Taskflow-Signature: %s", job->signature);
		headers = curl_slist_append(headers, line);
	}
	if (headers && job->message_id)
	{
		snprintf(line, sizeof(line), "Idempotency-Key: %s", job->message_id);
		headers = curl_slist_append(headers, line);
	}
	/* the member's address on the channel as it is now (claim time) */
	if (headers && job->rcpt && strpbrk(job->rcpt, "\r\n") == NULL &&
		strlen(job->rcpt) < sizeof(line) - 32)
	{
		snprintf(line, sizeof(line), "X-Taskflow-Recipient: %s", job->rcpt);
		headers = curl_slist_append(headers, line);
	}
	if (headers)
		headers = curl_slist_append(headers, "User-Agent: taskflow");
	/* no "Expect: 100-continue" round trip */
	if (headers)
		headers = curl_slist_append(headers, "Expect:");
	if (headers == NULL)
	{
		DeliveryFinishJob(job, DELIVERY_TEMPORARY, 0, "out of memory");
		return false;
	}
	job->slist[1] = headers;
	job->body_len = 0;
	job->body[0] = '\0';

	curl_easy_setopt(curl, CURLOPT_URL, channel->url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_POST, 1L);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, job->payload);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) job->payload_len);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, StatusLine);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, job);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, ResponseBody);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, job);
	return true;
}

/*
 * WebhookFinish records what became of a job once libcurl is done with it.
 */
void
WebhookFinish(CURL *curl, CURLcode result, DeliveryJob *job)
{
	long		code = 0;
	char		text[DELIVERY_REPLY_LEN * 2];
	DeliveryOutcome outcome;

	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
	if (result != CURLE_OK)
	{
		strlcpy(text, job->errbuf[0] ? job->errbuf : curl_easy_strerror(result),
				sizeof(text));
		DeliveryFinishJob(job, DELIVERY_TEMPORARY, 0, text);
		return;
	}
	if (code >= 200 && code < 300)
		outcome = DELIVERY_SENT;
	else if (code == 408 || code == 429 || (code >= 500 && code < 600))
		outcome = DELIVERY_TEMPORARY;
	else
		outcome = DELIVERY_PERMANENT;
	snprintf(text, sizeof(text), "%s%s%s",
			 job->partial[0] ? job->partial : "HTTP",
			 job->body_len > 0 ? ": " : "", job->body);
	DeliveryFinishJob(job, outcome, (int) code, text);
}
