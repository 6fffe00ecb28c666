/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared by checkpoint.c and ckpt-store.c only. */
#ifndef XOS_CKPT_INTERNAL_H
#define XOS_CKPT_INTERNAL_H

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
/* ---- ckpt-space.c: what checkpoints take and may take ---- */
/* "310.2 MiB" */
void ckpt_format_size(uint64_t bytes, char *buf, size_t len);
/* A non-root user's checkpoint settings within the node's bounds
 * (checkpoint_interval_min, checkpoint_keep_max): 0, or -EINVAL and why. */
int ckpt_policy_check(const struct runtime_config *cfg, uid_t uid, const struct job_ckpt_policy *p,
		      char **ret_msg);
/* The versions j keeps (0: all): --keep, else checkpoint_keep, at most
 * checkpoint_keep_max for a job of a user other than root. */
unsigned ckpt_keep_of(const struct runtime_config *cfg, const struct job *j);
/* Its interval of periodic checkpoints: --checkpoint-every, for a job of a
 * user other than root at least checkpoint_interval_min (a job made before
 * the node raised it). */
uint64_t ckpt_every_of(const struct runtime_config *cfg, const struct job *j);
/* The checkpoint quota of a user (0: none). */
uint64_t ckpt_quota_of(const struct runtime_config *cfg, uid_t uid);
/* How many of the oldest versions (sizes: oldest first) a periodic
 * checkpoint removes first so that need fits in room: only versions that
 * retention (keep) would remove after it anyway, never the newest; -ENOSPC
 * if even that is not enough (then none should go). */
int ckpt_prune_plan(const uint64_t *sizes, size_t n, unsigned keep, uint64_t need, uint64_t room,
		    size_t *ret_n);
/* Disk blocks (bytes) of a directory's tree. */
uint64_t ckpt_tree_disk(int dfd);
/* What the job's checkpoint store takes (measured once after each change). */
uint64_t ckpt_space_job_bytes(struct daemon *d, struct job *j);
/* Before a job is frozen: does its next version fit in its owner's quota
 * and in the store's free space? 0, or -EDQUOT/-ENOSPC and the message. */
int ckpt_space_check(struct daemon *d, struct job *j, char **ret_msg);
/* Its versions changed (made: a new one, which ends a skipped streak). */
void ckpt_space_changed(struct job *j, bool made);
void ckpt_space_make_room(struct daemon *d, struct job *j);
void ckpt_space_skipped(struct daemon *d, struct job *j, const char *why);
/* After a dump (not --stop: that job's processes are gone), before its
 * version is finished: the version makes its owner exceed the quota after
 * retention (the estimate was short); the reason it is discarded, or NULL. */
char *ckpt_space_over_quota(struct daemon *d, struct job *j, int jfd, unsigned version);
/* The reason of a dump that failed for want of space (NULL: not that). */
char *ckpt_space_dump_failure(struct daemon *d, struct job *j, int jfd, unsigned version);
void ckpt_space_gen_list(struct daemon *d, struct job *j, struct yajl_gen_t *g);

#endif
