/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of the bounds on what users and jobs send: JSON nesting depth.
 * TAP output. */
#include <yajl/yajl_tree.h>

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "common/common.h"
#include "loader/loader-internal.h"
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

/* The depth counts only containers as they open: brackets in strings and
 * siblings do not add up, and nothing past the limit is built. */
static void test_parse_depth(void)
{
	static const char *const ok_texts[] = {
		"{}",
		"[[[]]]",
		"{\"s\":\"[[[[[[[[\"}",        /* brackets in a string do not count */
		"{\"s\":\"\\\"[[[[[[[[\"}",    /* nor after an escaped quote */
		"{\"s\":\"\\\\\",\"t\":[[]]}", /* an escaped backslash ends the escape */
		"[[],[],[],[],[],[],[],[]]",   /* siblings do not add up */
	};
	yajl_val v = NULL;
	char err[128] = "";

	for (size_t i = 0; i < ELEMENTSOF(ok_texts); i++) {
		ok(json_parse(ok_texts[i], 3, err, sizeof(err), &v) == 0 && v,
		   "parse_depth: '%s' is within depth 3", ok_texts[i]);
		if (v)
			json_free(v);
		v = NULL;
	}
	ok(json_parse("[[[[]]]]", 3, err, sizeof(err), &v) == -ELOOP && !v,
	   "parse_depth: depth 4 > 3 refused");
	ok(json_parse("{\"a\":{\"b\":[{}]}}", 3, err, sizeof(err), &v) == -ELOOP && !v,
	   "parse_depth: objects and arrays count alike");
	ok(json_parse("]]]]]]]]]]", 3, err, sizeof(err), &v) == -EBADMSG && !v,
	   "parse_depth: closing brackets alone are not JSON: '%s'", err);
	ok(json_parse("[1,{\"a\":[2,", 3, err, sizeof(err), &v) == -EBADMSG && !v,
	   "parse_depth: a text cut inside open containers frees what was built");
}

static bool streq_ptr(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* The tree is yajl's: types, numbers' flags, keys in order, empty containers,
 * a long array (built by doubling, not one realloc per element). */
static void test_parse_tree(void)
{
	_cleanup_free_ char *big = NULL;
	yajl_val v = NULL, a;
	size_t n = 0, len = 10000;
	int r;

	r = json_parse(
		"{\"i\":-42,\"d\":1.5,\"e\":1e3,\"h\":99999999999999999999,\"s\":\"x\\u00e9\","
		"\"t\":true,\"f\":false,\"n\":null,\"o\":{},\"a\":[] /* c */}",
		JSON_DEPTH_MAX, NULL, 0, &v);
	ok(r == 0 && YAJL_IS_OBJECT(v) && v->u.object.len == 10,
	   "parse_tree: an object of 10 keys");
	ok(r == 0 && YAJL_IS_INTEGER(json_get(v, "i")) &&
		   YAJL_GET_INTEGER(json_get(v, "i")) == -42 && YAJL_IS_DOUBLE(json_get(v, "i")),
	   "parse_tree: -42 is an integer (and a double)");
	ok(r == 0 && !YAJL_IS_INTEGER(json_get(v, "d")) && YAJL_IS_DOUBLE(json_get(v, "d")) &&
		   !YAJL_IS_INTEGER(json_get(v, "e")) && !YAJL_IS_INTEGER(json_get(v, "h")) &&
		   streq_ptr(YAJL_GET_NUMBER(json_get(v, "h")), "99999999999999999999"),
	   "parse_tree: 1.5, 1e3 and an overflowing number are no integers; the text is kept");
	ok(r == 0 && streq_ptr(YAJL_GET_STRING(json_get(v, "s")), "x\xc3\xa9") &&
		   YAJL_IS_TRUE(json_get(v, "t")) && YAJL_IS_FALSE(json_get(v, "f")) &&
		   YAJL_IS_NULL(json_get(v, "n")) && !strcmp(v->u.object.keys[9], "a"),
	   "parse_tree: strings unescaped, true, false, null, keys in order, a comment skipped");
	ok(r == 0 && YAJL_IS_OBJECT(json_get(v, "o")) && json_get(v, "o")->u.object.len == 0 &&
		   YAJL_IS_ARRAY(json_get(v, "a")) && json_get(v, "a")->u.array.len == 0,
	   "parse_tree: empty object and array");
	if (v)
		json_free(v);
	v = NULL;
	big = malloc(len * 12 + 3);
	if (!big)
		abort();
	big[n++] = '[';
	for (size_t i = 0; i < len; i++)
		n += (size_t)sprintf(big + n, "%s{\"k\":%zu}", i ? "," : "", i);
	big[n++] = ']';
	big[n] = 0;
	r = json_parse(big, JSON_DEPTH_MAX, NULL, 0, &v);
	a = r == 0 ? v : NULL;
	ok(YAJL_IS_ARRAY(a) && a->u.array.len == len &&
		   YAJL_GET_INTEGER(json_get(a->u.array.values[len - 1], "k")) ==
			   (long long)len - 1,
	   "parse_tree: an array of %zu objects, every one in place", len);
	if (v)
		json_free(v);
}

static void test_parse(void)
{
	_cleanup_free_ char *deep = nested(350000, '[', ']');
	_cleanup_free_ char *at = nested(JSON_DEPTH_MAX - 1, '[', ']');
	_cleanup_free_ char *over = nested(JSON_DEPTH_MAX, '[', ']');
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
		json_free(v);
	v = NULL;
	r = json_parse(over, JSON_DEPTH_MAX, err, sizeof(err), &v);
	ok(r == -ELOOP && !v, "parse: one level over the limit is refused");
	r = json_parse("{\"a\":", JSON_DEPTH_MAX, err, sizeof(err), &v);
	ok(r == -EBADMSG && !v && err[0] && !strchr(err, '\n'),
	   "parse: malformed JSON gives -EBADMSG and yajl's first line: '%s'", err);
	r = json_parse("{\"v\":1,\"op\":\"ps\",\"jobs\":[\"a\"]}", JSON_DEPTH_MAX, NULL, 0, &v);
	ok(r == 0 && YAJL_IS_OBJECT(v), "parse: a request parses without an error buffer");
	if (v)
		json_free(v);
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

static void test_spec_log_size(void)
{
	static const char spec[] = "unit\0"
				   "1\0"
				   "uid\0"
				   "1000\0"
				   "gid\0"
				   "100\0"
				   "cwd\0"
				   "/\0"
				   "argv\0"
				   "true\0"
				   "log_size\0"
				   "1048576";
	_cleanup_loader_spec_ struct loader_spec *s = NULL, *t = NULL;
	_cleanup_free_ char *text = NULL, *err = NULL;
	size_t len = 0;
	int r = loader_spec_parse(spec, sizeof(spec), &s, &err);

	ok(r == 0 && s && s->log_size == 1048576, "spec: log_size is read (%s)",
	   err ? err : "no error");
	r = s ? loader_spec_format(s, &text, &len) : -EINVAL;
	ok(r == 0 && loader_spec_parse(text, len, &t, NULL) == 0 && t->log_size == 1048576,
	   "spec: log_size survives format and parse");
	free(err);
	err = NULL;
	r = loader_spec_parse("unit\0"
			      "1\0"
			      "uid\0"
			      "1\0"
			      "gid\0"
			      "1\0"
			      "cwd\0"
			      "/\0"
			      "argv\0"
			      "x\0"
			      "log_size\0"
			      "1M",
			      sizeof("unit\0"
				     "1\0"
				     "uid\0"
				     "1\0"
				     "gid\0"
				     "1\0"
				     "cwd\0"
				     "/\0"
				     "argv\0"
				     "x\0"
				     "log_size\0"
				     "1M"),
			      &t, &err);
	ok(r == -EINVAL && err && strstr(err, "bad log_size"),
	   "spec: a bad log_size is refused: %s", err ? err : "");
}

static void test_punch_to(void)
{
	ok(loader_relay_punch_to(0, 1 << 20, 0) == 0, "punch: no limit, nothing goes");
	ok(loader_relay_punch_to(0, 1 << 20, 1 << 20) == 0, "punch: exactly the limit stays");
	ok(loader_relay_punch_to(0, (1 << 20) + 1, 1 << 20) == 262144,
	   "punch: one byte over: a quarter goes (block-aligned)");
	ok(loader_relay_punch_to(262144, (1 << 20) + 262144, 1 << 20) == 262144,
	   "punch: within the limit again: nothing more");
	for (uint64_t end = 65537; end < (8 << 20); end += 77777) {
		uint64_t to = loader_relay_punch_to(4096, end, 65536);

		if (to % 4096 || end - to > 65536 || to < 4096) {
			ok(false, "punch: end %llu -> %llu breaks a bound", (unsigned long long)end,
			   (unsigned long long)to);
			return;
		}
	}
	ok(true, "punch: always block-aligned, never backwards, at most the limit kept");
}

/* The relay on a real file: what is kept is the newest, the rest a hole. */
static void test_relay_file(void)
{
	char dir[] = "/tmp/test-limits-relay.XXXXXX";
	_cleanup_close_ int dfd = -EBADF, w = -EBADF, f = -EBADF;
	struct relay rl;
	char buf[4096], name[PATH_MAX];
	uint64_t total = 0;
	off_t data;
	struct stat st;
	int r;

	if (!mkdtemp(dir) || (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		abort();
	loader_relay_init(&rl);
	r = loader_relay_open(&rl, dfd, "1.out", 65536, &w);
	ok(r == 0, "relay: opened (%s)", strerror(-r));
	memset(buf, 'x', sizeof(buf));
	for (int i = 0; r == 0 && i < 256; i++) { /* 1 MiB through a 64 KiB cap */
		buf[0] = (char)('a' + i % 26);
		if (write(w, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			abort();
		total += sizeof(buf);
		while (loader_relay_pump(&rl) == 0 && rl.off < total)
			;
	}
	closep(&w);
	ok(loader_relay_pump(&rl) == 1 && rl.pipe_fd < 0, "relay: EOF closes the pipe");
	snprintf(name, sizeof(name), "%s/1.out", dir);
	f = open(name, O_RDONLY | O_CLOEXEC);
	data = f >= 0 ? lseek(f, 0, SEEK_DATA) : -1;
	ok(f >= 0 && fstat(f, &st) == 0 && (uint64_t)st.st_size == total,
	   "relay: the file's size is the stream's (%lld)", (long long)st.st_size);
	ok(data > 0 && (uint64_t)data == rl.start && total - (uint64_t)data <= 65536 &&
		   total - (uint64_t)data >= 49152,
	   "relay: data starts at %lld: the newest 48-64 KiB are kept", (long long)data);
	ok((uint64_t)st.st_blocks * 512 <= 65536 + 8192, "relay: %lld bytes on disk",
	   (long long)st.st_blocks * 512);
	ok(pread(f, buf, 1, (off_t)total - 4096) == 1 && buf[0] == (char)('a' + 255 % 26),
	   "relay: the last block is the last written");
	ok(loader_relay_write(&rl, "xos: end\n", 9) == 0 && rl.off == total + 9,
	   "relay: the loader's own line goes at the end");
	loader_relay_close(&rl);
	unlinkat(dfd, "1.out", 0);
	rmdir(dir);
}

/* A punched spool survives a copy (checkpoint, restore) with its holes. */
static void test_copy_keeps_holes(void)
{
	char dir[] = "/tmp/test-limits-copy.XXXXXX";
	_cleanup_close_ int dfd = -EBADF, f = -EBADF, g = -EBADF;
	char buf[65536], back[65536];
	uint64_t bytes = 0;
	struct stat st;
	int r;

	if (!mkdtemp(dir) || (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    mkdirat(dfd, "a", 0700) < 0)
		abort();
	f = openat(dfd, "a/1.out", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	memset(buf, 'y', sizeof(buf));
	for (int i = 0; f >= 0 && i < 64; i++) /* 4 MiB, then all but the last 64 KiB punched */
		if (write(f, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			abort();
	if (f < 0 || fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 63 << 16) < 0) {
		ok(true, "copy: # skip the file system of /tmp cannot punch holes");
		goto out;
	}
	r = copy_tree_at(dfd, "a", dfd, "b", &bytes);
	g = openat(dfd, "b/1.out", O_RDONLY | O_CLOEXEC);
	ok(r == 0 && g >= 0 && fstat(g, &st) == 0 && st.st_size == 64 << 16,
	   "copy: the copy has the file's size (%lld)", (long long)st.st_size);
	ok(g >= 0 && lseek(g, 0, SEEK_DATA) == 63 << 16 && st.st_blocks * 512 <= (128 << 10),
	   "copy: the hole stays a hole (%lld bytes on disk, %llu copied)",
	   (long long)st.st_blocks * 512, (unsigned long long)bytes);
	ok(g >= 0 && pread(g, back, sizeof(back), 63 << 16) == (ssize_t)sizeof(back) &&
		   !memcmp(back, buf, sizeof(back)),
	   "copy: the data is the same");
out:
	(void)rm_rf_at(dfd, "a");
	(void)rm_rf_at(dfd, "b");
	rmdir(dir);
}

int main(void)
{
	test_parse_depth();
	test_parse_tree();
	test_parse();
	test_template_meta_depth();
	test_conn_keys();
	test_spec_log_size();
	test_punch_to();
	test_relay_file();
	test_copy_keeps_holes();
	return tap_done();
}
