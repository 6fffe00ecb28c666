/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Job containers: their engine's steps (the liblxc engine, engine-lxc.c),
 * the starter child and its prestart hooks, requests to the loader, cgroup
 * accounting. */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <yajl/yajl_gen.h>

#include "hooks/hooks.h"
#include "loader/loader.h"
#include "runtime/runtime-internal.h"

/* The engines, by the number a spawner's request names them with */
static const struct container_engine *const engines[] = {
	[CONTAINER_ENGINE_LXC] = &container_engine_lxc,
	[CONTAINER_ENGINE_DIRECT] = &container_engine_direct,
};

const struct container_engine *container_engine_by_name(const char *name)
{
	for (size_t i = 0; i < ELEMENTSOF(engines); i++)
		if (!strcmp(engines[i]->name, name))
			return engines[i];
	return NULL;
}

void container_engine_choose(struct daemon *d, struct job *j)
{
	/* (a job that asks for checkpoints, or may be preempted by one, goes
	 * through liblxc: the direct engine's cannot be checkpointed yet) */
	bool ckpt = j->ckpt.every_us || j->ckpt.signal || j->ckpt.restart_on_failure ||
		    j->sched.preemptible;

	j->engine = NULL;
	if (d->cfg->engine_direct && j->net.mode == NETSETUP_NONE &&
	    (!j->cgroup_parent || !j->cgroup_parent[0]) && !j->pooled && !ckpt &&
	    d->cg != &runtime_cgroup_v2)
		j->engine = &container_engine_direct;
}

const struct container_engine *container_engine_of(const struct job *j)
{
	return j->engine ? j->engine : &container_engine_lxc;
}

const struct container_engine *container_engine_by_id(unsigned id)
{
	return id < ELEMENTSOF(engines) ? engines[id] : NULL;
}

unsigned container_engine_id(const struct container_engine *e)
{
	for (unsigned i = 0; i < ELEMENTSOF(engines); i++)
		if (engines[i] == e)
			return i;
	return CONTAINER_ENGINE_LXC;
}

int container_create(struct daemon *d, struct job *j)
{
	return container_engine_of(j)->create(d, j);
}

int container_take_init(struct job *j, pid_t pid)
{
	int fd;

	j->init_pid = pid;
	if (pid <= 0)
		return -ESRCH;
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return -errno;
	closep(&j->pidfd);
	j->pidfd = fd;
	return 0;
}

/* The child that starts a container: the prestart hooks (one that fails
 * aborts the start with its message), then the engine's start. */
_noreturn_ void container_start_child(const struct container_start_args *a)
{
	sigset_t none;

	sigemptyset(&none);
	signal(SIGPIPE, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (a->record) {
		struct xerr err = XERR_INIT;

		if (hook_run(a->hooks_dir, HOOK_PRESTART, a->id, a->record, a->record_len,
			     a->hook_timeout_us, &err) < 0) {
			if (err.msg && a->dirfd >= 0)
				(void)write_file_atomic_at(a->dirfd, "prestart.err", err.msg,
							   strlen(err.msg), 0600, false);
			_exit(CONTAINER_START_HOOK_FAILED);
		}
	}
	a->engine->start_child(a);
}

int container_start(struct daemon *d, struct job *j, pid_t *ret_pid, int *ret_pidfd)
{
	_cleanup_gen_ yajl_gen g = yajl_gen_alloc(NULL);
	_cleanup_free_ char *record = NULL;
	struct container_start_args a = { .engine = container_engine_of(j),
					  .id = j->id,
					  .pooled = j->pooled,
					  .lxcpath = d->lxcpath,
					  .hooks_dir = d->cfg->hooks_dir,
					  .hook_timeout_us = d->cfg->hook_timeout_us,
					  .dirfd = j->dirfd };
	pid_t pid;
	int fd, r;

	if (g && hook_event_has_dir(d->cfg->hooks_dir, HOOK_PRESTART)) {
		job_to_json(j, g);
		record = json_gen_take(g, true);
		a.record = record;
		a.record_len = record ? strlen(record) : 0;
	}
	r = spawner_start(d, &a, ret_pid, ret_pidfd);
	if (r >= 0 || r == -EIO)
		return r; /* (-EIO: sent, and whether it started is not known: not twice) */
	pid = fork();     /* (no spawner, or a record too large for it) */
	if (pid < 0)
		return -errno;
	if (pid == 0)
		container_start_child(&a);
	fd = (int)syscall(SYS_pidfd_open, pid, 0); /* (ours: not reaped yet) */
	*ret_pid = pid;
	*ret_pidfd = fd < 0 ? -errno : fd;
	return 0;
}

int container_start_wait(struct daemon *d, pid_t pid)
{
	int status = 0;

	if (spawner_wait(d, pid, &status) == 0)
		return status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return status;
}

int container_started(struct daemon *d, struct job *j)
{
	return container_engine_of(j)->started(d, j);
}

char *container_start_error(struct daemon *d, struct job *j)
{
	return container_engine_of(j)->start_error(d, j);
}

int container_attach(struct daemon *d, struct job *j)
{
	return container_engine_of(j)->attach(d, j);
}

bool container_running(struct job *j)
{
	return container_engine_of(j)->running(j);
}

void container_release(struct job *j)
{
	container_engine_of(j)->release(j);
	closep(&j->pidfd);
	j->init_pid = 0;
}

void container_remove_config(struct daemon *d, struct job *j)
{
	container_engine_of(j)->remove(d, j);
}

/* The cgroup files of the container's init, read directly: its
 * /proc/PID/cgroup names its cgroup in every hierarchy (no round trip to
 * LXC's monitor per value). */
struct cg_reader {
	char *self; /* contents of /proc/<init>/cgroup */
	bool v2;    /* files are in the unified hierarchy */
};

static int cg_path(const struct cg_reader *cr, const char *controller, char *buf, size_t len)
{
	size_t cl = strlen(controller);

	for (const char *l = cr->self; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		const char *ctrls = strchr(l, ':'), *path;
		size_t n;

		if (!ctrls || !(path = strchr(ctrls + 1, ':')))
			return -EINVAL;
		ctrls++;
		n = strcspn(path + 1, "\n");
		if (path == ctrls && !strcmp(controller, "")) /* cgroup2: "0::/path" */
			return snprintf(buf, len, "/sys/fs/cgroup%.*s", (int)n, path + 1) < (int)len
				       ? 0
				       : -ENAMETOOLONG;
		for (const char *c = ctrls; c < path; c += strcspn(c, ",:") + 1)
			if (!strncmp(c, controller, cl) && (c[cl] == ',' || c[cl] == ':'))
				return snprintf(buf, len, "/sys/fs/cgroup/%.*s%.*s",
						(int)(path - ctrls), ctrls, (int)n,
						path + 1) < (int)len
					       ? 0
					       : -ENAMETOOLONG;
	}
	return -ENOENT;
}

static int cg_read(void *ud, const char *file, char *buf, size_t len)
{
	const struct cg_reader *cr = ud;
	char ctrl[32] = "", path[1024], *full;
	_cleanup_free_ char *text = NULL;
	size_t tl;
	int r;

	/* v1: the controller is the file's prefix (memory.max_usage_in_bytes) */
	if (!cr->v2)
		snprintf(ctrl, sizeof(ctrl), "%.*s", (int)strcspn(file, "."), file);
	r = cg_path(cr, ctrl, path, sizeof(path));
	if (r < 0)
		return r;
	full = xstrdup_printf("%s/%s", path, file);
	if (!full)
		return -ENOMEM;
	r = read_file_at(AT_FDCWD, full, len - 1, &text, &tl);
	free(full);
	if (r < 0)
		return r;
	memcpy(buf, text, tl + 1);
	return 0;
}

/* A reader of the cgroup files of j's container (its init's /proc/PID/cgroup). */
static int cg_reader_of(struct daemon *d, struct job *j, struct cg_reader *ret)
{
	char p[64];

	*ret = (struct cg_reader){ .v2 = d->cg == &runtime_cgroup_v2 };
	if (j->init_pid <= 0)
		return -ESRCH;
	snprintf(p, sizeof(p), "/proc/%d/cgroup", (int)j->init_pid);
	return read_file_at(AT_FDCWD, p, 65536, &ret->self, NULL);
}

int container_accounting(struct daemon *d, struct job *j, struct runtime_accounting *ret)
{
	struct cg_reader cr;
	int r = cg_reader_of(d, j, &cr);

	if (r < 0)
		return r;
	r = d->cg->accounting(cg_read, &cr, ret);
	free(cr.self);
	return r;
}

int container_memory_current(struct daemon *d, struct job *j, uint64_t *ret)
{
	struct cg_reader cr;
	char buf[64];
	int r = cg_reader_of(d, j, &cr);

	if (r < 0)
		return r;
	r = cg_read(&cr, cr.v2 ? "memory.current" : "memory.usage_in_bytes", buf, sizeof(buf));
	free(cr.self);
	if (r < 0)
		return r;
	buf[strcspn(buf, "\n")] = 0;
	return parse_uint64(buf, ret);
}

int container_dump_memory(struct daemon *d, struct job *j, uint64_t *ret_anon, uint64_t *ret_shmem)
{
	struct cg_reader cr;
	int r = cg_reader_of(d, j, &cr);

	if (r < 0)
		return r;
	r = d->cg->dump_memory(cg_read, &cr, ret_anon, ret_shmem);
	free(cr.self);
	return r;
}

/* Drop a request file into <job>/xos/in and poke the loader (xos/ is the
 * container root's: opened as every path below it, openat_beneath). */
static int drop_request(struct job *j, const char *name, const void *data, size_t len)
{
	_cleanup_close_ int xos = openat_beneath(j->dirfd, "xos", O_PATH | O_DIRECTORY, 0);
	_cleanup_close_ int in = -EBADF;
	char tmp[128];
	int r;

	if (xos < 0)
		return xos;
	in = openat_beneath(xos, "in", O_PATH | O_DIRECTORY, 0);
	if (in < 0)
		return in;
	snprintf(tmp, sizeof(tmp), ".new.%s", name);
	r = write_file_atomic_at(xos, tmp, data, len, 0644, false);
	if (r < 0)
		return r;
	if (renameat(xos, tmp, in, name) < 0) {
		r = -errno;
		unlinkat(xos, tmp, 0);
		return r;
	}
	if (j->init_pid > 0 && kill(j->init_pid, SIGUSR1) < 0 && errno != ESRCH)
		return -errno;
	return 0;
}

static bool env_has(char **env, const char *key)
{
	size_t kl = strlen(key);

	for (size_t i = 0; env && env[i]; i++)
		if (!strncmp(env[i], key, kl) && env[i][kl] == '=')
			return true;
	return false;
}

/* The job's default environment, then the user's items (which win). */
static int unit_env(struct job *j, char **env, char ***ret)
{
	char hostname[XOS_JOB_ID_SHORT + 1];
	const char *defaults[][2] = {
		{ "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" },
		{ "HOME", j->home ? j->home : "/" },
		{ "USER", j->user },
		{ "LOGNAME", j->user },
		{ "HOSTNAME", j->name ? j->name : hostname },
		{ "XOS_JOB_ID", j->id },
		{ "TERM", "xterm" },
		{ "XOS_CHECKPOINT_READY", "/tmp/.xos-checkpoint-ready" },
	};
	_cleanup_strv_free_ char **v = NULL;
	int r = 0;

	memcpy(hostname, j->id, XOS_JOB_ID_SHORT);
	hostname[XOS_JOB_ID_SHORT] = 0;
	for (size_t i = 0; r >= 0 && i < ELEMENTSOF(defaults); i++) {
		if (env_has(env, defaults[i][0]) || (!j->tty && !strcmp(defaults[i][0], "TERM")) ||
		    (!j->ckpt.signal && !strcmp(defaults[i][0], "XOS_CHECKPOINT_READY")))
			continue;
		r = strv_push(&v, xstrdup_printf("%s=%s", defaults[i][0], defaults[i][1]));
	}
	for (size_t i = 0; r >= 0 && env && env[i]; i++)
		r = strv_push(&v, strdup(env[i]));
	if (r < 0)
		return r;
	if (!v && !(v = calloc(1, sizeof(char *))))
		return -ENOMEM;
	*ret = TAKE_PTR(v);
	return 0;
}

int container_write_unit_spec(struct daemon *d, struct job *j, unsigned n, char **argv, char **env,
			      const char *cwd, bool tty)
{
	_cleanup_strv_free_ char **full_env = NULL;
	_cleanup_free_ char *buf = NULL;
	struct loader_spec spec = {
		.unit = n,
		.uid = j->uid,
		.gid = j->gid,
		.groups = j->groups,
		.n_groups = j->n_groups,
		.cwd = (char *)(cwd ? cwd : "/"),
		.argv = argv,
		.tty = tty,
		.log_size = j->log_size ? j->log_size : d->cfg->log_size_default,
	};
	char name[32];
	size_t len;
	int r;

	r = unit_env(j, env, &full_env);
	if (r < 0)
		return r;
	spec.env = full_env;
	r = loader_spec_format(&spec, &buf, &len);
	if (r < 0)
		return r;
	snprintf(name, sizeof(name), "unit.%u", n);
	return drop_request(j, name, buf, len);
}

int container_signal(struct daemon *d, struct job *j, unsigned unit, int sig)
{
	char name[64];

	(void)d;
	snprintf(name, sizeof(name), "signal.%u.%d.%08u", unit, sig, ++j->signal_seq);
	return drop_request(j, name, "", 0);
}
