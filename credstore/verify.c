/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Verification of a grid credential: chain, dates, CRLs, key usage, basic
 * constraints, proxies; then the VO and role it carries (DECISIONS (af)). */
#include <errno.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/common.h"
#include "credstore/credstore-internal.h"

static const char *const role_names[_CREDSTORE_ROLE_MAX] = {
	[CREDSTORE_ROLE_MEMBER] = "member",
	[CREDSTORE_ROLE_ADMIN] = "admin",
};

const char *credstore_role_to_string(enum credstore_role r)
{
	return r >= 0 && r < _CREDSTORE_ROLE_MAX ? role_names[r] : NULL;
}

enum credstore_role credstore_role_from_string(const char *s)
{
	for (int i = 0; s && i < _CREDSTORE_ROLE_MAX; i++)
		if (strcmp(s, role_names[i]) == 0)
			return (enum credstore_role)i;
	return _CREDSTORE_ROLE_INVALID;
}

void credstore_identity_done(struct credstore_identity *id)
{
	free(id->dn);
	free(id->vo);
	*id = (struct credstore_identity){ 0 };
}

int credstore_read_chain(const char *pem, size_t len, size_t max, STACK_OF(X509) * *ret)
{
	_cleanup_x509_stack_ STACK_OF(X509) *sk = sk_X509_new_null();
	_cleanup_bio_ BIO *b = NULL;

	if (len > CREDSTORE_CHAIN_MAX)
		return -E2BIG;
	b = BIO_new_mem_buf(pem, (int)len);
	if (!sk || !b)
		return -ENOMEM;
	for (;;) {
		X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);

		if (!x)
			break;
		if ((size_t)sk_X509_num(sk) >= max || !sk_X509_push(sk, x)) {
			X509_free(x);
			ERR_clear_error();
			return -E2BIG;
		}
	}
	ERR_clear_error();
	if (sk_X509_num(sk) == 0)
		return -EINVAL;
	*ret = TAKE_PTR(sk);
	return 0;
}

char *credstore_name_entry(const X509_NAME *name, int nid)
{
	int i = X509_NAME_get_index_by_NID(name, nid, -1);
	unsigned char *utf8 = NULL;
	char *s;
	int n;

	if (i < 0)
		return NULL;
	n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
	if (n < 0)
		return NULL;
	s = strndup((char *)utf8, (size_t)n);
	OPENSSL_free(utf8);
	return s;
}

/* The slash form grid-map files use: /O=biomed/CN=alice/title=member */
static char *name_text(const X509_NAME *name)
{
	_cleanup_bio_ BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long n;

	if (!b)
		return NULL;
	for (int i = 0; i < X509_NAME_entry_count(name); i++) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
		int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
		unsigned char *utf8 = NULL;
		int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));

		if (len < 0)
			return NULL;
		BIO_printf(b, "/%s=%.*s", nid != NID_undef ? OBJ_nid2sn(nid) : "?", len,
			   (char *)utf8);
		OPENSSL_free(utf8);
	}
	n = BIO_get_mem_data(b, &data);
	if (n < 0)
		return NULL;
	/* (no control characters: a DN goes into line-based files and logs) */
	for (long i = 0; i < n; i++)
		if ((unsigned char)data[i] < 0x20 || data[i] == 0x7f)
			data[i] = '?';
	return strndup(data, (size_t)n);
}

static char *time_text(const ASN1_TIME *t)
{
	struct tm tm;
	char buf[64];

	if (!t || !ASN1_TIME_to_tm(t, &tm) ||
	    !strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M UTC", &tm))
		return strdup("?");
	return strdup(buf);
}

/* A missing CRL is forgiven for a certificate no CA issued (a proxy's issuer
 * is the member certificate) and, unless crl_required, for every other. */
static int verify_cb(int ok, X509_STORE_CTX *ctx)
{
	const struct credstore_policy *p = X509_STORE_CTX_get_app_data(ctx);

	if (ok || X509_STORE_CTX_get_error(ctx) != X509_V_ERR_UNABLE_TO_GET_CRL)
		return ok;
	if (!p || !p->crl_required)
		return 1;
	return (X509_get_extension_flags(X509_STORE_CTX_get_current_cert(ctx)) & EXFLAG_PROXY) ? 1
											       : 0;
}

static char *chain_error(X509_STORE_CTX *ctx)
{
	int e = X509_STORE_CTX_get_error(ctx);
	X509 *x = X509_STORE_CTX_get_current_cert(ctx);
	_cleanup_free_ char *dn = x ? name_text(X509_get_subject_name(x)) : strdup("?");
	_cleanup_free_ char *issuer = x ? name_text(X509_get_issuer_name(x)) : strdup("?");
	_cleanup_free_ char *when = NULL;

	switch (e) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
		when = time_text(x ? X509_get0_notAfter(x) : NULL);
		return xstrdup_printf("Certificate %s expired on %s: get a new one from its CA", dn,
				      when);
	case X509_V_ERR_CERT_NOT_YET_VALID:
		when = time_text(x ? X509_get0_notBefore(x) : NULL);
		return xstrdup_printf("Certificate %s is not valid before %s", dn, when);
	case X509_V_ERR_CERT_REVOKED:
		return xstrdup_printf("Certificate %s has been revoked by its CA (CRL)", dn);
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		return xstrdup_printf(
			"Certificate %s is issued by %s, a CA this node does not trust", dn,
			issuer);
	case X509_V_ERR_PROXY_CERTIFICATES_NOT_ALLOWED:
		return xstrdup_printf("Proxy certificate %s refused: this node does not accept "
				      "proxies (xosd.conf credential_proxies); log in with your "
				      "certificate and key",
				      dn);
	case X509_V_ERR_INVALID_CA:
	case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
		return xstrdup_printf("Certificate %s is no CA, yet it issued a certificate "
				      "(basic constraints)",
				      dn);
	case X509_V_ERR_UNABLE_TO_GET_CRL:
		return xstrdup_printf("No CRL of %s in the node's trust directory (xosd.conf "
				      "credential_crl_required)",
				      issuer);
	case X509_V_ERR_CRL_HAS_EXPIRED:
		return xstrdup_printf("The CRL of %s has expired: the node owner must install a "
				      "fresh one",
				      issuer);
	default:
		return xstrdup_printf("Certificate %s refused: %s", dn,
				      X509_verify_cert_error_string(e));
	}
}

static int verify_chain(const struct credstore_trust *t, STACK_OF(X509) * sk,
			const struct credstore_policy *p, STACK_OF(X509) * *ret_chain,
			char **ret_error)
{
	__attribute__((cleanup(store_ctx_freep))) X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	unsigned long flags = X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL |
			      X509_V_FLAG_X509_STRICT;
	X509_VERIFY_PARAM *vp;

	if (!ctx || !X509_STORE_CTX_init(ctx, t->store, sk_X509_value(sk, 0), sk))
		return -ENOMEM;
	if (p->allow_proxy)
		flags |= X509_V_FLAG_ALLOW_PROXY_CERTS;
	vp = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_flags(vp, flags);
	X509_VERIFY_PARAM_set_depth(vp, CREDSTORE_CHAIN_DEPTH_MAX);
	if (p->now)
		X509_VERIFY_PARAM_set_time(vp, p->now);
	X509_STORE_CTX_set_app_data(ctx, (void *)p);
	X509_STORE_CTX_set_verify_cb(ctx, verify_cb);
	if (X509_verify_cert(ctx) != 1) {
		*ret_error = chain_error(ctx);
		ERR_clear_error();
		return -EACCES;
	}
	*ret_chain = X509_STORE_CTX_get1_chain(ctx);
	return *ret_chain ? 0 : -ENOMEM;
}

static bool vo_served(const struct credstore_policy *p, const char *vo)
{
	if (!p->vos)
		return true;
	for (size_t i = 0; p->vos[i]; i++)
		if (strcmp(p->vos[i], vo) == 0)
			return true;
	return false;
}

static time_t chain_not_after(STACK_OF(X509) * chain)
{
	time_t end = 0;

	for (int i = 0; i < sk_X509_num(chain); i++) {
		struct tm tm;
		time_t e;

		if (!ASN1_TIME_to_tm(X509_get0_notAfter(sk_X509_value(chain, i)), &tm))
			continue;
		e = timegm(&tm);
		if (!end || e < end)
			end = e;
	}
	return end;
}

static int fingerprint(X509 *x, char ret[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;

	if (!X509_digest(x, EVP_sha256(), md, &n) || n != 32)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++)
		snprintf(ret + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* The member certificate (the first that is no proxy), its VO (the O of its
 * subject, which must be that of the CA that issued it) and role (title). */
static int read_membership(STACK_OF(X509) * chain, const struct credstore_policy *p,
			   struct credstore_identity *id, char **ret_error)
{
	_cleanup_free_ char *ca_vo = NULL, *role = NULL;
	X509 *member = NULL, *ca;
	int i;

	for (i = 0; i < sk_X509_num(chain); i++) {
		member = sk_X509_value(chain, i);
		if (X509_get_extension_flags(member) & EXFLAG_PROXY)
			id->proxy = true;
		else
			break;
	}
	if (i + 1 >= sk_X509_num(chain) || (X509_get_extension_flags(member) & EXFLAG_CA)) {
		*ret_error = strdup("The credential holds no member certificate of a VO: use the "
				    "certificate your VO's CA issued to you");
		return -EACCES;
	}
	ca = sk_X509_value(chain, i + 1);
	id->dn = name_text(X509_get_subject_name(member));
	id->vo = credstore_name_entry(X509_get_subject_name(member), NID_organizationName);
	ca_vo = credstore_name_entry(X509_get_subject_name(ca), NID_organizationName);
	role = credstore_name_entry(X509_get_subject_name(member), NID_title);
	if (!id->dn)
		return -ENOMEM;
	if (!id->vo || !ca_vo || strcmp(id->vo, ca_vo) != 0 || !credstore_vo_name_valid(id->vo)) {
		*ret_error = xstrdup_printf("Certificate %s names VO %s, but its CA is that of VO "
					    "%s: a VO's CA issues certificates of that VO only",
					    id->dn, id->vo ? id->vo : "(none)",
					    ca_vo ? ca_vo : "(none)");
		return -EACCES;
	}
	id->role = role ? credstore_role_from_string(role) : CREDSTORE_ROLE_MEMBER;
	if (id->role < 0) {
		*ret_error = xstrdup_printf(
			"Certificate %s has role '%s': a role is member or admin", id->dn, role);
		return -EACCES;
	}
	if (!vo_served(p, id->vo)) {
		*ret_error = xstrdup_printf("This node does not serve VO %s (xosd.conf "
					    "credential_vos)",
					    id->vo);
		return -EACCES;
	}
	return fingerprint(member, id->fingerprint);
}

static int check_end_usage(X509 *end, char **ret_error)
{
	uint32_t ku = X509_get_key_usage(end);

	if (ku != UINT32_MAX && !(ku & KU_DIGITAL_SIGNATURE)) {
		_cleanup_free_ char *dn = name_text(X509_get_subject_name(end));

		*ret_error = xstrdup_printf("Certificate %s may not sign (its key usage lacks "
					    "digitalSignature): it cannot log in",
					    dn ? dn : "?");
		return -EACCES;
	}
	return 0;
}

int credstore_verify(const struct credstore_trust *t, const char *pem, size_t len,
		     const struct credstore_policy *p, struct credstore_identity *ret,
		     char **ret_error)
{
	_cleanup_x509_stack_ STACK_OF(X509) *sk = NULL;
	_cleanup_x509_stack_ STACK_OF(X509) *chain = NULL;
	struct credstore_identity id = { 0 };
	int r;

	r = credstore_read_chain(pem, len, CREDSTORE_CHAIN_DEPTH_MAX, &sk);
	if (r < 0) {
		*ret_error = strdup(r == -E2BIG
					    ? "Credential too large"
					    : "No certificate in the credential (PEM expected)");
		return r == -E2BIG ? -EINVAL : r;
	}
	r = check_end_usage(sk_X509_value(sk, 0), ret_error);
	if (r < 0)
		return r;
	r = verify_chain(t, sk, p, &chain, ret_error);
	if (r < 0)
		return r;
	r = read_membership(chain, p, &id, ret_error);
	if (r < 0) {
		credstore_identity_done(&id);
		return r;
	}
	id.not_after = chain_not_after(chain);
	*ret = id;
	return 0;
}

int credstore_chain_describe(const char *pem, size_t len, struct credstore_identity *ret)
{
	_cleanup_x509_stack_ STACK_OF(X509) *sk = NULL;
	struct credstore_identity id = { 0 };
	_cleanup_free_ char *role = NULL;
	X509 *member = NULL;
	int r = credstore_read_chain(pem, len, CREDSTORE_CHAIN_DEPTH_MAX, &sk);

	if (r < 0)
		return r;
	for (int i = 0; i < sk_X509_num(sk); i++) {
		member = sk_X509_value(sk, i);
		if (!(X509_get_extension_flags(member) & EXFLAG_PROXY))
			break;
		id.proxy = true;
	}
	id.dn = name_text(X509_get_subject_name(member));
	id.vo = credstore_name_entry(X509_get_subject_name(member), NID_organizationName);
	role = credstore_name_entry(X509_get_subject_name(member), NID_title);
	id.role = role ? credstore_role_from_string(role) : CREDSTORE_ROLE_MEMBER;
	id.not_after = chain_not_after(sk);
	if (!id.dn || !id.vo || fingerprint(member, id.fingerprint) < 0) {
		credstore_identity_done(&id);
		return -EINVAL;
	}
	*ret = id;
	return 0;
}

int credstore_chain_pem(const char *pem, size_t len, char **ret, size_t *ret_len)
{
	_cleanup_x509_stack_ STACK_OF(X509) *sk = NULL;
	_cleanup_bio_ BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long n;
	int r = credstore_read_chain(pem, len, CREDSTORE_CHAIN_DEPTH_MAX, &sk);

	if (r < 0)
		return r;
	if (!b)
		return -ENOMEM;
	for (int i = 0; i < sk_X509_num(sk); i++)
		if (!PEM_write_bio_X509(b, sk_X509_value(sk, i)))
			return -ENOMEM;
	n = BIO_get_mem_data(b, &data);
	if (n <= 0 || !(*ret = strndup(data, (size_t)n)))
		return -ENOMEM;
	*ret_len = (size_t)n;
	return 0;
}
