/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Strings, number parsing, ids, logging and time. */
#include <ctype.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "common/common.h"

static const char *log_ident = "xos";
static enum log_level log_max = LOG_LVL_INFO;
static bool log_timestamps;
static dev_t journal_dev;
static ino_t journal_ino;

void log_setup(const char *ident, enum log_level max, bool timestamps)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;

	log_ident = ident;
	log_max = max;
	log_timestamps = timestamps;
	/* systemd(1) names the journal stream it connected to stderr */
	if (js && sscanf(js, "%llu:%llu", &dev, &ino) == 2) {
		journal_dev = (dev_t)dev;
		journal_ino = (ino_t)ino;
	}
}

/* stderr is the journal's stream (still: a daemon may have redirected it
 * since): its lines then carry a syslog priority prefix and no timestamp. */
static bool log_to_journal(void)
{
	struct stat st;

	return journal_ino != 0 && fstat(STDERR_FILENO, &st) == 0 && st.st_dev == journal_dev &&
	       st.st_ino == journal_ino;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	int saved = errno;
	char buf[2048];
	char ts[96] = "";
	va_list ap;

	if (lvl > log_max)
		return;
	va_start(ap, fmt);
	errno = saved; /* keep %m working */
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (log_to_journal()) {
		static const int prio[] = { 3, 4, 6, 7 }; /* err, warning, info, debug */

		snprintf(ts, sizeof(ts), "<%d>", prio[lvl]);
	} else if (log_timestamps) {
		struct timespec t;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &t);
		gmtime_r(&t.tv_sec, &tm);
		snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 t.tv_nsec / 1000000);
	}
	fprintf(stderr, "%s%s: %s\n", ts, log_ident, buf);
	errno = saved;
}

char *xstrdup_printf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	return r < 0 ? NULL : s;
}

void strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

size_t strv_length(char *const *v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}

char **strv_copy(char *const *v)
{
	size_t n = strv_length(v);
	char **c = calloc(n + 1, sizeof(char *));

	if (!c)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		c[i] = strdup(v[i]);
		if (!c[i]) {
			strv_free(c);
			return NULL;
		}
	}
	return c;
}

int strv_push(char ***v, char *s)
{
	size_t n = strv_length(*v);
	char **nv;

	if (!s)
		return -ENOMEM;
	nv = realloc(*v, (n + 2) * sizeof(char *));
	if (!nv) {
		free(s);
		return -ENOMEM;
	}
	nv[n] = s;
	nv[n + 1] = NULL;
	*v = nv;
	return 0;
}

bool str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The decimal number s starts with (a digit first: no sign, no space) and
 * where it ends; -EINVAL, -ERANGE. */
static int leading_u64(const char *s, unsigned long long *ret, char **ret_end)
{
	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	*ret = strtoull(s, ret_end, 10);
	return errno ? -errno : 0;
}

int parse_uint64(const char *s, uint64_t *ret)
{
	char *end = NULL;
	unsigned long long v;
	int r = leading_u64(s, &v, &end);

	if (r < 0)
		return r == -ERANGE ? r : -EINVAL;
	if (*end)
		return -EINVAL;
	*ret = v;
	return 0;
}

int parse_int(const char *s, int *ret)
{
	char *end = NULL;
	long v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno == ERANGE || v > INT32_MAX || v < INT32_MIN)
		return -ERANGE;
	if (errno || end == s || *end)
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

int parse_uid(const char *s, uid_t *ret)
{
	uint64_t v;
	int r = parse_uint64(s, &v);

	if (r < 0)
		return r;
	if (v >= UINT32_MAX) /* (uid_t)-1 is invalid */
		return -ERANGE;
	*ret = (uid_t)v;
	return 0;
}

int parse_duration(const char *s, uint64_t *ret_us)
{
	static const struct {
		const char *suffix;
		uint64_t us;
	} units[] = { { "ms", 1000ULL },    { "s", 1000000ULL },    { "", 1000000ULL },
		      { "m", 60000000ULL }, { "h", 3600000000ULL }, { "d", 86400000000ULL } };
	char *end = NULL;
	unsigned long long v;
	int r = leading_u64(s, &v, &end);

	if (r < 0)
		return r;
	for (size_t i = 0; i < ELEMENTSOF(units); i++)
		if (!strcmp(end, units[i].suffix)) {
			if (v > UINT64_MAX / units[i].us)
				return -ERANGE;
			*ret_us = v * units[i].us;
			return 0;
		}
	return -EINVAL;
}

int parse_size(const char *s, uint64_t *ret)
{
	char *end = NULL;
	unsigned long long v;
	uint64_t mul = 1;
	int r = leading_u64(s, &v, &end);

	if (r < 0)
		return r;
	if (*end) {
		switch (toupper((unsigned char)*end)) {
		case 'K':
			mul = 1ULL << 10;
			break;
		case 'M':
			mul = 1ULL << 20;
			break;
		case 'G':
			mul = 1ULL << 30;
			break;
		case 'T':
			mul = 1ULL << 40;
			break;
		default:
			return -EINVAL;
		}
		end++;
		if (*end == 'i' || *end == 'I')
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
		if (*end)
			return -EINVAL;
	}
	if (v > UINT64_MAX / mul)
		return -ERANGE;
	*ret = v * mul;
	return 0;
}

int parse_cpus(const char *s, uint64_t *ret_millicpus)
{
	uint64_t whole = 0, frac = 0;
	int digits = 0;
	const char *p = s;

	if (!s || !*s)
		return -EINVAL;
	if (!isdigit((unsigned char)*p) && *p != '.')
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		whole = whole * 10 + (uint64_t)(*p - '0');
		if (whole > 1024)
			return -ERANGE;
	}
	if (*p == '.') {
		p++;
		for (; isdigit((unsigned char)*p); p++, digits++) {
			if (digits < 3)
				frac = frac * 10 + (uint64_t)(*p - '0');
			else if (*p != '0')
				return -EINVAL; /* finer than 1/1000 CPU */
		}
		for (int d = digits; d < 3; d++)
			frac *= 10;
	}
	if (*p || p == s || (p == s + 1 && *s == '.'))
		return -EINVAL;
	whole = whole * 1000 + frac;
	if (whole == 0 || whole > 1024 * 1000)
		return -ERANGE;
	*ret_millicpus = whole;
	return 0;
}

static const struct {
	const char *name;
	int sig;
} signals[] = {
	{ "HUP", SIGHUP },   { "INT", SIGINT },       { "QUIT", SIGQUIT }, { "ILL", SIGILL },
	{ "TRAP", SIGTRAP }, { "ABRT", SIGABRT },     { "BUS", SIGBUS },   { "FPE", SIGFPE },
	{ "KILL", SIGKILL }, { "USR1", SIGUSR1 },     { "SEGV", SIGSEGV }, { "USR2", SIGUSR2 },
	{ "PIPE", SIGPIPE }, { "ALRM", SIGALRM },     { "TERM", SIGTERM }, { "STKFLT", SIGSTKFLT },
	{ "CHLD", SIGCHLD }, { "CONT", SIGCONT },     { "STOP", SIGSTOP }, { "TSTP", SIGTSTP },
	{ "TTIN", SIGTTIN }, { "TTOU", SIGTTOU },     { "URG", SIGURG },   { "XCPU", SIGXCPU },
	{ "XFSZ", SIGXFSZ }, { "VTALRM", SIGVTALRM }, { "PROF", SIGPROF }, { "WINCH", SIGWINCH },
	{ "IO", SIGIO },     { "PWR", SIGPWR },       { "SYS", SIGSYS },
};

const char *signal_name(int sig)
{
	for (size_t i = 0; i < ELEMENTSOF(signals); i++)
		if (signals[i].sig == sig)
			return signals[i].name;
	return NULL;
}

int parse_bool(const char *s, bool *ret)
{
	if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "1"))
		*ret = true;
	else if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "0"))
		*ret = false;
	else
		return -EINVAL;
	return 0;
}

int parse_signal(const char *s, int *ret)
{
	int n;

	if (!s || !*s)
		return -EINVAL;
	if (isdigit((unsigned char)s[0])) {
		if (parse_int(s, &n) < 0 || n < 1 || n > 64)
			return -EINVAL;
		*ret = n;
		return 0;
	}
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < ELEMENTSOF(signals); i++)
		if (strcasecmp(s, signals[i].name) == 0) {
			*ret = signals[i].sig;
			return 0;
		}
	return -EINVAL;
}

int random_job_id(char ret[XOS_JOB_ID_HEX + 1])
{
	uint64_t v;
	ssize_t n;

	do
		n = getrandom(&v, sizeof(v), 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(v))
		return n < 0 ? -errno : -EIO;
	snprintf(ret, XOS_JOB_ID_HEX + 1, "%016llx", (unsigned long long)v);
	return 0;
}

bool job_id_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
			return false;
	return i == XOS_JOB_ID_HEX;
}

bool job_name_valid(const char *s)
{
	size_t i;

	if (!s || !isalnum((unsigned char)s[0]))
		return false;
	for (i = 1; s[i]; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
			return false;
	/* hex digits only could be taken for a job id or a prefix of one */
	return i <= 63 && strspn(s, "0123456789abcdefABCDEF") < i;
}

uint64_t now_usec(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000000ULL + (uint64_t)t.tv_nsec / 1000ULL;
}

uint64_t mono_usec(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000ULL + (uint64_t)t.tv_nsec / 1000ULL;
}
