/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The metrics endpoint's pure parts (unit-tested): Prometheus's text
 * exposition format (version 0.0.4), the minimal HTTP/1.0 exchange, the
 * metrics_listen address. docs/METRICS.md. */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <sys/socket.h>

#include "runtime/runtime-internal.h"

void metrics_buf_free(struct metrics_buf *b)
{
	free(b->p);
	*b = (struct metrics_buf){ 0 };
}

static bool buf_reserve(struct metrics_buf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 4096;
	char *p;

	if (b->oom)
		return false;
	while (cap < b->len + more + 1)
		cap *= 2;
	if (cap == b->cap)
		return true;
	p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

static void buf_add(struct metrics_buf *b, const char *s, size_t n)
{
	if (!buf_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

void metrics_printf(struct metrics_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !buf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Escape s as the format wants: backslash and newline always, the double
 * quote in label values. */
static void buf_escaped(struct metrics_buf *b, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			buf_add(b, "\\\\", 2);
		else if (*s == '\n')
			buf_add(b, "\\n", 2);
		else if (*s == '"' && quote)
			buf_add(b, "\\\"", 2);
		else
			buf_add(b, s, 1);
	}
}

void metrics_family(struct metrics_buf *b, const char *name, const char *type, const char *help)
{
	metrics_printf(b, "# HELP %s ", name);
	buf_escaped(b, help, false);
	metrics_printf(b, "\n# TYPE %s %s\n", name, type);
}

/* A float as the format reads it: NaN, +Inf, -Inf, integers without an exponent. */
static void buf_value(struct metrics_buf *b, double v)
{
	if (isnan(v))
		buf_add(b, "NaN", 3);
	else if (isinf(v))
		metrics_printf(b, "%s", v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 9007199254740992.0)
		metrics_printf(b, "%.0f", v);
	else { /* the shortest of these that reads back as v */
		char t[40];

		snprintf(t, sizeof(t), "%.15g", v);
		if (strtod(t, NULL) != v)
			snprintf(t, sizeof(t), "%.17g", v);
		metrics_printf(b, "%s", t);
	}
}

void metrics_sample(struct metrics_buf *b, const char *name, const char *const *labels,
		    double value)
{
	bool open = false;

	metrics_printf(b, "%s", name);
	for (size_t i = 0; labels && labels[i]; i += 2) {
		if (!labels[i + 1])
			continue;
		metrics_printf(b, "%s%s=\"", open ? "," : "{", labels[i]);
		buf_escaped(b, labels[i + 1], true);
		buf_add(b, "\"", 1);
		open = true;
	}
	metrics_printf(b, "%s ", open ? "}" : "");
	buf_value(b, value);
	buf_add(b, "\n", 1);
}

void metrics_histogram(struct metrics_buf *b, const char *name, const char *help,
		       const double *bounds, const uint64_t *counts, size_t n, double sum,
		       uint64_t count)
{
	char bucket[128], le[32];
	uint64_t cum = 0;

	metrics_family(b, name, "histogram", help);
	snprintf(bucket, sizeof(bucket), "%s_bucket", name);
	for (size_t i = 0; i < n; i++) {
		cum += counts[i];
		snprintf(le, sizeof(le), "%g", bounds[i]);
		metrics_sample(b, bucket, (const char *[]){ "le", le, NULL }, (double)cum);
	}
	metrics_sample(b, bucket, (const char *[]){ "le", "+Inf", NULL }, (double)count);
	metrics_printf(b, "%s_sum ", name);
	buf_value(b, sum);
	metrics_printf(b, "\n%s_count %llu\n", name, (unsigned long long)count);
}

/* ---- HTTP/1.0 ---- */

/* The end of the request's head (an empty line), or NULL. */
static const char *head_end(const char *req, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (req[i] == '\n' && req[i + 1] == '\n')
			return req + i + 2;
		if (i + 3 < len && !memcmp(req + i, "\r\n\r\n", 4))
			return req + i + 4;
	}
	return NULL;
}

int metrics_http_request(const char *req, size_t len, bool *ret_head)
{
	const char *end = head_end(req, len), *sp1, *sp2, *eol;
	size_t tlen;

	/* (only the head counts: what follows it is never read) */
	if (memchr(req, 0, end ? (size_t)(end - req) : len))
		return 400;
	if (!end)
		return -EAGAIN;
	eol = memchr(req, '\n', (size_t)(end - req));
	sp1 = memchr(req, ' ', (size_t)(eol - req));
	sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (!sp1 || !sp2 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return 400;
	*ret_head = sp1 - req == 4 && !memcmp(req, "HEAD", 4);
	if (!*ret_head && !(sp1 - req == 3 && !memcmp(req, "GET", 3)))
		return 405;
	tlen = (size_t)(sp2 - sp1 - 1);
	if ((tlen == 8 && !memcmp(sp1 + 1, "/metrics", 8)) ||
	    (tlen > 8 && !memcmp(sp1 + 1, "/metrics?", 9)))
		return 200;
	return 404;
}

void metrics_http_response(struct metrics_buf *b, int status, const char *body, size_t body_len,
			   bool head)
{
	static const char ct[] = "text/plain; version=0.0.4; charset=utf-8";
	const char *reason = status == 200   ? "OK"
			     : status == 404 ? "Not Found"
			     : status == 405 ? "Method Not Allowed"
			     : status == 413 ? "Request Entity Too Large"
			     : status == 408 ? "Request Timeout"
			     : status == 503 ? "Service Unavailable"
					     : "Bad Request";
	char text[128];

	if (status != 200) {
		snprintf(text, sizeof(text), "%d %s: xosd's metrics are at GET /metrics\n", status,
			 reason);
		body = text;
		body_len = strlen(text);
	}
	metrics_printf(b,
		       "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
		       "Connection: close\r\n\r\n",
		       status, reason, status == 200 ? ct : "text/plain; charset=utf-8", body_len,
		       status == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (!head)
		buf_add(b, body, body_len);
}

/* ---- metrics_listen ---- */

static int parse_port(const char *s, uint16_t *ret)
{
	uint64_t v;

	if (parse_uint64(s, &v) < 0 || v == 0 || v > 65535)
		return -EINVAL;
	*ret = (uint16_t)v;
	return 0;
}

int runtime_parse_metrics_listen(const char *s, struct sockaddr_storage *ret, unsigned *ret_len)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	size_t hl = colon ? (size_t)(colon - s) : 0;
	uint16_t port;

	if (!colon || hl == 0 || hl >= sizeof(host) || parse_port(colon + 1, &port) < 0)
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = 0;
	memset(ret, 0, sizeof(*ret));
	if (host[0] == '[' && host[hl - 1] == ']') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ret;

		host[hl - 1] = 0;
		if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1 ||
		    !IN6_IS_ADDR_LOOPBACK(&a->sin6_addr))
			return -EINVAL;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		*ret_len = sizeof(*a);
		return 0;
	}
	{
		struct sockaddr_in *a = (struct sockaddr_in *)ret;

		if (inet_pton(AF_INET, host, &a->sin_addr) != 1 ||
		    (ntohl(a->sin_addr.s_addr) >> 24) != 127)
			return -EINVAL;
		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		*ret_len = sizeof(*a);
	}
	return 0;
}
