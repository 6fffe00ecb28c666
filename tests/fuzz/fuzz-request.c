/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: a request line as xosd reads it from a client
 * (ops_handle, the function client.c calls on each line: JSON parsing, the
 * protocol version, the operation and its field check).
 *
 * Each input goes through ops_handle twice, on a daemon with no jobs:
 * 1. on a connection attached to an ended job: every operation is parsed
 *    and checked, and only 'signal' runs (harmless: the job is not live);
 * 2. on a fresh connection, if the operation only reads or looks up jobs
 *    (no 'run', no template operation): its handler decodes its fields too. */
#include <yajl/yajl_tree.h>

#include "runtime/runtime-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* operations whose handlers start nothing on a daemon without jobs */
static const char *const safe_ops[] = { "ps",         "wait",        "kill",
					"logs",       "signal",      "version",
					"checkpoint", "checkpoints", "checkpoint_delete",
					"restart",    NULL };

static bool is_safe(const char *line)
{
	_cleanup_json_ yajl_val t = NULL;
	const char *op = NULL;

	/* (bounded as xosd bounds it: yajl recurses while it parses and frees) */
	if (json_parse(line, JSON_DEPTH_MAX, NULL, 0, &t) < 0 || json_get_string(t, "op", &op) < 0)
		return false;
	for (const char *const *s = safe_ops; *s; s++)
		if (!strcmp(*s, op))
			return true;
	return false;
}

static void conn_done(struct conn *c)
{
	free(c->out);
	strv_free(c->wait_ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct daemon d = DAEMON_EMPTY;
	struct job *ended = job_new();
	_cleanup_free_ char *line = NULL;
	struct conn c;

	if (!ended || size > XOS_REQUEST_MAX)
		goto out;
	/* as client.c hands it over: the line without its newline, NUL-terminated */
	line = malloc(size + 1);
	if (!line)
		goto out;
	memcpy(line, data, size);
	line[size] = 0;

	ended->state = JOB_EXITED;
	c = (struct conn){ .fd = -EBADF,
			   .mode = CONN_ATTACHED,
			   .follow = true,
			   .job = ended,
			   .unit = 1,
			   .out_fd = -EBADF,
			   .err_fd = -EBADF,
			   .passed_fd = -EBADF };
	ops_handle(&d, &c, line, size);
	conn_done(&c);

	if (strlen(line) == size && is_safe(line)) {
		c = (struct conn){ .fd = -EBADF,
				   .mode = CONN_REQUEST,
				   .out_fd = -EBADF,
				   .err_fd = -EBADF,
				   .passed_fd = -EBADF };
		ops_handle(&d, &c, line, size);
		conn_done(&c);
	}
out:
	job_free(ended);
	return 0;
}
