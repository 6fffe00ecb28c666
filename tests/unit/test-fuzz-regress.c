/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Inputs the fuzz targets of tests/fuzz found to crash or leak, each checked
 * here once fixed (the inputs are also in tests/fuzz/corpus/, which the
 * short fuzz run of `make check` replays). Leaks are measured with
 * mallinfo2 in the plain build; the sanitizer build's LeakSanitizer sees
 * them too. */
#include <malloc.h>
#include <yajl/yajl_gen.h>

#include "runtime/runtime-internal.h"
#include "tests/unit/tap.h"

static size_t in_use(void)
{
	return mallinfo2().uordblks;
}

/* fuzz-job: a unit without a state (a record damaged on disk) leaked its
 * argv when job_from_json refused the record */
static void test_job_unit_without_state(void)
{
	static const char rec[] =
		"{\"id\":\"27ad33db81758827\",\"state\":\"EXITED\",\"units\":[{\"unit\":1,"
		"\"argv\":[\"sh\",\"-c\",\"echo hi; exit 3\"],\"stat`\":\"EXITED\"}]}";
	struct job *j = NULL;
	size_t before, after;
	int r;

	/* warm up (what the C library sets up once) before measuring */
	for (int i = 0; i < 10; i++)
		r = job_from_json(rec, &j);
	before = in_use();
	for (int i = 0; i < 1000; i++)
		r = job_from_json(rec, &j);
	after = in_use();
	ok(r == -EINVAL, "fuzz-job: a record whose unit has no state is refused (%d)", r);
	ok(after <= before, "fuzz-job: ... without leaking its argv (%zu bytes more in use)",
	   after > before ? after - before : 0);
}

static char *record_json(const struct job *j)
{
	_cleanup_gen_ yajl_gen g = yajl_gen_alloc(NULL);

	if (!g)
		return NULL;
	job_to_json(j, g);
	return json_gen_take(g, false);
}

/* fuzz-job: a KILLED job whose first unit EXITED with a "signal" (347) was
 * written back with the job's signal 347 and the unit's null, so the record
 * read back changed (the job's signal became 0) */
static void test_job_signal_of_exited_unit(void)
{
	static const char rec[] =
		"{\"id\":\"58ae801dbc1b71a7\",\"state\":\"KILLED\",\"units\":[{\"unit\":1,"
		"\"argv\":[\"sleep\",\"30\"],\"state\":\"EXITED\",\"code\":0,\"signal\":347}]}";
	struct job *j = NULL, *j2 = NULL;
	_cleanup_free_ char *out = NULL, *out2 = NULL;

	ok(job_from_json(rec, &j) == 0,
	   "fuzz-job: a KILLED job whose unit EXITED with a signal is read");
	out = j ? record_json(j) : NULL;
	ok(out && job_from_json(out, &j2) == 0, "fuzz-job: ... written back, it is read again");
	out2 = j2 ? record_json(j2) : NULL;
	ok(out && out2 && !strcmp(out, out2), "fuzz-job: ... and written back the same");
	ok(out && !strstr(out, "347"), "fuzz-job: ... without the signal no signal ended");
	job_free(j);
	job_free(j2);
}

int main(void)
{
	test_job_unit_without_state();
	test_job_signal_of_exited_unit();
	return tap_done();
}
