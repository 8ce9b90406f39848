/*
 * sender.c
 *		Sending a batch of messages through one channel with libcurl's multi
 *		interface: up to channel.connections transfers at once, connections
 *		kept open and reused from one message (and one batch) to the next.
 *
 * Each channel has a pool that lives as long as the worker: one multi
 * handle (its connection cache holds the open SMTP / HTTP connections,
 * at most channel.connections of them) and channel.connections easy
 * handles, reset and reused for each message.  A pool is rebuilt (its
 * connections closed) when its channel's url, kind, connection count,
 * STARTTLS requirement, user name or password (the password file's
 * contents, read for each batch) change: a new password is used at once.  No transaction is open
 * while this runs; interrupts (SIGTERM) and the postmaster's death are
 * checked at least every 100 ms.
 */
#include "postgres.h"

#include <curl/curl.h>

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/pmsignal.h"
#include "utils/memutils.h"

#include "delivery.h"
#include "smtp.h"
#include "webhook.h"

typedef struct Pool
{
	char	   *channel;
	char	   *kind;
	char	   *url;
	int			connections;
	bool		require_starttls;
	char	   *credentials;	/* username and password the connections
								 * logged in with */
	CURLM	   *multi;
	CURL	  **easy;
	struct Pool *next;
} Pool;

static Pool *pools = NULL;

/*
 * FreePool closes a pool's connections and frees it.
 */
static void
FreePool(Pool *pool)
{
	int			i;

	for (i = 0; i < pool->connections; i++)
		if (pool->easy[i])
			curl_easy_cleanup(pool->easy[i]);
	if (pool->multi)
		curl_multi_cleanup(pool->multi);
	pfree(pool->easy);
	pfree(pool->channel);
	pfree(pool->kind);
	pfree(pool->url);
	if (pool->credentials)
	{
		memset(pool->credentials, 0, strlen(pool->credentials));
		pfree(pool->credentials);
	}
	pfree(pool);
}

/*
 * DeliveryForgetPools closes every pool (channels reconfigured or gone).
 */
void
DeliveryForgetPools(void)
{
	while (pools)
	{
		Pool	   *next = pools->next;

		FreePool(pools);
		pools = next;
	}
}

/*
 * PoolFor finds (or builds) the pool of a channel.
 */
static Pool *
PoolFor(DeliveryChannel *channel)
{
	Pool	  **link;
	Pool	   *pool;
	MemoryContext old;
	char	   *credentials = psprintf("%s\n%s", channel->username ? channel->username : "",
									   channel->password ? channel->password : "");
	int			i;

	for (link = &pools; *link; link = &(*link)->next)
	{
		pool = *link;
		if (strcmp(pool->channel, channel->name) != 0)
			continue;
		if (strcmp(pool->url, channel->url) == 0 &&
			strcmp(pool->kind, channel->kind) == 0 &&
			pool->connections == channel->connections &&
			pool->require_starttls == channel->require_starttls &&
			strcmp(pool->credentials, credentials) == 0)
			return pool;
		*link = pool->next;
		FreePool(pool);
		break;
	}

	old = MemoryContextSwitchTo(TopMemoryContext);
	pool = palloc0(sizeof(Pool));
	pool->channel = pstrdup(channel->name);
	pool->kind = pstrdup(channel->kind);
	pool->url = pstrdup(channel->url);
	pool->connections = channel->connections;
	pool->require_starttls = channel->require_starttls;
	pool->credentials = pstrdup(credentials);
	pool->easy = palloc0(sizeof(CURL *) * channel->connections);
	MemoryContextSwitchTo(old);

	pool->multi = curl_multi_init();
	for (i = 0; i < pool->connections && pool->multi; i++)
		if ((pool->easy[i] = curl_easy_init()) == NULL)
			break;
	if (pool->multi == NULL || i < pool->connections)
	{
		FreePool(pool);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("taskflow: could not set up libcurl for channel \"%s\"",
						channel->name)));
	}
	curl_multi_setopt(pool->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
					  (long) pool->connections);
	curl_multi_setopt(pool->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
					  (long) pool->connections);
	curl_multi_setopt(pool->multi, CURLMOPT_MAXCONNECTS, (long) pool->connections);
	pool->next = pools;
	pools = pool;
	return pool;
}

/*
 * DeliveryFinishJob records a job's outcome.  The reply is cut to fit and
 * to a valid string of the database encoding (a server may send anything).
 */
void
DeliveryFinishJob(DeliveryJob *job, DeliveryOutcome outcome, int code,
				  const char *reply)
{
	int			len;
	int			i;

	job->outcome = outcome;
	job->code = code;
	job->enhanced[0] = '\0';
	strlcpy(job->reply, reply ? reply : "", sizeof(job->reply));
	len = strlen(job->reply);
	if (GetDatabaseEncoding() == PG_UTF8)
		len = pg_encoding_verifymbstr(PG_UTF8, job->reply, len);
	else
		for (i = 0; i < len; i++)
			if (IS_HIGHBIT_SET(job->reply[i]))
				job->reply[i] = '?';
	job->reply[len] = '\0';
	/* no trailing spaces (a reply line's own padding) */
	while (len > 0 && job->reply[len - 1] == ' ')
		job->reply[--len] = '\0';
	job->done = true;
}

/*
 * StartJob sets an easy handle up for a job and adds it to the multi
 * handle; false when the job was finished at once instead.
 */
static bool
StartJob(Pool *pool, CURL *curl, DeliveryChannel *channel, DeliveryJob *job)
{
	bool		smtp = strcmp(channel->kind, "smtp") == 0;
	bool		ok;
	CURLMcode	mc;

	curl_easy_reset(curl);
	job->errbuf[0] = '\0';
	job->partial[0] = '\0';
	job->nreplies = 0;
	curl_easy_setopt(curl, CURLOPT_PRIVATE, job);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, job->errbuf);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long) channel->connect_timeout_ms);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long) channel->timeout_ms);
	ok = smtp ? SmtpSetup(curl, channel, job) : WebhookSetup(curl, channel, job);
	if (!ok)
		return false;
	mc = curl_multi_add_handle(pool->multi, curl);
	if (mc != CURLM_OK)
	{
		DeliveryFinishJob(job, DELIVERY_TEMPORARY, 0, curl_multi_strerror(mc));
		return false;
	}
	return true;
}

/*
 * EndJob reads a finished transfer's outcome and frees what it used.
 */
static void
EndJob(Pool *pool, CURL *curl, CURLcode result, DeliveryChannel *channel)
{
	DeliveryJob *job = NULL;
	int			i;

	curl_easy_getinfo(curl, CURLINFO_PRIVATE, (char **) &job);
	if (strcmp(channel->kind, "smtp") == 0)
		SmtpFinish(curl, result, job);
	else
		WebhookFinish(curl, result, job);
	curl_multi_remove_handle(pool->multi, curl);
	for (i = 0; i < 2; i++)
		if (job->slist[i])
		{
			curl_slist_free_all((struct curl_slist *) job->slist[i]);
			job->slist[i] = NULL;
		}
}

/*
 * DeliverySend sends every job that is not done yet and records each
 * outcome in the job.
 */
void
DeliverySend(DeliveryChannel *channel, DeliveryJob *jobs, int njobs)
{
	Pool	   *pool = PoolFor(channel);
	CURL	  **idle = palloc(sizeof(CURL *) * pool->connections);
	int			nidle = 0;
	int			next = 0;
	int			inflight = 0;
	int			i;

	for (i = 0; i < pool->connections; i++)
		idle[nidle++] = pool->easy[i];

	while (next < njobs || inflight > 0)
	{
		int			running;
		int			queued;
		CURLMsg    *msg;

		while (next < njobs && nidle > 0)
		{
			DeliveryJob *job = &jobs[next++];

			if (job->done)
				continue;
			if (StartJob(pool, idle[nidle - 1], channel, job))
			{
				nidle--;
				inflight++;
			}
		}
		curl_multi_perform(pool->multi, &running);
		while ((msg = curl_multi_info_read(pool->multi, &queued)) != NULL)
		{
			if (msg->msg != CURLMSG_DONE)
				continue;
			idle[nidle++] = msg->easy_handle;
			EndJob(pool, msg->easy_handle, msg->data.result, channel);
			inflight--;
		}
		if (inflight > 0)
			curl_multi_poll(pool->multi, NULL, 0, 100, NULL);
		CHECK_FOR_INTERRUPTS();
		if (!PostmasterIsAlive())
			proc_exit(1);
	}
	pfree(idle);
}
