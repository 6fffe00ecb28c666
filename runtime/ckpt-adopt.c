/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* xrestart of a job this node does not know, from a checkpoint_dir it shares
 * with the node that made the job's versions (a Slurm job requeued on
 * another node, docs/SLURM.md): the job's record comes from its newest
 * version's record.json, and it is taken over as a checkpointed job of this
 * node, on the same container ids (its images and layer copy hold them).
 * DECISIONS.md (ag). */
#include <fcntl.h>

#include "runtime/runtime-internal.h"
#include "ckpt/ckpt.h"

static bool full_id(const char *s)
{
	return strlen(s) == 16 && strspn(s, "0123456789abcdef") == 16;
}

/* Make j one of this node's jobs: its slice, its directory, its record. */
static const char *node_self(struct daemon *d)
{
	return nodes_config_enabled(&d->cfg->nodes) ? d->cfg->nodes.name : NULL;
}

/* expect: the holder claim replaced ("" none; NULL: no exclusive step) */
static int take_over(struct daemon *d, struct conn *c, struct job *j, unsigned version,
		     const char *expect)
{
	int r;

	j->state = JOB_CHECKPOINTED;
	j->ckpt_last = version;
	free(j->reason);
	j->reason = NULL;
	j->cg_caller = c != NULL; /* (its parent was a caller's, or none, on the other node) */
	if (c) {
		daemon_restore_cgroup(d, c, j);
	} else { /* (a job from another node: this node's cgroup_parent, not that one's) */
		const char *p = d->cfg->cgroup_parent;
		char *own = p && strcmp(p, RUNTIME_CGROUP_PARENT_CALLER) != 0 ? strdup(p) : NULL;

		/* CRIU makes again, in a hierarchy liblxc gives it no root for
		 * (cgroup2's beside v1), the place the job had there: pruned with
		 * the job's own cgroups when it ends here */
		free(j->cgroup_parent_prev);
		j->cgroup_parent_prev = NULL;
		if (j->cgroup_parent && (!own || strcmp(own, j->cgroup_parent) != 0))
			j->cgroup_parent_prev = TAKE_PTR(j->cgroup_parent);
		free(j->cgroup_parent);
		j->cgroup_parent = own;
	}
	j->net.active = false; /* (made again by the restore, here) */
	r = slice_claim_base(d, j);
	if (r < 0)
		return r;
	r = ops_make_job_dirs(d, j);
	/* the versions are this node's from now on: the node that held them
	 * forgets the job (daemon_forget_moved) and never deletes them */
	if (r >= 0)
		r = ckpt_claim(d->ckpt, j, node_self(d), expect);
	if (r < 0) {
		(void)rm_rf_at(d->jobs_fd, j->id);
		slice_release(d, j);
		return r;
	}
	daemon_job_link(d, j);
	r = daemon_persist_job(d, j);
	if (r < 0)
		log_warn("Failed to persist job %s: %s", j->id, strerror(-r));
	return 0;
}

int daemon_adopt_from_store(struct daemon *d, struct conn *c, const char *name, struct xerr *err)
{
	struct ckpt_holder_info h;
	char why[256];
	struct job *j = NULL, *known = NULL;
	unsigned version = 0;
	int r;

	if (!full_id(name) || daemon_lookup_job(d, 0, name, &known) >= 0)
		return 0; /* not for here: the usual lookup answers */
	r = ckpt_newest_record(d->ckpt, name, &j, &version);
	if (r < 0)
		return 0;
	if (c->uid != 0 && j->owner_uid != c->uid) {
		job_free(j);
		return 0; /* another's: "No such job", as for any other */
	}
	r = ckpt_holder_read(d->ckpt, name, &h);
	if (r >= 0 && h.live && h.node[0] && d->nodes &&
	    (!node_self(d) || strcmp(h.node, node_self(d))) &&
	    (r = recover_node_gone(d, h.node, why, sizeof(why))) < 0) {
		xerr_set(err, r, "conflict", "Cannot restart job %.12s here: %s", j->id, why);
		job_free(j);
		return r;
	}
	r = take_over(d, c, j, version, r >= 0 ? h.claim : "");
	if (r < 0) {
		if (r == -EEXIST)
			xerr_set(err, r, "conflict",
				 "Cannot take over job %.12s: another node took it over first "
				 "(xps there shows it)",
				 j->id);
		else if (r == -EBUSY)
			xerr_set(err, r, "conflict",
				 "Cannot take over job %.12s: its container ids (from %u) are "
				 "in use on this node; restart it on another node",
				 j->id, j->idmap_base);
		else
			xerr_set(err, r, "internal", "Cannot take over job %.12s: %s", j->id,
				 strerror(-r));
		job_free(j);
		return r;
	}
	log_info("Job %s taken over from the checkpoint store (version %u, made on another "
		 "node) for its restart",
		 j->id, version);
	return 1;
}

/* j, stopped at a checkpoint, was taken over by another node: this node
 * forgets it (its record, its kept layer, root and network), but not its
 * versions, which are the other node's now */
static void forget_moved(struct daemon *d, struct job *j)
{
	int r;

	log_info("Forgetting job %s: another node took it over from the shared checkpoint "
		 "store (its versions there are that node's, and stay)",
		 j->id);
	netsetup_job_release(d->net, j->id, &j->net);
	rootfs_job_umount(d, j);
	(void)unlinkat(d->vjobs_fd, j->id, AT_REMOVEDIR);
	j->parked = 0;
	closep(&j->dirfd);
	r = rm_rf_at(d->jobs_fd, j->id);
	if (r < 0)
		log_warn("Failed to remove the record of job %s: %s", j->id, strerror(-r));
	slice_release(d, j);
}

void daemon_forget_moved(struct daemon *d)
{
	bool any = false;

	/* (each request: a walk of every job only while one may be CHECKPOINTED) */
	if (!d->ckpt || !d->checkpointed_jobs)
		return;
	for (struct job **p = &d->jobs; *p;) {
		struct job *j = *p;
		bool used = j->state != JOB_CHECKPOINTED || j->run || j->pidfd >= 0 ||
			    j->starter > 0;

		any = any || j->state == JOB_CHECKPOINTED;
		for (struct conn *c = d->conns; c && !used; c = c->next)
			used = c->job == j;
		if (used || ckpt_holder(d->ckpt, j) != 0) {
			p = &j->next;
			continue;
		}
		forget_moved(d, j);
		daemon_job_unlink(d, j); /* (*p is the next one now) */
		conns_job_ended(d, j);   /* (xwait of it: answered without it) */
		job_free(j);
	}
	d->checkpointed_jobs = any;
}

void daemon_restore_cgroup(struct daemon *d, struct conn *c, struct job *j)
{
	char *parent;
	bool caller = false;

	if (!j->cg_caller)
		return;
	parent = ops_cgroup_parent(d, c, &caller);
	if (j->cgroup_parent && (!parent || strcmp(parent, j->cgroup_parent) != 0)) {
		free(j->cgroup_parent_prev);
		j->cgroup_parent_prev = TAKE_PTR(j->cgroup_parent);
	}
	free(j->cgroup_parent);
	j->cgroup_parent = parent;
	j->cg_caller = caller;
}

int daemon_adopt_migrated(struct daemon *d, const char *id, struct job **ret)
{
	struct job *j = NULL;
	unsigned version = 0;
	int r = ckpt_newest_record(d->ckpt, id, &j, &version);

	if (r < 0)
		return r;
	r = take_over(d, NULL, j, version, NULL);
	if (r < 0) {
		job_free(j);
		return r;
	}
	*ret = j;
	return 0;
}

int daemon_adopt_recovered(struct daemon *d, struct job *j, unsigned version, const char *expect)
{
	return take_over(d, NULL, j, version, expect);
}
