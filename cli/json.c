/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* JSON helpers of the commands: reading responses (yajl_tree), building
 * requests and printing trees (yajl_gen). */
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
