/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Proof of possession: a fresh challenge signed with the credential's key. */
#include <errno.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "common/common.h"
#include "credstore/credstore-internal.h"

#define CHALLENGE_CONTEXT "xos-login-challenge-v1"
#define KEY_MAX (64 * 1024)

int credstore_challenge_text(const char *node, const char *nonce_hex, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s\nnode=%s\nnonce=%s\n", CHALLENGE_CONTEXT, node, nonce_hex);

	if (n < 0 || (size_t)n >= len)
		return -ENOBUFS;
	return n;
}

static void md_ctx_freep(EVP_MD_CTX **p)
{
	EVP_MD_CTX_free(*p);
}

int credstore_chain_pubkey(const char *pem, size_t len, EVP_PKEY **ret)
{
	_cleanup_x509_stack_ STACK_OF(X509) *sk = NULL;
	EVP_PKEY *key;
	int r = credstore_read_chain(pem, len, CREDSTORE_CHAIN_DEPTH_MAX, &sk);

	if (r < 0)
		return r;
	key = X509_get_pubkey(sk_X509_value(sk, 0));
	if (!key)
		return -EINVAL;
	*ret = key;
	return 0;
}

void credstore_pubkey_free(EVP_PKEY *key)
{
	EVP_PKEY_free(key);
}

int credstore_check_signature_key(EVP_PKEY *key, const char *text, size_t text_len, const void *sig,
				  size_t sig_len, char **ret_error)
{
	_cleanup_(md_ctx_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();

	if (!md)
		return -ENOMEM;
	if (sig_len == 0 || sig_len > CREDSTORE_SIG_MAX ||
	    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)text, text_len) != 1) {
		ERR_clear_error();
		*ret_error = strdup("The answer to the challenge is not signed with the key of the "
				    "certificate: log in again with the matching key");
		return -EACCES;
	}
	return 0;
}

int credstore_check_signature(const char *pem, size_t len, const char *text, size_t text_len,
			      const void *sig, size_t sig_len, char **ret_error)
{
	_cleanup_pkey_ EVP_PKEY *key = NULL;
	int r = credstore_chain_pubkey(pem, len, &key);

	if (r < 0) {
		*ret_error = strdup("No certificate in the credential (PEM expected)");
		return -EINVAL;
	}
	return credstore_check_signature_key(key, text, text_len, sig, sig_len, ret_error);
}

static int pass_cb(char *buf, int size, int rwflag, void *u)
{
	const char *pass = u;
	size_t n;

	if (!pass)
		return -1;
	n = strlen(pass);
	if (n > (size_t)size)
		return -1;
	memcpy(buf, pass, n);
	return (int)n;
}

int credstore_load_key(const char *key_pem, size_t key_len, const char *passphrase, EVP_PKEY **ret,
		       char **ret_error)
{
	_cleanup_bio_ BIO *b = NULL;
	EVP_PKEY *k;

	if (key_len > KEY_MAX)
		return -E2BIG;
	b = BIO_new_mem_buf(key_pem, (int)key_len);
	if (!b)
		return -ENOMEM;
	k = PEM_read_bio_PrivateKey(b, NULL, pass_cb, (void *)passphrase);
	if (!k) {
		unsigned long e = ERR_peek_last_error();

		ERR_clear_error();
		*ret_error = strdup(ERR_GET_REASON(e) == PEM_R_NO_START_LINE
					    ? "No private key in the key file (PEM expected)"
					    : "Cannot read the private key: wrong passphrase?");
		return -EACCES;
	}
	*ret = k;
	return 0;
}

int credstore_sign_key(EVP_PKEY *key, const char *text, size_t text_len, void **ret_sig,
		       size_t *ret_sig_len)
{
	_cleanup_(md_ctx_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
	_cleanup_free_ unsigned char *sig = NULL;
	size_t n = 0;

	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, NULL, &n, (const unsigned char *)text, text_len) != 1 ||
	    !(sig = malloc(n)) ||
	    EVP_DigestSign(md, sig, &n, (const unsigned char *)text, text_len) != 1) {
		ERR_clear_error();
		return -EIO;
	}
	*ret_sig = TAKE_PTR(sig);
	*ret_sig_len = n;
	return 0;
}

int credstore_sign(const char *key_pem, size_t key_len, const char *passphrase, const char *text,
		   size_t text_len, void **ret_sig, size_t *ret_sig_len, char **ret_error)
{
	_cleanup_pkey_ EVP_PKEY *key = NULL;
	int r;

	r = credstore_load_key(key_pem, key_len, passphrase, &key, ret_error);
	if (r < 0)
		return r;
	r = credstore_sign_key(key, text, text_len, ret_sig, ret_sig_len);
	if (r < 0)
		*ret_error = strdup("Signing the challenge failed");
	return r;
}

int credstore_key_matches(EVP_PKEY *key, const char *pem, size_t len)
{
	_cleanup_x509_stack_ STACK_OF(X509) *sk = NULL;
	int r = credstore_read_chain(pem, len, CREDSTORE_CHAIN_DEPTH_MAX, &sk);

	if (r < 0)
		return r;
	r = EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(sk, 0)), key) == 1 ? 0 : -EACCES;
	ERR_clear_error();
	return r;
}
