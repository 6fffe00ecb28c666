/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef XOS_TEMPLATES_INTERNAL_H
#define XOS_TEMPLATES_INTERNAL_H

#include "common/common.h"
#include "templates/templates.h"

/* ---- names.c: pure checks of archive entries (unit-tested) ---- */
/* Normalise an archive entry name: leading "./" and "/./" and repeated or
 * trailing slashes go; "" is the root itself. Refused (-EINVAL, *ret_why
 * says why): absolute, "..", a component longer than NAME_MAX, empty. */
int template_entry_normalize(const char *in, char **ret, const char **ret_why);
/* May the entry (a normalised name) be a symlink to target? Absolute
 * targets may (they resolve inside the container's root); relative ones
 * may not climb above the template's root, nor hold ".." after a name. */
int template_symlink_check(const char *entry, const char *target, const char **ret_why);
/* An entry name fit for a message: control characters as '?', long ones cut. */
char *template_entry_display(const char *name);

/* ---- extract.c ---- */
struct archive;
/* A libarchive reader of what an import accepts: tar, and only the compression
 * filters built into libarchive (none that runs a program). NULL: no memory. */
struct archive *template_archive_reader(void);
/* Extract every entry of an opened archive below root_fd; p->entries and
 * p->bytes count what was extracted. *ret_err names the entry that failed. */
int template_extract_all(struct archive *a, int root_fd, const struct template_import_opts *o,
			 struct template_progress *p, char **ret_err);
/* Force the component-by-component walk (as without openat2); tests use it. */
void template_extract_force_fallback(bool on);

#endif
