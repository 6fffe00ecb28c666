/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit end status: the <N>.status file and the notify message. Pure code:
 * no I/O, no logging, no libseccomp/libcap (the daemon links this too). */
#include <inttypes.h>
#include <sys/wait.h>

#include "loader/loader.h"

static const char *const state_names[_LOADER_STATE_MAX] = {
	[LOADER_STATE_EXITED] = "exited",
	[LOADER_STATE_KILLED] = "killed",
	[LOADER_STATE_FAILED] = "failed",
};

const char *loader_state_to_string(enum loader_state s)
{
	if (s < 0 || s >= _LOADER_STATE_MAX)
		return NULL;
	return state_names[s];
}

enum loader_state loader_state_from_string(const char *s)
{
	for (int i = 0; i < _LOADER_STATE_MAX; i++)
		if (s && strcmp(s, state_names[i]) == 0)
			return (enum loader_state)i;
	return _LOADER_STATE_INVALID;
}

void loader_status_set_wait(struct loader_status *st, int wstatus)
{
	if (WIFSIGNALED(wstatus)) {
		st->state = LOADER_STATE_KILLED;
		st->code = 0;
		st->signal = WTERMSIG(wstatus);
	} else {
		st->state = LOADER_STATE_EXITED;
		st->code = WEXITSTATUS(wstatus);
		st->signal = 0;
	}
}

/* reason without control characters (one line), bounded by the array size */
static void reason_clean(const char *in, char out[LOADER_REASON_MAX])
{
	size_t i;

	for (i = 0; i < LOADER_REASON_MAX - 1 && in[i]; i++)
		out[i] = ((unsigned char)in[i] < 0x20 || in[i] == 0x7f) ? ' ' : in[i];
	out[i] = 0;
}

int loader_status_format(const struct loader_status *st, char **ret, size_t *ret_len)
{
	const char *state = loader_state_to_string(st->state);
	char reason[LOADER_REASON_MAX];
	char *s = NULL;
	int n;

	if (!state || !job_id_valid(st->job) || st->unit < 1 || st->unit > LOADER_UNIT_MAX)
		return -EINVAL;
	reason_clean(st->reason, reason);
	n = asprintf(&s,
		     "job=%s\nunit=%u\nstate=%s\ncode=%d\nsignal=%d\nreason=%s\n"
		     "utime_us=%" PRIu64 "\nstime_us=%" PRIu64 "\nmaxrss_kb=%" PRIu64 "\n"
		     "started_us=%" PRIu64 "\nended_us=%" PRIu64 "\nremaining=%u\n",
		     st->job, st->unit, state, st->code, st->signal, reason, st->utime_us,
		     st->stime_us, st->maxrss_kb, st->started_us, st->ended_us, st->remaining);
	if (n < 0)
		return -ENOMEM;
	*ret = s;
	*ret_len = (size_t)n;
	return 0;
}

enum status_key {
	SK_JOB,
	SK_UNIT,
	SK_STATE,
	SK_CODE,
	SK_SIGNAL,
	SK_REASON,
	SK_UTIME,
	SK_STIME,
	SK_MAXRSS,
	SK_STARTED,
	SK_ENDED,
	SK_REMAINING,
	_SK_MAX,
};

static const char *const status_keys[_SK_MAX] = {
	"job",      "unit",     "state",     "code",       "signal",   "reason",
	"utime_us", "stime_us", "maxrss_kb", "started_us", "ended_us", "remaining",
};

static int parse_small(const char *v, uint64_t max, uint64_t *ret)
{
	if (parse_uint64(v, ret) < 0 || *ret > max)
		return -EINVAL;
	return 0;
}

static int status_set(struct loader_status *st, int key, const char *v)
{
	uint64_t n = 0;

	switch (key) {
	case SK_JOB:
		if (!job_id_valid(v))
			return -EINVAL;
		memcpy(st->job, v, XOS_JOB_ID_HEX + 1);
		return 0;
	case SK_STATE:
		st->state = loader_state_from_string(v);
		return st->state < 0 ? -EINVAL : 0;
	case SK_REASON:
		if (strlen(v) >= LOADER_REASON_MAX)
			return -EINVAL;
		reason_clean(v, st->reason);
		return 0;
	case SK_UNIT:
		if (parse_small(v, LOADER_UNIT_MAX, &n) < 0 || n < 1)
			return -EINVAL;
		st->unit = (unsigned)n;
		return 0;
	case SK_CODE:
	case SK_SIGNAL:
		if (parse_small(v, 255, &n) < 0)
			return -EINVAL;
		*(key == SK_CODE ? &st->code : &st->signal) = (int)n;
		return 0;
	case SK_REMAINING:
		if (parse_small(v, LOADER_UNIT_MAX, &n) < 0)
			return -EINVAL;
		st->remaining = (unsigned)n;
		return 0;
	}
	uint64_t *const fields[_SK_MAX] = {
		[SK_UTIME] = &st->utime_us,   [SK_STIME] = &st->stime_us,
		[SK_MAXRSS] = &st->maxrss_kb, [SK_STARTED] = &st->started_us,
		[SK_ENDED] = &st->ended_us,
	};

	if (key < 0 || key >= _SK_MAX || !fields[key] || parse_uint64(v, &n) < 0)
		return -EINVAL;
	*fields[key] = n;
	return 0;
}

int loader_status_parse(const char *text, size_t len, struct loader_status *ret)
{
	struct loader_status st = { 0 };
	const char *p = text, *end = text + len;
	char line[LOADER_REASON_MAX + 16];

	for (int k = 0; k < _SK_MAX; k++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t kl = strlen(status_keys[k]), l;

		if (!nl)
			return -EINVAL;
		l = (size_t)(nl - p);
		if (l >= sizeof(line) || l <= kl || memcmp(p, status_keys[k], kl) != 0 ||
		    p[kl] != '=' || memchr(p, 0, l))
			return -EINVAL;
		memcpy(line, p + kl + 1, l - kl - 1);
		line[l - kl - 1] = 0;
		if (k != SK_REASON && line[0] == 0)
			return -EINVAL;
		if (status_set(&st, k, line) < 0)
			return -EINVAL;
		p = nl + 1;
	}
	if (p != end && !(end - p == 1 && *p == '\n'))
		return -EINVAL;
	*ret = st;
	return 0;
}
