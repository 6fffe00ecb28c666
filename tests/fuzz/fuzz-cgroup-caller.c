/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: a caller's /proc/PID/cgroup (cgroup names below a
 * delegated cgroup are the user's to choose), parsed for cgroup_parent =
 * caller (runtime_cgroup_caller_parse), the path it gives checked for a
 * Slurm step's shape and turned into LXC's paths. A path it accepts has no
 * leading '/' and no "..". */
#include "common/common.h"
#include "runtime/runtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_free_ char *text = strndup((const char *)data, size);
	struct runtime_cgroup_paths p;

	if (!text)
		return 0;
	for (int v2 = 0; v2 <= 1; v2++) {
		_cleanup_free_ char *hier = NULL, *path = NULL;

		if (runtime_cgroup_caller_parse(text, v2, &hier, &path) < 0)
			continue;
		if (path[0] == '/' || strstr(path, ".."))
			abort();
		(void)runtime_cgroup_is_slurm_step(path, v2, 1000);
		(void)runtime_cgroup_paths(path, "xos-0123456789abcdef", &p);
	}
	return 0;
}
