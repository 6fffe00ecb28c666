/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The connection to xosd: connect, send one request line, read JSON lines
 * with a size cap; error messages at the command boundary. */
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "cli/cli.h"

const char *cli_socket_path(const char *opt)
{
	const char *env;

	if (opt && *opt)
		return opt;
	env = getenv("XOS_SOCKET");
	if (env && *env)
		return env;
	return XOS_DEFAULT_SOCKET;
}

void cli_conn_done(struct cli_conn *c)
{
	int saved = errno;

	if (c->fd >= 0)
		close(c->fd);
	c->fd = -EBADF;
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = c->scanned = 0;
	free(c->error);
	c->error = NULL;
	if (c->passed_fd >= 0)
		close(c->passed_fd);
	c->passed_fd = -EBADF;
	errno = saved;
}

int cli_conn_open(const char *path, struct cli_conn *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -EBADF;
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, n + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		if (errno != EINTR)
			return -errno;
	c->fd = TAKE_FD(fd);
	c->path = path;
	return 0;
}

int cli_conn_send(struct cli_conn *c, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EPIPE ? -ECONNRESET : -errno;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static int conn_grow(struct cli_conn *c)
{
	size_t want;
	char *p;

	if (c->cap - c->len >= 4096)
		return 0;
	want = c->cap ? c->cap * 2 : 65536;
	if (want > CLI_RESPONSE_MAX + 65536)
		want = CLI_RESPONSE_MAX + 65536;
	if (want <= c->len)
		return -EMSGSIZE;
	p = realloc(c->buf, want);
	if (!p)
		return -ENOMEM;
	c->buf = p;
	c->cap = want;
	return 0;
}

int cli_conn_fill(struct cli_conn *c)
{
	ssize_t n;
	int r;

	r = conn_grow(c);
	if (r < 0)
		return r;
	do
		n = recv_with_fd(c->fd, c->buf + c->len, c->cap - c->len, 0, &c->passed_fd);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? -EAGAIN : -errno;
	c->len += (size_t)n;
	return (int)(n > 0);
}

int cli_conn_next(struct cli_conn *c, yajl_val *ret)
{
	for (;;) {
		char *nl = c->len > c->scanned
				   ? memchr(c->buf + c->scanned, '\n', c->len - c->scanned)
				   : NULL;
		size_t used;
		int r = 0;

		if (!nl) {
			c->scanned = c->len;
			return c->len > CLI_RESPONSE_MAX ? -EMSGSIZE : 0;
		}
		*nl = '\0';
		used = (size_t)(nl - c->buf) + 1;
		if (used > 1) /* blank lines are skipped */
			r = cli_json_parse(c->buf, ret);
		memmove(c->buf, c->buf + used, c->len - used);
		c->len -= used;
		c->scanned = 0;
		if (r < 0)
			return r;
		if (used > 1)
			return 1;
	}
}

/* The next message's text, taken out of the buffer (NUL-terminated, the
 * newline cut): 1, 0 if no complete line is buffered, -EMSGSIZE. */
static int conn_next_text(struct cli_conn *c, char **ret, size_t *ret_len)
{
	for (;;) {
		char *nl = c->len > c->scanned
				   ? memchr(c->buf + c->scanned, '\n', c->len - c->scanned)
				   : NULL;
		size_t used;
		char *text;

		if (!nl) {
			c->scanned = c->len;
			return c->len > CLI_RESPONSE_MAX ? -EMSGSIZE : 0;
		}
		used = (size_t)(nl - c->buf) + 1;
		if (used == 1) { /* blank lines are skipped */
			memmove(c->buf, c->buf + 1, c->len - 1);
			c->len--;
			c->scanned = 0;
			continue;
		}
		text = malloc(used);
		if (!text)
			return -ENOMEM;
		memcpy(text, c->buf, used - 1);
		text[used - 1] = '\0';
		memmove(c->buf, c->buf + used, c->len - used);
		c->len -= used;
		c->scanned = 0;
		*ret = text;
		*ret_len = used - 1;
		return 1;
	}
}

static int conn_call_text(struct cli_conn *c, const char *req, size_t len, char **ret,
			  size_t *ret_len)
{
	int r = cli_conn_send(c, req, len);

	if (r < 0)
		return r;
	for (;;) {
		r = conn_next_text(c, ret, ret_len);
		if (r != 0)
			return r < 0 ? r : 0;
		r = cli_conn_fill(c);
		if (r == 0)
			return -ECONNRESET;
		if (r < 0)
			return r;
	}
}

int cli_conn_recv(struct cli_conn *c, yajl_val *ret)
{
	for (;;) {
		int r = cli_conn_next(c, ret);

		if (r != 0)
			return r;
		r = cli_conn_fill(c);
		if (r == 0)
			return -ECONNRESET;
		if (r < 0)
			return r;
	}
}

int cli_conn_check(struct cli_conn *c, yajl_val resp)
{
	yajl_val err;
	const char *msg;

	if (cli_json_true(resp, "ok"))
		return 0;
	if (!YAJL_IS_FALSE(cli_json_get(resp, "ok")))
		return -EBADMSG;
	err = cli_json_get(resp, "error");
	msg = cli_json_string(err, "message");
	if (!msg)
		msg = cli_json_string(err, "code");
	free(c->error);
	c->error = strdup(msg ? msg : "xosd refused the request without saying why");
	if (!c->error)
		return -ENOMEM;
	return -EREMOTEIO;
}

int cli_conn_call(struct cli_conn *c, const char *req, size_t len, yajl_val *ret)
{
	_cleanup_json_ yajl_val resp = NULL;
	int r;

	r = cli_conn_send(c, req, len);
	if (r < 0) {
		/* xosd may have refused the connection at once (too many of
		 * this user's, or no fd left): its reason is there to read */
		if (r == -ECONNRESET && cli_conn_recv(c, &resp) > 0 && cli_conn_check(c, resp) < 0)
			return -EREMOTEIO;
		return r;
	}
	r = cli_conn_recv(c, &resp);
	if (r < 0)
		return r;
	r = cli_conn_check(c, resp);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(resp);
	return 0;
}

/* ---- messages ---- */

/* Messages may quote the daemon or the user: no control characters. */
void cli_errorf(const char *prog, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0) {
		msg = NULL;
		n = 0;
	}
	for (int i = 0; i < n; i++)
		if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f)
			msg[i] = '?';
	fflush(stdout);
	fprintf(stderr, "%s: %s\n", prog, msg ? msg : "Out of memory");
}

void cli_report(const char *prog, const struct cli_conn *c, int r)
{
	switch (r) {
	case -EREMOTEIO:
		cli_errorf(prog, "%s", c && c->error ? c->error : "Request refused");
		break;
	case -ECONNRESET:
	case -EPIPE:
		cli_errorf(prog, "Lost connection to xosd");
		break;
	case -EBADMSG:
		cli_errorf(prog, "Malformed response from xosd");
		break;
	case -EMSGSIZE:
		cli_errorf(prog, "Response from xosd is larger than %u MiB",
			   CLI_RESPONSE_MAX / (1024 * 1024));
		break;
	case -E2BIG:
		cli_errorf(prog, "Request too large: the limit is %d MiB",
			   XOS_REQUEST_MAX / (1024 * 1024));
		break;
	case -EILSEQ:
		cli_errorf(prog, "An argument is not valid UTF-8: xosd accepts text only");
		break;
	default:
		cli_errorf(prog, "Failed to talk to xosd: %s", strerror(r < 0 ? -r : r));
	}
}

int cli_open(const char *prog, const char *socket_opt, struct cli_conn *c)
{
	const char *path = cli_socket_path(socket_opt);
	int r = cli_conn_open(path, c);

	if (r < 0) {
		cli_errorf(prog, "Cannot connect to xosd at %s: %s; is xosd running?", path,
			   strerror(-r));
		return r;
	}
	return cli_grid_login(prog, c);
}

int cli_call(const char *prog, struct cli_conn *c, const char *req, size_t len, yajl_val *ret)
{
	int r = cli_conn_call(c, req, len, ret);

	if (r < 0)
		cli_report(prog, c, r);
	return r;
}

/* End the request built in g and connect c (errors printed). */
static int request_open(const char *prog, const char *socket_opt, yajl_gen g, int build,
			struct cli_conn *c, char **ret_req, size_t *ret_len)
{
	int r = build;

	if (r >= 0)
		r = cli_request_end(g, ret_req, ret_len);
	if (r < 0) {
		cli_report(prog, NULL, r);
		return r;
	}
	return cli_open(prog, socket_opt, c);
}

int cli_request_call(const char *prog, const char *socket_opt, yajl_gen g, int build,
		     struct cli_conn *c, yajl_val *ret)
{
	_cleanup_cli_conn_ struct cli_conn own = CLI_CONN_INIT;
	_cleanup_free_ char *req = NULL;
	size_t len;
	int r;

	if (!c)
		c = &own;
	r = request_open(prog, socket_opt, g, build, c, &req, &len);
	return r < 0 ? r : cli_call(prog, c, req, len, ret);
}

int cli_request_call_text(const char *prog, const char *socket_opt, yajl_gen g, int build,
			  char **ret, size_t *ret_len)
{
	_cleanup_cli_conn_ struct cli_conn c = CLI_CONN_INIT;
	_cleanup_free_ char *req = NULL, *text = NULL;
	size_t len, tlen = 0;
	int r = request_open(prog, socket_opt, g, build, &c, &req, &len);

	if (r < 0)
		return r;
	r = conn_call_text(&c, req, len, &text, &tlen);
	if (r >= 0)
		r = cli_json_text_ok(text, tlen);
	if (r == -EREMOTEIO) { /* refused: the daemon's message */
		_cleanup_json_ yajl_val resp = NULL;

		r = cli_json_parse(text, &resp);
		if (r >= 0)
			r = cli_conn_check(&c, resp);
	}
	if (r < 0) {
		cli_report(prog, &c, r);
		return r;
	}
	*ret = TAKE_PTR(text);
	*ret_len = tlen;
	return 0;
}
