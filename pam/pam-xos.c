/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* pam_xos: grid logins through PAM (pam_xos(8)).
 *   auth     the user gives the certificate chain and signs xosd's challenge
 *            through the conversation; xosd verifies both and maps the
 *            identity to a local account, which becomes PAM_USER
 *   account  the account this module mapped passes; others are not ours
 *   session  xosd moves the process opening the session into its VO's
 *            cgroup, with the VO's limits: the shell started next is born there
 * It talks to xosd over its socket (module argument socket=PATH). Loaded into
 * root's login programs: no fd left open or inheritable, every read bounded
 * in size and time, nothing of the module's kept past pam_end. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <yajl/yajl_tree.h>

#define DEFAULT_SOCKET "/run/xos/xosd.sock"
#define REPLY_MAX (64 * 1024)
#define CHAIN_MAX (64 * 1024) /* xosd's own limit on a chain */
#define IO_TIMEOUT_S 30
#define DATA_USER "pam_xos_user"
#define DATA_VO "pam_xos_vo"

struct args {
	const char *socket;
	bool debug;
};

static int parse_args(pam_handle_t *pamh, int argc, const char **argv, struct args *a)
{
	*a = (struct args){ .socket = DEFAULT_SOCKET };
	for (int i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "socket=", 7) && argv[i][7] == '/')
			a->socket = argv[i] + 7;
		else if (!strcmp(argv[i], "debug"))
			a->debug = true;
		else {
			pam_syslog(pamh, LOG_ERR, "Unknown argument '%s' (socket=PATH, debug)",
				   argv[i]);
			return -EINVAL;
		}
	}
	return 0;
}

/* ---- a JSON line each way */

struct buf {
	char *p;
	size_t len, cap;
};

static int buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *p = realloc(b->p, cap);

		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
	return 0;
}

static int buf_str(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

/* "key":"value" with value escaped, after a comma unless first. */
static int buf_kv(struct buf *b, const char *key, const char *value)
{
	char esc[8];
	int r = buf_str(b, ",\"");

	if (r >= 0)
		r = buf_str(b, key);
	if (r >= 0)
		r = buf_str(b, "\":\"");
	for (const unsigned char *s = (const unsigned char *)value; r >= 0 && *s; s++) {
		if (*s == '"' || *s == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*s;
			r = buf_add(b, esc, 2);
		} else if (*s < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", *s);
			r = buf_add(b, esc, 6);
		} else
			r = buf_add(b, (const char *)s, 1);
	}
	return r < 0 ? r : buf_str(b, "\"");
}

static int xosd_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = IO_TIMEOUT_S };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

/* Send {"v":1,"op":OP<rest>} and parse the one-line reply. */
static int call(int fd, const char *op, const char *rest, yajl_val *ret)
{
	struct buf req = { 0 };
	char *reply = malloc(REPLY_MAX + 1), err[128];
	size_t len = 0;
	int r = buf_str(&req, "{\"v\":1");

	if (!reply)
		r = -ENOMEM;
	if (r >= 0)
		r = buf_kv(&req, "op", op);
	if (r >= 0)
		r = buf_str(&req, rest);
	if (r >= 0)
		r = buf_str(&req, "}\n");
	for (size_t off = 0; r >= 0 && off < req.len;) {
		ssize_t n = send(fd, req.p + off, req.len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			r = -EIO;
		else
			off += (size_t)n;
	}
	while (r >= 0 && !memchr(reply, '\n', len)) {
		ssize_t n = len < REPLY_MAX ? read(fd, reply + len, REPLY_MAX - len) : 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			r = len < REPLY_MAX ? -EIO : -E2BIG;
		else
			len += (size_t)n;
	}
	if (r >= 0) {
		reply[len] = 0;
		*ret = yajl_tree_parse(reply, err, sizeof(err));
		r = *ret && YAJL_IS_OBJECT(*ret) ? 0 : -EBADMSG;
	}
	free(req.p);
	free(reply);
	return r;
}

static const char *get_str(yajl_val t, const char *key)
{
	const char *path[] = { key, NULL };
	yajl_val v = yajl_tree_get(t, path, yajl_t_string);

	return v ? YAJL_GET_STRING(v) : NULL;
}

static bool reply_ok(yajl_val t)
{
	const char *path[] = { "ok", NULL };

	return YAJL_IS_TRUE(yajl_tree_get(t, path, yajl_t_any));
}

/* The error message of a failed reply. */
static const char *reply_error(yajl_val t)
{
	const char *path[] = { "error", "message", NULL };
	yajl_val v = t ? yajl_tree_get(t, path, yajl_t_string) : NULL;

	return v ? YAJL_GET_STRING(v) : "xosd gave no reason";
}

static bool reply_code_is(yajl_val t, const char *code)
{
	const char *path[] = { "error", "code", NULL };
	yajl_val v = t ? yajl_tree_get(t, path, yajl_t_string) : NULL;
	const char *s = v ? YAJL_GET_STRING(v) : NULL;

	return s && !strcmp(s, code);
}

/* ---- base64 (the chain comes as one line of it) */

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static char *b64_decode(const char *s, size_t max)
{
	size_t n = strlen(s), o = 0;
	char *out = n / 4 * 3 + 1 <= max + 1 ? malloc(n / 4 * 3 + 4) : NULL;
	unsigned acc = 0, bits = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int v = b64_value((unsigned char)s[i]);

		if (s[i] == '=')
			break;
		if (v < 0) {
			free(out);
			return NULL;
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[o] = 0;
	if (strlen(out) != o) { /* a NUL inside: no PEM */
		free(out);
		return NULL;
	}
	return out;
}

/* ---- auth */

static void free_data(pam_handle_t *pamh, void *data, int status)
{
	(void)pamh;
	(void)status;
	free(data);
}

static int ask(pam_handle_t *pamh, int style, char **ret, const char *prompt)
{
	*ret = NULL;
	return pam_prompt(pamh, style, ret, "%s", prompt) == PAM_SUCCESS && *ret ? 0 : -EIO;
}

/* The answer to the challenge: the chain and the signature of text. */
static int converse(pam_handle_t *pamh, const char *text, char **ret_chain, char **ret_sig)
{
	char *b64 = NULL;
	int r = ask(pamh, PAM_PROMPT_ECHO_ON, &b64,
		    "Grid certificate chain (the PEM file, base64 on one line): ");

	*ret_chain = r >= 0 ? b64_decode(b64, CHAIN_MAX) : NULL;
	free(b64);
	if (r < 0)
		return r;
	if (!*ret_chain) {
		pam_error(pamh, "pam_xos: the certificate chain is not base64 of a PEM file");
		return -EINVAL;
	}
	pam_info(pamh,
		 "Sign these %zu bytes with the key of that certificate "
		 "(openssl dgst -sha256 -sign KEY | base64 -w0):\n%s",
		 strlen(text), text);
	return ask(pamh, PAM_PROMPT_ECHO_ON, ret_sig, "Signature (base64): ");
}

static int authenticate(pam_handle_t *pamh, const struct args *a, int fd)
{
	yajl_val ch = NULL, rep = NULL;
	char *chain = NULL, *sig = NULL, *text = NULL;
	struct buf rest = { 0 };
	const char *node, *nonce, *user, *vo;
	int r = call(fd, "auth_challenge", "", &ch), ret = PAM_AUTH_ERR;

	if (r < 0 || !reply_ok(ch) || !(node = get_str(ch, "node")) ||
	    !(nonce = get_str(ch, "nonce"))) {
		pam_error(pamh, "pam_xos: no challenge from xosd: %s",
			  r < 0 ? strerror(-r) : reply_error(ch));
		ret = PAM_AUTHINFO_UNAVAIL;
		goto out;
	}
	if (asprintf(&text, "xos-login-challenge-v1\nnode=%s\nnonce=%s\n", node, nonce) < 0) {
		text = NULL;
		goto out;
	}
	if (converse(pamh, text, &chain, &sig) < 0)
		goto out;
	if (buf_kv(&rest, "chain", chain) < 0 || buf_kv(&rest, "signature", sig) < 0 ||
	    call(fd, "auth", rest.p, &rep) < 0)
		goto out;
	user = get_str(rep, "user");
	vo = get_str(rep, "vo");
	if (!reply_ok(rep) || !user || !vo) {
		pam_error(pamh, "pam_xos: %s", reply_error(rep));
		pam_syslog(pamh, LOG_NOTICE, "Grid login refused: %s", reply_error(rep));
		goto out;
	}
	if (pam_set_item(pamh, PAM_USER, user) != PAM_SUCCESS ||
	    pam_set_data(pamh, DATA_USER, strdup(user), free_data) != PAM_SUCCESS ||
	    pam_set_data(pamh, DATA_VO, strdup(vo), free_data) != PAM_SUCCESS)
		goto out;
	pam_syslog(pamh, LOG_INFO, "Grid login of %s (VO %s) as %s", get_str(rep, "dn"), vo, user);
	if (a->debug)
		pam_info(pamh, "pam_xos: logged in as %s (VO %s)", user, vo);
	ret = PAM_SUCCESS;
out:
	if (ch)
		yajl_tree_free(ch);
	if (rep)
		yajl_tree_free(rep);
	free(chain);
	free(sig);
	free(text);
	free(rest.p);
	return ret;
}

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct args a;
	int fd, ret;

	(void)flags;
	if (parse_args(pamh, argc, argv, &a) < 0)
		return PAM_SERVICE_ERR;
	fd = xosd_connect(a.socket);
	if (fd < 0) {
		pam_syslog(pamh, LOG_ERR, "Cannot reach xosd at %s: %s", a.socket, strerror(-fd));
		return PAM_AUTHINFO_UNAVAIL;
	}
	ret = authenticate(pamh, &a, fd);
	close(fd);
	return ret;
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh;
	(void)flags;
	(void)argc;
	(void)argv;
	return PAM_SUCCESS;
}

/* ---- account: the account this module mapped */

PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	const void *mapped = NULL, *user = NULL;
	struct args a;

	(void)flags;
	if (parse_args(pamh, argc, argv, &a) < 0)
		return PAM_SERVICE_ERR;
	if (pam_get_data(pamh, DATA_USER, &mapped) != PAM_SUCCESS || !mapped)
		return PAM_IGNORE; /* not a grid login of ours */
	if (pam_get_item(pamh, PAM_USER, &user) != PAM_SUCCESS || !user ||
	    strcmp(user, mapped) != 0) {
		pam_syslog(pamh, LOG_ERR, "PAM_USER changed after the grid login (%s)",
			   (const char *)mapped);
		return PAM_PERM_DENIED;
	}
	return PAM_SUCCESS;
}

/* ---- session: into the VO's cgroup */

PAM_EXTERN int pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	const void *user = NULL, *vo = NULL;
	struct buf rest = { 0 };
	yajl_val rep = NULL;
	struct args a;
	int fd, r, ret = PAM_SESSION_ERR;

	(void)flags;
	if (parse_args(pamh, argc, argv, &a) < 0)
		return PAM_SERVICE_ERR;
	if (pam_get_item(pamh, PAM_USER, &user) != PAM_SUCCESS || !user)
		return PAM_USER_UNKNOWN;
	(void)pam_get_data(pamh, DATA_VO, &vo);
	fd = xosd_connect(a.socket);
	if (fd < 0) {
		pam_syslog(pamh, LOG_ERR, "Cannot reach xosd at %s: %s", a.socket, strerror(-fd));
		return PAM_SESSION_ERR;
	}
	r = buf_kv(&rest, "user", user);
	if (r >= 0 && vo)
		r = buf_kv(&rest, "vo", vo);
	if (r >= 0)
		r = call(fd, "session_open", rest.p, &rep);
	close(fd);
	if (r >= 0 && reply_ok(rep)) {
		ret = PAM_SUCCESS;
	} else if (r >= 0 && !vo && reply_code_is(rep, "not_found")) {
		ret = PAM_IGNORE; /* a local account: not a VO's session */
	} else {
		pam_error(pamh, "pam_xos: %s", r < 0 ? strerror(-r) : reply_error(rep));
		pam_syslog(pamh, LOG_ERR, "No VO session for %s: %s", (const char *)user,
			   r < 0 ? strerror(-r) : reply_error(rep));
	}
	if (rep)
		yajl_tree_free(rep);
	free(rest.p);
	return ret;
}

PAM_EXTERN int pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh;
	(void)flags;
	(void)argc;
	(void)argv;
	return PAM_SUCCESS;
}
