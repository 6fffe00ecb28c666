/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: a job record, <state>/jobs/<id>/job.json, as xosd reads it
 * at start (job_from_json). A record it accepts is written back
 * (job_to_json) and read again: the second reading must accept it and give
 * the same record. */
#include <yajl/yajl_gen.h>

#include "runtime/runtime-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *to_json(const struct job *j)
{
	_cleanup_gen_ yajl_gen g = yajl_gen_alloc(NULL);

	if (!g)
		return NULL;
	job_to_json(j, g);
	return json_gen_take(g, false);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_free_ char *text = malloc(size + 1), *out = NULL, *out2 = NULL;
	struct job *j = NULL, *j2 = NULL;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0; /* read_file_at gives a NUL-terminated text */
	if (job_from_json(text, &j) < 0)
		return 0;
	out = to_json(j);
	if (!out)
		abort();
	if (job_from_json(out, &j2) < 0) {
		fprintf(stderr, "a record written back is refused:\n%s\n", out);
		abort();
	}
	out2 = to_json(j2);
	if (!out2 || strcmp(out, out2) != 0) {
		fprintf(stderr, "written back twice, the record changed:\n%s\n%s\n", out,
			out2 ? out2 : "(null)");
		abort();
	}
	job_free(j);
	job_free(j2);
	return 0;
}
