/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The acct request (xacct): cpu time, memory-hours, wall time and jobs per VO
 * and user, summed from the job records the caller may see (a VO's admin:
 * its VO's; root: all; anyone else: their own). */
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "runtime/runtime-internal.h"

#define ACCT_ROWS_MAX 4096

struct acct_row {
	const char *vo, *user; /* the jobs' (NULL vo: local users' jobs) */
	uint64_t jobs, cpu_us, wall_us, mem_mib_s;
};

static bool eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static struct acct_row *row_of(struct acct_row *rows, size_t *n, const struct job *j)
{
	const char *user = j->user ? j->user : "?";

	for (size_t i = 0; i < *n; i++)
		if (eq(rows[i].vo, j->grid_vo) && !strcmp(rows[i].user, user))
			return &rows[i];
	if (*n == ACCT_ROWS_MAX)
		return NULL;
	rows[*n] = (struct acct_row){ .vo = j->grid_vo, .user = user };
	return &rows[(*n)++];
}

/* What j used: its containers' before restores, and its own. */
static void add_job(struct acct_row *r, const struct job *j, uint64_t now)
{
	struct runtime_accounting a = j->acct_base;
	uint64_t wall;

	if (j->have_acct)
		job_acct_add(&a, &j->acct);
	wall = j->have_acct && a.wall_us                              ? a.wall_us
	       : j->started_us && !j->ended_us && now > j->started_us ? now - j->started_us
	       : j->started_us && j->ended_us > j->started_us         ? j->ended_us - j->started_us
								      : 0;
	r->jobs++;
	r->cpu_us += a.cpu_user_us + a.cpu_system_us;
	r->wall_us += wall;
	r->mem_mib_s += (a.memory_peak >> 20) * (wall / 1000000);
}

static bool wanted(const struct job *j, const char *vo, const char *user, uint64_t since_us)
{
	if (vo && !eq(vo, j->grid_vo))
		return false;
	if (user && (!j->user || strcmp(user, j->user) != 0))
		return false;
	return !since_us || !j->ended_us || j->ended_us >= since_us;
}

static void gen_rows(yajl_gen g, const struct acct_row *rows, size_t n)
{
	json_gen_key(g, "rows");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < n; i++) {
		yajl_gen_map_open(g);
		json_gen_kv_str(g, "vo", rows[i].vo);
		json_gen_kv_str(g, "user", rows[i].user);
		json_gen_kv_uint(g, "jobs", rows[i].jobs);
		json_gen_kv_uint(g, "cpu_us", rows[i].cpu_us);
		json_gen_kv_uint(g, "wall_us", rows[i].wall_us);
		json_gen_kv_uint(g, "memory_mib_s", rows[i].mem_mib_s);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
}

int ops_acct(struct daemon *d, struct conn *c, yajl_val t, struct xerr *err)
{
	_cleanup_free_ struct acct_row *rows = calloc(ACCT_ROWS_MAX, sizeof(*rows));
	_cleanup_gen_ yajl_gen g = NULL;
	const char *vo = NULL, *user = NULL;
	uint64_t since = 0, now = now_usec();
	size_t n = 0;

	if (json_get_string(t, "vo", &vo) == -EINVAL ||
	    json_get_string(t, "user", &user) == -EINVAL ||
	    json_get_uint(t, "since", &since) == -EINVAL)
		return xerr_set(err, -EINVAL, "bad_request",
				"Fields 'vo', 'user' (strings) and 'since' (seconds since 1970)");
	if (since > UINT64_MAX / 1000000)
		return xerr_set(err, -EINVAL, "bad_request", "Field 'since' is out of range");
	if (!rows)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	for (struct job *j = d->jobs; j; j = j->next) {
		struct acct_row *r;

		if (!grid_may_see(c, j) || !wanted(j, vo, user, since * 1000000))
			continue;
		if ((r = row_of(rows, &n, j)))
			add_job(r, j, now);
	}
	g = ops_reply_begin();
	if (!g)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	gen_rows(g, rows, n);
	conn_send_map(c, g);
	c->mode = CONN_CLOSING;
	return 0;
}
