/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to ckpt/. */
#ifndef XOS_CKPT_INTERNAL_H
#define XOS_CKPT_INTERNAL_H

#include "ckpt/ckpt.h"
#include "runtime/runtime-internal.h" /* struct job, the job record (data only) */

struct ckpt {
	const struct runtime_config *cfg;
	const struct ckpt_host *host;
	void *data;
	struct job **jobs;
	char *self_exe;
	bool cgroup_v2;
	int store_fd;      /* the checkpoint store (checkpoint_dir), opened on first use */
	int criu_veth_fix; /* checkpoint_bridge = auto: -1 not probed yet, 0 or 1 */
	int criu_level;    /* ckpt_criu_level: -1 not probed yet */
	/* ckpt_tick walks the jobs only while one may have a run or periodic
	 * checkpoints: set when a run begins or such a job is linked, cleared
	 * by a walk that finds none (10,000 queued jobs made each wakeup of
	 * the main loop walk them all) */
	bool tick_walk;
};
/* A call to the daemon: HOST(ck, persist, j) */
#define HOST(ck, op, ...) ((ck)->host->op((ck)->data, ##__VA_ARGS__))

/* CRIU's dump statistics (microseconds, pages), as podman prints them. */
struct ckpt_stats {
	uint64_t freezing_time, frozen_time, memdump_time, memwrite_time;
	uint64_t pages_scanned, pages_written;
};

int ckpt_store_fd(struct ckpt *ck);
/* <checkpoint_dir>/<id>, made if create. */
int ckpt_job_store(struct ckpt *ck, struct job *j, bool create);
/* The versions in a job's store, ascending. */
int ckpt_list_versions(int jfd, unsigned **ret, size_t *ret_n);
void ckpt_remove_partial(int jfd);
/* fsync every file and directory of a version (before it is committed). */
int ckpt_sync_tree(int dfd);
int ckpt_chown_images(int vfd, uid_t ru, gid_t rg, uint64_t *ret_bytes);
int ckpt_read_stats(int vfd, struct ckpt_stats *ret);
void ckpt_stats_to_json(const struct ckpt_stats *s, struct yajl_gen_t *g);

/* "images": {file: size} of a version, for its manifest. */
void ckpt_gen_image_sizes(int vfd, struct yajl_gen_t *g);
/* Every image the manifest lists is there with its size: 0, or -EBADMSG and why. */
int ckpt_check_images(int vfd, char **ret_msg);
/* A version made for a move (ckpt_checkpoint_move): its marker, this boot's
 * id, written and synced into vfd; ckpt_settle: the version written out to
 * the disk and the marker removed (0 without one); -EBADMSG (ret_msg) if
 * the marker names another boot. */
int ckpt_mark_unsynced(int vfd);
int ckpt_settle(int vfd, char **ret_msg);

/* Why CRIU's dump failed, from its log, for the user (NULL: nothing
 * recognised); ghost_limit: the limit the dump ran with. */
char *ckpt_dump_log_reason(const char *log, uint64_t ghost_limit);

/* A dump's child: liblxc's CRIU becomes xosd's shim (criu-shim.c). */
int ckpt_criu_shim_setup(struct ckpt *ck, const char *helper);
/* The program a dump runs as criu and as CRIU's action script:
 * xos-criu-helper beside xosd, else the installed one, else xosd itself
 * (buf holds the path, len bytes). */
#define CRIU_HELPER_BIN "xos-criu-helper"
const char *ckpt_criu_helper(struct ckpt *ck, char *buf, size_t len);
/* ---- space.c: what checkpoints take and may take ---- */
/* "310.2 MiB" */
void ckpt_format_size(uint64_t bytes, char *buf, size_t len);
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
/* Before a job is frozen: does its next version fit in its owner's quota
 * and in the store's free space? 0, or -EDQUOT/-ENOSPC and the message. */
int ckpt_space_check(struct ckpt *ck, struct job *j, struct xerr *err);
/* Its versions changed (made: a new one, which ends a skipped streak). */
void ckpt_space_changed(struct job *j, bool made);
void ckpt_space_make_room(struct ckpt *ck, struct job *j);
void ckpt_space_skipped(struct ckpt *ck, struct job *j, const char *why);
/* After a dump (not --stop: that job's processes are gone), before its
 * version is finished: the version makes its owner exceed the quota after
 * retention (the estimate was short); the reason it is discarded, or NULL. */
char *ckpt_space_over_quota(struct ckpt *ck, struct job *j, int jfd, unsigned version);
/* The reason of a dump that failed for want of space (NULL: not that). */
char *ckpt_space_dump_failure(struct ckpt *ck, struct job *j, int jfd, unsigned version);
void ckpt_space_gen_list(struct ckpt *ck, struct job *j, struct yajl_gen_t *g);

#endif
