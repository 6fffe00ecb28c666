/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A directory as a tar stream: what `xtemplate import NAME DIR` hands to
 * xosd, so that xosd never opens a path a client names. */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>

#include "templates/templates-internal.h"

static void read_freep(struct archive **a)
{
	if (*a)
		archive_read_free(*a);
}

static void write_freep(struct archive **a)
{
	if (*a)
		archive_write_free(*a);
}

static void resolver_freep(struct archive_entry_linkresolver **r)
{
	if (*r)
		archive_entry_linkresolver_free(*r);
}

static int copy_data(struct archive *disk, struct archive *out, char **ret_err)
{
	for (;;) {
		const void *buf;
		size_t len;
		la_int64_t off;
		int r = archive_read_data_block(disk, &buf, &len, &off);

		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN) {
			*ret_err = xstrdup_printf("%s", archive_error_string(disk));
			return -EIO;
		}
		if (len > 0 && archive_write_data(out, buf, len) < 0) {
			*ret_err = xstrdup_printf("%s", archive_error_string(out));
			return archive_errno(out) == EPIPE ? -EPIPE : -EIO;
		}
	}
}

static int pack_entry(struct archive *disk, struct archive *out,
		      struct archive_entry_linkresolver *res, struct archive_entry *e,
		      char **ret_err)
{
	struct archive_entry *sparse = NULL;
	bool data;

	archive_entry_linkify(res, &e, &sparse);
	if (!e)
		return 0;
	/* a hardlink to a file already written carries no data */
	data = archive_entry_filetype(e) == AE_IFREG && archive_entry_size(e) > 0 &&
	       !archive_entry_hardlink(e);
	if (archive_write_header(out, e) < ARCHIVE_WARN) {
		*ret_err = xstrdup_printf("%s: %s", archive_entry_pathname(e),
					  archive_error_string(out));
		return archive_errno(out) == EPIPE ? -EPIPE : -EIO;
	}
	return data ? copy_data(disk, out, ret_err) : 0;
}

static int pack_open(const char *dir, int out_fd, struct archive **ret_disk,
		     struct archive **ret_out, char **ret_err)
{
	struct archive *disk = archive_read_disk_new(), *out = archive_write_new();

	*ret_disk = disk;
	*ret_out = out;
	if (!disk || !out)
		return -ENOMEM;
	archive_read_disk_set_symlink_physical(disk);
	archive_read_disk_set_standard_lookup(disk);
	archive_read_disk_set_behavior(disk, ARCHIVE_READDISK_NO_XATTR | ARCHIVE_READDISK_NO_ACL |
						     ARCHIVE_READDISK_NO_FFLAGS);
	archive_write_set_format_pax_restricted(out);
	archive_write_set_bytes_in_last_block(out, 1);
	if (archive_write_open_fd(out, out_fd) != ARCHIVE_OK ||
	    archive_read_disk_open(disk, dir) != ARCHIVE_OK) {
		*ret_err = xstrdup_printf("%s", archive_error_string(disk));
		return -EIO;
	}
	return 0;
}

/* Names relative to the directory packed: "DIR/etc/passwd" -> "./etc/passwd". */
static int relative_name(struct archive_entry *e, const char *dir, size_t len)
{
	const char *p = archive_entry_pathname(e);
	_cleanup_free_ char *n = NULL;

	if (!p || strncmp(p, dir, len) != 0 || (p[len] && p[len] != '/' && len > 0))
		return -EINVAL;
	p += len;
	while (*p == '/')
		p++;
	n = xstrdup_printf("./%s", p);
	if (!n)
		return -ENOMEM;
	archive_entry_copy_pathname(e, n);
	return 0;
}

int template_pack_dir(const char *dir, int out_fd, char **ret_err)
{
	_cleanup_(read_freep) struct archive *disk = NULL;
	_cleanup_(write_freep) struct archive *out = NULL;
	_cleanup_(resolver_freep) struct archive_entry_linkresolver *res =
		archive_entry_linkresolver_new();
	struct archive_entry *e = archive_entry_new();
	size_t len = strlen(dir);
	int r;

	while (len > 0 && dir[len - 1] == '/') /* "/" packs as "" + "/..." */
		len--;
	*ret_err = NULL;
	r = res && e ? pack_open(dir, out_fd, &disk, &out, ret_err) : -ENOMEM;
	if (r >= 0)
		archive_entry_linkresolver_set_strategy(res, archive_format(out));
	while (r >= 0) {
		r = archive_read_next_header2(disk, e);
		if (r == ARCHIVE_EOF) {
			r = 0;
			break;
		}
		if (r < ARCHIVE_WARN) {
			*ret_err = xstrdup_printf("%s", archive_error_string(disk));
			r = -EIO;
			break;
		}
		archive_read_disk_descend(disk);
		r = relative_name(e, dir, len);
		if (r < 0) {
			*ret_err = xstrdup_printf("Unexpected entry %s", archive_entry_pathname(e));
			break;
		}
		r = pack_entry(disk, out, res, e, ret_err);
	}
	archive_entry_free(e);
	if (r >= 0 && archive_write_close(out) != ARCHIVE_OK) {
		*ret_err = xstrdup_printf("%s", archive_error_string(out));
		r = archive_errno(out) == EPIPE ? -EPIPE : -EIO;
	}
	return r;
}
