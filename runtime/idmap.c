/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* User-namespace id maps: container root on a subordinate range (each job its
 * own slice of root's range), the job's own ids mapped to themselves so its
 * files belong to the user; the maps of idmapped template mounts. */
#include "common/common.h"
#include "runtime/runtime.h"

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int push(struct runtime_idmap_entry *ret, size_t max, size_t *n, uint32_t in, uint32_t out,
		uint32_t count)
{
	if (count == 0)
		return 0;
	if (*n >= max)
		return -E2BIG;
	ret[*n] = (struct runtime_idmap_entry){ in, out, count };
	(*n)++;
	return 0;
}

int runtime_idmap_build(uint32_t base, uint32_t size, const uint32_t *identity, size_t n_identity,
			struct runtime_idmap_entry *ret, size_t max, size_t *ret_n)
{
	uint32_t ids[64];
	size_t n = 0, k = 0;
	uint32_t next = 0; /* next container id of the range not yet mapped */
	int r;

	if (size == 0 || (uint64_t)base + size > UINT32_MAX)
		return -EINVAL;
	if (n_identity > ELEMENTSOF(ids))
		return -E2BIG;
	for (size_t i = 0; i < n_identity; i++) {
		if (identity[i] == 0 || (identity[i] >= base && identity[i] - base < size))
			return -ERANGE;
		bool dup = false;

		for (size_t j = 0; j < k; j++)
			dup = dup || ids[j] == identity[i];
		if (!dup)
			ids[k++] = identity[i];
	}
	qsort(ids, k, sizeof(ids[0]), cmp_u32);
	for (size_t i = 0; i < k; i++) {
		if (ids[i] < size) {
			r = push(ret, max, &n, next, base + next, ids[i] - next);
			if (r < 0)
				return r;
			next = ids[i] + 1;
		} else if (next < size) {
			r = push(ret, max, &n, next, base + next, size - next);
			if (r < 0)
				return r;
			next = size;
		}
		r = push(ret, max, &n, ids[i], ids[i], 1);
		if (r < 0)
			return r;
	}
	if (next < size) {
		r = push(ret, max, &n, next, base + next, size - next);
		if (r < 0)
			return r;
	}
	*ret_n = n;
	return 0;
}

int runtime_subid_lookup(const char *path, const char *name, uid_t uid, uint32_t *ret_base,
			 uint32_t *ret_size)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	char uidstr[16];
	uint64_t best = 0;

	if (!f)
		return -errno;
	snprintf(uidstr, sizeof(uidstr), "%u", (unsigned)uid);
	while (getline(&line, &cap, f) > 0) {
		char *save = NULL, *who, *b, *s;
		uint64_t base, size;

		line[strcspn(line, "\n")] = 0;
		who = strtok_r(line, ":", &save);
		b = strtok_r(NULL, ":", &save);
		s = strtok_r(NULL, ":", &save);
		if (!who || !b || !s)
			continue;
		if (strcmp(who, name) != 0 && strcmp(who, uidstr) != 0)
			continue;
		if (parse_uint64(b, &base) < 0 || parse_uint64(s, &size) < 0 || size == 0 ||
		    base == 0 || base + size > UINT32_MAX)
			continue;
		if (size <= best) /* the largest range is the containers' one */
			continue;
		best = size;
		*ret_base = (uint32_t)base;
		*ret_size = (uint32_t)size;
	}
	return best ? 0 : -ENOENT;
}

int runtime_idmap_shift(const struct runtime_idmap_entry *e, size_t n, uint32_t shift,
			struct runtime_idmap_entry *ret)
{
	for (size_t i = 0; i < n; i++)
		if ((uint64_t)e[i].inside + e[i].count + shift > UINT32_MAX)
			return -ERANGE;
	for (size_t i = 0; i < n; i++)
		ret[i] = (struct runtime_idmap_entry){ e[i].inside + shift, e[i].outside,
						       e[i].count };
	return 0;
}

int runtime_idmap_lookup(const struct runtime_idmap_entry *e, size_t n, uint32_t id, uint32_t *ret)
{
	for (size_t i = 0; i < n; i++)
		if (id >= e[i].inside && id - e[i].inside < e[i].count) {
			*ret = e[i].outside + (id - e[i].inside);
			return 0;
		}
	return -ENOENT;
}

uint32_t runtime_idmap_slices(uint32_t uid_size, uint32_t gid_size, uint32_t slice)
{
	uint32_t size = uid_size < gid_size ? uid_size : gid_size;

	return slice ? size / slice : 0;
}
