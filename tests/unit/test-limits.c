/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the bounds on what users and jobs send: JSON nesting depth.
 * TAP output. */
#include <yajl/yajl_tree.h>

#include "common/common.h"
#include "runtime/runtime.h"
#include "templates/templates.h"
#include "tests/unit/tap.h"

/* "{"a":" + n '[' + n ']' + "}" */
static char *nested(size_t n, char open, char close)
{
	char *s = malloc(2 * n + 16);
	size_t o = 0;

	if (!s)
		abort();
	o += (size_t)snprintf(s, 16, "{\"a\":");
	memset(s + o, open, n);
	o += n;
	memset(s + o, close, n);
	o += n;
	s[o++] = '}';
	s[o] = 0;
	return s;
}

static void test_check_depth(void)
{
	static const char *const ok_texts[] = {
		"{}",
		"[[[]]]",
		"{\"s\":\"[[[[[[[[\"}",        /* brackets in a string do not count */
		"{\"s\":\"\\\"[[[[[[[[\"}",    /* nor after an escaped quote */
		"{\"s\":\"\\\\\",\"t\":[[]]}", /* an escaped backslash ends the escape */
		"]]]]]]]]]]",                  /* not JSON, but not deep either */
	};

	for (size_t i = 0; i < ELEMENTSOF(ok_texts); i++)
		ok(json_check_depth(ok_texts[i], strlen(ok_texts[i]), 3) == 0,
		   "check_depth: '%s' is within depth 3", ok_texts[i]);
	ok(json_check_depth("[[[[]]]]", 8, 3) == -ELOOP, "check_depth: depth 4 > 3 refused");
	ok(json_check_depth("[[[[]]]]", 3, 3) == 0, "check_depth: only len bytes are scanned");
	ok(json_check_depth("[[[\0[[[[", 8, 3) == 0, "check_depth: the scan stops at a NUL");
	ok(json_check_depth("{\"a\":{\"b\":[{}]}}", 16, 3) == -ELOOP,
	   "check_depth: objects and arrays count alike");
	ok(json_check_depth("[][][][][][][][]", 16, 1) == 0, "check_depth: siblings do not add up");
	ok(json_check_depth("\"\\", 2, 1) == 0, "check_depth: a trailing escape stays in bounds");
	{ /* a NUL right after a backslash ends the text (ASan sees a read past it) */
		char *t = strdup("\"\\");

		ok(t && json_check_depth(t, SIZE_MAX, 1) == 0,
		   "check_depth: a backslash before the NUL does not skip it");
		free(t);
	}
}

static void test_parse(void)
{
	_cleanup_free_ char *deep = nested(350000, '[', ']');
	_cleanup_free_ char *at = nested(JSON_DEPTH_MAX - 1, '[', ']');
	_cleanup_free_ char *over = nested(JSON_DEPTH_MAX, '{', '}');
	yajl_val v = NULL;
	char err[128] = "";
	int r;

	/* 350,000 levels overflowed yajl's recursion (and xosd's stack) before */
	r = json_parse(deep, JSON_DEPTH_MAX, err, sizeof(err), &v);
	ok(r == -ELOOP && !v, "parse: 350000 levels refused before parsing (r=%d)", r);
	ok(strstr(err, "nested too deeply (limit 64)") != NULL, "parse: the error says why: '%s'",
	   err);
	r = json_parse(at, JSON_DEPTH_MAX, err, sizeof(err), &v);
	ok(r == 0 && YAJL_IS_OBJECT(v), "parse: exactly the limit (%d levels) parses",
	   JSON_DEPTH_MAX);
	if (v)
		yajl_tree_free(v);
	v = NULL;
	r = json_parse(over, JSON_DEPTH_MAX, err, sizeof(err), &v);
	ok(r == -ELOOP && !v, "parse: one level over the limit is refused");
	r = json_parse("{\"a\":", JSON_DEPTH_MAX, err, sizeof(err), &v);
	ok(r == -EBADMSG && !v && err[0] && !strchr(err, '\n'),
	   "parse: malformed JSON gives -EBADMSG and yajl's first line: '%s'", err);
	r = json_parse("{\"v\":1,\"op\":\"ps\",\"jobs\":[\"a\"]}", JSON_DEPTH_MAX, NULL, 0, &v);
	ok(r == 0 && YAJL_IS_OBJECT(v), "parse: a request parses without an error buffer");
	if (v)
		yajl_tree_free(v);
}

static void test_template_meta_depth(void)
{
	_cleanup_free_ char *deep = nested(100000, '[', ']');
	struct template_info *t = NULL;
	char *err = NULL;
	int r = template_info_parse(deep, "x", &t, &err);

	ok(r < 0 && !t && err && strstr(err, "nested too deeply"),
	   "template.json nested 100000 deep is refused: %s", err ? err : "(no message)");
	free(err);
	template_info_free(t);
}

/* Load text as an xosd.conf: 0 or -errno (and the message in *ret_err). */
static int load_conf(const char *text, struct runtime_config *c, char **ret_err)
{
	char path[] = "/tmp/test-limits-conf.XXXXXX";
	int fd = mkstemp(path), r;

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	close(fd);
	runtime_config_init(c);
	r = runtime_config_load(c, path, ret_err);
	unlink(path);
	return r;
}

static void test_conn_keys(void)
{
	struct runtime_config c;
	char *err = NULL;
	int r;

	runtime_config_init(&c);
	ok(c.max_connections_per_user == 256 && c.request_timeout_us == 10000000,
	   "xosd.conf: defaults 256 connections per user, request_timeout 10 s");
	runtime_config_free(&c);
	r = load_conf("max_connections_per_user = 20\nrequest_timeout = 1500ms\n", &c, &err);
	ok(r == 0 && c.max_connections_per_user == 20 && c.request_timeout_us == 1500000,
	   "xosd.conf: max_connections_per_user and request_timeout are read");
	runtime_config_free(&c);
	free(err);
	err = NULL;
	r = load_conf("max_connections_per_user = 0\n", &c, &err);
	ok(r < 0 && err && strstr(err, "invalid value '0' for max_connections_per_user"),
	   "xosd.conf: max_connections_per_user = 0 is refused: %s", err ? err : "");
	runtime_config_free(&c);
	free(err);
	err = NULL;
	r = load_conf("request_timeout = 0\n", &c, &err);
	ok(r < 0 && err && strstr(err, "for request_timeout"),
	   "xosd.conf: request_timeout = 0 is refused: %s", err ? err : "");
	runtime_config_free(&c);
	free(err);
}

int main(void)
{
	test_check_depth();
	test_parse();
	test_template_meta_depth();
	test_conn_keys();
	return tap_done();
}
