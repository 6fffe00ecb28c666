/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Columns of listings: relative times, job states, command lines. */
#include <inttypes.h>

#include "cli/cli.h"

#define REASON_WIDTH 24

int cli_format_relative(uint64_t now_us, uint64_t then_us, char *ret, size_t size)
{
	uint64_t s = now_us > then_us ? (now_us - then_us) / 1000000 : 0;
	int n;

	if (s < 60)
		n = snprintf(ret, size, "%" PRIu64 "s ago", s);
	else if (s < 3600)
		n = snprintf(ret, size, "%" PRIu64 "m ago", s / 60);
	else if (s < 86400)
		n = snprintf(ret, size, "%" PRIu64 "h ago", s / 3600);
	else
		n = snprintf(ret, size, "%" PRIu64 "d ago", s / 86400);
	return n < 0 || (size_t)n >= size ? -ENOBUFS : 0;
}

/* Copy s with control characters as '?', at most width bytes: longer text
 * ends in "..." and is never cut inside a UTF-8 sequence. */
static char *text_cut(const char *s, size_t width)
{
	size_t len = strlen(s), keep = len;
	char *out;

	if (len > width) {
		keep = width > 3 ? width - 3 : 0;
		while (keep > 0 && ((unsigned char)s[keep] & 0xc0) == 0x80)
			keep--;
	}
	out = malloc(keep + 4);
	if (!out)
		return NULL;
	for (size_t i = 0; i < keep; i++)
		out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	memcpy(out + keep, keep < len ? "..." : "", keep < len ? 4 : 1);
	return out;
}

int cli_format_state(const char *state, int code, int sig, const char *reason, char *ret,
		     size_t size)
{
	_cleanup_free_ char *why = NULL;
	char detail[32] = "";
	int n;

	if (strcmp(state, "EXITED") == 0 && code >= 0) {
		snprintf(detail, sizeof(detail), "(%d)", code);
	} else if (strcmp(state, "KILLED") == 0 && sig > 0) {
		const char *name = signal_name(sig);

		if (name)
			snprintf(detail, sizeof(detail), "(%s)", name);
		else
			snprintf(detail, sizeof(detail), "(%d)", sig);
	}
	if (reason && *reason) {
		/* (a queued job's reason says what it waits for: more of it) */
		why = text_cut(reason, strcmp(state, "QUEUED") ? REASON_WIDTH : 2 * REASON_WIDTH);
		if (!why)
			return -ENOMEM;
	}
	n = snprintf(ret, size, "%s%s%s%s", state, detail, why ? " " : "", why ? why : "");
	return n < 0 || (size_t)n >= size ? -ENOBUFS : 0;
}

int cli_format_job_state(yajl_val job, char *ret, size_t size)
{
	const char *state = cli_json_string(job, "state");
	int64_t code = -1, sig = 0;

	if (!state)
		state = "UNKNOWN";
	if (cli_json_int(job, "exit_code", &code) < 0 || code < 0 || code > 255)
		code = -1;
	if (cli_json_int(job, "signal", &sig) < 0 || sig < 0 || sig > 255)
		sig = 0;
	return cli_format_state(state, (int)code, (int)sig, cli_json_string(job, "reason"), ret,
				size);
}

char *cli_format_command(yajl_val argv, size_t width)
{
	_cleanup_free_ char *line = NULL;
	size_t len = 0;

	if (!YAJL_IS_ARRAY(argv))
		return strdup("");
	for (size_t i = 0; i < argv->u.array.len; i++) {
		const char *a = YAJL_GET_STRING(argv->u.array.values[i]);
		size_t n = a ? strlen(a) : 0;
		char *p = realloc(line, len + n + 2);

		if (!p)
			return NULL;
		line = p;
		if (len > 0)
			line[len++] = ' ';
		memcpy(line + len, a ? a : "", n);
		len += n;
		line[len] = '\0';
		if (len > width) /* the rest is cut anyway */
			break;
	}
	return text_cut(line ? line : "", width);
}

int cli_format_size(uint64_t bytes, char *ret, size_t size)
{
	static const char units[] = "KMGTPE";
	double v = (double)bytes;
	uint64_t div = 1;
	int u = -1, r;

	while (u < 5 && bytes / div >= 1024) {
		div *= 1024;
		u++;
	}
	if (u < 0)
		r = snprintf(ret, size, "%" PRIu64 "B", bytes);
	else if (bytes % div == 0 || v / (double)div >= 10)
		r = snprintf(ret, size, "%.0f%c", v / (double)div, units[u]);
	else
		r = snprintf(ret, size, "%.1f%c", v / (double)div, units[u]);
	return r < 0 || (size_t)r >= size ? -ENOBUFS : 0;
}
