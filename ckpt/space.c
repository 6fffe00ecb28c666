/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What checkpoints take and may take: the node's bounds on a job's
 * checkpoint settings (checkpoint_keep_max, checkpoint_interval_min), the
 * disk each job's versions use, each user's quota (checkpoint_quota, summed
 * over the user's versions on the node), and the check, before a job is
 * frozen, that its next version fits in the quota and the store's free
 * space. Periodic checkpoints first remove the versions that retention
 * would remove after them anyway; if the version still does not fit, the
 * checkpoint is skipped and the reason kept in the job's record. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <yajl/yajl_gen.h>

#include "ckpt/ckpt-internal.h"

/* CRIU's images besides memory (cores, fds, mounts...), and the manifest */
#define CKPT_IMAGE_OVERHEAD (1ULL << 20)
/* A dump that failed with less free than this in the store met a full disk */
#define CKPT_FULL_MARGIN (1ULL << 20)

/* ---- pure parts (unit-tested) ---- */

void ckpt_format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const unit[] = { "bytes", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	size_t u = 0;

	while (v >= 1024 && u + 1 < ELEMENTSOF(unit))
		v /= 1024, u++;
	if (u == 0)
		snprintf(buf, len, "%" PRIu64 " bytes", bytes);
	else
		snprintf(buf, len, "%.1f %s", v, unit[u]);
}

static void format_duration(uint64_t us, char *buf, size_t len)
{
	if (us && us % 3600000000ULL == 0)
		snprintf(buf, len, "%" PRIu64 "h", (uint64_t)(us / 3600000000ULL));
	else if (us && us % 60000000ULL == 0)
		snprintf(buf, len, "%" PRIu64 "m", (uint64_t)(us / 60000000ULL));
	else if (us % 1000000ULL == 0)
		snprintf(buf, len, "%" PRIu64 "s", (uint64_t)(us / 1000000ULL));
	else
		snprintf(buf, len, "%" PRIu64 "ms", (us + 999) / 1000);
}

int ckpt_policy_check(const struct runtime_config *cfg, uid_t uid, const struct job_ckpt_policy *p,
		      struct xerr *err)
{
	char min[32];

	if (uid == 0)
		return 0;
	if (p->every_us && p->every_us < cfg->checkpoint_every_min_us) {
		format_duration(cfg->checkpoint_every_min_us, min, sizeof(min));
		return xerr_set(err, -EINVAL, "invalid_argument",
				"Periodic checkpoints are at most every %s on this node "
				"(checkpoint_interval_min): use --checkpoint-every %s or longer",
				min, min);
	}
	if (p->keep > cfg->checkpoint_keep_max) {
		return xerr_set(err, -EINVAL, "invalid_argument",
				"A job keeps at most %" PRIu64 " versions on this node "
				"(checkpoint_keep_max): use --keep %" PRIu64 " or fewer",
				cfg->checkpoint_keep_max, cfg->checkpoint_keep_max);
	}
	return 0;
}

unsigned ckpt_keep_of(const struct runtime_config *cfg, const struct job *j)
{
	uint64_t keep = j->ckpt.keep ? j->ckpt.keep : cfg->checkpoint_keep;

	if (j->owner_uid != 0 && (keep == 0 || keep > cfg->checkpoint_keep_max))
		keep = cfg->checkpoint_keep_max;
	return keep > 1000000 ? 1000000 : (unsigned)keep;
}

uint64_t ckpt_every_of(const struct runtime_config *cfg, const struct job *j)
{
	uint64_t every = j->ckpt.every_us;

	if (every && j->owner_uid != 0 && every < cfg->checkpoint_every_min_us)
		every = cfg->checkpoint_every_min_us;
	return every;
}

static const char *quota_key(uid_t uid)
{
	return uid == 0 ? "checkpoint_quota_root" : "checkpoint_quota";
}

uint64_t ckpt_quota_of(const struct runtime_config *cfg, uid_t uid)
{
	return uid == 0 ? cfg->checkpoint_quota_root : cfg->checkpoint_quota;
}

int ckpt_prune_plan(const uint64_t *sizes, size_t n, unsigned keep, uint64_t need, uint64_t room,
		    size_t *ret_n)
{
	/* after the new version, retention keeps keep - 1 of these */
	size_t prunable = keep == 0 || n < keep ? 0 : n - (keep - 1);
	uint64_t freed = 0;
	size_t k = 0;

	if (prunable >= n)
		prunable = n ? n - 1 : 0; /* never the newest: it may be all there is */
	while (need > room + freed && k < prunable)
		freed += sizes[k++];
	if (need > room + freed)
		return -ENOSPC;
	*ret_n = k;
	return 0;
}

/* ---- measuring ---- */

/* Disk blocks taken by a directory's tree (not following links; copies
 * are at most 256 levels deep, and so is what is counted). A version's
 * "loader" that is a link to the node's copy takes nothing of its own (the
 * copies of a layer never hold links: copy_tree_at splits them). */
static uint64_t tree_disk(int dfd, unsigned depth)
{
	DIR *dir = opendir_dup(dfd);
	struct dirent *de;
	uint64_t sum = 0;

	if (!dir)
		return 0;
	rewinddir(dir);
	while ((de = readdir(dir))) {
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(st.st_mode) && st.st_nlink > 1 && !strcmp(de->d_name, "loader"))
			continue;
		sum += (uint64_t)st.st_blocks * 512;
		if (S_ISDIR(st.st_mode) && depth < 256) {
			_cleanup_close_ int sub = open_dir_at(dfd, de->d_name);

			if (sub >= 0)
				sum += tree_disk(sub, depth + 1);
		}
	}
	closedir(dir);
	return sum;
}

uint64_t ckpt_tree_disk(int dfd)
{
	return tree_disk(dfd, 0);
}

uint64_t ckpt_space_job_bytes(struct ckpt *ck, struct job *j)
{
	_cleanup_close_ int jfd = -EBADF;

	if (j->ckpt_measured)
		return j->ckpt_bytes;
	jfd = ckpt_job_store(ck, j, false);
	j->ckpt_bytes = jfd >= 0 ? ckpt_tree_disk(jfd) : 0;
	j->ckpt_measured = true;
	return j->ckpt_bytes;
}

static uint64_t user_bytes(struct ckpt *ck, uid_t uid)
{
	uint64_t sum = 0;

	for (struct job *j = *ck->jobs; j; j = j->next)
		if (j->owner_uid == uid)
			sum += ckpt_space_job_bytes(ck, j);
	return sum;
}

static uint64_t store_free(struct ckpt *ck)
{
	struct statvfs sv;
	int fd = ckpt_store_fd(ck);

	/* f_bavail: what is free for others than root (the file system's
	 * reserve stays for the node) */
	if (fd < 0 || fstatvfs(fd, &sv) < 0)
		return UINT64_MAX; /* unknown: CRIU will tell */
	return (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
}

/* What the next version of j would take on disk: its memory (anonymous, and
 * shared beyond the layer's files, which are shmem too), the data blocks of
 * its writable layer and of its spool (copies keep holes), CRIU's other images. */
static uint64_t estimate(struct ckpt *ck, struct job *j)
{
	uint64_t anon = 0, shmem = 0, layer = 0, files = 0, spool = 0;
	_cleanup_close_ int xos = j->dirfd >= 0 ? open_dir_at(j->dirfd, "xos") : -EBADF;
	_cleanup_close_ int sp = xos >= 0 ? open_dir_at(xos, "spool") : -EBADF;

	if (HOST(ck, dump_memory, j, &anon, &shmem) < 0)
		anon = shmem = 0;
	if (HOST(ck, layer_usage, j, &layer, &files) < 0)
		layer = 0;
	if (sp >= 0)
		spool = ckpt_tree_disk(sp);
	return anon + (shmem > layer ? shmem - layer : 0) + layer + spool + CKPT_IMAGE_OVERHEAD;
}

struct room {
	uint64_t need, quota, used, free;
};

static void measure(struct ckpt *ck, struct job *j, struct room *r)
{
	*r = (struct room){ .need = estimate(ck, j),
			    .quota = ckpt_quota_of(ck->cfg, j->owner_uid),
			    .free = store_free(ck) };
	if (r->quota)
		r->used = user_bytes(ck, j->owner_uid);
}

static uint64_t room_left(const struct room *r)
{
	uint64_t q = !r->quota ? UINT64_MAX : r->quota > r->used ? r->quota - r->used : 0;

	return q < r->free ? q : r->free;
}

int ckpt_space_check(struct ckpt *ck, struct job *j, struct xerr *err)
{
	char need[32], used[32], quota[32], avail[32];
	struct room r;

	measure(ck, j, &r);
	ckpt_format_size(r.need, need, sizeof(need));
	ckpt_format_size(r.used, used, sizeof(used));
	ckpt_format_size(r.quota, quota, sizeof(quota));
	ckpt_format_size(r.free, avail, sizeof(avail));
	if (r.quota && r.used + r.need > r.quota) {
		return xerr_set(
			err, -EDQUOT, "quota_exceeded",
			"Checkpoint of job %.12s failed before the job was frozen (it runs "
			"on): the version would take about %s, and the checkpoints of its "
			"owner (uid %u) already take %s of a %s quota (%s); "
			"delete versions (xcheckpoint --list, --delete) or keep fewer (--keep)",
			j->id, need, (unsigned)j->owner_uid, used, quota, quota_key(j->owner_uid));
	}
	if (r.need > r.free) {
		return xerr_set(err, -ENOSPC, "no_space",
				"Checkpoint of job %.12s failed before the job was frozen (it "
				"runs on): the version would take about %s, and the checkpoint "
				"store has %s free; delete versions (xcheckpoint --list, "
				"--delete) or ask the node's owner for space",
				j->id, need, avail);
	}
	return 0;
}

void ckpt_space_changed(struct job *j, bool made)
{
	j->ckpt_measured = false;
	if (made) {
		free(j->ckpt_skipped);
		j->ckpt_skipped = NULL;
		j->ckpt_skipped_us = 0;
	}
}

/* Before a periodic checkpoint that would not fit: the oldest versions that
 * retention removes after it anyway go first, if that makes it fit. */
void ckpt_space_make_room(struct ckpt *ck, struct job *j)
{
	_cleanup_close_ int jfd = -EBADF;
	_cleanup_free_ unsigned *v = NULL;
	_cleanup_free_ uint64_t *sizes = NULL;
	size_t n = 0, k = 0;
	struct room r;

	measure(ck, j, &r);
	if (r.need <= room_left(&r))
		return;
	jfd = ckpt_job_store(ck, j, false);
	if (jfd < 0 || ckpt_list_versions(jfd, &v, &n) < 0 || n == 0 ||
	    !(sizes = calloc(n, sizeof(*sizes))))
		return;
	for (size_t i = 0; i < n; i++) {
		_cleanup_close_ int vfd = -EBADF;
		char name[32];

		snprintf(name, sizeof(name), "%u", v[i]);
		vfd = open_dir_at(jfd, name);
		sizes[i] = vfd >= 0 ? ckpt_tree_disk(vfd) : 0;
	}
	if (ckpt_prune_plan(sizes, n, ckpt_keep_of(ck->cfg, j), r.need, room_left(&r), &k) < 0)
		return; /* it will not fit: the check refuses, and nothing is lost */
	for (size_t i = 0; i < k; i++) {
		char name[32];

		snprintf(name, sizeof(name), "%u", v[i]);
		if (rm_rf_at(jfd, name) < 0)
			log_warn("Failed to remove version %u of job %s", v[i], j->id);
		else
			log_info("Job %s: version %u removed early to make room for a periodic "
				 "checkpoint (its quota or the store's free space)",
				 j->id, v[i]);
	}
	ckpt_space_changed(j, false);
}

void ckpt_space_skipped(struct ckpt *ck, struct job *j, const char *why)
{
	char *s = strdup(why);
	int r;

	log_warn("Periodic checkpoint of job %s skipped: %s", j->id, why);
	if (!s)
		return;
	free(j->ckpt_skipped);
	j->ckpt_skipped = s;
	j->ckpt_skipped_us = now_usec();
	if ((r = HOST(ck, persist, j)) < 0)
		log_warn("Failed to persist job %s: %s", j->id, strerror(-r));
}

/* Why a dump failed, if the store ran out of space during it (its images
 * or the copies): the log says so, or the store is (nearly) full. */
char *ckpt_space_dump_failure(struct ckpt *ck, struct job *j, int jfd, unsigned version)
{
	_cleanup_free_ char *log = NULL;
	char path[64], avail[32];
	uint64_t free_now = store_free(ck);
	bool full = free_now < CKPT_FULL_MARGIN;

	snprintf(path, sizeof(path), ".new-%u/images/dump.log", version);
	if (!full && jfd >= 0 && read_file_at(jfd, path, 16 << 20, &log, NULL) >= 0)
		full = strstr(log, "No space left on device") != NULL;
	if (!full)
		return NULL;
	ckpt_format_size(free_now == UINT64_MAX ? 0 : free_now, avail, sizeof(avail));
	return xstrdup_printf("the checkpoint store ran out of space (%s free); version %u was "
			      "discarded and job %.12s runs on; delete versions (xcheckpoint "
			      "--delete) or ask the node's owner for space",
			      avail, version, j->id);
}

/* Bytes of the versions that retention removes once the new one is in. */
static uint64_t retention_frees(struct ckpt *ck, struct job *j, int jfd)
{
	_cleanup_free_ unsigned *v = NULL;
	unsigned keep = ckpt_keep_of(ck->cfg, j);
	uint64_t sum = 0;
	size_t n = 0;

	if (keep == 0 || ckpt_list_versions(jfd, &v, &n) < 0 || n < keep)
		return 0;
	for (size_t i = 0; i < n - keep + 1; i++) {
		_cleanup_close_ int vfd = -EBADF;
		char name[32];

		snprintf(name, sizeof(name), "%u", v[i]);
		vfd = open_dir_at(jfd, name);
		sum += vfd >= 0 ? ckpt_tree_disk(vfd) : 0;
	}
	return sum;
}

char *ckpt_space_over_quota(struct ckpt *ck, struct job *j, int jfd, unsigned version)
{
	uint64_t quota = ckpt_quota_of(ck->cfg, j->owner_uid), total, made, freed;
	_cleanup_close_ int vfd = -EBADF;
	char name[32], took[32], sum[32], q[32];

	if (!quota || jfd < 0)
		return NULL;
	snprintf(name, sizeof(name), ".new-%u", version);
	vfd = open_dir_at(jfd, name);
	made = vfd >= 0 ? ckpt_tree_disk(vfd) : 0;
	j->ckpt_measured = false; /* (measured with the new version in) */
	total = user_bytes(ck, j->owner_uid);
	j->ckpt_measured = false;
	freed = retention_frees(ck, j, jfd);
	if (total - (freed < total ? freed : total) <= quota)
		return NULL;
	ckpt_format_size(made, took, sizeof(took));
	ckpt_format_size(total - (freed < total ? freed : total), sum, sizeof(sum));
	ckpt_format_size(quota, q, sizeof(q));
	return xstrdup_printf(
		"the version took %s, more than estimated before the job was "
		"frozen, and with it the checkpoints of its owner (uid %u) would take "
		"%s of a %s quota (%s); version %u was discarded and "
		"job %.12s runs on",
		took, (unsigned)j->owner_uid, sum, q, quota_key(j->owner_uid), version, j->id);
}

/* "storage" of a checkpoints answer: what the job's and its owner's versions
 * take, the owner's quota (0: none), the store's free space; and why the
 * last periodic checkpoint was skipped. */
void ckpt_space_gen_list(struct ckpt *ck, struct job *j, struct yajl_gen_t *g)
{
	uint64_t free_now = store_free(ck);

	json_gen_key(g, "storage");
	yajl_gen_map_open(g);
	json_gen_kv_uint(g, "job", ckpt_space_job_bytes(ck, j));
	json_gen_kv_uint(g, "user", user_bytes(ck, j->owner_uid));
	json_gen_kv_uint(g, "quota", ckpt_quota_of(ck->cfg, j->owner_uid));
	json_gen_kv_uint(g, "free", free_now == UINT64_MAX ? 0 : free_now);
	yajl_gen_map_close(g);
	if (j->ckpt_skipped) {
		json_gen_kv_str(g, "skipped", j->ckpt_skipped);
		json_gen_kv_uint(g, "skipped_us", j->ckpt_skipped_us);
	}
}
