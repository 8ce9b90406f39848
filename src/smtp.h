/*
 * smtp.h
 *		One message sent over SMTP with libcurl.
 */
#ifndef TASKFLOW_SMTP_H
#define TASKFLOW_SMTP_H

#include <curl/curl.h>

#include "delivery.h"

extern bool SmtpSetup(CURL *curl, DeliveryChannel *channel, DeliveryJob *job);
extern void SmtpFinish(CURL *curl, CURLcode result, DeliveryJob *job);
extern void SmtpEnhancedCode(const char *reply, char *out, size_t outlen);

#endif							/* TASKFLOW_SMTP_H */
