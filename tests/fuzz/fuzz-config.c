/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: xosd.conf (runtime_config_load, which reads a path: the
 * input is handed over as a memfd through /proc/self/fd), then
 * runtime_config_finish as xosd does after a good load. */
#include <sys/mman.h>

#include "common/common.h"
#include "runtime/runtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct runtime_config cfg;
	_cleanup_close_ int fd = memfd_create("xosd.conf", MFD_CLOEXEC);
	_cleanup_free_ char *err = NULL;
	char path[64];

	if (fd < 0 || loop_write(fd, data, size) != (ssize_t)size)
		abort(); /* the harness, not the parser */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	runtime_config_init(&cfg);
	if (runtime_config_load(&cfg, path, &err) >= 0)
		(void)runtime_config_finish(&cfg);
	runtime_config_free(&cfg);
	return 0;
}
