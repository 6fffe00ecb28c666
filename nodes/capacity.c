/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A node's free capacity and what it runs on, for hello and status messages. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/utsname.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "common/common.h"
#include "nodes/nodes.h"

/* "Key:   N kB" of /proc/meminfo, in bytes. */
static int meminfo_value(const char *text, const char *key, uint64_t *ret)
{
	const char *p = strstr(text, key);
	uint64_t v = 0;

	if (!p || (p != text && p[-1] != '\n'))
		return -ENOENT;
	p += strlen(key);
	p += strspn(p, " \t");
	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++)
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *p - '0', &v))
			return -ERANGE;
	*ret = v * 1024;
	return 0;
}

static void copy_clean(char *dst, size_t size, const char *src, size_t len)
{
	size_t n = len < size - 1 ? len : size - 1;

	for (size_t i = 0; i < n; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
	dst[n] = 0;
}

static void cpu_model(char *buf, size_t size)
{
	_cleanup_free_ char *text = NULL;
	const char *p, *e;

	snprintf(buf, size, "unknown");
	if (read_file_at(AT_FDCWD, "/proc/cpuinfo", 4 << 20, &text, NULL) < 0)
		return;
	p = strstr(text, "model name");
	if (!p)
		return;
	p = strchr(p, ':');
	if (!p)
		return;
	p += 1 + strspn(p + 1, " \t");
	e = p + strcspn(p, "\n");
	copy_clean(buf, size, p, (size_t)(e - p));
}

/* Tasks there are: the numeric entries of /proc (processes; their threads
 * count too against pid_max, but a walk of every task costs too much). */
static uint64_t count_tasks(void)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	uint64_t n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		n += de->d_name[0] >= '1' && de->d_name[0] <= '9';
	closedir(d);
	return n;
}

/* A sysctl answers only a read from offset 0: one read() of it. */
static int read_sysctl_u64(const char *path, uint64_t *ret)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	char buf[64];
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return n < 0 ? -errno : -EINVAL;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return parse_uint64(buf, ret);
}

int nodes_capacity_local(struct nodes_capacity *cap)
{
	_cleanup_free_ char *mem = NULL;
	struct utsname u;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int r;

	if ((r = read_file_at(AT_FDCWD, "/proc/meminfo", 1 << 20, &mem, NULL)) < 0)
		return r;
	(void)meminfo_value(mem, "MemTotal:", &cap->mem_total);
	(void)meminfo_value(mem, "MemAvailable:", &cap->mem_available);
	cap->cpus = cpus > 0 ? (uint32_t)cpus : 0;
	if (read_sysctl_u64("/proc/sys/kernel/pid_max", &cap->pids_max) >= 0) {
		uint64_t used = count_tasks();

		cap->pids_free = used < cap->pids_max ? cap->pids_max - used : 0;
	}
	cpu_model(cap->cpu_model, sizeof(cap->cpu_model));
	if (uname(&u) == 0) {
		copy_clean(cap->kernel, sizeof(cap->kernel), u.release, strlen(u.release));
		copy_clean(cap->arch, sizeof(cap->arch), u.machine, strlen(u.machine));
	}
	return 0;
}

void nodes_capacity_to_json(const struct nodes_capacity *cap, struct yajl_gen_t *g)
{
	yajl_gen_map_open(g);
	json_gen_kv_uint(g, "mem_total", cap->mem_total);
	json_gen_kv_uint(g, "mem_available", cap->mem_available);
	json_gen_kv_uint(g, "cpus", cap->cpus);
	json_gen_kv_uint(g, "pids_max", cap->pids_max);
	json_gen_kv_uint(g, "pids_free", cap->pids_free);
	json_gen_kv_uint(g, "jobs", cap->jobs);
	json_gen_kv_uint(g, "job_slots", cap->job_slots);
	json_gen_kv_str(g, "cpu_model", cap->cpu_model);
	json_gen_kv_str(g, "kernel", cap->kernel);
	json_gen_kv_str(g, "arch", cap->arch);
	yajl_gen_map_close(g);
}

static void get_str(yajl_val obj, const char *key, char *buf, size_t size)
{
	const char *s = NULL;

	if (json_get_string(obj, key, &s) < 0 || !s)
		s = "";
	copy_clean(buf, size, s, strlen(s));
}

int nodes_capacity_from_json(yajl_val obj, struct nodes_capacity *ret)
{
	struct nodes_capacity c = { 0 };
	uint64_t cpus = 0;

	if (!YAJL_IS_OBJECT(obj))
		return -EBADMSG;
	/* absent figures stay 0; a figure of the wrong type is a bad message */
	if ((json_get_uint(obj, "mem_total", &c.mem_total) == -EINVAL) ||
	    (json_get_uint(obj, "mem_available", &c.mem_available) == -EINVAL) ||
	    (json_get_uint(obj, "cpus", &cpus) == -EINVAL) || cpus > UINT32_MAX ||
	    (json_get_uint(obj, "pids_max", &c.pids_max) == -EINVAL) ||
	    (json_get_uint(obj, "pids_free", &c.pids_free) == -EINVAL) ||
	    (json_get_uint(obj, "jobs", &c.jobs) == -EINVAL) ||
	    (json_get_uint(obj, "job_slots", &c.job_slots) == -EINVAL))
		return -EBADMSG;
	c.cpus = (uint32_t)cpus;
	get_str(obj, "cpu_model", c.cpu_model, sizeof(c.cpu_model));
	get_str(obj, "kernel", c.kernel, sizeof(c.kernel));
	get_str(obj, "arch", c.arch, sizeof(c.arch));
	*ret = c;
	return 0;
}
