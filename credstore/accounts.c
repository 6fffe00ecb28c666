/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Account mapping: the node owner's grid-map file, and pool accounts leased
 * per VO, kept in xos's own state file (never in /etc/passwd, DECISIONS (af)):
 *   group <vo> <gid>
 *   account <name> <uid> <gid> <vo> <last used, unix seconds> <home> <DN...>
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "credstore/credstore.h"

#define ACCOUNTS_MAX 100000
#define STATE_MAX (64 << 20)
#define GRIDMAP_MAX (1 << 20)
#define TOUCH_PERSIST_US (60ULL * 1000000) /* last use is written at most this often */

struct vo_group {
	char *vo;
	gid_t gid;
};

struct credstore_accounts {
	int dirfd;
	const struct credstore_config *cfg;
	bool sync;
	struct credstore_account *acc;
	size_t n_acc;
	struct vo_group *groups;
	size_t n_groups;
};

void credstore_account_done(struct credstore_account *a)
{
	free(a->name);
	free(a->home);
	free(a->vo);
	free(a->dn);
	*a = (struct credstore_account){ 0 };
}

void credstore_accounts_free(struct credstore_accounts *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n_acc; i++)
		credstore_account_done(&a->acc[i]);
	for (size_t i = 0; i < a->n_groups; i++)
		free(a->groups[i].vo);
	free(a->acc);
	free(a->groups);
	if (a->dirfd >= 0)
		close(a->dirfd);
	free(a);
}

static void accounts_freep(struct credstore_accounts **a)
{
	credstore_accounts_free(*a);
}

size_t credstore_accounts_count(const struct credstore_accounts *a)
{
	return a->n_acc;
}

const struct credstore_account *credstore_accounts_by_uid(const struct credstore_accounts *a,
							  uid_t uid)
{
	for (size_t i = 0; i < a->n_acc; i++)
		if (a->acc[i].uid == uid)
			return &a->acc[i];
	return NULL;
}

const struct credstore_account *credstore_accounts_by_name(const struct credstore_accounts *a,
							   const char *name)
{
	for (size_t i = 0; a && i < a->n_acc; i++)
		if (!strcmp(a->acc[i].name, name))
			return &a->acc[i];
	return NULL;
}

static int add_group(struct credstore_accounts *a, const char *vo, gid_t gid)
{
	struct vo_group *g = realloc(a->groups, (a->n_groups + 1) * sizeof(*g));

	if (!g)
		return -ENOMEM;
	a->groups = g;
	g[a->n_groups].vo = strdup(vo);
	g[a->n_groups].gid = gid;
	if (!g[a->n_groups].vo)
		return -ENOMEM;
	a->n_groups++;
	return 0;
}

/* takes the strings of acc */
static int add_account(struct credstore_accounts *a, struct credstore_account *acc)
{
	struct credstore_account *n;

	if (a->n_acc >= ACCOUNTS_MAX)
		return -ENOSPC;
	n = realloc(a->acc, (a->n_acc + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	a->acc = n;
	a->acc[a->n_acc++] = *acc;
	*acc = (struct credstore_account){ 0 };
	return 0;
}

static const struct vo_group *group_of(const struct credstore_accounts *a, const char *vo)
{
	for (size_t i = 0; i < a->n_groups; i++)
		if (!strcmp(a->groups[i].vo, vo))
			return &a->groups[i];
	return NULL;
}

static int parse_account(struct credstore_accounts *a, char *rest)
{
	struct credstore_account acc = { .pool = true };
	char *f[6];
	uint64_t used;
	int r = -EBADMSG;

	for (int i = 0; i < 6; i++)
		if (!(f[i] = strsep(&rest, " ")))
			return -EBADMSG;
	if (!rest || !*rest || parse_uid(f[1], &acc.uid) < 0 || parse_uid(f[2], &acc.gid) < 0 ||
	    !credstore_vo_name_valid(f[3]) || parse_uint64(f[4], &used) < 0 || f[5][0] != '/' ||
	    rest[0] != '/')
		return -EBADMSG;
	acc.name = strdup(f[0]);
	acc.vo = strdup(f[3]);
	acc.home = strdup(f[5]);
	acc.dn = strdup(rest);
	acc.last_used_us = used * 1000000;
	if (acc.name && acc.vo && acc.home && acc.dn)
		r = add_account(a, &acc);
	else
		r = -ENOMEM;
	credstore_account_done(&acc);
	return r;
}

static int parse_line(struct credstore_accounts *a, char *line)
{
	char *kind = strsep(&line, " ");
	gid_t gid;

	if (!line)
		return -EBADMSG;
	if (!strcmp(kind, "account"))
		return parse_account(a, line);
	if (!strcmp(kind, "group")) {
		char *vo = strsep(&line, " ");

		if (!line || !credstore_vo_name_valid(vo) || parse_uid(line, &gid) < 0)
			return -EBADMSG;
		return add_group(a, vo, gid);
	}
	return -EBADMSG;
}

static int load_state(struct credstore_accounts *a, char **ret_error)
{
	_cleanup_free_ char *text = NULL;
	char *line, *save = NULL;
	unsigned n = 0;
	int r = read_file_at(a->dirfd, CREDSTORE_ACCOUNTS_FILE, STATE_MAX, &text, NULL);

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		n++;
		if (line[0] == '#')
			continue;
		r = parse_line(a, line);
		if (r < 0) {
			*ret_error = xstrdup_printf("Damaged pool account state %s, line %u",
						    CREDSTORE_ACCOUNTS_FILE, n);
			return r;
		}
	}
	return 0;
}

int credstore_accounts_open(int state_dirfd, const struct credstore_config *cfg, bool sync,
			    struct credstore_accounts **ret, char **ret_error)
{
	_cleanup_(accounts_freep) struct credstore_accounts *a = calloc(1, sizeof(*a));
	int r;

	if (!a)
		return -ENOMEM;
	a->cfg = cfg;
	a->sync = sync;
	a->dirfd = fcntl(state_dirfd, F_DUPFD_CLOEXEC, 3);
	if (a->dirfd < 0)
		return -errno;
	r = load_state(a, ret_error);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(a);
	return 0;
}

static int save_state(struct credstore_accounts *a)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return -ENOMEM;
	fputs("# xos pool accounts and VO groups, written by xosd (libnss_xos reads it)\n", f);
	for (size_t i = 0; i < a->n_groups; i++)
		fprintf(f, "group %s %u\n", a->groups[i].vo, (unsigned)a->groups[i].gid);
	for (size_t i = 0; i < a->n_acc; i++) {
		const struct credstore_account *c = &a->acc[i];

		fprintf(f, "account %s %u %u %s %" PRIu64 " %s %s\n", c->name, (unsigned)c->uid,
			(unsigned)c->gid, c->vo, c->last_used_us / 1000000, c->home, c->dn);
	}
	if (fclose(f) != 0)
		return -ENOMEM;
	return write_file_atomic_at(a->dirfd, CREDSTORE_ACCOUNTS_FILE, text, len, 0644, a->sync);
}

/* ---- the grid-map file: "DN" account | vo:VO[/ROLE] account */

static char *gridmap_field(char **p)
{
	char *s = *p, *e;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '"') {
		e = strchr(++s, '"');
		if (!e)
			return NULL;
		*e = 0;
		*p = e + 1;
		return s;
	}
	e = s + strcspn(s, " \t");
	if (*e)
		*e++ = 0;
	*p = e;
	return *s ? s : NULL;
}

/* 3: the DN, 2: VO and role, 1: the VO; 0: no match */
static int gridmap_rank(const char *key, const struct credstore_identity *id)
{
	const char *role = credstore_role_to_string(id->role);
	size_t n;

	if (key[0] == '/')
		return !strcmp(key, id->dn) ? 3 : 0;
	if (!str_has_prefix(key, "vo:"))
		return 0;
	key += 3;
	n = strlen(id->vo);
	if (strncmp(key, id->vo, n) != 0)
		return 0;
	if (key[n] == 0)
		return 1;
	return key[n] == '/' && role && !strcmp(key + n + 1, role) ? 2 : 0;
}

/* The account the grid-map file gives id: 0 and its name, -ENOENT. */
static int gridmap_lookup(const char *path, const struct credstore_identity *id, char **ret)
{
	_cleanup_free_ char *text = NULL, *best = NULL;
	char *line, *save = NULL;
	int best_rank = 0;
	int r = read_file_at(AT_FDCWD, path, GRIDMAP_MAX, &text, NULL);

	if (r < 0)
		return r == -ENOENT ? -ENOENT : r;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *p = line, *key, *account;
		int rank;

		if (line[strspn(line, " \t")] == '#')
			continue;
		key = gridmap_field(&p);
		account = key ? gridmap_field(&p) : NULL;
		if (!account)
			continue;
		rank = gridmap_rank(key, id);
		if (rank > best_rank) {
			free(best);
			best = strdup(account);
			if (!best)
				return -ENOMEM;
			best_rank = rank;
		}
	}
	if (!best)
		return -ENOENT;
	*ret = TAKE_PTR(best);
	return 0;
}

/* ---- pool leases */

static struct credstore_account *lease_of(struct credstore_accounts *a,
					  const struct credstore_identity *id)
{
	for (size_t i = 0; i < a->n_acc; i++)
		if (!strcmp(a->acc[i].vo, id->vo) && !strcmp(a->acc[i].dn, id->dn))
			return &a->acc[i];
	return NULL;
}

static bool uid_taken(const struct credstore_accounts *a, uid_t uid)
{
	return credstore_accounts_by_uid(a, uid) || getpwuid(uid);
}

static bool gid_taken(const struct credstore_accounts *a, gid_t gid)
{
	for (size_t i = 0; i < a->n_groups; i++)
		if (a->groups[i].gid == gid)
			return true;
	return getgrgid(gid) != NULL;
}

static bool name_taken(const struct credstore_accounts *a, const char *name)
{
	for (size_t i = 0; i < a->n_acc; i++)
		if (!strcmp(a->acc[i].name, name))
			return true;
	return getpwnam(name) != NULL;
}

static int vo_gid(struct credstore_accounts *a, const char *vo, gid_t *ret)
{
	const struct vo_group *g = group_of(a, vo);
	int r;

	if (g) {
		*ret = g->gid;
		return 0;
	}
	for (gid_t gid = a->cfg->pool_min; gid <= a->cfg->pool_max; gid++) {
		if (gid_taken(a, gid))
			continue;
		r = add_group(a, vo, gid);
		if (r < 0)
			return r;
		*ret = gid;
		return 0;
	}
	return -ENOSPC;
}

static int free_uid(struct credstore_accounts *a, uid_t *ret)
{
	for (uid_t uid = a->cfg->pool_min; uid <= a->cfg->pool_max; uid++)
		if (!uid_taken(a, uid)) {
			*ret = uid;
			return 0;
		}
	return -ENOSPC;
}

static char *free_name(struct credstore_accounts *a, const char *vo)
{
	for (unsigned n = 1; n <= ACCOUNTS_MAX; n++) {
		char *name = xstrdup_printf("xos-%s-%03u", vo, n);

		if (!name || !name_taken(a, name))
			return name;
		free(name);
	}
	return NULL;
}

/* Open (making it) directory name below at. */
static int open_made(int at, const char *name, mode_t mode)
{
	if (mkdirat(at, name, mode) < 0 && errno != EEXIST)
		return -errno;
	return open_dir_at(at, name);
}

/* <pool_home>/<vo>/<name>, the account's own (0700); an existing one must be
 * its already. Every step below pool_home through directory fds. */
static int open_home(const struct credstore_accounts *a, const struct credstore_account *acc)
{
	_cleanup_close_ int base = -EBADF, vo = -EBADF, home = -EBADF;
	struct stat st;
	int r = mkdir_p_at(AT_FDCWD, a->cfg->pool_home, 0755);

	if (r < 0)
		return r;
	base = open_dir_at(AT_FDCWD, a->cfg->pool_home);
	if (base < 0)
		return base;
	vo = open_made(base, acc->vo, 0755);
	if (vo < 0)
		return vo;
	home = open_made(vo, acc->name, 0700);
	if (home < 0)
		return home;
	if (fstat(home, &st) < 0)
		return -errno;
	if (st.st_uid == 0 && (fchown(home, acc->uid, acc->gid) < 0 || fchmod(home, 0700) < 0))
		return -errno;
	if (st.st_uid != 0 && st.st_uid != acc->uid)
		return -EEXIST;
	return 0;
}

static int make_home(const struct credstore_accounts *a, const struct credstore_account *acc,
		     char **ret_error)
{
	int r = open_home(a, acc);

	if (r < 0)
		*ret_error = xstrdup_printf(
			"Cannot make the home %s of pool account %s: %s", acc->home, acc->name,
			r == -EEXIST ? "it exists and belongs to another uid" : strerror(-r));
	return r;
}

static int copy_account(const struct credstore_account *from, struct credstore_account *ret)
{
	*ret = (struct credstore_account){ .uid = from->uid,
					   .gid = from->gid,
					   .pool = from->pool,
					   .last_used_us = from->last_used_us };
	ret->name = strdup(from->name);
	ret->home = strdup(from->home);
	ret->vo = strdup(from->vo);
	ret->dn = strdup(from->dn);
	if (ret->name && ret->home && ret->vo && ret->dn)
		return 0;
	credstore_account_done(ret);
	return -ENOMEM;
}

static int new_lease(struct credstore_accounts *a, const struct credstore_identity *id,
		     uint64_t now_us, char **ret_error)
{
	struct credstore_account acc = { .pool = true, .last_used_us = now_us };
	int r = free_uid(a, &acc.uid);

	if (r == 0)
		r = vo_gid(a, id->vo, &acc.gid);
	if (r == -ENOSPC) {
		*ret_error = xstrdup_printf("No free pool account: every id of pool_uids "
					    "%u-%u is taken; ask the node owner for a larger range",
					    (unsigned)a->cfg->pool_min, (unsigned)a->cfg->pool_max);
		return r;
	}
	acc.name = r < 0 ? NULL : free_name(a, id->vo);
	acc.vo = strdup(id->vo);
	acc.dn = strdup(id->dn);
	if (acc.name)
		acc.home = xstrdup_printf("%s/%s/%s", a->cfg->pool_home, id->vo, acc.name);
	if (!acc.name || !acc.vo || !acc.dn || !acc.home) {
		credstore_account_done(&acc);
		return r < 0 ? r : -ENOMEM;
	}
	r = make_home(a, &acc, ret_error);
	if (r == 0)
		r = add_account(a, &acc);
	credstore_account_done(&acc);
	return r < 0 ? r : save_state(a);
}

static int static_account(const char *name, const struct credstore_identity *id,
			  struct credstore_account *ret)
{
	*ret = (struct credstore_account){ 0 };
	ret->name = strdup(name);
	ret->vo = strdup(id->vo);
	ret->dn = strdup(id->dn);
	if (ret->name && ret->vo && ret->dn)
		return 0;
	credstore_account_done(ret);
	return -ENOMEM;
}

int credstore_map(struct credstore_accounts *a, const struct credstore_identity *id,
		  uint64_t now_us, struct credstore_account *ret, char **ret_error)
{
	_cleanup_free_ char *name = NULL;
	struct credstore_account *lease;
	int r = gridmap_lookup(a->cfg->gridmap, id, &name);

	if (r == 0)
		return static_account(name, id, ret);
	if (r != -ENOENT) {
		*ret_error = xstrdup_printf("Cannot read the grid-map file %s: %s", a->cfg->gridmap,
					    strerror(-r));
		return r;
	}
	lease = lease_of(a, id);
	if (!lease && !a->cfg->pool_min) {
		*ret_error = xstrdup_printf("No local account for %s of VO %s: the grid-map file "
					    "has no entry and the node leases no pool accounts "
					    "(xosd.conf pool_uids)",
					    id->dn, id->vo);
		return -EACCES;
	}
	if (!lease) {
		r = new_lease(a, id, now_us, ret_error);
		if (r < 0)
			return r;
		lease = &a->acc[a->n_acc - 1];
	} else if (now_us > lease->last_used_us + TOUCH_PERSIST_US) {
		lease->last_used_us = now_us;
		(void)save_state(a);
	} else
		lease->last_used_us = now_us;
	return copy_account(lease, ret);
}

static bool home_empty(const struct credstore_accounts *a, const struct credstore_account *acc)
{
	_cleanup_close_ int base = open_dir_at(AT_FDCWD, a->cfg->pool_home);
	_cleanup_close_ int vo = base < 0 ? base : open_dir_at(base, acc->vo);
	int home = vo < 0 ? vo : open_dir_at(vo, acc->name);
	DIR *d;
	struct dirent *de;
	bool empty = true;

	if (home == -ENOENT || vo == -ENOENT)
		return true;
	if (home < 0 || !(d = fdopendir(home))) {
		if (home >= 0)
			close(home);
		return false;
	}
	while (empty && (de = readdir(d)))
		empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..");
	closedir(d);
	if (empty)
		(void)unlinkat(vo, acc->name, AT_REMOVEDIR);
	return empty;
}

int credstore_accounts_sweep(struct credstore_accounts *a, uint64_t now_us,
			     credstore_in_use_fn in_use, void *userdata)
{
	int released = 0;

	for (size_t i = 0; i < a->n_acc;) {
		struct credstore_account *acc = &a->acc[i];

		if (now_us < acc->last_used_us + a->cfg->pool_idle_us ||
		    (in_use && in_use(acc->uid, userdata)) || !home_empty(a, acc)) {
			i++;
			continue;
		}
		credstore_account_done(acc);
		memmove(acc, acc + 1, (a->n_acc - i - 1) * sizeof(*acc));
		a->n_acc--;
		released++;
	}
	if (released && save_state(a) < 0)
		return -EIO;
	return released;
}
