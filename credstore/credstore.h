/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* credstore: grid credentials (X.509), the trust a node keeps, proofs of
 * possession and (later) the mapping of grid identities to local accounts.
 *
 * A VO is carried by its own signing CA (DECISIONS (af)): a member certificate
 * is issued directly by the CA of its VO, the organisation (O) of both subjects
 * names the VO, and the member certificate's `title` attribute its role
 * (member or admin). Proxy certificates (RFC 3820) may follow the member
 * certificate where the caller allows them. */
#ifndef XOS_CREDSTORE_H
#define XOS_CREDSTORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct x509_store_st;
struct evp_pkey_st;

/* ---- trust: the CA certificates and CRLs of a directory (trust.d) */
struct credstore_trust;

/* Load every *.pem (CA certificates) and *.crl (CRLs, PEM) file of dir.
 * -ENOENT: no such directory; -EINVAL: a file does not parse (ret_error
 * names it); -ENODATA: no CA certificate at all. */
int credstore_trust_load(const char *dir, struct credstore_trust **ret, char **ret_error);
void credstore_trust_free(struct credstore_trust *t);
/* The OpenSSL store (one more reference: X509_STORE_free it), for other
 * users of the same trust (a TLS context, say). */
struct x509_store_st *credstore_trust_store(const struct credstore_trust *t);
size_t credstore_trust_n_cas(const struct credstore_trust *t);

/* ---- verification */
enum credstore_role {
	CREDSTORE_ROLE_MEMBER,
	CREDSTORE_ROLE_ADMIN,
	_CREDSTORE_ROLE_MAX,
	_CREDSTORE_ROLE_INVALID = -22, /* -EINVAL */
};
const char *credstore_role_to_string(enum credstore_role r);
enum credstore_role credstore_role_from_string(const char *s);

struct credstore_policy {
	bool allow_proxy;       /* RFC 3820 proxies accepted */
	bool crl_required;      /* refuse a CA that has no CRL in the trust */
	const char *const *vos; /* NULL-terminated VOs served; NULL: every VO */
	time_t now;             /* 0: the current time */
};

struct credstore_identity {
	char *dn; /* the member certificate's subject, RFC 2253 */
	char *vo; /* [a-z0-9][a-z0-9._-]{0,31} */
	enum credstore_role role;
	bool proxy;           /* came with a proxy certificate */
	time_t not_after;     /* the earliest end of validity in the chain */
	char fingerprint[65]; /* sha256 of the member certificate, hex */
};
void credstore_identity_done(struct credstore_identity *id);

/* The largest chain accepted, PEM text. */
#define CREDSTORE_CHAIN_MAX (64 * 1024)
#define CREDSTORE_CHAIN_DEPTH_MAX 8

/* Verify a chain (PEM: the end certificate first, then a member certificate
 * when the first is a proxy; private keys in the text are skipped). 0 and the
 * identity, or -EACCES (refused) / -EINVAL (unreadable) / -ENOMEM and a reason
 * in ret_error ("Certificate has expired ...: ...", say). */
int credstore_verify(const struct credstore_trust *t, const char *pem, size_t len,
		     const struct credstore_policy *p, struct credstore_identity *ret,
		     char **ret_error);

/* What a chain says about itself, unverified (xlogin --status): the member
 * certificate's DN, VO and role, proxy, the earliest end of validity. */
int credstore_chain_describe(const char *pem, size_t len, struct credstore_identity *ret);

/* The certificates of a PEM text alone (private keys left out), as PEM. */
int credstore_chain_pem(const char *pem, size_t len, char **ret, size_t *ret_len);

/* ---- proof of possession */
#define CREDSTORE_CHALLENGE_BYTES 32
#define CREDSTORE_SIG_MAX 1024

/* The text a client signs for a challenge (nonce as hex): a fixed context
 * string, the node's name and the nonce, so that a signature is never valid
 * for another purpose or node. Returns the length written, -ENOBUFS. */
int credstore_challenge_text(const char *node, const char *nonce_hex, char *buf, size_t len);
/* Check sig (over the challenge text, SHA-256) against the end certificate of
 * pem. -EACCES: it does not verify (ret_error says so). */
int credstore_check_signature(const char *pem, size_t len, const char *text, size_t text_len,
			      const void *sig, size_t sig_len, char **ret_error);
/* The same in steps, for a verifier that keeps the end certificate's public
 * key of a chain it has verified (its cache). */
int credstore_chain_pubkey(const char *pem, size_t len, struct evp_pkey_st **ret);
int credstore_check_signature_key(struct evp_pkey_st *key, const char *text, size_t text_len,
				  const void *sig, size_t sig_len, char **ret_error);
void credstore_pubkey_free(struct evp_pkey_st *key);
/* Sign text with the private key in key_pem (passphrase may be NULL). */
int credstore_sign(const char *key_pem, size_t key_len, const char *passphrase, const char *text,
		   size_t text_len, void **ret_sig, size_t *ret_sig_len, char **ret_error);

/* A VO's name: [a-z0-9][a-z0-9._-]*, at most 24 characters (a pool
 * account's name, xos-<vo>-NNN, then fits in 32). */
#define CREDSTORE_VO_NAME_MAX 24
bool credstore_vo_name_valid(const char *s);

/* ---- xosd.conf keys (credential_*, pool_*) */
struct credstore_config {
	char *trust_dir;          /* credential_trust_dir: CA certificates and CRLs */
	char **vos;               /* credential_vos: the VOs served (none: no grid logins) */
	bool proxies;             /* credential_proxies */
	bool crl_required;        /* credential_crl_required */
	char *gridmap;            /* credential_gridmap: static DN / VO[/role] -> account */
	uid_t pool_min, pool_max; /* pool_uids: ids of pool accounts and VO groups (0: none) */
	char *pool_home;          /* pool_home: homes go to <pool_home>/<vo>/<account> */
	uint64_t pool_idle_us;    /* pool_idle: an unused lease is released after this */
	char *vo_dir;             /* vo_policy_dir: VO.conf per VO (xos-vo.conf(5)) */
};
void credstore_config_init(struct credstore_config *c);
void credstore_config_free(struct credstore_config *c);
/* One key: 0, -ENOKEY (not ours), -EINVAL (bad value), -ENOMEM. */
int credstore_config_set(struct credstore_config *c, const char *k, const char *v);
int credstore_config_finish(struct credstore_config *c);

/* ---- account mapping: the grid-map file and pool accounts leased per VO */
struct credstore_account {
	char *name; /* local account (pool: xos-<vo>-NNN) */
	uid_t uid;  /* pool accounts only; a static entry is resolved by name */
	gid_t gid;  /* the VO's group */
	char *home; /* <pool_home>/<vo>/<name> */
	char *vo;
	char *dn;
	uint64_t last_used_us;
	bool pool;
};
void credstore_account_done(struct credstore_account *a);

struct credstore_accounts;
/* Read the lease state (state_dir/FILE, FILE = CREDSTORE_ACCOUNTS_FILE; a
 * missing one is empty). -EBADMSG: a damaged file (ret_error says where). */
#define CREDSTORE_ACCOUNTS_FILE "accounts"
int credstore_accounts_open(int state_dirfd, const struct credstore_config *cfg, bool sync,
			    struct credstore_accounts **ret, char **ret_error);
void credstore_accounts_free(struct credstore_accounts *a);
/* Is uid still holding something (a job, a checkpoint)? Supplied by xosd. */
typedef bool (*credstore_in_use_fn)(uid_t uid, void *userdata);
/* The account of an identity: a grid-map entry (DN first, then VO/role, then
 * VO), else its pool lease (reused, or a new one leased and persisted, its
 * home made). -EACCES/-ENOSPC with a reason when there is none. */
int credstore_map(struct credstore_accounts *a, const struct credstore_identity *id,
		  uint64_t now_us, struct credstore_account *ret, char **ret_error);
/* Release pool leases unused for pool_idle whose uid is not in use and whose
 * home holds nothing; returns how many. */
int credstore_accounts_sweep(struct credstore_accounts *a, uint64_t now_us,
			     credstore_in_use_fn in_use, void *userdata);
/* The pool account of uid, or NULL. */
const struct credstore_account *credstore_accounts_by_uid(const struct credstore_accounts *a,
							  uid_t uid);
/* The pool account named name, or NULL. */
const struct credstore_account *credstore_accounts_by_name(const struct credstore_accounts *a,
							   const char *name);
size_t credstore_accounts_count(const struct credstore_accounts *a);

/* The same in steps, for a holder of a key (the login agent). */
int credstore_load_key(const char *key_pem, size_t key_len, const char *passphrase,
		       struct evp_pkey_st **ret, char **ret_error);
int credstore_sign_key(struct evp_pkey_st *key, const char *text, size_t text_len, void **ret_sig,
		       size_t *ret_sig_len);
/* 0 if key is that of the end certificate of pem, -EACCES if not. */
int credstore_key_matches(struct evp_pkey_st *key, const char *pem, size_t len);

/* ---- VO policies: vo.d/VO.conf of the node owner, tightened by the VO's
 * administrators (DECISIONS (aj), xos-vo.conf(5)). Pure logic: the daemon
 * reads the files and sums what a VO's jobs use. */
enum credstore_vo_net {
	CREDSTORE_VO_NET_NONE,     /* --net none only */
	CREDSTORE_VO_NET_BRIDGE,   /* the bridge, within the VO's own group */
	CREDSTORE_VO_NET_OUTBOUND, /* and traffic out of the node */
	CREDSTORE_VO_NET_PORTS,    /* and published ports */
	_CREDSTORE_VO_NET_MAX,
	_CREDSTORE_VO_NET_INVALID = -22, /* -EINVAL */
};
const char *credstore_vo_net_to_string(enum credstore_vo_net n);
enum credstore_vo_net credstore_vo_net_from_string(const char *s);

#define CREDSTORE_VO_SHARE_MAX 10000

/* The keys, in the order of xos-vo.conf(5). */
enum credstore_vo_key {
	CREDSTORE_VO_TEMPLATES,
	CREDSTORE_VO_JOB_MEMORY,
	CREDSTORE_VO_JOB_CPUS,
	CREDSTORE_VO_JOB_PIDS,
	CREDSTORE_VO_JOB_DISK,
	CREDSTORE_VO_JOB_TIME,
	CREDSTORE_VO_VO_MEMORY,
	CREDSTORE_VO_VO_CPUS,
	CREDSTORE_VO_VO_PIDS,
	CREDSTORE_VO_VO_DISK,
	CREDSTORE_VO_VO_JOBS,
	CREDSTORE_VO_NETWORK,
	CREDSTORE_VO_VOLUMES,
	CREDSTORE_VO_CHECKPOINT,
	CREDSTORE_VO_CHECKPOINT_QUOTA,
	CREDSTORE_VO_MIGRATE,
	CREDSTORE_VO_MIGRATE_NODES,
	CREDSTORE_VO_FAIR_SHARE,
	_CREDSTORE_VO_KEY_MAX,
	_CREDSTORE_VO_KEY_INVALID = -22, /* -EINVAL */
};
const char *credstore_vo_key_to_string(enum credstore_vo_key k);
enum credstore_vo_key credstore_vo_key_from_string(const char *s);

/* Amounts of a job, or of all live jobs of a VO (0: none / no limit). */
struct credstore_vo_amounts {
	uint64_t memory, millicpus, pids, disk, jobs, time_us;
};

#define CREDSTORE_VO_FILE_MAX (64 * 1024) /* bytes of a policy file */
#define CREDSTORE_VO_LIST_MAX 64          /* items of a list value */

struct credstore_vo_policy {
	char *files[2];   /* [0] the node owner's file, [1] the VO admin's (or NULL) */
	char **templates; /* NULL: any */
	struct credstore_vo_amounts job, vo;
	enum credstore_vo_net net;
	char **volumes;       /* roots jobs may mount below (NULL: none) */
	bool checkpoint;      /* checkpoints and restarts allowed */
	uint64_t ckpt_quota;  /* bytes of checkpoint storage for the VO (0: the node's) */
	bool migrate;         /* migrations allowed */
	char **migrate_nodes; /* NULL: any node */
	/* the VO's weight in fair share between the groups of a node's queue
	 * (its usage is divided by it): 1 to CREDSTORE_VO_SHARE_MAX, 1 unset */
	uint64_t fair_share;
	/* which file set each key (0 or 1), -1: not set (the default) */
	signed char from[_CREDSTORE_VO_KEY_MAX];
};
void credstore_vo_policy_done(struct credstore_vo_policy *p);
/* Parse a policy file's text (file: its path, for messages). -EINVAL with
 * "FILE line N: ..." in ret_error; -E2BIG past CREDSTORE_VO_FILE_MAX. */
int credstore_vo_policy_parse(const char *text, size_t len, const char *file,
			      struct credstore_vo_policy *ret, char **ret_error);
/* The text of a policy (only the keys set), as a file has it. */
char *credstore_vo_policy_format(const struct credstore_vo_policy *p);
/* The policy in force: base (the node owner's) tightened by admin (may be
 * NULL). strict: -EPERM when admin loosens a key of base (ret_error names
 * it); else base's value stands for such a key (a file tightened since). */
int credstore_vo_policy_tighten(const struct credstore_vo_policy *base,
				const struct credstore_vo_policy *admin, bool strict,
				struct credstore_vo_policy *ret, char **ret_error);

/* A new job as the policy sees it. Limits of 0 in job are filled from the
 * policy's per-job limits first (credstore_vo_fill). */
struct credstore_vo_job {
	const char *template;
	struct credstore_vo_amounts amounts; /* jobs: unused */
	enum credstore_vo_net net;           /* what it asks for */
	bool ports;                          /* publishes ports */
	const char *const *volumes;          /* sources of its volumes (the home left out) */
	size_t n_volumes;
	bool checkpoint; /* asks for periodic checkpoints or restarts on failure */
};
void credstore_vo_fill(const struct credstore_vo_policy *p, struct credstore_vo_amounts *job);
/* 0, or -EACCES and "Refused by VO V's policy (FILE, KEY = VALUE): why"
 * in ret_error. used: what the VO's live jobs hold now. */
int credstore_vo_check_job(const struct credstore_vo_policy *p, const char *vo,
			   const struct credstore_vo_job *job,
			   const struct credstore_vo_amounts *used, char **ret_error);
/* A checkpoint or restart of a job of the VO (ckpt_used: bytes its
 * checkpoints take now); a migration to node. */
int credstore_vo_check_checkpoint(const struct credstore_vo_policy *p, const char *vo,
				  uint64_t ckpt_used, char **ret_error);
int credstore_vo_check_migrate(const struct credstore_vo_policy *p, const char *vo,
			       const char *node, char **ret_error);

#endif
