/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef XOS_CREDSTORE_INTERNAL_H
#define XOS_CREDSTORE_INTERNAL_H
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "credstore/credstore.h"

struct credstore_trust {
	X509_STORE *store;
	STACK_OF(X509) * cas;
	STACK_OF(X509_CRL) * crls;
};

static inline void x509_freep(X509 **p)
{
	X509_free(*p);
}
static inline void x509_stack_freep(STACK_OF(X509) * *p)
{
	sk_X509_pop_free(*p, X509_free);
}
static inline void bio_freep(BIO **p)
{
	BIO_free(*p);
}
static inline void pkey_freep(EVP_PKEY **p)
{
	EVP_PKEY_free(*p);
}
static inline void store_ctx_freep(X509_STORE_CTX **p)
{
	X509_STORE_CTX_free(*p);
}
#define _cleanup_x509_ __attribute__((cleanup(x509_freep)))
#define _cleanup_x509_stack_ __attribute__((cleanup(x509_stack_freep)))
#define _cleanup_bio_ __attribute__((cleanup(bio_freep)))
#define _cleanup_pkey_ __attribute__((cleanup(pkey_freep)))

/* Read every certificate of a PEM text (other blocks skipped), at most max. */
int credstore_read_chain(const char *pem, size_t len, size_t max, STACK_OF(X509) * *ret);
/* The value of attribute nid in name (first one), or NULL; malloc'd. */
char *credstore_name_entry(const X509_NAME *name, int nid);

#endif
