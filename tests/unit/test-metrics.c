/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The metrics endpoint's pure parts: Prometheus text format (escaping,
 * numbers, histograms), the HTTP/1.0 exchange, metrics_listen addresses;
 * and the config keys. */
#include <math.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "runtime/runtime-internal.h"
#include "tests/unit/tap.h"

#define ok(cond, ...) tap_ok_(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

static bool has(const struct metrics_buf *b, const char *text)
{
	return b->p && strstr(b->p, text);
}

static void test_samples(void)
{
	struct metrics_buf b = { 0 };

	metrics_family(&b, "xos_a_total", "counter", "Help with a \\ and\na newline");
	metrics_sample(&b, "xos_a_total", NULL, 42);
	ok(has(&b, "# HELP xos_a_total Help with a \\\\ and\\na newline\n# TYPE xos_a_total "
		   "counter\nxos_a_total 42\n"),
	   "HELP escapes backslash and newline; TYPE follows; an integer has no exponent: %s", b.p);
	metrics_buf_free(&b);

	metrics_sample(&b, "m",
		       (const char *[]){ "job", "a\"b\\c\nd", "name", NULL, "u", "x", NULL }, 1.5);
	ok(has(&b, "m{job=\"a\\\"b\\\\c\\nd\",u=\"x\"} 1.5\n"),
	   "label values escape quote, backslash, newline; a NULL value is left out: %s", b.p);
	metrics_buf_free(&b);

	metrics_sample(&b, "n", NULL, NAN);
	metrics_sample(&b, "p", NULL, INFINITY);
	metrics_sample(&b, "q", NULL, -INFINITY);
	metrics_sample(&b, "r", NULL, 0.044);
	metrics_sample(&b, "s", NULL, 18446744073709551615.0);
	ok(has(&b, "n NaN\np +Inf\nq -Inf\nr 0.044\n"), "NaN, +Inf, -Inf; 0.044 stays short: %s",
	   b.p);
	ok(has(&b, "s 1.8446744073709552e+19\n"), "a huge value: 17 digits, as many as read back");
	metrics_buf_free(&b);
}

static void test_histogram(void)
{
	static const double bounds[] = { 0.1, 1, 10 };
	const uint64_t counts[] = { 2, 0, 3 };
	struct metrics_buf b = { 0 };

	metrics_histogram(&b, "h_seconds", "A histogram", bounds, counts, 3, 12.5, 6);
	ok(has(&b, "# TYPE h_seconds histogram\n"
		   "h_seconds_bucket{le=\"0.1\"} 2\n"
		   "h_seconds_bucket{le=\"1\"} 2\n"
		   "h_seconds_bucket{le=\"10\"} 5\n"
		   "h_seconds_bucket{le=\"+Inf\"} 6\n"
		   "h_seconds_sum 12.5\n"
		   "h_seconds_count 6\n"),
	   "buckets cumulative, +Inf is the count, then _sum and _count: %s", b.p);
	metrics_buf_free(&b);
}

static int req(const char *text, bool *head)
{
	return metrics_http_request(text, strlen(text), head);
}

static void test_http(void)
{
	struct metrics_buf b = { 0 };
	bool head = false;

	ok(req("GET /metrics HTTP/1.0\r\n", &head) == -EAGAIN, "an incomplete head: read on");
	ok(req("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &head) == 200 && !head, "GET /metrics");
	ok(req("GET /metrics?x=1 HTTP/1.0\n\n", &head) == 200, "a query and bare newlines");
	ok(req("HEAD /metrics HTTP/1.0\r\n\r\n", &head) == 200 && head, "HEAD");
	ok(req("GET / HTTP/1.0\r\n\r\n", &head) == 404, "another path: 404");
	ok(req("GET /metricsx HTTP/1.0\r\n\r\n", &head) == 404, "a longer path: 404");
	ok(req("POST /metrics HTTP/1.0\r\n\r\n", &head) == 405, "POST: 405");
	ok(req("GET /metrics\r\n\r\n", &head) == 400, "no version: 400");
	ok(req("garbage\r\n\r\n", &head) == 400, "garbage: 400");
	ok(metrics_http_request("GET /metrics HTTP/1.0\r\n\0\r\n\r\n", 28, &head) == 400,
	   "a NUL byte: 400");
	ok(metrics_http_request("GET /metrics HTTP/1.0\r\n\r\n\0x", 27, &head) == 200,
	   "a NUL byte after the head (never read): no matter");

	metrics_http_response(&b, 200, "a 1\n", 4, false);
	ok(has(&b, "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4; "
		   "charset=utf-8\r\nContent-Length: 4\r\n") &&
		   has(&b, "\r\n\r\na 1\n"),
	   "200: the exposition format's content type, the length, the body");
	metrics_buf_free(&b);
	metrics_http_response(&b, 200, "a 1\n", 4, true);
	ok(has(&b, "Content-Length: 4\r\n") && !has(&b, "a 1"), "HEAD: the length, no body");
	metrics_buf_free(&b);
	metrics_http_response(&b, 405, NULL, 0, false);
	ok(has(&b, "HTTP/1.0 405 Method Not Allowed\r\n") && has(&b, "Allow: GET, HEAD\r\n") &&
		   has(&b, "GET /metrics"),
	   "405 says what is allowed and where the metrics are");
	metrics_buf_free(&b);
}

static bool listen_ok(const char *s, int family, unsigned port)
{
	struct sockaddr_storage sa;
	unsigned len = 0;

	if (runtime_parse_metrics_listen(s, &sa, &len) < 0 || sa.ss_family != family)
		return false;
	if (family == AF_INET)
		return ntohs(((struct sockaddr_in *)&sa)->sin_port) == port &&
		       len == sizeof(struct sockaddr_in);
	return ntohs(((struct sockaddr_in6 *)&sa)->sin6_port) == port &&
	       len == sizeof(struct sockaddr_in6);
}

static bool listen_bad(const char *s)
{
	struct sockaddr_storage sa;
	unsigned len;

	return runtime_parse_metrics_listen(s, &sa, &len) == -EINVAL;
}

static void test_listen(void)
{
	ok(listen_ok("127.0.0.1:9464", AF_INET, 9464), "127.0.0.1:9464");
	ok(listen_ok("127.0.0.2:1", AF_INET, 1), "any 127/8 address");
	ok(listen_ok("[::1]:65535", AF_INET6, 65535), "[::1]:65535");
	ok(listen_bad("0.0.0.0:9464"), "0.0.0.0 refused: loopback only");
	ok(listen_bad("10.0.0.1:9464"), "a private address refused");
	ok(listen_bad("[::]:9464"), ":: refused");
	ok(listen_bad("127.0.0.1"), "no port refused");
	ok(listen_bad("127.0.0.1:0") && listen_bad("127.0.0.1:65536") && listen_bad("127.0.0.1:x"),
	   "ports 0, 65536, x refused");
	ok(listen_bad("localhost:9464"), "names refused (no lookups)");
	ok(listen_bad(":9464") && listen_bad(""), "no host refused");
}

static int load(const char *text, struct runtime_config *c)
{
	char path[] = "/tmp/xos-test-metrics-XXXXXX";
	_cleanup_free_ char *err = NULL;
	int fd = mkstemp(path), r;

	if (fd < 0)
		return -errno;
	r = write(fd, text, strlen(text)) == (ssize_t)strlen(text) ? 0 : -EIO;
	close(fd);
	runtime_config_init(c);
	if (r >= 0)
		r = runtime_config_load(c, path, &err);
	unlink(path);
	return r;
}

static void test_config(void)
{
	struct runtime_config c;

	ok(load("", &c) >= 0 && !c.metrics_socket && !c.metrics_listen,
	   "no metrics endpoint by default");
	runtime_config_free(&c);
	ok(load("metrics_socket = /run/xos/metrics.sock\nmetrics_listen = 127.0.0.1:9464\n", &c) >=
			   0 &&
		   c.metrics_socket && !strcmp(c.metrics_socket, "/run/xos/metrics.sock") &&
		   c.metrics_listen && !strcmp(c.metrics_listen, "127.0.0.1:9464"),
	   "metrics_socket and metrics_listen are read");
	runtime_config_free(&c);
	ok(load("metrics_listen = 0.0.0.0:9464\n", &c) == -EINVAL,
	   "metrics_listen off loopback is a config error");
	runtime_config_free(&c);
	ok(load("metrics_socket = relative.sock\n", &c) == -EINVAL,
	   "metrics_socket must be absolute");
	runtime_config_free(&c);
	ok(load("", &c) >= 0 && c.metrics_listen_jobs == METRICS_JOBS_IDS,
	   "metrics_listen_jobs: ids by default (no names on the port every user reads)");
	runtime_config_free(&c);
	ok(load("metrics_listen_jobs = names\n", &c) >= 0 &&
		   c.metrics_listen_jobs == METRICS_JOBS_NAMES,
	   "metrics_listen_jobs = names");
	runtime_config_free(&c);
	ok(load("metrics_listen_jobs = none\n", &c) >= 0 &&
		   c.metrics_listen_jobs == METRICS_JOBS_NONE,
	   "metrics_listen_jobs = none");
	runtime_config_free(&c);
	ok(load("metrics_listen_jobs = all\n", &c) == -EINVAL,
	   "metrics_listen_jobs = all is refused");
	runtime_config_free(&c);
	ok(load("", &c) >= 0 && c.events_buffer == 65536, "events_buffer: 64 KiB by default");
	runtime_config_free(&c);
	ok(load("events_buffer = 4K\n", &c) >= 0 && c.events_buffer == 4096, "events_buffer = 4K");
	runtime_config_free(&c);
	ok(load("events_buffer = 1K\n", &c) == -EINVAL, "events_buffer below 4 KiB is refused");
	runtime_config_free(&c);
	ok(load("events_buffer = 17M\n", &c) == -EINVAL, "events_buffer above 16 MiB is refused");
	runtime_config_free(&c);
}

int main(void)
{
	test_samples();
	test_histogram();
	test_http();
	test_listen();
	test_config();
	return tap_done();
}
