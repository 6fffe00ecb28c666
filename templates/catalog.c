/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The catalogue directory: templates, the default, staging and removed
 * directories, and removing trees of any depth. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "templates/templates-internal.h"

#define DEFAULT_FILE "default"
#define STAGING_PREFIX ".import-"
#define REMOVED_PREFIX ".removed-"
/* directory streams kept open while removing: the wide top of a tree; deeper
 * levels reopen their parent with ".." (checked) when they are done */
#define RM_KEEP_OPEN 64

int template_get_default(int catalog_dfd, char **ret_name)
{
	_cleanup_free_ char *text = NULL;
	int r = read_file_at(catalog_dfd, DEFAULT_FILE, 256, &text, NULL);

	if (r == -ENOENT) {
		*ret_name = strdup(TEMPLATE_HOST);
		return *ret_name ? 0 : -ENOMEM;
	}
	if (r < 0)
		return r;
	text[strcspn(text, "\n")] = 0;
	if (!template_name_valid(text) && strcmp(text, TEMPLATE_HOST) != 0)
		return -EBADMSG;
	*ret_name = TAKE_PTR(text);
	return 0;
}

int template_set_default(int catalog_dfd, const char *name)
{
	_cleanup_free_ char *text = NULL;

	if (strcmp(name, TEMPLATE_HOST) == 0)
		return unlinkat(catalog_dfd, DEFAULT_FILE, 0) < 0 && errno != ENOENT ? -errno : 0;
	if (!template_name_valid(name))
		return -EINVAL;
	text = xstrdup_printf("%s\n", name);
	if (!text)
		return -ENOMEM;
	return write_file_atomic_at(catalog_dfd, DEFAULT_FILE, text, strlen(text), 0600, true);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Directories of the catalogue whose name passes keep(), sorted. */
static int list_dirs(int catalog_dfd, bool (*keep)(const char *), char ***ret)
{
	_cleanup_strv_free_ char **v = calloc(1, sizeof(char *));
	int fd = fcntl(catalog_dfd, F_DUPFD_CLOEXEC, 3);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	int r = 0;

	if (!d) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		return r;
	}
	rewinddir(d);
	while (v && r >= 0 && (de = readdir(d))) {
		struct stat st;

		if (!keep(de->d_name) ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode))
			continue;
		r = strv_push(&v, strdup(de->d_name));
	}
	closedir(d);
	if (!v)
		return -ENOMEM;
	if (r < 0)
		return r;
	qsort(v, strv_length(v), sizeof(char *), cmp_str);
	*ret = TAKE_PTR(v);
	return 0;
}

static bool is_staging(const char *n)
{
	return str_has_prefix(n, STAGING_PREFIX);
}

static bool is_removed(const char *n)
{
	return str_has_prefix(n, REMOVED_PREFIX);
}

int template_list(int catalog_dfd, char ***ret_names)
{
	return list_dirs(catalog_dfd, template_name_valid, ret_names);
}

int template_list_removed(int catalog_dfd, char ***ret_dirs)
{
	return list_dirs(catalog_dfd, is_removed, ret_dirs);
}

int template_removed_name(int catalog_dfd, const char *dir, char **ret_name)
{
	_cleanup_close_ int fd = is_removed(dir) ? open_dir_at(catalog_dfd, dir) : -ENOENT;
	_cleanup_free_ char *text = NULL;
	_cleanup_template_info_ struct template_info *t = NULL;
	int r;

	if (fd < 0)
		return fd;
	r = read_file_at(fd, "template.json", 1024 * 1024, &text, NULL);
	if (r < 0)
		return r;
	r = template_info_parse(text, NULL, &t, NULL);
	if (r < 0)
		return r;
	*ret_name = TAKE_PTR(t->name);
	return 0;
}

int template_catalog_open(int state_fd, int *ret_fd)
{
	_cleanup_strv_free_ char **stale = NULL;
	_cleanup_close_ int fd = -EBADF;
	int r;

	if (mkdirat(state_fd, "templates", 0700) < 0 && errno != EEXIST)
		return -errno;
	fd = open_dir_at(state_fd, "templates");
	if (fd < 0)
		return fd;
	if (fchown(fd, 0, 0) < 0 || fchmod(fd, 0700) < 0)
		return -errno;
	r = list_dirs(fd, is_staging, &stale);
	for (size_t i = 0; r >= 0 && stale[i]; i++)
		r = template_rm_tree(fd, stale[i]);
	if (r < 0)
		return r;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/* Make PREFIX + 12 random hex digits, by mkdir or by renaming from. */
static int make_unique(int catalog_dfd, const char *prefix, const char *from, char **ret)
{
	for (int tries = 0; tries < 16; tries++) {
		char id[XOS_JOB_ID_HEX + 1];
		_cleanup_free_ char *name = NULL;
		int r = random_job_id(id);

		if (r < 0)
			return r;
		name = xstrdup_printf("%s%.12s", prefix, id);
		if (!name)
			return -ENOMEM;
		if (from)
			r = renameat2(catalog_dfd, from, catalog_dfd, name, RENAME_NOREPLACE);
		else
			r = mkdirat(catalog_dfd, name, 0700);
		if (r == 0) {
			*ret = TAKE_PTR(name);
			return 0;
		}
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

int template_staging_create(int catalog_dfd, char **ret_name)
{
	return make_unique(catalog_dfd, STAGING_PREFIX, NULL, ret_name);
}

int template_detach(int catalog_dfd, const char *name, char **ret_dir)
{
	if (!template_name_valid(name))
		return -ENOENT;
	return make_unique(catalog_dfd, REMOVED_PREFIX, name, ret_dir);
}

/* ---- removing a tree of any depth, without recursion ---- */

struct rm_frame {
	DIR *d; /* NULL while closed (deep levels) */
	char *name;
	dev_t dev;
	ino_t ino;
};

struct rm_stack {
	struct rm_frame *f;
	size_t n, cap;
	dev_t dev; /* the tree's filesystem: mount points are never crossed */
};

static void rm_stack_free(struct rm_stack *s)
{
	for (size_t i = 0; i < s->n; i++) {
		if (s->f[i].d)
			closedir(s->f[i].d);
		free(s->f[i].name);
	}
	free(s->f);
}

static int rm_push(struct rm_stack *s, int parent, const char *name)
{
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	DIR *d;
	int r;

	if (fd < 0)
		return -errno;
	r = fstat(fd, &st) < 0 ? -errno : st.st_dev != s->dev ? -EBUSY : 0;
	if (r < 0) {
		close(fd);
		return r;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		void *p = realloc(s->f, cap * sizeof(*s->f));

		if (!p) {
			close(fd);
			return -ENOMEM;
		}
		s->f = p;
		s->cap = cap;
	}
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	s->f[s->n] = (struct rm_frame){
		.d = d, .name = strdup(name), .dev = st.st_dev, .ino = st.st_ino
	};
	if (!s->f[s->n].name) {
		closedir(d);
		return -ENOMEM;
	}
	s->n++;
	if (s->n - 1 > RM_KEEP_OPEN) { /* deep: only the innermost stream stays */
		closedir(s->f[s->n - 2].d);
		s->f[s->n - 2].d = NULL;
	}
	return 0;
}

/* The top frame is empty: reopen its parent if needed, remove it, pop. */
static int rm_pop(struct rm_stack *s, int root_parent)
{
	struct rm_frame *top = &s->f[s->n - 1], *up = s->n > 1 ? &s->f[s->n - 2] : NULL;
	int r = 0;

	if (up && !up->d) {
		int fd = openat(dirfd(top->d), "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		struct stat st;

		if (fd < 0)
			return -errno;
		if (fstat(fd, &st) < 0 || st.st_dev != up->dev || st.st_ino != up->ino) {
			close(fd);
			return -ESTALE; /* the tree moved under us */
		}
		up->d = fdopendir(fd);
		if (!up->d) {
			close(fd);
			return -errno;
		}
	}
	if (unlinkat(up ? dirfd(up->d) : root_parent, top->name, AT_REMOVEDIR) < 0)
		r = -errno;
	closedir(top->d);
	free(top->name);
	s->n--;
	return r;
}

static int rm_step(struct rm_stack *s, int root_parent)
{
	struct rm_frame *top = &s->f[s->n - 1];
	struct dirent *de;
	struct stat st;

	errno = 0;
	de = readdir(top->d);
	if (!de)
		return errno ? -errno : rm_pop(s, root_parent);
	if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
		return 0;
	if (fstatat(dirfd(top->d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISDIR(st.st_mode))
		return rm_push(s, dirfd(top->d), de->d_name);
	if (unlinkat(dirfd(top->d), de->d_name, 0) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int template_rm_tree(int dfd, const char *name)
{
	struct rm_stack s = { 0 };
	struct stat st;
	int r;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dfd, name, 0) < 0 ? -errno : 0;
	s.dev = st.st_dev;
	r = rm_push(&s, dfd, name);
	while (r >= 0 && s.n > 0)
		r = rm_step(&s, dfd);
	rm_stack_free(&s);
	return r;
}
