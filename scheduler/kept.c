/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A queue kept in the scheduler's order between passes (DECISIONS (az)):
 * entries added and dropped by events, the order of the (group, user)
 * pairs by usage checked at each pass, so that a pass after one event neither walks nor sorts
 * every queued job. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "scheduler/scheduler.h"

/* Arrays mapped apart and not inherited by the daemon's children
 * (MADV_DONTFORK): a pass writes into them while the daemon may have a
 * child, and each page shared with it would cost a copy-on-write fault. */
static size_t map_bytes(size_t n, size_t size)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (n * size + page - 1) / page * page;
}

static void *map(size_t n, size_t size)
{
	size_t bytes = map_bytes(n, size);
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	(void)madvise(p, bytes, MADV_DONTFORK);
	return p;
}

static void unmap(void *p, size_t n, size_t size)
{
	if (p)
		munmap(p, map_bytes(n, size));
}

void scheduler_kept_free(struct scheduler_kept *k)
{
	unmap(k->q, k->cap, sizeof(*k->q));
	unmap(k->data, k->cap, sizeof(*k->data));
	unmap(k->user, k->cap, sizeof(*k->user));
	free(k->users);
	*k = (struct scheduler_kept){ 0 };
}

/* Room for n more entries after the last, the entries moved to the start */
static int reserve(struct scheduler_kept *k, size_t more)
{
	size_t cap = k->cap ? k->cap : 64;
	struct scheduler_queued *q;
	void **data;
	uint32_t *user;

	if (k->off + k->n + more <= k->cap)
		return 0;
	while (cap < 2 * (k->n + more))
		cap *= 2;
	q = map(cap, sizeof(*q));
	data = map(cap, sizeof(*data));
	user = map(cap, sizeof(*user));
	if (!q || !data || !user) {
		unmap(q, cap, sizeof(*q));
		unmap(data, cap, sizeof(*data));
		unmap(user, cap, sizeof(*user));
		return -ENOMEM;
	}
	if (k->n) {
		memcpy(q, k->q + k->off, k->n * sizeof(*q));
		memcpy(data, k->data + k->off, k->n * sizeof(*data));
		memcpy(user, k->user + k->off, k->n * sizeof(*user));
	}
	unmap(k->q, k->cap, sizeof(*k->q));
	unmap(k->data, k->cap, sizeof(*k->data));
	unmap(k->user, k->cap, sizeof(*k->user));
	k->q = q;
	k->data = data;
	k->user = user;
	k->off = 0;
	k->cap = cap;
	return 0;
}

/* a before b (<0), after, or equal, by their shares (as scheduler_compare
 * orders two jobs of these pairs, priority aside) */
static int cmp_share(const struct scheduler_share *a, const struct scheduler_share *b)
{
	if (a->group != b->group)
		return a->group < b->group ? -1 : 1;
	return a->user < b->user ? -1 : a->user > b->user;
}

static struct scheduler_share share_now(const struct scheduler_usage *usage, size_t n_usage,
					uint32_t uid, uint32_t group)
{
	struct scheduler_queued key = { .uid = uid, .group = group };

	return scheduler_share_of(usage, n_usage, &key);
}

struct entry {
	struct scheduler_queued q;
	void *data;
	uint32_t user;
};

static int cmp_entry(const void *pa, const void *pb, void *ctx)
{
	const struct entry *a = pa, *b = pb;
	const struct scheduler_kept *k = ctx;

	return scheduler_compare(&a->q, &k->users[a->user].share, &b->q, &k->users[b->user].share);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* q counted into the bounds (as a pass takes its request: one job slot) */
static void bounds_add(struct scheduler_kept *k, const struct scheduler_queued *q)
{
	k->min_req.millicpus = min_u64(k->min_req.millicpus, q->req.millicpus);
	k->min_req.memory = min_u64(k->min_req.memory, q->req.memory);
	k->max_req.millicpus = max_u64(k->max_req.millicpus, q->req.millicpus);
	k->max_req.memory = max_u64(k->max_req.memory, q->req.memory);
	k->n_held += q->held;
	k->n_deps += q->n_deps > 0;
}

/* The bounds of no entry, then of every entry (exact) */
static void bounds_again(struct scheduler_kept *k)
{
	k->min_req = (struct scheduler_resources){ UINT64_MAX, UINT64_MAX, 1 };
	k->max_req = (struct scheduler_resources){ 0, 0, 1 };
	k->n_held = k->n_deps = 0;
	for (size_t i = 0; i < k->n; i++)
		bounds_add(k, &k->q[k->off + i]);
}

void scheduler_kept_bounds(const struct scheduler_kept *k, struct scheduler_bounds *b)
{
	*b = (struct scheduler_bounds){ .min_req = k->min_req,
					.max_req = k->max_req,
					.held = k->n_held > 0,
					.deps = k->n_deps > 0,
					.last_wanted = SIZE_MAX };
}

/* Sort every entry again (the pairs' order changed) */
static int resort(struct scheduler_kept *k)
{
	struct entry *e = k->n ? malloc(k->n * sizeof(*e)) : NULL;

	if (k->n && !e)
		return -ENOMEM;
	for (size_t i = 0; i < k->n; i++)
		e[i] = (struct entry){ k->q[k->off + i], k->data[k->off + i], k->user[k->off + i] };
	qsort_r(e, k->n, sizeof(*e), cmp_entry, k);
	for (size_t i = 0; i < k->n; i++) {
		k->q[k->off + i] = e[i].q;
		k->data[k->off + i] = e[i].data;
		k->user[k->off + i] = e[i].user;
	}
	free(e);
	k->resorts++;
	bounds_again(k);
	return 1;
}

static int cmp_user_usage(const void *pa, const void *pb, void *ctx)
{
	const struct scheduler_kept_user *u = ctx;

	return cmp_share(&u[*(const size_t *)pa].share, &u[*(const size_t *)pb].share);
}

int scheduler_kept_usage(struct scheduler_kept *k, const struct scheduler_usage *usage,
			 size_t n_usage)
{
	size_t *idx = malloc((k->n_users + 1) * sizeof(*idx)), n = 0;
	bool same = true;

	if (!idx)
		return -ENOMEM;
	for (size_t i = 0; i < k->n_users; i++)
		if (k->users[i].count)
			idx[n++] = i;
	/* the (group, user) pairs in the order they were kept in (group's
	 * usage, then user's: a total preorder); the order stands if each pair
	 * of neighbours compares now as then (equal, or the first lower) */
	qsort_r(idx, n, sizeof(*idx), cmp_user_usage, k->users);
	for (size_t i = 0; i + 1 < n && same; i++) {
		const struct scheduler_kept_user *a = &k->users[idx[i]], *b = &k->users[idx[i + 1]];
		struct scheduler_share na = share_now(usage, n_usage, a->uid, a->group),
				       nb = share_now(usage, n_usage, b->uid, b->group);

		same = cmp_share(&a->share, &b->share) == cmp_share(&na, &nb);
	}
	free(idx);
	for (size_t i = 0; i < k->n_users; i++)
		k->users[i].share = share_now(usage, n_usage, k->users[i].uid, k->users[i].group);
	return same ? 0 : resort(k);
}

/* The slot of uid in group (made with its usage now where new); -ENOMEM */
static int user_slot(struct scheduler_kept *k, const struct scheduler_usage *usage, size_t n_usage,
		     uint32_t uid, uint32_t group, uint32_t *ret)
{
	size_t free_slot = SIZE_MAX;

	for (size_t i = 0; i < k->n_users; i++) {
		if (k->users[i].count && k->users[i].uid == uid && k->users[i].group == group) {
			*ret = (uint32_t)i;
			return 0;
		}
		if (!k->users[i].count && free_slot == SIZE_MAX)
			free_slot = i;
	}
	if (free_slot == SIZE_MAX) {
		if (k->n_users == k->cap_users) {
			size_t cap = k->cap_users ? 2 * k->cap_users : 8;
			struct scheduler_kept_user *u = realloc(k->users, cap * sizeof(*u));

			if (!u)
				return -ENOMEM;
			k->users = u;
			k->cap_users = cap;
		}
		free_slot = k->n_users++;
	}
	k->users[free_slot] = (struct scheduler_kept_user){ uid, group, 0,
							    share_now(usage, n_usage, uid, group) };
	*ret = (uint32_t)free_slot;
	return 0;
}

int scheduler_kept_add(struct scheduler_kept *k, const struct scheduler_usage *usage,
		       size_t n_usage, struct scheduler_queued *q, void **data, size_t n)
{
	struct entry *e = n ? malloc(n * sizeof(*e)) : NULL;
	size_t i, j, w;

	if (!n)
		return 0;
	if (!e || reserve(k, n) < 0) {
		free(e);
		return -ENOMEM;
	}
	if (!k->n)
		bounds_again(k);
	for (i = 0; i < n; i++) {
		e[i] = (struct entry){ .q = q[i], .data = data[i] };
		if (user_slot(k, usage, n_usage, q[i].uid, q[i].group, &e[i].user) < 0) {
			for (j = 0; j < i; j++) /* (slots made for them go back) */
				k->users[e[j].user].count--;
			free(e);
			return -ENOMEM;
		}
		k->users[e[i].user].count++;
	}
	qsort_r(e, n, sizeof(*e), cmp_entry, k);
	/* merged from the end: the entries after the first new one move */
	i = k->n;
	j = n;
	w = k->off + k->n + n;
	while (j > 0) {
		size_t at = k->off + i - 1;

		w--;
		if (i > 0 && scheduler_compare(&k->q[at], &k->users[k->user[at]].share, &e[j - 1].q,
					       &k->users[e[j - 1].user].share) > 0) {
			k->q[w] = k->q[at];
			k->data[w] = k->data[at];
			k->user[w] = k->user[at];
			i--;
		} else {
			j--;
			k->q[w] = e[j].q;
			k->data[w] = e[j].data;
			k->user[w] = e[j].user;
		}
	}
	k->n += n;
	for (i = 0; i < n; i++) { /* (the caller's arrays, in the order added) */
		q[i] = e[i].q;
		data[i] = e[i].data;
		bounds_add(k, &e[i].q);
	}
	free(e);
	return 0;
}

size_t scheduler_kept_find(const struct scheduler_kept *k, const struct scheduler_queued *key,
			   const void *data)
{
	size_t lo = 0, hi = k->n;
	struct scheduler_share u = { 0.0, 0.0 };
	bool known = false;

	for (size_t i = 0; i < k->n_users; i++)
		if (k->users[i].count && k->users[i].uid == key->uid &&
		    k->users[i].group == key->group) {
			u = k->users[i].share;
			known = true;
		}
	while (known && lo < hi) { /* the first entry not before key */
		size_t mid = lo + (hi - lo) / 2, at = k->off + mid;

		if (scheduler_compare(&k->q[at], &k->users[k->user[at]].share, key, &u) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; known && i < k->n; i++) {
		size_t at = k->off + i;

		if (k->data[at] == data)
			return i;
		if (scheduler_compare(&k->q[at], &k->users[k->user[at]].share, key, &u) > 0)
			break;
	}
	for (size_t i = 0; i < k->n; i++) /* (a key that changed: every entry) */
		if (k->data[k->off + i] == data)
			return i;
	return SIZE_MAX;
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

static void move(struct scheduler_kept *k, size_t to, size_t from)
{
	k->q[to] = k->q[from];
	k->data[to] = k->data[from];
	k->user[to] = k->user[from];
}

void scheduler_kept_drop(struct scheduler_kept *k, size_t *idx, size_t n_idx)
{
	size_t n = 0, w;

	qsort(idx, n_idx, sizeof(*idx), cmp_size);
	for (size_t i = 0; i < n_idx; i++) /* (unique, in range) */
		if (idx[i] < k->n && (n == 0 || idx[n - 1] != idx[i]))
			idx[n++] = idx[i];
	if (!n)
		return;
	for (size_t i = 0; i < n; i++) {
		const struct scheduler_queued *q = &k->q[k->off + idx[i]];

		k->users[k->user[k->off + idx[i]]].count--;
		k->n_held -= q->held;
		k->n_deps -= q->n_deps > 0;
	}
	if (idx[n - 1] < k->n / 2) { /* near the first: the entries before move up */
		size_t d = n;

		w = idx[n - 1];
		for (size_t r = idx[n - 1]; r-- > 0;) {
			if (d > 1 && r == idx[d - 2]) {
				d--;
				continue;
			}
			move(k, k->off + w--, k->off + r);
		}
		k->off += n;
	} else { /* the entries after move down */
		size_t d = 1;

		w = idx[0];
		for (size_t r = idx[0] + 1; r < k->n; r++) {
			if (d < n && r == idx[d]) {
				d++;
				continue;
			}
			move(k, k->off + w++, k->off + r);
		}
	}
	k->n -= n;
	if (!k->n) {
		k->off = 0;
		bounds_again(k);
	}
}

void scheduler_kept_node(const struct scheduler_kept *k, struct scheduler_node *node)
{
	node->queue = k->q ? k->q + k->off : NULL;
	node->n_queue = k->n;
	node->sorted = true;
	node->order_hint = NULL;
}
