/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The request dispatcher (ops_handle) is the one place that answers a
 * request's error: exactly one line per request, the first error's code and
 * message. (Before struct xerr a field check that failed in a helper was
 * answered twice: by the helper, then by its caller.) A daemon with no jobs,
 * as the request fuzz target builds it. */
#include <yajl/yajl_tree.h>

#include "runtime/runtime-internal.h"
#include "tests/unit/tap.h"

struct answer {
	size_t lines;
	bool ok;
	char code[64];
	char message[512];
	enum conn_mode mode;
};

static struct answer ask_as(struct daemon *d, uid_t uid, const char *line)
{
	struct conn c = { .fd = -EBADF,
			  .uid = uid,
			  .mode = CONN_REQUEST,
			  .out_fd = -EBADF,
			  .err_fd = -EBADF,
			  .passed_fd = -EBADF };
	struct answer a = { 0 };
	_cleanup_json_ yajl_val t = NULL;
	_cleanup_free_ char *first = NULL;
	const char *s = NULL;
	yajl_val e;

	ops_handle(d, &c, line, strlen(line));
	a.mode = c.mode;
	for (size_t i = 0; i < c.out_len; i++)
		a.lines += c.out[i] == '\n';
	if (c.out_len && (first = strndup(c.out, strcspn(c.out, "\n"))) &&
	    json_parse(first, JSON_DEPTH_MAX, NULL, 0, &t) >= 0) {
		(void)json_get_bool(t, "ok", &a.ok);
		e = json_get(t, "error");
		if (e && json_get_string(e, "code", &s) >= 0)
			snprintf(a.code, sizeof(a.code), "%s", s);
		if (e && json_get_string(e, "message", &s) >= 0)
			snprintf(a.message, sizeof(a.message), "%s", s);
	}
	free(c.out);
	strv_free(c.wait_ids);
	return a;
}

static struct answer ask(struct daemon *d, const char *line)
{
	return ask_as(d, 0, line);
}

static void expect_as(struct daemon *d, uid_t uid, const char *line, const char *code,
		      const char *message)
{
	struct answer a = ask_as(d, uid, line);

	ok(a.lines == 1 && !a.ok && !strcmp(a.code, code) && !strcmp(a.message, message) &&
		   a.mode == CONN_CLOSING,
	   "%s: one answer (%zu lines), %s: %s", line, a.lines, a.code, a.message);
}

static void expect(struct daemon *d, const char *line, const char *code, const char *message)
{
	expect_as(d, 0, line, code, message);
}

int main(void)
{
	struct daemon d = DAEMON_EMPTY;
	struct answer a;

	/* a helper's field check, then its caller's: one answer, the first */
	expect(&d, "{\"v\":1,\"op\":\"kill\",\"job\":\"x\",\"signal\":9,\"unit\":\"a\"}",
	       "bad_request", "Field 'unit' must be a non-negative integer");
	expect(&d, "{\"v\":1,\"op\":\"ps\",\"all\":3}", "bad_request",
	       "Field 'all' must be true or false");
	expect(&d, "{\"v\":1,\"op\":\"logs\",\"job\":\"x\",\"follow\":\"no\"}", "bad_request",
	       "Field 'follow' must be true or false");
	/* lookups answer nothing themselves */
	expect(&d, "{\"v\":1,\"op\":\"wait\",\"jobs\":[\"nope\"]}", "not_found",
	       "No such job: nope");
	/* the checkpoint requests (runtime/ckpt-host.c): refused before ckpt/ is asked */
	expect(&d, "{\"v\":1,\"op\":\"checkpoint\",\"job\":\"nope\"}", "not_found",
	       "No such job: nope");
	expect(&d, "{\"v\":1,\"op\":\"restart\",\"job\":\"x\",\"version\":0}", "bad_request",
	       "Field 'version' must be a positive integer");
	expect(&d, "{\"v\":1,\"op\":\"checkpoint_delete\",\"job\":\"x\",\"version\":\"2\"}",
	       "bad_request", "Field 'version' must be a positive integer");
	expect(&d, "{\"v\":1,\"op\":\"checkpoint\",\"job\":\"x\",\"stop\":1}", "bad_request",
	       "Field 'stop' must be true or false");
	/* the template requests (template-ops.c) */
	expect(&d, "{\"v\":1,\"op\":\"template_show\"}", "bad_request",
	       "Field 'name' (string) is required");
	expect_as(&d, 1000, "{\"v\":1,\"op\":\"template_default\",\"name\":\"x\"}",
		  "permission_denied", "Only root (the node owner) may set the default template");
	expect_as(&d, 1000, "{\"v\":1,\"op\":\"template_remove\",\"name\":\"x\",\"force\":1}",
		  "bad_request", "Field 'force' must be true or false");
	expect(&d, "{\"v\":1,\"op\":\"template_remove\",\"name\":\"host\"}", "invalid_argument",
	       "The built-in template host cannot be removed");
	/* the request itself */
	expect(&d, "{\"v\":1,\"op\":\"frob\"}", "unknown_op", "Unknown operation 'frob'");
	expect(&d, "{\"v\":2,\"op\":\"ps\"}", "unsupported_version",
	       "Protocol version 2 is not supported (this xosd speaks 1)");
	expect(&d, "{\"v\":1,\"op\":\"ps\",\"bogus\":1}", "bad_request",
	       "Unknown field 'bogus' in 'ps' request");
	expect(&d, "[1]", "bad_request", "Malformed JSON request: not an object");
	/* and a request that succeeds is answered once, by its handler */
	a = ask(&d, "{\"v\":1,\"op\":\"ps\"}");
	ok(a.lines == 1 && a.ok && !a.code[0], "ps on a daemon without jobs: one ok answer");
	return tap_done();
}
