/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One way for an error to travel, in every module (crun's libcrun_error_t is
 * the model): a function that can fail returns -errno and, when the caller
 * gave it a struct xerr, fills it with a code of the client protocol and a
 * message for the user. Helpers never answer a client themselves; the one
 * place that does (xosd's request dispatcher) turns the error into the reply.
 * A function that gets an error from a callee passes it up as it is, or adds
 * its context in front (xerr_prefix). */
#ifndef XOS_COMMON_ERROR_H
#define XOS_COMMON_ERROR_H

#include <stdbool.h>

struct xerr {
	int error;        /* -errno (0: none set) */
	const char *code; /* the protocol's error code ("not_found"); static text */
	char *msg;        /* for the user: capitalised, no trailing period (NULL: none) */
};

#define XERR_INIT             \
	{                     \
		0, NULL, NULL \
	}

/* Set err (may be NULL) to error, code (NULL: the code of error, see
 * xerr_code_of) and the formatted message, replacing what it held. Returns
 * error (< 0), so that a helper can `return xerr_set(err, -EINVAL, ...)`. */
int xerr_set(struct xerr *err, int error, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The same with a message taken as it is (msg NULL: strerror(-error)). */
int xerr_set_msg(struct xerr *err, int error, const char *code, const char *msg);
/* Put "prefix" (formatted) in front of err's message ("Restart failed: " +
 * "No such file"); err's error and code stay. Returns err->error. */
int xerr_prefix(struct xerr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Whether err holds an error. */
bool xerr_is_set(const struct xerr *err);
/* What a client is told: err's code, else the code of its error. */
const char *xerr_code(const struct xerr *err);
/* ... and its message, else strerror of its error (never NULL). */
const char *xerr_message(const struct xerr *err);
/* Empty err again (frees the message); accepts NULL. */
void xerr_clear(struct xerr *err);
/* Move src's error into dst (dst cleared first, src emptied); returns the error. */
int xerr_move(struct xerr *dst, struct xerr *src);
#define _cleanup_xerr_ __attribute__((cleanup(xerr_clear)))

/* The protocol's code for -errno e when a helper gave none ("internal" for
 * everything without a code of its own; docs/PROTOCOL.md lists the codes). */
const char *xerr_code_of(int e);

#endif
