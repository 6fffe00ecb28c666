/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pure checks: template names, archive entry names, symlink targets. */
#include <limits.h>

#include "templates/templates-internal.h"

#define DISPLAY_MAX 160

bool template_name_valid(const char *name)
{
	size_t n;

	if (!name || !((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9')))
		return false;
	for (n = 1; name[n]; n++) {
		char ch = name[n];

		if (n >= TEMPLATE_NAME_MAX)
			return false;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
		      ch == '_' || ch == '-'))
			return false;
	}
	/* "default": the file naming the default template */
	return strcmp(name, TEMPLATE_HOST) != 0 && strcmp(name, "default") != 0;
}

int template_entry_normalize(const char *in, char **ret, const char **ret_why)
{
	_cleanup_free_ char *out = NULL;
	size_t len = 0;
	const char *p = in;

	if (!in || !in[0]) {
		*ret_why = "its name is empty";
		return -EINVAL;
	}
	if (in[0] == '/') {
		*ret_why = "its name is absolute";
		return -EINVAL;
	}
	out = malloc(strlen(in) + 1);
	if (!out)
		return -ENOMEM;
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.') {
			*ret_why = "its name contains '..'";
			return -EINVAL;
		}
		if (n > NAME_MAX) {
			*ret_why = "a component of its name is longer than 255 bytes";
			return -EINVAL;
		}
		if (n > 0 && !(n == 1 && p[0] == '.')) {
			if (len > 0)
				out[len++] = '/';
			memcpy(out + len, p, n);
			len += n;
		}
		p += n;
		while (*p == '/')
			p++;
	}
	out[len] = 0;
	*ret = TAKE_PTR(out);
	return 0;
}

int template_symlink_check(const char *entry, const char *target, const char **ret_why)
{
	long depth = 0;
	bool named = false;
	const char *p;

	if (!target || !target[0]) {
		*ret_why = "its symlink target is empty";
		return -EINVAL;
	}
	if (target[0] == '/')
		return 0;        /* resolves inside the container's root; we never follow it */
	for (p = entry; *p; p++) /* components of the link's directory */
		depth += *p == '/';
	while (*target) {
		size_t n = strcspn(target, "/");

		if (n == 2 && target[0] == '.' && target[1] == '.') {
			if (named) {
				*ret_why = "its symlink target has '..' after a name";
				return -EINVAL;
			}
			if (--depth < 0) {
				*ret_why = "its symlink target points above the template's root";
				return -EINVAL;
			}
		} else if (n > 0 && !(n == 1 && target[0] == '.')) {
			named = true;
		}
		target += n;
		while (*target == '/')
			target++;
	}
	return 0;
}

char *template_entry_display(const char *name)
{
	size_t n = name ? strlen(name) : 0, keep = n > DISPLAY_MAX ? DISPLAY_MAX : n;
	char *s = malloc(keep + 4);

	if (!s)
		return NULL;
	for (size_t i = 0; i < keep; i++)
		s[i] = (unsigned char)name[i] < 0x20 || name[i] == 0x7f ? '?' : name[i];
	if (keep < n)
		memcpy(s + keep, "...", 3), keep += 3;
	s[keep] = 0;
	return s;
}
