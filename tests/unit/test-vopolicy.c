/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* VO policies (credstore/vopolicy.c): the vo.d parser, a VO administrator's
 * tightening, and the checks of jobs, checkpoints and migrations. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "credstore/credstore.h"
#include "tap.h"

#define F "/etc/xos/vo.d/biomed.conf"

static int parse(const char *text, struct credstore_vo_policy *p, char **why)
{
	free(*why);
	*why = NULL;
	return credstore_vo_policy_parse(text, strlen(text), F, p, why);
}

static bool has(const char *s, const char *part)
{
	return s && strstr(s, part);
}

static void test_parse(void)
{
	struct credstore_vo_policy p;
	char *why = NULL, *text;
	int r;

	r = parse(
		"# biomed\n templates = debian, host  # two\njob_memory = 256M\nvo_jobs=2\n"
		"job_cpus = 1.5\njob_time = 2h\nnetwork = bridge\nvolumes = /data/biomed, /scratch\n"
		"checkpoint = no\ncheckpoint_quota = 1G\nmigrate_nodes = n1 n2\n",
		&p, &why);
	ok(r == 0, "a full policy parses (%s)", why ? why : "");
	ok(r == 0 && strv_length(p.templates) == 2 && !strcmp(p.templates[1], "host"),
	   "templates: a list");
	ok(r == 0 && p.job.memory == 256ULL << 20 && p.vo.jobs == 2 && p.job.millicpus == 1500 &&
		   p.job.time_us == 7200ULL * 1000000,
	   "sizes, counts, cpus and durations");
	ok(r == 0 && p.net == CREDSTORE_VO_NET_BRIDGE && !p.checkpoint && p.migrate,
	   "network and rights; unset rights are granted");
	ok(r == 0 && p.from[CREDSTORE_VO_VO_MEMORY] < 0 && p.from[CREDSTORE_VO_JOB_MEMORY] == 0,
	   "which keys were set");
	text = r == 0 ? credstore_vo_policy_format(&p) : NULL;
	ok(has(text, "job_memory = 256M\n") && has(text, "job_cpus = 1.500\n") &&
		   has(text, "job_time = 2h\n") &&
		   has(text, "volumes = /data/biomed, /scratch\n") && !has(text, "vo_memory"),
	   "formatted back as a file says it");
	if (r == 0) {
		struct credstore_vo_policy q;
		char *why2 = NULL;

		ok(credstore_vo_policy_parse(text, strlen(text), F, &q, &why2) == 0 &&
			   q.job.memory == p.job.memory && q.net == p.net,
		   "the format parses back the same");
		credstore_vo_policy_done(&q);
		free(why2);
		credstore_vo_policy_done(&p);
	}
	free(text);

	ok(parse("job_memory 256M\n", &p, &why) == -EINVAL && has(why, F " line 1: expected"),
	   "no '=': names file and line");
	ok(parse("\n\nfoo = 1\n", &p, &why) == -EINVAL && has(why, "line 3: unknown key 'foo'"),
	   "an unknown key");
	ok(parse("vo_jobs = 1\nvo_jobs = 2\n", &p, &why) == -EINVAL && has(why, "set twice"),
	   "a key twice");
	ok(parse("job_memory = 0\n", &p, &why) == -EINVAL && has(why, "invalid job_memory"),
	   "a zero size");
	ok(parse("network = everything\n", &p, &why) == -EINVAL && has(why, "none, bridge"),
	   "an unknown network");
	ok(parse("volumes = data\n", &p, &why) == -EINVAL, "a relative volume root");
	ok(parse("volumes = /data/../etc\n", &p, &why) == -EINVAL, "a root with ..");
	ok(parse("volumes = /data/\n", &p, &why) == -EINVAL, "a root with a trailing /");
	ok(parse("templates = ../x\n", &p, &why) == -EINVAL, "a template name with /");
	{
		char big[CREDSTORE_VO_FILE_MAX + 2];

		memset(big, '#', sizeof(big));
		ok(credstore_vo_policy_parse(big, sizeof(big), F, &p, &why) == -E2BIG,
		   "a file past the size bound");
		memset(big, 'a', 5000);
		big[5000] = '\n';
		ok(credstore_vo_policy_parse(big, 5001, F, &p, &why) == -EINVAL &&
			   has(why, "longer than"),
		   "a line past the length bound");
		ok(credstore_vo_policy_parse("a\0b", 3, F, &p, &why) == -EINVAL, "a NUL byte");
	}
	ok(parse("", &p, &why) == 0 && p.net == CREDSTORE_VO_NET_PORTS && !p.volumes,
	   "an empty file: no VO limits, no volumes");
	credstore_vo_policy_done(&p);
	free(why);
}

static void test_tighten(void)
{
	struct credstore_vo_policy base, admin, eff;
	char *why = NULL;

	parse("templates = debian, host\njob_memory = 1G\nnetwork = outbound\n"
	      "volumes = /data\ncheckpoint = yes\n",
	      &base, &why);
	parse("templates = host\njob_memory = 256M\nnetwork = none\nvolumes = /data/biomed\n"
	      "checkpoint = no\nvo_jobs = 3\n",
	      &admin, &why);
	ok(credstore_vo_policy_tighten(&base, &admin, true, &eff, &why) == 0,
	   "an admin tightens every key");
	ok(eff.job.memory == 256ULL << 20 && eff.net == CREDSTORE_VO_NET_NONE && !eff.checkpoint &&
		   eff.vo.jobs == 3 && strv_length(eff.templates) == 1,
	   "the tighter values are in force");
	ok(eff.from[CREDSTORE_VO_JOB_MEMORY] == 1 && eff.from[CREDSTORE_VO_TEMPLATES] == 1,
	   "and come from the admin's file");
	credstore_vo_policy_done(&eff);
	credstore_vo_policy_done(&admin);

	static const char *const looser[] = {
		"job_memory = 2G\n", "templates = debian, alpine\n",
		"network = ports\n", "volumes = /srv\n",
		"volumes = /\n",     "migrate = yes\nmigrate = no\n",
	};
	for (size_t i = 0; i < ELEMENTSOF(looser); i++) {
		if (parse(looser[i], &admin, &why) < 0) /* (the last is no file at all) */
			continue;
		ok(credstore_vo_policy_tighten(&base, &admin, true, &eff, &why) == -EPERM &&
			   has(why, "would loosen the node owner's policy (" F),
		   "strict: '%.*s' loosens: refused", (int)strcspn(looser[i], "\n"), looser[i]);
		ok(credstore_vo_policy_tighten(&base, &admin, false, &eff, &why) == 0 &&
			   (eff.job.memory == 1ULL << 30) && eff.net == CREDSTORE_VO_NET_OUTBOUND &&
			   strv_length(eff.templates) == 2 && strv_length(eff.volumes) == 1 &&
			   !strcmp(eff.volumes[0], "/data"),
		   "merge: the file stands for it");
		credstore_vo_policy_done(&eff);
		credstore_vo_policy_done(&admin);
	}
	credstore_vo_policy_done(&base);
	free(why);
}

/* fair_share: 1 to 10000, 1 unset; an admin may lower it, never raise it
 * (not even where the node owner left it unset) */
static void test_fair_share(void)
{
	struct credstore_vo_policy base, admin, eff;
	char *why = NULL, *text;

	ok(parse("job_pids = 10\n", &base, &why) == 0 && base.fair_share == 1 &&
		   base.from[CREDSTORE_VO_FAIR_SHARE] < 0,
	   "fair_share unset: 1");
	ok(parse("fair_share = 10001\n", &admin, &why) == -EINVAL &&
		   has(why, "a whole number from 1 to 10000"),
	   "fair_share above 10000: refused, saying what it takes");
	ok(parse("fair_share = 0\n", &admin, &why) == -EINVAL, "fair_share 0: refused");
	ok(parse("fair_share = 2\n", &admin, &why) == 0 && admin.fair_share == 2, "fair_share = 2");
	ok(credstore_vo_policy_tighten(&base, &admin, true, &eff, &why) == -EPERM &&
		   has(why, "fair_share = 2 would loosen"),
	   "an admin raising it above the unset 1: refused");
	ok(credstore_vo_policy_tighten(&base, &admin, false, &eff, &why) == 0 &&
		   eff.fair_share == 1,
	   "merge: the unset 1 stands");
	credstore_vo_policy_done(&eff);
	credstore_vo_policy_done(&base);
	parse("fair_share = 5\n", &base, &why);
	ok(credstore_vo_policy_tighten(&base, &admin, true, &eff, &why) == 0 &&
		   eff.fair_share == 2 && eff.from[CREDSTORE_VO_FAIR_SHARE] == 1,
	   "an admin lowers the node owner's 5 to 2");
	credstore_vo_policy_done(&eff);
	text = credstore_vo_policy_format(&base);
	ok(has(text, "fair_share = 5\n"), "formatted back");
	free(text);
	credstore_vo_policy_done(&admin);
	credstore_vo_policy_done(&base);
	free(why);
}

static void test_check(void)
{
	struct credstore_vo_policy p;
	struct credstore_vo_amounts used = { 0 };
	struct credstore_vo_job j = { .template = "debian" };
	const char *vols[] = { "/data/biomed/x", "/data/biomedical" };
	char *why = NULL;

	parse("templates = debian\njob_memory = 256M\nvo_jobs = 2\nvo_memory = 512M\n"
	      "network = bridge\nvolumes = /data/biomed\ncheckpoint = no\n"
	      "migrate_nodes = n1\n",
	      &p, &why);
	credstore_vo_fill(&p, &j.amounts);
	ok(j.amounts.memory == 256ULL << 20, "an unlimited job gets the VO's per-job limit");
	ok(credstore_vo_check_job(&p, "biomed", &j, &used, &why) == 0, "a job within the policy");
	used.jobs = 1;
	used.memory = 256ULL << 20;
	ok(credstore_vo_check_job(&p, "biomed", &j, &used, &why) == 0, "the second job");
	used.jobs = 2;
	ok(credstore_vo_check_job(&p, "biomed", &j, &used, &why) == -EACCES &&
		   has(why, "Refused by VO biomed's policy (" F ", vo_jobs = 2)"),
	   "a third: refused, naming file and key");
	used = (struct credstore_vo_amounts){ .jobs = 1, .memory = 300ULL << 20 };
	ok(credstore_vo_check_job(&p, "biomed", &j, &used, &why) == -EACCES &&
		   has(why, "vo_memory = 512M"),
	   "the VO's total memory");
	used = (struct credstore_vo_amounts){ 0 };
	j.amounts.memory = 512ULL << 20;
	ok(credstore_vo_check_job(&p, "biomed", &j, &used, &why) == -EACCES &&
		   has(why, "job_memory = 256M") && has(why, "asks for 512M"),
	   "a bigger job");
	j.amounts.memory = 128ULL << 20;
	j.template = "alpine";
	ok(credstore_vo_check_job(&p, "biomed", &j, &used, &why) == -EACCES &&
		   has(why, "templates = debian") && has(why, "template alpine"),
	   "another template");
	j.template = "debian";
	j.net = CREDSTORE_VO_NET_BRIDGE;
	j.ports = true;
	ok(credstore_vo_check_job(&p, "biomed", &j, &used, &why) == -EACCES &&
		   has(why, "network = bridge") && has(why, "publish"),
	   "published ports where the VO has the bridge only");
	j.ports = false;
	j.volumes = vols;
	j.n_volumes = 1;
	ok(credstore_vo_check_job(&p, "biomed", &j, &used, &why) == 0, "a volume below a root");
	j.n_volumes = 2;
	ok(credstore_vo_check_job(&p, "biomed", &j, &used, &why) == -EACCES &&
		   has(why, "volume /data/biomedical"),
	   "a sibling with the root's name as prefix is not below it");
	j.n_volumes = 0;
	j.checkpoint = true;
	ok(credstore_vo_check_job(&p, "biomed", &j, &used, &why) == -EACCES &&
		   has(why, "checkpoint = no"),
	   "checkpoint options where the VO has none");
	ok(credstore_vo_check_checkpoint(&p, "biomed", 0, &why) == -EACCES, "no checkpoints");
	ok(credstore_vo_check_migrate(&p, "biomed", "n1", &why) == 0 &&
		   credstore_vo_check_migrate(&p, "biomed", "n2", &why) == -EACCES &&
		   has(why, "migrate_nodes = n1"),
	   "migration only to the nodes named");
	credstore_vo_policy_done(&p);

	parse("vo_memory = 1G\ncheckpoint_quota = 1M\n", &p, &why);
	j = (struct credstore_vo_job){ .template = "x" };
	ok(credstore_vo_check_job(&p, "physics", &j, &used, &why) == -EACCES &&
		   has(why, "needs a limit of memory"),
	   "a VO total without a per-job limit needs one on the job");
	ok(credstore_vo_check_checkpoint(&p, "physics", 1ULL << 20, &why) == -EACCES &&
		   has(why, "checkpoint_quota = 1M"),
	   "the checkpoint quota");
	credstore_vo_policy_done(&p);
	free(why);
}

int main(void)
{
	test_parse();
	test_tighten();
	test_fair_share();
	test_check();
	return tap_done();
}
