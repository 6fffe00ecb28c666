/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The credential_* and pool_* keys of xosd.conf. */
#include <errno.h>
#include <string.h>

#include "common/common.h"
#include "credstore/credstore.h"

void credstore_config_init(struct credstore_config *c)
{
	*c = (struct credstore_config){
		.pool_idle_us = 30ULL * 24 * 3600 * 1000000,
	};
}

void credstore_config_free(struct credstore_config *c)
{
	free(c->trust_dir);
	strv_free(c->vos);
	free(c->gridmap);
	free(c->pool_home);
	free(c->vo_dir);
	*c = (struct credstore_config){ 0 };
}

static int set_path(char **field, const char *v)
{
	char *s;

	if (v[0] != '/')
		return -EINVAL;
	s = strdup(v);
	if (!s)
		return -ENOMEM;
	free(*field);
	*field = s;
	return 0;
}

bool credstore_vo_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > CREDSTORE_VO_NAME_MAX ||
	    !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* "biomed, physics" */
static int set_vos(char ***field, const char *v)
{
	_cleanup_strv_free_ char **vos = calloc(1, sizeof(char *));
	_cleanup_free_ char *copy = strdup(v);
	char *save = NULL;

	if (!vos || !copy)
		return -ENOMEM;
	for (char *t = strtok_r(copy, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
		char *s;

		if (!credstore_vo_name_valid(t) || strv_length(vos) >= 256)
			return -EINVAL;
		s = strdup(t);
		if (!s || strv_push(&vos, s) < 0)
			return -ENOMEM;
	}
	strv_free(*field);
	*field = TAKE_PTR(vos);
	return 0;
}

/* "200000-209999" */
static int set_range(uid_t *min, uid_t *max, const char *v)
{
	_cleanup_free_ char *copy = strdup(v);
	char *dash;
	uid_t a, b;

	if (!copy)
		return -ENOMEM;
	if (!strcmp(v, "0") || !strcmp(v, "none")) {
		*min = *max = 0;
		return 0;
	}
	dash = strchr(copy, '-');
	if (!dash)
		return -EINVAL;
	*dash = 0;
	if (parse_uid(copy, &a) < 0 || parse_uid(dash + 1, &b) < 0 || a < 1000 || b < a ||
	    b - a > 1000000)
		return -EINVAL;
	*min = a;
	*max = b;
	return 0;
}

int credstore_config_set(struct credstore_config *c, const char *k, const char *v)
{
	if (!strcmp(k, "credential_trust_dir"))
		return set_path(&c->trust_dir, v);
	if (!strcmp(k, "credential_vos"))
		return set_vos(&c->vos, v);
	if (!strcmp(k, "credential_proxies"))
		return parse_bool(v, &c->proxies);
	if (!strcmp(k, "credential_crl_required"))
		return parse_bool(v, &c->crl_required);
	if (!strcmp(k, "credential_gridmap"))
		return set_path(&c->gridmap, v);
	if (!strcmp(k, "pool_uids"))
		return set_range(&c->pool_min, &c->pool_max, v);
	if (!strcmp(k, "pool_home"))
		return set_path(&c->pool_home, v);
	if (!strcmp(k, "vo_policy_dir"))
		return set_path(&c->vo_dir, v);
	if (!strcmp(k, "pool_idle"))
		return parse_duration(v, &c->pool_idle_us) < 0 || !c->pool_idle_us ? -EINVAL : 0;
	return -ENOKEY;
}

int credstore_config_finish(struct credstore_config *c)
{
	if (!c->trust_dir && !(c->trust_dir = strdup(XOS_SYSCONFDIR "/xos/trust.d")))
		return -ENOMEM;
	if (!c->gridmap && !(c->gridmap = strdup(XOS_SYSCONFDIR "/xos/grid-mapfile")))
		return -ENOMEM;
	if (!c->pool_home && !(c->pool_home = strdup("/home/xos")))
		return -ENOMEM;
	if (!c->vo_dir && !(c->vo_dir = strdup(XOS_SYSCONFDIR "/xos/vo.d")))
		return -ENOMEM;
	return 0;
}
