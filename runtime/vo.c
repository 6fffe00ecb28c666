/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* VO policies in xosd (DECISIONS (aj)): the node owner's vo_policy_dir/VO.conf
 * and a VO administrator's tightening (STATE_DIR/vo/VO.conf), read again at
 * a request when either file changed; the checks of a grid login's new job,
 * checkpoint and restore; the VOs' isolation groups on the bridge. */
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "runtime/runtime-internal.h"
#include "templates/templates.h"

#define RUN_VO_VOLUMES_MAX 64

#define VO_ADMIN_DIR "vo"

struct vo_entry {
	char *vo;
	struct stat file_st, admin_st; /* as last read (st_ino 0: missing) */
	bool loaded;
	int error; /* < 0: the file is missing or damaged (why) */
	char *why;
	struct credstore_vo_policy pol; /* in force */
};

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static void entry_done(struct vo_entry *e)
{
	free(e->vo);
	free(e->why);
	credstore_vo_policy_done(&e->pol);
}

void vo_free(struct daemon *d)
{
	for (size_t i = 0; i < d->n_vo_entries; i++)
		entry_done(&d->vo_entries[i]);
	free(d->vo_entries);
	d->vo_entries = NULL;
	d->n_vo_entries = 0;
}

static struct vo_entry *entry_of(struct daemon *d, const char *vo)
{
	struct vo_entry *n;

	for (size_t i = 0; i < d->n_vo_entries; i++)
		if (!strcmp(d->vo_entries[i].vo, vo))
			return &d->vo_entries[i];
	n = reallocarray(d->vo_entries, d->n_vo_entries + 1, sizeof(*n));
	if (!n)
		return NULL;
	d->vo_entries = n;
	n = &n[d->n_vo_entries];
	*n = (struct vo_entry){ .vo = strdup(vo) };
	credstore_vo_policy_done(&n->pol); /* (its defaults) */
	if (!n->vo)
		return NULL;
	d->n_vo_entries++;
	return n;
}

/* Whether the node has VO policies at all: a vo_policy_dir that exists. */
static bool have_policies(struct daemon *d)
{
	struct stat st;

	return stat(d->cfg->cred.vo_dir, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Read and parse a policy file: dirfd/name (path for messages). */
static int read_policy(int dirfd, const char *name, const char *path,
		       struct credstore_vo_policy *ret, char **ret_why)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = read_file_at(dirfd, name, CREDSTORE_VO_FILE_MAX, &text, &len);

	if (r < 0) {
		free(*ret_why);
		*ret_why = xstrdup_printf("%s: %s", path, strerror(-r));
		return r;
	}
	return credstore_vo_policy_parse(text, len, path, ret, ret_why);
}

/* The running jobs of vo that the policy now in force would refuse: told
 * in the log (they keep running; a policy applies to new jobs). */
static void report_running(struct daemon *d, struct vo_entry *e)
{
	struct credstore_vo_amounts none = { 0 };

	for (struct job *j = d->jobs; j; j = j->next) {
		_cleanup_free_ char *why = NULL;
		struct credstore_vo_job q = {
			.template = j->template ? j->template : TEMPLATE_HOST,
			.amounts = { j->limits.memory, j->limits.millicpus, j->limits.pids, j->disk,
				     0, j->sched.time_us },
			.net = j->net.mode == NETSETUP_BRIDGE ? CREDSTORE_VO_NET_BRIDGE
							      : CREDSTORE_VO_NET_NONE,
			.ports = j->net.n_ports > 0,
			.checkpoint = j->ckpt.every_us || j->ckpt.restart_on_failure,
		};

		if (!job_is_live(j) || !j->grid_vo || strcmp(j->grid_vo, e->vo) != 0)
			continue;
		if (credstore_vo_check_job(&e->pol, e->vo, &q, &none, &why) < 0)
			log_warn("Job %s of VO %s keeps running under the policy it started "
				 "with; the changed one would refuse it: %s",
				 j->id, e->vo, why ? why : "?");
	}
}

/* Read both files again into e (they changed, or were never read). */
static void reload(struct daemon *d, struct vo_entry *e, const struct stat *fst,
		   const struct stat *ast)
{
	struct credstore_vo_policy base = { 0 }, admin = { 0 }, merged;
	char path[PATH_MAX], name[64], apath[PATH_MAX];
	bool had = e->loaded && e->error == 0;
	int r;

	snprintf(path, sizeof(path), "%s/%s.conf", d->cfg->cred.vo_dir, e->vo);
	snprintf(name, sizeof(name), "%s/%s.conf", VO_ADMIN_DIR, e->vo);
	snprintf(apath, sizeof(apath), "%s/%s", d->cfg->state_dir, name);
	e->loaded = true;
	e->file_st = *fst;
	e->admin_st = *ast;
	r = fst->st_ino ? read_policy(AT_FDCWD, path, path, &base, &e->why) : -ENOENT;
	if (r == -ENOENT) {
		free(e->why);
		e->why = xstrdup_printf("VO %s has no policy on this node (%s): ask the node "
					"owner for one",
					e->vo, path);
	}
	if (r >= 0 && ast->st_ino && read_policy(d->state_fd, name, apath, &admin, &e->why) < 0)
		log_warn("Ignoring the VO administrator's policy of VO %s: %s", e->vo,
			 e->why ? e->why : "?");
	if (r >= 0)
		r = credstore_vo_policy_tighten(&base, admin.files[0] ? &admin : NULL, false,
						&merged, &e->why);
	credstore_vo_policy_done(&base);
	credstore_vo_policy_done(&admin);
	e->error = r < 0 ? r : 0;
	if (r < 0) {
		log_warn("VO %s's jobs are refused: %s", e->vo, e->why ? e->why : strerror(-r));
		return;
	}
	credstore_vo_policy_done(&e->pol);
	e->pol = merged;
	free(e->why);
	e->why = NULL;
	log_info("Policy of VO %s %s (%s%s%s): new jobs get it", e->vo, had ? "changed" : "read",
		 path, ast->st_ino ? ", tightened by " : "", ast->st_ino ? apath : "");
	if (had)
		report_running(d, e);
}

/* The policy in force for vo: *ret NULL when the node has no policies
 * (no vo_policy_dir); -EACCES (err set) when the VO has none or a damaged one. */
int vo_policy(struct daemon *d, const char *vo, const struct credstore_vo_policy **ret,
	      struct xerr *err)
{
	struct stat fst = { 0 }, ast = { 0 };
	char path[PATH_MAX], name[64];
	struct vo_entry *e;

	*ret = NULL;
	if (!have_policies(d))
		return 0;
	if (!(e = entry_of(d, vo)))
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	snprintf(path, sizeof(path), "%s/%s.conf", d->cfg->cred.vo_dir, vo);
	snprintf(name, sizeof(name), "%s/%s.conf", VO_ADMIN_DIR, vo);
	if (stat(path, &fst) < 0)
		fst = (struct stat){ 0 };
	if (fstatat(d->state_fd, name, &ast, AT_SYMLINK_NOFOLLOW) < 0)
		ast = (struct stat){ 0 };
	if (!e->loaded || !same_file(&fst, &e->file_st) || !same_file(&ast, &e->admin_st))
		reload(d, e, &fst, &ast);
	if (e->error < 0)
		return xerr_set(err, -EACCES, "permission_denied", "%s",
				e->why ? e->why : "The VO's policy cannot be read");
	*ret = &e->pol;
	return 0;
}

uint64_t vo_fair_share(struct daemon *d, const char *vo)
{
	const struct credstore_vo_policy *p;
	_cleanup_xerr_ struct xerr err = { 0 };

	if (vo_policy(d, vo, &p, &err) < 0 || !p)
		return 1;
	return p->fair_share ? p->fair_share : 1;
}

/* What the live jobs of vo hold (but skip). */
static void vo_usage(struct daemon *d, const char *vo, const struct job *skip,
		     struct credstore_vo_amounts *ret)
{
	*ret = (struct credstore_vo_amounts){ 0 };
	for (struct job *j = d->jobs; j; j = j->next) {
		if (j == skip || !job_is_live(j) || !j->grid_vo || strcmp(j->grid_vo, vo) != 0)
			continue;
		ret->memory += j->limits.memory;
		ret->millicpus += j->limits.millicpus;
		ret->pids += j->limits.pids;
		ret->disk += j->disk;
		ret->jobs++;
	}
}

/* The node's default, where the policy's per-job limit is lower. */
static void clamp(uint64_t *v, uint64_t lim)
{
	if (lim && (!*v || *v > lim))
		*v = lim;
}

/* A grid login's network: the bridge within the VO's group ("vo-VO"),
 * outbound traffic only where the policy allows it. */
static int vo_net(const struct credstore_vo_policy *p, const char *vo, bool group_given,
		  struct job *j, struct xerr *err)
{
	if (j->net.mode != NETSETUP_BRIDGE)
		return 0;
	if (group_given)
		return xerr_set(err, -EPERM, "permission_denied",
				"A grid job's network group is its VO's (vo-%s); drop --group", vo);
	snprintf(j->net.group, sizeof(j->net.group), "vo-%s", vo);
	j->net.no_outbound = p && p->net < CREDSTORE_VO_NET_OUTBOUND;
	return 0;
}

int vo_check_group(const struct conn *c, const char *group, struct xerr *err)
{
	if (!group || c->grid || c->uid == 0 || strncmp(group, "vo-", 3) != 0)
		return 0;
	return xerr_set(err, -EPERM, "permission_denied",
			"Groups named vo-* are the VOs' own (each VO's grid jobs share one); "
			"choose another --group");
}

static void job_of(const struct job *j, const char **vols, size_t *n_vols,
		   struct credstore_vo_job *q)
{
	*n_vols = 0;
	for (size_t i = 0; i < j->n_volumes; i++)
		if (!j->volumes[i].home && *n_vols < RUN_VO_VOLUMES_MAX)
			vols[(*n_vols)++] = j->volumes[i].src;
	*q = (struct credstore_vo_job){
		.template = j->template ? j->template : TEMPLATE_HOST,
		.amounts = { j->limits.memory, j->limits.millicpus, j->limits.pids, j->disk, 0,
			     j->sched.time_us },
		.net = j->net.mode == NETSETUP_BRIDGE ? CREDSTORE_VO_NET_BRIDGE
						      : CREDSTORE_VO_NET_NONE,
		.ports = j->net.n_ports > 0,
		.volumes = vols,
		.n_volumes = *n_vols,
		.checkpoint = j->ckpt.every_us || j->ckpt.restart_on_failure,
	};
}

static int check(const struct credstore_vo_policy *p, const char *vo,
		 const struct credstore_vo_job *q, const struct credstore_vo_amounts *used,
		 struct xerr *err)
{
	_cleanup_free_ char *why = NULL;
	int r = credstore_vo_check_job(p, vo, q, used, &why);

	if (r < 0)
		xerr_set(err, r == -ENOMEM ? r : -EACCES,
			 r == -ENOMEM ? "internal" : "permission_denied", "%s",
			 why ? why : "Out of memory");
	return r;
}

int vo_check_run(struct daemon *d, struct conn *c, struct job *j, const struct vo_run *how,
		 struct xerr *err)
{
	const struct credstore_vo_policy *p = NULL;
	const char *vo = grid_conn_vo(c), *vols[RUN_VO_VOLUMES_MAX];
	struct credstore_vo_amounts used;
	struct credstore_vo_job q;
	size_t n_vols;
	int r;

	if (!vo)
		return 0;
	if ((r = vo_policy(d, vo, &p, err)) < 0 ||
	    (r = vo_net(p, vo, how->group_given, j, err)) < 0)
		return r;
	if (!p)
		return 0;
	if (!how->limits_given) {
		clamp(&j->limits.memory, p->job.memory);
		clamp(&j->limits.millicpus, p->job.millicpus);
		clamp(&j->limits.pids, p->job.pids);
	}
	if (!how->disk_given)
		clamp(&j->disk, p->job.disk);
	clamp(&j->sched.time_us, p->job.time_us);
	job_of(j, vols, &n_vols, &q);
	vo_usage(d, vo, j, &used);
	return check(p, vo, &q, &used, err);
}

/* A checkpoint of a VO's job: the policy's right and storage quota. */
int vo_check_checkpoint(struct daemon *d, struct job *j, struct xerr *err)
{
	const struct credstore_vo_policy *p = NULL;
	_cleanup_free_ char *why = NULL;
	uint64_t used = 0;
	int r;

	if (!j->grid_vo)
		return 0;
	if ((r = vo_policy(d, j->grid_vo, &p, err)) < 0 || !p)
		return r;
	for (struct job *k = d->jobs; k; k = k->next)
		if (k->grid_vo && !strcmp(k->grid_vo, j->grid_vo))
			used += k->ckpt_bytes;
	r = credstore_vo_check_checkpoint(p, j->grid_vo, used, &why);
	if (r < 0)
		return xerr_set(err, -EACCES, "permission_denied", "%s", why ? why : "Refused");
	return 0;
}

/* A restore of a VO's job (DECISIONS (aj)): the restoring credential again
 * (valid, not revoked: the trust directory read anew), the VO still served,
 * the right to restart, and the job within the policy as it is now. */
int vo_check_restore(struct daemon *d, struct conn *c, struct job *j, struct xerr *err)
{
	const struct credstore_vo_policy *p = NULL;
	const char *vols[RUN_VO_VOLUMES_MAX];
	struct credstore_vo_amounts used;
	struct credstore_vo_job q;
	size_t n_vols;
	bool served = false;
	int r;

	if ((r = grid_recheck(d, c, err)) < 0 || !j->grid_vo)
		return r;
	for (char **v = d->cfg->cred.vos; v && *v; v++)
		served = served || !strcmp(*v, j->grid_vo);
	if (!served)
		return xerr_set(err, -EACCES, "permission_denied",
				"Job %.12s belongs to VO %s, which this node no longer serves "
				"(credential_vos in xosd.conf)",
				j->id, j->grid_vo);
	if ((r = vo_check_checkpoint(d, j, err)) < 0 ||
	    (r = vo_policy(d, j->grid_vo, &p, err)) < 0 || !p)
		return r;
	job_of(j, vols, &n_vols, &q);
	vo_usage(d, j->grid_vo, j, &used);
	return check(p, j->grid_vo, &q, &used, err);
}

/* ---- the vo_policy request: show, tighten (set) or reset the admin's file */

static int vo_served(struct daemon *d, const char *vo)
{
	for (char **v = d->cfg->cred.vos; v && *v; v++)
		if (!strcmp(*v, vo))
			return 1;
	return 0;
}

/* Who may do what: root anything; a grid login of the VO show it, its
 * administrators also change it. */
static int policy_access(struct daemon *d, struct conn *c, const char *vo, bool change,
			 struct xerr *err)
{
	const char *own = grid_conn_vo(c);

	if (!vo_served(d, vo))
		return xerr_set(err, -ENOENT, "not_found", "VO %s is not served on this node", vo);
	if (c->uid == 0 && !c->grid)
		return 0;
	if (!own || strcmp(own, vo) != 0)
		return xerr_set(err, -EACCES, "permission_denied",
				"Only VO %s's members (and root) see its policy; log in with "
				"a credential of that VO (xlogin)",
				vo);
	if (change && !grid_conn_admin(c))
		return xerr_set(err, -EACCES, "permission_denied",
				"Only VO %s's administrators (and root) change its policy: log in "
				"with a credential whose role is admin",
				vo);
	return 0;
}

/* The admin's file as it is with the keys of text replaced. */
static int merged_admin_text(struct daemon *d, const char *vo, const char *text, char **ret,
			     struct xerr *err)
{
	struct credstore_vo_policy old = { 0 }, add = { 0 };
	_cleanup_free_ char *why = NULL, *old_text = NULL, *out = NULL;
	char name[64];
	size_t o = 0;
	int r;

	snprintf(name, sizeof(name), "%s/%s.conf", VO_ADMIN_DIR, vo);
	r = credstore_vo_policy_parse(text, strlen(text), "the change", &add, &why);
	if (r < 0)
		return xerr_set(err, -EINVAL, "invalid_argument", "%s", why ? why : "Invalid");
	if (read_policy(d->state_fd, name, name, &old, &why) >= 0)
		old_text = credstore_vo_policy_format(&old);
	out = calloc(1, (old_text ? strlen(old_text) : 0) + strlen(text) + 2);
	for (char *l = old_text, *nl; out && l && *l; l = nl + 1) {
		enum credstore_vo_key k;
		char key[64];

		nl = strchr(l, '\n');
		if (!nl || sscanf(l, "%63s", key) != 1)
			break;
		k = credstore_vo_key_from_string(key);
		if ((int)k >= 0 && add.from[k] < 0) {
			memcpy(out + o, l, (size_t)(nl - l) + 1);
			o += (size_t)(nl - l) + 1;
		}
	}
	credstore_vo_policy_done(&old);
	credstore_vo_policy_done(&add);
	if (!out)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	snprintf(out + o, strlen(text) + 2, "%s\n", text);
	*ret = TAKE_PTR(out);
	return 0;
}

/* Check the new admin text against the node owner's file, and write it. */
static int tighten(struct daemon *d, struct conn *c, const char *vo, const char *text,
		   struct xerr *err)
{
	struct credstore_vo_policy base = { 0 }, admin = { 0 }, merged = { 0 };
	_cleanup_free_ char *why = NULL, *all = NULL;
	_cleanup_close_ int dfd = -EBADF;
	char path[PATH_MAX], name[64];
	int r;

	snprintf(path, sizeof(path), "%s/%s.conf", d->cfg->cred.vo_dir, vo);
	snprintf(name, sizeof(name), "%s/%s.conf", VO_ADMIN_DIR, vo);
	if ((r = merged_admin_text(d, vo, text, &all, err)) < 0)
		return r;
	r = read_policy(AT_FDCWD, path, path, &base, &why);
	if (r >= 0)
		r = credstore_vo_policy_parse(all, strlen(all), "the change", &admin, &why);
	if (r >= 0)
		r = credstore_vo_policy_tighten(&base, &admin, true, &merged, &why);
	credstore_vo_policy_done(&base);
	credstore_vo_policy_done(&admin);
	credstore_vo_policy_done(&merged);
	if (r < 0)
		return xerr_set(err, r == -ENOMEM ? r : -EPERM,
				r == -ENOMEM ? "internal" : "permission_denied", "%s",
				why ? why : "Refused");
	if (mkdirat(d->state_fd, VO_ADMIN_DIR, 0700) < 0 && errno != EEXIST)
		return xerr_set(err, -errno, "internal", "Cannot make %s: %m", VO_ADMIN_DIR);
	dfd = open_dir_at(d->state_fd, VO_ADMIN_DIR);
	r = dfd < 0 ? dfd
		    : write_file_atomic_at(dfd, name + strlen(VO_ADMIN_DIR) + 1, all, strlen(all),
					   0600, d->cfg->sync_writes);
	if (r < 0)
		return xerr_set(err, r, "internal", "Cannot write %s: %s", name, strerror(-r));
	log_info("VO %s's policy tightened by %s: %s", vo, c->grid ? "its administrator" : "root",
		 text);
	return 0;
}

static int reply_policy(struct daemon *d, struct conn *c, const char *vo, struct xerr *err)
{
	const struct credstore_vo_policy *p = NULL;
	_cleanup_gen_ yajl_gen g = NULL;
	_cleanup_free_ char *text = NULL;
	int r = vo_policy(d, vo, &p, err);

	if (r < 0)
		return r;
	g = ops_reply_begin();
	text = p ? credstore_vo_policy_format(p) : strdup("");
	if (!g || !text)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	json_gen_kv_str(g, "vo", vo);
	json_gen_kv_str(g, "file", p ? p->files[0] : NULL);
	json_gen_kv_str(g, "admin_file", p ? p->files[1] : NULL);
	json_gen_kv_str(g, "policy", text);
	conn_send_map(c, g);
	c->mode = CONN_CLOSING;
	return 0;
}

int ops_vo_policy(struct daemon *d, struct conn *c, yajl_val t, struct xerr *err)
{
	const char *vo = grid_conn_vo(c), *set = NULL;
	bool reset = false;
	char name[64];
	int r;

	if (json_get_string(t, "vo", &vo) == -EINVAL ||
	    json_get_string(t, "set", &set) == -EINVAL ||
	    json_get_bool(t, "reset", &reset) == -EINVAL)
		return xerr_set(err, -EINVAL, "bad_request",
				"Fields 'vo', 'set' (strings) and 'reset' (boolean)");
	if (!vo)
		return xerr_set(err, -EINVAL, "invalid_argument", "Name a VO (--vo VO)");
	if ((r = policy_access(d, c, vo, set || reset, err)) < 0)
		return r;
	if (!have_policies(d))
		return xerr_set(err, -ENOENT, "not_found",
				"This node has no VO policies (no %s): its own limits apply",
				d->cfg->cred.vo_dir);
	snprintf(name, sizeof(name), "%s/%s.conf", VO_ADMIN_DIR, vo);
	if (reset && unlinkat(d->state_fd, name, 0) < 0 && errno != ENOENT)
		return xerr_set(err, -errno, "internal", "Cannot remove %s: %m", name);
	if (reset)
		log_info("VO %s's policy is the node owner's file again (reset by %s)", vo,
			 c->grid ? "its administrator" : "root");
	if (set && (r = tighten(d, c, vo, set, err)) < 0)
		return r;
	return reply_policy(d, c, vo, err);
}
