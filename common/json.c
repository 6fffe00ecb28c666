/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* JSON helpers on top of yajl, and base64. */
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "common/common.h"

void yajl_tree_freep(struct yajl_val_s **v)
{
	int saved = errno;
	if (*v)
		yajl_tree_free(*v);
	errno = saved;
}

void yajl_gen_freep(struct yajl_gen_t **g)
{
	int saved = errno;
	if (*g)
		yajl_gen_free(*g);
	errno = saved;
}

int json_check_depth(const char *text, size_t len, unsigned max_depth)
{
	unsigned depth = 0;
	bool in_string = false;

	for (size_t i = 0; i < len && text[i]; i++) {
		char ch = text[i];

		if (in_string) {
			if (ch == '\\' && i + 1 < len && text[i + 1])
				i++; /* the escaped character, whatever it is */
			else if (ch == '"')
				in_string = false;
		} else if (ch == '"') {
			in_string = true;
		} else if (ch == '[' || ch == '{') {
			if (++depth > max_depth)
				return -ELOOP;
		} else if ((ch == ']' || ch == '}') && depth > 0) {
			depth--;
		}
	}
	return 0;
}

int json_parse(const char *text, unsigned max_depth, char *err, size_t err_len, yajl_val *ret)
{
	char buf[256] = "";
	yajl_val v;

	if (json_check_depth(text, SIZE_MAX, max_depth) < 0) {
		if (err && err_len)
			snprintf(err, err_len, "nested too deeply (limit %u)", max_depth);
		return -ELOOP;
	}
	v = yajl_tree_parse(text, buf, sizeof(buf));
	if (!v) {
		char *nl = strchr(buf, '\n');

		if (nl)
			*nl = 0;
		if (err && err_len)
			snprintf(err, err_len, "%s", buf[0] ? buf : "parse error");
		return -EBADMSG;
	}
	*ret = v;
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
