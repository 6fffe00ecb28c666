/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* struct xerr, the one error convention (common/error.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "tests/unit/tap.h"

static int helper_fails(struct xerr *err, const char *what)
{
	return xerr_set(err, -ENOENT, NULL, "No such job: %s", what);
}

static int caller_adds_context(struct xerr *err)
{
	int r = helper_fails(err, "abc");

	if (r < 0)
		return xerr_prefix(err, "Restart of job %s failed: ", "abc");
	return 0;
}

static void test_set(void)
{
	_cleanup_xerr_ struct xerr err = XERR_INIT;

	ok(!xerr_is_set(&err) && !xerr_is_set(NULL), "an empty error is not set");
	ok(!strcmp(xerr_code(&err), "internal") && !strcmp(xerr_message(&err), "Unknown error"),
	   "an empty error still reads as one (never NULL)");
	ok(helper_fails(&err, "x1") == -ENOENT, "xerr_set returns the error");
	ok(xerr_is_set(&err) && err.error == -ENOENT, "and holds it");
	ok(!strcmp(xerr_code(&err), "not_found"), "no code given: the errno's (%s)",
	   xerr_code(&err));
	ok(!strcmp(xerr_message(&err), "No such job: x1"), "the message: %s", xerr_message(&err));
	ok(xerr_set(&err, -EBUSY, "conflict", "Job %s is busy", "y") == -EBUSY &&
		   !strcmp(err.code, "conflict") && !strcmp(err.msg, "Job y is busy"),
	   "a second set replaces the first (no leak under the sanitizer)");
	ok(xerr_set(NULL, -EPERM, "permission_denied", "%s", "ignored") == -EPERM,
	   "a NULL error: the return value alone");
	ok(xerr_set(&err, 0, NULL, "slip") == -EINVAL && err.error == -EINVAL,
	   "success is never recorded as an error");
}

static void test_msg_and_prefix(void)
{
	_cleanup_xerr_ struct xerr err = XERR_INIT, other = XERR_INIT;

	ok(xerr_set_msg(&err, -EACCES, NULL, NULL) == -EACCES &&
		   !strcmp(xerr_message(&err), strerror(EACCES)) &&
		   !strcmp(xerr_code(&err), "permission_denied"),
	   "no message: strerror, code from the errno");
	ok(xerr_set_msg(&err, -ENOMEM, NULL, NULL) == -ENOMEM &&
		   !strcmp(xerr_message(&err), "Out of memory"),
	   "-ENOMEM without message: Out of memory");
	xerr_clear(&err);
	ok(caller_adds_context(&err) == -ENOENT, "a caller passes the callee's error up");
	ok(!strcmp(xerr_message(&err), "Restart of job abc failed: No such job: abc"),
	   "with its context in front: %s", xerr_message(&err));
	ok(!strcmp(xerr_code(&err), "not_found"), "the code stays");
	ok(xerr_move(&other, &err) == -ENOENT && !xerr_is_set(&err) && xerr_is_set(&other) &&
		   !strcmp(other.msg, "Restart of job abc failed: No such job: abc"),
	   "xerr_move hands it on and empties the source");
	xerr_clear(&other);
	xerr_clear(&other);
	xerr_clear(NULL);
	ok(!xerr_is_set(&other) && !other.msg, "xerr_clear twice and on NULL: harmless");
}

static void test_codes(void)
{
	static const struct {
		int e;
		const char *code;
	} t[] = {
		{ -ENOENT, "not_found" },         { -EPERM, "permission_denied" },
		{ -EACCES, "permission_denied" }, { -EINVAL, "invalid_argument" },
		{ -EBUSY, "conflict" },           { -EADDRINUSE, "conflict" },
		{ -EOPNOTSUPP, "not_supported" }, { -EDQUOT, "quota_exceeded" },
		{ -ENOSPC, "no_space" },          { -EIO, "internal" },
		{ -ENOMEM, "internal" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		ok(!strcmp(xerr_code_of(t[i].e), t[i].code), "%s: %s", strerror(-t[i].e),
		   t[i].code);
}

int main(void)
{
	test_set();
	test_msg_and_prefix();
	test_codes();
	return tap_done();
}
