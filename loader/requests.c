/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Requests of the daemon in /.xos/in: unit.<N> and signal.<N>.<SIG>.<SEQ>. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "loader/loader-internal.h"

enum request_kind {
	REQUEST_UNIT,
	REQUEST_SIGNAL,
	_REQUEST_KIND_MAX,
	_REQUEST_KIND_INVALID = -EINVAL,
};

struct request {
	char *name;
	enum request_kind kind;
	unsigned unit; /* 0: every unit (signals only) */
	int sig;
	uint64_t seq;
};

static int parse_unit_number(const char *s, bool zero_ok, unsigned *ret)
{
	uint64_t v;

	if (parse_uint64(s, &v) < 0 || v > LOADER_UNIT_MAX || (v == 0 && !zero_ok))
		return -EINVAL;
	*ret = (unsigned)v;
	return 0;
}

/* "unit.<N>" or "signal.<N>.<SIG>.<SEQ>" (SIG a number or a name) */
static int request_parse_name(const char *name, struct request *ret)
{
	char buf[128], *f[4], *save = NULL;
	size_t n = 0;

	if (strlen(name) >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, name, strlen(name) + 1);
	if (str_has_prefix(buf, "unit.")) {
		ret->kind = REQUEST_UNIT;
		return parse_unit_number(buf + strlen("unit."), false, &ret->unit);
	}
	if (!str_has_prefix(buf, "signal."))
		return -EINVAL;
	if (strstr(buf, "..") || buf[strlen(buf) - 1] == '.')
		return -EINVAL;
	for (char *t = strtok_r(buf + strlen("signal."), ".", &save); t;
	     t = strtok_r(NULL, ".", &save)) {
		if (n == ELEMENTSOF(f))
			return -EINVAL;
		f[n++] = t;
	}
	if (n != 3)
		return -EINVAL;
	ret->kind = REQUEST_SIGNAL;
	if (parse_unit_number(f[0], true, &ret->unit) < 0 || parse_signal(f[1], &ret->sig) < 0 ||
	    parse_uint64(f[2], &ret->seq) < 0)
		return -EINVAL;
	return 0;
}

/* unit requests first (a signal may be meant for a unit of the same batch),
 * in unit order; then signals in sequence order */
static int request_cmp(const void *a, const void *b)
{
	const struct request *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (x->kind == REQUEST_SIGNAL && x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	if (x->unit != y->unit)
		return x->unit < y->unit ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* A regular file below dirfd, never following links or blocking on a fifo. */
static int read_request(int dirfd, const char *name, char **ret, size_t *ret_len)
{
	return read_file_at(dirfd, name, LOADER_SPEC_MAX, ret, ret_len);
}

static void request_unlink(const struct loader *l, const char *name)
{
	if (unlinkat(l->in_fd, name, 0) < 0 && errno != ENOENT)
		log_warn("Failed to remove request in/%s: %m", name);
}

static void request_handle(struct loader *l, const struct request *rq)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r;

	if (rq->kind == REQUEST_SIGNAL) {
		request_unlink(l, rq->name);
		if (rq->unit)
			log_info("Request %s: signal %d to unit %u", rq->name, rq->sig, rq->unit);
		else
			log_info("Request %s: signal %d to every unit", rq->name, rq->sig);
		loader_forward_signal(l, rq->unit, rq->sig);
		return;
	}
	r = read_request(l->in_fd, rq->name, &buf, &len);
	request_unlink(l, rq->name);
	r = loader_unit_start(l, rq->unit, buf, len, r);
	if (r < 0)
		log_error("Failed to handle request %s: %s", rq->name, strerror(-r));
}

static void requests_free(struct request *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

/* Read the names of in/: requests into *ret; unknown entries are removed. */
static int requests_collect(struct loader *l, struct request **ret, size_t *ret_n)
{
	struct request *v = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int fd = openat(l->in_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		struct request rq = { 0 };

		if (de->d_name[0] == '.') /* ".", "..", and the daemon's files in the making */
			continue;
		if (request_parse_name(de->d_name, &rq) < 0) {
			log_warn("Removing unknown request in/%s", de->d_name);
			request_unlink(l, de->d_name);
			continue;
		}
		if (n == cap) {
			struct request *nv = reallocarray(v, cap ? cap * 2 : 16, sizeof(*v));

			if (!nv)
				break;
			v = nv;
			cap = cap ? cap * 2 : 16;
		}
		rq.name = strdup(de->d_name);
		if (!rq.name)
			break;
		v[n++] = rq;
	}
	closedir(d);
	*ret = v;
	*ret_n = n;
	return 0;
}

int loader_scan_requests(struct loader *l)
{
	struct request *v = NULL;
	size_t n = 0;
	int units = 0;
	int r = requests_collect(l, &v, &n);

	if (r < 0)
		return r;
	if (n > 0)
		qsort(v, n, sizeof(*v), request_cmp);
	for (size_t i = 0; i < n; i++) {
		if (v[i].kind == REQUEST_UNIT)
			units++;
		request_handle(l, &v[i]);
	}
	requests_free(v, n);
	return units;
}
