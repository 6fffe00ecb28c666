/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* credstore: certificates made at test time by tests/tools/mkcerts.sh (the
 * openssl command): chains, dates, CRLs, key usage, basic constraints,
 * proxies, VOs and roles, and proofs of possession. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	snprintf(path, sizeof(path), "%s/ca-biomed/garbage.pem", dir);
	write_file_atomic_at(AT_FDCWD, path, "no pem\n", 7, 0600, false);
	snprintf(path, sizeof(path), "%s/ca-biomed", dir);
	r = credstore_trust_load(path, &t, &err);
	ok(r == -EINVAL && err && strstr(err, "no PEM block"), "a file that is no PEM: %s",
	   err ? err : "-");
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
	}
	test_pop();
	credstore_trust_free(trust);
	rm_rf_at(AT_FDCWD, dir);
	return tap_done();
}
