/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The CPU check of a move's pre-flight (issue 11): the source describes its
 * CPU ("criu cpuinfo dump"), the target asks CRIU whether it can stand in for
 * that CPU ("criu cpuinfo check"). Each run of CRIU takes about 100 ms here
 * (its start and its probes of the kernel), in the event loop, so both
 * answers are kept while xosd runs (DECISIONS (bl)): this node's description,
 * and the descriptions this CPU was found to run, byte for byte; both only
 * under the key they were made with (CRIU's binary and the CPU's identity in
 * /proc/cpuinfo), dropped when it changes. A refusal (CRIU's exit status 1)
 * is kept for a minute: a source whose moves keep being refused costs CRIU
 * one run a minute, not one per request, and a refusal that was CRIU's
 * passing failure does not stand longer than that. */
#include <fcntl.h>
#include <sys/wait.h>

#include "runtime/migrate-internal.h"

#define CPUINFO_MAX 65536
#define CPU_KEY_MAX 160
#define CPU_KEPT 4                            /* sources' descriptions kept, of each answer */
#define CPU_REFUSAL_KEPT_US (60 * 1000000ULL) /* how long a refusal is kept */

struct kept_cpu { /* a source's description and CRIU's answer about it */
	uint8_t *img;
	size_t len;
	uint64_t until; /* (a refusal's: mono_usec() until which it stands) */
};

struct mig_cpu {
	char key[CPU_KEY_MAX];        /* CRIU and the CPU the answers below are of */
	char *hex;                    /* this node's description (NULL: not made yet) */
	struct kept_cpu ok[CPU_KEPT]; /* descriptions this CPU runs */
	struct kept_cpu no[CPU_KEPT]; /* descriptions it was refused, lately */
	unsigned next_ok, next_no;    /* the slots the next ones take */
};

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[in[i] >> 4];
		out[2 * i + 1] = hx[in[i] & 15];
	}
	out[2 * n] = 0;
}

static int hex_decode(const char *in, uint8_t *out, size_t max, size_t *ret_n)
{
	size_t n = strlen(in);

	if (n % 2 || n / 2 > max)
		return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;

		if (sscanf(in + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		out[i] = (uint8_t)v;
	}
	*ret_n = n / 2;
	return 0;
}

/* "criu cpuinfo VERB -D dir" (the CRIU that checkpoints run) to its end;
 * *ret_status (if not NULL): its exit status, -1 if it did not exit by itself */
static int run_cpuinfo(const char *verb, const char *dir, const char *what, int *ret_status,
		       struct xerr *err)
{
	_cleanup_free_ char *bin = ckpt_criu_bin();
	char *const argv[] = { bin, "cpuinfo", (char *)verb, "-D", (char *)dir, NULL };
	/* (its output goes to xosd's log) */
	struct spawn_opts o = { .path = bin,
				.argv = argv,
				.first_fd = 1,
				.fds = { STDERR_FILENO, STDERR_FILENO },
				.n_fds = 2 };
	_cleanup_close_ int report = -EBADF;
	pid_t pid;
	int status = 0, r;

	if (ret_status)
		*ret_status = -1;
	if (!bin)
		return xerr_set(err, -ENOENT, "internal", "No CRIU (criu) on xosd's PATH");
	r = spawn_program(&o, &pid, &report);
	if (r < 0)
		return xerr_set(err, r, "internal", "Cannot run %s: %s", bin, strerror(-r));
	r = spawn_wait(pid, 10000000, &status);
	if (ret_status)
		*ret_status = r >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return xerr_set(err, -EIO, "refused", "%s", what);
	return 0;
}

/* This node's CPU as CRIU describes it (cpuinfo.img), hex-encoded. */
static int cpu_dump(struct daemon *d, char **ret, struct xerr *err)
{
	char dir[PATH_MAX];
	_cleanup_free_ char *img = NULL;
	_cleanup_close_ int dfd = -EBADF;
	const char *forged = getenv("XOS_MIGRATE_CPUINFO");
	size_t len = 0;
	int r;

	/* tests: the image of a CPU of another kind, sent instead of this one's */
	if (forged && forged[0] == '/') {
		r = read_file_at(AT_FDCWD, forged, CPUINFO_MAX, &img, &len);
		if (r < 0)
			return xerr_set(err, r, "internal", "Cannot read %s: %s", forged,
					strerror(-r));
		goto encode;
	}
	snprintf(dir, sizeof(dir), "%s/migrate-cpu.XXXXXX", d->cfg->run_dir);
	if (!mkdtemp(dir))
		return xerr_set(err, -errno, "internal", "Cannot make a directory in %s: %m",
				d->cfg->run_dir);
	r = run_cpuinfo("dump", dir, "criu cpuinfo dump failed on this node", NULL, err);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r >= 0 && (r = read_file_at(dfd, "cpuinfo.img", CPUINFO_MAX, &img, &len)) < 0)
		xerr_set(err, r, "internal", "Cannot read CRIU's cpuinfo.img: %s", strerror(-r));
	(void)rm_rf_at(AT_FDCWD, dir);
	if (r < 0)
		return r;
encode:
	*ret = malloc(2 * len + 1);
	if (!*ret)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	hex_encode((const uint8_t *)img, len, *ret);
	return 0;
}

#define CPU_REFUSAL                                                                   \
	"its CPU is not compatible with the job's source node's (criu cpuinfo check " \
	"failed): the job's code may use instructions this CPU lacks"

/* Whether this node's CPU runs what the source's dumped, img (criu cpuinfo
 * check); *ret_status: CRIU's exit status (1: it said no), -1 if it did not
 * exit by itself. */
static int cpu_run_check(struct daemon *d, const uint8_t *img, size_t n, int *ret_status,
			 struct xerr *err)
{
	char dir[PATH_MAX];
	_cleanup_close_ int dfd = -EBADF;
	int r;

	*ret_status = -1; /* (until CRIU ran) */
	snprintf(dir, sizeof(dir), "%s/migrate-cpu.XXXXXX", d->cfg->run_dir);
	if (!mkdtemp(dir))
		return xerr_set(err, -errno, "internal", "cannot make a directory: %m");
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r = dfd < 0 ? -errno : write_file_atomic_at(dfd, "cpuinfo.img", img, n, 0600, false);
	if (r >= 0)
		r = run_cpuinfo("check", dir, CPU_REFUSAL, ret_status, err);
	else
		xerr_set(err, r, "internal", "cannot write the CPU description: %s", strerror(-r));
	(void)rm_rf_at(AT_FDCWD, dir);
	return r;
}

/* The lines of /proc/cpuinfo's first processor that say what the CPU is
 * (x86 and arm64 names), not its speed. */
static bool cpu_identity_line(const char *l)
{
	static const char *const keys[] = {
		"vendor_id",   "cpu family", "model",           "microcode",
		"flags",       "Features",   "CPU implementer", "CPU architecture",
		"CPU variant", "CPU part",   "CPU revision"
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		size_t k = strlen(keys[i]);

		if (!strncmp(l, keys[i], k) && (l[k] == '\t' || l[k] == ' ' || l[k] == ':'))
			return true;
	}
	return false;
}

static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 0x100000001b3ULL;
	return h;
}

/* What the kept answers depend on: CRIU's binary (device, inode, size, mtime)
 * and a hash of the CPU's identity lines. */
static int cpu_key(char *buf, size_t len)
{
	char text[16384], stamp[128];
	_cleanup_free_ char *bin = ckpt_criu_bin();
	_cleanup_close_ int fd = open("/proc/cpuinfo", O_RDONLY | O_CLOEXEC);
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t n = 0;
	int r;

	if (fd < 0)
		return -errno;
	if (!bin)
		return -ENOENT;
	if ((r = file_stamp(bin, stamp, sizeof(stamp))) < 0)
		return r;
	for (ssize_t k; n < sizeof(text) - 1 && (k = read(fd, text + n, sizeof(text) - 1 - n));)
		if (k > 0)
			n += (size_t)k;
		else if (errno != EINTR)
			return -errno;
	text[n] = 0;
	for (char *l = text, *e; *l && *l != '\n'; l = e + 1) { /* (to the first blank line) */
		e = strchrnul(l, '\n');
		if (cpu_identity_line(l))
			h = fnv1a(h, l, (size_t)(e - l) + 1);
		if (!*e)
			break;
	}
	r = snprintf(buf, len, "%s/%016llx", stamp, (unsigned long long)h);
	return r < 0 || (size_t)r >= len ? -ENAMETOOLONG : 0;
}

void migrate_cpu_free(struct daemon *d)
{
	struct mig_cpu *c = d->mig_cpu;

	if (!c)
		return;
	free(c->hex);
	for (size_t i = 0; i < CPU_KEPT; i++) {
		free(c->ok[i].img);
		free(c->no[i].img);
	}
	free(c);
	d->mig_cpu = NULL;
}

/* The kept answers, emptied if CRIU or the CPU changed since they were made;
 * NULL if the key cannot be made (nothing is kept then). */
static struct mig_cpu *cpu_kept(struct daemon *d)
{
	char key[CPU_KEY_MAX];

	if (cpu_key(key, sizeof(key)) < 0)
		return NULL;
	if (d->mig_cpu && strcmp(d->mig_cpu->key, key))
		migrate_cpu_free(d);
	if (!d->mig_cpu) {
		d->mig_cpu = calloc(1, sizeof(*d->mig_cpu));
		if (!d->mig_cpu)
			return NULL;
		snprintf(d->mig_cpu->key, sizeof(d->mig_cpu->key), "%s", key);
	}
	return d->mig_cpu;
}

int mig_cpu_describe(struct daemon *d, char **ret, struct xerr *err)
{
	struct mig_cpu *c = getenv("XOS_MIGRATE_CPUINFO") ? NULL : cpu_kept(d);
	int r;

	if (c && c->hex) {
		*ret = strdup(c->hex);
		return *ret ? 0 : xerr_set(err, -ENOMEM, "internal", "Out of memory");
	}
	if ((r = cpu_dump(d, ret, err)) < 0)
		return r;
	log_info("This node's CPU described by criu cpuinfo dump%s", c ? " (kept)" : "");
	if (c)
		c->hex = strdup(*ret); /* (none kept without memory: made again next time) */
	return 0;
}

/* The slot of set that holds img (a refusal only until it lapsed), or NULL. */
static struct kept_cpu *kept_find(struct kept_cpu *set, const uint8_t *img, size_t n, uint64_t now)
{
	for (size_t i = 0; i < CPU_KEPT; i++)
		if (set[i].img && set[i].len == n && (!set[i].until || now < set[i].until) &&
		    !memcmp(set[i].img, img, n))
			return &set[i];
	return NULL;
}

/* img (taken) into the slot of set that *next names, in turn */
static void kept_put(struct kept_cpu *set, unsigned *next, uint8_t **img, size_t n, uint64_t until)
{
	struct kept_cpu *k = &set[(*next)++ % CPU_KEPT];

	free(k->img);
	k->img = TAKE_PTR(*img);
	k->len = n;
	k->until = until;
}

int mig_cpu_check(struct daemon *d, const char *hex, struct xerr *err)
{
	_cleanup_free_ uint8_t *img = malloc(CPUINFO_MAX);
	uint64_t now = mono_usec();
	struct mig_cpu *c;
	size_t n = 0;
	int r, status;

	if (!img || hex_decode(hex, img, CPUINFO_MAX, &n) < 0)
		return xerr_set(err, -EINVAL, "refused", "its CPU description is malformed");
	c = cpu_kept(d);
	if (c && kept_find(c->ok, img, n, now))
		return 0;
	if (c && kept_find(c->no, img, n, now))
		return xerr_set(err, -EIO, "refused", CPU_REFUSAL);
	r = cpu_run_check(d, img, n, &status, err);
	if (r < 0 && status == 1 && c) {
		log_info(
			"A source's CPU description refused by criu cpuinfo check (kept for %llu s)",
			CPU_REFUSAL_KEPT_US / 1000000);
		kept_put(c->no, &c->next_no, &img, n, now + CPU_REFUSAL_KEPT_US);
	}
	if (r < 0)
		return r;
	log_info("A source's CPU description checked by criu cpuinfo check: this CPU stands in "
		 "for it%s",
		 c ? " (kept)" : "");
	if (c)
		kept_put(c->ok, &c->next_ok, &img, n, 0);
	return 0;
}
