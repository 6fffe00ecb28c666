/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* templates: the node's template catalogue (one directory per template:
 * NAME/rootfs and NAME/template.json), safe import of tar archives into it,
 * and the default template. The one public header of templates/.
 * The on-disk format is xos-template(5). */
#ifndef XOS_TEMPLATES_H
#define XOS_TEMPLATES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The built-in template: not in the catalogue, always there. */
#define TEMPLATE_HOST "host"
/* Longest template name. */
#define TEMPLATE_NAME_MAX 64

struct template_info {
	char *name;
	char *checksum; /* "sha256:HEX" of the source stream */
	uint64_t size;  /* bytes */
	uint64_t files;
	int64_t created; /* unix time */
	char **env;      /* NULL-terminated, may be empty */
	char *workdir;   /* NULL if unset */
	char *user;      /* NULL if unset */
	uid_t uid_base;
	gid_t gid_base;
};
void template_info_free(struct template_info *t); /* accepts NULL; frees members and t */
static inline void template_info_freep(struct template_info **t)
{
	template_info_free(*t);
}
#define _cleanup_template_info_ __attribute__((cleanup(template_info_freep)))

/* [a-z0-9][a-z0-9._-]{0,63}, and neither "host" nor "default". */
bool template_name_valid(const char *name);

/* Load and validate CATALOG/NAME/template.json. -ENOENT: no such template.
 * err: a message (on every other failure). */
int template_load(int catalog_dfd, const char *name, struct template_info **ret, char **ret_err);
/* Parse and validate the text of a template.json; name: the name it must
 * have (NULL: any valid one). -EINVAL with *ret_err on a bad file. */
int template_info_parse(const char *text, const char *name, struct template_info **ret,
			char **ret_err);
/* The JSON text of t (newline-terminated); NULL on OOM. */
char *template_info_to_json(const struct template_info *t);

/* The default template's name ("host" when none was set). */
int template_get_default(int catalog_dfd, char **ret_name);
/* Make name the default (atomically); "host" forgets the default. */
int template_set_default(int catalog_dfd, const char *name);

/* Open the catalogue STATE/templates below state_fd, creating it (0700),
 * and remove what interrupted imports left (.import-*). */
int template_catalog_open(int state_fd, int *ret_fd);
/* The templates of the catalogue, sorted by name (NULL-terminated). */
int template_list(int catalog_dfd, char ***ret_names);
/* Removed templates still on disk (.removed-*), NULL-terminated. */
int template_list_removed(int catalog_dfd, char ***ret_dirs);
/* The template name a removed directory held (from its template.json). */
int template_removed_name(int catalog_dfd, const char *dir, char **ret_name);

/* ---- import ---- */
struct template_progress {
	uint64_t read;    /* bytes of the source read so far */
	uint64_t total;   /* its size, 0 when unknown (a pipe) */
	uint64_t entries; /* entries extracted */
	uint64_t bytes;   /* bytes of file data written */
};
struct template_import_opts {
	uid_t uid_base;    /* the containers' root uid on the host */
	gid_t gid_base;    /* ... and gid */
	uint32_t id_count; /* ids 0..id_count-1 of the archive are shifted by the bases */
	bool allow_devices;
	char *const *env;    /* template.json's env, or NULL */
	const char *workdir; /* or NULL */
	const char *user;    /* or NULL */
	uint64_t max_bytes;  /* file data cap, 0: none */
	/* called every so often while reading; may be NULL */
	void (*progress)(void *userdata, const struct template_progress *p);
	void *userdata;
};
/* Make a staging directory .import-XXXXXX in the catalogue for an import. */
int template_staging_create(int catalog_dfd, char **ret_name);
/* Extract the archive read from src_fd (tar, optionally gzip/xz/bzip2/zstd
 * compressed) into the staging directory, write its template.json, and
 * rename it to name. Nothing is written outside the staging directory; on
 * failure the staging directory stays (the caller removes it) and *ret_err
 * says why, naming the archive entry. */
int template_import(int catalog_dfd, const char *staging, const char *name, int src_fd,
		    const struct template_import_opts *o, char **ret_err);

/* ---- removal ---- */
/* Take name out of the catalogue: renamed to .removed-XXXXXX (returned),
 * which running jobs' overlays may still use; delete it with template_rm_tree. */
int template_detach(int catalog_dfd, const char *name, char **ret_dir);
/* Delete the tree dfd/name: iterative (any depth), never following a symlink
 * nor crossing a mount point. Missing is not an error. */
int template_rm_tree(int dfd, const char *name);

/* ---- the helper process ---- */
/* xosd runs xos-template-helper --template-helper import|remove ARGS with the
 * archive, the catalogue and a report pipe at these fds; the helper writes
 * "progress R T E B", "error MSG" and "ok" lines to the pipe. */
#define TEMPLATE_HELPER_ARG "--template-helper"
#define TEMPLATE_HELPER_BIN "xos-template-helper"
#define TEMPLATE_HELPER_FD_SRC 3
#define TEMPLATE_HELPER_FD_CATALOG 4
#define TEMPLATE_HELPER_FD_REPORT 5
/* The helper's work (argv after TEMPLATE_HELPER_ARG); its exit status. */
int template_helper_main(int argc, char **argv);

/* ---- the commands' side ---- */
/* Write the directory dir as a tar (pax) stream to out_fd: what `xtemplate
 * import NAME DIR` passes to xosd. No xattrs, ACLs or file flags; symlinks
 * are stored, never followed. *ret_err says what failed. */
int template_pack_dir(const char *dir, int out_fd, char **ret_err);

#endif
