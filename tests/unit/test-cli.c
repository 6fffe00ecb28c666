/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests of cli/: the parts that need no daemon. TAP output. */
#include <fcntl.h>
#include <sys/socket.h>

#include "cli/cli.h"
#include "tests/unit/tap.h"

/* Silence fds 1 and 2 while code that prints usage or errors runs. */
static int saved_fds[2] = { -1, -1 };

static void quiet(bool on)
{
	fflush(stdout);
	fflush(stderr);
	for (int fd = 1; fd <= 2; fd++) {
		if (on) {
			int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

			saved_fds[fd - 1] = fcntl(fd, F_DUPFD_CLOEXEC, 3);
			if (null >= 0) {
				dup2(null, fd);
				close(null);
			}
		} else if (saved_fds[fd - 1] >= 0) {
			dup2(saved_fds[fd - 1], fd);
			close(saved_fds[fd - 1]);
			saved_fds[fd - 1] = -1;
		}
	}
}

static bool b64_is(const char *in, const char *want, size_t want_len)
{
	_cleanup_free_ char *out = NULL;
	size_t len;

	if (base64_decode(in, strlen(in), &out, &len) < 0)
		return false;
	return len == want_len && memcmp(out, want, len) == 0;
}

static bool b64_bad(const char *in)
{
	_cleanup_free_ char *out = NULL;
	size_t len;

	return base64_decode(in, strlen(in), &out, &len) == -EINVAL && !out;
}

static void test_base64(void)
{
	ok(b64_is("", "", 0), "base64: empty input");
	ok(b64_is("YQ==", "a", 1), "base64: two padding characters");
	ok(b64_is("YWI=", "ab", 2), "base64: one padding character");
	ok(b64_is("aGVsbG8gd29ybGQK", "hello world\n", 12), "base64: no padding");
	ok(b64_is("AP8A", "\0\377\0", 3), "base64: binary bytes");
	ok(b64_bad("YWJ"), "base64: length not a multiple of 4 is refused");
	ok(b64_bad("Y==="), "base64: three padding characters are refused");
	ok(b64_bad("YW=j"), "base64: data after padding is refused");
	ok(b64_bad("YQ==YQ=="), "base64: padding in the middle is refused");
	ok(b64_bad("YW\nI"), "base64: whitespace is refused");
	ok(b64_bad("YW*I"), "base64: characters outside the alphabet are refused");
}

static bool strv_json_is(yajl_val v, const char *const *want)
{
	size_t n = 0;

	if (!YAJL_IS_ARRAY(v))
		return false;
	while (want[n])
		n++;
	if (v->u.array.len != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		const char *s = YAJL_GET_STRING(v->u.array.values[i]);

		if (!s || strcmp(s, want[i]) != 0)
			return false;
	}
	return true;
}

static bool int_is(yajl_val obj, const char *key, int64_t want)
{
	int64_t v;

	return cli_json_int(obj, key, &v) >= 0 && v == want;
}

static bool str_is(yajl_val obj, const char *key, const char *want)
{
	const char *s = cli_json_string(obj, key);

	return s && strcmp(s, want) == 0;
}

/* Parse a command line as xrun does and build its request, parsed back. */
static int run_request(int argc, char **argv, yajl_val *ret)
{
	_cleanup_cli_run_opts_ struct cli_run_opts o = {};
	_cleanup_free_ char *req = NULL;
	size_t len;
	int r;

	r = cli_run_parse("xrun", argc, argv, &o);
	if (r != 0)
		return r < 0 ? r : -ECANCELED;
	r = cli_run_request(&o, &req, &len);
	if (r < 0)
		return r;
	if (len != strlen(req) || req[len - 1] != '\n' || memchr(req, '\n', len - 1))
		return -EBADMSG; /* not exactly one line */
	return cli_json_parse(req, ret);
}

static void test_run_request_full(void)
{
	char *argv[] = { "xrun",       "-d",
			 "-e",         "A=1",
			 "-e",         "XOS_TEST_VAR",
			 "-e",         "XOS_TEST_UNSET",
			 "-w",         "/tmp",
			 "--name",     "n1",
			 "--template", "host",
			 "--memory",   "64M",
			 "--cpus",     "0.5",
			 "--pids",     "100",
			 "--user",     "bob",
			 "ls",         "-l",
			 "-d",         NULL };
	const char *want_argv[] = { "ls", "-l", "-d", NULL };
	const char *want_env[] = { "A=1", "XOS_TEST_VAR=from here", NULL };
	_cleanup_json_ yajl_val req = NULL;

	setenv("XOS_TEST_VAR", "from here", 1);
	unsetenv("XOS_TEST_UNSET");
	ok(run_request((int)ELEMENTSOF(argv) - 1, argv, &req) >= 0,
	   "run request: built and parsed back");
	ok(int_is(req, "v", 1) && str_is(req, "op", "run"), "run request: v 1, op run");
	ok(strv_json_is(cli_json_get(req, "argv"), want_argv),
	   "run request: options stop at the command");
	ok(strv_json_is(cli_json_get(req, "env"), want_env),
	   "run request: env, bare NAME from our environment, unset NAME dropped");
	ok(str_is(req, "workdir", "/tmp") && str_is(req, "name", "n1") &&
		   str_is(req, "template", "host") && str_is(req, "user", "bob"),
	   "run request: workdir, name, template, user");
	ok(int_is(req, "memory", 64 * 1024 * 1024) && int_is(req, "cpus", 500) &&
		   int_is(req, "pids", 100),
	   "run request: memory in bytes, cpus in milli-CPUs, pids");
	ok(YAJL_IS_FALSE(cli_json_get(req, "attach")), "run request: -d sends attach false");
	ok(!cli_json_get(req, "tty") && !cli_json_get(req, "job"),
	   "run request: unset fields are left out");
}

static void test_run_request_minimal(void)
{
	char *argv[] = { "xrun", "--", "-x", "y", NULL };
	char *argv_tty[] = { "xrun", "-t", "--job", "abc", "sh", NULL };
	const char *want_argv[] = { "-x", "y", NULL };
	_cleanup_json_ yajl_val req = NULL, req_tty = NULL;

	ok(run_request(4, argv, &req) >= 0 && strv_json_is(cli_json_get(req, "argv"), want_argv),
	   "run request: -- ends the options");
	ok(YAJL_IS_TRUE(cli_json_get(req, "attach")), "run request: attached by default");
	ok(req && req->u.object.len == 5 && cli_json_string(req, "cwd") &&
		   cli_json_string(req, "cwd")[0] == '/',
	   "run request: only v, op, argv, attach and the current directory by default");
	ok(run_request(5, argv_tty, &req_tty) >= 0 && YAJL_IS_TRUE(cli_json_get(req_tty, "tty")) &&
		   str_is(req_tty, "job", "abc"),
	   "run request: -t sends tty true, --job the job");
}

static void test_volumes(void)
{
	char *argv[] = { "xrun", "-v",      "/srv/a:/a", "-v",        "rel:/b:ro", "--disk",
			 "64M",  "--files", "10",        "--no-home", "true",      NULL };
	char *bad[][4] = {
		{ "xrun", "-v", "/srv", NULL },  { "xrun", "-v", ":/x", NULL },
		{ "xrun", "-v", "/a:", NULL },   { "xrun", "-v", "/a:/b:rx", NULL },
		{ "xrun", "--disk", "0", NULL }, { "xrun", "--files", "-1", NULL },
	};
	_cleanup_json_ yajl_val req = NULL;
	struct cli_volume v = { 0 };
	yajl_val vols, v1;
	char *cwd = getcwd(NULL, 0), *want = cwd ? xstrdup_printf("%s/rel", cwd) : NULL;

	ok(run_request(11, argv, &req) >= 0, "volumes: request built");
	vols = cli_json_get(req, "volumes");
	v1 = YAJL_IS_ARRAY(vols) && vols->u.array.len == 2 ? vols->u.array.values[1] : NULL;
	ok(v1 && str_is(vols->u.array.values[0], "src", "/srv/a") &&
		   str_is(vols->u.array.values[0], "dst", "/a") &&
		   YAJL_IS_FALSE(cli_json_get(vols->u.array.values[0], "ro")),
	   "volumes: SRC:DST is read-write");
	ok(v1 && want && str_is(v1, "src", want) && str_is(v1, "dst", "/b") &&
		   YAJL_IS_TRUE(cli_json_get(v1, "ro")),
	   "volumes: a relative SRC is taken from the current directory; :ro");
	ok(int_is(req, "disk", 64 << 20) && int_is(req, "files", 10) &&
		   YAJL_IS_TRUE(cli_json_get(req, "no_home")),
	   "volumes: --disk, --files, --no-home");
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		_cleanup_json_ yajl_val r = NULL;
		int rr;

		quiet(true);
		rr = run_request(3, bad[i], &r);
		quiet(false);
		ok(rr == -EINVAL, "volumes: '%s %s' is refused", bad[i][1], bad[i][2]);
	}
	ok(cli_parse_volume("/a:/b:rw", "/", &v) == 0 && !v.ro && !strcmp(v.dst, "/b"),
	   "volumes: :rw is read-write");
	free(v.src);
	free(v.dst);
	ok(cli_parse_volume("a:/b", "/", &v) == 0 && !strcmp(v.src, "/a"),
	   "volumes: relative to /");
	free(v.src);
	free(v.dst);
	free(cwd);
	free(want);
}

static void test_sizes(void)
{
	static const struct {
		uint64_t n;
		const char *want;
	} t[] = { { 0, "0B" },           { 1023, "1023B" },   { 1024, "1K" },
		  { 1536, "1.5K" },      { 16 << 20, "16M" }, { (3 << 20) + 300000, "3.3M" },
		  { 150 << 20, "150M" }, { 1ULL << 30, "1G" } };
	char buf[32];

	for (size_t i = 0; i < ELEMENTSOF(t); i++)
		ok(cli_format_size(t[i].n, buf, sizeof(buf)) == 0 && !strcmp(buf, t[i].want),
		   "size %llu is %s (got %s)", (unsigned long long)t[i].n, t[i].want, buf);
	ok(cli_format_size(1ULL << 30, buf, 2) == -ENOBUFS, "size: a short buffer is an error");
}

static void test_run_parse_errors(void)
{
	char *no_cmd[] = { "xrun", "-d", NULL };
	char *bad_mem[] = { "xrun", "--memory", "12Q", "ls", NULL };
	char *bad_cpus[] = { "xrun", "--cpus", "lots", "ls", NULL };
	char *bad_opt[] = { "xrun", "--frobnicate", "ls", NULL };
	char *no_val[] = { "xrun", "ls", NULL };
	char *help[] = { "xrun", "--help", NULL };
	char *bad_utf8[] = { "xrun", "echo", "\xff\xfe", NULL };
	char *zero[] = { "xrun", "--cpus", "0", "--memory", "0", "ls", NULL };
	_cleanup_json_ yajl_val req = NULL, req_zero = NULL;
	int r[6];

	quiet(true);
	r[0] = run_request(2, no_cmd, &req);
	r[1] = run_request(4, bad_mem, &req);
	r[2] = run_request(4, bad_cpus, &req);
	r[3] = run_request(3, bad_opt, &req);
	r[4] = run_request(2, no_val, &req);
	r[5] = run_request(2, help, &req);
	quiet(false);
	ok(r[0] == -EINVAL, "run parse: no command is a usage error");
	ok(r[1] == -EINVAL, "run parse: bad --memory is refused");
	ok(r[2] == -EINVAL, "run parse: bad --cpus is refused");
	ok(r[3] == -EINVAL, "run parse: unknown option is refused");
	ok(r[4] >= 0, "run parse: a command alone is enough");
	ok(r[5] == -ECANCELED, "run parse: --help ends parsing");
	ok(run_request(3, bad_utf8, &req) == -EILSEQ,
	   "run request: text that is not UTF-8 is refused");
	ok(run_request(6, zero, &req_zero) >= 0 && int_is(req_zero, "cpus", 0) &&
		   int_is(req_zero, "memory", 0),
	   "run parse: --cpus 0 and --memory 0 mean no limit");
}

static bool rel_is(uint64_t ago_s, const char *want)
{
	uint64_t now = 1700000000ULL * 1000000;
	char buf[32];

	return cli_format_relative(now, now - ago_s * 1000000, buf, sizeof(buf)) >= 0 &&
	       strcmp(buf, want) == 0;
}

static void test_relative(void)
{
	char buf[8];

	ok(rel_is(0, "0s ago") && rel_is(5, "5s ago") && rel_is(59, "59s ago"),
	   "relative time: seconds");
	ok(rel_is(60, "1m ago") && rel_is(3599, "59m ago"), "relative time: minutes");
	ok(rel_is(3600, "1h ago") && rel_is(86399, "23h ago"), "relative time: hours");
	ok(rel_is(86400, "1d ago") && rel_is(86400 * 400, "400d ago"), "relative time: days");
	ok(cli_format_relative(1000, 5000000, buf, sizeof(buf)) >= 0 && strcmp(buf, "0s ago") == 0,
	   "relative time: a time in the future is 0s ago");
	ok(cli_format_relative(0, 0, buf, 3) == -ENOBUFS,
	   "relative time: short buffer is -ENOBUFS");
}

static bool state_is(const char *state, int code, int sig, const char *reason, const char *want)
{
	char buf[64];

	return cli_format_state(state, code, sig, reason, buf, sizeof(buf)) >= 0 &&
	       strcmp(buf, want) == 0;
}

static bool job_state_is(const char *json, const char *want)
{
	_cleanup_json_ yajl_val job = NULL;
	char buf[64];

	return cli_json_parse(json, &job) >= 0 &&
	       cli_format_job_state(job, buf, sizeof(buf)) >= 0 && strcmp(buf, want) == 0;
}

static void test_state(void)
{
	ok(state_is("RUNNING", -1, 0, NULL, "RUNNING"), "state: running");
	ok(state_is("EXITED", 0, 0, NULL, "EXITED(0)"), "state: exited with its code");
	ok(state_is("KILLED", 137, 9, "OOM", "KILLED(KILL) OOM"), "state: killed, signal, reason");
	ok(state_is("KILLED", 128 + 99, 99, NULL, "KILLED(99)"),
	   "state: unnamed signal as a number");
	ok(state_is("FAILED", 125, 0, "no address left in 10.0.3.0/24",
		    "FAILED no address left in 10..."),
	   "state: long reasons are cut");
	ok(job_state_is("{\"state\":\"EXITED\",\"exit_code\":3,\"signal\":null,\"reason\":null}",
			"EXITED(3)"),
	   "state: from a job object");
	ok(job_state_is("{\"state\":\"KILLED\",\"exit_code\":143,\"signal\":15,\"reason\":null}",
			"KILLED(TERM)"),
	   "state: killed job object");
	ok(job_state_is("{\"state\":\"QUEUED\",\"exit_code\":null,\"signal\":null,\"reason\":null}",
			"QUEUED"),
	   "state: nulls are ignored");
}

static bool command_is(const char *json_argv, const char *want)
{
	_cleanup_json_ yajl_val v = NULL;
	_cleanup_free_ char *s = NULL;
	_cleanup_free_ char *doc = xstrdup_printf("{\"argv\":%s}", json_argv);

	if (!doc || cli_json_parse(doc, &v) < 0)
		return false;
	s = cli_format_command(cli_json_get(v, "argv"), CLI_COMMAND_WIDTH);
	return s && strcmp(s, want) == 0;
}

static void test_command(void)
{
	ok(command_is("[\"sleep\",\"100\"]", "sleep 100"), "command: argv joined");
	ok(command_is("[\"echo\",\"a\\nb\\u001b\"]", "echo a?b?"), "command: control characters");
	ok(command_is("[\"x\",\"0123456789012345678901234567890123456789\"]",
		      "x 01234567890123456789012345678901234..."),
	   "command: cut to 40 columns");
	ok(command_is("[\"123456789012345678901234567890123456\\u00e9\\u00e9\\u00e9\"]",
		      "123456789012345678901234567890123456..."),
	   "command: not cut inside a UTF-8 sequence");
	ok(command_is("[]", ""), "command: empty argv");
}

static void test_framing(void)
{
	struct cli_conn c = CLI_CONN_INIT;
	_cleanup_json_ yajl_val a = NULL, b = NULL, d = NULL;
	int sv[2];
	const char *part1 = "{\"v\":1,\"ok\":true,\"job\":\"0123",
		   *part2 = "456789abcdef\"}\n\n{\"ev\"";
	const char *part3 = ":\"eof\"}\nnot json\n";

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		ok(false, "framing: socketpair");
		return;
	}
	c.fd = sv[0];
	(void)!write(sv[1], part1, strlen(part1));
	ok(cli_conn_fill(&c) > 0 && cli_conn_next(&c, &a) == 0, "framing: partial line waits");
	(void)!write(sv[1], part2, strlen(part2));
	ok(cli_conn_recv(&c, &a) == 1 && str_is(a, "job", "0123456789abcdef"),
	   "framing: a line split over two reads");
	(void)!write(sv[1], part3, strlen(part3));
	ok(cli_conn_recv(&c, &b) == 1 && str_is(b, "ev", "eof"), "framing: blank line skipped");
	ok(cli_conn_recv(&c, &d) == -EBADMSG, "framing: malformed line is -EBADMSG");
	close(sv[1]);
	ok(cli_conn_recv(&c, &d) == -ECONNRESET, "framing: end of stream is -ECONNRESET");
	cli_conn_done(&c);
}

static int event(struct cli_conn *c, struct cli_stream *s, const char *json,
		 enum cli_stream_end *end)
{
	_cleanup_json_ yajl_val ev = NULL;
	int r = cli_json_parse(json, &ev);

	return r < 0 ? r : cli_stream_event(c, s, ev, end);
}

static void test_events(void)
{
	_cleanup_cli_conn_ struct cli_conn c = CLI_CONN_INIT;
	_cleanup_cli_stream_ struct cli_stream s = { .prog = "test", .sigfd = -EBADF };
	enum cli_stream_end end = CLI_STREAM_RESPONSE;
	int r;

	ok(event(&c, &s,
		 "{\"v\":1,\"ev\":\"exit\",\"unit\":1,\"state\":\"killed\",\"code\":0,"
		 "\"signal\":9,\"reason\":\"OOM\",\"exit_code\":137}",
		 &end) == 1 &&
		   end == CLI_STREAM_EXIT && s.exit_code == 137 && s.signal == 9 &&
		   strcmp(s.reason, "OOM") == 0,
	   "events: exit event gives exit_code, signal and reason");
	ok(event(&c, &s, "{\"v\":1,\"ev\":\"exit\",\"unit\":1,\"state\":\"exited\",\"code\":3}",
		 &end) == 1 &&
		   s.exit_code == 3 && !s.reason,
	   "events: exit_code missing: derived from the code");
	ok(event(&c, &s, "{\"v\":1,\"ev\":\"eof\"}", &end) == 1 && end == CLI_STREAM_EOF,
	   "events: eof event ends the stream");
	ok(event(&c, &s, "{\"v\":1,\"ev\":\"progress\"}", &end) == 0,
	   "events: unknown events are ignored");
	ok(event(&c, &s, "{\"v\":1,\"ev\":\"output\",\"stream\":\"stdout\",\"data\":\"@@\"}",
		 &end) == -EBADMSG,
	   "events: bad base64 in output is -EBADMSG");
	quiet(true);
	r = event(&c, &s,
		  "{\"v\":1,\"ok\":false,\"error\":{\"code\":\"bad_request\","
		  "\"message\":\"Bad signal\"}}",
		  &end);
	quiet(false);
	ok(r == 0 && c.error && strcmp(c.error, "Bad signal") == 0,
	   "events: an error response in the stream is reported, not fatal");
	ok(event(&c, &s, "{\"v\":1,\"job\":\"x\"}", &end) == -EBADMSG,
	   "events: a message that is neither event nor response is -EBADMSG");
}

/* What cli_json_print_member prints of text's member key, and what
 * cli_json_print prints of the same member parsed: the same bytes. */
static bool print_same(const char *text, const char *key)
{
	_cleanup_json_ yajl_val v = NULL;
	char *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	FILE *fa = open_memstream(&a, &alen), *fb = open_memstream(&b, &blen);
	bool same = false;

	if (fa && fb && cli_json_parse(text, &v) >= 0 &&
	    cli_json_print_member(fa, text, strlen(text), key) >= 0 &&
	    cli_json_print(fb, cli_json_get(v, key)) >= 0) {
		fflush(fa);
		fflush(fb);
		same = alen == blen && memcmp(a, b, alen) == 0;
		if (!same)
			fprintf(stderr, "# member %s of %s:\n%s---\n%s", key, text, a, b);
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	free(a);
	free(b);
	return same;
}

static void test_print_member(void)
{
	static const char job_fmt[] =
		"{\"id\":\"%016x\",\"units\":[{\"argv\":[\"/bin/true\",\"a b\"],\"env\":[]}],"
		"\"limits\":{},\"n\":-1.5e3,\"held\":true,\"grid\":null,"
		"\"reason\":\"waiting: \\\"2\\\" cpus\\n\\u0001\"}";
	_cleanup_free_ char *big = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&big, &len);

	ok(print_same("{\"v\":1,\"ok\":true,\"jobs\":[]}", "jobs"), "print_member: an empty list");
	ok(print_same("{\"v\":1,\"ok\":true,\"jobs\":{}}", "jobs"), "print_member: an empty map");
	ok(print_same(
		   "{ \"jobs\" : [ 1 , \"x\" , [ ] , { \"a\" : { \"b\" : [ null , false ] } } ] , "
		   "\"ok\" : true }",
		   "jobs"),
	   "print_member: nesting, spaces, the member before others");
	ok(print_same(
		   "{\"ok\":true,\"jobs\":[\"\\\"q\\\" \\\\ \\t\\u001B caf\xc3\xa9\",0.25,-0,1e-7]}",
		   "jobs"),
	   "print_member: strings with escapes (as yajl writes them) and UTF-8, numbers as written");
	ok(print_same("{\"a\":\"x\\\\\",\"jobs\":[\"\\\\\\\\\",\"q\\\\\\\"\\\\\\\\\"],"
		      "\"n\":7,\"ok\":true}",
		      "jobs") &&
		   print_same("{\"a\":\"x\\\\\",\"n\":7,\"ok\":true}", "n"),
	   "print_member: strings that end in escaped backslashes or quotes, members after it, "
	   "a member that is a number");
	if (f) {
		fputs("{\"v\":1,\"ok\":true,\"jobs\":[", f);
		for (unsigned i = 0; i < 2000; i++) {
			if (i)
				fputc(',', f);
			fprintf(f, job_fmt, i * 2654435761u);
		}
		fputs("]}", f);
		fclose(f);
	}
	ok(f && big && print_same(big, "jobs"),
	   "print_member: 2,000 jobs (past its 64 KiB buffer) as cli_json_print prints them");
	ok(cli_json_text_ok("{\"ok\":true,\"jobs\":[]}", strlen("{\"ok\":true,\"jobs\":[]}")) == 0,
	   "text_ok: ok true");
	ok(cli_json_text_ok("{\"ok\":false,\"error\":{}}", strlen("{\"ok\":false,\"error\":{}}")) ==
		   -EREMOTEIO,
	   "text_ok: ok false");
	ok(cli_json_text_ok("{\"ok\":true,\"jobs\":[}", strlen("{\"ok\":true,\"jobs\":[}")) ==
		   -EBADMSG,
	   "text_ok: malformed");
	ok(cli_json_text_ok("{\"jobs\":[]}", strlen("{\"jobs\":[]}")) == -EBADMSG,
	   "text_ok: no ok");
	ok(cli_json_text_ok("{\"ok\":\"true\"}", strlen("{\"ok\":\"true\"}")) == -EBADMSG,
	   "text_ok: ok not a boolean");
	{
		FILE *n = fopen("/dev/null", "w");

		ok(n && cli_json_print_member(n, "{\"ok\":true}", strlen("{\"ok\":true}"),
					      "jobs") == -ENOENT,
		   "print_member: no such member");
		if (n)
			fclose(n);
	}
}

int main(void)
{
	test_base64();
	test_run_request_full();
	test_run_request_minimal();
	test_run_parse_errors();
	test_volumes();
	test_sizes();
	test_relative();
	test_state();
	test_command();
	test_framing();
	test_events();
	test_print_member();
	return tap_done();
}
