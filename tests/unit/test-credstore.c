/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* credstore: certificates made at test time by tests/tools/mkcerts.sh (the
 * openssl command): chains, dates, CRLs, key usage, basic constraints,
 * proxies, VOs and roles, and proofs of possession. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/common.h"
#include "credstore/credstore.h"
#include "tap.h"

static char dir[] = "/tmp/xos-test-credstore-XXXXXX";

static char *slurp(const char *name, size_t *ret_len)
{
	char path[512];
	char *text = NULL;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (read_file_at(AT_FDCWD, path, 1 << 20, &text, ret_len) < 0)
		return NULL;
	return text;
}

/* write DIR/sub/name */
static void write_in(const char *sub, const char *name, const char *text)
{
	char path[512];
	_cleanup_close_ int fd = -EBADF;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || write_file_atomic_at(fd, name, text, strlen(text), 0644, false) < 0)
		fprintf(stderr, "# cannot write %s/%s\n", path, name);
}

static int make_certs(void)
{
	pid_t pid;
	int status;

	if (!mkdtemp(dir))
		return -errno;
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		if (null >= 0)
			dup2(null, STDOUT_FILENO);
		execl("/bin/sh", "sh", "tests/tools/mkcerts.sh", dir, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static struct credstore_trust *trust;
static const char *const served[] = { "biomed", "physics", NULL };

/* 0 and the identity, or the error and its reason */
static int verify(const char *name, bool proxies, bool crl_required, struct credstore_identity *id,
		  char **reason)
{
	struct credstore_policy p = { .allow_proxy = proxies,
				      .crl_required = crl_required,
				      .vos = served };
	size_t len;
	_cleanup_free_ char *pem = slurp(name, &len);

	*reason = NULL;
	if (!pem)
		return -ENOENT;
	return credstore_verify(trust, pem, len, &p, id, reason);
}

static void expect_ok(const char *name, bool proxies, const char *vo, enum credstore_role role,
		      const char *cn)
{
	struct credstore_identity id = { 0 };
	_cleanup_free_ char *reason = NULL;
	int r = verify(name, proxies, false, &id, &reason);

	ok(r == 0 && id.vo && strcmp(id.vo, vo) == 0 && id.role == role && id.dn &&
		   strstr(id.dn, cn) && id.not_after > time(NULL) && strlen(id.fingerprint) == 64,
	   "%s: accepted as %s of %s (%s; %s)", name, credstore_role_to_string(role), vo,
	   id.dn ? id.dn : "-", reason ? reason : strerror(-r));
	credstore_identity_done(&id);
}

static void expect_error(const char *name, bool proxies, bool crl_required, int want,
			 const char *words)
{
	struct credstore_identity id = { 0 };
	_cleanup_free_ char *reason = NULL;
	int r = verify(name, proxies, crl_required, &id, &reason);

	ok(r == want && reason && strstr(reason, words) && !id.dn, "%s: refused, \"%s\"", name,
	   reason ? reason : strerror(-r));
	credstore_identity_done(&id);
}

static void expect_refused(const char *name, bool proxies, bool crl_required, const char *words)
{
	expect_error(name, proxies, crl_required, -EACCES, words);
}

static void test_trust(void)
{
	char path[512];
	_cleanup_free_ char *err = NULL;
	struct credstore_trust *t = NULL;
	int r;

	snprintf(path, sizeof(path), "%s/trust", dir);
	r = credstore_trust_load(path, &trust, &err);
	ok(r == 0 && credstore_trust_n_cas(trust) == 3, "trust.d: three VO CAs and a CRL load (%s)",
	   err ? err : "ok");
	free(err), err = NULL;
	snprintf(path, sizeof(path), "%s/nonexistent", dir);
	r = credstore_trust_load(path, &t, &err);
	ok(r == -ENOENT && err && strstr(err, "trust directory"), "a missing trust.d: %s",
	   err ? err : "-");
	free(err), err = NULL;
	mkdir_p_at(AT_FDCWD, "/tmp/xos-test-credstore-empty", 0700);
	write_in("ca-biomed/new", "garbage.pem", "no pem\n");
	snprintf(path, sizeof(path), "%s/ca-biomed/new", dir);
	r = credstore_trust_load(path, &t, &err);
	ok(r == -EINVAL && err && strstr(err, "garbage.pem: no PEM block"),
	   "a file that is no PEM: %s", err ? err : "-");
	free(err), err = NULL;
	mkdir_p_at(AT_FDCWD, "/tmp/xos-test-credstore-empty", 0700);
	r = credstore_trust_load("/tmp/xos-test-credstore-empty", &t, &err);
	ok(r == -ENODATA && err && strstr(err, "No CA certificate"), "an empty trust.d: %s",
	   err ? err : "-");
	rmdir("/tmp/xos-test-credstore-empty");
}

static void test_verify(void)
{
	expect_ok("alice.pem", false, "biomed", CREDSTORE_ROLE_MEMBER, "CN=alice");
	expect_ok("dave.pem", false, "biomed", CREDSTORE_ROLE_ADMIN, "CN=dave");
	expect_ok("carol.pem", false, "physics", CREDSTORE_ROLE_MEMBER, "CN=carol");
	expect_refused("expired.pem", false, false, "expired on 2020-02-01");
	expect_refused("future.pem", false, false, "not valid before 2099-12-01");
	expect_refused("revoked.pem", false, false, "revoked");
	expect_refused("foreign.pem", false, false, "a CA this node does not trust");
	expect_refused("erin.pem", false, false, "does not serve VO chem");
	expect_refused("nosig.pem", false, false, "lacks digitalSignature");
	expect_refused("fake.pem", false, false, "is no CA, yet it issued");
	expect_refused("wrongvo.pem", false, false,
		       "names VO physics, but its CA is that of VO biomed");
	expect_refused("alice-proxy.pem", false, false, "does not accept proxies");
	expect_ok("alice-proxy.pem", true, "biomed", CREDSTORE_ROLE_MEMBER, "CN=alice");
	/* only biomed has a CRL */
	expect_refused("carol.pem", false, true, "No CRL of");
	expect_ok("alice.pem", false, "biomed", CREDSTORE_ROLE_MEMBER, "CN=alice");
	expect_error("alice.key", false, false, -EINVAL, "No certificate");
}

static void test_proxy_flag(void)
{
	struct credstore_identity id = { 0 };
	_cleanup_free_ char *reason = NULL;

	int r = verify("alice-proxy.pem", true, true, &id, &reason);

	ok(r == 0 && id.dn && id.proxy && strstr(id.dn, "/CN=alice/") && !strstr(id.dn, "4242"),
	   "a proxy names its member certificate's DN and says it is a proxy, CRLs required "
	   "(%s)",
	   reason  ? reason
	   : id.dn ? id.dn
		   : "-");
	credstore_identity_done(&id);
}

static void sign_check(const char *cert, const char *key, const char *pass, const char *signed_text,
		       const char *checked_text, int want, const char *what)
{
	size_t clen = 0, klen = 0, slen = 0;
	_cleanup_free_ char *pem = slurp(cert, &clen), *kpem = slurp(key, &klen);
	_cleanup_free_ void *sig = NULL;
	_cleanup_free_ char *err = NULL;
	int r;

	r = credstore_sign(kpem, klen, pass, signed_text, strlen(signed_text), &sig, &slen, &err);
	if (r == 0)
		r = credstore_check_signature(pem, clen, checked_text, strlen(checked_text), sig,
					      slen, &err);
	ok(r == want, "%s (%s)", what, err ? err : "ok");
}

static void test_pop(void)
{
	char a[256], b[256];

	ok(credstore_challenge_text("node1", "00ff", a, sizeof(a)) > 0 &&
		   strstr(a, "xos-login-challenge-v1") && strstr(a, "node=node1") &&
		   strstr(a, "nonce=00ff"),
	   "the challenge text names its purpose, the node and the nonce");
	ok(credstore_challenge_text("node1", "00ff", a, 10) == -ENOBUFS,
	   "a challenge text that does not fit is refused");
	credstore_challenge_text("node1", "0001", a, sizeof(a));
	credstore_challenge_text("node1", "0002", b, sizeof(b));
	sign_check("alice.pem", "alice.key", NULL, a, a, 0, "alice's key signs alice's challenge");
	sign_check("alice.pem", "alice-enc.key", "secret", a, a, 0,
		   "an encrypted key signs with its passphrase");
	sign_check("alice.pem", "alice-enc.key", "wrong", a, a, -EACCES,
		   "a wrong passphrase is refused");
	sign_check("alice.pem", "bob.key", NULL, a, a, -EACCES,
		   "a key that does not match the certificate is refused");
	sign_check("alice.pem", "alice.key", NULL, a, b, -EACCES,
		   "an answer to another challenge (replay) is refused");
	sign_check("alice-proxy.pem", "alice-proxy.pem", NULL, a, a, 0,
		   "a proxy file signs with the proxy's own key");
	sign_check("alice-proxy.pem", "alice.key", NULL, a, a, -EACCES,
		   "a proxy is checked against the proxy's key, not the member's");
}

static struct credstore_identity ident(const char *cert)
{
	struct credstore_identity id = { 0 };
	_cleanup_free_ char *reason = NULL;

	if (verify(cert, true, false, &id, &reason) < 0)
		fprintf(stderr, "# %s: %s\n", cert, reason ? reason : "?");
	return id;
}

static bool in_use_first(uid_t uid, void *userdata)
{
	return uid == *(uid_t *)userdata;
}

static int map(struct credstore_accounts *a, const char *cert, uint64_t now,
	       struct credstore_account *acc, char **err)
{
	struct credstore_identity id = ident(cert);
	int r;

	*err = NULL;
	r = id.dn ? credstore_map(a, &id, now, acc, err) : -EINVAL;
	credstore_identity_done(&id);
	return r;
}

static void test_map_pool(struct credstore_config *cfg, int sfd)
{
	struct credstore_accounts *a = NULL;
	struct credstore_account al = { 0 }, al2 = { 0 }, dv = { 0 }, ca = { 0 }, bo = { 0 };
	_cleanup_free_ char *err = NULL;
	uint64_t t0 = 1000000000ULL * 1000000;
	struct stat st;
	char path[512];
	uid_t keep;
	int r;

	r = credstore_accounts_open(sfd, cfg, false, &a, &err);
	ok(r == 0 && credstore_accounts_count(a) == 0, "no state file: no leases");
	r = map(a, "alice.pem", t0, &al, &err);
	ok(r == 0 && al.pool && !strcmp(al.name, "xos-biomed-001") && al.uid == cfg->pool_min &&
		   al.gid >= cfg->pool_min && al.gid <= cfg->pool_max,
	   "alice gets pool account xos-biomed-001, uid %u gid %u (%s)", al.uid, al.gid,
	   err ? err : "ok");
	snprintf(path, sizeof(path), "%s/homes/biomed/xos-biomed-001", dir);
	ok(stat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == al.uid &&
		   st.st_gid == al.gid && (st.st_mode & 07777) == 0700,
	   "her home %s is made, hers, 0700", path);
	free(err), err = NULL;
	r = map(a, "alice-proxy.pem", t0 + 1, &al2, &err);
	ok(r == 0 && !strcmp(al2.name, al.name) && al2.uid == al.uid,
	   "the same identity (through a proxy) gets the same account");
	free(err), err = NULL;
	r = map(a, "dave.pem", t0, &dv, &err);
	ok(r == 0 && !strcmp(dv.name, "xos-biomed-002") && dv.gid == al.gid && dv.uid != al.uid,
	   "another biomed member gets xos-biomed-002 in the same VO group");
	free(err), err = NULL;
	r = map(a, "carol.pem", t0, &ca, &err);
	ok(r == 0 && !strcmp(ca.name, "xos-physics-001") && ca.gid != al.gid,
	   "a physics member gets xos-physics-001 and the physics group");
	free(err), err = NULL;
	r = map(a, "bob.pem", t0, &bo, &err);
	ok(r == 0 && !bo.pool && !strcmp(bo.name, "daemon"),
	   "bob's DN in the grid-map file maps to its account, not to the pool (%s)",
	   err ? err : bo.name);
	credstore_accounts_free(a);
	a = NULL;
	free(err), err = NULL;

	r = credstore_accounts_open(sfd, cfg, false, &a, &err);
	ok(r == 0 && credstore_accounts_count(a) == 3 && credstore_accounts_by_uid(a, al.uid) &&
		   !strcmp(credstore_accounts_by_uid(a, al.uid)->name, al.name),
	   "the leases are read back (they survive a restart of xosd)");
	write_in("homes/biomed/xos-biomed-002", "file", "x");
	keep = al.uid;
	r = credstore_accounts_sweep(a, t0 + cfg->pool_idle_us - 1, NULL, NULL);
	ok(r == 0 && credstore_accounts_count(a) == 3, "no lease goes before its idle time");
	r = credstore_accounts_sweep(a, t0 + cfg->pool_idle_us + 10, in_use_first, &keep);
	ok(r == 1 && credstore_accounts_count(a) == 2 && !credstore_accounts_by_uid(a, ca.uid),
	   "after the idle time carol's lease goes; alice's (in use) and dave's (a file in "
	   "his home) stay");
	snprintf(path, sizeof(path), "%s/homes/physics/xos-physics-001", dir);
	ok(stat(path, &st) < 0 && errno == ENOENT, "the released account's empty home is removed");
	credstore_accounts_free(a);
	a = NULL;
	r = credstore_accounts_open(sfd, cfg, false, &a, &err);
	ok(r == 0 && credstore_accounts_count(a) == 2, "the release is persisted");
	credstore_accounts_free(a);
	credstore_account_done(&al), credstore_account_done(&al2), credstore_account_done(&dv);
	credstore_account_done(&ca), credstore_account_done(&bo);
}

static void test_map_refusals(struct credstore_config *cfg, int sfd)
{
	struct credstore_accounts *a = NULL;
	struct credstore_account acc = { 0 };
	_cleanup_free_ char *err = NULL;
	int r;

	write_file_atomic_at(sfd, CREDSTORE_ACCOUNTS_FILE, "group biomed x\n", 15, 0644, false);
	r = credstore_accounts_open(sfd, cfg, false, &a, &err);
	ok(r == -EBADMSG && err && strstr(err, "line 1"), "a damaged state file is refused: %s",
	   err ? err : "-");
	free(err), err = NULL;
	unlinkat(sfd, CREDSTORE_ACCOUNTS_FILE, 0);
	cfg->pool_max = cfg->pool_min + 1; /* one uid for an account, one gid for a group */
	credstore_accounts_open(sfd, cfg, false, &a, &err);
	r = map(a, "alice.pem", 1, &acc, &err);
	credstore_account_done(&acc);
	free(err), err = NULL;
	r = r ?: map(a, "dave.pem", 1, &acc, &err);
	credstore_account_done(&acc);
	ok(r == 0, "a pool of two ids holds two accounts");
	free(err), err = NULL;
	r = map(a, "carol.pem", 1, &acc, &err);
	ok(r == -ENOSPC && err && strstr(err, "No free pool account"), "a third is refused: %s",
	   err ? err : "-");
	free(err), err = NULL;
	credstore_accounts_free(a);
	a = NULL;
	unlinkat(sfd, CREDSTORE_ACCOUNTS_FILE, 0);
	cfg->pool_min = cfg->pool_max = 0;
	credstore_accounts_open(sfd, cfg, false, &a, &err);
	r = map(a, "alice.pem", 1, &acc, &err);
	ok(r == -EACCES && err && strstr(err, "pool_uids"),
	   "no pool and no grid-map entry: refused, %s", err ? err : "-");
	credstore_accounts_free(a);
}

static void test_map(void)
{
	struct credstore_config cfg;
	char path[512];
	_cleanup_close_ int sfd = -EBADF;
	_cleanup_free_ char *bob = NULL, *map_text = NULL;
	struct credstore_identity id = ident("bob.pem");

	credstore_config_init(&cfg);
	snprintf(path, sizeof(path), "%s/state", dir);
	mkdir(path, 0700);
	sfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cfg.pool_home = xstrdup_printf("%s/homes", dir);
	cfg.gridmap = xstrdup_printf("%s/grid-mapfile", dir);
	map_text = xstrdup_printf("# node owner's map\n\"%s\" daemon\nvo:physics/admin nobody\n",
				  id.dn ? id.dn : "?");
	credstore_identity_done(&id);
	write_in("", "grid-mapfile", map_text);
	ok(credstore_config_set(&cfg, "pool_uids", "3900000-3900009") == 0 &&
		   credstore_config_set(&cfg, "pool_uids", "10-20") == -EINVAL &&
		   credstore_config_set(&cfg, "pool_idle", "1d") == 0 &&
		   credstore_config_set(&cfg, "credential_vos", "biomed, physics") == 0 &&
		   credstore_config_set(&cfg, "credential_vos", "Bad") == -EINVAL &&
		   credstore_config_set(&cfg, "nonsense", "1") == -ENOKEY &&
		   strv_length(cfg.vos) == 2,
	   "xosd.conf keys: pool_uids, pool_idle, credential_vos; bad values refused");
	test_map_pool(&cfg, sfd);
	test_map_refusals(&cfg, sfd);
	credstore_config_free(&cfg);
}

int main(void)
{
	int r = make_certs();

	if (r < 0) {
		skip("openssl or tests/tools/mkcerts.sh failed", "certificates made: %s",
		     strerror(-r));
		return tap_done();
	}
	test_trust();
	if (trust) {
		test_verify();
		test_proxy_flag();
		test_map();
	}
	test_pop();
	credstore_trust_free(trust);
	rm_rf_at(AT_FDCWD, dir);
	return tap_done();
}
