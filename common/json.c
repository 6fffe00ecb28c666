/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* JSON helpers on top of yajl, and base64. */
#include <sys/mman.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

#include "common/common.h"

void json_freep(struct yajl_val_s **v)
{
	json_free(*v);
}

void yajl_gen_freep(struct yajl_gen_t **g)
{
	int saved = errno;
	if (*g)
		yajl_gen_free(*g);
	errno = saved;
}

/* json_parse builds yajl's tree itself, from yajl's parser callbacks.
 * yajl_tree_parse grows an array or object by one element per realloc and
 * makes each node, key and string a malloc of its own: a reply of 10,000
 * jobs took most of `xps`'s time on a full queue in realloc copies, malloc
 * and page faults. Here the nodes are yajl's structures (same types, numbers'
 * flags, comments allowed as yajl_tree_parse allows them), but all of a tree
 * lives in an arena of a few blocks, containers grow by doubling (the space
 * they leave behind is the arena's: at most as much again), and json_free
 * (never yajl_tree_free) lets the whole tree go at once. The depth is counted
 * as containers open, so nothing deeper than the limit is built. */
struct arena_block {
	struct arena_block *next;
	size_t size, used; /* size: of data */
	bool mapped;       /* mmap'd (a large block), not malloc'd */
	max_align_t data[];
};

/* The root node sits in the first block after the list of blocks, so that
 * json_free finds the blocks from the root. */
struct tree_head {
	struct arena_block *blocks;
	struct yajl_val_s root;
};

#define ARENA_BLOCK_MIN ((size_t)8192)
#define ARENA_BLOCK_MAX ((size_t)4 << 20)
#define ARENA_BLOCK_MAP ((size_t)256 << 10)

/* Under AddressSanitizer every allocation of a tree is a malloc of its own,
 * of its exact size, and nothing is kept for the next tree: a read past a
 * string or a use after json_free is reported as it was with yajl's tree. */
#if defined(__SANITIZE_ADDRESS__)
#define ARENA_EXACT 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_EXACT 1
#endif
#endif
#ifndef ARENA_EXACT
#define ARENA_EXACT 0
#endif

struct tree_level {
	yajl_val v;
	size_t cap;
	char *key; /* an object's key awaiting its value */
};

struct tree_ctx {
	struct tree_level *stack; /* (malloc'd: not part of the tree) */
	size_t depth, cap;
	unsigned max_depth;
	bool too_deep;
	struct tree_head *head; /* NULL until the first node */
	size_t next_block;      /* the size of the next block */
};

/* The first block of the last tree freed, kept for the next one: xosd
 * parses a request and lets it go at every event, and a request fits in
 * it; a malloc and free of a few KiB each time scattered the jobs' own
 * allocations over more pages (its walks of 10,000 jobs were slower). */
static __thread struct arena_block *spare_block;

static void arena_free(struct arena_block *b)
{
	while (b) {
		struct arena_block *next = b->next;

		if (b->mapped)
			munmap(b, sizeof(*b) + b->size);
		else if (!ARENA_EXACT && !next && !spare_block && b->size == ARENA_BLOCK_MIN)
			spare_block = b; /* (the first block is the last of the list) */
		else
			free(b);
		b = next;
	}
}

/* A large block is mapped on its own, aligned to and made of 2 MiB pages
 * where the kernel gives them (transparent huge pages on madvise): a tree of
 * 10,000 jobs in 4 KiB pages spent as much time in page faults and TLB
 * misses as in parsing. */
static struct arena_block *arena_block_map(size_t size, struct arena_block *next)
{
	const size_t huge = (size_t)2 << 20;
	size_t total;
	char *m, *at;
	struct arena_block *b;

	if (size > SIZE_MAX - sizeof(*b) - 2 * huge)
		return NULL;
	total = (sizeof(*b) + size + huge - 1) & ~(huge - 1);
	m = mmap(NULL, total + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	at = (char *)(((uintptr_t)m + huge - 1) & ~(uintptr_t)(huge - 1));
	if (at > m)
		munmap(m, (size_t)(at - m));
	if (m + huge > at)
		munmap(at + total, (size_t)(m + huge - at));
	(void)madvise(at, total, MADV_HUGEPAGE);
	b = (struct arena_block *)at;
	*b = (struct arena_block){ .next = next, .size = total - sizeof(*b), .mapped = true };
	return b;
}

static struct arena_block *arena_block_new(size_t size, struct arena_block *next)
{
	struct arena_block *b;

	if (!ARENA_EXACT && size >= ARENA_BLOCK_MAP)
		return arena_block_map(size, next);
	if (size > SIZE_MAX - sizeof(*b) || !(b = malloc(sizeof(*b) + size)))
		return NULL;
	*b = (struct arena_block){ .next = next, .size = size };
	return b;
}

/* n bytes aligned to align (a power of two at most max_align_t's) */
static void *arena_alloc(struct tree_ctx *t, size_t n, size_t align)
{
	struct arena_block *b = t->head->blocks;
	size_t at = (b->used + align - 1) & ~(align - 1);

	if (ARENA_EXACT || at > b->size || b->size - at < n) {
		if (n > SIZE_MAX / 2)
			return NULL;
		b = arena_block_new(!ARENA_EXACT && t->next_block > n ? t->next_block : n, b);
		if (!b)
			return NULL;
		t->head->blocks = b;
		if (t->next_block < ARENA_BLOCK_MAX)
			t->next_block *= 2;
		at = 0;
	}
	b->used = at + n;
	return (char *)b->data + at;
}

static char *arena_strndup(struct tree_ctx *t, const void *s, size_t len)
{
	char *p = len < SIZE_MAX ? arena_alloc(t, len + 1, 1) : NULL;

	if (p) {
		memcpy(p, s, len);
		p[len] = 0;
	}
	return p;
}

/* *arr (of *cap elements of size) with room for one more past len. */
static int tree_grow(struct tree_ctx *t, void **arr, size_t *cap, size_t len, size_t size)
{
	size_t n = *cap ? *cap * 2 : 4;
	void *p;

	if (len < *cap)
		return 0;
	if (n > SIZE_MAX / size || !(p = arena_alloc(t, n * size, _Alignof(void *))))
		return -ENOMEM;
	if (len)
		memcpy(p, *arr, len * size);
	*arr = p;
	*cap = n;
	return 0;
}

/* A node: the first is the root, in the first block. */
static yajl_val tree_new(struct tree_ctx *t, yajl_type type)
{
	yajl_val v;

	if (!t->head) {
		struct arena_block *b = spare_block;

		if (b) {
			spare_block = NULL;
			*b = (struct arena_block){ .size = ARENA_BLOCK_MIN };
		} else if (!(b = arena_block_new(ARENA_EXACT ? sizeof(struct tree_head)
							     : ARENA_BLOCK_MIN,
						 NULL))) {
			return NULL;
		}
		t->head = (struct tree_head *)b->data;
		b->used = sizeof(struct tree_head);
		t->head->blocks = b;
		v = &t->head->root;
	} else if (!(v = arena_alloc(t, sizeof(*v), _Alignof(struct yajl_val_s)))) {
		return NULL;
	}
	memset(v, 0, sizeof(*v));
	v->type = type;
	return v;
}

/* Attach v to the open container (the root has none). */
static int tree_add(struct tree_ctx *t, yajl_val v)
{
	struct tree_level *l;
	size_t cap;

	if (!v)
		return 0;
	if (t->depth == 0)
		return 1;
	l = &t->stack[t->depth - 1];
	if (YAJL_IS_ARRAY(l->v)) {
		if (tree_grow(t, (void **)&l->v->u.array.values, &l->cap, l->v->u.array.len,
			      sizeof(yajl_val)) < 0)
			return 0;
		l->v->u.array.values[l->v->u.array.len++] = v;
		return 1;
	}
	cap = l->cap; /* (keys and values grow together) */
	if (!l->key ||
	    tree_grow(t, (void **)&l->v->u.object.values, &cap, l->v->u.object.len,
		      sizeof(yajl_val)) < 0 ||
	    tree_grow(t, (void **)&l->v->u.object.keys, &l->cap, l->v->u.object.len,
		      sizeof(char *)) < 0)
		return 0;
	l->v->u.object.keys[l->v->u.object.len] = l->key;
	l->v->u.object.values[l->v->u.object.len++] = v;
	l->key = NULL;
	return 1;
}

static int tree_open(void *ctx, yajl_type type)
{
	struct tree_ctx *t = ctx;
	yajl_val v;

	if (t->depth >= t->max_depth) {
		t->too_deep = true;
		return 0;
	}
	if (t->depth == t->cap) {
		size_t n = t->cap ? t->cap * 2 : 8;
		struct tree_level *p = reallocarray(t->stack, n, sizeof(*p));

		if (!p)
			return 0;
		t->stack = p;
		t->cap = n;
	}
	v = tree_new(t, type);
	if (!v || !tree_add(t, v))
		return 0;
	t->stack[t->depth++] = (struct tree_level){ .v = v };
	return 1;
}

static int tree_close(void *ctx)
{
	struct tree_ctx *t = ctx;

	if (t->depth == 0)
		return 0;
	t->depth--;
	return 1;
}

static int tree_map_open(void *ctx)
{
	return tree_open(ctx, yajl_t_object);
}

static int tree_array_open(void *ctx)
{
	return tree_open(ctx, yajl_t_array);
}

static int tree_key(void *ctx, const unsigned char *key, size_t len)
{
	struct tree_ctx *t = ctx;

	t->stack[t->depth - 1].key = arena_strndup(t, key, len);
	return t->stack[t->depth - 1].key != NULL;
}

static int tree_string(void *ctx, const unsigned char *s, size_t len)
{
	yajl_val v = tree_new(ctx, yajl_t_string);

	return v && (v->u.string = arena_strndup(ctx, s, len)) && tree_add(ctx, v);
}

static int tree_number(void *ctx, const char *s, size_t len)
{
	yajl_val v = tree_new(ctx, yajl_t_number);
	char *end = NULL;

	if (!v || !(v->u.number.r = arena_strndup(ctx, s, len)))
		return 0;
	errno = 0;
	v->u.number.i = strtoll(v->u.number.r, &end, 10);
	if (errno == 0 && *end == '\0')
		v->u.number.flags |= YAJL_NUMBER_INT_VALID;
	errno = 0;
	v->u.number.d = strtod(v->u.number.r, &end);
	if (errno == 0 && *end == '\0')
		v->u.number.flags |= YAJL_NUMBER_DOUBLE_VALID;
	return tree_add(ctx, v);
}

static int tree_bool(void *ctx, int b)
{
	return tree_add(ctx, tree_new(ctx, b ? yajl_t_true : yajl_t_false));
}

static int tree_null(void *ctx)
{
	return tree_add(ctx, tree_new(ctx, yajl_t_null));
}

static const yajl_callbacks tree_callbacks = {
	.yajl_null = tree_null,
	.yajl_boolean = tree_bool,
	.yajl_number = tree_number,
	.yajl_string = tree_string,
	.yajl_start_map = tree_map_open,
	.yajl_map_key = tree_key,
	.yajl_end_map = tree_close,
	.yajl_start_array = tree_array_open,
	.yajl_end_array = tree_close,
};

void json_free(yajl_val v)
{
	int saved = errno;

	if (v) {
		struct tree_head *head = (void *)((char *)v - offsetof(struct tree_head, root));

		arena_free(head->blocks);
	}
	errno = saved;
}

static void parse_error(yajl_handle h, char *err, size_t err_len)
{
	unsigned char *msg = yajl_get_error(h, 0, NULL, 0);
	char *nl = msg ? strchr((char *)msg, '\n') : NULL;

	if (nl)
		*nl = 0;
	if (err && err_len)
		snprintf(err, err_len, "%s", msg && msg[0] ? (char *)msg : "parse error");
	if (msg)
		yajl_free_error(h, msg);
}

int json_parse(const char *text, unsigned max_depth, char *err, size_t err_len, yajl_val *ret)
{
	struct tree_ctx t = { .max_depth = max_depth, .next_block = ARENA_BLOCK_MIN * 2 };
	yajl_handle h = yajl_alloc(&tree_callbacks, NULL, &t);
	size_t len = strlen(text);
	yajl_status st;
	int r = 0;

	if (!h)
		return -ENOMEM;
	/* the tree takes a few times the text: the first blocks in proportion */
	while (t.next_block < len && t.next_block < ARENA_BLOCK_MAX)
		t.next_block *= 2;
	(void)yajl_config(h, yajl_allow_comments, 1);
	st = yajl_parse(h, (const unsigned char *)text, len);
	if (st == yajl_status_ok)
		st = yajl_complete_parse(h);
	if (t.too_deep) {
		if (err && err_len)
			snprintf(err, err_len, "nested too deeply (limit %u)", max_depth);
		r = -ELOOP;
	} else if (st != yajl_status_ok || !t.head || t.depth) {
		parse_error(h, err, err_len);
		r = st == yajl_status_client_canceled ? -ENOMEM : -EBADMSG;
	}
	yajl_free(h);
	free(t.stack);
	if (r < 0) {
		if (t.head)
			arena_free(t.head->blocks);
		return r;
	}
	*ret = &t.head->root;
	return 0;
}

yajl_val json_get(yajl_val obj, const char *key)
{
	if (!YAJL_IS_OBJECT(obj))
		return NULL;
	for (size_t i = 0; i < obj->u.object.len; i++)
		if (strcmp(obj->u.object.keys[i], key) == 0)
			return obj->u.object.values[i];
	return NULL;
}

int json_get_string(yajl_val obj, const char *key, const char **ret)
{
	yajl_val v = json_get(obj, key);

	if (!v)
		return -ENOENT;
	if (!YAJL_IS_STRING(v))
		return -EINVAL;
	*ret = v->u.string;
	return 0;
}

int json_get_int(yajl_val obj, const char *key, int64_t *ret)
{
	yajl_val v = json_get(obj, key);

	if (!v)
		return -ENOENT;
	if (!YAJL_IS_INTEGER(v))
		return -EINVAL;
	*ret = v->u.number.i;
	return 0;
}

int json_get_uint(yajl_val obj, const char *key, uint64_t *ret)
{
	int64_t i;
	int r = json_get_int(obj, key, &i);

	if (r < 0)
		return r;
	if (i < 0)
		return -EINVAL;
	*ret = (uint64_t)i;
	return 0;
}

int json_get_bool(yajl_val obj, const char *key, bool *ret)
{
	yajl_val v = json_get(obj, key);

	if (!v)
		return -ENOENT;
	if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
		return -EINVAL;
	*ret = YAJL_IS_TRUE(v);
	return 0;
}

int json_get_strv(yajl_val obj, const char *key, char ***ret)
{
	yajl_val v = json_get(obj, key);
	_cleanup_strv_free_ char **l = NULL;

	if (!v)
		return -ENOENT;
	if (!YAJL_IS_ARRAY(v))
		return -EINVAL;
	l = calloc(v->u.array.len + 1, sizeof(char *));
	if (!l)
		return -ENOMEM;
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val e = v->u.array.values[i];

		if (!YAJL_IS_STRING(e))
			return -EINVAL;
		l[i] = strdup(e->u.string);
		if (!l[i])
			return -ENOMEM;
	}
	*ret = TAKE_PTR(l);
	return 0;
}

int json_check_keys(yajl_val obj, const char *const *allowed, const char **ret_key)
{
	if (!YAJL_IS_OBJECT(obj))
		return -EINVAL;
	for (size_t i = 0; i < obj->u.object.len; i++) {
		bool ok = false;

		for (const char *const *a = allowed; *a; a++)
			if (strcmp(*a, obj->u.object.keys[i]) == 0)
				ok = true;
		if (!ok) {
			*ret_key = obj->u.object.keys[i];
			return -EINVAL;
		}
	}
	return 0;
}

void json_gen_str(yajl_gen g, const char *s)
{
	if (s)
		yajl_gen_string(g, (const unsigned char *)s, strlen(s));
	else
		yajl_gen_null(g);
}

void json_gen_key(yajl_gen g, const char *k)
{
	yajl_gen_string(g, (const unsigned char *)k, strlen(k));
}

void json_gen_kv_str(yajl_gen g, const char *k, const char *v)
{
	json_gen_key(g, k);
	json_gen_str(g, v);
}

void json_gen_kv_int(yajl_gen g, const char *k, int64_t v)
{
	json_gen_key(g, k);
	yajl_gen_integer(g, v);
}

void json_gen_kv_uint(yajl_gen g, const char *k, uint64_t v)
{
	json_gen_key(g, k);
	yajl_gen_integer(g, v > INT64_MAX ? INT64_MAX : (long long)v);
}

void json_gen_kv_bool(yajl_gen g, const char *k, bool v)
{
	json_gen_key(g, k);
	yajl_gen_bool(g, v);
}

void json_gen_kv_null(yajl_gen g, const char *k)
{
	json_gen_key(g, k);
	yajl_gen_null(g);
}

void json_gen_kv_strv(yajl_gen g, const char *k, char *const *v)
{
	json_gen_key(g, k);
	yajl_gen_array_open(g);
	for (size_t i = 0; v && v[i]; i++)
		json_gen_str(g, v[i]);
	yajl_gen_array_close(g);
}

char *json_gen_take(yajl_gen g, bool nl)
{
	const unsigned char *buf;
	size_t len;
	char *s;

	if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok)
		return NULL;
	s = malloc(len + 2);
	if (!s)
		return NULL;
	memcpy(s, buf, len);
	if (nl)
		s[len++] = '\n';
	s[len] = 0;
	return s;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *base64_encode(const void *data, size_t len)
{
	const unsigned char *p = data;
	char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		*o++ = b64[(v >> 18) & 63];
		*o++ = b64[(v >> 12) & 63];
		*o++ = i + 1 < len ? b64[(v >> 6) & 63] : '=';
		*o++ = i + 2 < len ? b64[v & 63] : '=';
	}
	*o = 0;
	return out;
}

static int b64_val(char c)
{
	const char *p = c ? strchr(b64, c) : NULL;

	return p ? (int)(p - b64) : -1;
}

int base64_decode(const char *s, size_t len, char **ret, size_t *ret_len)
{
	_cleanup_free_ char *out = NULL;
	size_t o = 0;

	if (len % 4)
		return -EINVAL;
	out = malloc(len / 4 * 3 + 1);
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		bool last = i + 4 == len;

		for (int k = 0; k < 4; k++) {
			v[k] = b64_val(s[i + k]);
			if (v[k] < 0 && !(last && k >= 2 && s[i + k] == '='))
				return -EINVAL;
		}
		if (v[2] < 0 && v[3] >= 0)
			return -EINVAL;
		out[o++] = (char)((v[0] << 2) | (v[1] >> 4));
		if (v[2] >= 0)
			out[o++] = (char)(((v[1] & 15) << 4) | (v[2] >> 2));
		if (v[3] >= 0)
			out[o++] = (char)(((v[2] & 3) << 6) | v[3]);
	}
	out[o] = 0;
	*ret = TAKE_PTR(out);
	*ret_len = o;
	return 0;
}
