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
#include <time.h>

struct x509_store_st;

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
/* Sign text with the private key in key_pem (passphrase may be NULL). */
int credstore_sign(const char *key_pem, size_t key_len, const char *passphrase, const char *text,
		   size_t text_len, void **ret_sig, size_t *ret_sig_len, char **ret_error);

/* The same in steps, for a holder of a key (the login agent). */
struct evp_pkey_st;
int credstore_load_key(const char *key_pem, size_t key_len, const char *passphrase,
		       struct evp_pkey_st **ret, char **ret_error);
int credstore_sign_key(struct evp_pkey_st *key, const char *text, size_t text_len, void **ret_sig,
		       size_t *ret_sig_len);
/* 0 if key is that of the end certificate of pem, -EACCES if not. */
int credstore_key_matches(struct evp_pkey_st *key, const char *pem, size_t len);

#endif
