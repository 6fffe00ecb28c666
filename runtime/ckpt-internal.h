/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared by checkpoint.c and ckpt-store.c only. */
#ifndef XOS_RUNTIME_CKPT_INTERNAL_H
#define XOS_RUNTIME_CKPT_INTERNAL_H

#include "runtime/runtime-internal.h"

/* CRIU's dump statistics (microseconds, pages), as podman prints them. */
struct ckpt_stats {
	uint64_t freezing_time, frozen_time, memdump_time, memwrite_time;
	uint64_t pages_scanned, pages_written;
};

int ckpt_store_fd(struct daemon *d);
/* <checkpoint_dir>/<id>, made if create. */
int ckpt_job_store(struct daemon *d, struct job *j, bool create);
/* The versions in a job's store, ascending. */
int ckpt_list_versions(int jfd, unsigned **ret, size_t *ret_n);
void ckpt_remove_partial(int jfd);
int ckpt_chown_images(int vfd, uid_t ru, gid_t rg, uint64_t *ret_bytes);
int ckpt_read_stats(int vfd, struct ckpt_stats *ret);
void ckpt_stats_to_json(const struct ckpt_stats *s, struct yajl_gen_t *g);

/* "images": {file: size} of a version, for its manifest. */
void ckpt_gen_image_sizes(int vfd, struct yajl_gen_t *g);
/* Every image the manifest lists is there with its size: 0, or -EBADMSG and why. */
int ckpt_check_images(int vfd, char **ret_msg);

/* Why CRIU's dump failed, from its log, for the user (NULL: nothing
 * recognised); ghost_limit: the limit the dump ran with. */
char *ckpt_dump_log_reason(const char *log, uint64_t ghost_limit);

/* A dump's child: liblxc's CRIU becomes xosd's shim (criu-shim.c). */
int ckpt_criu_shim_setup(struct daemon *d);

#endif
