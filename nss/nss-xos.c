/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libnss_xos: the passwd and group entries of xos's pool accounts and VO
 * groups, read from xosd's lease state (credstore/accounts.c writes it):
 *   group <vo> <gid>
 *   account <name> <uid> <gid> <vo> <last used> <home> <DN...>
 * A VO's group is named xos-<vo>. Each call reads the file afresh (no talk
 * with xosd); a missing, unreadable or damaged file gives no answer at all
 * (NSS_STATUS_UNAVAIL), never a guess. The file is STATE_DIR/accounts of the
 * node's xosd, XOS_NSS_ACCOUNTS in the environment of a program that is not
 * setuid (tests), else /var/lib/xos/accounts.
 * Self-contained: a shared object of its own, loaded into every program
 * that looks a name up, so it links nothing of xos's. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <nss.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ACCOUNTS_DEFAULT "/var/lib/xos/accounts"
#define STATE_MAX (16 << 20)
#define FIELDS 8

enum nss_status _nss_xos_getpwnam_r(const char *, struct passwd *, char *, size_t, int *);
enum nss_status _nss_xos_getpwuid_r(uid_t, struct passwd *, char *, size_t, int *);
enum nss_status _nss_xos_getgrnam_r(const char *, struct group *, char *, size_t, int *);
enum nss_status _nss_xos_getgrgid_r(gid_t, struct group *, char *, size_t, int *);

struct state {
	char *text;
	size_t len;
};

static void state_free(struct state *s)
{
	free(s->text);
}

static int read_state(struct state *s)
{
	const char *path = secure_getenv("XOS_NSS_ACCOUNTS");
	struct stat st;
	int fd = open(path && *path ? path : ACCOUNTS_DEFAULT, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > STATE_MAX ||
	    !(s->text = malloc((size_t)st.st_size + 1))) {
		close(fd);
		return -1;
	}
	n = read(fd, s->text, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size)
		return -1;
	s->text[n] = 0;
	s->len = (size_t)n;
	return memchr(s->text, 0, s->len) ? -1 : 0;
}

static bool parse_id(const char *s, uint32_t *ret)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > UINT32_MAX - 1)
		return false;
	*ret = (uint32_t)v;
	return true;
}

/* Split line into fields (the last takes the rest); how many, -1 if bad. */
static int split(char *line, char **f)
{
	int n = 0;

	if (!strncmp(line, "group ", 6)) {
		for (char *p = line; n < 3 && p; n++)
			f[n] = strsep(&p, " ");
		return n == 3 ? 3 : -1;
	}
	if (strncmp(line, "account ", 8) != 0)
		return -1;
	for (char *p = line; n < FIELDS && p; n++)
		f[n] = n == FIELDS - 1 ? p : strsep(&p, " ");
	return n == FIELDS ? FIELDS : -1;
}

/* Every line must parse, or the file gives no answer. */
static bool state_valid(struct state *s)
{
	char *copy = strdup(s->text), *save = NULL, *f[FIELDS];
	bool ok = copy != NULL;
	uint32_t id;

	for (char *l = copy ? strtok_r(copy, "\n", &save) : NULL; ok && l;
	     l = strtok_r(NULL, "\n", &save)) {
		int n;

		if (l[0] == '#')
			continue;
		n = split(l, f);
		ok = n == 3 ? parse_id(f[2], &id)
			    : n == FIELDS && parse_id(f[2], &id) && parse_id(f[3], &id) &&
				      f[6][0] == '/' && f[7][0] == '/';
	}
	free(copy);
	return ok;
}

/* Copy s into the caller's buffer; NULL when it does not fit. */
static char *put(char **buf, size_t *left, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = *buf;

	if (n > *left)
		return NULL;
	memcpy(p, s, n);
	*buf += n;
	*left -= n;
	return p;
}

static enum nss_status fill_pw(char **f, struct passwd *pw, char *buf, size_t len, int *err)
{
	uint32_t uid, gid;

	parse_id(f[2], &uid);
	parse_id(f[3], &gid);
	pw->pw_uid = uid;
	pw->pw_gid = gid;
	if (!(pw->pw_name = put(&buf, &len, f[1])) || !(pw->pw_passwd = put(&buf, &len, "x")) ||
	    !(pw->pw_gecos = put(&buf, &len, f[7])) || !(pw->pw_dir = put(&buf, &len, f[6])) ||
	    !(pw->pw_shell = put(&buf, &len, "/usr/sbin/nologin"))) {
		*err = ERANGE;
		return NSS_STATUS_TRYAGAIN;
	}
	return NSS_STATUS_SUCCESS;
}

/* The account line matching name (or uid when name is NULL). */
static enum nss_status find_pw(const char *name, uid_t uid, struct passwd *pw, char *buf,
			       size_t len, int *err)
{
	struct state s = { 0 };
	char *save = NULL, *f[FIELDS];
	enum nss_status st = NSS_STATUS_NOTFOUND;
	uint32_t u;

	if (read_state(&s) < 0 || !state_valid(&s)) {
		state_free(&s);
		*err = ENOENT;
		return NSS_STATUS_UNAVAIL;
	}
	for (char *l = strtok_r(s.text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (l[0] == '#' || split(l, f) != FIELDS)
			continue;
		if (name ? !strcmp(f[1], name) : parse_id(f[2], &u) && u == uid) {
			st = fill_pw(f, pw, buf, len, err);
			break;
		}
	}
	state_free(&s);
	if (st == NSS_STATUS_NOTFOUND)
		*err = ENOENT;
	return st;
}

enum nss_status _nss_xos_getpwnam_r(const char *name, struct passwd *pw, char *buf, size_t len,
				    int *err)
{
	return find_pw(name, 0, pw, buf, len, err);
}

enum nss_status _nss_xos_getpwuid_r(uid_t uid, struct passwd *pw, char *buf, size_t len, int *err)
{
	return find_pw(NULL, uid, pw, buf, len, err);
}

/* The members of vo's group: its pool accounts (from a fresh copy of text). */
static enum nss_status fill_members(const char *text, const char *vo, struct group *gr, char **buf,
				    size_t *len, int *err)
{
	char *copy = strdup(text), *save = NULL, *f[FIELDS];
	size_t n = 0, align = (uintptr_t)*buf % sizeof(char *);
	char **mem;

	if (!copy)
		return *err = ENOMEM, NSS_STATUS_TRYAGAIN;
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		n += l[0] != '#' && split(l, f) == FIELDS && !strcmp(f[4], vo);
	free(copy);
	align = align ? sizeof(char *) - align : 0;
	if (*len < align + (n + 1) * sizeof(char *))
		return *err = ERANGE, NSS_STATUS_TRYAGAIN;
	mem = (char **)(void *)(*buf + align);
	*buf += align + (n + 1) * sizeof(char *);
	*len -= align + (n + 1) * sizeof(char *);
	copy = strdup(text);
	if (!copy)
		return *err = ENOMEM, NSS_STATUS_TRYAGAIN;
	n = 0;
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (l[0] != '#' && split(l, f) == FIELDS && !strcmp(f[4], vo) &&
		    !(mem[n++] = put(buf, len, f[1]))) {
			free(copy);
			return *err = ERANGE, NSS_STATUS_TRYAGAIN;
		}
	free(copy);
	mem[n] = NULL;
	gr->gr_mem = mem;
	return NSS_STATUS_SUCCESS;
}

static enum nss_status fill_gr(const struct state *s, char **f, struct group *gr, char *buf,
			       size_t len, int *err)
{
	char name[64];
	uint32_t gid;

	parse_id(f[2], &gid);
	gr->gr_gid = gid;
	if (snprintf(name, sizeof(name), "xos-%s", f[1]) >= (int)sizeof(name) ||
	    !(gr->gr_name = put(&buf, &len, name)) || !(gr->gr_passwd = put(&buf, &len, "x")))
		return *err = ERANGE, NSS_STATUS_TRYAGAIN;
	return fill_members(s->text, f[1], gr, &buf, &len, err);
}

static enum nss_status find_gr(const char *name, gid_t gid, struct group *gr, char *buf, size_t len,
			       int *err)
{
	struct state s = { 0 };
	char *copy, *save = NULL, *f[FIELDS];
	enum nss_status st = NSS_STATUS_NOTFOUND;
	uint32_t g;

	if (read_state(&s) < 0 || !state_valid(&s) || !(copy = strdup(s.text))) {
		state_free(&s);
		*err = ENOENT;
		return NSS_STATUS_UNAVAIL;
	}
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (l[0] == '#' || split(l, f) != 3)
			continue;
		if (name ? !strncmp(name, "xos-", 4) && !strcmp(name + 4, f[1])
			 : parse_id(f[2], &g) && g == gid) {
			st = fill_gr(&s, f, gr, buf, len, err);
			break;
		}
	}
	free(copy);
	state_free(&s);
	if (st == NSS_STATUS_NOTFOUND)
		*err = ENOENT;
	return st;
}

enum nss_status _nss_xos_getgrnam_r(const char *name, struct group *gr, char *buf, size_t len,
				    int *err)
{
	return find_gr(name, 0, gr, buf, len, err);
}

enum nss_status _nss_xos_getgrgid_r(gid_t gid, struct group *gr, char *buf, size_t len, int *err)
{
	return find_gr(NULL, gid, gr, buf, len, err);
}
