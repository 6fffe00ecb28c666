/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The template catalogue in xosd: the template_* requests of xtemplate.
 * Imports and removals run in a helper process (xos-template-helper, see
 * templates/helper.c) that reports over a pipe, so the event loop never
 * waits for an archive or a disk, and a crash in an archive reader is the
 * helper's alone. The helper dies with xosd (PDEATHSIG); what an interrupted
 * import left is removed at the next start (template_catalog_open). */
#include <fcntl.h>
#include <locale.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "runtime/runtime-internal.h"
#include "templates/templates.h"

#define HELPER_ARG TEMPLATE_HELPER_ARG
#define FD_SRC TEMPLATE_HELPER_FD_SRC
#define FD_CATALOG TEMPLATE_HELPER_FD_CATALOG
#define FD_REPORT TEMPLATE_HELPER_FD_REPORT
#define LINE_MAX_LEN 4096

enum task_kind { TASK_IMPORT, TASK_REMOVE };

struct template_task {
	enum task_kind kind;
	pid_t pid;
	int fd;            /* the helper's report pipe */
	struct conn *conn; /* the xtemplate waiting for an import, or NULL */
	char *name;        /* the template imported */
	char *dir;         /* its staging directory, or the removed directory */
	char *error;       /* the helper's "error" line */
	bool ok;           /* the helper's "ok" line */
	char buf[LINE_MAX_LEN];
	size_t len;
	struct template_task *next;
};

struct template_state {
	struct template_task *tasks;
	bool started; /* every job is loaded: removed templates may be collected */
};

static struct template_state *state(struct daemon *d)
{
	if (!d->tpl)
		d->tpl = calloc(1, sizeof(*d->tpl));
	return d->tpl;
}

static void task_free(struct template_task *t)
{
	closep(&t->fd);
	free(t->name);
	free(t->dir);
	free(t->error);
	free(t);
}

/* ---- who uses a template ---- */

/* Checkpoints pin templates too: a version restores onto its template. The
 * ended (or checkpointed and stopped) jobs on it that have versions. */
static size_t checkpoint_users(struct daemon *d, const char *name, const struct conn *c,
			       char ***ids)
{
	size_t n = 0;

	for (struct job *j = d->jobs; j; j = j->next) {
		_cleanup_free_ unsigned *versions = NULL;
		size_t nv = 0;

		if (job_is_live(j) || !j->template || strcmp(j->template, name) != 0)
			continue;
		if (c && !job_may_see(j, c->uid)) /* others' jobs are not counted */
			continue;
		if (ckpt_job_versions(d->ckpt, j, &versions, &nv) < 0 || nv == 0)
			continue;
		n++;
		if (ids)
			(void)strv_push(
				ids, xstrdup_printf("%.*s (checkpoints)", XOS_JOB_ID_SHORT, j->id));
	}
	return n;
}

/* How many live jobs (and checkpointed ones) use template name, of those c may
 * see (c NULL: all), and their ids in *ids unless ids is NULL. */
static size_t template_users(struct daemon *d, const char *name, const struct conn *c, char ***ids)
{
	size_t n = 0;

	for (struct job *j = d->jobs; j; j = j->next) {
		if (!job_is_live(j) || !j->template || strcmp(j->template, name) != 0 ||
		    (c && !job_may_see(j, c->uid)))
			continue;
		n++;
		if (ids)
			(void)strv_push(ids, strndup(j->id, XOS_JOB_ID_SHORT));
	}
	return n + checkpoint_users(d, name, c, ids);
}

/* ---- helper processes ---- */

/* Fork and execute the helper (xos-template-helper) with fds src (or none),
 * the catalogue and the report pipe at FD_SRC, FD_CATALOG, FD_REPORT. */
static int spawn(struct daemon *d, char **argv, int src, struct template_task *t)
{
	struct spawn_opts o = { .path = d->template_helper,
				.argv = argv,
				.first_fd = FD_SRC,
				.fds = { src, d->catalog_fd, SPAWN_REPORT },
				.n_fds = 3,
				.flags = SPAWN_PDEATHSIG };
	int r = spawn_program(&o, &t->pid, &t->fd);

	if (r < 0)
		return r;
	if ((r = daemon_epoll_add(d, t->fd, EPOLLIN, EP_TEMPLATE, t)) < 0) {
		kill(t->pid, SIGKILL);
		while (waitpid(t->pid, NULL, 0) < 0 && errno == EINTR)
			;
		return r;
	}
	t->next = state(d)->tasks;
	state(d)->tasks = t;
	return 0;
}

static bool removal_running(struct daemon *d, const char *dir)
{
	for (struct template_task *t = d->tpl ? d->tpl->tasks : NULL; t; t = t->next)
		if (t->kind == TASK_REMOVE && !strcmp(t->dir, dir))
			return true;
	return false;
}

/* Delete dir (a staging or removed directory) in a helper. */
static void start_removal(struct daemon *d, const char *dir)
{
	struct template_task *t;
	char *argv[] = { "xosd", HELPER_ARG, "remove", (char *)dir, NULL };
	int r;

	if (!state(d) || removal_running(d, dir))
		return;
	t = calloc(1, sizeof(*t));
	if (!t || !(t->dir = strdup(dir))) {
		free(t);
		log_error("Failed to remove %s from the template catalogue: Out of memory", dir);
		return;
	}
	t->kind = TASK_REMOVE;
	t->fd = -EBADF;
	if ((r = spawn(d, argv, -EBADF, t)) < 0) {
		log_error("Failed to remove %s from the template catalogue: %s", dir, strerror(-r));
		task_free(t);
	}
}

/* Removed templates whose storage no live job can still hold go. */
static void collect_removed(struct daemon *d)
{
	_cleanup_strv_free_ char **dirs = NULL;

	if (d->catalog_fd < 0 || template_list_removed(d->catalog_fd, &dirs) < 0)
		return;
	for (size_t i = 0; dirs[i]; i++) {
		_cleanup_free_ char *name = NULL;

		if (template_removed_name(d->catalog_fd, dirs[i], &name) >= 0 &&
		    template_users(d, name, NULL, NULL) > 0)
			continue;
		start_removal(d, dirs[i]);
	}
}

void template_ops_start(struct daemon *d)
{
	if (!state(d))
		return;
	d->tpl->started = true;
	collect_removed(d);
}

void template_ops_job_gone(struct daemon *d, struct job *j)
{
	/* (not while jobs are loaded at start: a job not loaded yet may use it) */
	if (d->tpl && d->tpl->started && j->template && strcmp(j->template, TEMPLATE_HOST) != 0)
		collect_removed(d);
}

static void send_progress(struct daemon *d, struct template_task *t, const char *line)
{
	unsigned long long v[4];
	_cleanup_gen_ yajl_gen g = NULL;

	if (!t->conn || sscanf(line, "%llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3]) != 4)
		return;
	g = yajl_gen_alloc(NULL);
	if (!g)
		return;
	yajl_gen_map_open(g);
	json_gen_kv_int(g, "v", XOS_PROTO_VERSION);
	json_gen_kv_str(g, "ev", "progress");
	json_gen_kv_uint(g, "read", v[0]);
	json_gen_kv_uint(g, "total", v[1]);
	json_gen_kv_uint(g, "entries", v[2]);
	json_gen_kv_uint(g, "bytes", v[3]);
	conn_send_map(t->conn, g);
	conn_event(d, t->conn, 0); /* flush (an importing conn is never freed here) */
}

static void task_line(struct daemon *d, struct template_task *t, char *line)
{
	if (str_has_prefix(line, "progress "))
		send_progress(d, t, line + 9);
	else if (str_has_prefix(line, "error ")) {
		free(t->error);
		t->error = strdup(line + 6);
	} else if (!strcmp(line, "ok"))
		t->ok = true;
}

static void gen_template(struct daemon *d, const struct conn *c, yajl_gen g, const char *name,
			 const struct template_info *t, const char *err, const char *def);

static void import_done(struct daemon *d, struct template_task *t, int status)
{
	_cleanup_template_info_ struct template_info *info = NULL;
	_cleanup_free_ char *err = NULL, *def = NULL;
	struct conn *c = t->conn;
	int r = -EIO;

	if (t->ok && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		r = template_load(d->catalog_fd, t->name, &info, &err);
	if (r < 0) {
		start_removal(d, t->dir); /* what the import left */
		log_info("Import of template %s failed: %s", t->name,
			 t->error              ? t->error
			 : WIFSIGNALED(status) ? "the import was stopped"
					       : "the import process failed");
	} else {
		template_cache_drop(d);
		log_info("Imported template %s (%llu files, %llu bytes)", t->name,
			 (unsigned long long)info->files, (unsigned long long)info->size);
	}
	if (!c)
		return;
	t->conn = NULL;
	c->tpl_task = NULL;
	if (r < 0) {
		conn_reply_error(c, "invalid_argument", "Import of template %s failed: %s", t->name,
				 t->error ? t->error
				 : err    ? err
					  : "the import process failed (see xosd's log)");
	} else {
		_cleanup_gen_ yajl_gen g = ops_reply_begin();

		if (g && template_get_default(d->catalog_fd, &def) >= 0) {
			json_gen_key(g, "template");
			gen_template(d, c, g, t->name, info, NULL, def);
			conn_send_map(c, g);
		}
		c->mode = CONN_CLOSING;
	}
	conn_event(d, c, 0); /* flushes and frees c */
}

static void task_end(struct daemon *d, struct template_task *t)
{
	int status = 0;

	epoll_ctl(d->epfd, EPOLL_CTL_DEL, t->fd, NULL);
	closep(&t->fd);
	while (waitpid(t->pid, &status, 0) < 0 && errno == EINTR)
		;
	for (struct template_task **p = &d->tpl->tasks; *p; p = &(*p)->next)
		if (*p == t) {
			*p = t->next;
			break;
		}
	if (t->kind == TASK_IMPORT)
		import_done(d, t, status);
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		log_warn("Failed to remove %s from the template catalogue: %s", t->dir,
			 t->error ? t->error : "the helper failed");
	task_free(t);
}

void template_ops_event(struct daemon *d, struct template_task *t)
{
	for (;;) {
		ssize_t n = read(t->fd, t->buf + t->len, sizeof(t->buf) - 1 - t->len);
		char *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0)
			return task_end(d, t);
		t->len += (size_t)n;
		t->buf[t->len] = 0;
		while ((nl = strchr(t->buf, '\n'))) {
			*nl = 0;
			task_line(d, t, t->buf);
			t->len -= (size_t)(nl + 1 - t->buf);
			memmove(t->buf, nl + 1, t->len + 1);
		}
		if (t->len == sizeof(t->buf) - 1)
			t->len = 0; /* an overlong line: dropped */
	}
}

void template_ops_conn_gone(struct daemon *d, struct conn *c)
{
	struct template_task *t = c->tpl_task;

	if (!t)
		return;
	c->tpl_task = NULL;
	t->conn = NULL;
	if (t->kind == TASK_IMPORT && t->pid > 0) {
		log_info("Import of template %s cancelled: its client went away", t->name);
		kill(t->pid, SIGKILL); /* its staging directory goes when it has ended */
	}
}

void template_ops_stop(struct daemon *d)
{
	template_cache_free(d);
	if (!d->tpl)
		return;
	while (d->tpl->tasks) {
		struct template_task *t = d->tpl->tasks;

		d->tpl->tasks = t->next;
		/* what they leave goes at the next start */
		kill(t->pid, SIGKILL);
		while (waitpid(t->pid, NULL, 0) < 0 && errno == EINTR)
			;
		if (t->conn)
			t->conn->tpl_task = NULL;
		task_free(t);
	}
	free(d->tpl);
	d->tpl = NULL;
}

/* ---- requests ---- */

static int get_name(struct conn *c, yajl_val v, const char **ret, struct xerr *err)
{
	if (json_get_string(v, "name", ret) < 0)
		return xerr_set(err, -EINVAL, "bad_request", "Field 'name' (string) is required");
	return 0;
}

static int need_root(struct conn *c, const char *what, struct xerr *err)
{
	if (c->uid == 0)
		return 0;
	return xerr_set(err, -EPERM, "permission_denied", "Only root (the node owner) may %s",
			what);
}

static void gen_template(struct daemon *d, const struct conn *c, yajl_gen g, const char *name,
			 const struct template_info *t, const char *err, const char *def)
{
	_cleanup_strv_free_ char **ids = calloc(1, sizeof(char *));
	size_t n = template_users(d, name, c, &ids);

	yajl_gen_map_open(g);
	json_gen_kv_str(g, "name", name);
	json_gen_kv_bool(g, "builtin", !strcmp(name, TEMPLATE_HOST));
	json_gen_kv_bool(g, "default", def && !strcmp(def, name));
	json_gen_kv_uint(g, "jobs", n);
	json_gen_kv_strv(g, "job_ids", ids);
	if (err)
		json_gen_kv_str(g, "error", err);
	if (t) {
		json_gen_kv_str(g, "checksum", t->checksum);
		json_gen_kv_uint(g, "size", t->size);
		json_gen_kv_uint(g, "files", t->files);
		json_gen_kv_int(g, "created", t->created);
		json_gen_kv_strv(g, "env", t->env);
		json_gen_kv_str(g, "workdir", t->workdir);
		json_gen_kv_str(g, "user", t->user);
		json_gen_kv_uint(g, "uid_base", t->uid_base);
		json_gen_kv_uint(g, "gid_base", t->gid_base);
	}
	yajl_gen_map_close(g);
}

/* One template of a listing: host, or loaded from the catalogue. */
static void gen_named(struct daemon *d, struct conn *c, yajl_gen g, const char *name,
		      const char *def)
{
	_cleanup_template_info_ struct template_info *t = NULL;
	_cleanup_free_ char *err = NULL;

	if (strcmp(name, TEMPLATE_HOST) != 0 && template_load(d->catalog_fd, name, &t, &err) < 0 &&
	    !err)
		err = strdup("cannot be loaded");
	gen_template(d, c, g, name, t, err, def);
}

int ops_template_list(struct daemon *d, struct conn *c, yajl_val v, struct xerr *err)
{
	_cleanup_strv_free_ char **names = NULL;
	_cleanup_free_ char *def = NULL;
	_cleanup_gen_ yajl_gen g = NULL;
	int r;

	if ((r = template_list(d->catalog_fd, &names)) < 0 ||
	    (r = template_get_default(d->catalog_fd, &def)) < 0)
		return xerr_set(err, -EIO, "internal", "Cannot read the template catalogue: %s",
				strerror(-r));
	g = ops_reply_begin();
	if (!g)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	json_gen_key(g, "templates");
	yajl_gen_array_open(g);
	gen_named(d, c, g, TEMPLATE_HOST, def);
	for (size_t i = 0; names[i]; i++)
		gen_named(d, c, g, names[i], def);
	yajl_gen_array_close(g);
	conn_send_map(c, g);
	c->mode = CONN_CLOSING;
	return 0;
}

static bool exists(struct daemon *d, const char *name)
{
	return !strcmp(name, TEMPLATE_HOST) ||
	       (template_name_valid(name) &&
		faccessat(d->catalog_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0);
}

int ops_template_show(struct daemon *d, struct conn *c, yajl_val v, struct xerr *err)
{
	_cleanup_free_ char *def = NULL;
	_cleanup_gen_ yajl_gen g = NULL;
	const char *name;
	int r;

	if ((r = get_name(c, v, &name, err)) < 0)
		return r;
	if (!exists(d, name))
		return xerr_set(err, -ENOENT, "not_found", "No such template: %s", name);
	if ((r = template_get_default(d->catalog_fd, &def)) < 0)
		return xerr_set(err, -EIO, "internal", "Cannot read the default template: %s",
				strerror(-r));
	g = ops_reply_begin();
	if (!g)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	json_gen_key(g, "template");
	gen_named(d, c, g, name, def);
	conn_send_map(c, g);
	c->mode = CONN_CLOSING;
	return 0;
}

int ops_template_default(struct daemon *d, struct conn *c, yajl_val v, struct xerr *err)
{
	_cleanup_template_info_ struct template_info *t = NULL;
	_cleanup_free_ char *why = NULL;
	_cleanup_gen_ yajl_gen g = NULL;
	const char *name;
	int r;

	if ((r = get_name(c, v, &name, err)) < 0 ||
	    (r = need_root(c, "set the default template", err)) < 0)
		return r;
	if (strcmp(name, TEMPLATE_HOST) != 0 &&
	    (r = template_load(d->catalog_fd, name, &t, &why)) < 0)
		return r == -ENOENT
			       ? xerr_set(err, r, "not_found", "No such template: %s", name)
			       : xerr_set(err, r, "conflict", "%s", why ? why : "Bad template");
	r = template_set_default(d->catalog_fd, name);
	template_cache_drop(d);
	if (r < 0)
		return xerr_set(err, -EIO, "internal", "Cannot set the default template: %s",
				strerror(-r));
	log_info("Default template is now %s", name);
	g = ops_reply_begin();
	if (!g)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	json_gen_kv_str(g, "default", name);
	conn_send_map(c, g);
	c->mode = CONN_CLOSING;
	return 0;
}

static char *join_ids(char **ids, size_t n)
{
	_cleanup_free_ char *s = NULL;
	size_t len = 0;

	for (size_t i = 0; ids && ids[i]; i++)
		len += strlen(ids[i]) + 2;
	s = calloc(1, len + 32);
	for (size_t i = 0; s && ids && ids[i]; i++) {
		if (i > 0)
			strcat(s, ", ");
		strcat(s, ids[i]);
	}
	if (s && strv_length(ids) < n)
		strcat(s, strv_length(ids) ? ", and others" : "jobs of other users");
	return TAKE_PTR(s);
}

/* Reply to a removal: which jobs still use it (they keep running). */
static void reply_removed(struct conn *c, const char *name, char **ids, size_t n, bool was_def)
{
	_cleanup_gen_ yajl_gen g = ops_reply_begin();

	if (!g)
		return;
	json_gen_kv_str(g, "removed", name);
	json_gen_kv_uint(g, "jobs", n);
	json_gen_kv_strv(g, "job_ids", ids);
	json_gen_kv_bool(g, "was_default", was_def);
	conn_send_map(c, g);
	c->mode = CONN_CLOSING;
}

int ops_template_remove(struct daemon *d, struct conn *c, yajl_val v, struct xerr *err)
{
	_cleanup_strv_free_ char **ids = calloc(1, sizeof(char *));
	_cleanup_free_ char *dir = NULL, *def = NULL, *list = NULL;
	const char *name;
	bool force = false, was_def;
	size_t n;
	int r;

	if ((r = get_name(c, v, &name, err)) < 0)
		return r;
	if (json_get_bool(v, "force", &force) == -EINVAL)
		return xerr_set(err, -EINVAL, "bad_request", "Field 'force' must be true or false");
	if ((r = need_root(c, "remove templates", err)) < 0)
		return r;
	if (!strcmp(name, TEMPLATE_HOST))
		return xerr_set(err, -EINVAL, "invalid_argument",
				"The built-in template host cannot be removed");
	if (!exists(d, name))
		return xerr_set(err, -ENOENT, "not_found", "No such template: %s", name);
	n = template_users(d, name, c, &ids);
	list = join_ids(ids, n);
	if (n > 0 && !force)
		return xerr_set(err, -EBUSY, "conflict",
				"Template %s is used by %zu job%s (%s); stop them first, "
				"or remove it anyway with --force (they keep running)",
				name, n, n == 1 ? "" : "s", list ? list : "");
	if ((r = template_detach(d->catalog_fd, name, &dir)) < 0)
		return xerr_set(err, -EIO, "internal", "Cannot remove template %s: %s", name,
				strerror(-r));
	was_def = template_get_default(d->catalog_fd, &def) >= 0 && !strcmp(def, name);
	if (was_def && (r = template_set_default(d->catalog_fd, TEMPLATE_HOST)) < 0)
		log_warn("Failed to reset the default template: %s", strerror(-r));
	template_cache_drop(d);
	log_info("Removed template %s%s%s", name, n ? "; still used by " : "", n ? list : "");
	if (n == 0)
		start_removal(d, dir);
	reply_removed(c, name, ids, n, was_def);
	return 0;
}

/* ---- import ---- */

struct import_req {
	const char *name, *workdir, *user;
	char **env;
	bool allow_devices;
};

static bool user_ok(const char *s)
{
	size_t n = strlen(s);

	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == ':' || *p == '/' || *p == 0x7f)
			return false;
	return n > 0 && n <= 64;
}

static int parse_import(struct conn *c, yajl_val v, struct import_req *q, struct xerr *err)
{
	int r;

	if ((r = get_name(c, v, &q->name, err)) < 0)
		return r;
	r = json_get_strv(v, "env", &q->env);
	if ((r < 0 && r != -ENOENT) ||
	    json_get_bool(v, "allow_devices", &q->allow_devices) == -EINVAL ||
	    json_get_string(v, "workdir", &q->workdir) == -EINVAL ||
	    json_get_string(v, "user", &q->user) == -EINVAL)
		return xerr_set(err, -EINVAL, "bad_request",
				"Fields 'env' (strings), 'workdir', 'user' (strings) and "
				"'allow_devices' (boolean) have the wrong type");
	return 0;
}

static int validate_import(struct daemon *d, struct conn *c, struct import_req *q, struct xerr *err)
{
	struct stat st;

	if (!template_name_valid(q->name))
		return xerr_set(err, -EINVAL, "invalid_argument",
				"Invalid template name '%s': use a-z, 0-9, '.', '_', '-' (at most "
				"64, starting with a letter or digit; 'host' and 'default' are "
				"reserved)",
				q->name);
	for (size_t i = 0; q->env && q->env[i]; i++)
		if (!strchr(q->env[i], '=') || q->env[i][0] == '=')
			return xerr_set(err, -EINVAL, "invalid_argument",
					"Environment item '%s' is not K=V", q->env[i]);
	if ((q->workdir && q->workdir[0] != '/') || (q->user && !user_ok(q->user)))
		return xerr_set(err, -EINVAL, "invalid_argument",
				"The working directory must be absolute, the user an account "
				"name or uid");
	if (c->passed_fd < 0 || fstat(c->passed_fd, &st) < 0)
		return xerr_set(err, -EINVAL, "bad_request",
				"No archive came with the request: xtemplate passes an open file "
				"or pipe (SCM_RIGHTS)");
	if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode))
		return xerr_set(err, -EINVAL, "invalid_argument",
				"The archive must be a regular file or a pipe");
	return 0;
}

static bool import_running(struct daemon *d, const char *name)
{
	for (struct template_task *t = d->tpl ? d->tpl->tasks : NULL; t; t = t->next)
		if (t->kind == TASK_IMPORT && !strcmp(t->name, name))
			return true;
	return false;
}

static uint64_t free_bytes(struct daemon *d)
{
	struct statvfs s;

	if (fstatvfs(d->catalog_fd, &s) < 0)
		return 0;
	return (uint64_t)s.f_bavail * s.f_frsize;
}

/* argv of the import helper (see template_helper_main). */
static char **import_argv(struct daemon *d, const struct import_req *q, const char *staging)
{
	uint32_t count = d->subuid_size < d->subgid_size ? d->subuid_size : d->subgid_size;
	_cleanup_strv_free_ char **v = NULL;
	int r = 0;

	r = r ?: strv_push(&v, strdup("xosd"));
	r = r ?: strv_push(&v, strdup(HELPER_ARG));
	r = r ?: strv_push(&v, strdup("import"));
	r = r ?: strv_push(&v, strdup(staging));
	r = r ?: strv_push(&v, strdup(q->name));
	r = r ?: strv_push(&v, xstrdup_printf("%u", (unsigned)d->subuid_base));
	r = r ?: strv_push(&v, xstrdup_printf("%u", (unsigned)d->subgid_base));
	r = r ?: strv_push(&v, xstrdup_printf("%u", (unsigned)count));
	r = r ?: strv_push(&v, xstrdup_printf("%llu", (unsigned long long)free_bytes(d)));
	r = r ?: strv_push(&v, strdup(q->allow_devices ? "1" : "0"));
	r = r ?: strv_push(&v, strdup(q->workdir ? q->workdir : ""));
	r = r ?: strv_push(&v, strdup(q->user ? q->user : ""));
	for (size_t i = 0; r == 0 && q->env && q->env[i]; i++)
		r = strv_push(&v, strdup(q->env[i]));
	return r < 0 ? NULL : TAKE_PTR(v);
}

static int start_import(struct daemon *d, struct conn *c, const struct import_req *q)
{
	_cleanup_strv_free_ char **argv = NULL;
	struct template_task *t = calloc(1, sizeof(*t));
	int r;

	if (!t)
		return -ENOMEM;
	t->kind = TASK_IMPORT;
	t->fd = -EBADF;
	t->name = strdup(q->name);
	r = t->name ? template_staging_create(d->catalog_fd, &t->dir) : -ENOMEM;
	argv = r >= 0 ? import_argv(d, q, t->dir) : NULL;
	if (r >= 0 && !argv)
		r = -ENOMEM;
	if (r >= 0)
		r = spawn(d, argv, c->passed_fd, t);
	if (r < 0) {
		if (t->dir)
			(void)template_rm_tree(d->catalog_fd, t->dir);
		task_free(t);
		return r;
	}
	closep(&c->passed_fd); /* the helper has it */
	t->conn = c;
	c->tpl_task = t;
	c->mode = CONN_TEMPLATE; /* answered when the helper ends */
	log_info("Importing template %s (uid %u)", q->name, (unsigned)c->uid);
	return 0;
}

int ops_template_import(struct daemon *d, struct conn *c, yajl_val v, struct xerr *err)
{
	struct import_req q = { 0 };
	int r;

	if ((r = parse_import(c, v, &q, err)) < 0 || (r = validate_import(d, c, &q, err)) < 0 ||
	    (r = need_root(c, "import templates", err)) < 0)
		goto out;
	if (exists(d, q.name) || import_running(d, q.name)) {
		r = xerr_set(err, -EEXIST, "conflict",
			     "Template %s already exists%s; remove it first (xtemplate remove %s)",
			     q.name, import_running(d, q.name) ? " (being imported)" : "", q.name);
		goto out;
	}
	if ((r = start_import(d, c, &q)) < 0)
		xerr_set(err, r, "internal", "Cannot start the import: %s", strerror(-r));
out:
	strv_free(q.env);
	return r;
}
