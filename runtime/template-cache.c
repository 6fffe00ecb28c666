/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What every job start would otherwise read from the template catalogue:
 * the node's default template, and per template what a job's layer copies
 * up from the lower layer's /tmp. Lower layers never change (a template's
 * tree is read-only once imported, the host skeleton is a read-only tmpfs),
 * and only xosd changes the catalogue (xtemplate goes through it), so the
 * cache is dropped where xosd does: a new default, a removal, an import. */
#include <fcntl.h>
#include <sys/stat.h>

#include "runtime/runtime-internal.h"
#include "templates/templates.h"

struct tmp_entry {
	char *name;
	struct lower_tmp tmp;
	struct tmp_entry *next;
};

struct template_cache {
	char *default_name; /* NULL: read it at the next use */
	struct tmp_entry *tmps;
};

static struct template_cache *cache(struct daemon *d)
{
	if (!d->tcache)
		d->tcache = calloc(1, sizeof(*d->tcache));
	return d->tcache;
}

int template_cache_default(struct daemon *d, const char **ret_name)
{
	struct template_cache *c = cache(d);
	int r;

	if (!c)
		return -ENOMEM;
	if (!c->default_name && (r = template_get_default(d->catalog_fd, &c->default_name)) < 0)
		return r;
	*ret_name = c->default_name;
	return 0;
}

static int read_lower_tmp(const char *lower_dir, struct lower_tmp *ret)
{
	_cleanup_close_ int lfd = open(lower_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;

	if (lfd < 0)
		return -errno;
	*ret = (struct lower_tmp){ .dir = false };
	if (fstatat(lfd, "tmp", &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
		return 0;
	*ret = (struct lower_tmp){
		.dir = true, .uid = st.st_uid, .gid = st.st_gid, .mode = st.st_mode & 07777
	};
	return 0;
}

int template_cache_lower_tmp(struct daemon *d, const char *name, const char *lower_dir,
			     struct lower_tmp *ret)
{
	struct template_cache *c = cache(d);
	struct tmp_entry *e;
	struct lower_tmp t;
	int r;

	for (e = c ? c->tmps : NULL; e; e = e->next)
		if (!strcmp(e->name, name)) {
			*ret = e->tmp;
			return 0;
		}
	r = read_lower_tmp(lower_dir, &t);
	if (r < 0)
		return r;
	if (strcmp(name, TEMPLATE_HOST) != 0) { /* (the host's files are stored as they are) */
		_cleanup_template_info_ struct template_info *info = NULL;
		_cleanup_free_ char *err = NULL;

		r = template_load(d->catalog_fd, name, &info, &err);
		if (r < 0)
			return r;
		t.shift_uid = info->uid_base;
		t.shift_gid = info->gid_base;
	}
	e = c ? calloc(1, sizeof(*e)) : NULL;
	if (e && (e->name = strdup(name))) { /* (not kept when out of memory) */
		e->tmp = t;
		e->next = c->tmps;
		c->tmps = e;
	} else
		free(e);
	*ret = t;
	return 0;
}

void template_cache_drop(struct daemon *d)
{
	struct template_cache *c = d->tcache;

	if (!c)
		return;
	while (c->tmps) {
		struct tmp_entry *e = c->tmps;

		c->tmps = e->next;
		free(e->name);
		free(e);
	}
	free(c->default_name);
	c->default_name = NULL;
}

void template_cache_free(struct daemon *d)
{
	template_cache_drop(d);
	free(d->tcache);
	d->tcache = NULL;
}

int template_cache_job_info(struct daemon *d, const struct job *j, struct template_info **ret)
{
	_cleanup_template_info_ struct template_info *t = NULL;
	_cleanup_free_ char *err = NULL;

	*ret = NULL;
	if (!j->template_env) { /* a record from before they were kept */
		if (j->template && strcmp(j->template, TEMPLATE_HOST) != 0)
			(void)template_load(d->catalog_fd, j->template, ret, &err);
		return 0;
	}
	t = calloc(1, sizeof(*t));
	if (!t || !(t->env = strv_copy(j->template_env)) ||
	    (j->template_workdir && !(t->workdir = strdup(j->template_workdir))))
		return -ENOMEM;
	*ret = TAKE_PTR(t);
	return 0;
}

int template_cache_keep_on_job(struct job *j, const struct template_info *tpl)
{
	j->template_env = strv_copy(tpl ? tpl->env : NULL);
	j->template_workdir = tpl && tpl->workdir ? strdup(tpl->workdir) : NULL;
	return j->template_env && (!tpl || !tpl->workdir || j->template_workdir) ? 0 : -ENOMEM;
}
