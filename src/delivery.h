/*
 * delivery.h
 *		The delivery workers: what one message and one channel look like
 *		while they are sent with libcurl (sender.c, smtp.c, webhook.c), and
 *		the workers' entry points for the launcher and _PG_init.
 *
 * A job is built inside the short claim transaction and sent after it has
 * committed; everything a libcurl callback writes is a fixed-size buffer
 * in the job, so no callback allocates (an allocation failure there could
 * not be reported safely through libcurl).
 */
#ifndef TASKFLOW_DELIVERY_H
#define TASKFLOW_DELIVERY_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "postmaster/bgworker.h"

#include "settings.h"

#define DELIVERY_REPLY_LEN 256		/* one server reply kept per job */
#define DELIVERY_REPLIES 4			/* the last replies, newest wins */
#define DELIVERY_ERROR_LEN 256		/* libcurl's CURL_ERROR_SIZE */
#define DELIVERY_SIGNATURE_LEN 72	/* "sha256=" + 64 hex + NUL */

typedef enum DeliveryOutcome
{
	DELIVERY_SENT,
	DELIVERY_TEMPORARY,			/* 4xx, network error, timeout: retried */
	DELIVERY_PERMANENT			/* 5xx (webhook: 4xx but 408/429) */
} DeliveryOutcome;

/* A channel as configured in taskflow.channel, with its secrets read. */
typedef struct DeliveryChannel
{
	char	   *name;
	char	   *kind;			/* "smtp" or "webhook" */
	char	   *url;
	bool		require_starttls;
	char	   *username;		/* NULL: no AUTH */
	char	   *password_file;
	char	   *secret_file;	/* webhook_secret_file */
	int			connect_timeout_ms;
	int			timeout_ms;
	int			connections;	/* parallel connections */
	/* read from the files for each batch (never from a table) */
	char	   *password;
	char	   *secret;
	size_t		secret_len;
} DeliveryChannel;

/* One message on its way, and what became of it. */
typedef struct DeliveryJob
{
	int64		outbox_id;
	char	   *mail_from;		/* envelope sender (SMTP) */
	char	   *rcpt;			/* envelope recipient (SMTP) */
	char	   *message_id;		/* Message-ID / Idempotency-Key */
	char	   *payload;		/* the MIME message or the JSON body */
	size_t		payload_len;
	size_t		payload_sent;	/* read offset for the SMTP upload */
	char		signature[DELIVERY_SIGNATURE_LEN];	/* webhook HMAC header */
	void	   *slist[2];		/* curl_slist * to free after the transfer */

	/* results */
	DeliveryOutcome outcome;
	int			code;			/* SMTP / HTTP reply code, 0: none */
	char		enhanced[16];	/* RFC 3463 code, e.g. "5.1.1"; "" none */
	char		reply[DELIVERY_REPLY_LEN * 2];	/* what the server said */
	bool		done;

	/* filled by the libcurl callbacks */
	char		replies[DELIVERY_REPLIES][DELIVERY_REPLY_LEN];
	int			nreplies;		/* completed replies seen */
	char		partial[DELIVERY_REPLY_LEN];	/* reply being read */
	char		body[DELIVERY_REPLY_LEN];	/* start of an HTTP body */
	size_t		body_len;
	char		errbuf[DELIVERY_ERROR_LEN];
} DeliveryJob;

/* sender.c: send a batch through a channel's connection pool */
extern void DeliverySend(DeliveryChannel *channel, DeliveryJob *jobs, int njobs);
extern void DeliveryForgetPools(void);
extern void DeliveryFinishJob(DeliveryJob *job, DeliveryOutcome outcome,
							  int code, const char *reply);

/* delivery.c: the workers */
typedef struct TaskflowDeliveryHandles
{
	BackgroundWorkerHandle *handle[TASKFLOW_MAX_DELIVERY_WORKERS];
	TimestampTz started_at[TASKFLOW_MAX_DELIVERY_WORKERS];
	bool		warned[TASKFLOW_MAX_DELIVERY_WORKERS];	/* no slot: logged once */
} TaskflowDeliveryHandles;

extern void TaskflowDeliveryInit(void);
extern void TaskflowStartDeliveryWorkers(TaskflowDeliveryHandles *handles,
										 Oid dboid, const char *dbname,
										 bool scheduler_started, bool *retry_soon);
extern void TaskflowStopDeliveryWorkers(Oid dboid);
extern void TaskflowWakeDeliveryAtCommit(void);

#endif							/* TASKFLOW_DELIVERY_H */
