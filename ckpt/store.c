/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The checkpoint store: <checkpoint_dir>/<job id>/<version>/ holding
 *   images/        CRIU's images (owned by the container's mapped root, 0755:
 *                  CRIU's restore opens them from inside the user namespace)
 *   upper/         the job's writable layer, copied while the container was frozen
 *   spool/         the job's spool (output, unit status files), same instant
 *   links          the layer's files with several names then ("INO PATH\0")
 *   manifest.json  what the version is (docs/PROTOCOL.md, "The checkpoint store")
 * checkpoint_dir and every directory down to a version are root's, 0700: no
 * account on the host can read an image (a tampered one executes code).
 * Versions being made are ".new-N"; a failed dump's log is kept as
 * failed-N.dump.log beside the versions. Also CRIU's action script. */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "runtime/runtime-internal.h"
#include "ckpt/ckpt-internal.h"

int ckpt_store_fd(struct ckpt *ck)
{
	int r;

	if (ck->store_fd >= 0)
		return ck->store_fd;
	r = mkdir_p_at(AT_FDCWD, ck->cfg->checkpoint_dir, 0700);
	if (r < 0)
		return r;
	if (chown(ck->cfg->checkpoint_dir, 0, 0) < 0 || chmod(ck->cfg->checkpoint_dir, 0700) < 0)
		return -errno;
	ck->store_fd = open(ck->cfg->checkpoint_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return ck->store_fd < 0 ? -errno : ck->store_fd;
}

int ckpt_job_store(struct ckpt *ck, struct job *j, bool create)
{
	int s = ckpt_store_fd(ck);

	if (s < 0)
		return s;
	if (create && mkdirat(s, j->id, 0700) == 0) {
		if (ck->cfg->sync_writes && fsync(s) < 0) /* (its versions are synced) */
			return -errno;
	} else if (create && errno != EEXIST)
		return -errno;
	return open_dir_at(s, j->id);
}

static int version_from_name(const char *s, unsigned *ret)
{
	uint64_t v;

	if (!s[0] || s[0] == '0' || strspn(s, "0123456789") != strlen(s))
		return -EINVAL;
	if (parse_uint64(s, &v) < 0 || v == 0 || v > 1000000000)
		return -ERANGE;
	*ret = (unsigned)v;
	return 0;
}

static int cmp_unsigned(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

	return x < y ? -1 : x > y;
}

int ckpt_list_versions(int jfd, unsigned **ret, size_t *ret_n)
{
	DIR *dir = opendir_dup(jfd);
	_cleanup_free_ unsigned *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;

	if (!dir)
		return -errno;
	rewinddir(dir); /* the fd's offset is shared with every earlier dup */
	while ((de = readdir(dir))) {
		unsigned x;

		if (version_from_name(de->d_name, &x) < 0)
			continue;
		if (n == cap) {
			unsigned *p = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));

			if (!p) {
				closedir(dir);
				return -ENOMEM;
			}
			v = p;
		}
		v[n++] = x;
	}
	closedir(dir);
	if (n)
		qsort(v, n, sizeof(*v), cmp_unsigned);
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

/* Remove what a failed or interrupted dump left: every .new-N directory. */
void ckpt_remove_partial(int jfd)
{
	DIR *dir = opendir_dup(jfd);
	struct dirent *de;

	if (!dir)
		return;
	rewinddir(dir);
	while ((de = readdir(dir)))
		if (str_has_prefix(de->d_name, ".new-"))
			(void)rm_rf_at(jfd, de->d_name);
	closedir(dir);
}

static uint64_t dir_bytes(int fd)
{
	DIR *dir = opendir_dup(fd);
	struct dirent *de;
	uint64_t sum = 0;

	if (!dir)
		return 0;
	rewinddir(dir);
	while ((de = readdir(dir))) {
		struct stat st;

		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
			sum += (uint64_t)st.st_size;
	}
	closedir(dir);
	return sum;
}

/* fsync every regular file and directory of a tree, the directories after
 * their entries (not following links; at most 256 levels, as the copies).
 * writeout: only write the files' data out and wait for it (no fsync), so
 * that the fsyncs after find their blocks allocated in one journal
 * transaction: one commit for the version, not one per file (ext4, xfs). */
static int sync_tree(int dfd, unsigned depth, bool writeout)
{
	DIR *dir = opendir_dup(dfd);
	struct dirent *de;
	int r = 0;

	if (!dir)
		return -errno;
	rewinddir(dir);
	while (r >= 0 && (de = readdir(dir))) {
		_cleanup_close_ int fd = -EBADF;
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = -errno;
			break;
		}
		if (S_ISDIR(st.st_mode) && depth < 256) {
			fd = open_dir_at(dfd, de->d_name);
			r = fd < 0 ? fd : sync_tree(fd, depth + 1, writeout);
			continue;
		}
		/* (links, fifos, whiteouts: their directory holds them) */
		if (!S_ISREG(st.st_mode))
			continue;
		fd = openat(dfd, de->d_name,
			    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (fd < 0)
			r = -errno;
		else if (writeout)
			(void)sync_file_range(fd, 0, 0,
					      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
						      SYNC_FILE_RANGE_WAIT_AFTER);
		else if (fsync(fd) < 0)
			r = -errno;
	}
	closedir(dir);
	if (r >= 0 && !writeout && fsync(dfd) < 0)
		r = -errno;
	return r;
}

int ckpt_sync_tree(int dfd)
{
	int r = sync_tree(dfd, 0, true);

	return r < 0 ? r : sync_tree(dfd, 0, false);
}

/* Images to the container's mapped root, the directory 0755 (docs/ARCHITECTURE.md, platform facts). */
int ckpt_chown_images(int vfd, uid_t ru, gid_t rg, uint64_t *ret_bytes)
{
	_cleanup_close_ int img = open_dir_at(vfd, "images");
	DIR *dir;
	struct dirent *de;
	int r = 0;

	if (img < 0)
		return img;
	dir = opendir_dup(img);
	if (!dir)
		return -errno;
	rewinddir(dir);
	while (r >= 0 && (de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    fchownat(img, de->d_name, ru, rg, AT_SYMLINK_NOFOLLOW) < 0)
			r = -errno;
	closedir(dir);
	if (r >= 0 && (fchown(img, ru, rg) < 0 || fchmod(img, 0755) < 0))
		r = -errno;
	if (r >= 0)
		*ret_bytes = dir_bytes(img);
	return r;
}

/* ---- CRIU's stats-dump: a magic or two, a length, a protobuf message ---- */
static int pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *ret)
{
	uint64_t v = 0;

	for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
		uint8_t b = *(*p)++;

		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*ret = v;
			return 0;
		}
	}
	return -EBADMSG;
}

/* Fields 1..14 of DumpStatsEntry, varints; others skipped. */
static int pb_dump_stats(const uint8_t *p, const uint8_t *end, uint64_t f[16])
{
	while (p < end) {
		uint64_t key, v;

		if (pb_varint(&p, end, &key) < 0)
			return -EBADMSG;
		if ((key & 7) == 0) {
			if (pb_varint(&p, end, &v) < 0)
				return -EBADMSG;
			if ((key >> 3) < 16)
				f[key >> 3] = v;
		} else if ((key & 7) == 2) {
			if (pb_varint(&p, end, &v) < 0 || v > (uint64_t)(end - p))
				return -EBADMSG;
			if ((key >> 3) == 1) /* StatsEntry.dump */
				return pb_dump_stats(p, p + v, f);
			p += v;
		} else {
			return -EBADMSG;
		}
	}
	return 0;
}

int ckpt_read_stats(int vfd, struct ckpt_stats *ret)
{
	_cleanup_close_ int img = open_dir_at(vfd, "images");
	_cleanup_free_ char *text = NULL;
	uint64_t f[16] = { 0 };
	size_t len;
	int r;

	if (img < 0)
		return img;
	r = read_file_at(img, "stats-dump", 65536, &text, &len);
	if (r < 0)
		return r;
	for (size_t off = 4; off + 4 <= len && off <= 12; off += 4) {
		uint32_t n;
		const uint8_t *p = (const uint8_t *)text + off + 4;

		memcpy(&n, text + off, 4);
		if (off + 4 + n != len || pb_dump_stats(p, p + n, f) < 0)
			continue;
		*ret = (struct ckpt_stats){ .freezing_time = f[1],
					    .frozen_time = f[2],
					    .memdump_time = f[3],
					    .memwrite_time = f[4],
					    .pages_scanned = f[5],
					    .pages_written = f[7] };
		return 0;
	}
	return -EBADMSG;
}

void ckpt_stats_to_json(const struct ckpt_stats *s, struct yajl_gen_t *g)
{
	json_gen_key(g, "criu_statistics");
	yajl_gen_map_open(g);
	json_gen_kv_uint(g, "freezing_time", s->freezing_time);
	json_gen_kv_uint(g, "frozen_time", s->frozen_time);
	json_gen_kv_uint(g, "memdump_time", s->memdump_time);
	json_gen_kv_uint(g, "memwrite_time", s->memwrite_time);
	json_gen_kv_uint(g, "pages_scanned", s->pages_scanned);
	json_gen_kv_uint(g, "pages_written", s->pages_written);
	yajl_gen_map_close(g);
}

/* ---- the images' sizes, recorded and checked before a restore ---- */
void ckpt_gen_image_sizes(int vfd, struct yajl_gen_t *g)
{
	_cleanup_close_ int img = open_dir_at(vfd, "images");
	DIR *dir = img >= 0 ? opendir_dup(img) : NULL;
	struct dirent *de;

	json_gen_key(g, "images");
	yajl_gen_map_open(g);
	if (dir) {
		rewinddir(dir);
		while ((de = readdir(dir))) {
			struct stat st;

			/* CRIU's logs are not images: restore.log is added later */
			if (!str_has_prefix(de->d_name, ".") && !strstr(de->d_name, ".log") &&
			    fstatat(img, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISREG(st.st_mode))
				json_gen_kv_uint(g, de->d_name, (uint64_t)st.st_size);
		}
		closedir(dir);
	}
	yajl_gen_map_close(g);
}

/* ---- a move's version, not yet on the disk (DECISIONS (bn)) ---- */

#define BOOT_ID_PATH "/proc/sys/kernel/random/boot_id"

/* This boot's id (tests: XOS_TEST_BOOT_ID, a node "restarted" under another
 * name; xosd's environment is root's) */
static int boot_id(char **ret)
{
	const char *test = getenv("XOS_TEST_BOOT_ID");
	int r = test ? ((*ret = strdup(test)) ? 0 : -ENOMEM)
		     : read_file_at(AT_FDCWD, BOOT_ID_PATH, 64, ret, NULL);

	return r < 0 ? r : (*ret)[0] ? 0 : -EBADMSG;
}

int ckpt_mark_unsynced(int vfd)
{
	_cleanup_free_ char *id = NULL;
	int r = boot_id(&id);

	return r < 0 ? r : write_file_atomic_at(vfd, CKPT_UNSYNCED, id, strlen(id), 0600, true);
}

/* 0: vfd holds no marker; 1: one of this boot; -EBADMSG (ret_msg): of another */
static int unsynced_state(int vfd, char **ret_msg)
{
	_cleanup_free_ char *mark = NULL, *id = NULL;
	int r = read_file_at(vfd, CKPT_UNSYNCED, 64, &mark, NULL);

	if (r == -ENOENT)
		return 0;
	if (r >= 0)
		r = boot_id(&id);
	if (r < 0) {
		*ret_msg = xstrdup_printf(
			"its marker of a move or this boot's id cannot be read: %s", strerror(-r));
		return -EBADMSG;
	}
	if (!strcmp(mark, id))
		return 1;
	*ret_msg = strdup("it was made for a move and the node restarted before it was written "
			  "out to the disk (it may be incomplete)");
	return -EBADMSG;
}

int ckpt_settle(int vfd, char **ret_msg)
{
	int r = unsynced_state(vfd, ret_msg);

	if (r <= 0)
		return r;
	r = ckpt_sync_tree(vfd);
	if (r >= 0 && unlinkat(vfd, CKPT_UNSYNCED, 0) < 0)
		r = -errno;
	if (r >= 0 && fsync(vfd) < 0)
		r = -errno;
	if (r < 0)
		*ret_msg = xstrdup_printf("writing it out to the disk: %s", strerror(-r));
	return r;
}

int ckpt_check_images(int vfd, char **ret_msg)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_json_ yajl_val m = NULL;
	_cleanup_close_ int img = open_dir_at(vfd, "images");
	yajl_val files;
	int r = unsynced_state(vfd, ret_msg);

	if (r < 0)
		return r;
	r = read_file_at(vfd, "manifest.json", 16 << 20, &text, NULL);
	if (r < 0 || img < 0)
		return *ret_msg = strdup("its manifest or images are missing"), -EBADMSG;
	(void)json_parse(text, JSON_DEPTH_MAX, NULL, 0, &m);
	files = json_get(m, "images");
	if (!YAJL_IS_OBJECT(files) || files->u.object.len == 0)
		return *ret_msg = strdup("its manifest lists no images"), -EBADMSG;
	for (size_t i = 0; i < files->u.object.len; i++) {
		const char *name = files->u.object.keys[i];
		yajl_val v = files->u.object.values[i];
		struct stat st;

		if (strchr(name, '/') || !YAJL_IS_INTEGER(v))
			return *ret_msg = strdup("its manifest is malformed"), -EBADMSG;
		if (fstatat(img, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			return *ret_msg = xstrdup_printf("image %s is missing", name), -EBADMSG;
		if ((long long)st.st_size != v->u.number.i)
			return *ret_msg = xstrdup_printf(
				       "image %s has %lld bytes, %lld when it was "
				       "made (truncated or altered)",
				       name, (long long)st.st_size, v->u.number.i),
			       -EBADMSG;
	}
	return 0;
}

/* ---- may --net bridge jobs be checkpointed here? ---- */

/* What scripts/build-criu.sh puts in the GitID of the CRIU it builds:
 * "+xos" and the level of xos's patches (scripts/criu-patches/). Level 1
 * holds the fix that lets CRIU recreate a job's veth in its user namespace;
 * level 2 dumps an inotify watch on a deleted file still open and keeps
 * it through the restore (0002, 0003); level 3 lets a restore with lazy
 * pages open the userfaultfd of a task in the job's user namespace (0004),
 * level 4 lets a lazy dump serve pages without CAP_SYS_RESOURCE (0005,
 * DECISIONS (ar)). */
#define CRIU_XOS_MARK "+xos"
#define CRIU_VETH_FIX_LEVEL 1
#define CRIU_PROBE_TIMEOUT_MS 5000

/* The first executable "criu" on xosd's PATH, the one liblxc runs. */
char *ckpt_criu_bin(void)
{
	const char *path = getenv("PATH");
	const char *p = path && *path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin";

	for (;;) {
		size_t len = strcspn(p, ":");
		char *bin = len ? xstrdup_printf("%.*s/criu", (int)len, p) : NULL;

		struct stat st;

		/* a regular file only: a directory named criu on PATH (a build
		 * tree's) is searchable, so X_OK alone would take it */
		if (bin && bin[0] == '/' && stat(bin, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(bin, X_OK) == 0)
			return bin;
		free(bin);
		if (!p[len])
			return NULL;
		p += len + 1;
	}
}

/* Read the output of `BIN --version` (at most len - 1 bytes, NUL-ended). */
static int criu_version_output(const char *bin, char *buf, size_t len)
{
	_cleanup_close_ int devnull = open("/dev/null", O_RDWR | O_CLOEXEC), rd = -EBADF;
	char *argv[] = { (char *)"criu", (char *)"--version", NULL };
	struct spawn_opts o = { .path = bin,
				.argv = argv,
				.fds = { devnull, SPAWN_REPORT, devnull },
				.n_fds = 3,
				.flags = SPAWN_SETSID };
	uint64_t deadline = mono_usec() + CRIU_PROBE_TIMEOUT_MS * 1000ULL, now;
	size_t n = 0;
	pid_t pid;
	int r;

	if (devnull < 0)
		return -errno;
	r = spawn_program(&o, &pid, &rd);
	if (r < 0)
		return r;
	while (n < len - 1 && (now = mono_usec()) < deadline) {
		struct pollfd pfd = { .fd = rd, .events = POLLIN };
		ssize_t k;

		if (poll(&pfd, 1, (int)((deadline - now) / 1000) + 1) == 0)
			break;
		k = read(rd, buf + n, len - 1 - n);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	buf[n] = '\0';
	now = mono_usec();
	return spawn_wait(pid, deadline > now ? deadline - now : 0, NULL);
}

/* The patch level in "GitID: ...+xosN" of CRIU's --version output, or 0. */
static unsigned criu_xos_level(const char *out)
{
	const char *g = strstr(out, "GitID: ");
	const char *m;
	unsigned long level;
	char *end;

	if (!g)
		return 0;
	m = strstr(g, CRIU_XOS_MARK);
	if (!m || memchr(g, '\n', (size_t)(m - g)))
		return 0;
	errno = 0;
	level = strtoul(m + strlen(CRIU_XOS_MARK), &end, 10);
	return errno || end == m + strlen(CRIU_XOS_MARK) || level > 1000 ? 0 : (unsigned)level;
}

unsigned ckpt_criu_level(struct ckpt *ck)
{
	if (ck->criu_level < 0) {
		_cleanup_free_ char *bin = ckpt_criu_bin();
		char out[1024];

		ck->criu_level = bin && criu_version_output(bin, out, sizeof(out)) >= 0
					 ? (int)criu_xos_level(out)
					 : 0;
	}
	return (unsigned)ck->criu_level;
}

int ckpt_bridge_allowed(struct ckpt *ck, const char **ret_why)
{
	switch (ck->cfg->checkpoint_bridge) {
	case CKPT_BRIDGE_YES:
		return 0;
	case CKPT_BRIDGE_NO:
		*ret_why =
			"the node owner has turned it off (checkpoint_bridge = false in xosd.conf)";
		return -EOPNOTSUPP;
	default:
		break;
	}
	if (ck->criu_veth_fix < 0) {
		_cleanup_free_ char *bin = ckpt_criu_bin();
		char out[1024];

		ck->criu_veth_fix = bin && criu_version_output(bin, out, sizeof(out)) >= 0 &&
				    criu_xos_level(out) >= CRIU_VETH_FIX_LEVEL;
		log_info("CRIU %s %s restore a --net bridge job's veth (checkpoint_bridge = auto)",
			 bin ? bin : "(none on PATH)", ck->criu_veth_fix ? "can" : "cannot");
	}
	if (ck->criu_veth_fix)
		return 0;
	*ret_why = "the CRIU on xosd's PATH cannot recreate a job's veth in its user namespace "
		   "(scripts/build-criu.sh builds one that can; a node owner whose CRIU can sets "
		   "checkpoint_bridge = true)";
	return -EOPNOTSUPP;
}

bool ckpt_has_versions(struct ckpt *ck, struct job *j)
{
	_cleanup_free_ unsigned *v = NULL;
	_cleanup_close_ int jfd = -EBADF;
	size_t n = 0;

	if (ck->store_fd < 0 && access(ck->cfg->checkpoint_dir, F_OK) < 0)
		return false; /* (no store: not made for this question) */
	jfd = ckpt_job_store(ck, j, false);
	/* (versions another node took over are not this node's) */
	return jfd >= 0 && ckpt_list_versions(jfd, &v, &n) >= 0 && n > 0 && ckpt_holder(ck, j) != 0;
}

int ckpt_job_versions(struct ckpt *ck, struct job *j, unsigned **ret, size_t *ret_n)
{
	_cleanup_close_ int jfd = ckpt_job_store(ck, j, false);

	if (jfd < 0) {
		*ret = NULL;
		*ret_n = 0;
		return 0;
	}
	return ckpt_list_versions(jfd, ret, ret_n);
}

int ckpt_new(const struct ckpt_setup *s, struct ckpt **ret)
{
	struct ckpt *ck = calloc(1, sizeof(*ck));

	if (!ck)
		return -ENOMEM;
	*ck = (struct ckpt){ .cfg = s->cfg,
			     .host = s->host,
			     .data = s->data,
			     .jobs = s->jobs,
			     .self_exe = s->self_exe ? strdup(s->self_exe) : NULL,
			     .cgroup_v2 = s->cgroup_v2,
			     .store_fd = -EBADF,
			     .criu_veth_fix = -1,
			     .criu_level = -1,
			     .tick_walk = true };
	if (s->self_exe && !ck->self_exe) {
		free(ck);
		return -ENOMEM;
	}
	*ret = ck;
	return 0;
}

void ckpt_free(struct ckpt *ck)
{
	if (!ck)
		return;
	closep(&ck->store_fd);
	free(ck->self_exe);
	free(ck);
}

/* The record of job id's newest version in the store (a job another node
 * checkpointed into a store both see), and that version. */
int ckpt_newest_record(struct ckpt *ck, const char *id, struct job **ret, unsigned *ret_version)
{
	_cleanup_free_ unsigned *v = NULL;
	_cleanup_free_ char *rec = NULL;
	_cleanup_close_ int jfd = -EBADF, vfd = -EBADF;
	struct job *j = NULL;
	char name[32];
	size_t n = 0;
	int s = ckpt_store_fd(ck), r;

	if (s < 0)
		return s;
	jfd = open_dir_at(s, id);
	if (jfd < 0)
		return jfd;
	r = ckpt_list_versions(jfd, &v, &n);
	if (r < 0)
		return r;
	if (n == 0)
		return -ENOENT;
	snprintf(name, sizeof(name), "%u", v[n - 1]);
	vfd = open_dir_at(jfd, name);
	if (vfd < 0)
		return vfd;
	r = read_file_at(vfd, "record.json", 16 << 20, &rec, NULL);
	if (r >= 0)
		r = job_from_json(rec, &j);
	if (r < 0)
		return r;
	if (strcmp(j->id, id) != 0) {
		job_free(j);
		return -EBADMSG;
	}
	*ret = j;
	*ret_version = v[n - 1];
	return 0;
}

/* ---- who holds a job's versions (a store shared by several nodes) ----
 * <checkpoint_dir>/<job id>/holder names the claim of the node that took the
 * job over last (xrestart on another node, runtime/ckpt-adopt.c), and since
 * DECISIONS.md (aq) that node's name and whether the job runs there:
 * "CLAIM [NODE live|ended]". The same claim is in that node's record of the
 * job. No holder file: the node that made the job holds it. A takeover
 * first creates claimed-<CLAIM it replaces> exclusively (O_EXCL): of two
 * nodes taking a job over from the same holder, one wins. DECISIONS.md (am),
 * (aq). */

#define HOLDER_FILE "holder"

static int holder_parse(const char *text, struct ckpt_holder_info *ret)
{
	struct ckpt_holder_info h = { 0 };
	size_t n = strcspn(text, " \n");

	if (n == 0 || n >= sizeof(h.claim))
		return -EBADMSG;
	memcpy(h.claim, text, n);
	text += n;
	h.live = true; /* (the old format: a takeover, for a restart) */
	if (*text == ' ') {
		text++;
		n = strcspn(text, " \n");
		if (n >= sizeof(h.node))
			return -EBADMSG;
		memcpy(h.node, text, n);
		text += n;
		h.live = !str_has_prefix(text, " ended");
	}
	*ret = h;
	return 0;
}

int ckpt_holder_read(struct ckpt *ck, const char *id, struct ckpt_holder_info *ret)
{
	_cleanup_close_ int jfd = -EBADF;
	_cleanup_free_ char *text = NULL;
	int s, r;

	if (ck->store_fd < 0 && access(ck->cfg->checkpoint_dir, F_OK) < 0)
		return -ENOENT;
	s = ckpt_store_fd(ck);
	if (s < 0)
		return s;
	jfd = open_dir_at(s, id);
	if (jfd < 0)
		return jfd;
	r = read_file_at(jfd, HOLDER_FILE, 256, &text, NULL);
	if (r < 0)
		return r;
	return holder_parse(text, ret);
}

int ckpt_holder(struct ckpt *ck, const struct job *j)
{
	struct ckpt_holder_info h;
	int r = ckpt_holder_read(ck, j->id, &h);

	if (r == -ENOENT)
		return 1; /* no store, no versions or no holder: nothing of another node's */
	if (r < 0)
		return r;
	return j->store_claim && !strcmp(h.claim, j->store_claim);
}

static int holder_write(int jfd, const char *claim, const char *node, bool live)
{
	char line[256];
	int n;

	if (node)
		n = snprintf(line, sizeof(line), "%s %s %s\n", claim, node,
			     live ? "live" : "ended");
	else
		n = snprintf(line, sizeof(line), "%s\n", claim);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -ENAMETOOLONG;
	return write_file_atomic_at(jfd, HOLDER_FILE, line, (size_t)n, 0600, true);
}

/* The exclusive step of a takeover from the holder claim expect ("" none). */
static int claim_exclusive(int jfd, const char *expect)
{
	char name[64];
	int fd;

	snprintf(name, sizeof(name), "claimed-%s", expect[0] ? expect : "origin");
	fd = openat(jfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno; /* EEXIST: another node was first */
	if (fsync(fd) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	close(fd);
	return 0;
}

int ckpt_claim(struct ckpt *ck, struct job *j, const char *node, const char *expect)
{
	_cleanup_close_ int jfd = -EBADF;
	char claim[XOS_JOB_ID_HEX + 1];
	char *dup;
	int r;

	r = random_job_id(claim);
	if (r < 0)
		return r;
	jfd = ckpt_job_store(ck, j, false);
	if (jfd < 0)
		return jfd;
	if (expect && (r = claim_exclusive(jfd, expect)) < 0)
		return r;
	dup = strdup(claim);
	if (!dup)
		return -ENOMEM;
	r = holder_write(jfd, claim, node, true);
	if (r < 0) {
		free(dup);
		return r;
	}
	free(j->store_claim);
	j->store_claim = dup;
	return 0;
}

int ckpt_holder_mark(struct ckpt *ck, struct job *j, const char *node, bool live)
{
	_cleanup_close_ int jfd = -EBADF;

	if (!j->store_claim || ckpt_holder(ck, j) != 1)
		return -EPERM;
	jfd = ckpt_job_store(ck, j, false);
	if (jfd < 0)
		return jfd;
	return holder_write(jfd, j->store_claim, node, live);
}
