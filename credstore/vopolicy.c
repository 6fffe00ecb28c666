/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* VO policies (DECISIONS (aj), xos-vo.conf(5)): the node owner's vo.d/VO.conf,
 * a VO administrator's tightening of it, and the checks of a job, a
 * checkpoint and a migration against the policy in force. Pure logic. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "credstore/credstore.h"

#define LINE_MAX_VO 4096   /* characters of a line */
#define LIST_TEXT_MAX 2048 /* of a list's value: formatted, it still fits a line */

static const char *const net_names[_CREDSTORE_VO_NET_MAX] = {
	[CREDSTORE_VO_NET_NONE] = "none",
	[CREDSTORE_VO_NET_BRIDGE] = "bridge",
	[CREDSTORE_VO_NET_OUTBOUND] = "outbound",
	[CREDSTORE_VO_NET_PORTS] = "ports",
};

/* K_SHARE: a whole number from 1 to CREDSTORE_VO_SHARE_MAX, 1 where unset
 * (so an administrator may lower it, never raise it above the node
 * owner's, set or not) */
enum kind { K_LIST, K_SIZE, K_CPUS, K_COUNT, K_TIME, K_NET, K_PATHS, K_BOOL, K_SHARE };

/* The key table: name, kind, and where the value lives (offsetof). */
struct key_info {
	const char *name;
	enum kind kind;
	size_t off;
};

#define P(f) offsetof(struct credstore_vo_policy, f)
static const struct key_info keys[_CREDSTORE_VO_KEY_MAX] = {
	[CREDSTORE_VO_TEMPLATES] = { "templates", K_LIST, P(templates) },
	[CREDSTORE_VO_JOB_MEMORY] = { "job_memory", K_SIZE, P(job.memory) },
	[CREDSTORE_VO_JOB_CPUS] = { "job_cpus", K_CPUS, P(job.millicpus) },
	[CREDSTORE_VO_JOB_PIDS] = { "job_pids", K_COUNT, P(job.pids) },
	[CREDSTORE_VO_JOB_DISK] = { "job_disk", K_SIZE, P(job.disk) },
	[CREDSTORE_VO_JOB_TIME] = { "job_time", K_TIME, P(job.time_us) },
	[CREDSTORE_VO_VO_MEMORY] = { "vo_memory", K_SIZE, P(vo.memory) },
	[CREDSTORE_VO_VO_CPUS] = { "vo_cpus", K_CPUS, P(vo.millicpus) },
	[CREDSTORE_VO_VO_PIDS] = { "vo_pids", K_COUNT, P(vo.pids) },
	[CREDSTORE_VO_VO_DISK] = { "vo_disk", K_SIZE, P(vo.disk) },
	[CREDSTORE_VO_VO_JOBS] = { "vo_jobs", K_COUNT, P(vo.jobs) },
	[CREDSTORE_VO_NETWORK] = { "network", K_NET, P(net) },
	[CREDSTORE_VO_VOLUMES] = { "volumes", K_PATHS, P(volumes) },
	[CREDSTORE_VO_CHECKPOINT] = { "checkpoint", K_BOOL, P(checkpoint) },
	[CREDSTORE_VO_CHECKPOINT_QUOTA] = { "checkpoint_quota", K_SIZE, P(ckpt_quota) },
	[CREDSTORE_VO_MIGRATE] = { "migrate", K_BOOL, P(migrate) },
	[CREDSTORE_VO_MIGRATE_NODES] = { "migrate_nodes", K_LIST, P(migrate_nodes) },
	[CREDSTORE_VO_FAIR_SHARE] = { "fair_share", K_SHARE, P(fair_share) },
};
#undef P

#define FIELD(p, k, type) ((type *)((char *)(p) + keys[k].off))
#define CFIELD(p, k, type) ((const type *)((const char *)(p) + keys[k].off))
/* a list field of a const policy */
#define CLIST(p, k) (*(char **const *)((const char *)(p) + keys[k].off))

const char *credstore_vo_net_to_string(enum credstore_vo_net n)
{
	return n >= 0 && n < _CREDSTORE_VO_NET_MAX ? net_names[n] : NULL;
}

enum credstore_vo_net credstore_vo_net_from_string(const char *s)
{
	for (int i = 0; s && i < _CREDSTORE_VO_NET_MAX; i++)
		if (!strcmp(s, net_names[i]))
			return (enum credstore_vo_net)i;
	return _CREDSTORE_VO_NET_INVALID;
}

const char *credstore_vo_key_to_string(enum credstore_vo_key k)
{
	return k >= 0 && k < _CREDSTORE_VO_KEY_MAX ? keys[k].name : NULL;
}

enum credstore_vo_key credstore_vo_key_from_string(const char *s)
{
	for (int i = 0; s && i < _CREDSTORE_VO_KEY_MAX; i++)
		if (!strcmp(s, keys[i].name))
			return (enum credstore_vo_key)i;
	return _CREDSTORE_VO_KEY_INVALID;
}

static void policy_init(struct credstore_vo_policy *p)
{
	*p = (struct credstore_vo_policy){
		.net = CREDSTORE_VO_NET_PORTS, .checkpoint = true, .migrate = true, .fair_share = 1
	};
	memset(p->from, -1, sizeof(p->from));
}

void credstore_vo_policy_done(struct credstore_vo_policy *p)
{
	free(p->files[0]);
	free(p->files[1]);
	strv_free(p->templates);
	strv_free(p->volumes);
	strv_free(p->migrate_nodes);
	policy_init(p);
}

static int set_error(char **ret_error, int r, const char *fmt, ...) _printf_(3, 4);
static int set_error(char **ret_error, int r, const char *fmt, ...)
{
	va_list ap;

	if (ret_error) {
		free(*ret_error);
		va_start(ap, fmt);
		if (vasprintf(ret_error, fmt, ap) < 0)
			*ret_error = NULL;
		va_end(ap);
	}
	return r;
}

/* A volume root: absolute, no "." or ".." component, no trailing '/'. */
static bool path_ok(const char *s)
{
	size_t n = strlen(s);

	if (s[0] != '/' || n >= 4096 || (n > 1 && s[n - 1] == '/') || strstr(s, "//"))
		return false;
	for (const char *c = s; *c; c++)
		if ((unsigned char)*c < 0x21 || *c == 0x7f)
			return false; /* (blanks separate items; controls are no paths) */
	for (const char *c = s; (c = strchr(c, '/')); c++)
		if (!strncmp(c, "/./", 3) || !strcmp(c, "/.") || !strncmp(c, "/../", 4) ||
		    !strcmp(c, "/.."))
			return false;
	return true;
}

/* A template or node name: [A-Za-z0-9][A-Za-z0-9_.:-]{0,127} */
static bool word_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 128 && s[0] != '.' && s[0] != '-' && s[0] != '_' &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-") == n;
}

/* "a, b c": at most CREDSTORE_VO_LIST_MAX items, each checked by ok. */
static int parse_list(const char *v, bool (*ok)(const char *), char ***ret)
{
	_cleanup_strv_free_ char **l = calloc(1, sizeof(char *));
	_cleanup_free_ char *copy = strdup(v);
	char *save = NULL;

	if (!l || !copy)
		return -ENOMEM;
	if (strlen(v) > LIST_TEXT_MAX)
		return -EINVAL;
	for (char *t = strtok_r(copy, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
		char *s;

		if (!ok(t) || strv_length(l) >= CREDSTORE_VO_LIST_MAX)
			return -EINVAL;
		s = strdup(t);
		if (!s || strv_push(&l, s) < 0)
			return -ENOMEM;
	}
	*ret = TAKE_PTR(l);
	return 0;
}

static int parse_value(struct credstore_vo_policy *p, enum credstore_vo_key k, const char *v)
{
	uint64_t *u = FIELD(p, k, uint64_t);
	int r;

	switch (keys[k].kind) {
	case K_LIST:
	case K_PATHS: {
		char ***l = FIELD(p, k, char **);

		strv_free(*l);
		*l = NULL;
		return parse_list(v, keys[k].kind == K_LIST ? word_ok : path_ok, l);
	}
	case K_SIZE:
		r = parse_size(v, u);
		return r < 0 || *u == 0 ? -EINVAL : 0;
	case K_CPUS:
		return parse_cpus(v, u) < 0 ? -EINVAL : 0;
	case K_COUNT:
		r = parse_uint64(v, u);
		return r < 0 || *u == 0 || *u > 1000000000 ? -EINVAL : 0;
	case K_SHARE:
		r = parse_uint64(v, u);
		return r < 0 || *u == 0 || *u > CREDSTORE_VO_SHARE_MAX ? -EINVAL : 0;
	case K_TIME:
		r = parse_duration(v, u);
		return r < 0 || *u == 0 ? -EINVAL : 0;
	case K_NET: {
		enum credstore_vo_net n = credstore_vo_net_from_string(v);

		if ((int)n < 0)
			return -EINVAL;
		*FIELD(p, k, enum credstore_vo_net) = n;
		return 0;
	}
	case K_BOOL:
		return parse_bool(v, FIELD(p, k, bool)) < 0 ? -EINVAL : 0;
	}
	return -EINVAL;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = 0;
	return s;
}

static const char *const hints[] = {
	[K_LIST] = "a list of names separated by commas (2048 characters at most)",
	[K_SIZE] = "a size above 0 such as 256M or 2G",
	[K_CPUS] = "a number of CPUs such as 0.5 or 2",
	[K_COUNT] = "a whole number above 0",
	[K_SHARE] = "a whole number from 1 to 10000",
	[K_TIME] = "a duration above 0 such as 30m or 2h",
	[K_NET] = "none, bridge, outbound or ports",
	[K_PATHS] = "absolute paths separated by commas, without . or .. or a trailing /",
	[K_BOOL] = "yes or no",
};

/* One line (comments and blanks already gone): "key = value". */
static int parse_line(struct credstore_vo_policy *p, char *line, const char *file, unsigned n,
		      char **ret_error)
{
	char *eq = strchr(line, '='), *k, *v;
	enum credstore_vo_key key;
	int r;

	if (!eq)
		return set_error(ret_error, -EINVAL, "%s line %u: expected 'key = value'", file, n);
	*eq = 0;
	k = trim(line);
	v = trim(eq + 1);
	key = credstore_vo_key_from_string(k);
	if ((int)key < 0)
		return set_error(ret_error, -EINVAL,
				 "%s line %u: unknown key '%.64s' (see xos-vo.conf(5))", file, n,
				 k);
	if (p->from[key] >= 0)
		return set_error(ret_error, -EINVAL, "%s line %u: '%s' is set twice", file, n, k);
	r = parse_value(p, key, v);
	if (r == -ENOMEM)
		return set_error(ret_error, r, "Out of memory");
	if (r < 0)
		return set_error(ret_error, -EINVAL, "%s line %u: invalid %s '%.64s': use %s", file,
				 n, k, v, hints[keys[key].kind]);
	p->from[key] = 0;
	return 0;
}

int credstore_vo_policy_parse(const char *text, size_t len, const char *file,
			      struct credstore_vo_policy *ret, char **ret_error)
{
	struct credstore_vo_policy p;
	char line[LINE_MAX_VO + 1];
	unsigned n = 0;
	int r = 0;

	if (len > CREDSTORE_VO_FILE_MAX)
		return set_error(ret_error, -E2BIG, "%s: larger than %d bytes", file,
				 CREDSTORE_VO_FILE_MAX);
	policy_init(&p);
	p.files[0] = strdup(file);
	if (!p.files[0])
		return set_error(ret_error, -ENOMEM, "Out of memory");
	for (size_t o = 0; o < len && r >= 0;) {
		const char *nl = memchr(text + o, '\n', len - o);
		size_t l = nl ? (size_t)(nl - text) - o : len - o;
		char *hash;

		n++;
		if (l > LINE_MAX_VO || memchr(text + o, 0, l)) {
			r = set_error(ret_error, -EINVAL, "%s line %u: %s", file, n,
				      l > LINE_MAX_VO ? "longer than 4096 characters"
						      : "holds a NUL byte");
			break;
		}
		memcpy(line, text + o, l);
		line[l] = 0;
		o += l + 1;
		if ((hash = strchr(line, '#')))
			*hash = 0;
		if (*trim(line))
			r = parse_line(&p, trim(line), file, n, ret_error);
	}
	if (r < 0) {
		credstore_vo_policy_done(&p);
		return r;
	}
	*ret = p;
	return 0;
}

static void fmt_scaled(uint64_t v, const char *const *units, const uint64_t *mul, size_t n,
		       char *buf, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (v >= mul[i] && v % mul[i] == 0) {
			snprintf(buf, len, "%" PRIu64 "%s", v / mul[i], units[i]);
			return;
		}
	snprintf(buf, len, "%" PRIu64 "%s", v, units[n]);
}

static void fmt_size(uint64_t v, char *buf, size_t len)
{
	static const char *const u[] = { "T", "G", "M", "K", "" };
	static const uint64_t m[] = { 1ULL << 40, 1ULL << 30, 1ULL << 20, 1ULL << 10 };

	fmt_scaled(v, u, m, 4, buf, len);
}

static void fmt_time(uint64_t us, char *buf, size_t len)
{
	static const char *const u[] = { "d", "h", "m", "s", "ms", "us" };
	static const uint64_t m[] = { 86400000000ULL, 3600000000ULL, 60000000ULL, 1000000ULL,
				      1000ULL };

	fmt_scaled(us, u, m, 5, buf, len);
}

static void fmt_cpus(uint64_t m, char *buf, size_t len)
{
	if (m % 1000 == 0)
		snprintf(buf, len, "%" PRIu64, m / 1000);
	else
		snprintf(buf, len, "%" PRIu64 ".%03" PRIu64, m / 1000, m % 1000);
}

static void fmt_list(char *const *l, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = 0;
	for (size_t i = 0; l && l[i] && o < len; i++) {
		int w = snprintf(buf + o, len - o, "%s%s", i ? ", " : "", l[i]);

		if (w < 0)
			break;
		o += (size_t)w;
	}
}

/* The value of key k in p, as a file would say it. */
static void fmt_value(const struct credstore_vo_policy *p, enum credstore_vo_key k, char *buf,
		      size_t len)
{
	uint64_t v = *CFIELD(p, k, uint64_t);

	switch (keys[k].kind) {
	case K_LIST:
	case K_PATHS:
		fmt_list(CLIST(p, k), buf, len);
		return;
	case K_SIZE:
		fmt_size(v, buf, len);
		return;
	case K_CPUS:
		fmt_cpus(v, buf, len);
		return;
	case K_COUNT:
	case K_SHARE:
		snprintf(buf, len, "%" PRIu64, v);
		return;
	case K_TIME:
		fmt_time(v, buf, len);
		return;
	case K_NET:
		snprintf(buf, len, "%s", net_names[*CFIELD(p, k, enum credstore_vo_net)]);
		return;
	case K_BOOL:
		snprintf(buf, len, "%s", *CFIELD(p, k, bool) ? "yes" : "no");
		return;
	}
}

char *credstore_vo_policy_format(const struct credstore_vo_policy *p)
{
	size_t cap = 256, o = 0;
	char *s = malloc(cap), v[4096];

	if (!s)
		return NULL;
	s[0] = 0;
	for (int k = 0; k < _CREDSTORE_VO_KEY_MAX; k++) {
		size_t need;

		if (p->from[k] < 0)
			continue;
		fmt_value(p, (enum credstore_vo_key)k, v, sizeof(v));
		need = strlen(keys[k].name) + strlen(v) + 5;
		if (o + need >= cap) {
			char *n = realloc(s, cap + need + 256);

			if (!n)
				return free(s), NULL;
			s = n;
			cap += need + 256;
		}
		o += (size_t)snprintf(s + o, cap - o, "%s = %s\n", keys[k].name, v);
	}
	return s;
}

/* ---- tightening */

static bool in_list(char *const *l, const char *s)
{
	for (size_t i = 0; l && l[i]; i++)
		if (!strcmp(l[i], s))
			return true;
	return false;
}

/* path is root or below it */
static bool below(const char *path, const char *root)
{
	size_t n = strlen(root);

	if (!strcmp(root, "/"))
		return path[0] == '/';
	return !strncmp(path, root, n) && (path[n] == 0 || path[n] == '/');
}

static bool below_any(char *const *roots, const char *path)
{
	for (size_t i = 0; roots && roots[i]; i++)
		if (below(path, roots[i]))
			return true;
	return false;
}

/* Whether value a of key k (admin's) is at most b (base's, set or not). */
static bool not_looser(const struct credstore_vo_policy *a, const struct credstore_vo_policy *b,
		       enum credstore_vo_key k)
{
	bool b_set = b->from[k] >= 0;
	char *const *la = CLIST(a, k), *const *lb = CLIST(b, k);

	switch (keys[k].kind) {
	case K_LIST:
		for (size_t i = 0; b_set && la && la[i]; i++)
			if (!in_list(lb, la[i]))
				return false;
		return true;
	case K_PATHS: /* unset: none at all */
		for (size_t i = 0; la && la[i]; i++)
			if (!below_any(lb, la[i]))
				return false;
		return true;
	case K_NET:
		return *CFIELD(a, k, enum credstore_vo_net) <= *CFIELD(b, k, enum credstore_vo_net);
	case K_BOOL:
		return !*CFIELD(a, k, bool) || *CFIELD(b, k, bool);
	case K_SHARE: /* (unset: 1) */
		return *CFIELD(a, k, uint64_t) <= *CFIELD(b, k, uint64_t);
	default:
		return !b_set || *CFIELD(a, k, uint64_t) <= *CFIELD(b, k, uint64_t);
	}
}

static int copy_key(struct credstore_vo_policy *to, const struct credstore_vo_policy *from,
		    enum credstore_vo_key k, signed char origin)
{
	if (keys[k].kind == K_LIST || keys[k].kind == K_PATHS) {
		char ***l = FIELD(to, k, char **);
		char *const *src = CLIST(from, k);

		strv_free(*l);
		*l = src ? strv_copy(src) : NULL;
		if (src && !*l)
			return -ENOMEM;
	} else {
		memcpy(FIELD(to, k, char), CFIELD(from, k, char),
		       keys[k].kind == K_NET    ? sizeof(enum credstore_vo_net)
		       : keys[k].kind == K_BOOL ? sizeof(bool)
						: sizeof(uint64_t));
	}
	to->from[k] = origin;
	return 0;
}

int credstore_vo_policy_tighten(const struct credstore_vo_policy *base,
				const struct credstore_vo_policy *admin, bool strict,
				struct credstore_vo_policy *ret, char **ret_error)
{
	struct credstore_vo_policy p;
	char va[4096], vb[4096];
	int r = 0;

	policy_init(&p);
	p.files[0] = base->files[0] ? strdup(base->files[0]) : NULL;
	p.files[1] = admin && admin->files[0] ? strdup(admin->files[0]) : NULL;
	for (int k = 0; k < _CREDSTORE_VO_KEY_MAX && r >= 0; k++) {
		bool a_set = admin && admin->from[k] >= 0;
		bool looser = a_set && !not_looser(admin, base, (enum credstore_vo_key)k);

		if (looser && strict) {
			fmt_value(admin, (enum credstore_vo_key)k, va, sizeof(va));
			fmt_value(base, (enum credstore_vo_key)k, vb, sizeof(vb));
			r = set_error(ret_error, -EPERM,
				      "%s = %s would loosen the node owner's policy (%s: %s = %s); "
				      "a VO administrator may only tighten it",
				      keys[k].name, va, base->files[0] ? base->files[0] : "?",
				      keys[k].name, base->from[k] >= 0 ? vb : "(not set)");
		} else if (a_set && !looser)
			r = copy_key(&p, admin, (enum credstore_vo_key)k, 1);
		else if (base->from[k] >= 0)
			r = copy_key(&p, base, (enum credstore_vo_key)k, 0);
	}
	if (r == -ENOMEM)
		set_error(ret_error, r, "Out of memory");
	if (r < 0) {
		credstore_vo_policy_done(&p);
		return r;
	}
	*ret = p;
	return 0;
}

/* ---- checks */

/* "Refused by VO V's policy (FILE, KEY = VALUE): " + what */
static int refuse(const struct credstore_vo_policy *p, const char *vo, enum credstore_vo_key k,
		  char **ret_error, const char *fmt, ...) _printf_(5, 6);
static int refuse(const struct credstore_vo_policy *p, const char *vo, enum credstore_vo_key k,
		  char **ret_error, const char *fmt, ...)
{
	_cleanup_free_ char *why = NULL;
	const char *file = p->from[k] >= 0 ? p->files[p->from[k]] : NULL;
	char v[1024];
	va_list ap;

	if (p->from[k] >= 0)
		fmt_value(p, k, v, sizeof(v));
	else
		snprintf(v, sizeof(v), "(not set: %s)",
			 keys[k].kind == K_PATHS ? "no volumes" : "the default");
	va_start(ap, fmt);
	if (vasprintf(&why, fmt, ap) < 0)
		why = NULL;
	va_end(ap);
	return set_error(ret_error, -EACCES, "Refused by VO %s's policy (%s%s, %s = %s): %s", vo,
			 file ? file : "", p->from[k] == 1 ? ", set by a VO administrator" : "",
			 keys[k].name, v, why ? why : "out of memory");
}

void credstore_vo_fill(const struct credstore_vo_policy *p, struct credstore_vo_amounts *job)
{
	if (!job->memory)
		job->memory = p->job.memory;
	if (!job->millicpus)
		job->millicpus = p->job.millicpus;
	if (!job->pids)
		job->pids = p->job.pids;
	if (!job->disk)
		job->disk = p->job.disk;
	if (!job->time_us)
		job->time_us = p->job.time_us;
}

struct amount_rule {
	enum credstore_vo_key job_key, vo_key;
	size_t off;
	const char *what, *option;
};

#define A(f) offsetof(struct credstore_vo_amounts, f)
static const struct amount_rule amount_rules[] = {
	{ CREDSTORE_VO_JOB_MEMORY, CREDSTORE_VO_VO_MEMORY, A(memory), "memory", "--memory" },
	{ CREDSTORE_VO_JOB_CPUS, CREDSTORE_VO_VO_CPUS, A(millicpus), "CPUs", "--cpus" },
	{ CREDSTORE_VO_JOB_PIDS, CREDSTORE_VO_VO_PIDS, A(pids), "processes", "--pids" },
	{ CREDSTORE_VO_JOB_DISK, CREDSTORE_VO_VO_DISK, A(disk), "disk", "--disk" },
	{ CREDSTORE_VO_JOB_TIME, _CREDSTORE_VO_KEY_INVALID, A(time_us), "run time", "--time" },
};
#undef A

static void fmt_amount(const struct amount_rule *a, uint64_t v, char *buf, size_t len)
{
	if (a->job_key == CREDSTORE_VO_JOB_CPUS)
		fmt_cpus(v, buf, len);
	else if (a->job_key == CREDSTORE_VO_JOB_TIME)
		fmt_time(v, buf, len);
	else if (a->job_key == CREDSTORE_VO_JOB_PIDS)
		snprintf(buf, len, "%" PRIu64, v);
	else
		fmt_size(v, buf, len);
}

static int check_amount(const struct credstore_vo_policy *p, const char *vo,
			const struct amount_rule *a, const struct credstore_vo_amounts *job,
			const struct credstore_vo_amounts *used, char **ret_error)
{
	uint64_t want = *(const uint64_t *)((const char *)job + a->off);
	uint64_t lim = *(const uint64_t *)((const char *)&p->job + a->off);
	uint64_t vlim = (int)a->vo_key >= 0 ? *(const uint64_t *)((const char *)&p->vo + a->off)
					    : 0;
	uint64_t held = *(const uint64_t *)((const char *)used + a->off);
	char w[64], h[64];

	fmt_amount(a, want, w, sizeof(w));
	if (lim && want > lim)
		return refuse(p, vo, a->job_key, ret_error,
			      "the job asks for %s of %s; ask for less (xrun %s)", w, a->what,
			      a->option);
	if (!vlim)
		return 0;
	if (!want)
		return refuse(p, vo, a->vo_key, ret_error,
			      "the VO's jobs are limited in total, so each needs a limit of %s: "
			      "give xrun %s",
			      a->what, a->option);
	fmt_amount(a, held, h, sizeof(h));
	if (want > vlim || held > vlim - want)
		return refuse(p, vo, a->vo_key, ret_error,
			      "the VO's live jobs hold %s of %s, and this job's %s would pass "
			      "the VO's total; wait for one to end or ask for less (xrun %s)",
			      h, a->what, w, a->option);
	return 0;
}

static int check_net(const struct credstore_vo_policy *p, const char *vo,
		     const struct credstore_vo_job *job, char **ret_error)
{
	if (job->net >= CREDSTORE_VO_NET_BRIDGE && p->net < CREDSTORE_VO_NET_BRIDGE)
		return refuse(p, vo, CREDSTORE_VO_NETWORK, ret_error,
			      "the VO's jobs have no network but their own; drop --net bridge, "
			      "--ip and --group");
	if (job->ports && p->net < CREDSTORE_VO_NET_PORTS)
		return refuse(p, vo, CREDSTORE_VO_NETWORK, ret_error,
			      "the VO's jobs may not publish ports; drop --publish");
	return 0;
}

int credstore_vo_check_job(const struct credstore_vo_policy *p, const char *vo,
			   const struct credstore_vo_job *job,
			   const struct credstore_vo_amounts *used, char **ret_error)
{
	char l[1024];
	int r;

	if (p->from[CREDSTORE_VO_TEMPLATES] >= 0 && !in_list(p->templates, job->template)) {
		fmt_list(p->templates, l, sizeof(l));
		return refuse(
			p, vo, CREDSTORE_VO_TEMPLATES, ret_error,
			"template %s is not one of the VO's; use %s%s", job->template,
			l[0] ? "xrun --template with one of " : "none (no template is allowed)", l);
	}
	for (size_t i = 0; i < ELEMENTSOF(amount_rules); i++)
		if ((r = check_amount(p, vo, &amount_rules[i], &job->amounts, used, ret_error)) < 0)
			return r;
	if (p->vo.jobs && used->jobs >= p->vo.jobs)
		return refuse(p, vo, CREDSTORE_VO_VO_JOBS, ret_error,
			      "the VO has %" PRIu64 " live job(s) already; wait for one to end",
			      used->jobs);
	if ((r = check_net(p, vo, job, ret_error)) < 0)
		return r;
	for (size_t i = 0; i < job->n_volumes; i++)
		if (!below_any(p->volumes, job->volumes[i]))
			return refuse(p, vo, CREDSTORE_VO_VOLUMES, ret_error,
				      "volume %s is not below a root the VO may mount; drop it",
				      job->volumes[i]);
	if (job->checkpoint && !p->checkpoint)
		return refuse(p, vo, CREDSTORE_VO_CHECKPOINT, ret_error,
			      "the VO's jobs are not checkpointed; drop the checkpoint options");
	return 0;
}

int credstore_vo_check_checkpoint(const struct credstore_vo_policy *p, const char *vo,
				  uint64_t ckpt_used, char **ret_error)
{
	char u[64];

	if (!p->checkpoint)
		return refuse(p, vo, CREDSTORE_VO_CHECKPOINT, ret_error,
			      "the VO's jobs are not checkpointed or restarted on this node");
	fmt_size(ckpt_used, u, sizeof(u));
	if (p->ckpt_quota && ckpt_used >= p->ckpt_quota)
		return refuse(p, vo, CREDSTORE_VO_CHECKPOINT_QUOTA, ret_error,
			      "the VO's checkpoints take %s already; delete versions "
			      "(xcheckpoint --delete)",
			      u);
	return 0;
}

int credstore_vo_check_migrate(const struct credstore_vo_policy *p, const char *vo,
			       const char *node, char **ret_error)
{
	if (!p->migrate)
		return refuse(p, vo, CREDSTORE_VO_MIGRATE, ret_error,
			      "the VO's jobs are not migrated from this node");
	if (p->from[CREDSTORE_VO_MIGRATE_NODES] >= 0 && !in_list(p->migrate_nodes, node))
		return refuse(p, vo, CREDSTORE_VO_MIGRATE_NODES, ret_error,
			      "node %s is not one the VO's jobs may go to", node);
	return 0;
}
