/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* runtime: xosd, the node daemon. Public interface of the module. */
#ifndef XOS_RUNTIME_H
#define XOS_RUNTIME_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "credstore/credstore.h"
#include "netsetup/netsetup.h"
#include "nodes/nodes.h"

/* ---- configuration (xosd.conf(5)) ---- */
/* checkpoint_bridge: whether --net bridge jobs may be checkpointed */
enum ckpt_bridge {
	CKPT_BRIDGE_AUTO, /* when the CRIU on PATH carries xos's veth restore fix */
	CKPT_BRIDGE_NO,
	CKPT_BRIDGE_YES,
	_CKPT_BRIDGE_MAX,
	_CKPT_BRIDGE_INVALID = -EINVAL,
};
const char *ckpt_bridge_to_string(enum ckpt_bridge b);
enum ckpt_bridge ckpt_bridge_from_string(const char *s);

struct runtime_config {
	char *state_dir;          /* default /var/lib/xos */
	char *run_dir;            /* default /run/xos */
	char *socket_path;        /* default <run_dir>/xosd.sock */
	char *loader_path;        /* default LIBEXECDIR/xos-loader */
	char *default_user;       /* account for jobs submitted by root: nobody */
	char *socket_group;       /* group allowed to connect (mode 0660), NULL: everyone (0666) */
	uint64_t layer_size;      /* bytes of each job's writable layer (tmpfs size=) */
	uint64_t layer_inodes;    /* inodes of each job's writable layer */
	uint64_t max_disk;        /* most a non-root user may ask for with --disk */
	uint64_t max_files;       /* most a non-root user may ask for with --files */
	bool mount_home;          /* the owner's home directory is mounted in jobs */
	bool volume_system_paths; /* volumes may expose root-owned system directories */
	uint64_t default_memory, default_millicpus, default_pids;
	bool sync_writes;     /* fdatasync state files */
	uint64_t keep_ended;  /* ended jobs kept (record and output), oldest go first */
	uint64_t kept_layers; /* ended jobs whose layer is kept for a restart in place (ao) */
	bool detach;          /* once set up: become a daemon, log to <state_dir>/xosd.log */
	char *cgroup_parent;  /* where job cgroups go (relative), NULL: LXC's default */
	char *session_cgroup; /* pam_xos sessions go to <it>/vo-<VO> (relative) */
#define RUNTIME_CGROUP_PARENT_CALLER "caller" /* cgroup_parent: the client's own (ag) */
	int log_level;                        /* 0 err .. 3 debug */
	struct netsetup_config net;           /* the net_* keys */
	char *checkpoint_dir;               /* checkpoint store, default <state_dir>/checkpoints */
	uint64_t checkpoint_keep;           /* versions kept per job unless xrun --keep (0: all) */
	enum ckpt_bridge checkpoint_bridge; /* --net bridge jobs (see xosd.conf(5)) */
	char *hooks_dir;                    /* hooks, default SYSCONFDIR/xos/hooks.d */
	uint64_t hook_timeout_us;           /* a hook running longer is killed and fails */
	uint64_t restore_timeout_us;        /* a restore running longer is killed and fails */
	uint64_t dump_timeout_us;           /* a dump running longer is aborted, the job thawed */
	uint64_t max_connections_per_user;  /* open connections of one uid (root: no limit) */
	uint64_t request_timeout_us;        /* a request must arrive whole within this */
	uint64_t log_size_default;          /* newest bytes of a unit's stdout (stderr) kept */
	uint64_t log_size_max;              /* most a non-root user may ask for (--log-size) */
	uint64_t checkpoint_keep_max;       /* most versions a non-root user's job keeps */
	uint64_t checkpoint_every_min_us;   /* shortest --checkpoint-every of a non-root user */
	uint64_t checkpoint_quota;          /* bytes of versions per user but root (0: none) */
	uint64_t checkpoint_quota_root;     /* the same for root's jobs (0: none) */
	uint64_t idmap_slice; /* ids of root's subordinate range each job gets (65536) */
	uint64_t pool_size;   /* containers kept prepared for the next jobs (0: none) */
	bool engine_direct;   /* container_engine = direct (DECISIONS (bm)) */
	/* the scheduler (queue.c, docs/SCHEDULING.md) */
	uint64_t capacity_millicpus, capacity_memory; /* capacity (0: detected) */
	uint64_t capacity_jobs;                       /* jobs running at once (0: no limit) */
	/* node_cpus, node_memory, node_jobs (bits 0-2) were used: the old
	 * names of capacity_*, accepted with a warning in xosd.log */
	unsigned capacity_old_keys;
	uint64_t reserve_millicpus, reserve_memory; /* kept for the node itself */
	uint64_t request_millicpus, request_memory; /* a job's request without --cpus, --memory */
	uint64_t fairshare_half_life_us;            /* usage decays by half in this (0: never) */
	bool backfill;                              /* short jobs may pass a waiting one */
	/* the metrics endpoint (docs/METRICS.md): a UNIX socket (root's, 0600)
	 * and a TCP address on loopback, each NULL: none */
	char *metrics_socket;
	char *metrics_listen;    /* "127.0.0.1:PORT" or "[::1]:PORT" */
	int metrics_listen_jobs; /* per-job series on metrics_listen: enum metrics_jobs */
	uint64_t events_buffer;  /* bytes held for an event subscriber (and its socket) */

	/* the node_* keys: the node channel (nodes/) */
	struct nodes_config nodes;
	/* a down peer's --restart on-failure jobs are taken over from the
	 * shared checkpoint store after this (0: never; recover.c) */
	uint64_t node_recover_after_us;
	/* the most an incoming migration's data may take here (0: no bound but
	 * the job's and the store's free space; migrate.c) */
	uint64_t migrate_max_incoming;

	/* grid logins: the credential_* and pool_* keys */
	struct credstore_config cred;
};
#define RUNTIME_LOG_SIZE_MIN (64ULL << 10) /* --log-size, log_size_* at least */

void runtime_config_init(struct runtime_config *c);
void runtime_config_free(struct runtime_config *c);
/* Parse a config file; on error *ret_error says "FILE:LINE: what". Missing file: -ENOENT. */
int runtime_config_load(struct runtime_config *c, const char *path, char **ret_error);
/* Fill in derived defaults (socket path from run dir...). */
int runtime_config_finish(struct runtime_config *c);
/* node_cpus, node_memory, node_jobs: {old, new} (capacity_old_keys' bits) */
extern const char *const runtime_capacity_old_keys[3][2];

/* What the per-job series carry: nothing of them, the job's id, or also its
 * name and user (the UNIX socket, root's, always has all) */
enum metrics_jobs { METRICS_JOBS_NONE, METRICS_JOBS_IDS, METRICS_JOBS_NAMES };

/* metrics_listen: "127.0.0.1:PORT" (any 127/8 address) or "[::1]:PORT",
 * a loopback address only; 0 and the address, or -EINVAL. */
struct sockaddr_storage;
int runtime_parse_metrics_listen(const char *s, struct sockaddr_storage *ret, unsigned *ret_len);

/* Run the daemon until SIGTERM/SIGINT. Jobs keep running when it stops. */
int runtime_run(struct runtime_config *c);

/* ---- cgroup backends (pure translation, unit-tested) ---- */
struct runtime_limits {
	uint64_t memory;    /* bytes, 0 = none */
	uint64_t millicpus; /* 0 = none */
	uint64_t pids;      /* 0 = none */
};
struct runtime_accounting {
	uint64_t cpu_user_us, cpu_system_us, memory_peak, wall_us;
	uint64_t oom_kills;
};
struct runtime_cg_item {
	char key[64]; /* LXC config key, e.g. lxc.cgroup2.memory.max */
	char value[64];
};
/* Reads the value of a cgroup file of the container into buf; -errno. */
typedef int (*runtime_cg_reader)(void *userdata, const char *file, char *buf, size_t len);
struct runtime_cgroup_ops {
	const char *name;
	/* Fill items (at most max) for the limits; return how many. */
	int (*limits)(const struct runtime_limits *l, struct runtime_cg_item *items, size_t max);
	int (*accounting)(runtime_cg_reader read, void *userdata, struct runtime_accounting *ret);
	/* What of the container's memory a checkpoint writes: anonymous memory
	 * and shared memory (shmem: SysV, shared mappings, tmpfs files). */
	int (*dump_memory)(runtime_cg_reader read, void *userdata, uint64_t *ret_anon,
			   uint64_t *ret_shmem);
};
extern const struct runtime_cgroup_ops runtime_cgroup_v1, runtime_cgroup_v2;
/* The backend for this machine: v2 if /sys/fs/cgroup is a cgroup2 mount, else v1. */
const struct runtime_cgroup_ops *runtime_cgroup_detect(void);

/* A container's cgroups, relative to each hierarchy's root: under parent
 * (a parameter of container creation: a batch system may want them below
 * its own) or, without one, where LXC puts them by default. */
struct runtime_cgroup_paths {
	char payload[512], monitor[512];
	/* a parent in a Slurm job (.../job_J/step_S[/...]): LXC makes those
	 * levels in the hierarchies where Slurm made none, so pruning tries
	 * them too, the deepest first (one in use stays, and those above it) */
	char slurm[512];
	unsigned slurm_levels;
};
int runtime_cgroup_paths(const char *parent, const char *name, struct runtime_cgroup_paths *ret);
/* Remove the (empty) cgroups LXC left for a container in every hierarchy;
 * -EBUSY while a process is still in one of them. */
int runtime_cgroup_prune(const struct runtime_cgroup_paths *p);
/* SIGKILL to every process in those cgroups (a container whose start went
 * on after xosd gave it up: a spawner that died with it in flight). */
void runtime_cgroup_kill(const struct runtime_cgroup_paths *p);

/* cgroup_parent = caller (DECISIONS.md (ag)): the cgroup of the client
 * process pid of uid (SO_PEERCRED) in the reference hierarchy (v2: the
 * unified one; v1: cpuacct's), relative, if pid is still that process and the
 * cgroup is a Slurm step's (ret_slurm) or owned by uid (delegated).
 * -ENOENT: the caller sits in a root cgroup; -EPERM: neither a step nor
 * delegated, or the pid is another's now. */
int runtime_cgroup_caller(pid_t pid, uid_t uid, bool v2, char **ret_parent, bool *ret_slurm);
/* pure parts, unit-tested */
/* The cgroup of PID 1 (in init1, the text of /proc/1/cgroup) in the hierarchy
 * mounted at /sys/fs/cgroup/<dir> (NULL: cgroup2 at /sys/fs/cgroup itself),
 * without its leading '/'; "" for the root or when not found. */
void runtime_cgroup_init_path(const char *init1, const char *dir, char *buf, size_t len);
int runtime_cgroup_caller_parse(const char *proc_cgroup, bool v2, char **ret_hier, char **ret_path);
bool runtime_cgroup_is_slurm_step(const char *path, bool v2, uid_t uid);

/* ---- id mapping (pure, unit-tested) ---- */
struct runtime_idmap_entry {
	uint32_t inside, outside, count;
};
/* Map container ids [0, size) to [base, base + size), except each id in identity[]
 * which maps to itself. Entries sorted by inside id. -ERANGE if an identity id lies
 * in the host range, -E2BIG if too many entries. */
int runtime_idmap_build(uint32_t base, uint32_t size, const uint32_t *identity, size_t n_identity,
			struct runtime_idmap_entry *ret, size_t max, size_t *ret_n);
/* Find the largest subordinate range of user name (or uid) in a subuid/subgid
 * file: its start and its whole size. */
int runtime_subid_lookup(const char *path, const char *name, uid_t uid, uint32_t *ret_base,
			 uint32_t *ret_size);
/* The map of an idmapped mount of files stored shifted by shift (stored id
 * shift+N is container id N): e's entries with each inside id moved up by
 * shift, into ret (n entries). -ERANGE if that leaves the 32-bit ids. */
int runtime_idmap_shift(const struct runtime_idmap_entry *e, size_t n, uint32_t shift,
			struct runtime_idmap_entry *ret);
/* The host id that id maps to through e; -ENOENT if it is not mapped. */
int runtime_idmap_lookup(const struct runtime_idmap_entry *e, size_t n, uint32_t id, uint32_t *ret);
/* How many slices of slice ids root's uid and gid ranges hold (slice 0 is the
 * shared one: templates are stored on it; jobs get slices 1 and up). */
uint32_t runtime_idmap_slices(uint32_t uid_size, uint32_t gid_size, uint32_t slice);

#endif
