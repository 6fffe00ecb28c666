/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* common: shared helpers of every xos module (cleanup, logging, parsing,
 * fs helpers, the JSON wire protocol). The one public header of common/. */
#ifndef XOS_COMMON_H
#define XOS_COMMON_H

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "common/error.h" /* struct xerr: how errors travel */

#define XOS_VERSION "0.1.0"
#define XOS_PROTO_VERSION 1
#define XOS_REQUEST_MAX (1024 * 1024) /* bytes, one request line */
#define XOS_DEFAULT_SOCKET "/run/xos/xosd.sock"
#define XOS_JOB_ID_HEX 16   /* full id: 64 random bits */
#define XOS_JOB_ID_SHORT 12 /* shown to users */

#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* ---- cleanup helpers (destructors accept NULL/-1 and preserve errno) ---- */
static inline void freep(void *p)
{
	int saved = errno;
	free(*(void **)p);
	errno = saved;
}
static inline void closep(int *fd)
{
	int saved = errno;
	if (*fd >= 0)
		close(*fd);
	*fd = -EBADF; /* also used to close explicitly: never leave a stale number */
	errno = saved;
}
static inline void fclosep(FILE **f)
{
	int saved = errno;
	if (*f)
		fclose(*f);
	errno = saved;
}
void strv_free(char **v);
static inline void strv_freep(char ***v)
{
	int saved = errno;
	strv_free(*v);
	errno = saved;
}
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define _cleanup_strv_free_ _cleanup_(strv_freep)

#define TAKE_PTR(p)                       \
	({                                \
		__typeof__(p) _tp_ = (p); \
		(p) = NULL;               \
		_tp_;                     \
	})
#define TAKE_FD(fd)              \
	({                       \
		int _tf_ = (fd); \
		(fd) = -EBADF;   \
		_tf_;            \
	})

/* ---- logging: libraries log at debug level only; binaries at the boundary ---- */
enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };
void log_setup(const char *ident, enum log_level max, bool timestamps);
void log_msg(enum log_level lvl, const char *fmt, ...) _printf_(2, 3);
#define log_error(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
/* Log and return -abs(err). */
#define log_error_errno(err, ...)                     \
	({                                            \
		int _e_ = (err) < 0 ? -(err) : (err); \
		errno = _e_;                          \
		log_msg(LOG_LVL_ERR, __VA_ARGS__);    \
		-_e_;                                 \
	})

/* ---- strings ---- */
char *xstrdup_printf(const char *fmt, ...) _printf_(1, 2); /* NULL on OOM */
size_t strv_length(char *const *v);
char **strv_copy(char *const *v);
int strv_push(char ***v, char *s); /* takes ownership of s */
bool str_has_prefix(const char *s, const char *prefix);

/* ---- checked number parsing (no atoi) ---- */
int parse_uint64(const char *s, uint64_t *ret);
int parse_int(const char *s, int *ret);
int parse_uid(const char *s, uid_t *ret);
/* "64M", "1G", "512k", "1048576"; binary units (K=1024). */
int parse_size(const char *s, uint64_t *ret);
/* "10m", "2s", "500ms", "1h", "1d"; a bare number is seconds. */
int parse_duration(const char *s, uint64_t *ret_us);
/* "0.5", "2", "1.25": returns milli-CPUs (1..1024000). */
int parse_cpus(const char *s, uint64_t *ret_millicpus);
int parse_signal(const char *s, int *ret); /* "KILL", "SIGKILL", "9" */
int parse_bool(const char *s, bool *ret);  /* true/yes/1, false/no/0 (config files) */
const char *signal_name(int sig);          /* "KILL", or NULL */

/* ---- ids ---- */
int random_job_id(char ret[XOS_JOB_ID_HEX + 1]);
bool job_id_valid(const char *s); /* exactly 16 lowercase hex */
/* [A-Za-z0-9][A-Za-z0-9_.-]{0,62}, not hex digits only (ids are) */
bool job_name_valid(const char *s);

/* ---- fd / fs helpers (all fds O_CLOEXEC, paths resolved with *at()) ---- */
ssize_t loop_write(int fd, const void *buf, size_t n); /* EINTR-safe, all */
ssize_t loop_read(int fd, void *buf, size_t n);        /* until EOF or n */
/* Write data to dirfd/name atomically: tmp file, fsync (if sync), rename. */
int write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
			 bool sync);
/* Read a whole regular file below dirfd (O_NOFOLLOW), at most max bytes. */
int read_file_at(int dirfd, const char *name, size_t max, char **ret, size_t *ret_len);
/* What tells one file's content from a later one at path without reading it
 * (device, inode, size, mtime), as text in buf: a cache key of a program. */
int file_stamp(const char *path, char *buf, size_t len);
int mkdir_p_at(int dirfd, const char *path, mode_t mode);
/* Remove a directory tree below dirfd without following symlinks or
 * crossing mount points. Missing is not an error. */
int rm_rf_at(int dirfd, const char *name);
int open_dir_at(int dirfd, const char *name); /* O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC */
/* A stream over the directory fd refers to, from its start, on a close-on-exec
 * duplicate (fd stays the caller's): closedir() it. NULL and errno on failure,
 * the duplicate closed (fdopendir(fcntl(F_DUPFD_CLOEXEC)) leaked it). */
DIR *opendir_dup(int fd);
/* Below a directory that a container or a user controls: path is relative to
 * dirfd, holds no "..", and is resolved without following any symlink and
 * without leaving dirfd (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS; where openat2 is missing, a walk of O_NOFOLLOW opens).
 * flags are open(2)'s (O_CLOEXEC is added). -ELOOP: a symlink on the way or at
 * the end (with O_PATH|O_NOFOLLOW a final symlink itself is opened); -ENOTDIR:
 * something else that is not a directory on the way. Only system calls, no
 * allocation: usable in a forked child of a process with threads. */
int openat_beneath(int dirfd, const char *path, int flags, mode_t mode);
/* The directory path below dirfd (an O_PATH fd), resolved as by
 * openat_beneath, its missing components created with mode (and given to
 * uid:gid unless uid is (uid_t)-1). Same limits as openat_beneath. */
int mkdirat_beneath(int dirfd, const char *path, mode_t mode, uid_t uid, gid_t gid);
/* Tests: resolve as if openat2 were missing (the component walk). */
void fs_beneath_force_walk(bool on);
/* Copy directory from/name to the new directory to/to_name exactly (owners,
 * modes, times, xattrs, device nodes, links; hard links become copies;
 * holes stay holes). *ret_bytes: bytes of file data copied, holes not
 * counted (may be NULL). A failed copy leaves
 * what it made: the caller removes it. */
int copy_tree_at(int from, const char *name, int to, const char *to_name, uint64_t *ret_bytes);
/* The data of the file open at from (all of it, whatever its offset; holes
 * kept) into to, which gets its size. */
int copy_fd_data(int from, int to);
/* from (relative to from_dir) as to (in to_dir): a hard link, or where the
 * two are on other file systems a copy of its data with mode; 0 also if to
 * is there already */
int link_or_copy_at(int from_dir, const char *from, int to_dir, const char *to, mode_t mode);

/* ---- passing fds over UNIX sockets (SCM_RIGHTS) ---- */
/* recv(2) that also takes the first fd passed along (CLOEXEC) into *ret_fd if
 * that is still < 0; further fds are closed. */
ssize_t recv_with_fd(int sock, void *buf, size_t len, int flags, int *ret_fd);
/* send(2) of buf with fd attached to its first byte (MSG_NOSIGNAL). */
ssize_t send_with_fd(int sock, const void *buf, size_t len, int fd);
/* A listening stream socket bound at path (what was there removed first),
 * non-blocking, close-on-exec; its mode and owner are the caller's to set. */
int unix_listen(const char *path, int backlog);

/* ---- running programs (spawn.c) ---- */
#define SPAWN_FDS_MAX 8
#define SPAWN_REPORT (-2) /* in spawn_opts.fds: the report pipe's write end */
enum {
	SPAWN_SETSID = 1 << 0,          /* a session (and process group) of its own */
	SPAWN_PDEATHSIG = 1 << 1,       /* killed when the caller dies */
	SPAWN_SIGPIPE_DEFAULT = 1 << 2, /* SIGPIPE back to its default (not inherited ignored) */
	SPAWN_REPORT_NONBLOCK = 1 << 3, /* its end of the report pipe is non-blocking too */
};
struct spawn_opts {
	const char *path; /* executed as is */
	char *const *argv;
	char *const *envp; /* NULL: the caller's environ */
	/* the child's fds first_fd, first_fd + 1, ...: an fd of the caller, SPAWN_REPORT
	 * or -EBADF (closed); fds below first_fd are inherited, those above closed */
	int first_fd;
	int fds[SPAWN_FDS_MAX];
	size_t n_fds;
	unsigned flags;
};
/* Fork and execute o->path with a clean signal mask, its fds placed as o says
 * and a pipe to report on (fds is where it goes). Only async-signal-safe
 * calls between fork and exec; a child that cannot exec exits with 127.
 * *ret_report: the pipe's read end (O_CLOEXEC, O_NONBLOCK). */
int spawn_program(const struct spawn_opts *o, pid_t *ret_pid, int *ret_report);
/* Reap pid, waiting at most timeout_us: -ETIME after killing it (and its
 * process group) when it took longer. */
int spawn_wait(pid_t pid, uint64_t timeout_us, int *ret_status);

/* ---- time ---- */
uint64_t now_usec(void);  /* CLOCK_REALTIME */
uint64_t mono_usec(void); /* CLOCK_MONOTONIC */

/* ---- base64 (RFC 4648, with padding) ---- */
char *base64_encode(const void *data, size_t len); /* NULL on OOM */
int base64_decode(const char *s, size_t len, char **ret, size_t *ret_len);

/* ---- JSON (yajl) helpers, used by xosd and the commands ---- */
struct yajl_val_s;
struct yajl_gen_t;
/* How deep any JSON xos reads may nest arrays and objects (requests come
 * from every local user, and the code that walks a tree recurses). */
#define JSON_DEPTH_MAX 64
/* Parse the NUL-terminated text into a yajl tree (*ret), refusing it as
 * soon as it nests deeper than max_depth: 0, -ELOOP (too deep), -EBADMSG
 * (not JSON) or -ENOMEM; on failure err (if given) holds a lower-case reason.
 * Pure: the one entry point for JSON a user or a job controls. The tree lives in an arena of its own: free it with
 * json_free (or _cleanup_json_), never yajl_tree_free, and never a subtree. */
int json_parse(const char *text, unsigned max_depth, char *err, size_t err_len,
	       struct yajl_val_s **ret);
void json_free(struct yajl_val_s *v);
/* The value of key in object obj, or NULL. */
struct yajl_val_s *json_get(struct yajl_val_s *obj, const char *key);
/* Look up key in object obj; -ENOENT if absent, -EINVAL if of the wrong type. */
int json_get_string(struct yajl_val_s *obj, const char *key, const char **ret);
int json_get_uint(struct yajl_val_s *obj, const char *key, uint64_t *ret);
int json_get_int(struct yajl_val_s *obj, const char *key, int64_t *ret);
int json_get_bool(struct yajl_val_s *obj, const char *key, bool *ret);
/* NULL-terminated copy of an array of strings; -EINVAL if not all strings. */
int json_get_strv(struct yajl_val_s *obj, const char *key, char ***ret);
/* Fail with -EINVAL and the offending key in *ret_key if obj has a key not in allowed. */
int json_check_keys(struct yajl_val_s *obj, const char *const *allowed, const char **ret_key);
void json_gen_str(struct yajl_gen_t *g, const char *s); /* NULL -> null */
void json_gen_kv_str(struct yajl_gen_t *g, const char *k, const char *v);
void json_gen_kv_int(struct yajl_gen_t *g, const char *k, int64_t v);
void json_gen_kv_uint(struct yajl_gen_t *g, const char *k, uint64_t v);
void json_gen_kv_bool(struct yajl_gen_t *g, const char *k, bool v);
void json_gen_kv_null(struct yajl_gen_t *g, const char *k);
void json_gen_kv_strv(struct yajl_gen_t *g, const char *k, char *const *v);
void json_gen_key(struct yajl_gen_t *g, const char *k);
/* Copy the generated text (plus a newline if nl) into a new string. */
char *json_gen_take(struct yajl_gen_t *g, bool nl);
void json_freep(struct yajl_val_s **v);
void yajl_gen_freep(struct yajl_gen_t **g);
#define _cleanup_json_ _cleanup_(json_freep)
#define _cleanup_gen_ _cleanup_(yajl_gen_freep)

#endif
