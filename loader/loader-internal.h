/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* loader internals shared by setup.c, unit.c, notify.c, requests.c, loop.c. */
#ifndef XOS_LOADER_INTERNAL_H
#define XOS_LOADER_INTERNAL_H

#include <signal.h>
#include <sys/capability.h>
#include <sys/resource.h>

#include "loader/loader.h"

/* One output stream of a unit: a pipe from the unit, a spool file (relay.c). */
struct relay {
	int pipe_fd;    /* read end, non-blocking; -EBADF once every writer is gone */
	int file_fd;    /* spool/<N>.out or <N>.err, written at off */
	uint64_t off;   /* bytes of the stream so far: the file's size */
	uint64_t start; /* bytes before this were punched out (dropped) */
	uint64_t cap;   /* newest bytes kept (log_size); 0: all */
	bool discard;   /* the file cannot take more (no hole punching, disk full) */
};

/* One unit ever seen by this loader (kept after its end to refuse a second
 * unit.<N> with the same N). */
struct unit {
	unsigned id;
	pid_t pid; /* leader = process group; 0 once ended */
	uint64_t started_us;
	struct relay out, err; /* unused (fds -EBADF) for a unit on a terminal */
	struct unit *next;
};

/* One status report waiting for the daemon's acknowledgement. */
struct report {
	unsigned unit;
	char *text; /* status text plus the terminating empty line */
	size_t len;
	unsigned attempts;
	struct report *next;
};

enum notify_phase {
	NOTIFY_IDLE,    /* nothing in flight (queue may be empty) */
	NOTIFY_WAIT,    /* backing off until deadline */
	NOTIFY_CONNECT, /* non-blocking connect in progress */
	NOTIFY_SEND,    /* writing the report */
	NOTIFY_RECV,    /* reading the answer line */
	_NOTIFY_PHASE_MAX,
	_NOTIFY_PHASE_INVALID = -EINVAL,
};

struct notify {
	struct report *head, **tail;
	enum notify_phase phase;
	int fd; /* the connection, only while a report is in flight */
	size_t sent;
	char answer[256];
	size_t answer_len;
	uint64_t phase_start; /* mono_usec() */
	uint64_t deadline;    /* mono_usec() */
	uint64_t backoff;     /* next retry delay */
	char path[108];       /* sun_path of notify.sock */
	int sync_fd;          /* the spool: flushed when a report must wait */
};

struct loader {
	char job[XOS_JOB_ID_HEX + 1];
	int dir_fd;   /* /.xos */
	int in_fd;    /* /.xos/in */
	int spool_fd; /* /.xos/spool */
	int null_fd;  /* /dev/null, O_RDONLY */
	int sig_fd;   /* signalfd of every handled signal */
	sigset_t handled;
	struct sock_fprog seccomp;
	cap_t child_caps; /* CAP_SETUID/CAP_SETGID permitted+effective, nothing else */
	struct unit *units;
	unsigned running;
	struct notify notify;
};

/* setup.c */
int loader_close_inherited_fds(void);
int loader_open_dirs(struct loader *l, const char *dir);
int loader_redirect_stdio(struct loader *l);
int loader_loopback_up(void);
void loader_mask_paths(void);
int loader_signals_setup(struct loader *l);
void loader_signals_reset_child(const sigset_t *handled);

/* unit.c */
struct unit *loader_unit_find(struct loader *l, unsigned id);
struct unit *loader_unit_find_pid(struct loader *l, pid_t pid);
int loader_unit_start(struct loader *l, unsigned id, const char *spec, size_t len, int read_error);
void loader_unit_ended(struct loader *l, struct unit *u, int wstatus, const struct rusage *ru);
void loader_unit_failed(struct loader *l, unsigned id, uint64_t started_us, const char *reason,
			const struct rusage *ru);
void loader_forward_signal(struct loader *l, unsigned id, int sig);
/* Move what the unit's pipes hold to its spool files now. */
void loader_unit_drain(struct unit *u);

/* relay.c */
/* Where the punched-out part of a stream of end bytes, of which those before
 * start are already gone, should end so that at most cap are kept (cap 0:
 * no limit); start if nothing is to go. Pure. */
uint64_t loader_relay_punch_to(uint64_t start, uint64_t end, uint64_t cap);
void loader_relay_init(struct relay *r);
void loader_relay_close(struct relay *r);
/* Open (create) spool file name and a pipe to it; *ret_write_end is the
 * unit's end (blocking, close-on-exec: the child dup2()s it). */
int loader_relay_open(struct relay *r, int spool_fd, const char *name, uint64_t cap,
		      int *ret_write_end);
/* Move what the pipe holds to the file; 1 once every writer is gone (the
 * pipe is closed then), else 0. Bounded work per call. */
int loader_relay_pump(struct relay *r);
/* Append a line of the loader's own ("xos: ...") to the stream's file. */
int loader_relay_write(struct relay *r, const char *text, size_t len);

/* notify.c */
void loader_notify_init(struct notify *n);
int loader_notify_set_path(struct notify *n, const char *dir);
int loader_notify_queue(struct notify *n, unsigned unit, const char *text, size_t len);
void loader_notify_step(struct notify *n, short revents);
/* poll events for the connection (fd < 0: none) and the timeout in ms (-1: none) */
int loader_notify_poll(const struct notify *n, short *ret_events, int *ret_timeout_ms);
bool loader_notify_idle(const struct notify *n);
void loader_notify_done(struct notify *n);
/* Hand a terminal's master to xosd now (blocking, a few seconds at most). */
int loader_notify_send_tty(const struct notify *n, const char *job, unsigned unit, int master);

/* requests.c */
/* Scan in/, handle every request, unlink it. Returns the number of unit
 * requests found (started or failed) or -errno if in/ could not be read. */
int loader_scan_requests(struct loader *l);

#endif
