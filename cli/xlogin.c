/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xlogin: log this session in with a grid credential (asking the key's
 * passphrase once) and leave an agent that signs the challenges of xosd for
 * the commands of this session; xlogin --status; xlogout. */
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>

#include <openssl/evp.h>

#include "cli/cli.h"
#include "cli/login-internal.h"
#include "credstore/credstore.h"

#define CRED_FILE_MAX (64 * 1024)

enum { OPT_CERT = CLI_OPT_MAX, OPT_KEY, OPT_PROXY, OPT_STATUS, OPT_PASSFD };

struct login_opts {
	const char *cert, *key, *proxy;
	bool status;
	int passfd;
};

static const struct option login_options[] = {
	{ "cert", required_argument, NULL, OPT_CERT },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "proxy", required_argument, NULL, OPT_PROXY },
	{ "status", no_argument, NULL, OPT_STATUS },
	{ "passphrase-fd", required_argument, NULL, OPT_PASSFD },
	CLI_COMMON_OPTIONS,
	{},
};

static int login_option(const char *prog, int opt, const char *arg, void *data)
{
	struct login_opts *o = data;

	switch (opt) {
	case OPT_CERT:
		o->cert = arg;
		return 0;
	case OPT_KEY:
		o->key = arg;
		return 0;
	case OPT_PROXY:
		o->proxy = arg;
		return 0;
	case OPT_STATUS:
		o->status = true;
		return 0;
	case OPT_PASSFD:
		if (parse_int(arg, &o->passfd) < 0 || o->passfd < 0) {
			cli_errorf(prog, "Invalid --passphrase-fd '%s': give a file descriptor",
				   arg);
			return -EINVAL;
		}
		return 0;
	}
	return -EINVAL;
}

static const struct cli_command login_command = {
	.shortopts = ":",
	.options = login_options,
	.synopsis = "--cert FILE --key FILE | --proxy FILE | --status",
	.help = "Log this session in with a grid credential: a certificate your VO's CA\n"
		"issued and its key, or an RFC 3820 proxy file. The key's passphrase is\n"
		"asked once; an agent of this session then logs in the connections of\n"
		"xrun, xps, xkill, ... (they run as the account the node maps you to) until\n"
		"xlogout, the credential's expiry or the end of the session.\n"
		"\n"
		"      --cert FILE            Your certificate (PEM)\n"
		"      --key FILE             Its private key (PEM, encrypted or not)\n"
		"      --proxy FILE           A proxy file: certificate, key and chain\n"
		"      --status               Show the identity, VO, role and expiry\n"
		"      --passphrase-fd N      Read the passphrase from file descriptor N\n",
	.help_pad = 9,
	.help_end = "\nxlogout ends the login.\n",
	.operand = NULL,
	.option = login_option,
};

static int read_cred(const char *prog, const char *path, char **ret, size_t *ret_len)
{
	int r = read_file_at(AT_FDCWD, path, CRED_FILE_MAX, ret, ret_len);

	if (r < 0)
		cli_errorf(prog, "Cannot read %s: %s", path, strerror(-r));
	return r;
}

/* The passphrase: from --passphrase-fd, else asked on the terminal. */
static int get_passphrase(const char *prog, const struct login_opts *o, const char *keyfile,
			  char *buf, size_t len)
{
	_cleanup_close_ int tty = -EBADF;
	struct termios old, quiet;
	ssize_t n;
	int fd = o->passfd;

	if (fd < 0) {
		tty = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
		if (tty < 0 || tcgetattr(tty, &old) < 0) {
			cli_errorf(prog,
				   "The key in %s is encrypted: give its passphrase on a "
				   "terminal or with --passphrase-fd",
				   keyfile);
			return -ENOTTY;
		}
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		dprintf(tty, "Passphrase for %s: ", keyfile);
		(void)tcsetattr(tty, TCSAFLUSH, &quiet);
		fd = tty;
	}
	n = read(fd, buf, len - 1);
	if (tty >= 0) {
		(void)tcsetattr(tty, TCSAFLUSH, &old);
		dprintf(tty, "\n");
	}
	if (n < 0)
		return -errno;
	buf[n] = 0;
	buf[strcspn(buf, "\r\n")] = 0;
	return 0;
}

static int load_key(const char *prog, const struct login_opts *o, const char *keyfile,
		    struct agent *a)
{
	_cleanup_free_ char *text = NULL, *err = NULL;
	char pass[1024] = "";
	size_t len;
	int r = read_cred(prog, keyfile, &text, &len);

	if (r < 0)
		return r;
	if (strstr(text, "ENCRYPTED") &&
	    (r = get_passphrase(prog, o, keyfile, pass, sizeof(pass))) < 0) {
		explicit_bzero(text, len);
		return r;
	}
	r = credstore_load_key(text, len, pass[0] ? pass : NULL, &a->key, &err);
	explicit_bzero(pass, sizeof(pass));
	explicit_bzero(text, len);
	if (r < 0)
		cli_errorf(prog, "%s (%s)", err ? err : "Cannot read the key", keyfile);
	return r;
}

static int load_credential(const char *prog, const struct login_opts *o, struct agent *a)
{
	_cleanup_free_ char *text = NULL;
	const char *certfile = o->proxy ? o->proxy : o->cert;
	struct credstore_identity id = { 0 };
	size_t len;
	int r = read_cred(prog, certfile, &text, &len);

	if (r < 0 || (r = load_key(prog, o, o->proxy ? o->proxy : o->key, a)) < 0)
		goto out;
	r = credstore_chain_pem(text, len, &a->chain, &a->chain_len);
	if (r < 0) {
		cli_errorf(prog, "No certificate in %s (PEM expected)", certfile);
		goto out;
	}
	if (credstore_key_matches(a->key, a->chain, a->chain_len) < 0) {
		cli_errorf(prog,
			   "The key does not match the certificate in %s: give the key "
			   "that belongs to it",
			   certfile);
		r = -EACCES;
		goto out;
	}
	r = credstore_chain_describe(a->chain, a->chain_len, &id);
	a->not_after = id.not_after;
	credstore_identity_done(&id);
out:
	if (text)
		explicit_bzero(text, len);
	return r;
}

static int agent_listen(const char *prog, struct agent *a)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -EBADF;
	char dir[256];
	struct stat st;
	int r = cli_agent_dir(dir, sizeof(dir));

	if (r < 0 || (mkdir(dir, 0700) < 0 && errno != EEXIST) || lstat(dir, &st) < 0 ||
	    !S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077)) {
		cli_errorf(prog, "%s must be a directory of yours with mode 0700", dir);
		return -EPERM;
	}
	if (cli_agent_path(a->sid, a->path, sizeof(a->path)) < 0)
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, a->path, strlen(a->path) + 1);
	(void)unlink(a->path); /* a stale one: a live agent answered no ping */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
		cli_errorf(prog, "Cannot listen on %s: %s", a->path, strerror(errno));
		return -errno;
	}
	return TAKE_FD(fd);
}

static void print_time(FILE *f, time_t t)
{
	struct tm tm;
	char buf[64];

	if (gmtime_r(&t, &tm) && strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm))
		fputs(buf, f);
	else
		fprintf(f, "%lld", (long long)t);
}

/* xlogin signs its own challenge: the agent starts only once xosd has
 * accepted the credential. */
static int self_signer(const char *prog, const char *node, const char *nonce, void *userdata,
		       char **ret_sig, char **ret_chain)
{
	const struct agent *a = userdata;
	_cleanup_free_ void *sig = NULL;
	char text[512];
	size_t len = 0;
	int n = credstore_challenge_text(node, nonce, text, sizeof(text));

	if (n < 0 || credstore_sign_key(a->key, text, (size_t)n, &sig, &len) < 0) {
		cli_errorf(prog, "Cannot sign xosd's challenge");
		return -EIO;
	}
	*ret_sig = base64_encode(sig, len);
	*ret_chain = strndup(a->chain, a->chain_len);
	return *ret_sig && *ret_chain ? 0 : -ENOMEM;
}

/* Log in with xosd: a refused credential fails here. */
static int check_with_xosd(const char *prog, const char *socket, struct agent *a)
{
	_cleanup_cli_conn_ struct cli_conn c = CLI_CONN_INIT;
	_cleanup_json_ yajl_val resp = NULL;
	const char *path = cli_socket_path(socket);
	int r = cli_conn_open(path, &c);

	if (r < 0) {
		cli_errorf(prog, "Cannot connect to xosd at %s: %s; is xosd running?", path,
			   strerror(-r));
		return r;
	}
	r = cli_grid_login_with(prog, &c, self_signer, a, &resp);
	if (r < 0)
		return r;
	printf("Logged in as %s (VO %s, %s%s), account %s\n", cli_json_string(resp, "dn"),
	       cli_json_string(resp, "vo"), cli_json_string(resp, "role"),
	       cli_json_true(resp, "proxy") ? ", proxy" : "", cli_json_string(resp, "user"));
	return 0;
}

static int start_agent(const char *prog, struct agent *a)
{
	_cleanup_close_ int lfd = agent_listen(prog, a);
	pid_t pid;

	if (lfd < 0)
		return lfd;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		cli_errorf(prog, "Cannot start the login agent: %s", strerror(errno));
		return -errno;
	}
	if (pid == 0) {
		int fd = cli_agent_detach(lfd);

		_exit(fd < 0 || cli_agent_run(a, fd) < 0 ? 1 : 0);
	}
	return 0;
}

static int do_login(const char *prog, const struct login_opts *o, const char *socket)
{
	struct agent a = { .uid = getuid(), .sid = getsid(0) };
	_cleanup_free_ char *reply = NULL;
	int r;

	if (!(o->proxy ? !o->cert && !o->key : o->cert && o->key)) {
		cli_errorf(prog, "Give --cert FILE and --key FILE, or --proxy FILE");
		return CLI_EXIT_USAGE;
	}
	if (a.sid <= 0) {
		/* getsid gives 0 for a process of no session (its ancestors back
		 * to init never called setsid, as under some sandboxes and service
		 * managers) or of a session whose leader is outside our PID
		 * namespace: no session to tie the login to, nor to watch end */
		cli_errorf(prog, "This process belongs to no session this login could be tied to "
				 "(session id 0); start a session of your own (setsid bash)");
		return CLI_EXIT_FAILURE;
	}
	if (cli_agent_call("ping\n", &reply) == 0) {
		cli_errorf(prog, "This session is logged in already (xlogin --status); run "
				 "xlogout first");
		return CLI_EXIT_FAILURE;
	}
	r = load_credential(prog, o, &a);
	if (r >= 0)
		r = check_with_xosd(prog, socket, &a);
	if (r >= 0)
		r = start_agent(prog, &a);
	EVP_PKEY_free(a.key);
	free(a.chain);
	if (r < 0)
		return CLI_EXIT_FAILURE;
	printf("Valid until ");
	print_time(stdout, a.not_after);
	printf("; xlogout ends the login\n");
	return 0;
}

static int do_status(const char *prog)
{
	_cleanup_free_ char *reply = NULL, *chain = NULL;
	struct credstore_identity id = { 0 };
	char *space;
	size_t len;
	int r = cli_agent_call("status\n", &reply);

	if (r < 0) {
		printf("Not logged in\n");
		return CLI_EXIT_FAILURE;
	}
	space = strchr(reply, ' ');
	if (!space || base64_decode(space + 1, strlen(space + 1), &chain, &len) < 0 ||
	    credstore_chain_describe(chain, len, &id) < 0) {
		cli_errorf(prog, "The login agent sent a malformed status");
		return CLI_EXIT_FAILURE;
	}
	printf("Identity: %s\nVO:       %s\nRole:     %s\nProxy:    %s\nExpires:  ", id.dn, id.vo,
	       credstore_role_to_string(id.role) ?: "?", id.proxy ? "yes" : "no");
	print_time(stdout, id.not_after);
	putchar('\n');
	credstore_identity_done(&id);
	return 0;
}

static int do_logout(void)
{
	_cleanup_free_ char *reply = NULL;

	if (cli_agent_call("logout\n", &reply) < 0) {
		printf("Not logged in\n");
		return CLI_EXIT_FAILURE;
	}
	printf("Logged out\n");
	return 0;
}

static const struct option logout_options[] = {
	CLI_COMMON_OPTIONS,
	{},
};

static const struct cli_command logout_command = {
	.shortopts = ":",
	.options = logout_options,
	.synopsis = "",
	.help = "End this session's grid login (xlogin): its agent forgets the key.\n\n",
	.help_pad = 8,
	.help_end = "",
};

int cli_xlogin_main(const char *prog, int argc, char **argv)
{
	struct login_opts o = { .passfd = -1 };
	const char *socket = NULL;
	int r;

	if (!strcmp(prog, "xlogout")) {
		r = cli_parse_options(prog, &logout_command, argc, argv, &socket, NULL);
		return r != 0 ? (r > 0 ? 0 : CLI_EXIT_USAGE) : do_logout();
	}
	r = cli_parse_options(prog, &login_command, argc, argv, &socket, &o);
	if (r != 0)
		return r > 0 ? 0 : CLI_EXIT_USAGE;
	if (o.status)
		return do_status(prog);
	return do_login(prog, &o, socket);
}
