/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* struct xerr: one convention for errors (common/error.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

static int set_taken(struct xerr *err, int error, const char *code, char *msg)
{
	if (error >= 0)
		error = -EINVAL; /* (a caller's slip: never report success as an error) */
	if (!err) {
		free(msg);
		return error;
	}
	free(err->msg);
	err->error = error;
	err->code = code;
	err->msg = msg;
	return error;
}

int xerr_set(struct xerr *err, int error, const char *code, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;

	if (!err)
		return error < 0 ? error : -EINVAL;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	return set_taken(err, error, code, msg);
}

int xerr_set_msg(struct xerr *err, int error, const char *code, const char *msg)
{
	if (!err)
		return error < 0 ? error : -EINVAL;
	return set_taken(err, error, code, msg ? strdup(msg) : NULL);
}

int xerr_prefix(struct xerr *err, const char *fmt, ...)
{
	char *pre = NULL, *msg = NULL;
	va_list ap;

	if (!err)
		return -EINVAL;
	va_start(ap, fmt);
	if (vasprintf(&pre, fmt, ap) < 0)
		pre = NULL;
	va_end(ap);
	if (pre && asprintf(&msg, "%s%s", pre, xerr_message(err)) < 0)
		msg = NULL;
	free(pre);
	if (msg) {
		free(err->msg);
		err->msg = msg;
	}
	return err->error;
}

bool xerr_is_set(const struct xerr *err)
{
	return err && err->error < 0;
}

const char *xerr_code_of(int e)
{
	switch (e) {
	case -ENOENT:
		return "not_found";
	case -EPERM:
	case -EACCES:
		return "permission_denied";
	case -EINVAL:
		return "invalid_argument";
	case -EBUSY:
	case -EEXIST:
	case -EADDRINUSE:
		return "conflict";
	case -EOPNOTSUPP:
		return "not_supported";
	case -EDQUOT:
		return "quota_exceeded";
	case -ENOSPC:
		return "no_space";
	default:
		return "internal";
	}
}

const char *xerr_code(const struct xerr *err)
{
	if (!err)
		return "internal";
	return err->code ? err->code : xerr_code_of(err->error);
}

const char *xerr_message(const struct xerr *err)
{
	if (!err)
		return "Unknown error";
	if (err->msg)
		return err->msg;
	if (err->error >= 0)
		return "Unknown error";
	/* (no message: out of memory while formatting it, or none given) */
	return err->error == -ENOMEM ? "Out of memory" : strerror(-err->error);
}

void xerr_clear(struct xerr *err)
{
	int saved = errno;

	if (!err)
		return;
	free(err->msg);
	*err = (struct xerr)XERR_INIT;
	errno = saved;
}

int xerr_move(struct xerr *dst, struct xerr *src)
{
	int r = src->error;

	xerr_clear(dst);
	*dst = *src;
	*src = (struct xerr)XERR_INIT;
	return r;
}
