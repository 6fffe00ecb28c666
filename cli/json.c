/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* JSON helpers of the commands: reading responses (yajl_tree), building
 * requests and printing trees (yajl_gen). */
#include <string.h>
#include <yajl/yajl_parse.h>

#include "cli/cli.h"

yajl_val cli_json_get(yajl_val obj, const char *key)
{
	return json_get(obj, key);
}

const char *cli_json_string(yajl_val obj, const char *key)
{
	const char *s;

	return json_get_string(obj, key, &s) < 0 ? NULL : s;
}

int cli_json_int(yajl_val obj, const char *key, int64_t *ret)
{
	if (YAJL_IS_NULL(cli_json_get(obj, key)))
		return -ENOENT;
	return json_get_int(obj, key, ret);
}

bool cli_json_true(yajl_val obj, const char *key)
{
	return YAJL_IS_TRUE(cli_json_get(obj, key));
}

int cli_json_parse(const char *text, yajl_val *ret)
{
	yajl_val v = NULL;

	if (json_parse(text, JSON_DEPTH_MAX, NULL, 0, &v) < 0)
		return -EBADMSG;
	if (!YAJL_IS_OBJECT(v)) {
		json_free(v);
		return -EBADMSG;
	}
	*ret = v;
	return 0;
}

static int gen_status(yajl_gen_status s)
{
	switch (s) {
	case yajl_gen_status_ok:
		return 0;
	case yajl_gen_invalid_string:
		return -EILSEQ;
	case yajl_gen_invalid_number:
		return -EINVAL;
	default:
		return -ENOMEM;
	}
}

static int gen_text(yajl_gen g, const char *s)
{
	return gen_status(yajl_gen_string(g, (const unsigned char *)s, strlen(s)));
}

/* What was generated so far goes to out (when given) once it passes 64 KiB:
 * 10,000 jobs of `xps -a --json` are some 18 MB, which a buffer grown by
 * copies and written at the end made slow. */
static int gen_flush(yajl_gen g, FILE *out)
{
	const unsigned char *buf;
	size_t len;

	if (!out || yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok || len < 65536)
		return 0;
	if (fwrite(buf, 1, len, out) != len)
		return -EIO;
	yajl_gen_clear(g);
	return 0;
}

static int gen_value(yajl_gen g, yajl_val v, FILE *out);

static int gen_object(yajl_gen g, yajl_val v, FILE *out)
{
	int r = gen_status(yajl_gen_map_open(g));

	for (size_t i = 0; r >= 0 && i < v->u.object.len; i++) {
		r = gen_text(g, v->u.object.keys[i]);
		if (r >= 0)
			r = gen_value(g, v->u.object.values[i], out);
	}
	return r < 0 ? r : gen_status(yajl_gen_map_close(g));
}

static int gen_array(yajl_gen g, yajl_val v, FILE *out)
{
	int r = gen_status(yajl_gen_array_open(g));

	for (size_t i = 0; r >= 0 && i < v->u.array.len; i++) {
		r = gen_value(g, v->u.array.values[i], out);
		if (r >= 0)
			r = gen_flush(g, out);
	}
	return r < 0 ? r : gen_status(yajl_gen_array_close(g));
}

static int gen_value(yajl_gen g, yajl_val v, FILE *out)
{
	if (!v)
		return gen_status(yajl_gen_null(g));
	switch (v->type) {
	case yajl_t_string:
		return gen_text(g, v->u.string);
	case yajl_t_number:
		return gen_status(yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r)));
	case yajl_t_object:
		return gen_object(g, v, out);
	case yajl_t_array:
		return gen_array(g, v, out);
	case yajl_t_true:
		return gen_status(yajl_gen_bool(g, 1));
	case yajl_t_false:
		return gen_status(yajl_gen_bool(g, 0));
	default:
		return gen_status(yajl_gen_null(g));
	}
}

int cli_json_gen_value(yajl_gen g, yajl_val v)
{
	return gen_value(g, v, NULL);
}

int cli_json_print(FILE *f, yajl_val v)
{
	_cleanup_gen_ yajl_gen g = NULL;
	const unsigned char *buf;
	size_t len;
	int r;

	g = yajl_gen_alloc(NULL);
	if (!g)
		return -ENOMEM;
	yajl_gen_config(g, yajl_gen_beautify, 1);
	yajl_gen_config(g, yajl_gen_indent_string, "  ");
	r = gen_value(g, v, f);
	if (r < 0)
		return r;
	if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok)
		return -ENOMEM;
	if (fwrite(buf, 1, len, f) != len)
		return -EIO;
	if (len == 0 || buf[len - 1] != '\n')
		fputc('\n', f);
	return fflush(f) == 0 ? 0 : -errno;
}

int cli_request_begin(const char *op, yajl_gen *ret)
{
	_cleanup_gen_ yajl_gen g = NULL;
	int r;

	g = yajl_gen_alloc(NULL);
	if (!g)
		return -ENOMEM;
	yajl_gen_config(g, yajl_gen_validate_utf8, 1);
	r = gen_status(yajl_gen_map_open(g));
	if (r >= 0)
		r = cli_gen_int(g, "v", XOS_PROTO_VERSION);
	if (r >= 0)
		r = cli_gen_str(g, "op", op);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(g);
	return 0;
}

int cli_gen_str(yajl_gen g, const char *key, const char *val)
{
	int r = gen_text(g, key);

	return r < 0 ? r : gen_text(g, val);
}

int cli_gen_int(yajl_gen g, const char *key, int64_t val)
{
	int r = gen_text(g, key);

	return r < 0 ? r : gen_status(yajl_gen_integer(g, val));
}

int cli_gen_bool(yajl_gen g, const char *key, bool val)
{
	int r = gen_text(g, key);

	return r < 0 ? r : gen_status(yajl_gen_bool(g, val));
}

int cli_gen_strv(yajl_gen g, const char *key, char *const *v)
{
	int r = gen_text(g, key);

	if (r >= 0)
		r = gen_status(yajl_gen_array_open(g));
	for (size_t i = 0; r >= 0 && v && v[i]; i++)
		r = gen_text(g, v[i]);
	return r < 0 ? r : gen_status(yajl_gen_array_close(g));
}

int cli_request_end(yajl_gen g, char **ret, size_t *ret_len)
{
	const unsigned char *buf;
	char *line;
	size_t len;
	int r;

	r = gen_status(yajl_gen_map_close(g));
	if (r < 0)
		return r;
	if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok)
		return -ENOMEM;
	if (len + 1 > XOS_REQUEST_MAX)
		return -E2BIG;
	line = malloc(len + 2);
	if (!line)
		return -ENOMEM;
	memcpy(line, buf, len);
	line[len] = '\n';
	line[len + 1] = '\0';
	*ret = line;
	*ret_len = len + 1;
	return 0;
}

/* ---- a listing printed from its text (no tree) ----
 * 10,000 jobs of `xps -a --json` are some 7 MB of text and 18 MB indented:
 * a tree of them, generated again, took most of the command's time. The
 * text is checked whole by yajl first; then it is copied token by token,
 * indented as yajl's generator indents (cli_json_print), strings and
 * numbers as xosd wrote them. */

static size_t skip_ws(const char *t, size_t len, size_t i)
{
	while (i < len && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r'))
		i++;
	return i;
}

/* Just past the string whose quote is at t[i]: the next quote not escaped
 * (one after an odd run of backslashes is), found by memchr */
static size_t skip_string(const char *t, size_t len, size_t i)
{
	size_t from = ++i;

	while (i < len) {
		const char *q = memchr(t + i, '"', len - i);
		size_t e, b;

		if (!q)
			return len;
		e = (size_t)(q - t);
		for (b = e; b > from && t[b - 1] == '\\';)
			b--;
		if ((e - b) % 2 == 0)
			return e + 1;
		i = e + 1;
	}
	return len;
}

/* The end of the number or literal at t[i]. */
static size_t skip_scalar(const char *t, size_t len, size_t i)
{
	for (; i < len; i++)
		switch (t[i]) {
		case ',':
		case '}':
		case ']':
		case ' ':
		case '\t':
		case '\r':
		case '\n':
			return i;
		default:
			break;
		}
	return i;
}

/* Just past the (checked) value at t[i]. */
static size_t skip_value(const char *t, size_t len, size_t i)
{
	size_t depth = 0;

	if (i < len && t[i] != '{' && t[i] != '[')
		return t[i] == '"' ? skip_string(t, len, i) : skip_scalar(t, len, i);
	while (i < len) {
		if (t[i] == '"') {
			i = skip_string(t, len, i);
			continue;
		}
		if (t[i] == '{' || t[i] == '[')
			depth++;
		else if ((t[i] == '}' || t[i] == ']') && --depth == 0)
			return i + 1;
		i++;
	}
	return len;
}

/* The span of the top-level member key of the (checked) object text
 * (ret_end NULL: only where it starts). */
static int find_member(const char *t, size_t len, const char *key, size_t *ret_start,
		       size_t *ret_end)
{
	size_t klen = strlen(key), i = skip_ws(t, len, 0);

	if (i >= len || t[i] != '{')
		return -EBADMSG;
	for (i = skip_ws(t, len, i + 1); i < len && t[i] == '"';) {
		size_t k = i, v;
		bool match;

		i = skip_string(t, len, i);
		match = i - k == klen + 2 && !memcmp(t + k + 1, key, klen);
		i = skip_ws(t, len, i);
		if (i >= len || t[i] != ':')
			return -EBADMSG;
		v = skip_ws(t, len, i + 1);
		if (match) {
			*ret_start = v;
			if (ret_end)
				*ret_end = skip_value(t, len, v);
			return 0;
		}
		i = skip_value(t, len, v);
		i = skip_ws(t, len, i);
		if (i < len && t[i] == ',')
			i = skip_ws(t, len, i + 1);
	}
	return -ENOENT;
}

int cli_json_text_ok(const char *text, size_t len)
{
	yajl_handle h = yajl_alloc(NULL, NULL, NULL);
	size_t a, b;
	bool valid;

	if (!h)
		return -ENOMEM;
	valid = yajl_parse(h, (const unsigned char *)text, len) == yajl_status_ok &&
		yajl_complete_parse(h) == yajl_status_ok;
	yajl_free(h);
	if (!valid || find_member(text, len, "ok", &a, &b) < 0)
		return -EBADMSG;
	if (b - a == 4 && !memcmp(text + a, "true", 4))
		return 0;
	return b - a == 5 && !memcmp(text + a, "false", 5) ? -EREMOTEIO : -EBADMSG;
}

struct pp {
	FILE *f;
	size_t n;
	int err;
	char buf[65536];
};

static void pp_put_slow(struct pp *p, const char *s, size_t n)
{
	while (n > 0 && !p->err) {
		size_t k = sizeof(p->buf) - p->n < n ? sizeof(p->buf) - p->n : n;

		memcpy(p->buf + p->n, s, k);
		p->n += k;
		s += k;
		n -= k;
		if (p->n == sizeof(p->buf)) {
			if (fwrite(p->buf, 1, p->n, p->f) != p->n)
				p->err = -EIO;
			p->n = 0;
		}
	}
}

/* (called per token, some 1.5 million times for 10,000 jobs: the common
 * case, room in the buffer, is one memcpy) */
static inline void pp_put(struct pp *p, const char *s, size_t n)
{
	if (n < sizeof(p->buf) - p->n) { /* (never full after it: no write here) */
		memcpy(p->buf + p->n, s, n);
		p->n += n;
		return;
	}
	pp_put_slow(p, s, n);
}

static void pp_indent(struct pp *p, size_t depth)
{
	static const char spaces[] =
		"                                                                ";

	for (; depth > (sizeof(spaces) - 1) / 2; depth -= (sizeof(spaces) - 1) / 2)
		pp_put(p, spaces, sizeof(spaces) - 1);
	pp_put(p, spaces, 2 * depth);
}

int cli_json_print_member(FILE *f, const char *text, size_t len, const char *key)
{
	_cleanup_free_ struct pp *p = calloc(1, sizeof(*p));
	/* at_value: a map's member value comes (after its ':'): no item of
	 * its own; first: nothing printed yet in the innermost container */
	bool first = true, at_value = false;
	size_t depth = 0, i, end;
	int r;

	if (!p)
		return -ENOMEM;
	p->f = f;
	r = find_member(text, len, key, &i, NULL); /* (its end: where it closes) */
	if (r < 0)
		return r;
	end = len;
	while (i < end && !p->err) {
		char ch = text[i];
		size_t e;

		if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == ',') {
			i++;
			continue;
		}
		if (ch == ':') {
			pp_put(p, ": ", 2);
			at_value = true;
			i++;
			continue;
		}
		if (ch == '}' || ch == ']') {
			if (depth == 0)
				return -EBADMSG;
			pp_put(p, "\n", 1);
			pp_indent(p, --depth);
			pp_put(p, &ch, 1);
			first = at_value = false;
			i++;
			if (depth == 0)
				break; /* (the member's value closed) */
			continue;
		}
		if (depth > 0 && !at_value) { /* an array's value or a map's key */
			if (!first)
				pp_put(p, ",\n", 2);
			pp_indent(p, depth);
		}
		first = at_value = false;
		if (ch == '{' || ch == '[') {
			pp_put(p, &ch, 1);
			pp_put(p, "\n", 1);
			depth++;
			first = true;
			i++;
			continue;
		}
		e = ch == '"' ? skip_string(text, end, i) : skip_scalar(text, end, i);
		pp_put(p, text + i, e - i);
		i = e;
		if (depth == 0)
			break; /* (a member's value that is no container) */
	}
	pp_put(p, "\n", 1);
	if (!p->err && p->n && fwrite(p->buf, 1, p->n, f) != p->n)
		p->err = -EIO;
	if (p->err)
		return p->err;
	return fflush(f) == 0 ? 0 : -errno;
}
