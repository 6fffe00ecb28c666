/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* cli: the user commands (xrun xps xlogs xwait xkill), thin clients of xosd.
 * The one public header of cli/. The wire protocol is docs/PROTOCOL.md section 1. */
#ifndef XOS_CLI_H
#define XOS_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <termios.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "common/common.h"

/* Longest line accepted from the daemon (a ps listing, an output event). */
#define CLI_RESPONSE_MAX (64u * 1024 * 1024)
/* Width of the COMMAND column of xps. */
#define CLI_COMMAND_WIDTH 40

/* Exit statuses: xrun and xwait use docker's 125 for xos errors (usage
 * included); the other commands use 1 for errors and 2 for usage errors. */
#define CLI_EXIT_XOS 125
#define CLI_EXIT_FAILURE 1
#define CLI_EXIT_USAGE 2

/* ---- JSON helpers (json.c) ---- */
yajl_val cli_json_get(yajl_val obj, const char *key);       /* NULL if absent */
const char *cli_json_string(yajl_val obj, const char *key); /* NULL if absent/not a string */
/* -ENOENT if absent or null, -EINVAL if not an integer. */
int cli_json_int(yajl_val obj, const char *key, int64_t *ret);
bool cli_json_true(yajl_val obj, const char *key);
/* Parse one message (NUL-terminated); -EBADMSG unless it is a JSON object. */
int cli_json_parse(const char *text, yajl_val *ret);
/* Emit a parsed tree into a generator. */
int cli_json_gen_value(yajl_gen g, yajl_val v);
/* Print v as indented JSON, newline-terminated. */
int cli_json_print(FILE *f, yajl_val v);
/* text, a whole response: 0 if it is valid JSON whose member "ok" is true
 * (the caller then prints from it), -EREMOTEIO if "ok" is false (the caller
 * parses it for the daemon's message), -EBADMSG else. */
int cli_json_text_ok(const char *text, size_t len);
/* Print the member key of the object text (checked by cli_json_text_ok) as
 * cli_json_print would print it, copied from the text token by token: no
 * tree, no encoding again. -ENOENT without that member. */
int cli_json_print_member(FILE *f, const char *text, size_t len, const char *key);

/* Request building: cli_request_begin() opens {"v":1,"op":OP; the cli_gen_*
 * helpers add one field; cli_request_end() closes it and returns the line
 * (newline-terminated, NUL-terminated). -EILSEQ for text that is not UTF-8,
 * -E2BIG past XOS_REQUEST_MAX. */
int cli_request_begin(const char *op, yajl_gen *ret);
int cli_gen_str(yajl_gen g, const char *key, const char *val);
int cli_gen_int(yajl_gen g, const char *key, int64_t val);
int cli_gen_bool(yajl_gen g, const char *key, bool val);
int cli_gen_strv(yajl_gen g, const char *key, char *const *v);
int cli_request_end(yajl_gen g, char **ret, size_t *ret_len);

/* ---- connection to xosd (client.c) ---- */
struct cli_conn {
	int fd;
	const char *path;
	char *buf;
	size_t len;     /* bytes held in buf */
	size_t cap;     /* bytes allocated */
	size_t scanned; /* prefix of buf known to hold no newline */
	char *error;    /* the daemon's error.message of the last failed call */
	int passed_fd;  /* an fd the daemon passed (SCM_RIGHTS), or -1 */
};
#define CLI_CONN_INIT                             \
	{                                         \
		.fd = -EBADF, .passed_fd = -EBADF \
	}
void cli_conn_done(struct cli_conn *c);
#define _cleanup_cli_conn_ _cleanup_(cli_conn_done)

/* --socket, else $XOS_SOCKET, else the default. */
const char *cli_socket_path(const char *opt);
int cli_conn_open(const char *path, struct cli_conn *c);
int cli_conn_send(struct cli_conn *c, const char *data, size_t len);
/* One read(): >0 bytes, 0 at end of stream, -errno. */
int cli_conn_fill(struct cli_conn *c);
/* Take the next complete message out of the buffer: 1 and *ret, 0 if no
 * complete line is buffered, -EBADMSG for a malformed one, -EMSGSIZE. */
int cli_conn_next(struct cli_conn *c, yajl_val *ret);
/* Blocking: next message; -ECONNRESET at end of stream. */
int cli_conn_recv(struct cli_conn *c, yajl_val *ret);
/* 0 if resp says ok:true; -EREMOTEIO with c->error set if ok:false. */
int cli_conn_check(struct cli_conn *c, yajl_val resp);
/* Send a request and read its response: -EREMOTEIO with c->error set when
 * the daemon says ok:false. */
int cli_conn_call(struct cli_conn *c, const char *req, size_t len, yajl_val *ret);

/* Errors at the command boundary: "prog: message". */
void cli_errorf(const char *prog, const char *fmt, ...) _printf_(2, 3);
/* Connect, printing "Cannot connect to xosd at PATH: ...; is xosd running?". */
int cli_open(const char *prog, const char *socket_opt, struct cli_conn *c);
/* cli_conn_call(), printing what went wrong. */
int cli_call(const char *prog, struct cli_conn *c, const char *req, size_t len, yajl_val *ret);
/* Print the message for r, the result of a cli_conn_* call. */
void cli_report(const char *prog, const struct cli_conn *c, int r);
/* End the request built in g (build: the result of building it so far; a
 * failure is reported), connect to xosd on c (NULL: a connection closed on
 * return) and call. Every error is printed; -errno. */
int cli_request_call(const char *prog, const char *socket_opt, yajl_gen g, int build,
		     struct cli_conn *c, yajl_val *ret);
/* The same, the response taken as text (*ret, the caller's to free) and
 * given only when it says ok:true: for a listing too large to make a tree
 * of (cli_json_print_member). */
int cli_request_call_text(const char *prog, const char *socket_opt, yajl_gen g, int build,
			  char **ret, size_t *ret_len);

/* ---- grid logins (login.c) ---- */
/* Where the login agent of session sid listens: $XDG_RUNTIME_DIR/xos, else
 * /tmp/xos-UID (the user's own, 0700), agent-SID.sock. */
int cli_agent_dir(char *buf, size_t len);
int cli_agent_path(pid_t sid, char *buf, size_t len);
/* One request line to this session's agent: 0 and the text after "ok ",
 * -EACCES and the text after "err ", -ENOENT/-ECONNREFUSED: no agent. */
int cli_agent_call(const char *request, char **ret_reply);
/* Log connection c in with this session's grid login, if there is one (0
 * without); errors are printed. cli_open() calls it. */
int cli_grid_login(const char *prog, struct cli_conn *c);
/* Log c in with a signer of challenges (the agent, or xlogin's own key):
 * 0 and xosd's answer in *ret (if ret), or -errno, printed. */
typedef int (*cli_signer_fn)(const char *prog, const char *node, const char *nonce, void *userdata,
			     char **ret_sig64, char **ret_chain);
int cli_grid_login_with(const char *prog, struct cli_conn *c, cli_signer_fn sign, void *userdata,
			yajl_val *ret);

/* ---- option parsing (options.c) ---- */
/* getopt_long values of the options every command takes; a command's own
 * long-only options start at CLI_OPT_MAX. */
enum {
	CLI_OPT_SOCKET = 0x100,
	CLI_OPT_HELP,
	CLI_OPT_VERSION,
	CLI_OPT_MAX,
};
/* The last entries of every command's option table, before its {}. */
#define CLI_COMMON_OPTIONS                                     \
	{ "socket", required_argument, NULL, CLI_OPT_SOCKET }, \
		{ "help", no_argument, NULL, CLI_OPT_HELP },   \
	{                                                      \
		"version", no_argument, NULL, CLI_OPT_VERSION  \
	}

struct cli_command {
	const char *shortopts; /* for getopt_long */
	const struct option *options;
	const char *synopsis; /* "JOB...", after "Usage: PROG [OPTIONS] " */
	/* --help: the Usage line, help, the lines of the common options (their
	 * descriptions help_pad columns further right than the narrowest), help_end */
	const char *help;
	int help_pad;
	const char *help_end;
	const char *operand; /* "job": one or more needed; NULL: any number */
	bool single;         /* exactly one operand */
	/* A command's own option: 0, or -errno with the error printed. */
	int (*option)(const char *prog, int opt, const char *arg, void *opts);
};
/* Parse argv from scratch (it may run more than once): --socket sets
 * *socket_opt, --help and --version print, bad options and a wrong number
 * of operands (from optind on) are usage errors, the rest goes to
 * cmd->option. 0 parsed, 1 --help/--version printed, -EINVAL usage error
 * (printed), or the -errno of cmd->option ("Out of memory" printed). */
int cli_parse_options(const char *prog, const struct cli_command *cmd, int argc, char **argv,
		      const char **socket_opt, void *opts);
/* Print the message for getopt_long's '?' or ':' and the hint to --help. */
void cli_bad_option(const char *prog, int c, char **argv);
void cli_print_version(const char *prog);
/* --unit N: a unit number, 1 or more (error printed). */
int cli_parse_unit(const char *prog, const char *arg, int *ret);

/* ---- streaming output events (stream.c) ---- */
enum cli_stream_end {
	CLI_STREAM_EXIT,     /* an "exit" event: *ret_exit_code is set */
	CLI_STREAM_EOF,      /* an "eof" event */
	CLI_STREAM_RESPONSE, /* the response, when want_response was set */
};
struct cli_stream {
	const char *prog;     /* for messages */
	int sigfd;            /* signalfd whose signals are forwarded, or -1 */
	uint64_t pending;     /* signals (bit N-1) held until the response */
	bool forward_sigpipe; /* on EPIPE: stop writing that stream, send SIGPIPE */
	bool closed[3];       /* per output fd, after EPIPE */
	bool sent_sigpipe;
	int write_error;    /* -errno of a failed write of output, else 0 */
	bool want_response; /* the next message is the response to a request */
	yajl_val response;  /* it, once checked to be ok */
	int exit_code;
	char *state;   /* of the exit event */
	char *reason;  /* of the exit event, or NULL */
	int signal;    /* of the exit event */
	bool have_tty; /* xrun -t: the daemon passed the job's terminal */
	int tty;       /* its master, when have_tty */
	bool tty_eof;  /* the terminal's last writer is gone */
	bool stdin_eof;
	bool raw; /* our stdin terminal is in raw mode (restored at the end) */
	struct termios saved;
};
void cli_stream_done(struct cli_stream *s);
/* tty.c: xrun -t relays our terminal and the job's */
int cli_tty_take(struct cli_conn *c, struct cli_stream *s);
void cli_tty_restore(struct cli_stream *s);
void cli_tty_resize(struct cli_stream *s);
int cli_tty_pump_in(struct cli_stream *s);  /* stdin -> job */
int cli_tty_pump_out(struct cli_stream *s); /* job -> stdout */
#define _cleanup_cli_stream_ _cleanup_(cli_stream_done)
/* Write fully to fd, waiting out EAGAIN; -errno. */
int cli_write_all(int fd, const void *buf, size_t n);
/* Handle one event message: write output, record exit. Returns 1 for an
 * end event (*ret_end set), 0 to go on, -errno. An error response in the
 * stream can only concern a signal message: it is printed, and we go on. */
int cli_stream_event(struct cli_conn *c, struct cli_stream *s, yajl_val ev,
		     enum cli_stream_end *ret_end);
/* Handle the buffered and coming events until an end event (or, with
 * want_response, until the response): -ECONNRESET when the connection ends
 * first, -EREMOTEIO (c->error) when the daemon refuses. */
int cli_stream_run(struct cli_conn *c, struct cli_stream *s, enum cli_stream_end *ret_end);
/* Send {"v":1,"op":"signal","signal":sig} on an attached connection. */
int cli_send_signal(struct cli_conn *c, int sig);

/* ---- xrun (xrun.c) ---- */
/* xrun -v SRC:DST[:ro|:rw] */
struct cli_volume {
	char *src; /* absolute (made so against the current directory) */
	char *dst;
	bool ro;
};
/* Parse a volume spec; 0 or -EINVAL. cwd makes a relative SRC absolute. */
int cli_parse_volume(const char *spec, const char *cwd, struct cli_volume *ret);

#define CLI_MAX_VOLUMES 64

/* xrun --priority: the range and default (as scheduler/scheduler.h's) */
#define CLI_PRIORITY_MAX 1000000
#define CLI_PRIORITY_DEFAULT 1000

struct cli_run_opts {
	char **argv; /* borrowed from the command line */
	char **env;  /* owned, K=V */
	const char *workdir;
	const char *name;
	const char *template_name;
	const char *user;
	const char *job;
	const char *net, *ip, *group;
	char **ports; /* owned, "HOSTPORT:PORT[/PROTO]" */
	const char *socket;
	uint64_t memory, cpus, pids, disk, files;
	uint64_t log_size; /* --log-size, 0: the node's default */
	bool has_memory, has_cpus, has_pids;
	bool detach, tty, no_home;
	struct cli_volume volumes[CLI_MAX_VOLUMES];
	size_t n_volumes;
	char *cwd; /* where xrun runs: the job starts in the same place when it is mounted */
	/* checkpoints (0: not given) */
	uint64_t ckpt_every_us, ckpt_grace_us, ckpt_keep;
	int ckpt_signal, restore_signal;
	bool has_grace, restart_on_failure;
	/* the scheduler: --priority, --hold, --after (owned), --time (0: none) */
	uint64_t priority;
	bool has_priority, hold;
	bool preemptible; /* --preemptible */
	char **after;
	uint64_t time_us;
};
void cli_run_opts_done(struct cli_run_opts *o);
#define _cleanup_cli_run_opts_ _cleanup_(cli_run_opts_done)
/* 0 parsed, 1 --help/--version printed, -EINVAL usage error (printed). */
int cli_run_parse(const char *prog, int argc, char **argv, struct cli_run_opts *o);
int cli_run_request(const struct cli_run_opts *o, char **ret, size_t *ret_len);

/* ---- formatting (format.c) ---- */
/* "5s ago", "3m ago", "2h ago", "4d ago". */
int cli_format_relative(uint64_t now_us, uint64_t then_us, char *ret, size_t size);
/* 512B, 4K, 3.5M, 16M, 1.2G: binary units, one decimal below 10 unless exact. */
int cli_format_size(uint64_t bytes, char *ret, size_t size);
/* "RUNNING", "EXITED(0)", "KILLED(KILL) OOM", "FAILED <reason>". code and sig
 * are ignored when negative or zero. */
int cli_format_state(const char *state, int code, int sig, const char *reason, char *ret,
		     size_t size);
int cli_format_job_state(yajl_val job, char *ret, size_t size);
/* argv array joined by spaces, control characters as '?', cut to width. */
char *cli_format_command(yajl_val argv, size_t width);

/* ---- the commands: each returns the process exit status ---- */
int cli_xrun_main(const char *prog, int argc, char **argv);
int cli_xps_main(const char *prog, int argc, char **argv);
int cli_xnodes_main(const char *prog, int argc, char **argv);
int cli_xmigrate_main(const char *prog, int argc, char **argv);
int cli_xqueue_main(const char *prog, int argc, char **argv);
int cli_xacct_main(const char *prog, int argc, char **argv);
int cli_xvo_main(const char *prog, int argc, char **argv);
int cli_xrelease_main(const char *prog, int argc, char **argv);
int cli_xlogs_main(const char *prog, int argc, char **argv);
int cli_xwait_main(const char *prog, int argc, char **argv);
int cli_xkill_main(const char *prog, int argc, char **argv);
int cli_xtemplate_main(const char *prog, int argc, char **argv);
int cli_xcheckpoint_main(const char *prog, int argc, char **argv);
int cli_xrestart_main(const char *prog, int argc, char **argv);
int cli_xevents_main(const char *prog, int argc, char **argv);

#endif
