/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: a grid credential as a local user hands it to xosd (a
 * PEM chain: end certificate, then the member certificate under a proxy).
 * What xosd does with it: describe it (xlogin --status), keep its
 * certificates alone, verify it against a trust directory under two
 * policies (proxies and any VO; no proxies, a CRL required, two VOs), and
 * check a signature against its end certificate. The trust is the
 * certificates tests/tools/mkcerts.sh made once (tests/fuzz/credential-trust),
 * checked at the moment written in its file "now", so that the seeds stay
 * valid for ever. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/common.h"
#include "credstore/credstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define TRUST_DIR "tests/fuzz/credential-trust"

static struct credstore_trust *trust;
static time_t trust_now;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	_cleanup_free_ char *err = NULL, *text = NULL, *now = NULL;
	const char *dir = getenv("XOS_FUZZ_CREDENTIAL_TRUST");
	size_t len;

	if (!dir)
		dir = TRUST_DIR; /* (tests/fuzz/run.sh runs from the repository's root) */
	now = xstrdup_printf("%s/now", dir);
	if (!now || credstore_trust_load(dir, &trust, &err) < 0 ||
	    read_file_at(AT_FDCWD, now, 64, &text, &len) < 0 ||
	    (trust_now = (time_t)strtoll(text, NULL, 10)) <= 0) {
		fprintf(stderr, "fuzz-credential: cannot load the trust %s: %s\n", dir,
			err ? err : "no readable \"now\" file");
		abort();
	}
	return 0;
}

static void verify(const char *pem, size_t len, const struct credstore_policy *p)
{
	struct credstore_identity id = { 0 };
	_cleanup_free_ char *err = NULL;

	if (credstore_verify(trust, pem, len, p, &id, &err) < 0) {
		if (!err)
			abort(); /* a refusal always says why */
		return;
	}
	/* what becomes a pool account's name must be a VO's name */
	if (!id.dn || !id.vo || !credstore_vo_name_valid(id.vo))
		abort();
	if (id.proxy && !p->allow_proxy)
		abort();
	credstore_identity_done(&id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const two_vos[] = { "biomed", "physics", NULL };
	const struct credstore_policy any = { .allow_proxy = true, .now = trust_now };
	const struct credstore_policy strict = { .crl_required = true,
						 .vos = two_vos,
						 .now = trust_now };
	const char *pem = (const char *)data;
	struct credstore_identity id = { 0 };
	_cleanup_free_ char *certs = NULL, *again = NULL, *err = NULL;
	struct evp_pkey_st *key = NULL;
	size_t certs_len, again_len, sig_len = size < 256 ? size : 256;

	if (size > CREDSTORE_CHAIN_MAX)
		return 0; /* (xosd reads no more) */
	if (credstore_chain_describe(pem, size, &id) >= 0)
		credstore_identity_done(&id);
	if (credstore_chain_pem(pem, size, &certs, &certs_len) >= 0 &&
	    credstore_chain_pem(certs, certs_len, &again, &again_len) < 0)
		abort(); /* its own certificates read again */
	verify(pem, size, &any);
	verify(pem, size, &strict);
	if (credstore_chain_pubkey(pem, size, &key) >= 0) {
		(void)credstore_check_signature_key(key, "challenge", 9, data + size - sig_len,
						    sig_len, &err);
		credstore_pubkey_free(key);
	}
	return 0;
}
