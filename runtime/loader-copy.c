/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The loader a job's containers run: a copy of loader_path named by the
 * sha256 of its bytes, <state>/loader/<sha256>, root's, 0755, made once and
 * never replaced (a link, not a rename, puts it in place). A job keeps its
 * copy for its life, restores included: a new loader_path (a package
 * upgrade, a rebuild) does not pull the file from under its bind mount and
 * its init's executable, which CRIU would then have to re-create (DECISIONS
 * (av)). A copy goes when no job refers to it. Each checkpoint version holds
 * the copy its job ran (ckpt/, "loader"), so that another node, or this one
 * after its copy went, restores the job on the same bytes. */
#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include "runtime/runtime-internal.h"

#define LOADER_DIR "loader"

static bool hex64(const char *s)
{
	return s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

static int hash_fd(int fd, char ret[65])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	ssize_t n;
	int r = 0;

	if (!ctx)
		return -ENOMEM;
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		r = -EIO;
	while (r >= 0 && (n = loop_read(fd, buf, sizeof(buf))) != 0)
		if (n < 0 || EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
			r = n < 0 ? (int)n : -EIO;
	if (r >= 0 && (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32))
		r = -EIO;
	EVP_MD_CTX_free(ctx);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < 32; i++)
		snprintf(ret + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* <state>/loader/<hex>: a copy of the file open at src, unless one is there. */
static int make_copy(struct daemon *d, int dir, int src, const char *hex)
{
	_cleanup_close_ int fd = -EBADF;
	char tmp[64];
	int r;

	if (faccessat(dir, hex, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	snprintf(tmp, sizeof(tmp), ".tmp-%d", (int)getpid());
	(void)unlinkat(dir, tmp, 0);
	fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0700);
	if (fd < 0)
		return -errno;
	r = copy_fd_data(src, fd);
	if (r >= 0 && (fchmod(fd, 0755) < 0 || (d->cfg->sync_writes && fsync(fd) < 0)))
		r = -errno;
	if (r >= 0 && linkat(dir, tmp, dir, hex, 0) < 0 && errno != EEXIST)
		r = -errno;
	(void)unlinkat(dir, tmp, 0);
	if (r >= 0 && d->cfg->sync_writes && fsync(dir) < 0)
		r = -errno;
	return r;
}

static int open_loader_dir(struct daemon *d)
{
	if (mkdirat(d->state_fd, LOADER_DIR, 0755) < 0 && errno != EEXIST)
		return -errno;
	return open_dir_at(d->state_fd, LOADER_DIR);
}

/* The copy of loader_path as it is now: its sha256 in d->loader_hex. */
static int copy_current(struct daemon *d, int dir)
{
	_cleanup_close_ int src = open(d->cfg->loader_path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint64_t key[4];
	int r;

	if (src < 0 || fstat(src, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	key[0] = st.st_dev;
	key[1] = st.st_ino;
	key[2] = (uint64_t)st.st_size;
	key[3] = (uint64_t)st.st_mtim.tv_sec * 1000000000ULL + (uint64_t)st.st_mtim.tv_nsec;
	if (!d->loader_hex[0] || memcmp(key, d->loader_key, sizeof(key))) {
		r = hash_fd(src, d->loader_hex);
		if (r < 0) {
			d->loader_hex[0] = 0;
			return r;
		}
		memcpy(d->loader_key, key, sizeof(key));
	}
	return make_copy(d, dir, src, d->loader_hex);
}

int loader_copy_path(struct daemon *d, struct job *j, char *buf, size_t len)
{
	_cleanup_close_ int dir = open_loader_dir(d);
	int r;

	if (dir < 0)
		return dir;
	if (!hex64(j->loader) || faccessat(dir, j->loader, X_OK, AT_SYMLINK_NOFOLLOW) < 0) {
		char *hex;

		r = copy_current(d, dir);
		if (r < 0)
			return r;
		hex = strdup(d->loader_hex);
		if (!hex)
			return -ENOMEM;
		free(j->loader);
		j->loader = hex;
	}
	r = snprintf(buf, len, "%s/" LOADER_DIR "/%s", d->cfg->state_dir, j->loader);
	return r < 0 || (size_t)r >= len ? -ENAMETOOLONG : 0;
}

/* (by path: a dump's child, which calls it, has none of xosd's fds) */
int loader_copy_file(struct daemon *d, const struct job *j, char *buf, size_t len)
{
	int r;

	if (!hex64(j->loader))
		return -ENOENT;
	r = snprintf(buf, len, "%s/" LOADER_DIR "/%s", d->cfg->state_dir, j->loader);
	if (r < 0 || (size_t)r >= len)
		return -ENAMETOOLONG;
	return access(buf, X_OK) < 0 ? -errno : 0;
}

int loader_copy_adopt(struct daemon *d, struct job *j, int vfd)
{
	_cleanup_close_ int dir = -EBADF, src = -EBADF;
	char hex[65];
	struct stat st;
	int r;

	if (!hex64(j->loader))
		return 0;
	dir = open_loader_dir(d);
	if (dir < 0)
		return dir;
	if (faccessat(dir, j->loader, X_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return 0; /* (this node has it) */
	src = openat(vfd, "loader", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (src < 0)
		return errno == ENOENT ? 0 : -errno; /* (a version from before) */
	if (fstat(src, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || (r = hash_fd(src, hex)) < 0)
		return S_ISREG(st.st_mode) ? r : -EBADMSG;
	if (strcmp(hex, j->loader) != 0)
		return -EBADMSG; /* not the bytes the record names */
	return make_copy(d, dir, src, hex);
}

bool loader_copy_have(struct daemon *d, const char *hex)
{
	_cleanup_close_ int dir = -EBADF;

	/* (a question: the directory is not made for it) */
	if (!hex64(hex) || (dir = open_dir_at(d->state_fd, LOADER_DIR)) < 0)
		return false;
	return faccessat(dir, hex, X_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

int loader_copy_put(struct daemon *d, const char *hex, int vfd)
{
	_cleanup_close_ int dir = -EBADF;

	if (!hex64(hex))
		return -EINVAL;
	if ((dir = open_loader_dir(d)) < 0)
		return dir;
	return link_or_copy_at(dir, hex, vfd, "loader", 0755);
}

/* Does the checkpoint store hold versions of a job xosd does not know? */
static bool store_has_strangers(struct daemon *d)
{
	DIR *dir = opendir(d->cfg->checkpoint_dir);
	struct dirent *de;
	bool found = false;

	if (!dir)
		return errno != ENOENT;
	while (!found && (de = readdir(dir)))
		found = job_id_valid(de->d_name) && !daemon_find_job(d, de->d_name);
	closedir(dir);
	return found;
}

static bool referred(struct daemon *d, const char *hex)
{
	for (struct job *j = d->jobs; j; j = j->next)
		if (j->loader && !strcmp(j->loader, hex))
			return true;
	for (struct job *p = d->pool; p; p = p->next) /* (prepared containers run it too) */
		if (p->loader && !strcmp(p->loader, hex))
			return true;
	return false;
}

/* A job that is not over and names no copy: one from before copies, or
 * one whose record was not written again after its start (a crash); it
 * may run any of them. */
static bool unnamed_live(struct daemon *d)
{
	for (struct job *j = d->jobs; j; j = j->next)
		if (!j->loader && !job_state_is_final(j->state))
			return true;
	return false;
}

void loader_copy_gc(struct daemon *d)
{
	_cleanup_close_ int fd = open_dir_at(d->state_fd, LOADER_DIR);
	DIR *dir;
	struct dirent *de;

	if (fd < 0 || unnamed_live(d) || store_has_strangers(d))
		return;
	dir = opendir_dup(fd);
	if (!dir)
		return;
	rewinddir(dir);
	while ((de = readdir(dir)))
		if ((hex64(de->d_name) && !referred(d, de->d_name)) ||
		    str_has_prefix(de->d_name, ".tmp-"))
			(void)unlinkat(fd, de->d_name, 0);
	closedir(dir);
}
