/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Inputs the fuzz targets of tests/fuzz found to crash or leak, each checked
 * here once fixed (the inputs are also in tests/fuzz/corpus/, which the
 * short fuzz run of `make check` replays). Leaks are measured with
 * mallinfo2 in the plain build; the sanitizer build's LeakSanitizer sees
 * them too. */
#include <malloc.h>

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

int main(void)
{
	test_job_unit_without_state();
	return tap_done();
}
