/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Importing an archive into the catalogue: read it (hashing every byte),
 * extract it into a staging directory, write template.json, make it durable,
 * and rename the staging directory to the template's name. */
#include <archive.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <time.h>

#include "templates/templates-internal.h"

#define READ_CHUNK (128 * 1024)
#define PROGRESS_USEC 100000

struct source {
	int fd;
	EVP_MD_CTX *md;
	struct template_progress *p;
	const struct template_import_opts *o;
	uint64_t last_us;
	char buf[READ_CHUNK];
};

static void report(struct source *s, bool force)
{
	uint64_t now = mono_usec();

	if (!s->o->progress || (!force && now - s->last_us < PROGRESS_USEC))
		return;
	s->last_us = now;
	s->o->progress(s->o->userdata, s->p);
}

static ssize_t source_read(struct source *s)
{
	ssize_t n;

	do
		n = read(s->fd, s->buf, sizeof(s->buf));
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		if (EVP_DigestUpdate(s->md, s->buf, (size_t)n) != 1)
			return -ENOMEM;
		s->p->read += (uint64_t)n;
		report(s, false);
	}
	return n < 0 ? -errno : n;
}

static la_ssize_t read_cb(struct archive *a, void *userdata, const void **buf)
{
	struct source *s = userdata;
	ssize_t n = source_read(s);

	if (n < 0) {
		archive_set_error(a, (int)-n, "Cannot read the archive: %s", strerror((int)-n));
		return -1;
	}
	*buf = s->buf;
	return n;
}

/* The rest of the stream (tar's padding after its end): part of the checksum. */
static int drain(struct source *s)
{
	ssize_t n;

	while ((n = source_read(s)) > 0)
		;
	return (int)n;
}

static void archive_freep(struct archive **a)
{
	if (*a)
		archive_read_free(*a);
}

struct archive *template_archive_reader(void)
{
	struct archive *a = archive_read_new();

	if (!a)
		return NULL;
	/* tar only; compression filters built into libarchive only (never
	 * one that runs an external program) */
	archive_read_support_format_tar(a);
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_lzma(a);
	archive_read_support_filter_bzip2(a);
	archive_read_support_filter_zstd(a);
	return a;
}

static int extract(int root_fd, struct source *s, char **ret_err)
{
	_cleanup_(archive_freep) struct archive *a = template_archive_reader();
	int r;

	if (!a)
		return -ENOMEM;
	if (archive_read_open(a, s, NULL, read_cb, NULL) != ARCHIVE_OK) {
		if (s->p->read == 0)
			*ret_err = xstrdup_printf("the archive is empty (0 bytes)");
		else
			*ret_err = xstrdup_printf("%s (a tar archive is needed, optionally gzip, "
						  "xz, bzip2 or zstd compressed)",
						  archive_error_string(a));
		return -EIO;
	}
	r = template_extract_all(a, root_fd, s->o, s->p, ret_err);
	if (r < 0)
		return r;
	r = drain(s);
	if (r < 0)
		*ret_err = xstrdup_printf("Cannot read the archive: %s", strerror(-r));
	return r;
}

static char *digest_hex(EVP_MD_CTX *md)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	char *s;

	if (EVP_DigestFinal_ex(md, d, &n) != 1 || n != 32)
		return NULL;
	s = malloc(7 + 64 + 1);
	if (!s)
		return NULL;
	memcpy(s, "sha256:", 7);
	for (unsigned int i = 0; i < n; i++)
		snprintf(s + 7 + 2 * i, 3, "%02x", d[i]);
	return s;
}

static int write_meta(int dir, const char *name, EVP_MD_CTX *md, const struct source *s)
{
	const struct template_import_opts *o = s->o;
	char *const empty[] = { NULL };
	struct template_info t = {
		.name = (char *)name,
		.checksum = digest_hex(md),
		.size = s->p->bytes,
		.files = s->p->entries,
		.created = (int64_t)time(NULL),
		.env = o->env ? (char **)o->env : (char **)empty,
		.workdir = (char *)o->workdir,
		.user = (char *)o->user,
		.uid_base = o->uid_base,
		.gid_base = o->gid_base,
	};
	_cleanup_free_ char *checksum = t.checksum, *text = NULL;

	if (!t.checksum)
		return -ENOMEM;
	text = template_info_to_json(&t);
	if (!text)
		return -ENOMEM;
	return write_file_atomic_at(dir, "template.json", text, strlen(text), 0644, true);
}

static void md_freep(EVP_MD_CTX **md)
{
	EVP_MD_CTX_free(*md);
}

static int make_root(int dir, const struct template_import_opts *o, int *ret)
{
	_cleanup_close_ int fd = -EBADF;

	if (mkdirat(dir, "rootfs", 0755) < 0)
		return -errno;
	fd = open_dir_at(dir, "rootfs");
	if (fd < 0)
		return fd;
	if (fchown(fd, o->uid_base, o->gid_base) < 0 || fchmod(fd, 0755) < 0)
		return -errno;
	*ret = TAKE_FD(fd);
	return 0;
}

static int fail(char **ret_err, int r, const char *what)
{
	if (!*ret_err)
		*ret_err = xstrdup_printf("%s: %s", what, strerror(-r));
	return r;
}

int template_import(int catalog_dfd, const char *staging, const char *name, int src_fd,
		    const struct template_import_opts *o, char **ret_err)
{
	_cleanup_(md_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
	_cleanup_free_ struct source *s = calloc(1, sizeof(*s));
	_cleanup_close_ int dir = -EBADF, root = -EBADF;
	struct template_progress p = { 0 };
	struct stat st;
	int r;

	*ret_err = NULL;
	if (!template_name_valid(name))
		return fail(ret_err, -EINVAL, "Invalid template name");
	if (!md || !s || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		return fail(ret_err, -ENOMEM, "Cannot start the checksum");
	if (fstat(src_fd, &st) == 0 && S_ISREG(st.st_mode))
		p.total = (uint64_t)st.st_size;
	*s = (struct source){ .fd = src_fd, .md = md, .p = &p, .o = o };
	dir = open_dir_at(catalog_dfd, staging);
	if (dir < 0)
		return fail(ret_err, dir, "Cannot open the staging directory");
	if ((r = make_root(dir, o, &root)) < 0)
		return fail(ret_err, r, "Cannot create the template's root");
	report(s, true);
	if ((r = extract(root, s, ret_err)) < 0)
		return fail(ret_err, r, "Cannot extract the archive");
	report(s, true);
	if ((r = write_meta(dir, name, md, s)) < 0)
		return fail(ret_err, r, "Cannot write template.json");
	if (syncfs(dir) < 0)
		return fail(ret_err, -errno, "Cannot flush the template to disk");
	if (renameat2(catalog_dfd, staging, catalog_dfd, name, RENAME_NOREPLACE) < 0)
		return errno == EEXIST ? (*ret_err = xstrdup_printf("Template %s already exists; "
								    "remove it first",
								    name),
					  -EEXIST)
				       : fail(ret_err, -errno, "Cannot rename the template");
	if (fsync(catalog_dfd) < 0)
		return fail(ret_err, -errno, "Cannot flush the catalogue");
	return 0;
}
