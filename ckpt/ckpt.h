/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ckpt: checkpoint and restart of whole job containers (CRIU through
 * liblxc's migrate API), the store of versions, the space they take,
 * periodic checkpoints, CRIU's action script and shim. Migration
 * (runtime/migrate.c) uses it as xcheckpoint and xrestart do. The one public
 * header of ckpt/.
 *
 * runtime/ (xosd) calls ckpt, never the other way round: what ckpt needs of
 * the daemon (persisting a job, the job's container, its root and network
 * for a restore, the event loop, answering the clients that wait for a run)
 * it asks through struct ckpt_host, which runtime fills in. ckpt answers no
 * client itself: a request's refusal comes back as -errno and a struct xerr
 * (common/error.h), and a run that ends later hands its outcome to
 * host->answer. ckpt reads and writes the job record (struct job, job.json)
 * and the node's configuration (struct runtime_config) as data. */
#ifndef XOS_CKPT_H
#define XOS_CKPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct job;
struct job_ckpt_policy;
struct lxc_container;
struct runtime_accounting;
struct runtime_cgroup_paths;
struct runtime_config;
struct xerr;
struct yajl_gen_t;

/* What ckpt asks of the daemon; every call gets ckpt_setup.data first. */
struct ckpt_host {
	/* the job's record changed: write its job.json */
	int (*persist)(void *data, struct job *j);
	/* the path of sub below the job's volatile directory (its root's mounts) */
	int (*runpath)(void *data, const struct job *j, const char *sub, char *buf, size_t len);
	/* a new liblxc handle of the job's container (called in a forked child);
	 * detach: its restore daemonizes and closes every inherited fd */
	struct lxc_container *(*handle)(void *data, struct job *j, bool detach);
	/* sig to every unit of the job */
	int (*signal)(void *data, struct job *j, int sig);
	bool (*running)(void *data, struct job *j);
	int (*accounting)(void *data, struct job *j, struct runtime_accounting *ret);
	/* anonymous and shared memory of the container (what a dump writes) */
	int (*dump_memory)(void *data, struct job *j, uint64_t *ret_anon, uint64_t *ret_shmem);
	/* what the job's writable layer holds */
	int (*layer_usage)(void *data, struct job *j, uint64_t *ret_bytes, uint64_t *ret_files);
	/* the cgroup paths of the job's container (its freezer, its tasks) */
	int (*cgroup_paths)(void *data, struct job *j, struct runtime_cgroup_paths *ret);
	/* watch the pidfd of a run's child: ckpt_child_done when it ends */
	int (*watch_child)(void *data, struct job *j, int pidfd);
	/* stop watching fd (a run's child, or the job's container) */
	void (*unwatch)(void *data, int fd);
	/* A restore of j from the version in vfd: the job's spool as the
	 * version has it, a root from its layer copy, volumes, the network
	 * (the same address and ports), the container's config and notify
	 * socket. j->parked set: the job's layer and root, still mounted since
	 * it stopped at this version, serve as they are (same device and inode
	 * numbers). On failure err says "what: why" ("restoring the spool:
	 * Permission denied"), and restore_undo follows. */
	int (*restore_prepare)(void *data, struct job *j, int vfd, struct xerr *err);
	/* the path of the loader file j's containers run, in buf (-ENOENT:
	 * none of its own); called in the dump's child */
	int (*loader_file)(void *data, const struct job *j, char *buf, size_t len);
	/* a dump failed: remove the network lock a CRIU killed mid-dump left in
	 * the job's namespace (else the job runs on with every packet dropped) */
	void (*unlock_network)(void *data, struct job *j);
	/* undo it; keep_net: the job stays stopped at a checkpoint and keeps
	 * its network for the next try */
	void (*restore_undo)(void *data, struct job *j, bool keep_net);
	/* CRIU restored the container: adopt its init (pidfd) */
	int (*restored)(void *data, struct job *j);
	/* watch the job again (its init's pidfd, its notify socket) */
	int (*watch)(void *data, struct job *j);
	/* read the units' status files of the spool (units that ended) */
	void (*collect_spool)(void *data, struct job *j);
	/* dumped with stop: the container is gone, tidy its traces (mounts,
	 * config, fds); the record stays */
	void (*stopped)(void *data, struct job *j);
	/* the container ended during a dump (ckpt_container_gone), which is over */
	void (*gone)(void *data, struct job *j);
	/* a job without a container (stopped at a checkpoint) is killed: it ends
	 * with sig, its versions stay */
	void (*discard)(void *data, struct job *j, int sig);
	/* an ended job's container may still be going away: wait (briefly) for it;
	 * 0, or -EBUSY while it is still there */
	int (*settle)(void *data, struct job *j);
	/* the job's versions changed (an ended job's ids go with its last one) */
	void (*versions_changed)(void *data, struct job *j);
	/* a run of j ended: answer the clients that wait for it, err (set) or
	 * the reply map g (opened by the host's reply_begin, not closed) */
	void (*answer)(void *data, struct job *j, const struct xerr *err, struct yajl_gen_t *g);
	/* a reply map, {"v":..,"ok":true, still open (NULL on OOM) */
	struct yajl_gen_t *(*reply_begin)(void *data);
};

struct ckpt_setup {
	const struct runtime_config *cfg;
	const struct ckpt_host *host;
	void *data;           /* the host's (the daemon) */
	struct job **jobs;    /* the daemon's list of jobs (quotas, periodic checkpoints) */
	const char *self_exe; /* xosd: CRIU's action script and shim */
	bool cgroup_v2;       /* where the freezer is */
};
struct ckpt;
int ckpt_new(const struct ckpt_setup *s, struct ckpt **ret);
void ckpt_free(struct ckpt *ck);

/* ---- requests (the caller has checked that the client may act on j) ---- */
/* Begin a dump of j (stop: the job stops after it). 0: the outcome goes to
 * host->answer when the run ends; else the refusal in err. */
int ckpt_checkpoint(struct ckpt *ck, struct job *j, bool stop, struct xerr *err);
/* A dump with --stop for a move (DECISIONS (bn)): as ckpt_checkpoint, but
 * the version is not written out to the disk before it is committed; it
 * holds a marker (CKPT_UNSYNCED, this boot's id) instead, until a restore
 * from it writes it out first. A version whose marker names another boot
 * (the node restarted before it reached the disk) is refused as damaged. */
int ckpt_checkpoint_move(struct ckpt *ck, struct job *j, struct xerr *err);
#define CKPT_UNSYNCED "unsynced"
/* Begin a restore of version (0: the newest); as ckpt_checkpoint. */
int ckpt_restart(struct ckpt *ck, struct job *j, unsigned version, struct xerr *err);

/* ---- post-copy (a move with --postcopy; DECISIONS (ar)) ----
 * A lazy dump of j with --stop: CRIU writes the images but the memory, then
 * serves the pages through a socket the CRIU shim connects to the UNIX
 * socket at path socket (it sends the listener, with SCM_RIGHTS, the page
 * socket's other end and the read end of CRIU's status pipe, and keeps the
 * connection as a guard: see criu-shim.c). The run ends when CRIU ends:
 * well when every page was pulled (the version, holding no memory, is not
 * committed: the job is CHECKPOINTED without it and the answer's map says
 * "lazy"), or with the job running on, as a failed dump. */
int ckpt_checkpoint_lazy(struct ckpt *ck, struct job *j, const char *socket, struct xerr *err);
/* CRIU's status came (its images and the files are written): the version
 * being made is sealed (loader, record, manifest) for a target to restore;
 * its directory into dir, its number returned. The run's deadline is then
 * the caller's. */
int ckpt_lazy_ready(struct ckpt *ck, struct job *j, char *dir, size_t len);
/* A restore whose pages come lazily: CRIU's lazy-pages daemon is given a
 * connection to the UNIX socket at path socket as its page server. */
int ckpt_restart_lazy(struct ckpt *ck, struct job *j, unsigned version, const char *socket,
		      struct xerr *err);
/* The xos patch level of the CRIU on xosd's PATH (GitID "+xosN"; 0 none),
 * probed once: a lazy dump needs 4, a lazy restore in a job's user
 * namespace 3. */
#define CKPT_LAZY_DUMP_LEVEL 4
#define CKPT_LAZY_RESTORE_LEVEL 3
unsigned ckpt_criu_level(struct ckpt *ck);
/* The CRIU that checkpoints run: the first regular executable criu on
 * xosd's PATH (malloc'd; NULL: none) */
char *ckpt_criu_bin(void);
/* The shim's environment: the socket of a lazy dump, of a lazy restore
 * ("local": the pages come from the version's own images, for tests). */
#define CKPT_LAZY_DUMP_ENV "XOS_CRIU_PS"
#define CKPT_LAZY_RESTORE_ENV "XOS_CRIU_LAZY"
/* What the guard (a lazy dump's) reads from its connection when the
 * listener no longer needs it; EOF without it: the listener died, and the
 * guard aborts CRIU's serving (the tasks run on). */
#define CKPT_LAZY_GUARD_OFF 'k'
/* A request CRIU's page server does not know: it fails the lazy dump and
 * the tasks run on (what the guard and an aborting listener write). */
#define CKPT_LAZY_ABORT_LEN 32
/* "job", "versions" and the storage figures of j into the open reply map g. */
int ckpt_list(struct ckpt *ck, struct job *j, struct yajl_gen_t *g, struct xerr *err);
int ckpt_delete(struct ckpt *ck, struct job *j, unsigned version, struct xerr *err);

/* ---- the job's life ---- */
/* The child of a run of j ended (its pidfd, see host->watch_child). */
void ckpt_child_done(struct ckpt *ck, struct job *j);
/* The container of j ended while a run held it: true if ckpt takes it. */
bool ckpt_container_gone(struct ckpt *ck, struct job *j);
/* xkill of a CHECKPOINTING or RESTORING job: the run is aborted, then the
 * job gets sig (a restore that fails so ends the job, killed). */
void ckpt_abort(struct ckpt *ck, struct job *j, int sig);
/* Periodic checkpoints and run deadlines: the next timeout (ms) or -1. */
int ckpt_tick(struct ckpt *ck);
/* j joined the daemon's jobs (daemon_job_link): ckpt_tick looks at the jobs
 * again if j has periodic checkpoints or a run. */
void ckpt_job_linked(struct ckpt *ck, const struct job *j);
/* At start-up, a job loaded from its record: one stopped at a checkpoint
 * is taken (true); one found in the middle of a run runs on. */
bool ckpt_adopt(struct ckpt *ck, struct job *j);
/* At start-up, a live job whose container is gone (the node or xosd
 * failed) and that asked to be restarted on failure: restore its newest
 * version. true if a restore began. */
bool ckpt_recover(struct ckpt *ck, struct job *j);
/* Remove every version of a job that is forgotten. */
void ckpt_forget(struct ckpt *ck, struct job *j);
bool ckpt_has_versions(struct ckpt *ck, struct job *j);
/* The job's versions, ascending (*ret_n 0: none, or no store). */
int ckpt_job_versions(struct ckpt *ck, struct job *j, unsigned **ret, size_t *ret_n);
/* The record of job id's newest version in the store, and that version (a
 * job another node checkpointed into a store both see: xrestart takes it over) */
int ckpt_newest_record(struct ckpt *ck, const char *id, struct job **ret, unsigned *ret_version);
/* Whether this node holds j's versions in a store shared with other nodes:
 * 1 yes (also: no store, or no other node ever took the job over), 0 another
 * node took it over since (its versions are that node's: never deleted,
 * restored or counted here), -errno if that cannot be read. DECISIONS.md (am) */
int ckpt_holder(struct ckpt *ck, const struct job *j);
/* Take over j's versions: a new claim, written to the store (the holder
 * file, naming node if not NULL, the job live) and into j->store_claim (the
 * caller persists j). expect (not NULL): the holder claim being replaced
 * ("" none), and -EEXIST if another node took the job over from it first. */
int ckpt_claim(struct ckpt *ck, struct job *j, const char *node, const char *expect);
/* The holder record of job id in the store (-ENOENT: none). DECISIONS.md (aq) */
struct ckpt_holder_info {
	char claim[17]; /* a random 64-bit hex claim */
	char node[64];  /* "" for a holder written before (aq) */
	bool live;      /* false: the job ended on that node */
};
int ckpt_holder_read(struct ckpt *ck, const char *id, struct ckpt_holder_info *ret);
/* Rewrite this node's holder record of j (it holds j): live or ended. */
int ckpt_holder_mark(struct ckpt *ck, struct job *j, const char *node, bool live);
/* Whether --net bridge jobs may be checkpointed on this node
 * (checkpoint_bridge; auto: the CRIU on PATH is built with xos's veth
 * restore fix, probed once): 0, or -EOPNOTSUPP and *ret_why, a static text
 * saying why not. */
int ckpt_bridge_allowed(struct ckpt *ck, const char **ret_why);
/* What the job's checkpoint store takes (measured once after each change). */
uint64_t ckpt_space_job_bytes(struct ckpt *ck, struct job *j);
/* A non-root user's checkpoint settings within the node's bounds
 * (checkpoint_interval_min, checkpoint_keep_max): 0, or -EINVAL and why. */
int ckpt_policy_check(const struct runtime_config *cfg, uid_t uid, const struct job_ckpt_policy *p,
		      struct xerr *err);

/* ---- xosd as CRIU's helper ---- */
/* CRIU's action script during a checkpoint: xosd runs as it (main() checks
 * CRTOOLS_SCRIPT_ACTION); copies the job's writable layer and spool while
 * the container is frozen. Returns the exit status. */
int ckpt_action(void);
/* The CRIU liblxc runs for a dump is xosd (argv[0] "criu", XOS_CRIU set):
 * it runs the real CRIU without --freeze-cgroup (see criu-shim.c). Returns
 * the exit status if it cannot. */
bool ckpt_is_criu_shim(const char *argv0);
int ckpt_criu_shim(int argc, char **argv);
/* The shim's command line: real, then argv[1..] without --freeze-cgroup and
 * its value, NULL-terminated in ret_args (argc + 1 slots); its length. */
size_t ckpt_criu_shim_argv(int argc, char **argv, const char *real, char **ret_args);
/* The value of a CRIU option in argv ("-D DIR", "--images-dir DIR",
 * "--images-dir=DIR"), or NULL. */
const char *ckpt_criu_option(int argc, char **argv, const char *shortname, const char *longname);
/* The command line of CRIU's lazy-pages daemon serving a restore's pages
 * from its images (images, socket in work), or from a page server on
 * descriptor ps (its number, or NULL): into ret_args (CKPT_LAZY_ARGS_MAX
 * slots), NULL-terminated; its length. DECISIONS (ar) */
#define CKPT_LAZY_ARGS_MAX 14
size_t ckpt_criu_lazy_argv(const char *real, const char *images, const char *work, const char *ps,
			   char **ret_args);

#endif
