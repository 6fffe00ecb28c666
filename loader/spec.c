/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit specs: NUL-terminated strings, alternating key and value. Pure code:
 * no I/O, no logging, no libseccomp/libcap (the daemon links this too). */
#include <limits.h>

#include "loader/loader.h"

#define GROUPS_MAX 65536 /* NGROUPS_MAX of the kernel */

struct loader_spec *loader_spec_free(struct loader_spec *spec)
{
	if (!spec)
		return NULL;
	free(spec->groups);
	free(spec->cwd);
	strv_free(spec->argv);
	strv_free(spec->env);
	free(spec);
	return NULL;
}

/* Set *ret_error (if wanted) and return -EINVAL, or -ENOMEM. */
_printf_(2, 3) static int spec_error(char **ret_error, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int r;

	if (!ret_error)
		return -EINVAL;
	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	*ret_error = s;
	return -EINVAL;
}

static int parse_id(const char *s, uint32_t *ret)
{
	uint64_t v;
	int r = parse_uint64(s, &v);

	if (r < 0)
		return r;
	if (v >= UINT32_MAX) /* (uid_t)-1 and (gid_t)-1 mean "unchanged" */
		return -ERANGE;
	*ret = (uint32_t)v;
	return 0;
}

static int parse_groups(const char *s, gid_t **ret, size_t *ret_n)
{
	_cleanup_free_ gid_t *v = NULL;
	size_t n = 0, cap = 0;
	const char *p = s;

	while (*p) {
		char item[16];
		const char *comma = strchr(p, ',');
		size_t l = comma ? (size_t)(comma - p) : strlen(p);
		uint32_t g;

		if (l == 0 || l >= sizeof(item) || n >= GROUPS_MAX)
			return -EINVAL;
		memcpy(item, p, l);
		item[l] = 0;
		if (parse_id(item, &g) < 0)
			return -EINVAL;
		if (n == cap) {
			gid_t *nv;

			cap = cap ? cap * 2 : 8;
			nv = reallocarray(v, cap, sizeof(gid_t));
			if (!nv)
				return -ENOMEM;
			v = nv;
		}
		v[n++] = g;
		p += l;
		if (*p == ',' && *++p == 0)
			return -EINVAL; /* trailing comma */
	}
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

enum spec_key {
	KEY_UNIT,
	KEY_UID,
	KEY_GID,
	KEY_GROUPS,
	KEY_CWD,
	KEY_ARGV,
	KEY_ENV,
	KEY_TTY,
	KEY_LOG_SIZE,
	_KEY_MAX,
};

static const char *const key_names[_KEY_MAX] = {
	[KEY_UNIT] = "unit",     [KEY_UID] = "uid", [KEY_GID] = "gid",
	[KEY_GROUPS] = "groups", [KEY_CWD] = "cwd", [KEY_ARGV] = "argv",
	[KEY_ENV] = "env",       [KEY_TTY] = "tty", [KEY_LOG_SIZE] = "log_size",
};

static int key_from_string(const char *s)
{
	for (int k = 0; k < _KEY_MAX; k++)
		if (strcmp(s, key_names[k]) == 0)
			return k;
	return -EINVAL;
}

struct spec_parser {
	struct loader_spec *spec;
	unsigned seen[_KEY_MAX];
	size_t n_argv, n_env; /* items stored so far (arrays are preallocated) */
	char **ret_error;
};

static int push_copy(char **v, size_t *n, const char *s)
{
	v[*n] = strdup(s);
	if (!v[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

/* Store one value; returns -EINVAL with a message for a bad value. */
static int spec_set(struct spec_parser *p, int key, const char *val)
{
	struct loader_spec *spec = p->spec;
	char **ret_error = p->ret_error;
	uint64_t u;
	uint32_t id;

	switch (key) {
	case KEY_UNIT:
		if (parse_uint64(val, &u) < 0 || u < 1 || u > LOADER_UNIT_MAX)
			return spec_error(ret_error, "bad unit number \"%.32s\"", val);
		spec->unit = (unsigned)u;
		return 0;
	case KEY_UID:
		if (parse_id(val, &id) < 0)
			return spec_error(ret_error, "bad uid \"%.32s\"", val);
		if (id == 0)
			return spec_error(ret_error, "uid 0 is not allowed for a job unit");
		spec->uid = id;
		return 0;
	case KEY_GID:
		if (parse_id(val, &id) < 0)
			return spec_error(ret_error, "bad gid \"%.32s\"", val);
		spec->gid = id;
		return 0;
	case KEY_GROUPS: {
		int r = parse_groups(val, &spec->groups, &spec->n_groups);

		if (r == -EINVAL)
			return spec_error(ret_error, "bad groups \"%.64s\"", val);
		return r;
	}
	case KEY_CWD:
		if (val[0] != '/')
			return spec_error(ret_error, "cwd \"%.64s\" is not absolute", val);
		spec->cwd = strdup(val);
		return spec->cwd ? 0 : -ENOMEM;
	case KEY_ARGV:
		if (p->n_argv == 0 && val[0] == 0)
			return spec_error(ret_error, "argv[0] is empty");
		return push_copy(spec->argv, &p->n_argv, val);
	case KEY_ENV:
		if (val[0] == '=' || !strchr(val, '='))
			return spec_error(ret_error, "bad env item \"%.64s\" (want K=V)", val);
		return push_copy(spec->env, &p->n_env, val);
	case KEY_TTY:
		if (strcmp(val, "0") != 0 && strcmp(val, "1") != 0)
			return spec_error(ret_error, "bad tty \"%.16s\" (want 0 or 1)", val);
		spec->tty = val[0] == '1';
		return 0;
	case KEY_LOG_SIZE:
		if (parse_uint64(val, &u) < 0)
			return spec_error(ret_error, "bad log_size \"%.32s\"", val);
		spec->log_size = u;
		return 0;
	}
	return -EINVAL;
}

/* Count the NUL-terminated strings of buf; -EINVAL if the last is unterminated. */
static int count_strings(const char *buf, size_t len, size_t *ret)
{
	size_t n = 0;

	if (len > 0 && buf[len - 1] != 0)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if (buf[i] == 0)
			n++;
	*ret = n;
	return 0;
}

/* Allocate argv and env for as many items as buf holds (n strings in all). */
static int spec_alloc(struct loader_spec *spec, const char *buf, size_t len)
{
	size_t n_argv = 0, n_env = 0;

	for (const char *p = buf; p < buf + len;) {
		const char *val = p + strlen(p) + 1;

		if (strcmp(p, "argv") == 0)
			n_argv++;
		else if (strcmp(p, "env") == 0)
			n_env++;
		p = val + strlen(val) + 1;
	}
	spec->argv = calloc(n_argv + 1, sizeof(char *));
	spec->env = calloc(n_env + 1, sizeof(char *));
	return spec->argv && spec->env ? 0 : -ENOMEM;
}

static int spec_check_required(const struct spec_parser *p)
{
	static const int required[] = { KEY_UNIT, KEY_UID, KEY_GID, KEY_CWD, KEY_ARGV };

	for (size_t i = 0; i < ELEMENTSOF(required); i++)
		if (!p->seen[required[i]])
			return spec_error(p->ret_error, "missing key %s", key_names[required[i]]);
	return 0;
}

int loader_spec_parse(const char *buf, size_t len, struct loader_spec **ret, char **ret_error)
{
	struct loader_spec *spec _cleanup_loader_spec_ = NULL;
	struct spec_parser p = { .ret_error = ret_error };
	size_t n;
	int r;

	if (len > LOADER_SPEC_MAX)
		return spec_error(ret_error, "spec larger than %d bytes", LOADER_SPEC_MAX);
	if (len == 0)
		return spec_error(ret_error, "empty spec");
	if (count_strings(buf, len, &n) < 0)
		return spec_error(ret_error, "last field is not NUL-terminated");
	if (n % 2)
		return spec_error(ret_error,
				  "odd number of fields (%zu): keys and values must pair up", n);
	spec = calloc(1, sizeof(*spec));
	if (!spec)
		return -ENOMEM;
	p.spec = spec;
	r = spec_alloc(spec, buf, len);
	if (r < 0)
		return r;
	for (const char *q = buf; q < buf + len;) {
		const char *key = q, *val = q + strlen(q) + 1;
		int k = key_from_string(key);

		q = val + strlen(val) + 1;
		if (k < 0)
			return spec_error(ret_error, "unknown key \"%.32s\"", key);
		if (p.seen[k]++ && k != KEY_ARGV && k != KEY_ENV)
			return spec_error(ret_error, "duplicate key %s", key_names[k]);
		r = spec_set(&p, k, val);
		if (r < 0)
			return r;
	}
	r = spec_check_required(&p);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(spec);
	return 0;
}

/* Append "key\0val\0" to a growing buffer. */
static int buf_add(char **buf, size_t *len, size_t *cap, const char *key, const char *val)
{
	size_t kl = strlen(key) + 1, vl = strlen(val) + 1;

	if (*len + kl + vl > LOADER_SPEC_MAX)
		return -E2BIG;
	if (*len + kl + vl > *cap) {
		size_t ncap = (*len + kl + vl) * 2;
		char *nb = realloc(*buf, ncap);

		if (!nb)
			return -ENOMEM;
		*buf = nb;
		*cap = ncap;
	}
	memcpy(*buf + *len, key, kl);
	memcpy(*buf + *len + kl, val, vl);
	*len += kl + vl;
	return 0;
}

static int format_groups(const struct loader_spec *spec, char **ret)
{
	size_t cap = spec->n_groups * 11 + 1, len = 0;
	_cleanup_free_ char *s = malloc(cap);

	if (!s)
		return -ENOMEM;
	s[0] = 0;
	for (size_t i = 0; i < spec->n_groups; i++) {
		int k = snprintf(s + len, cap - len, "%s%u", i ? "," : "",
				 (unsigned)spec->groups[i]);

		if (k < 0 || (size_t)k >= cap - len)
			return -ENOBUFS;
		len += (size_t)k;
	}
	*ret = TAKE_PTR(s);
	return 0;
}

int loader_spec_format(const struct loader_spec *spec, char **ret, size_t *ret_len)
{
	_cleanup_free_ char *buf = NULL, *groups = NULL;
	char num[4][24];
	size_t len = 0, cap = 0;
	int r;

	if (spec->unit < 1 || spec->unit > LOADER_UNIT_MAX || spec->uid == 0 ||
	    spec->uid == (uid_t)-1 || spec->gid == (gid_t)-1 || !spec->cwd || spec->cwd[0] != '/' ||
	    !spec->argv || !spec->argv[0] || !spec->argv[0][0])
		return -EINVAL;
	r = format_groups(spec, &groups);
	if (r < 0)
		return r;
	snprintf(num[0], sizeof(num[0]), "%u", spec->unit);
	snprintf(num[1], sizeof(num[1]), "%u", (unsigned)spec->uid);
	snprintf(num[2], sizeof(num[2]), "%u", (unsigned)spec->gid);
	snprintf(num[3], sizeof(num[3]), "%llu", (unsigned long long)spec->log_size);
	if ((r = buf_add(&buf, &len, &cap, "unit", num[0])) < 0 ||
	    (r = buf_add(&buf, &len, &cap, "uid", num[1])) < 0 ||
	    (r = buf_add(&buf, &len, &cap, "gid", num[2])) < 0 ||
	    (r = buf_add(&buf, &len, &cap, "groups", groups)) < 0 ||
	    (r = buf_add(&buf, &len, &cap, "cwd", spec->cwd)) < 0 ||
	    (spec->tty && (r = buf_add(&buf, &len, &cap, "tty", "1")) < 0) ||
	    (spec->log_size && (r = buf_add(&buf, &len, &cap, "log_size", num[3])) < 0))
		return r;
	for (char **a = spec->argv; *a; a++)
		if ((r = buf_add(&buf, &len, &cap, "argv", *a)) < 0)
			return r;
	for (char **e = spec->env; e && *e; e++) {
		if ((*e)[0] == '=' || !strchr(*e, '='))
			return -EINVAL;
		if ((r = buf_add(&buf, &len, &cap, "env", *e)) < 0)
			return r;
	}
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}
