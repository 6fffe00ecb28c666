/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* TLS 1.3 with both ends' certificates verified against the site's CA (and
 * its CRL), and the other end's name checked against the peers list. */
#include <sys/stat.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "nodes/nodes-internal.h"

void nodes_tls_clear(void)
{
	ERR_clear_error();
}

const char *nodes_tls_error(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *s = e ? ERR_reason_error_string(e) : NULL;

	return s ? s : "";
}

static char *tls_fail(const char *what, const char *path)
{
	const char *why = nodes_tls_error();

	return xstrdup_printf("Cannot load %s %s%s%s", what, path, *why ? ": " : "", why);
}

/* The private key: a regular file of root's that nobody else may read. */
static int check_key_file(const char *path, char **ret_error)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		*ret_error = xstrdup_printf("Cannot read node_key %s: %s", path, strerror(errno));
		return -errno;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
		*ret_error = xstrdup_printf("node_key %s must be a file of root's that only root "
					    "may read (chown root %s; chmod 600 %s)",
					    path, path, path);
		return -EPERM;
	}
	return 0;
}

static int load_crl(SSL_CTX *ctx, const char *path, char **ret_error)
{
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	X509_LOOKUP *lu = X509_STORE_add_lookup(store, X509_LOOKUP_file());

	if (!lu || X509_load_crl_file(lu, path, X509_FILETYPE_PEM) <= 0) {
		*ret_error = tls_fail("node_crl", path);
		return -EINVAL;
	}
	/* the node certificates' revocation is checked (not the CA's own) */
	X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	return 0;
}

static int verify_cb(int ok, X509_STORE_CTX *x);

int nodes_tls_ctx(const struct nodes_config *cfg, SSL_CTX **ret, char **ret_error)
{
	SSL_CTX *ctx;
	int r;

	if ((r = check_key_file(cfg->key, ret_error)) < 0)
		return r;
	nodes_tls_clear();
	ctx = SSL_CTX_new(TLS_method());
	if (!ctx)
		return -ENOMEM;
	r = -EINVAL;
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION))
		*ret_error = xstrdup_printf("This OpenSSL cannot do TLS 1.3");
	else if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert) != 1)
		*ret_error = tls_fail("node_cert", cfg->cert);
	else if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key, SSL_FILETYPE_PEM) != 1)
		*ret_error = tls_fail("node_key", cfg->key);
	else if (SSL_CTX_check_private_key(ctx) != 1)
		*ret_error = xstrdup_printf("node_key %s does not belong to node_cert %s", cfg->key,
					    cfg->cert);
	else if (SSL_CTX_load_verify_locations(ctx, cfg->ca, NULL) != 1)
		*ret_error = tls_fail("node_ca", cfg->ca);
	else if (!cfg->crl || load_crl(ctx, cfg->crl, ret_error) >= 0)
		r = 0;
	if (r < 0) {
		SSL_CTX_free(ctx);
		return r;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
	SSL_CTX_set_verify_depth(ctx, 4);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* records are read from the socket many at a time (one read, not two
	 * per record); conn_read drains what is held before it yields */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_default_read_buffer_len(ctx, 256u << 10);
	SSL_CTX_set_num_tickets(ctx, 0); /* no resumption: every connection shows its certificate */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	*ret = ctx;
	return 0;
}

void nodes_tls_ctx_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

/* The certificate's common name, cut and cleaned, for messages only. */
static void cert_name(X509 *cert, char *buf, size_t size)
{
	char cn[256] = "";
	int len = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn,
					    sizeof(cn));
	size_t n = 0;

	for (int i = 0; i < len && n + 1 < size; i++)
		buf[n++] = cn[i] > 0x20 && cn[i] < 0x7f ? cn[i] : '?';
	buf[n] = 0;
}

static bool cert_names(X509 *cert, const char *name)
{
	/* a DNS name of the subjectAltName, else the CN; no wildcards */
	return X509_check_host(cert, name, 0, X509_CHECK_FLAG_NO_WILDCARDS, NULL) == 1;
}

static int verify_leaf_name(struct nodes_conn *c, X509 *cert, X509_STORE_CTX *x)
{
	struct nodes *n = c->n;

	if (c->outbound) {
		if (cert_names(cert, c->peer->spec.name))
			return 1;
		snprintf(c->verify_reason, sizeof(c->verify_reason),
			 "its certificate is for '%s', not for '%s'", c->cert_name,
			 c->peer->spec.name);
	} else {
		for (size_t i = 0; i < n->n_peers; i++)
			if (cert_names(cert, n->peers[i].spec.name)) {
				c->peer = &n->peers[i];
				return 1;
			}
		snprintf(c->verify_reason, sizeof(c->verify_reason),
			 "certificate name '%s' is not in the peers list", c->cert_name);
	}
	X509_STORE_CTX_set_error(x, X509_V_ERR_HOSTNAME_MISMATCH);
	return 0;
}

static int verify_cb(int ok, X509_STORE_CTX *x)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct nodes_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
	X509 *cert = X509_STORE_CTX_get_current_cert(x);
	int depth = X509_STORE_CTX_get_error_depth(x);

	if (!c)
		return 0;
	if (depth == 0 && cert)
		cert_name(cert, c->cert_name, sizeof(c->cert_name));
	if (!ok) {
		if (!c->verify_reason[0])
			snprintf(c->verify_reason, sizeof(c->verify_reason), "certificate%s%s: %s",
				 c->cert_name[0] ? " of " : "", c->cert_name,
				 X509_verify_cert_error_string(X509_STORE_CTX_get_error(x)));
		return 0;
	}
	if (depth > 0 || !cert)
		return 1;
	return verify_leaf_name(c, cert, x);
}

int nodes_tls_conn(struct nodes *n, struct nodes_conn *c)
{
	SSL *ssl = SSL_new(n->ctx);

	if (!ssl)
		return -ENOMEM;
	if (SSL_set_fd(ssl, c->fd) != 1) {
		SSL_free(ssl);
		return -ENOMEM;
	}
	SSL_set_app_data(ssl, c);
	if (c->outbound)
		SSL_set_connect_state(ssl);
	else
		SSL_set_accept_state(ssl);
	c->ssl = ssl;
	return 0;
}
