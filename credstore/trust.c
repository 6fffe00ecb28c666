/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The node's trust: a directory of CA certificates (*.pem) and CRLs (*.crl). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "common/common.h"
#include "credstore/credstore-internal.h"

#define TRUST_FILE_MAX (1024 * 1024)
#define TRUST_FILES_MAX 4096

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

void credstore_trust_free(struct credstore_trust *t)
{
	if (!t)
		return;
	X509_STORE_free(t->store);
	sk_X509_pop_free(t->cas, X509_free);
	sk_X509_CRL_pop_free(t->crls, X509_CRL_free);
	free(t);
}

static void trust_freep(struct credstore_trust **t)
{
	credstore_trust_free(*t);
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

static int add_cas(struct credstore_trust *t, BIO *b)
{
	int n = 0;

	for (;;) {
		X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);

		if (!x)
			break;
		if (!sk_X509_push(t->cas, x) || !X509_STORE_add_cert(t->store, x)) {
			X509_free(x);
			return -ENOMEM;
		}
		n++;
	}
	return n > 0 ? n : -EINVAL;
}

static int add_crls(struct credstore_trust *t, BIO *b)
{
	int n = 0;

	for (;;) {
		X509_CRL *c = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);

		if (!c)
			break;
		if (!sk_X509_CRL_push(t->crls, c) || !X509_STORE_add_crl(t->store, c)) {
			X509_CRL_free(c);
			return -ENOMEM;
		}
		n++;
	}
	return n > 0 ? n : -EINVAL;
}

static int load_file(struct credstore_trust *t, int dfd, const char *name, bool crl)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_bio_ BIO *b = NULL;
	size_t len;
	int r;

	r = read_file_at(dfd, name, TRUST_FILE_MAX, &text, &len);
	if (r < 0)
		return r;
	b = BIO_new_mem_buf(text, (int)len);
	if (!b)
		return -ENOMEM;
	r = crl ? add_crls(t, b) : add_cas(t, b);
	ERR_clear_error();
	return r;
}

static int load_dir(struct credstore_trust *t, int dfd, char **ret_error)
{
	_cleanup_(closedirp) DIR *dir = opendir_dup(dfd);
	struct dirent *de;
	unsigned n = 0;

	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		bool crl = has_suffix(de->d_name, ".crl");
		int r;

		if (!crl && !has_suffix(de->d_name, ".pem"))
			continue;
		if (++n > TRUST_FILES_MAX) {
			*ret_error = xstrdup_printf("More than %d files in the trust directory",
						    TRUST_FILES_MAX);
			return -E2BIG;
		}
		r = load_file(t, dfd, de->d_name, crl);
		if (r < 0) {
			*ret_error = xstrdup_printf(
				"Cannot read %s %s: %s",
				crl ? "the CRLs of" : "the CA certificates of", de->d_name,
				r == -EINVAL ? "no PEM block in it" : strerror(-r));
			return r;
		}
	}
	return 0;
}

int credstore_trust_load(const char *dir, struct credstore_trust **ret, char **ret_error)
{
	_cleanup_(trust_freep) struct credstore_trust *t = calloc(1, sizeof(*t));
	_cleanup_close_ int dfd = -EBADF;
	int r;

	if (!t)
		return -ENOMEM;
	t->store = X509_STORE_new();
	t->cas = sk_X509_new_null();
	t->crls = sk_X509_CRL_new_null();
	if (!t->store || !t->cas || !t->crls)
		return -ENOMEM;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		r = -errno;
		*ret_error = xstrdup_printf("Cannot open the trust directory %s: %s", dir,
					    strerror(errno));
		return r;
	}
	r = load_dir(t, dfd, ret_error);
	if (r < 0)
		return r;
	if (sk_X509_num(t->cas) == 0) {
		*ret_error = xstrdup_printf(
			"No CA certificate (*.pem) in the trust directory %s: add the CA of each VO "
			"the node serves",
			dir);
		return -ENODATA;
	}
	*ret = TAKE_PTR(t);
	return 0;
}

struct x509_store_st *credstore_trust_store(const struct credstore_trust *t)
{
	if (!X509_STORE_up_ref(t->store))
		return NULL;
	return t->store;
}

size_t credstore_trust_n_cas(const struct credstore_trust *t)
{
	return (size_t)sk_X509_num(t->cas);
}
