/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* template.json (xos-template(5)): parsing with validation, writing. */
#include <fcntl.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "templates/templates-internal.h"

#define META_MAX (1024 * 1024)

void template_info_free(struct template_info *t)
{
	int saved = errno;

	if (!t)
		return;
	free(t->name);
	free(t->checksum);
	strv_free(t->env);
	free(t->workdir);
	free(t->user);
	free(t);
	errno = saved;
}

static int fail(char **ret_err, const char *fmt, ...) _printf_(2, 3);
static int fail(char **ret_err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (ret_err && vasprintf(ret_err, fmt, ap) < 0)
		*ret_err = NULL;
	va_end(ap);
	return -EINVAL;
}

static bool checksum_valid(const char *s)
{
	if (!str_has_prefix(s, "sha256:") || strlen(s) != 7 + 64)
		return false;
	for (s += 7; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

static bool user_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == ':' || *s == '/' || *s == 0x7f)
			return false;
	return true;
}

static int get_str(yajl_val t, const char *k, bool required, char **ret, char **ret_err)
{
	const char *s = NULL;
	int r = json_get_string(t, k, &s);

	if (r == -ENOENT && !required)
		return 0;
	if (r == -ENOENT)
		return fail(ret_err, "field '%s' is missing", k);
	if (r < 0)
		return fail(ret_err, "field '%s' must be a string", k);
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

static int get_num(yajl_val t, const char *k, uint64_t max, uint64_t *ret, char **ret_err)
{
	int r = json_get_uint(t, k, ret);

	if (r == -ENOENT)
		return fail(ret_err, "field '%s' is missing", k);
	if (r < 0 || *ret > max)
		return fail(ret_err, "field '%s' must be an integer from 0 to %llu", k,
			    (unsigned long long)max);
	return 0;
}

static int check_fields(const struct template_info *t, const char *name, char **ret_err)
{
	if (!template_name_valid(t->name))
		return fail(ret_err, "'%s' is not a valid template name", t->name);
	if (name && strcmp(name, t->name) != 0)
		return fail(ret_err, "it names template '%s', not '%s'", t->name, name);
	if (!checksum_valid(t->checksum))
		return fail(ret_err, "field 'checksum' must be \"sha256:\" and 64 hex digits");
	if (t->workdir && t->workdir[0] != '/')
		return fail(ret_err, "field 'workdir' must be an absolute path, not '%s'",
			    t->workdir);
	if (t->user && !user_valid(t->user))
		return fail(ret_err, "field 'user' must be an account name or uid");
	for (size_t i = 0; t->env[i]; i++)
		if (!strchr(t->env[i], '=') || t->env[i][0] == '=')
			return fail(ret_err, "item '%s' of field 'env' is not K=V", t->env[i]);
	return 0;
}

static int parse_fields(yajl_val v, struct template_info *t, char **ret_err)
{
	uint64_t size, files, created, ub, gb;
	int r;

	if ((r = get_str(v, "name", true, &t->name, ret_err)) < 0 ||
	    (r = get_str(v, "checksum", true, &t->checksum, ret_err)) < 0 ||
	    (r = get_num(v, "size", UINT64_MAX, &size, ret_err)) < 0 ||
	    (r = get_num(v, "files", UINT64_MAX, &files, ret_err)) < 0 ||
	    (r = get_num(v, "created", INT64_MAX, &created, ret_err)) < 0 ||
	    (r = get_num(v, "uid_base", UINT32_MAX - 1, &ub, ret_err)) < 0 ||
	    (r = get_num(v, "gid_base", UINT32_MAX - 1, &gb, ret_err)) < 0 ||
	    (r = get_str(v, "workdir", false, &t->workdir, ret_err)) < 0 ||
	    (r = get_str(v, "user", false, &t->user, ret_err)) < 0)
		return r;
	t->size = size;
	t->files = files;
	t->created = (int64_t)created;
	t->uid_base = (uid_t)ub;
	t->gid_base = (gid_t)gb;
	r = json_get_strv(v, "env", &t->env);
	if (r == -ENOENT)
		t->env = calloc(1, sizeof(char *));
	else if (r < 0)
		return fail(ret_err, "field 'env' must be a list of strings");
	return t->env ? 0 : -ENOMEM;
}

int template_info_parse(const char *text, const char *name, struct template_info **ret,
			char **ret_err)
{
	static const char *const keys[] = { "name",     "checksum", "size",    "files",
					    "created",  "env",      "workdir", "user",
					    "uid_base", "gid_base", NULL };
	_cleanup_template_info_ struct template_info *t = NULL;
	_cleanup_json_ yajl_val v = NULL;
	const char *bad = NULL;
	char err[256] = "";
	int r;

	if (ret_err)
		*ret_err = NULL;
	r = json_parse(text, JSON_DEPTH_MAX, err, sizeof(err), &v);
	if (r == -ELOOP)
		return fail(ret_err, "%s", err);
	if (r < 0)
		return fail(ret_err, "not JSON: %s", err);
	if (!YAJL_IS_OBJECT(v))
		return fail(ret_err, "not a JSON object");
	if (json_check_keys(v, keys, &bad) < 0)
		return fail(ret_err, "unknown field '%s'", bad);
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	if ((r = parse_fields(v, t, ret_err)) < 0 || (r = check_fields(t, name, ret_err)) < 0)
		return r;
	*ret = TAKE_PTR(t);
	return 0;
}

char *template_info_to_json(const struct template_info *t)
{
	_cleanup_gen_ yajl_gen g = yajl_gen_alloc(NULL);

	if (!g)
		return NULL;
	yajl_gen_config(g, yajl_gen_beautify, 1);
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "name", t->name);
	json_gen_kv_str(g, "checksum", t->checksum);
	json_gen_kv_uint(g, "size", t->size);
	json_gen_kv_uint(g, "files", t->files);
	json_gen_kv_int(g, "created", t->created);
	json_gen_kv_strv(g, "env", t->env);
	if (t->workdir)
		json_gen_kv_str(g, "workdir", t->workdir);
	if (t->user)
		json_gen_kv_str(g, "user", t->user);
	json_gen_kv_uint(g, "uid_base", t->uid_base);
	json_gen_kv_uint(g, "gid_base", t->gid_base);
	yajl_gen_map_close(g);
	return json_gen_take(g, true);
}

int template_load(int catalog_dfd, const char *name, struct template_info **ret, char **ret_err)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_close_ int dir = -EBADF;
	char *why = NULL;
	int r;

	if (ret_err)
		*ret_err = NULL;
	if (!template_name_valid(name))
		return -ENOENT;
	dir = open_dir_at(catalog_dfd, name);
	if (dir == -ENOENT)
		return -ENOENT;
	if (dir < 0) {
		if (ret_err)
			*ret_err = xstrdup_printf("Cannot open template %s: %s", name,
						  strerror(-dir));
		return dir;
	}
	r = read_file_at(dir, "template.json", META_MAX, &text, NULL);
	if (r < 0) {
		if (ret_err)
			*ret_err = xstrdup_printf("Cannot read template.json of template %s: %s",
						  name, strerror(-r));
		return r == -ENOENT ? -EBADMSG : r;
	}
	r = template_info_parse(text, name, ret, &why);
	if (r < 0 && ret_err)
		*ret_err = xstrdup_printf("Invalid template.json of template %s: %s", name,
					  why ? why : strerror(-r));
	free(why);
	return r;
}
