/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The CPU check of a move's pre-flight (issue 11): the source describes its
 * CPU ("criu cpuinfo dump"), the target asks CRIU whether it can stand in for
 * that CPU ("criu cpuinfo check"). Each run of CRIU takes about 100 ms here
 * (its start and its probes of the kernel): it runs as a child of the move,
 * watched in the event loop (migrate.c acts on its end), and both answers
 * are kept while xosd runs (DECISIONS (bl)): this node's description,
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

/* img as hex text (malloc'ed), or NULL */
static char *hex_dup(const void *img, size_t n)
{
	char *hex = malloc(2 * n + 1);

	if (hex)
		hex_encode(img, n, hex);
	return hex;
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

#define CPU_REFUSAL                                                                   \
	"its CPU is not compatible with the job's source node's (criu cpuinfo check " \
	"failed): the job's code may use instructions this CPU lacks"

/* The description of a CPU of another kind, for tests (XOS_MIGRATE_CPUINFO:
 * sent instead of this node's), hex-encoded in *ret; 0 if not asked for. */
static int cpu_forged(char **ret, struct xerr *err)
{
	const char *forged = getenv("XOS_MIGRATE_CPUINFO");
	_cleanup_free_ char *img = NULL;
	size_t len = 0;
	int r;

	if (!forged || forged[0] != '/')
		return 0;
	r = read_file_at(AT_FDCWD, forged, CPUINFO_MAX, &img, &len);
	if (r < 0)
		return xerr_set(err, r, "internal", "Cannot read %s: %s", forged, strerror(-r));
	*ret = hex_dup(img, len);
	return *ret ? 1 : xerr_set(err, -ENOMEM, "internal", "Out of memory");
}

void mig_cpu_clear(struct migration *m)
{
	if (m->cpu_dir) {
		(void)rm_rf_at(AT_FDCWD, m->cpu_dir);
		free(m->cpu_dir);
		m->cpu_dir = NULL;
	}
	free(m->cpu_img);
	m->cpu_img = NULL;
	m->cpu_len = 0;
}

int mig_cpu_take(struct migration *m, const char *hex, struct xerr *err)
{
	size_t n = hex ? strlen(hex) / 2 : 0;

	free(m->cpu_img);
	m->cpu_img = n && n <= CPUINFO_MAX ? malloc(n) : NULL;
	m->cpu_len = 0;
	if (!hex || !m->cpu_img || hex_decode(hex, m->cpu_img, n, &m->cpu_len) < 0)
		return xerr_set(err, -EINVAL, "refused", "its CPU description is malformed");
	return 0;
}

/* "criu cpuinfo dump|check -D dir" (the CRIU that checkpoints run), m's
 * child: a directory of the run directory for its image (the source's
 * description, hex, written there for a check); its output goes to xosd's
 * log. */
int mig_cpu_start(struct daemon *d, struct migration *m, bool check, struct xerr *err)
{
	_cleanup_free_ char *bin = ckpt_criu_bin();
	char *const argv[] = { bin, "cpuinfo", check ? "check" : "dump", "-D", NULL, NULL };
	struct spawn_opts o = { .path = bin,
				.argv = argv,
				.first_fd = 1,
				.fds = { STDERR_FILENO, STDERR_FILENO },
				.n_fds = 2 };
	_cleanup_close_ int report = -EBADF, dfd = -EBADF;
	int r;

	if (!bin)
		return xerr_set(err, -ENOENT, "internal", "No CRIU (criu) on xosd's PATH");
	m->cpu_dir = xstrdup_printf("%s/migrate-cpu.XXXXXX", d->cfg->run_dir);
	if (!m->cpu_dir)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	if (!mkdtemp(m->cpu_dir)) {
		r = -errno;
		free(m->cpu_dir);
		m->cpu_dir = NULL;
		return xerr_set(err, r, "internal", "Cannot make a directory in %s: %s",
				d->cfg->run_dir, strerror(-r));
	}
	if (check) {
		dfd = open(m->cpu_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		r = dfd < 0 ? -errno
			    : write_file_atomic_at(dfd, "cpuinfo.img", m->cpu_img, m->cpu_len, 0600,
						   false);
		if (r < 0)
			return xerr_set(err, r, "internal", "Cannot write the CPU description: %s",
					strerror(-r));
	}
	((char **)argv)[4] = m->cpu_dir;
	r = spawn_program(&o, &m->pid, &report);
	if (r < 0)
		return xerr_set(err, r, "internal", "Cannot run %s: %s", bin, strerror(-r));
	m->t_cpu = mono_usec(); /* (the run's own bound: migrate_tick) */
	r = mig_child_watch(d, m);
	if (r < 0)
		return xerr_set(err, r, "internal", "Cannot watch CRIU: %s", strerror(-r));
	return 0;
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

int mig_cpu_describe_kept(struct daemon *d, char **ret, struct xerr *err)
{
	struct mig_cpu *c;
	int r = cpu_forged(ret, err);

	if (r != 0)
		return r;
	c = cpu_kept(d);
	if (!c || !c->hex)
		return 0;
	*ret = strdup(c->hex);
	return *ret ? 1 : xerr_set(err, -ENOMEM, "internal", "Out of memory");
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

int mig_cpu_check_kept(struct daemon *d, const struct migration *m, struct xerr *err)
{
	uint64_t now = mono_usec();
	struct mig_cpu *c = cpu_kept(d);

	if (c && kept_find(c->ok, m->cpu_img, m->cpu_len, now))
		return 1;
	if (c && kept_find(c->no, m->cpu_img, m->cpu_len, now))
		return xerr_set(err, -EIO, "refused", CPU_REFUSAL);
	return 0;
}

/* The source's end of mig_cpu_end: this node's description, kept. */
static int dump_ended(struct daemon *d, struct migration *m, char **ret, struct xerr *err)
{
	_cleanup_close_ int dfd = open(m->cpu_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_free_ char *img = NULL;
	struct mig_cpu *c;
	size_t len = 0;
	int r;

	if (dfd < 0)
		return xerr_set(err, -errno, "internal", "Cannot open %s: %m", m->cpu_dir);
	if ((r = read_file_at(dfd, "cpuinfo.img", CPUINFO_MAX, &img, &len)) < 0)
		return xerr_set(err, r, "internal", "Cannot read CRIU's cpuinfo.img: %s",
				strerror(-r));
	*ret = hex_dup(img, len);
	if (!*ret)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	c = cpu_kept(d);
	log_info("This node's CPU described by criu cpuinfo dump%s", c ? " (kept)" : "");
	if (c) {
		free(c->hex);
		c->hex = strdup(*ret); /* (none kept without memory: made again next time) */
	}
	return 0;
}

int mig_cpu_end(struct daemon *d, struct migration *m, int status, char **ret, struct xerr *err)
{
	struct mig_cpu *c = cpu_kept(d);
	int r = 0;

	if (status == MIG_CPU_TIMED_OUT) {
		r = xerr_set(err, -ETIME, "refused",
			     m->outgoing ? "criu cpuinfo dump on this node did not end in time "
					   "(killed)"
					 : "its criu cpuinfo check did not end in time (killed)");
	} else if (m->outgoing) {
		if (status != 0)
			r = xerr_set(err, -EIO, "refused", "criu cpuinfo dump failed on this node");
		else
			r = dump_ended(d, m, ret, err);
	} else if (status == 1) { /* (CRIU's "no"; other failures are not kept) */
		r = xerr_set(err, -EIO, "refused", CPU_REFUSAL);
		if (c) {
			log_info("A source's CPU description refused by criu cpuinfo check (kept "
				 "for %llu s)",
				 CPU_REFUSAL_KEPT_US / 1000000);
			kept_put(c->no, &c->next_no, &m->cpu_img, m->cpu_len,
				 mono_usec() + CPU_REFUSAL_KEPT_US);
		}
	} else if (status != 0) {
		r = xerr_set(err, -EIO, "refused", CPU_REFUSAL);
	} else {
		log_info("A source's CPU description checked by criu cpuinfo check: this CPU "
			 "stands in for it%s",
			 c ? " (kept)" : "");
		if (c)
			kept_put(c->ok, &c->next_ok, &m->cpu_img, m->cpu_len, 0);
	}
	mig_cpu_clear(m);
	return r;
}
