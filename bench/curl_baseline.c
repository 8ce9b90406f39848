/*
 * curl_baseline.c — benchmark 5's baseline: sends messages over SMTP with
 * libcurl's multi interface, N transfers at once over at most N reused
 * connections, as the delivery worker does (src/sender.c, src/smtp.c), but
 * with no database: the messages are read from a file first.
 *
 *	curl_baseline URL CONNECTIONS FILE
 *
 * FILE is the output of COPY (SELECT recipient, sender, message ...) TO
 * STDOUT: one message per line, three tab-separated fields, with COPY's
 * text escapes (\\, \n, \r, \t, \b, \f, \v).  Prints
 * "sent N failed N seconds S per_second R" (the time covers the sending
 * only, from the first connection to the last reply).
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct Message
{
	char	   *rcpt;			/* "<address>" */
	char	   *from;			/* "<address>" */
	char	   *data;
	size_t		len;
	size_t		sent;
	struct curl_slist *rcpts;
} Message;

/* Unescape one COPY text field in place; returns its length. */
static size_t
unescape(char *s)
{
	char	   *in = s;
	char	   *out = s;

	while (*in)
	{
		if (*in == '\\' && in[1])
		{
			in++;
			switch (*in)
			{
				case 'n': *out++ = '\n'; break;
				case 'r': *out++ = '\r'; break;
				case 't': *out++ = '\t'; break;
				case 'b': *out++ = '\b'; break;
				case 'f': *out++ = '\f'; break;
				case 'v': *out++ = '\v'; break;
				default: *out++ = *in; break;
			}
			in++;
		}
		else
			*out++ = *in++;
	}
	*out = '\0';
	return out - s;
}

static char *
bracketed(const char *address)
{
	char	   *s = malloc(strlen(address) + 3);

	sprintf(s, "<%s>", address);
	return s;
}

static size_t
read_payload(char *buffer, size_t size, size_t nitems, void *arg)
{
	Message    *m = arg;
	size_t		room = size * nitems;
	size_t		n = m->len - m->sent;

	if (n > room)
		n = room;
	memcpy(buffer, m->data + m->sent, n);
	m->sent += n;
	return n;
}

static size_t
ignore(char *data, size_t size, size_t nitems, void *arg)
{
	return size * nitems;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
start(CURLM *multi, CURL *curl, const char *url, Message *m)
{
	curl_easy_reset(curl);
	m->sent = 0;
	m->rcpts = curl_slist_append(NULL, m->rcpt);
	curl_easy_setopt(curl, CURLOPT_PRIVATE, m);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(curl, CURLOPT_MAIL_FROM, m->from);
	curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, m->rcpts);
	curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_payload);
	curl_easy_setopt(curl, CURLOPT_READDATA, m);
	curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t) m->len);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, ignore);
	curl_easy_setopt(curl, CURLOPT_USE_SSL, (long) CURLUSESSL_NONE);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 60000L);
	curl_multi_add_handle(multi, curl);
}

int
main(int argc, char **argv)
{
	const char *url;
	int			connections;
	FILE	   *f;
	Message    *messages = NULL;
	size_t		n = 0;
	size_t		allocated = 0;
	char	   *line = NULL;
	size_t		linecap = 0;
	ssize_t		linelen;
	CURLM	   *multi;
	CURL	  **idle;
	int			nidle = 0;
	size_t		next = 0;
	int			inflight = 0;
	long		sent = 0;
	long		failed = 0;
	double		t0;
	double		t1;
	int			i;

	if (argc != 4)
	{
		fprintf(stderr, "usage: %s URL CONNECTIONS FILE\n", argv[0]);
		return 2;
	}
	url = argv[1];
	connections = atoi(argv[2]);
	if ((f = fopen(argv[3], "r")) == NULL)
	{
		perror(argv[3]);
		return 2;
	}
	while ((linelen = getline(&line, &linecap, f)) > 0)
	{
		char	   *rcpt = line;
		char	   *from;
		char	   *data;

		if (line[linelen - 1] == '\n')
			line[--linelen] = '\0';
		if ((from = strchr(rcpt, '\t')) == NULL || (data = strchr(from + 1, '\t')) == NULL)
			continue;
		*from++ = '\0';
		*data++ = '\0';
		if (n == allocated)
		{
			allocated = allocated ? allocated * 2 : 1024;
			messages = realloc(messages, allocated * sizeof(Message));
		}
		unescape(rcpt);
		unescape(from);
		messages[n].rcpt = bracketed(rcpt);
		messages[n].from = bracketed(from);
		messages[n].data = strdup(data);
		messages[n].len = unescape(messages[n].data);
		n++;
	}
	fclose(f);

	curl_global_init(CURL_GLOBAL_DEFAULT);
	multi = curl_multi_init();
	curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long) connections);
	curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long) connections);
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long) connections);
	idle = malloc(sizeof(CURL *) * connections);
	for (i = 0; i < connections; i++)
		idle[nidle++] = curl_easy_init();

	t0 = now();
	while (next < n || inflight > 0)
	{
		int			running;
		int			queued;
		CURLMsg    *msg;

		while (next < n && nidle > 0)
		{
			start(multi, idle[--nidle], url, &messages[next++]);
			inflight++;
		}
		curl_multi_perform(multi, &running);
		while ((msg = curl_multi_info_read(multi, &queued)) != NULL)
		{
			Message    *m;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &m);
			if (msg->data.result == CURLE_OK)
				sent++;
			else
				failed++;
			curl_multi_remove_handle(multi, msg->easy_handle);
			curl_slist_free_all(m->rcpts);
			idle[nidle++] = msg->easy_handle;
			inflight--;
		}
		if (inflight > 0)
			curl_multi_poll(multi, NULL, 0, 100, NULL);
	}
	t1 = now();
	printf("sent %ld failed %ld seconds %.3f per_second %.0f\n", sent, failed, t1 - t0,
		   sent / (t1 - t0));
	return failed > 0;
}
