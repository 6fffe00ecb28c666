/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Grid logins on the client socket (DECISIONS (af)): a connection asks for a
 * challenge, answers it with its credential chain and a signature made with
 * the credential's key, and from then on acts as the local account its
 * identity maps to (a grid-map entry or a pool account of its VO). */
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "runtime/runtime-internal.h"

struct conn_grid {
	struct credstore_identity id;
	struct credstore_account acc;
};

/* Chains verified lately, so that each command's login costs a signature
 * check only: a chain is verified again after GRID_VERIFIED_US or at its
 * expiry, whichever comes first (the trust is read at start-up only). */
#define GRID_VERIFIED_MAX 16
#define GRID_VERIFIED_US (300ULL * 1000000)
struct grid_verified {
	char *chain;
	struct credstore_identity id;
	struct evp_pkey_st *key;
	uint64_t until_us;
	uint64_t used_us;
};

static void verified_done(struct grid_verified *v)
{
	free(v->chain);
	credstore_identity_done(&v->id);
	credstore_pubkey_free(v->key);
	*v = (struct grid_verified){ 0 };
}

static int identity_copy(const struct credstore_identity *from, struct credstore_identity *ret)
{
	*ret = *from;
	ret->dn = strdup(from->dn);
	ret->vo = strdup(from->vo);
	if (ret->dn && ret->vo)
		return 0;
	credstore_identity_done(ret);
	return -ENOMEM;
}

/* The entry of chain, verified now if it is not (or no longer) there. */
static struct grid_verified *verified_chain(struct daemon *d, const char *chain, uint64_t now,
					    char **ret_error)
{
	struct credstore_config *cc = &d->cfg->cred;
	struct credstore_policy p = { .allow_proxy = cc->proxies,
				      .crl_required = cc->crl_required,
				      .vos = (const char *const *)cc->vos };
	struct grid_verified *v, *unused = NULL, *oldest = NULL, fresh = { 0 };
	size_t len = strlen(chain);
	int r;

	for (size_t i = 0; i < GRID_VERIFIED_MAX; i++) {
		struct grid_verified *e = &d->verified[i];

		if (e->chain && e->until_us > now && !strcmp(e->chain, chain)) {
			e->used_us = now;
			return e;
		}
		if (!e->chain || e->until_us <= now)
			unused = unused ? unused : e;
		else if (!oldest || e->used_us < oldest->used_us)
			oldest = e;
	}
	v = unused ? unused : oldest;
	r = credstore_verify(d->trust, chain, len, &p, &fresh.id, ret_error);
	if (r == 0 && credstore_chain_pubkey(chain, len, &fresh.key) < 0)
		r = -EINVAL;
	fresh.chain = r == 0 ? strdup(chain) : NULL;
	if (!fresh.chain) {
		verified_done(&fresh);
		return NULL;
	}
	fresh.until_us = now + GRID_VERIFIED_US;
	if ((uint64_t)fresh.id.not_after * 1000000 < fresh.until_us)
		fresh.until_us = (uint64_t)fresh.id.not_after * 1000000;
	fresh.used_us = now;
	verified_done(v);
	*v = fresh;
	return v;
}

void grid_conn_free(struct conn *c)
{
	free(c->nonce);
	c->nonce = NULL;
	if (c->grid) {
		credstore_identity_done(&c->grid->id);
		credstore_account_done(&c->grid->acc);
		free(c->grid);
		c->grid = NULL;
	}
}

/* Pool ids must not be ids a container's root range maps to. */
static int check_pool_ids(struct daemon *d)
{
	const struct credstore_config *cc = &d->cfg->cred;
	uint64_t end_u = (uint64_t)d->subuid_base + (uint64_t)d->n_slices * d->subuid_size;
	uint64_t end_g = (uint64_t)d->subgid_base + (uint64_t)d->n_slices * d->subgid_size;

	if (!cc->pool_min)
		return 0;
	if ((cc->pool_max >= d->subuid_base && cc->pool_min < end_u) ||
	    (cc->pool_max >= d->subgid_base && cc->pool_min < end_g)) {
		log_error("pool_uids %u-%u overlaps root's subordinate ids (uids %u-%" PRIu64
			  ", gids %u-%" PRIu64 ") that containers map to: choose a range "
			  "outside them in xosd.conf",
			  (unsigned)cc->pool_min, (unsigned)cc->pool_max, d->subuid_base, end_u - 1,
			  d->subgid_base, end_g - 1);
		return -EINVAL;
	}
	return 0;
}

int grid_setup(struct daemon *d)
{
	struct credstore_config *cc = &d->cfg->cred;
	_cleanup_free_ char *err = NULL;
	int r;

	if (!cc->vos || !cc->vos[0])
		return 0; /* no grid logins */
	if ((r = check_pool_ids(d)) < 0)
		return r;
	if (gethostname(d->node_name, sizeof(d->node_name) - 1) < 0)
		snprintf(d->node_name, sizeof(d->node_name), "localhost");
	d->verified = calloc(GRID_VERIFIED_MAX, sizeof(*d->verified));
	if (!d->verified)
		return log_error_errno(-ENOMEM, "Out of memory");
	r = credstore_trust_load(cc->trust_dir, &d->trust, &err);
	if (r < 0)
		return log_error_errno(r, "%s (xosd.conf credential_trust_dir)",
				       err ? err : "Failed to load the trust directory");
	r = credstore_accounts_open(d->state_fd, cc, d->cfg->sync_writes, &d->accounts, &err);
	if (r < 0)
		return log_error_errno(r, "%s: move it away to start with no leases",
				       err ? err : "Failed to read the pool account state");
	log_info("Grid logins for VO(s) %s: %zu CA certificate(s) in %s, %zu pool lease(s)",
		 cc->vos[0], credstore_trust_n_cas(d->trust), cc->trust_dir,
		 credstore_accounts_count(d->accounts));
	return 0;
}

void grid_free(struct daemon *d)
{
	for (size_t i = 0; d->verified && i < GRID_VERIFIED_MAX; i++)
		verified_done(&d->verified[i]);
	free(d->verified);
	d->verified = NULL;
	credstore_trust_free(d->trust);
	d->trust = NULL;
	credstore_accounts_free(d->accounts);
	d->accounts = NULL;
}

void grid_vo_session_limits(struct daemon *d, const char *vo, struct runtime_limits *ret)
{
	(void)d;
	(void)vo;
	*ret = (struct runtime_limits){ 0 }; /* VO policies: not on this branch yet */
}

static bool uid_in_use(uid_t uid, void *userdata)
{
	struct daemon *d = userdata;

	for (struct job *j = d->jobs; j; j = j->next)
		if (j->uid == uid || j->owner_uid == uid)
			return true;
	return false;
}

int ops_auth_challenge(struct daemon *d, struct conn *c, yajl_val t, struct xerr *err)
{
	_cleanup_gen_ yajl_gen g = NULL;
	unsigned char raw[CREDSTORE_CHALLENGE_BYTES];
	char hex[2 * CREDSTORE_CHALLENGE_BYTES + 1];

	if (!d->trust)
		return xerr_set(err, -EOPNOTSUPP, "not_supported",
				"This node accepts no grid credentials (the node owner "
				"has set no credential_vos in xosd.conf); run jobs as a "
				"local user");
	if (c->grid)
		return xerr_set(err, -EEXIST, "conflict", "This connection has logged in already");
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return xerr_set(err, -ENOMEM, "internal", "No random bytes for a challenge");
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	free(c->nonce);
	c->nonce = strdup(hex);
	g = ops_reply_begin();
	if (!c->nonce || !g)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	json_gen_kv_str(g, "nonce", hex);
	json_gen_kv_str(g, "node", d->node_name);
	conn_send_map(c, g);
	return 0;
}

/* The uid and gid the account gives the connection. */
static int account_ids(struct conn *c, struct credstore_account *acc, struct xerr *err)
{
	struct passwd *pw;

	if (acc->pool)
		return 0;
	pw = getpwnam(acc->name);
	if (!pw || pw->pw_uid == 0) {
		xerr_set(err, -EACCES, "permission_denied",
			 "The grid-map file maps %s to '%s', %s: ask the node owner to "
			 "fix the grid-map file",
			 acc->dn, acc->name,
			 pw ? "root, which never runs jobs" : "which is no local account");
		return -EACCES;
	}
	acc->uid = pw->pw_uid;
	acc->gid = pw->pw_gid;
	return 0;
}

static int reply_auth(struct conn *c, struct xerr *err)
{
	_cleanup_gen_ yajl_gen g = ops_reply_begin();
	const struct conn_grid *gr = c->grid;

	if (!g)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	json_gen_kv_str(g, "dn", gr->id.dn);
	json_gen_kv_str(g, "vo", gr->id.vo);
	json_gen_kv_str(g, "role", credstore_role_to_string(gr->id.role));
	json_gen_kv_bool(g, "proxy", gr->id.proxy);
	json_gen_kv_int(g, "not_after", (int64_t)gr->id.not_after);
	json_gen_kv_str(g, "user", gr->acc.name);
	json_gen_kv_uint(g, "uid", gr->acc.uid);
	json_gen_kv_bool(g, "pool", gr->acc.pool);
	conn_send_map(c, g);
	return 0;
}

/* Check chain and signature against the connection's challenge (used up). */
static int check_answer(struct daemon *d, struct conn *c, yajl_val t, struct conn_grid *gr,
			struct xerr *err)
{
	struct grid_verified *v;
	_cleanup_free_ char *nonce = TAKE_PTR(c->nonce), *sig = NULL, *why = NULL;
	const char *chain = NULL, *sig64 = NULL;
	char text[512];
	size_t sig_len = 0;
	int r, n;

	if (json_get_string(t, "chain", &chain) < 0 ||
	    json_get_string(t, "signature", &sig64) < 0) {
		xerr_set(err, -EINVAL, "bad_request",
			 "Fields 'chain' and 'signature' are required");
		return -EINVAL;
	}
	if (!nonce) {
		xerr_set(err, -EINVAL, "bad_request",
			 "No challenge on this connection: ask for one (auth_challenge) "
			 "and sign it; an answer is good for its own challenge only");
		return -EINVAL;
	}
	n = credstore_challenge_text(d->node_name, nonce, text, sizeof(text));
	if (n < 0 || base64_decode(sig64, strlen(sig64), &sig, &sig_len) < 0) {
		xerr_set(err, -EINVAL, "bad_request", "The signature is not base64");
		return -EINVAL;
	}
	v = verified_chain(d, chain, now_usec(), &why);
	r = v ? credstore_check_signature_key(v->key, text, (size_t)n, sig, sig_len, &why)
	      : -EACCES;
	if (r == 0)
		r = identity_copy(&v->id, &gr->id);
	if (r < 0) {
		log_info("Refused a grid login (uid %u): %s", (unsigned)c->uid, why ? why : "?");
		xerr_set(err, -EACCES, "permission_denied", "%s", why ? why : "Credential refused");
		return r;
	}
	return 0;
}

int ops_auth(struct daemon *d, struct conn *c, yajl_val t, struct xerr *err)
{
	_cleanup_free_ struct conn_grid *gr = calloc(1, sizeof(*gr));
	_cleanup_free_ char *why = NULL;
	uint64_t now = now_usec();
	int r;

	if (!gr)
		return xerr_set(err, -ENOMEM, "internal", "Out of memory");
	if (!d->trust)
		return xerr_set(err, -EOPNOTSUPP, "not_supported",
				"This node accepts no grid credentials");
	if (c->grid)
		return xerr_set(err, -EEXIST, "conflict", "This connection has logged in already");
	if ((r = check_answer(d, c, t, gr, err)) < 0) {
		credstore_identity_done(&gr->id);
		return r;
	}
	(void)credstore_accounts_sweep(d->accounts, now, uid_in_use, d);
	r = credstore_map(d->accounts, &gr->id, now, &gr->acc, &why);
	if (r < 0 || (r = account_ids(c, &gr->acc, err)) < 0) {
		if (r < 0)
			xerr_set(err, r, r == -ENOSPC ? "conflict" : "permission_denied", "%s",
				 why ? why : "No local account for this identity");
		credstore_account_done(&gr->acc);
		credstore_identity_done(&gr->id);
		return r;
	}
	log_info("Grid login of %s (VO %s, %s) from uid %u as %s (uid %u)", gr->id.dn, gr->id.vo,
		 credstore_role_to_string(gr->id.role), (unsigned)c->uid, gr->acc.name,
		 (unsigned)gr->acc.uid);
	c->uid = gr->acc.uid;
	c->gid = gr->acc.gid;
	c->grid = TAKE_PTR(gr);
	return reply_auth(c, err);
}

static int job_grid(struct job *j, const struct conn_grid *gr)
{
	j->grid_dn = strdup(gr->id.dn);
	j->grid_vo = strdup(gr->id.vo);
	j->grid_role = strdup(credstore_role_to_string(gr->id.role));
	return j->grid_dn && j->grid_vo && j->grid_role ? 0 : -ENOMEM;
}

/* A logged-in connection's job runs as its account: a pool account's
 * group is its VO's; a grid-map account has its own groups. */
int grid_job_account(struct daemon *d, struct conn *c, const char *user, struct job *j,
		     struct xerr *err)
{
	const struct credstore_account *acc = &c->grid->acc;
	gid_t groups[64];
	int ng = ELEMENTSOF(groups);

	if (user && strcmp(user, acc->name) != 0) {
		xerr_set(err, -EACCES, "permission_denied",
			 "A grid login runs jobs as its mapped account %s; drop --user", acc->name);
		return -EPERM;
	}
	j->uid = acc->uid;
	j->gid = acc->gid;
	j->user = strdup(acc->name);
	if (acc->pool) {
		j->home = strdup(acc->home);
		ng = 1;
		groups[0] = acc->gid;
	} else {
		struct passwd *pw = getpwnam(acc->name);

		j->home = strdup(pw ? pw->pw_dir : "/");
		if (getgrouplist(acc->name, acc->gid, groups, &ng) < 0)
			ng = 0;
	}
	j->groups = calloc((size_t)ng + 1, sizeof(gid_t));
	for (int i = 0; j->groups && i < ng; i++)
		if (groups[i] != 0)
			j->groups[j->n_groups++] = groups[i];
	if (!j->user || !j->home || !j->groups || job_grid(j, c->grid) < 0) {
		xerr_set(err, -ENOMEM, "internal", "Out of memory");
		return -ENOMEM;
	}
	return 0;
}
