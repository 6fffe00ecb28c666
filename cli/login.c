/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Grid logins on the client side: every command that connects to xosd looks
 * for the login agent of its session (xlogin started it) and, when there is
 * one, logs the connection in: xosd's challenge goes to the agent, which
 * signs it with the key it holds; the chain and the signature go back to
 * xosd. The commands themselves never see a key and do not load libcrypto. */
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "cli/cli.h"

#define AGENT_REPLY_MAX (256 * 1024)
#define AGENT_TIMEOUT_MS 5000

int cli_agent_dir(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (xdg && xdg[0] == '/')
		n = snprintf(buf, len, "%s/xos", xdg);
	else
		n = snprintf(buf, len, "/tmp/xos-%u", (unsigned)getuid());
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int cli_agent_path(pid_t sid, char *buf, size_t len)
{
	char dir[256];
	int n, r = cli_agent_dir(dir, sizeof(dir));

	if (r < 0)
		return r;
	n = snprintf(buf, len, "%s/agent-%d.sock", dir, (int)sid);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* The directory must be ours, 0700, no symlink: another user could
 * otherwise put an agent of theirs in our way. */
static int check_dir(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077))
		return -EPERM;
	return 0;
}

static int agent_connect(int *ret_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -EBADF;
	char dir[256];
	int r = cli_agent_dir(dir, sizeof(dir));

	if (r < 0 || (r = check_dir(dir)) < 0)
		return r;
	if (getsid(0) <= 0) /* a leader outside our PID namespace: no session */
		return -ESRCH;
	r = cli_agent_path(getsid(0), sa.sun_path, sizeof(sa.sun_path));
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		if (errno != EINTR)
			return -errno;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static int read_line(int fd, char **ret)
{
	_cleanup_free_ char *buf = malloc(AGENT_REPLY_MAX);
	size_t len = 0;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;
		char *nl;

		if (poll(&p, 1, AGENT_TIMEOUT_MS) == 0)
			return -ETIMEDOUT;
		n = read(fd, buf + len, AGENT_REPLY_MAX - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ECONNRESET;
		len += (size_t)n;
		buf[len] = 0;
		nl = memchr(buf, '\n', len);
		if (nl) {
			*nl = 0;
			*ret = TAKE_PTR(buf);
			return 0;
		}
		if (len >= AGENT_REPLY_MAX - 1)
			return -EMSGSIZE;
	}
}

int cli_agent_call(const char *request, char **ret_reply)
{
	_cleanup_close_ int fd = -EBADF;
	_cleanup_free_ char *reply = NULL;
	int r = agent_connect(&fd);

	if (r < 0)
		return r;
	if (loop_write(fd, request, strlen(request)) < 0)
		return -errno;
	r = read_line(fd, &reply);
	if (r < 0)
		return r;
	if (str_has_prefix(reply, "err ")) {
		*ret_reply = strdup(reply + 4);
		return *ret_reply ? -EACCES : -ENOMEM;
	}
	if (strcmp(reply, "ok") != 0 && !str_has_prefix(reply, "ok "))
		return -EBADMSG;
	*ret_reply = strdup(reply[2] ? reply + 3 : "");
	return *ret_reply ? 0 : -ENOMEM;
}

static bool no_agent(int r)
{
	/* (a directory that is not ours is not our agent's either) */
	return r == -ENOENT || r == -ECONNREFUSED || r == -ENOTDIR || r == -EPERM || r == -EACCES;
}

/* Ask the agent to sign the challenge; its reply: "SIG64 CHAIN64". */
static int agent_sign(const char *prog, const char *node, const char *nonce, char **ret_sig,
		      char **ret_chain)
{
	_cleanup_free_ char *req = xstrdup_printf("sign %s %s\n", node, nonce), *reply = NULL;
	char *space;
	size_t n;
	int r;

	if (!req || strpbrk(node, " \n") || strpbrk(nonce, " \n"))
		return -EINVAL;
	r = cli_agent_call(req, &reply);
	if (r == -EACCES) {
		cli_errorf(prog, "Your grid login cannot sign: %s", reply);
		return r;
	}
	if (r < 0 || !(space = strchr(reply, ' '))) {
		cli_errorf(prog, "Your grid login's agent failed: %s; run xlogin again",
			   strerror(r < 0 ? -r : EBADMSG));
		return r < 0 ? r : -EBADMSG;
	}
	*space = 0;
	*ret_sig = strdup(reply);
	r = base64_decode(space + 1, strlen(space + 1), ret_chain, &n);
	return *ret_sig && r >= 0 ? 0 : -ENOMEM;
}

static int send_auth(const char *prog, struct cli_conn *c, const char *sig, const char *chain,
		     yajl_val *ret)
{
	_cleanup_gen_ yajl_gen g = NULL;
	_cleanup_json_ yajl_val resp = NULL;
	_cleanup_free_ char *req = NULL;
	size_t len;
	int r = cli_request_begin("auth", &g);

	if (r >= 0)
		r = cli_gen_str(g, "chain", chain);
	if (r >= 0)
		r = cli_gen_str(g, "signature", sig);
	if (r >= 0)
		r = cli_request_end(g, &req, &len);
	if (r < 0) {
		cli_report(prog, NULL, r);
		return r;
	}
	r = cli_conn_call(c, req, len, &resp);
	if (r == -EREMOTEIO)
		cli_errorf(prog, "Grid login refused by xosd: %s", c->error);
	else if (r < 0)
		cli_report(prog, c, r);
	else if (ret)
		*ret = TAKE_PTR(resp);
	return r;
}

/* The agent of this session as a signer. */
static int agent_signer(const char *prog, const char *node, const char *nonce, void *userdata,
			char **ret_sig, char **ret_chain)
{
	return agent_sign(prog, node, nonce, ret_sig, ret_chain);
}

int cli_grid_login_with(const char *prog, struct cli_conn *c, cli_signer_fn sign, void *userdata,
			yajl_val *ret)
{
	_cleanup_gen_ yajl_gen g = NULL;
	_cleanup_json_ yajl_val resp = NULL;
	_cleanup_free_ char *req = NULL, *sig = NULL, *chain = NULL;
	const char *nonce, *node;
	size_t len;
	int r = cli_request_begin("auth_challenge", &g);

	if (r >= 0)
		r = cli_request_end(g, &req, &len);
	if (r >= 0)
		r = cli_conn_call(c, req, len, &resp);
	if (r == -EREMOTEIO)
		cli_errorf(prog, "Grid login refused by xosd: %s", c->error);
	else if (r < 0)
		cli_report(prog, c, r);
	if (r < 0)
		return r;
	nonce = cli_json_string(resp, "nonce");
	node = cli_json_string(resp, "node");
	if (!nonce || !node) {
		cli_report(prog, c, -EBADMSG);
		return -EBADMSG;
	}
	r = sign(prog, node, nonce, userdata, &sig, &chain);
	if (r < 0)
		return r;
	return send_auth(prog, c, sig, chain, ret);
}

int cli_grid_login(const char *prog, struct cli_conn *c)
{
	_cleanup_free_ char *probe = NULL;
	int r = cli_agent_call("ping\n", &probe);

	if (no_agent(r))
		return 0; /* not logged in: the local user */
	return cli_grid_login_with(prog, c, agent_signer, NULL, NULL);
}
