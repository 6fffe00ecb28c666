/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Recovery on another node (issue 11, item 4; DECISIONS.md (aq)). Where
 * nodes share their checkpoint_dir, each job's versions there carry a
 * holder record ("CLAIM NODE live|ended", ckpt/store.c) and each node renews
 * a lease in the store (".lease-NAME", rewritten every second). A node that
 * is down on the node channel and whose lease has not changed for
 * node_recover_after (by the observer's own clock: no clocks compared) is
 * gone: its --restart on-failure jobs are taken over by the first node to
 * create the exclusive claim, and restored from their newest version; xrestart
 * of any of its jobs is then allowed on another node. A node that finds one
 * of its jobs claimed by another (at its start, or while it runs: the fence)
 * does not run it. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>

#include "runtime/runtime-internal.h"
#include "ckpt/ckpt.h"

#define RECOVER_PERIOD_US 1000000

struct lease_seen {
	char node[NODES_NAME_MAX + 1];
	char text[64];       /* the lease's content when last read */
	uint64_t changed_us; /* monotonic: when it was first seen so */
};

struct recover {
	uint64_t due_us;  /* monotonic: the next tick */
	uint64_t counter; /* this node's lease */
	char boot[XOS_JOB_ID_HEX + 1];
	struct lease_seen *seen;
	size_t n_seen;
};

static const char *node_self(struct daemon *d)
{
	return nodes_config_enabled(&d->cfg->nodes) ? d->cfg->nodes.name : NULL;
}

static int store_open(struct daemon *d)
{
	int fd = open(d->cfg->checkpoint_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

void recover_job_persisted(struct daemon *d, struct job *j)
{
	const char *me = node_self(d);
	bool final = job_state_is_final(j->state);
	int r;

	if (!me || !d->ckpt || !j->ckpt_last || j->state == JOB_MIGRATED ||
	    j->store_marked == (final ? 2 : 1))
		return;
	if (!j->store_claim) { /* its first version here: this node holds it */
		if (final || ckpt_holder(d->ckpt, j) != 1)
			return;
		r = ckpt_claim(d->ckpt, j, me, "");
	} else {
		r = ckpt_holder_mark(d->ckpt, j, me, !final);
	}
	if (r == -EPERM || r == -EEXIST)
		return; /* another node's now: recover_tick's fence acts */
	if (r < 0)
		log_warn("Failed to write the holder record of job %s in the checkpoint store: %s",
			 j->id, strerror(-r));
	else
		j->store_marked = final ? 2 : 1;
}

/* j's copy here was taken over by node (from the shared store): this node
 * lets it go as a migration's source does, its versions staying the other's */
static void let_go(struct daemon *d, struct job *j, const char *node)
{
	j->state = JOB_MIGRATED;
	j->ended_us = now_usec();
	free(j->reason);
	j->reason = xstrdup_printf("taken over by node %s", node[0] ? node : "(unknown)");
	free(j->migrate_node);
	free(j->migrate_phase);
	j->migrate_node = strdup(node[0] ? node : "(unknown)");
	j->migrate_phase = strdup("migrated");
	netsetup_job_release(d->net, j->id, &j->net);
	rootfs_job_umount(d, j);
	(void)unlinkat(d->vjobs_fd, j->id, AT_REMOVEDIR);
	container_remove_config(d, j); /* (the container that went with the node) */
	j->parked = 0;
	j->store_marked = 2;
	if (daemon_persist_job_durably(d, j) < 0)
		log_warn("Failed to persist job %s", j->id);
	slice_job_check(d, j);
	d->prune_ended = true;
}

bool recover_loaded(struct daemon *d, struct job *j)
{
	struct ckpt_holder_info h = { 0 };

	if (!node_self(d) || !j->ckpt_last || job_state_is_final(j->state) ||
	    ckpt_holder(d->ckpt, j) != 0)
		return false;
	(void)ckpt_holder_read(d->ckpt, j->id, &h);
	if (!j->store_claim && !strcmp(h.node, node_self(d))) {
		/* its own claim, written just before xosd stopped, not yet its record's */
		j->store_claim = strdup(h.claim);
		return false;
	}
	if (container_attach(d, j) >= 0) {
		/* cut off, not gone: another node runs it now */
		log_error("Job %s was taken over by node %s while this node was cut off: "
			  "killing its copy here",
			  j->id, h.node);
		(void)container_signal(d, j, 0, SIGKILL);
		return false; /* (it ends as killed, through the usual path) */
	}
	log_warn("Job %s was taken over by node %s from the shared checkpoint store while this "
		 "node was down: not restarted here",
		 j->id, h.node[0] ? h.node : "(unknown)");
	let_go(d, j, h.node);
	closep(&j->dirfd); /* (an ended job holds no fds) */
	return true;
}

/* ---- leases ---- */

static void lease_renew(struct daemon *d, struct recover *rc, int sfd, const char *me)
{
	char name[NODES_NAME_MAX + 8], text[64];
	int n, r;

	snprintf(name, sizeof(name), ".lease-%s", me);
	n = snprintf(text, sizeof(text), "%s %llu\n", rc->boot, (unsigned long long)++rc->counter);
	r = write_file_atomic_at(sfd, name, text, (size_t)n, 0600, false);
	if (r < 0 && rc->counter % 60 == 1)
		log_warn("Failed to renew this node's lease in %s: %s", d->cfg->checkpoint_dir,
			 strerror(-r));
}

static struct lease_seen *seen_of(struct recover *rc, const char *node)
{
	struct lease_seen *s;

	for (size_t i = 0; i < rc->n_seen; i++)
		if (!strcmp(rc->seen[i].node, node))
			return &rc->seen[i];
	if (rc->n_seen >= NODES_PEERS_MAX)
		return NULL;
	s = realloc(rc->seen, (rc->n_seen + 1) * sizeof(*s));
	if (!s)
		return NULL;
	rc->seen = s;
	s = &rc->seen[rc->n_seen++];
	memset(s, 0, sizeof(*s));
	snprintf(s->node, sizeof(s->node), "%s", node);
	s->changed_us = mono_usec();
	return s;
}

/* Look at node's lease: how long (µs) it has not changed, as seen from here. */
static uint64_t lease_age(struct daemon *d, struct recover *rc, int sfd, const char *node)
{
	_cleanup_free_ char *text = NULL;
	char name[NODES_NAME_MAX + 8];
	struct lease_seen *s = seen_of(rc, node);
	uint64_t now = mono_usec();

	if (!s)
		return 0;
	snprintf(name, sizeof(name), ".lease-%s", node);
	if (read_file_at(sfd, name, sizeof(s->text) - 1, &text, NULL) < 0)
		text = strdup("");
	if (text && strcmp(text, s->text) != 0) {
		snprintf(s->text, sizeof(s->text), "%s", text);
		s->changed_us = now;
	}
	(void)d;
	return now - s->changed_us;
}

static struct recover *recover_get(struct daemon *d)
{
	if (!d->recover) {
		d->recover = calloc(1, sizeof(*d->recover));
		if (d->recover && random_job_id(d->recover->boot) < 0)
			snprintf(d->recover->boot, sizeof(d->recover->boot), "%d", (int)getpid());
	}
	return d->recover;
}

int recover_node_gone(struct daemon *d, const char *node, char *why, size_t len)
{
	struct recover *rc = recover_get(d);
	_cleanup_close_ int sfd = -EBADF;
	uint64_t after = d->cfg->node_recover_after_us, age;

	if (!d->nodes)
		return 0;
	if (nodes_peer_up(d->nodes, node)) {
		snprintf(why, len,
			 "it runs on node %s, which is up: xmigrate it from there, or xkill it "
			 "there first",
			 node);
		return -EBUSY;
	}
	if (!after || !rc || (sfd = store_open(d)) < 0)
		return 0;
	age = lease_age(d, rc, sfd, node);
	if (age < after) {
		snprintf(why, len,
			 "its node %s is not reachable, but its lease in the checkpoint store "
			 "changed %llu s ago (node_recover_after is %llu s): try again in %llu s",
			 node, (unsigned long long)(age / 1000000),
			 (unsigned long long)(after / 1000000),
			 (unsigned long long)((after - age + 999999) / 1000000));
		return -EBUSY;
	}
	return 0;
}

/* ---- the tick ---- */

/* This node's live copies whose versions another node took over (a node cut
 * off from its peers and slow to see the store): killed. */
static void fence(struct daemon *d)
{
	for (struct job *j = d->jobs; j; j = j->next) {
		struct ckpt_holder_info h = { .node = "" };

		if (j->state != JOB_RUNNING || !j->ckpt_last || j->run || j->pidfd < 0 ||
		    j->fenced || ckpt_holder(d->ckpt, j) != 0)
			continue;
		(void)ckpt_holder_read(d->ckpt, j->id, &h);
		log_error("Job %s was taken over by another node from the shared checkpoint "
			  "store: killing its copy here",
			  j->id);
		j->fenced = true;
		free(j->reason); /* (xps shows it beside KILLED) */
		j->reason = xstrdup_printf("taken over by node %s from the shared checkpoint store",
					   h.node[0] ? h.node : "(unknown)");
		(void)container_signal(d, j, 0, SIGKILL);
	}
}

static bool full_id(const char *s)
{
	return strlen(s) == XOS_JOB_ID_HEX && strspn(s, "0123456789abcdef") == XOS_JOB_ID_HEX;
}

/* Job id in the store: taken over and restored here if its node is gone and
 * it asked to be restarted on failure. */
static void consider(struct daemon *d, const char *id)
{
	_cleanup_xerr_ struct xerr err = XERR_INIT;
	struct ckpt_holder_info h;
	struct job *j = NULL;
	unsigned version = 0;
	char why[256];
	int r;

	if (daemon_find_job(d, id) || ckpt_holder_read(d->ckpt, id, &h) < 0 || !h.live ||
	    !h.node[0] || !strcmp(h.node, node_self(d)) || nodes_peer_up(d->nodes, h.node))
		return;
	if (recover_node_gone(d, h.node, why, sizeof(why)) < 0)
		return;
	if (ckpt_newest_record(d->ckpt, id, &j, &version) < 0)
		return;
	if (!j->ckpt.restart_on_failure || !job_is_live(j)) {
		job_free(j);
		return;
	}
	r = daemon_adopt_recovered(d, j, version, h.claim);
	if (r < 0) {
		if (r != -EEXIST)
			log_warn("Failed to take over job %s of node %s: %s", id, h.node,
				 strerror(-r));
		job_free(j);
		return;
	}
	log_warn("Node %s is gone: its job %s taken over from the shared checkpoint store, "
		 "restoring version %u",
		 h.node, j->id, version);
	if (ckpt_restart(d->ckpt, j, version, &err) < 0)
		log_error("Failed to restore job %s taken over from node %s: %s (it stays "
			  "checkpointed here: xrestart it)",
			  j->id, h.node, err.msg ? err.msg : strerror(-err.error));
}

static void scan(struct daemon *d, int sfd)
{
	DIR *dir = opendir_dup(sfd);
	struct dirent *de;

	if (!dir)
		return;
	while ((de = readdir(dir)))
		if (full_id(de->d_name))
			consider(d, de->d_name);
	closedir(dir);
}

int recover_tick(struct daemon *d)
{
	const char *me = node_self(d);
	struct recover *rc;
	_cleanup_close_ int sfd = -EBADF;
	uint64_t now = mono_usec();

	if (!me || !d->nodes || !d->ckpt)
		return -1;
	rc = recover_get(d);
	if (!rc)
		return -1;
	if (now < rc->due_us)
		return (int)((rc->due_us - now + 999) / 1000);
	rc->due_us = now + RECOVER_PERIOD_US;
	sfd = store_open(d);
	if (sfd < 0)
		return RECOVER_PERIOD_US / 1000; /* (made with the first version) */
	lease_renew(d, rc, sfd, me);
	fence(d);
	if (d->cfg->node_recover_after_us && nodes_peers_down(d->nodes) > 0)
		scan(d, sfd);
	return RECOVER_PERIOD_US / 1000;
}

void recover_free(struct daemon *d)
{
	if (!d->recover)
		return;
	free(d->recover->seen);
	free(d->recover);
	d->recover = NULL;
}
