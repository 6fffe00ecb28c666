/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to the migration part of runtime/: migrate.c (the moves, both
 * sides, stop-and-copy) and migrate-postcopy.c (post-copy's relay of CRIU's
 * page socket and its phases; DECISIONS (ar)). */
#ifndef XOS_MIGRATE_INTERNAL_H
#define XOS_MIGRATE_INTERNAL_H

#include "nodes/nodes.h"
#include "runtime/runtime-internal.h"

#define PUMP_BUF (256u << 10)     /* bytes of a version's tar read at once */
#define ZSTD_PATH "/usr/bin/zstd" /* --compress: tar's compressor, both nodes */

enum phase {
	MP_CHECK,   /* source: asked the target; target: checked, awaiting the data */
	MP_CPU,     /* CRIU describes (source) or checks (target) the CPU: m's child */
	MP_DUMP,    /* source: the dump (--stop) runs */
	MP_SEND,    /* source: the version streams; target: it arrives */
	MP_DOUBT,   /* source: all sent, the target's word awaited */
	MP_LOCAL,   /* source: restoring here after a failure */
	MP_EXTRACT, /* target: unpacking the version */
	MP_RESTORE, /* target: the restore runs */
	MP_PULL,    /* post-copy: the job runs on the target, its pages are pulled */
	MP_ABORT,   /* post-copy, source: CRIU told to stop serving; the job runs on here */
	MP_DONE,    /* to be freed */
};

struct migration {
	struct migration *next;
	char id[XOS_JOB_ID_HEX + 1];
	char node[NODES_NAME_MAX + 1];
	bool outgoing;
	enum phase phase;
	unsigned version;
	bool run_ended; /* the dump or restore ended (ckpt's answer came) */
	char *run_error;
	char *failure; /* source: why the move failed (the client's answer) */
	bool query_sent;
	bool waiting; /* source, MP_CHECK: checked, its stop waits for another move's stream */
	uint64_t t0, t_stop, t_dumped, t_sent, bytes;
	/* the tar child (source: creating; target: extracting) */
	pid_t pid;
	int pidfd, pipe_fd, file_fd;
	bool tar_eof;
	/* MP_CPU: CRIU's directory, the source's description (target, decoded
	 * once: mig_cpu_take), when the run began; pid 0: waiting for another
	 * move's CRIU run */
	char *cpu_dir;
	uint8_t *cpu_img;
	size_t cpu_len;
	uint64_t t_cpu;
	uint8_t *buf;
	size_t buf_len, buf_off;
	/* target: the most its data may take, and what sets it (incoming_cap) */
	uint64_t cap;
	const char *cap_why;
	bool held; /* target, tests: the data unpacked, not restored (XOS_MIGRATE_FAULT=hold) */
	bool send_stalled; /* source, tests: XOS_MIGRATE_FAULT=stall-send holds the stream */
	/* target: tar ended before the payload did (its status; -1: not yet).
	 * tar stops reading at the archive's end marker, before the padding
	 * after it: that is no failure, the rest is dropped */
	int tar_status;
	bool store_failed; /* target: the data could not be handed to tar */
	/* post-copy (DECISIONS (ar)): CRIU's page socket relayed over the
	 * channel as migrate-pages messages */
	bool postcopy;
	bool compress; /* the version goes through zstd on the wire (--compress) */
	/* the job's loader copy: the target has it already (its sha256, sent in
	 * its answer to the check), and the source leaves it out of the version */
	char loader_here[65];
	bool loader_skip;
	int ps_listen; /* the socket the shim (source) or lazy-pages daemon (target) reaches */
	char *ps_path;
	int ps_fd;     /* the relay's end of CRIU's page socket */
	int status_fd; /* source: CRIU's status pipe (its images are out) */
	int guard_fd;  /* source: the connection the shim's guard waits on */
	uint8_t *rx;   /* from the peer, for ps_fd */
	size_t rx_len, rx_cap;
	uint8_t *tx; /* from ps_fd, for the peer */
	size_t tx_len, tx_off;
	bool tx_open;    /* a migrate-pages message of ours is open on the channel */
	bool pages_in;   /* one of the peer's is being read */
	bool ps_eof;     /* ps_fd's other end closed */
	bool ps_armed;   /* ps_fd is in the event loop */
	bool target_ok;  /* source: the target said the job runs there */
	bool pull_done;  /* source: CRIU ended well (every page was pulled) */
	bool aborting;   /* give up at the first chance (the link went) */
	bool criu_ended; /* source: the lazy dump ended (CRIU serves no more) */
	bool stalled;    /* target, tests: the relay stopped (XOS_MIGRATE_FAULT=stall-pull-in) */
	uint64_t t_ready, t_resumed, t_page, pages_bytes, pages_rx;
	uint64_t t_byte;  /* source, MP_SEND: when the channel last took bytes of the stream */
	uint64_t t_abort; /* source: when CRIU was told to stop serving */
};

/* ---- migrate.c ---- */
/* The tar child, its pipe and file stopped and closed. */
void mig_child_stop(struct daemon *d, struct migration *m);
/* m's child (m->pid) watched in the event loop: its end, and m->pipe_fd if any */
int mig_child_watch(struct daemon *d, struct migration *m);
/* migrate-cpu.c: the pre-flight's CPU check, its answers kept (DECISIONS (bl)) */
/* source: 1 and this node's CPU as CRIU describes it, hex-encoded, in *ret,
 * if kept; 0: CRIU must describe it (mig_cpu_start) */
int mig_cpu_describe_kept(struct daemon *d, char **ret, struct xerr *err);
/* target: 1 if this CPU is known to run what the source's description (hex)
 * says; 0: CRIU must check it (mig_cpu_start); -errno (refused, kept, or a
 * malformed description) */
int mig_cpu_check_kept(struct daemon *d, const struct migration *m, struct xerr *err);
/* target: the source's description (hex) decoded into m; -EINVAL (err) if malformed */
int mig_cpu_take(struct migration *m, const char *hex, struct xerr *err);
/* CRIU's cpuinfo dump (hex NULL) or check of hex, as m's child */
int mig_cpu_start(struct daemon *d, struct migration *m, bool check, struct xerr *err);
#define MIG_CPU_TIMED_OUT 1000 /* a status: m's CRIU was killed for its time */
/* m's CRIU ended with status (its exit status, else over 127;
 * MIG_CPU_TIMED_OUT: killed by the bound of its time): the source's
 * description in *ret, or the target's 0; -errno (err) if refused or failed;
 * the answer is kept */
int mig_cpu_end(struct daemon *d, struct migration *m, int status, char **ret, struct xerr *err);
/* m's CRIU directory removed, the description it held freed */
void mig_cpu_clear(struct migration *m);
/* The job's migration phase, written (durably) before it is acted on. */
void mig_set_phase(struct daemon *d, struct job *j, const char *node, const char *phase);
int mig_send_msg(struct daemon *d, const char *node, const char *type, const char *id,
		 const char *key, const char *val, bool ok);
/* tar of dir (in_fd < 0: created into a pipe; else extracted from in_fd). */
int mig_tar_start(struct daemon *d, struct migration *m, const char *dir, int in_fd);
/* Source: the move is over (msg: why it failed, for the client). */
void mig_src_done(struct daemon *d, struct migration *m, struct job *j, const char *msg);
/* Source: the target runs the job; this node lets go of it. */
void mig_src_let_go(struct daemon *d, struct migration *m, struct job *j);
/* Source: the version's tar streamed to the target as the channel takes it. */
void mig_src_pump(struct daemon *d, struct migration *m);
/* Source: the version in dir sent (migrate-data, its tar as the payload):
 * 0 (MP_SEND), or -errno and why it cannot begin. */
int mig_src_send(struct daemon *d, struct migration *m, const char *dir, const char **ret_why);

/* ---- migrate-postcopy.c ---- */
/* The socket in <run_dir>/pages for CRIU's side (the shim) to reach. */
int mig_relay_listen(struct daemon *d, struct migration *m);
/* Its connection taken (source: the page socket, the status pipe, the guard). */
void mig_relay_accept(struct daemon *d, struct migration *m);
/* Everything of the relay closed (a source's CRIU still serving is told to stop). */
void mig_relay_close(struct daemon *d, struct migration *m);
/* What came from the peer into CRIU's socket; what CRIU wrote to the peer. */
void mig_relay_flush(struct daemon *d, struct migration *m);
void mig_relay_take(struct daemon *d, struct migration *m, const void *data, size_t len);
void mig_relay_pump(struct daemon *d, struct migration *m);
bool mig_relay_pending(const struct migration *m);
/* Target: whether the lazy-pages daemon ended, having every page. */
bool mig_tgt_pulled(const struct migration *m);
/* The relay broke: the source aborts, the target kills its copy. */
void mig_relay_broken(struct daemon *d, struct migration *m, const char *why);
/* Source: the move fails; CRIU is told to stop serving (the tasks run on). */
void mig_src_abort_pull(struct daemon *d, struct migration *m, struct job *j, const char *why);
/* Source: CRIU's status pipe is readable (its images are out). */
void mig_src_status(struct daemon *d, struct migration *m);
/* Source: the lazy dump ended (well: every page pulled). */
void mig_src_pull_ended(struct daemon *d, struct migration *m, struct job *j);
/* Target: every page came; or the move is aborted and the copy killed. */
void mig_tgt_pull_done(struct daemon *d, struct migration *m);
void mig_tgt_abort_pull(struct daemon *d, struct migration *m, const char *why);
/* Target: the version without memory deleted; a copy killed through its init. */
void mig_drop_version(struct daemon *d, struct migration *m, struct job *j);
void mig_kill_half(struct daemon *d, struct job *j);

#endif
