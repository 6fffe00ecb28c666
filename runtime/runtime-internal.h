/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef XOS_RUNTIME_INTERNAL_H
#define XOS_RUNTIME_INTERNAL_H

#include <sys/types.h>

#include "common/common.h"
#include "ckpt/ckpt.h"
#include "runtime/runtime.h"

struct lxc_container;
struct daemon;
struct conn;

enum job_state {
	JOB_QUEUED,
	JOB_STARTING,
	JOB_RUNNING,
	JOB_CHECKPOINTING,
	JOB_CHECKPOINTED,
	JOB_RESTORING,
	JOB_MIGRATING,
	JOB_EXITED,
	JOB_KILLED,
	JOB_FAILED,
	JOB_TIMEOUT,                    /* ended by its --time (queue.c) */
	JOB_DEPENDENCY_NEVER_SATISFIED, /* never started: an --after cannot be met */
	JOB_MIGRATED,                   /* moved to another node (migrate.c) */
	_JOB_STATE_MAX,
	_JOB_STATE_INVALID = -EINVAL,
};
const char *job_state_to_string(enum job_state s);
enum job_state job_state_from_string(const char *s);
bool job_state_is_final(enum job_state s);

enum unit_state {
	UNIT_RUNNING,
	UNIT_EXITED,
	UNIT_KILLED,
	UNIT_FAILED,
	_UNIT_STATE_MAX,
	_UNIT_STATE_INVALID = -EINVAL,
};
const char *unit_state_to_string(enum unit_state s);
enum unit_state unit_state_from_string(const char *s);

struct unit {
	unsigned n;
	char **argv;
	enum unit_state state;
	int code, sig;
	char *reason;
	uint64_t started_us, ended_us;
	uint64_t utime_us, stime_us, maxrss_kb;
};

/* What the loader reports when a unit ends is a struct loader_status, parsed
 * with loader_status_parse() (loader/loader.h; docs/PROTOCOL.md section 2). */
struct loader_status;
/* xrun's exit code for a unit end: code, 128+signal, 125 on failure. */
int unit_exit_code(enum unit_state s, int code, int sig);

/* A host directory bind-mounted into the job (xrun -v, and the owner's home). */
struct job_volume {
	char *src; /* the host directory, as resolved when the job was submitted */
	char *dst; /* absolute path inside the job */
	bool ro;
	bool home; /* the owner's home directory, mounted by default */
	int fd;    /* runtime only: O_PATH fd of src, opened as the submitter, until started */
};

/* What xrun said about checkpoints (persisted with the job). */
struct job_ckpt_policy {
	uint64_t every_us;       /* periodic checkpoints (0: none) */
	unsigned keep;           /* versions kept (0: the node's checkpoint_keep) */
	int signal;              /* sent before a checkpoint (0: none) */
	uint64_t grace_us;       /* how long to wait for the job after it */
	int restore_signal;      /* sent after a restart (0: none) */
	bool restart_on_failure; /* restore from the newest version after a node failure */
};

/* xrun --after JOB[:MODE] */
struct job_dep {
	char *id; /* the job's full id, resolved at submission */
	char *as; /* as the user named it */
	int mode; /* enum scheduler_dep_mode */
};

/* What the scheduler needs of a job (queue.c; persisted as "sched": queue-job.c). */
struct job_sched {
	uint64_t millicpus, memory; /* its request (--cpus, --memory, else the node's) */
	int64_t priority;           /* --priority (default 1000; above it only root) */
	bool held;                  /* --hold, until xrelease */
	uint64_t time_us;           /* --time (0: none): ended as TIMEOUT at it */
	struct job_dep *deps;
	size_t n_deps;
	bool timed_out;           /* its time limit was reached: it ends as TIMEOUT */
	uint64_t timeout_sent_us; /* when SIGTERM went (SIGKILL follows) */
	/* the first unit's environment and working directory, until it starts */
	char **start_env;
	char *start_cwd;
	/* runtime only: its place in the queue, and its estimated start (0: unknown) */
	unsigned position;
	uint64_t est_start_us;
	bool charged; /* its usage is counted */
	/* runtime only: its fair-share group + 1 (queue_job_group; 0: not known yet) */
	uint32_t group1;
	bool queued; /* it was queued (its directory was made for its record) */
	/* preemption (docs/SCHEDULING.md): xrun --preemptible */
	bool preemptible;
	/* stopped at a checkpoint, it waits in the queue to be restored from
	 * resume_version; preempted: it was stopped so (shown as PREEMPTED) */
	bool resume, preempted;
	unsigned resume_version;
	char *preempted_by; /* the job it was (or is being) preempted for */
	/* runtime only */
	bool preempting;            /* its checkpoint for a preemption is under way */
	bool resuming;              /* its restore from the queue is under way */
	bool want_reason;           /* an attached xrun follows it: its reason is wanted */
	uint64_t preempt_failed_us; /* when a checkpoint for a preemption of it failed */
	char *preempt_note;         /* (a preempting job) why a preemption failed */
	/* the queue kept between passes (queue-kept.c, DECISIONS (az)): the job is
	 * in its touched list, its queue or its running jobs while these equal
	 * the kept queue's generation (a rebuild moves it: no job is written) */
	uint64_t touched_gen, kept_gen, run_gen;
	int64_t kept_priority;           /* its priority when it was added */
	uint64_t link_seq;               /* d->jobs's order: the later linked first */
	struct scheduler_dep *kept_deps; /* its dependencies' states, there */
	char (*kept_ended)[48];
};

/* runtime only: what the job's events (events.c) last saw of it, and the
 * figures of its last checkpoint and restore (set by ckpt/ before it persists) */
struct job_ev {
	bool seen; /* an event was made of it (or it was loaded at start-up) */
	enum job_state state;
	unsigned ckpt_last, restores;
	uint64_t ckpt_duration_us, ckpt_bytes; /* the last version made */
	uint64_t restore_duration_us;          /* the last restore */
	unsigned restore_version;
};

struct job {
	/* first, together: what the main loop's walks over every job read at
	 * each wakeup (ckpt_tick, forgetting moved jobs): with 10,000 queued
	 * jobs a walk costs a cache miss per line it touches of each job */
	struct job *next;
	enum job_state state;
	bool closing;                /* last unit reported: no unit can be added */
	struct ckpt_run *run;        /* a checkpoint or restore under way (ckpt/checkpoint.c) */
	uint64_t ckpt_due_us;        /* monotonic time of the next periodic checkpoint */
	struct job_ckpt_policy ckpt; /* checkpoint settings given to xrun */
	char id[XOS_JOB_ID_HEX + 1];
	char *name;
	uid_t owner_uid;
	uid_t uid;
	gid_t gid;
	char *user;
	gid_t *groups;
	size_t n_groups;
	char *home;
	char *template;
	/* its template's environment and working directory, kept from the start
	 * for the units added later (NULL env: a record from before they were
	 * kept, which the template's template.json gives) */
	char **template_env;
	char *template_workdir;
	char *cgroup_parent; /* where its cgroups go (NULL: LXC's default place) */
	char *reason;
	struct runtime_limits limits;
	uint64_t disk;     /* bytes of the writable layer (tmpfs size) */
	uint64_t files;    /* inodes the job may add to its writable layer */
	uint64_t log_size; /* newest bytes kept of each unit's stdout and stderr (0: default) */
	struct job_volume *volumes;
	size_t n_volumes;
	uint64_t created_us, started_us, ended_us;
	uint32_t idmap_base, idmap_size; /* its slice of root's uids (slice.c) */
	uint32_t idmap_gid_base;         /* ... and gids */
	struct unit *units;
	size_t n_units;
	bool have_acct;
	struct runtime_accounting acct;
	struct runtime_accounting acct_base; /* used by its containers before a restore */
	bool tty;                 /* made with -t: its container has terminals (devpts) */
	bool shifted_user;        /* uid/gid are the template's, in the containers' range */
	struct netsetup_job net;  /* mode, address, group, published ports */
	unsigned ckpt_last;       /* number of the newest version made (0: none) */
	unsigned restores;        /* restarts from a checkpoint so far */
	char *ckpt_skipped;       /* why the last periodic checkpoint was skipped (or NULL) */
	uint64_t ckpt_skipped_us; /* when */
	char *grid_dn, *grid_vo, *grid_role; /* submitted by a grid login (grid.c), else NULL */
	struct job_sched sched;              /* request, priority, dependencies (queue.c) */
	char *migrate_node;                  /* the node of its move (migrate.c), or NULL */
	char *migrate_phase; /* where the move was: check dump send doubt incoming migrated */

	/* runtime only */
	bool pooled;            /* a prepared container of the pool, no job yet (pool.c) */
	uint64_t pool_accounts; /* pooled: the account files and loader when it was made */
	struct job *from_pool;  /* the pooled container it claimed, until it starts there */
	bool slice_held;        /* its ids are leased to it (slice.c) */
	unsigned parked;        /* stopped at this version with its layer and root kept (0: no) */
	unsigned kept; /* ended with this version newest: its root and layer held (rollback.c) */
	int kept_root, kept_layer; /* their detached clones (open_tree), or -EBADF */
	bool have_usage;           /* the writable layer's use, for xps */
	uint64_t disk_used, files_used;
	uint64_t migrate_bytes; /* sent so far by the move under way (xps; not read back) */
	const struct container_engine *engine; /* NULL: the liblxc one */
	struct lxc_container *c;               /* the liblxc engine's handle */
	pid_t init_pid;
	int pidfd;
	int notify_fd;
	int dirfd;   /* <state>/jobs/<id> */
	int spoolfd; /* <state>/jobs/<id>/xos/spool */
	int inotify_wd;
	unsigned signal_seq;
	int cg_prune_tries; /* > 0: LXC's cgroups still to remove */
	bool cg_caller;     /* its cgroups are below its caller's (cgroup_parent = caller) */
	bool caller_ended;  /* killed: the Slurm step that holds it ended (caller-watch.c) */
	bool fenced;        /* killed: another node took it over (recover.c) */
	/* the parent its last version was made under, when a restore moved it
	 * (CRIU re-makes that path in the hierarchies LXC names no root for) */
	char *cgroup_parent_prev;
	/* its claim on its versions in a shared checkpoint store, where this
	 * node took it over from another (ckpt_claim; NULL: made here) */
	char *store_claim;
	/* what this node last wrote of it to the holder record (recover.c):
	 * 0 nothing yet, 1 live, 2 ended */
	uint8_t store_marked;
	/* the copy of the loader its containers run: the sha256 of its bytes,
	 * a file in <state>/loader/ (NULL: not started since xosd kept copies) */
	char *loader;
	pid_t starter;       /* the child starting its container, while it does */
	int starter_fd;      /* its pidfd, in the event loop */
	char *start_warning; /* for the xrun that starts it (its DNS cannot work) */
	bool ckpt_measured;  /* ckpt_bytes measured since its versions last changed */
	uint64_t ckpt_bytes; /* disk its checkpoint store takes (ckpt/space.c) */
	struct job_ev ev;    /* what its last event saw (events.c) */
	struct job *hnext;   /* in its bucket of the daemon's table (jobtable.c) */
	struct job *nnext;   /* in its bucket of the table by name (jobtable.c) */
	bool hashed;         /* it is in those tables */
};

struct job *job_new(void);
void job_free(struct job *j);
struct unit *job_unit(struct job *j, unsigned n);
struct unit *job_add_unit(struct job *j, char **argv); /* takes argv */
bool job_is_live(const struct job *j);
/* A job below its caller's cgroup holds back its units' exit events until its
 * cgroups are gone: the caller (a Slurm task) ends with it, and the batch
 * system then removes its own cgroups, which must be empty by then. */
bool job_cgroups_held(const struct job *j);
/* A running job below a Slurm step's cgroup is killed once no process of the
 * step is left in that cgroup (caller-watch.c, DECISIONS.md (am)); the next
 * timeout (ms) or -1 */
int daemon_caller_watch(struct daemon *d);
/* Jobs may go below their callers' cgroups (cgroup_parent = caller): only
 * then may a job have cg_caller (each main-loop turn asks, not every job) */
bool daemon_caller_mode(const struct daemon *d);
/* 1: a process is in cgroup path (relative) of the reference hierarchy (v1:
 * cpuacct's, v2: the unified one), 0: none, -errno (-ENOENT: gone) */
int runtime_cgroup_has_procs(const char *path, bool v2);
/* The cgroup parent of a job c asks for (xosd.conf's cgroup_parent; for
 * "caller", c's own cgroup where (ag) accepts it, *ret_caller set). */
char *ops_cgroup_parent(struct daemon *d, struct conn *c, bool *ret_caller);
/* A new job's directory: jobs/<id>/xos/{in,spool,loader}, xos owned by its root. */
int ops_make_job_dirs(struct daemon *d, struct job *j);
/* xrestart of a full job id this node does not know but the (shared)
 * checkpoint store holds: the job taken over (1), not for here (0), or
 * refused (< 0, err set). ckpt-adopt.c */
int daemon_adopt_from_store(struct daemon *d, struct conn *c, const char *name, struct xerr *err);
/* Forget the jobs stopped at a checkpoint here that another node took over
 * from the shared store since (ckpt_holder 0): record, kept layer, network
 * go, their versions stay. Before each request. ckpt-adopt.c, DECISIONS (am) */
void daemon_forget_moved(struct daemon *d);
/* Before a restore of a caller-placed job: its cgroups go below the cgroup of
 * c, the restoring client (a new Slurm step), the old parent kept to prune. */
void daemon_restore_cgroup(struct daemon *d, struct conn *c, struct job *j);
/* Lease exactly the slice j's record names: -EBUSY if in use here. */
int slice_claim_base(struct daemon *d, struct job *j);
/* Whether the caller uid may see and act on the job: root, or its owner. */
bool job_may_see(const struct job *j, uid_t uid);
int job_exit_code(const struct job *j);
/* Serialise for job.json (full=true) or for xps. Returns yajl-generated text. */
void job_to_json(const struct job *j, struct yajl_gen_t *g);
/* The short form of a job for xps's table (ps "brief"): what its columns
 * show (id, name, user, grid, state, reason, exit, created, disk, address,
 * ports, units and the first one's command), about a tenth of the full one */
void job_to_json_brief(const struct job *j, struct yajl_gen_t *g);
int job_from_json(const char *text, struct job **ret);
/* Apply a unit status to the job; false if already recorded (duplicate). */
bool job_record_status(struct job *j, const struct loader_status *st);
/* a += b: times and OOM kills add up, the memory peak is the larger one */
void job_acct_add(struct runtime_accounting *a, const struct runtime_accounting *b);
/* Set the final job state from unit 1 and the accounting. */
void job_finish(struct job *j);
int job_add_volume(struct job *j, const char *src, const char *dst, bool ro, bool home);
void job_close_volume_fds(struct job *j);

/* ---- volume.c: host directories in jobs ---- */
/* Check a volume target: absolute, normalised, not "/" nor a place xos uses. */
int volume_check_target(const char *dst, const char **ret_why);
/* Open SRC as the account uid/gid/groups would (uid 0: as root), for reading
 * (and writing unless ro), without following a race: the returned O_PATH fd is
 * what gets mounted. ret_path: the resolved path. -errno; ret_why on refusal. */
int volume_open_as(const struct daemon *d, uid_t uid, gid_t gid, const gid_t *groups,
		   size_t n_groups, const char *src, bool ro, int *ret_fd, char **ret_path,
		   const char **ret_why);
/* The job's working directory for a client working in host directory cwd:
 * the matching place in the job's deepest volume, or NULL. */
char *volume_map_cwd(const struct job *j, const char *cwd);
/* Bind each volume at <job>/vol/N (closes the fds), then make every mount
 * target in the job's root (rootfs_job_targets); undone by volume_unstage.
 * On failure: what went wrong, for the user, in *ret_error. */
int volume_stage(struct daemon *d, struct job *j, char **ret_error);
void volume_unstage(struct daemon *d, struct job *j);
/* Make directory rel (relative, may be several components) below volume i's
 * staged mount, as the account the volume was opened as, never through a
 * symlink (mkdirat_beneath): a target of a later volume inside it. */
int volume_mkdir_target(struct daemon *d, struct job *j, size_t i, const char *rel);
/* Open each of the job's volumes (closing the fds it had) with the
 * credentials of its submission: the owner's (root's when root submitted
 * it), the job account's for its home. At submission (again false) a
 * volume's src becomes the directory it resolves to, and a home that cannot
 * be opened is left out; before a restart from a checkpoint (again true)
 * each must open and resolve to the same directory as then. On failure:
 * "Volume SRC: why" in *ret_error, no volume fd open. */
int volume_open_job(struct daemon *d, struct job *j, bool again, char **ret_error);
/* volume_open_job(again) and volume_stage, before a restart. */
int volume_restage(struct daemon *d, struct job *j, char **ret_error);

/* ---- rootfs.c: the host template and per-job overlay ---- */
int rootfs_host_skel_setup(const char *dir, uid_t root_uid, gid_t root_gid);
int rootfs_host_skel_teardown(const char *dir);
/* The volatile tmpfs (<state>/volatile): mounted unless a daemon before left it. */
/* 1 if it mounted a new tmpfs (the node rebooted, or none was there), 0 if
 * it kept the one a previous xosd left for running jobs. */
int rootfs_volatile_setup(const char *dir);
int rootfs_volatile_teardown(const char *dir);
int rootfs_job_mount(struct daemon *d, struct job *j);
int rootfs_job_mount_from(struct daemon *d, struct job *j, int upper_from);
void rootfs_job_umount(struct daemon *d, struct job *j);
/* A job stopped at a checkpoint: its volumes go, its writable layer and root
 * stay mounted for its restart (rootfs_job_kept; docs/DECISIONS.md (ab)). */
void rootfs_job_park(struct daemon *d, struct job *j);
/* Whether the job's writable layer and root overlay are still mounted. */
bool rootfs_job_kept(struct daemon *d, struct job *j);
/* rollback.c: an ended job with a checkpoint version keeps its root overlay
 * and layer (detached clones: the same device and inode numbers) until its
 * restart or until it is forgotten (job_free); the restart of its newest
 * version attaches them again and rolls the layer back in place to the
 * version's copy (-EXDEV: it cannot be made equal through the overlay; the
 * caller then copies). docs/DECISIONS.md (ao) */
void rootfs_job_keep(struct daemon *d, struct job *j);
void rootfs_job_unkeep(struct job *j);
int rootfs_job_rollback(struct daemon *d, struct job *j, int vfd);
/* The job's lower layers, top first (O_PATH; at most 2): ret_fds, *ret_n. */
int rootfs_job_lowers(struct daemon *d, struct job *j, int *ret_fds, size_t *ret_n);
/* vupper (the version's upper copy) made the layer's: lupper is its upper
 * directory (read only), root the overlay (changed), lowers its lower layers
 * (read only; what they hold the rollback does not remove); links: the
 * version's "links" list ("INO PATH\0" each) */
int rollback_tree(int vupper, int lupper, int root, const int *lowers, size_t n_lowers,
		  const char *links, size_t links_len);
/* Make what LXC mounts on in the job's root (its /.xos, /proc, /sys, /dev, the
 * loader's file, resolv.conf, each volume's target) before it starts: in the
 * job's own layer, or inside an earlier volume as that volume's account, and
 * never through a symlink (LXC's own create=dir follows them on the host).
 * On failure: which target and why in *ret_error. */
int rootfs_job_targets(struct daemon *d, struct job *j, char **ret_error);
int rootfs_job_usage(struct daemon *d, struct job *j, uint64_t *ret_bytes, uint64_t *ret_files);

/* ---- slice.c: each job's own slice of root's subordinate ids ---- */
/* The lease store (<volatile>/idmap) and the slices of root's ranges. */
int slice_setup(struct daemon *d, uint32_t uid_range, uint32_t gid_range);
void slice_free_all(struct daemon *d);
/* A free slice for j (its idmap_* fields): 0, or -ENOSPC when none is free. */
int slice_claim(struct daemon *d, struct job *j);
/* j lets its slice go (its xos/ directory becomes host root's first). */
void slice_release(struct daemon *d, struct job *j);
/* ... if it has ended and has no checkpoint version left. */
void slice_job_check(struct daemon *d, struct job *j);
/* A job loaded from its record holds the slice the record names. */
void slice_adopt(struct daemon *d, struct job *j);
/* After the jobs are loaded: leases as the jobs want them; how many went. */
int slice_reconcile(struct daemon *d);
uint32_t slice_free_count(const struct daemon *d);
/* The job's uid and gid maps (at most max entries each). */
int slice_job_maps(const struct job *j, struct runtime_idmap_entry *u, size_t *nu,
		   struct runtime_idmap_entry *g, size_t *ng, size_t max);

/* ---- idmount.c: idmapped lower layers ---- */
/* A user namespace with these maps, for mount_setattr; its fd. */
int idmount_userns(const struct runtime_idmap_entry *u, size_t nu,
		   const struct runtime_idmap_entry *g, size_t ng);
/* A detached clone of the mount at path, idmapped through userns_fd. */
int idmount_clone(const char *path, int userns_fd);
/* An overlay at target (nosuid, nodev) of lower layer fds, top first. */
int idmount_overlay(const char *target, const int *lower, size_t n_lower, const char *upper,
		    const char *work, bool xino);
/* Whether overlays of idmapped clones of these directories work here (a
 * trial in scratch, a new directory on a tmpfs): 0 or -errno. */
int idmount_probe(const char *const *lowers, size_t n, const char *scratch, uint32_t root_uid,
		  uint32_t root_gid);

/* ---- container.c: a job's container, through its engine ---- */
/* Its configuration, made from the job before its start. */
int container_create(struct daemon *d, struct job *j);
/* ---- loader-copy.c: the loader a job runs, a copy by content ---- */
/* The path of the loader copy j's containers run, in buf: j's own copy,
 * else (a new job, or its copy is gone) one of loader_path, made now. */
int loader_copy_path(struct daemon *d, struct job *j, char *buf, size_t len);
/* The path of j's own copy in buf, if it names one that is there (-ENOENT
 * if not; none is made). */
int loader_copy_file(struct daemon *d, const struct job *j, char *buf, size_t len);
/* Before j is restored from the version in vfd: the copy j's record names,
 * if this node lacks it, made from the version's "loader" when that holds
 * the same bytes (sha256). 0 also when there is nothing to do; -EBADMSG
 * when the version's file is another. */
int loader_copy_adopt(struct daemon *d, struct job *j, int vfd);
/* This node has the copy named hex (a move need not send it) */
bool loader_copy_have(struct daemon *d, const char *hex);
/* That copy into the version vfd as its "loader" (a link, else a copy) */
int loader_copy_put(struct daemon *d, const char *hex, int vfd);
/* Remove the copies no job refers to (none while a job not over names
 * none, or the checkpoint store holds versions of a job xosd does not know). */
void loader_copy_gc(struct daemon *d);
/* Fork the child that starts the container (the spawner does, else xosd);
 * it ends when the container runs (status 0) or failed to start. Its pid
 * and a pidfd of it (-errno where none could be had); its end is waited
 * for with container_start_wait (not waitpid: it may be the spawner's). */
int container_start(struct daemon *d, struct job *j, pid_t *ret_pid, int *ret_pidfd);
/* The wait status of a child container_start made (blocks until it ends) */
int container_start_wait(struct daemon *d, pid_t pid);
/* What a child that starts a container needs (no xosd state: the spawner's
 * children run it from a request) */
struct container_start_args {
	const struct container_engine *engine;
	const char *id;
	bool pooled;
	const char *lxcpath;
	const char *hooks_dir; /* with record: the prestart hooks */
	uint64_t hook_timeout_us;
	const char *record; /* the job's record, the hooks' input (NULL: no hook) */
	size_t record_len;
	int dirfd; /* the job directory: prestart.err (-EBADF: none) */
};
_noreturn_ void container_start_child(const struct container_start_args *a);
/* ---- spawner.c (DECISIONS (bd)) ---- */
/* Start a's container from the spawner (made at the first call): the
 * child's pid and pidfd. -EIO: sent, but no answer says whether a child
 * was forked (the spawner is given up; the start is not tried again);
 * other errors: nothing started, the caller forks instead. */
int spawner_start(struct daemon *d, const struct container_start_args *a, pid_t *ret_pid,
		  int *ret_pidfd);
/* The wait status of the spawner's child pid; -ENOENT: not the spawner's */
int spawner_wait(struct daemon *d, pid_t pid, int *ret_status);
void spawner_event(struct daemon *d); /* EP_SPAWNER: the ends it told of */
void spawner_stop(struct daemon *d);
/* The starter's exit status when a prestart hook failed (its message is in
 * the job directory's prestart.err). */
#define CONTAINER_START_HOOK_FAILED 3
/* After the starter ended well: the init pid and its pidfd. */
int container_started(struct daemon *d, struct job *j);
int container_attach(struct daemon *d, struct job *j); /* re-adopt: lxc handle, pidfd */
char *container_start_error(struct daemon *d, struct job *j);
bool container_running(struct job *j);
int container_accounting(struct daemon *d, struct job *j, struct runtime_accounting *ret);
/* Anonymous and shared memory of the job's container (what a dump writes). */
int container_dump_memory(struct daemon *d, struct job *j, uint64_t *ret_anon, uint64_t *ret_shmem);
int container_signal(struct daemon *d, struct job *j, unsigned unit, int sig);
void container_release(struct job *j);
void container_remove_config(struct daemon *d, struct job *j);
int container_write_unit_spec(struct daemon *d, struct job *j, unsigned n, char **argv, char **env,
			      const char *cwd, bool tty);

/* j's init is pid: its pidfd taken (an engine's started and attach) */
int container_take_init(struct job *j, pid_t pid);

/* An engine: how a job's container is made, started and found again. Each
 * step is given the job; what an engine keeps of a container lives in the
 * job (the liblxc engine: its handle, j->c). */
struct container_engine {
	const char *name;
	int (*create)(struct daemon *d, struct job *j); /* its configuration */
	/* in the starter child (no xosd state, hooks run): start it and end
	 * the child, 0 once it runs */
	_noreturn_ void (*start_child)(const struct container_start_args *a);
	int (*started)(struct daemon *d, struct job *j); /* after it ran: its init */
	int (*attach)(struct daemon *d, struct job *j);  /* found again: its init */
	bool (*running)(struct job *j);
	void (*release)(struct job *j);                        /* what it holds of it */
	void (*remove)(struct daemon *d, struct job *j);       /* what it left on disk */
	char *(*start_error)(struct daemon *d, struct job *j); /* why it failed */
};
/* Engines by number (in a spawner's request) */
enum { CONTAINER_ENGINE_LXC = 0, CONTAINER_ENGINE_DIRECT = 1 };
extern const struct container_engine container_engine_lxc;    /* engine-lxc.c */
extern const struct container_engine container_engine_direct; /* engine-direct.c */
/* By name ("lxc", "direct"), NULL: none */
const struct container_engine *container_engine_by_name(const char *name);
/* The engine a new job j starts with: the direct one where xosd.conf's
 * container_engine asks for it and j is of the kind it serves (--net none,
 * no cgroup of its caller's, not a pooled container, no checkpoint asked
 * for: no --checkpoint-every, --checkpoint-signal, --restart on-failure or
 * --preemptible), liblxc's otherwise */
void container_engine_choose(struct daemon *d, struct job *j);
/* j's engine (the liblxc one unless j names another) */
const struct container_engine *container_engine_of(const struct job *j);
const struct container_engine *container_engine_by_id(unsigned id); /* NULL: none */
unsigned container_engine_id(const struct container_engine *e);

/* ---- engine-direct.c ---- */
/* Whether the direct engine takes an LXC configuration: 0, or why not (err) */
int container_direct_check(const char *config, char *err, size_t elen);

/* ---- engine-lxc.c: the liblxc engine ---- */
/* The name of a job's LXC container: xos-<id>. */
int container_name(struct job *j, char *buf, size_t len);
/* A new liblxc handle of the job's container (NULL on OOM); detach: its start
 * or restore daemonizes and closes every inherited fd. */
struct lxc_container *container_handle(struct daemon *d, struct job *j, bool detach);
void container_remove_lock_dirs(struct daemon *d); /* liblxc's, once empty */

/* ---- ckpt-host.c: the checkpoint module (ckpt/ckpt.h) in the daemon ---- */
struct ckpt_run; /* a checkpoint or restore under way (ckpt/) */
/* d->ckpt, whose calls to the daemon (struct ckpt_host) land here */
int daemon_ckpt_setup(struct daemon *d);
/* A job without a container (stopped at a checkpoint) is killed: it ends
 * with sig, its versions stay. */
void daemon_job_discard(struct daemon *d, struct job *j, int sig);
/* At start-up: a live job whose container is gone and that asked to be
 * restarted on failure is restored from its newest version (true). */
bool daemon_job_recover(struct daemon *d, struct job *j);
/* The clients waiting for a checkpoint or restore of j (CONN_CKPT) are
 * answered: err, or the reply map g. */
void daemon_ckpt_answer(struct daemon *d, struct job *j, const struct xerr *err,
			struct yajl_gen_t *g);
int ops_checkpoint(struct daemon *d, struct conn *c, struct yajl_val_s *t, struct xerr *err);
int ops_checkpoints(struct daemon *d, struct conn *c, struct yajl_val_s *t, struct xerr *err);
int ops_checkpoint_delete(struct daemon *d, struct conn *c, struct yajl_val_s *t, struct xerr *err);
int ops_restart(struct daemon *d, struct conn *c, struct yajl_val_s *t, struct xerr *err);

/* ---- queue.c, queue-job.c, queue-kept.c: capacity, admission, the queue (scheduler/) ---- */
struct queue_state;
/* Capacity (xosd.conf, else detected, minus the reserve) and usage.json. */
int queue_setup(struct daemon *d);
void queue_free(struct daemon *d);
/* Parse and check what a run request asks of the scheduler: its request,
 * --priority, --hold, --after, --time (answered on error). */
int queue_parse_run(struct daemon *d, struct conn *c, struct yajl_val_s *t, struct job_sched *ret,
		    struct xerr *err);
/* Whether the request has scheduler fields (not allowed with --job). */
bool queue_fields_given(struct yajl_val_s *t);
/* Whether new job j may start at once (1) or is queued (0; j->reason why). */
int queue_admit(struct daemon *d, struct job *j);
/* j was linked into d->jobs (daemon_job_link) */
void queue_job_linked(struct daemon *d, struct job *j);
/* j is leaving d->jobs (daemon_job_unlink; queue-kept.c) */
void queue_job_unlinked(struct daemon *d, struct job *j);
/* j's record was written (every change of its state, priority, hold): the
 * queue kept between passes looks at it again at the next pass (queue-kept.c) */
void queue_job_touched(struct daemon *d, struct job *j);
/* xrestart of j (stopped at a checkpoint) through admission: 1 if it may be
 * restored now, 0 if it waits in the queue (xps says why; the restore's
 * outcome answers the client then). */
int queue_admit_restore(struct daemon *d, struct job *j, unsigned version);
/* Queue new job j (its env and cwd kept): its record is on disk before the
 * client hears of it. -errno (answered). */
int queue_submit(struct daemon *d, struct conn *c, struct job *j, struct xerr *err);
/* A job loaded in state QUEUED at start-up. */
void queue_adopt(struct daemon *d, struct job *j);
/* Places, reasons and estimates as of now, for xps and xqueue (a job queued
 * since the last pass may have moved the others). */
void queue_refresh(struct daemon *d);
/* A checkpoint or restore of j ended (err set: it failed): preemption's
 * part of it (ckpt-host.c's answer). */
void queue_ckpt_done(struct daemon *d, struct job *j, const struct xerr *err);
/* "PREEMPTED" for a job stopped by a preemption, else its state's name. */
const char *queue_job_state_name(const struct job *j);
/* preempt.c: stop the victims at a checkpoint for job j (the scheduler's
 * choice), restore a job that waited in the queue for it. */
void preempt_jobs(struct daemon *d, struct job *j, struct job **victims, size_t n);
void preempt_resume(struct daemon *d, struct job *j);
/* Decide if something changed; enforce time limits. Next timeout (ms) or -1. */
int queue_tick(struct daemon *d);
/* ---- commit.c: group commit of queued jobs' records ---- */
/* c's answer waits for the next syncfs to begin and end (its generation) */
uint64_t commit_hold(struct daemon *d, struct conn *c);
/* A syncfs of the records written so far begins (1: in the thread) or is
 * done here (0); the answers held for them go when it ends */
int commit_start(struct daemon *d);
bool commit_busy(const struct daemon *d);
void commit_done(struct daemon *d); /* (EP_COMMIT) */
void commit_stop(struct daemon *d);
/* Something that frees or asks for resources happened: decide again soon. */
void queue_changed(struct daemon *d);
/* Job j has ended: its run is charged to its owner's usage (once). */
void queue_job_charge(struct daemon *d, struct job *j);
/* Job j's container is gone: its usage is charged to its owner. */
void queue_job_gone(struct daemon *d, struct job *j);
/* xkill of a queued job: it ends KILLED by sig without running. */
void queue_kill(struct daemon *d, struct job *j, int sig);
void queue_job_to_json(const struct job *j, struct yajl_gen_t *g);
int queue_job_from_json(struct yajl_val_s *t, struct job *j);
void queue_job_free(struct job *j);
int queue_op_queue(struct daemon *d, struct conn *c, struct yajl_val_s *t, struct xerr *err);
int queue_op_release(struct daemon *d, struct conn *c, struct yajl_val_s *t, struct xerr *err);
/* ops-run.c: start a job whose record and account are made (a queued job that
 * the scheduler starts: ids and network taken); the first unit gets env and
 * cwd. -errno: it failed (the job ended FAILED, its xruns told). */
int ops_start_job(struct daemon *d, struct job *j, char **env, const char *cwd, bool tty);

/* ---- daemon.c ---- */
#define POOL_OWNERS_MAX 16 /* (pool_size is at most 16) */

struct daemon {
	struct runtime_config *cfg;
	const struct runtime_cgroup_ops *cg;
	int epfd;
	int listen_fd;
	int inotify_fd;
	int state_fd;                  /* <state> */
	int jobs_fd;                   /* <state>/jobs */
	int catalog_fd;                /* <state>/templates: the template catalogue */
	struct template_state *tpl;    /* imports and removals under way */
	struct template_cache *tcache; /* what job starts read of the catalogue */
	char *lxcpath;                 /* <volatile>/lxc */
	char *volatile_dir;            /* <state>/volatile, a tmpfs: files a job start creates */
	int vjobs_fd;                  /* <volatile>/jobs */
	char *skel_dir;
	char *rootfs_mnt;
	char *self_exe;        /* this xosd binary: CRIU's action script */
	char *template_helper; /* xos-template-helper: beside xosd, else in libexec */
	struct ckpt *ckpt;     /* checkpoints and restores (ckpt/ckpt.h) */
	/* loader_path when it was last copied (loader-copy.c): its device,
	 * inode, size and mtime, and the sha256 of its bytes */
	uint64_t loader_key[4];
	char loader_hex[65];
	/* root's subordinate ids: where they start, and the size of a slice */
	uint32_t subuid_base, subuid_size, subgid_base, subgid_size;
	uint32_t n_slices;    /* slices in root's ranges (0: the shared one) */
	uint8_t *slices_used; /* bitmap of the slices leased */
	int idmap_fd;         /* <volatile>/idmap: the leases */
	int idmapped_mounts;  /* lower layers idmapped: -1 not tried yet, 0 no, 1 yes */
	struct netsetup *net;
	struct nodes *nodes;          /* the node channel (NULL: none configured) */
	struct migration *migrations; /* moves to and from other nodes (migrate.c) */
	struct mig_cpu *mig_cpu;      /* the CPU checks' kept answers (migrate-cpu.c) */
	struct routes *routes;        /* routes to other nodes' jobs (routes.c) */
	struct job *jobs;
	/* the same jobs by id (jobtable.c): buckets, their number, jobs linked */
	struct job **jtab;
	struct job **ntab; /* the same jobs by name, as many buckets (NULL: none) */
	size_t jtab_size, jtab_n;
	struct job *pool; /* prepared containers, no job's yet (pool.c) */
	/* the accounts and settings they are made for, the latest first
	 * (at most pool_size: each gets its share of the pool) */
	struct job *pool_owners[POOL_OWNERS_MAX];
	size_t n_pool_owners;
	uint64_t pool_retry_us; /* monotonic: no preparing before (one failed) */
	struct conn *conns;
	struct conn *closed_conns; /* closed in this batch of events, freed after it */
	bool prune_ended;          /* an ended job was tidied: keep at most keep_ended of them */
	bool cg_prune_pending;     /* a job's cg_prune_tries was set: prune_cgroups walks */
	bool timed_jobs;           /* a job with a --time limit came: queue_tick walks */
	/* bumped at each write of a job's record and each job linked or
	 * unlinked: what queue.c keeps of the queue between passes is valid
	 * while it has not moved */
	uint64_t jobs_gen;
	uint64_t link_seq;     /* links so far (a job's sched.link_seq) */
	struct commit *commit; /* the group commit's thread (commit.c; NULL: not yet) */
	bool commit_warned;    /* it could not be made (said once; the loop synced) */
	/* a job may be CHECKPOINTED (one was persisted or linked so): the
	 * requests' walk for jobs another node took over walks (ckpt-adopt.c) */
	bool checkpointed_jobs;
	bool uplink_checked; /* the first bridge job looked at the uplink's forwarding */
	/* the volatile tmpfs was new at start-up: the containers of jobs the
	 * records call live went with a reboot of the node (or an unmount) */
	bool rebooted;
	bool quit;
	uint64_t conn_deadline_next;  /* earliest request deadline of a connection (0: none) */
	int reserve_fd;               /* given up to accept and refuse a client at EMFILE */
	uint64_t listen_paused_until; /* monotonic: the listener is out of epoll until then */
	/* grid logins (grid.c): the trust (NULL: the node takes none), the pool
	 * account leases, the node's name in challenges */
	struct credstore_trust *trust;
	struct credstore_accounts *accounts;
	char node_name[256];
	struct grid_verified *verified; /* chains verified lately (GRID_VERIFIED_MAX) */
	struct vo_entry *vo_entries;    /* VO policies as last read (vo.c) */
	size_t n_vo_entries;
	/* the client of the xrestart being begun (ops_restart), NULL otherwise:
	 * a caller-placed job is restored below its cgroup (restore_prepare) */
	struct conn *restore_caller;
	struct queue_state *queue; /* capacity, usage, the scheduler's last pass (queue.c) */
	/* monotonic: the next look at the Slurm steps' cgroups (caller-watch.c) */
	uint64_t caller_watch_due_us;
	struct events *events;   /* recent events and counters (events.c) */
	struct metrics *metrics; /* the metrics endpoint (metrics.c), NULL: none */
	struct recover *recover; /* leases and recovery of down nodes' jobs (recover.c) */
	struct spawner *spawner; /* forks container starts (spawner.c; NULL: not made yet) */
};
/* A daemon with nothing open yet: what runtime_run starts from (and tests
 * and fuzz targets that drive the request handlers without a daemon) */
#define DAEMON_EMPTY                                                                              \
	{                                                                                         \
		.listen_fd = -EBADF, .state_fd = -EBADF, .jobs_fd = -EBADF, .catalog_fd = -EBADF, \
		.epfd = -EBADF, .inotify_fd = -EBADF, .vjobs_fd = -EBADF, .reserve_fd = -EBADF,   \
		.idmap_fd = -EBADF, .idmapped_mounts = -1                                         \
	}

int daemon_persist_job(struct daemon *d, struct job *j);
/* ... written through (sync_writes) before it returns: a queued job's */
int daemon_persist_job_durably(struct daemon *d, struct job *j);
/* <state>/usage.json (queue.c) was written: the flusher makes it durable. */
#define USAGE_FILE "usage.json"
void daemon_flush_usage(struct daemon *d);
/* The job's directory fd, opened again if it was closed (ended jobs keep none). */
int daemon_job_dir(struct daemon *d, struct job *j);
/* The job's directory on the volatile tmpfs, <volatile>/jobs/<id> (mount
 * points, resolv.conf), made if create; its path (sub NULL) or that of sub. */
int daemon_job_rundir(struct daemon *d, struct job *j, bool create);
int daemon_job_runpath(struct daemon *d, const struct job *j, const char *sub, char *buf,
		       size_t len);
/* Open a file of the job's spool read-only (for xlogs and attached xrun). */
int daemon_open_spool_file(struct daemon *d, struct job *j, const char *name);
/* ---- jobtable.c: the jobs, by id ---- */
/* j goes at the head of d->jobs and into the table by id */
void daemon_job_link(struct daemon *d, struct job *j);
/* j leaves d->jobs and the table (it is not freed) */
void daemon_job_unlink(struct daemon *d, struct job *j);
/* The job of that exact id, or NULL (without walking every job) */
struct job *daemon_find_job(struct daemon *d, const char *id);
/* The jobs named name, each once (a bucket of the table by name, or the
 * list without one): for (j = first(d, n); j; j = next(d, j, n)) */
struct job *daemon_named_first(struct daemon *d, const char *name);
struct job *daemon_named_next(struct daemon *d, const struct job *j, const char *name);
/* Every job released and freed, and the table */
void daemon_jobs_free(struct daemon *d);
/* Resolve what caller uid names, only among the jobs it may see: an exact id
 * first, then the name of a live job (unique per owner), then a unique id
 * prefix, then the name of an ended job. -ENOENT, or -ENOTUNIQ when several
 * of those jobs match. */
int daemon_lookup_job(struct daemon *d, uid_t uid, const char *name, struct job **ret);
/* The same for a connection: what grid_may_see lets it see (a VO's admin). */
int daemon_lookup_job_for(struct daemon *d, const struct conn *c, const char *name,
			  struct job **ret);
int daemon_watch_job(struct daemon *d, struct job *j);
void daemon_unit_ended(struct daemon *d, struct job *j, unsigned unit);
void daemon_job_gone(struct daemon *d, struct job *j);
/* An ended job whose container may not have gone yet: wait (at most 3 s) for
 * it and tidy up (daemon_job_cleanup); 0, or -EBUSY if it is still there. */
int daemon_job_settle(struct daemon *d, struct job *j);
/* Tidy every trace of a job's container (mounts, config, fds); the record stays. */
void daemon_job_cleanup(struct daemon *d, struct job *j);
int daemon_epoll_add(struct daemon *d, int fd, uint32_t events, int kind, void *ptr);

/* ---- notify.c: completion reports ---- */
/* Open path below the job's xos/ directory, which its container's root owns:
 * every access there goes through openat_beneath (no symlink followed,
 * nothing outside reached). "." is xos/ itself. */
int notify_xos_open(struct daemon *d, struct job *j, const char *path, int flags);
void notify_unlink(struct daemon *d, struct job *j); /* its notify.sock */
int notify_listen(struct daemon *d, struct job *j);
void notify_accept(struct daemon *d, struct job *j);
void notify_collect_spool(struct daemon *d, struct job *j);

/* ---- pool.c: prepared containers (DECISIONS.md (as)) ---- */
/* A new job of the default settings takes a ready pooled container made for
 * its owner (its id and slice become j's): true; false: cold start
 * (its owner becomes the pool's). */
bool pool_claim(struct daemon *d, struct job *j);
/* Whether job j may take a container made for owner's jobs (pure). */
bool pool_job_fits(const struct runtime_config *cfg, const struct job *j, const struct job *owner);
/* Start claimed j (r < 0: its unit could not be made, it fails). */
int pool_start(struct daemon *d, struct job *j, int r, char **env, const char *cwd, bool tty);
void pool_started(struct daemon *d, struct job *p, int status); /* its starter ended */
void pool_gone(struct daemon *d, struct job *p);                /* its container ended */
int pool_tick(struct daemon *d);                                /* the next timeout (ms) or -1 */
void pool_idle(struct daemon *d);
void pool_stop(struct daemon *d);
void pool_remove_leftovers(struct daemon *d);

/* ---- client.c: the client protocol ---- */
enum conn_mode {
	CONN_REQUEST,
	CONN_STARTING,
	CONN_ATTACHED,
	CONN_WAIT,
	CONN_CLOSING,
	CONN_TEMPLATE, /* a template import runs for it (template-ops.c) */
	CONN_CKPT,     /* waiting for a checkpoint or restore of c->job */
	CONN_EVENTS,   /* subscribed to job events (events.c) */
};
struct conn {
	int fd;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	enum conn_mode mode;
	char *in;
	size_t in_len;
	char *out;
	size_t out_len, out_off;
	/* attached to a unit's output (xrun, xlogs) */
	struct job *job;
	unsigned unit;
	bool follow, exit_sent, wants_tty, attach_when_started;
	/* the xrun of a job below its cgroup (cgroup_parent = caller): when it
	 * goes before the job (a Slurm step's kill), so does the job */
	bool kill_job_on_close;
	int out_fd, err_fd;
	uint64_t out_pos, err_pos; /* offsets read so far in them (the streams' offsets) */
	/* waiting for jobs to end (xwait) */
	char **wait_ids;
	int passed_fd;                  /* an fd the client passed (SCM_RIGHTS), or -1 */
	struct template_task *tpl_task; /* its template import */
	bool closed;          /* gone: waits in d->closed_conns for the end of the event batch */
	bool hold_out;        /* its output waits for the queue's group commit (queue.c) */
	uint64_t hold_gen;    /* ... for that generation of records (commit.c) */
	uint64_t deadline_us; /* monotonic: closed if its request is not whole by then */
	/* grid.c: the challenge it was given; its grid login (uid and gid are
	 * then the mapped account's) */
	char *nonce;
	struct conn_grid *grid;
	/* events.c: a subscriber's filter (ev_job: a job id, or empty: all it
	 * may see) and the events it missed while its buffer was full */
	char ev_job[XOS_JOB_ID_HEX + 1];
	uint64_t ev_missed;
	bool ev_end_missed; /* the end of ev_job was among them */
	struct conn *next;
};
void conn_send(struct conn *c, const char *text); /* one JSON line */
void conn_reply_error(struct conn *c, const char *code, const char *fmt, ...) _printf_(3, 4);
/* The error reply of err: {"ok":false,"error":{"code":..,"message":..}}. */
void conn_reply_xerr(struct conn *c, const struct xerr *err);
void conn_send_map(struct conn *c, struct yajl_gen_t *g); /* closes g's open map, sends it */
void conn_attach(struct daemon *d, struct conn *c, struct job *j, unsigned unit, bool follow);
void conn_pump(struct daemon *d, struct conn *c);
/* Send what is queued and wait for what comes next; never frees c (the
 * event loop does, once a closing connection has said everything). */
void conn_kick(struct daemon *d, struct conn *c);
/* Pass a unit's terminal to the xrun attached to it; -ENOENT if none is. */
int conns_pass_tty(struct daemon *d, struct job *j, unsigned unit, int fd);
/* grid.c */
int grid_setup(struct daemon *d);
void grid_free(struct daemon *d);
void grid_conn_free(struct conn *c);
int ops_auth_challenge(struct daemon *d, struct conn *c, struct yajl_val_s *t, struct xerr *err);
int ops_auth(struct daemon *d, struct conn *c, struct yajl_val_s *t, struct xerr *err);
/* The VO of a grid login (NULL: none); whether it has the VO's admin role. */
const char *grid_conn_vo(const struct conn *c);
bool grid_conn_admin(const struct conn *c);
/* Whether c may see (and act on) j: its owner, root, the admin of j's VO. */
bool grid_may_see(const struct conn *c, const struct job *j);
/* -EACCES (err set) when c sees j only as its VO's admin: what is not an
 * admin's ("run commands in it"). */
int grid_owner_only(const struct conn *c, const struct job *j, const char *what, struct xerr *err);
/* The credential of c verified again against the trust as it is now. */
int grid_recheck(struct daemon *d, struct conn *c, struct xerr *err);
/* session.c: pam_xos's sessions in their VO's cgroup */
int ops_session_open(struct daemon *d, struct conn *c, struct yajl_val_s *t, struct xerr *err);
void session_cgroups_prune(struct daemon *d);
int grid_job_account(struct daemon *d, struct conn *c, const char *user, struct job *j,
		     struct xerr *err);
/* vo.c: VO policies (DECISIONS (aj)) */
struct credstore_vo_policy;
void vo_free(struct daemon *d);
int vo_policy(struct daemon *d, const char *vo, const struct credstore_vo_policy **ret,
	      struct xerr *err);
/* vo's weight in fair share (its policy's fair_share; 1 where it has no
 * policy or the policy cannot be read) */
uint64_t vo_fair_share(struct daemon *d, const char *vo);
struct vo_run {
	bool limits_given, disk_given, group_given; /* by the request */
};
/* A grid login's new job against its VO's policy (limits the request left
 * to the node clamped to the policy's, network group and outbound set). */
int vo_check_run(struct daemon *d, struct conn *c, struct job *j, const struct vo_run *how,
		 struct xerr *err);
/* A local user may not join a VO's network group (vo-*). */
int vo_check_group(const struct conn *c, const char *group, struct xerr *err);
int vo_check_checkpoint(struct daemon *d, struct job *j, struct xerr *err);
int vo_check_restore(struct daemon *d, struct conn *c, struct job *j, struct xerr *err);
int ops_vo_policy(struct daemon *d, struct conn *c, struct yajl_val_s *t, struct xerr *err);
int ops_acct(struct daemon *d, struct conn *c, struct yajl_val_s *t, struct xerr *err);
/* ops.c */
struct yajl_gen_t *ops_reply_begin(void); /* {"v":..,"ok":true */
/* The job a request names, if the caller may act on it: 0, or -ENOENT
 * (-ENOTUNIQ) and why. */
int ops_lookup(struct daemon *d, struct conn *c, const char *name, struct job **ret,
	       struct xerr *err);
void ops_handle(struct daemon *d, struct conn *c, const char *line, size_t len);
bool ops_wait_check(struct daemon *d, struct conn *c); /* true: answered */
/* A request's optional field k as a non-negative integer, or as true or
 * false: 0 (absent: *ret left as it was), or the error and why (err). */
int ops_get_limit(struct conn *c, struct yajl_val_s *t, const char *k, uint64_t *ret,
		  struct xerr *err);
int ops_get_opt_bool(struct conn *c, struct yajl_val_s *t, const char *k, bool *ret,
		     struct xerr *err);
/* ops-run.c: the run request (xrun), a job's start */
int ops_run(struct daemon *d, struct conn *c, struct yajl_val_s *t, struct xerr *err);
/* The starter of job j ended: finish the start and answer the waiting xruns. */
void ops_start_done(struct daemon *d, struct job *j);
void ops_start_seen(struct daemon *d, struct job *j, bool flush);
/* It could not start: it fails, its waiting xruns hear why. */
void ops_start_failed(struct daemon *d, struct job *j, const char *what, int r);
/* Answer an xrun waiting for its job's start (the job runs). */
void ops_reply_started(struct daemon *d, struct conn *c);

/* A new connection, or NULL: out of memory, or refused (its uid holds
 * max_connections_per_user connections; told so); the caller closes fd. */
struct conn *conn_new(struct daemon *d, int fd);
/* Send an error line on a new connection that is closed at once (best effort). */
void conn_refuse(int fd, const char *code, const char *msg);
/* Close the connections whose request did not arrive whole within
 * request_timeout; the next deadline in ms (-1: none). */
int conns_expire(struct daemon *d);
void conn_event(struct daemon *d, struct conn *c, uint32_t events);
void conns_job_output(struct daemon *d, struct job *j);
void conns_unit_ended(struct daemon *d, struct job *j, unsigned unit);
void conns_job_ended(struct daemon *d, struct job *j);
void conns_free_all(struct daemon *d);
/* Free the connections closed during the last batch of events (a later
 * event of the same batch may still name one: conn_event ignores it). */
void conns_reap(struct daemon *d);

enum ep_kind {
	EP_LISTEN,
	EP_CLIENT,
	EP_NOTIFY,
	EP_PIDFD,
	EP_INOTIFY,
	EP_SIGNAL,
	EP_STARTER,
	EP_TEMPLATE,
	EP_CKPT,
	EP_NODES,        /* the node channel's epoll set */
	EP_METRICS,      /* a listener of the metrics endpoint (metrics.c) */
	EP_METRICS_CONN, /* a client of it */
	EP_MIGRATE, /* a migration's child or pipe (migrate.c); at most 16 kinds (4 bits of the epoll data) */
	EP_COMMIT,  /* the group commit's thread answers (commit.c) */
	EP_SPAWNER, /* the container spawner tells of its children's ends (spawner.c) */
};

/* ---- node.c: the node channel (nodes/) in xosd ---- */
int daemon_nodes_start(struct daemon *d);
int ops_nodes(struct daemon *d, struct conn *c, struct yajl_val_s *t, struct xerr *err);

/* ---- migrate.c: xmigrate over the node channel ---- */
struct nodes_hooks;
int ops_migrate(struct daemon *d, struct conn *c, struct yajl_val_s *t, struct xerr *err);
void migrate_hooks(struct nodes_hooks *h);
/* ckpt's answer for j: true if it is a migration's dump or restore */
bool migrate_answer(struct daemon *d, struct job *j, const struct xerr *err);
void migrate_event(struct daemon *d, void *ptr);
int migrate_tick(struct daemon *d);
void migrate_startup(struct daemon *d);
void migrate_cpu_free(struct daemon *d); /* (migrate-cpu.c) */
/* xosd stops: the CPU checks' CRIU runs are ended, the moves freed (migrate.c) */
void migrate_stop(struct daemon *d);
/* ---- routes.c: routes to other nodes' jobs, announced over the channel ---- */
struct route_ann { /* an address a peer announced */
	struct route_ann *next;
	uint32_t addr;
	size_t peer; /* the peer's number */
	uint64_t seq;
};
struct routes_table {
	struct route_ann *anns;
	uint64_t seq;
};
/* Peer's whole set (n addresses) replaces what it announced before; the
 * addresses new in it are the newest announcements: 1 if anything changed,
 * 0, -ENOMEM. */
int routes_table_update(struct routes_table *t, size_t peer, const uint32_t *addrs, size_t n);
/* The peer whose announcement of a is the newest, or -1 (none). */
ssize_t routes_table_winner(const struct routes_table *t, uint32_t a);
void routes_table_clear(struct routes_table *t);
int routes_start(struct daemon *d); /* xosd's old routes flushed; the peers' addresses */
void routes_hooks(struct nodes_hooks *h);
/* A "routes" message from node: true if h was one */
bool routes_message(struct daemon *d, const char *node, struct yajl_val_s *h);
int routes_tick(struct daemon *d);
void routes_stop(struct daemon *d); /* xosd's routes removed */
/* ckpt-adopt.c: the job of a migration, from this node's store, made one of its jobs */
int daemon_adopt_migrated(struct daemon *d, const char *id, struct job **ret);
/* ckpt-adopt.c: j (a newest version's record) taken over from a down node
 * whose holder claim was expect; -EEXIST: another node was first */
int daemon_adopt_recovered(struct daemon *d, struct job *j, unsigned version, const char *expect);

/* ---- recover.c: jobs of a down node, from a shared checkpoint store (DECISIONS.md (aq)) ---- */
/* Before j's record is written: the holder record of its versions kept
 * (this node's name, live or ended). */
void recover_job_persisted(struct daemon *d, struct job *j);
/* At start-up, j loaded from its record: true if another node took it over
 * meanwhile (j is then MIGRATED there, its container, if any, killed). */
bool recover_loaded(struct daemon *d, struct job *j);
/* Whether node's jobs may be taken over now (not up on the channel, its
 * lease in the store not renewed for node_recover_after): 0, or -EBUSY and
 * why (at least 160 bytes). */
int recover_node_gone(struct daemon *d, const char *node, char *why, size_t len);
/* Renew this node's lease, kill copies another node took over, take over
 * the --restart on-failure jobs of down nodes: ms to the next, or -1. */
int recover_tick(struct daemon *d);
void recover_free(struct daemon *d);
/* queue.c: whether a job asking s fits beside the live jobs now: 0, or -E2BIG and why */
int queue_fits_now(struct daemon *d, const struct job_sched *s, char *why, size_t len);

/* ---- template-cache.c: what job starts need of the catalogue, kept ---- */
/* A lower layer's /tmp, which a job's layer copies up in advance. */
struct lower_tmp {
	bool dir; /* false: no /tmp directory there (nothing to copy up) */
	uid_t uid;
	gid_t gid;
	mode_t mode;
	/* the stored ids of the layer's root: its files' ids are stored shifted
	 * by them (an imported template's: the shared slice's; host: 0) */
	uid_t shift_uid;
	gid_t shift_gid;
};
struct template_cache;
struct template_info;
/* The node's default template (read from the catalogue once, then kept). */
int template_cache_default(struct daemon *d, const char **ret_name);
/* The /tmp of the lower layer of template name (host: the skeleton), looked
 * up at lower_dir on the first use, then kept. */
int template_cache_lower_tmp(struct daemon *d, const char *name, const char *lower_dir,
			     struct lower_tmp *ret);
/* The catalogue changed (default set, template removed or imported). */
void template_cache_drop(struct daemon *d);
void template_cache_free(struct daemon *d);
/* The template environment and working directory of job j, for a unit
 * added later: from its record, else (older records) its template.json.
 * *ret NULL: none (host, or the template is gone). */
int template_cache_job_info(struct daemon *d, const struct job *j, struct template_info **ret);
/* Keep tpl's (NULL: host's, none) environment and working directory on j. */
int template_cache_keep_on_job(struct job *j, const struct template_info *tpl);

/* ---- template-ops.c: the template catalogue (xtemplate) ---- */
struct template_task; /* an import or a removal, run by a helper process */
struct template_state;
/* After the jobs are loaded: delete removed templates no job uses. */
void template_ops_start(struct daemon *d);
/* Stop the helpers, free everything. */
void template_ops_stop(struct daemon *d);
void template_ops_event(struct daemon *d, struct template_task *t);
/* A connection goes: an import it runs is cancelled. */
void template_ops_conn_gone(struct daemon *d, struct conn *c);
/* A job ended: storage of removed templates it held can go. */
void template_ops_job_gone(struct daemon *d, struct job *j);
int ops_template_import(struct daemon *d, struct conn *c, struct yajl_val_s *t, struct xerr *err);
int ops_template_list(struct daemon *d, struct conn *c, struct yajl_val_s *t, struct xerr *err);
int ops_template_show(struct daemon *d, struct conn *c, struct yajl_val_s *t, struct xerr *err);
int ops_template_default(struct daemon *d, struct conn *c, struct yajl_val_s *t, struct xerr *err);
int ops_template_remove(struct daemon *d, struct conn *c, struct yajl_val_s *t, struct xerr *err);

/* ---- events.c: the job event stream (xevents) and the counters of metrics ---- */
int events_setup(struct daemon *d);
void events_free(struct daemon *d);
/* Job j's record was written: the events of what changed since the last
 * one (submitted, queued, started, checkpointed, restored, migrated, ended
 * ...) go to the subscribers and the counters. */
void events_job_persisted(struct daemon *d, struct job *j);
/* Job j was loaded from its record at start-up: no event for what it is. */
void events_job_loaded(struct job *j);
/* A subscriber's buffer drained: what it missed is said. */
void events_conn_drained(struct daemon *d, struct conn *c);
int ops_events(struct daemon *d, struct conn *c, struct yajl_val_s *t, struct xerr *err);
/* The counters, for the metrics endpoint. */
#define EVENTS_BUCKETS 12
struct events_histogram {
	uint64_t count, sum_us;
	uint64_t buckets[EVENTS_BUCKETS]; /* not cumulative: events_bucket_bounds */
};
extern const double events_bucket_bounds[EVENTS_BUCKETS]; /* seconds */
struct events_counters {
	uint64_t submitted, started, ended[_JOB_STATE_MAX];
	uint64_t checkpoints, checkpoint_failures, checkpoint_bytes;
	uint64_t restores, restore_failures, migrated;
	struct events_histogram checkpoint_duration, restore_duration;
	uint64_t events, dropped; /* events made; lines subscribers missed */
	uint64_t pool_claims;     /* jobs that took a pooled container */
};
const struct events_counters *events_counters(struct daemon *d);
/* A job took a pooled container (pool.c): it is counted. */
void events_pool_claimed(struct daemon *d);

/* ---- metrics-format.c: Prometheus text exposition format (pure) ---- */
struct metrics_buf {
	char *p;
	size_t len, cap;
	bool oom;
};
void metrics_buf_free(struct metrics_buf *b);
void metrics_printf(struct metrics_buf *b, const char *fmt, ...) _printf_(2, 3);
/* # HELP and # TYPE lines of a family (help escaped) */
void metrics_family(struct metrics_buf *b, const char *name, const char *type, const char *help);
/* one sample: name{k="v",...} value; labels: NULL-terminated k, v pairs
 * (values escaped; a NULL value leaves its label out) */
void metrics_sample(struct metrics_buf *b, const char *name, const char *const *labels,
		    double value);
/* a histogram family from non-cumulative bucket counts (le bounds in
 * seconds), the sum (seconds) and the count */
void metrics_histogram(struct metrics_buf *b, const char *name, const char *help,
		       const double *bounds, const uint64_t *counts, size_t n, double sum,
		       uint64_t count);
/* The HTTP/1.0 request read so far (len bytes): -EAGAIN while its head is
 * incomplete, else the status to answer (200 for GET or HEAD /metrics, 400,
 * 404, 405); *ret_head for HEAD. */
int metrics_http_request(const char *req, size_t len, bool *ret_head);
/* The response: status line, headers, then body (200; others say where the
 * metrics are), unless head. */
void metrics_http_response(struct metrics_buf *b, int status, const char *body, size_t body_len,
			   bool head);

/* ---- metrics.c: the endpoint (metrics_socket, metrics_listen) ---- */
int metrics_setup(struct daemon *d);
void metrics_free(struct daemon *d);
void metrics_unlink(struct daemon *d); /* its UNIX socket, at a clean stop */
void metrics_listen_event(struct daemon *d, void *listener);
void metrics_conn_event(struct daemon *d, void *conn, uint32_t events);
int metrics_tick(struct daemon *d); /* deadlines: the next timeout (ms) or -1 */
/* The body of /metrics as of now. */
int metrics_collect(struct daemon *d, struct metrics_buf *b, enum metrics_jobs jobs);
/* container.c: the memory the job's container uses now */
int container_memory_current(struct daemon *d, struct job *j, uint64_t *ret);

/* sdnotify.c: the service manager's readiness protocol */
void sdnotify_init(void);
int sdnotify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
