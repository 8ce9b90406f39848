/*
 * webhook.h
 *		One message sent as a signed HTTP POST with libcurl.
 */
#ifndef TASKFLOW_WEBHOOK_H
#define TASKFLOW_WEBHOOK_H

#include <curl/curl.h>

#include "delivery.h"

extern void WebhookSign(const char *secret, size_t secret_len,
						const char *body, size_t body_len, char *out);
extern bool WebhookSetup(CURL *curl, DeliveryChannel *channel, DeliveryJob *job);
extern void WebhookFinish(CURL *curl, CURLcode result, DeliveryJob *job);

#endif							/* TASKFLOW_WEBHOOK_H */
