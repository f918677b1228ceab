/*
 * tls.c - TLS 1.3 mutual-authentication channel on OpenSSL 3 (tls.h).
 */
#include "tls.h"
#include "error.h"
#include "file.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TLS_CIPHERSUITES "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS "X25519:P-256"
#define SMIG_TLS_PEM_MAX ((size_t)1 << 20)

struct smig_tls_ctx {
	SSL_CTX *ssl;
	uint8_t fp[SMIG_FP_LEN];
	struct smig_cert_info cert; /* this host's */
	struct smig_cert_info ca;   /* the first of tls.ca */
};

struct smig_tls_conn {
	SSL *ssl;
	bool want_write;
	bool clean_close; /* the peer's close_notify came */
	char reason[256];
};

static void tls_errstr(char *out, size_t outlen, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char buf[200] = "no detail";

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(out, outlen, "%s: %s", what, buf);
	ERR_clear_error();
}

static int x509_fp(X509 *x, uint8_t fp[SMIG_FP_LEN])
{
	unsigned int n = 0;

	SMIG_ENSURE(X509_digest(x, EVP_sha256(), fp, &n) == 1 && n == SMIG_FP_LEN,
		    SMIG_ECRYPTO);
	return 0;
}

int smig_tls_cert_fp(const char *cert_file, uint8_t fp[SMIG_FP_LEN])
{
	FILE *f = fopen(cert_file, "re");
	X509 *x;
	int rc;

	SMIG_ENSURE(f != NULL, SMIG_ENOENT);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	SMIG_ENSURE(x != NULL, SMIG_ECRYPTO);
	rc = x509_fp(x, fp);
	X509_free(x);
	return rc;
}

static int asn1_time(const ASN1_TIME *a, time_t *out)
{
	struct tm tm;

	SMIG_ENSURE(a != NULL && ASN1_TIME_to_tm(a, &tm) == 1, SMIG_ECRYPTO);
	*out = timegm(&tm);
	return 0;
}

static int cert_info(X509 *x, struct smig_cert_info *out)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long n;

	memset(out, 0, sizeof(*out));
	SMIG_ENSURE(bio != NULL, SMIG_ENOMEM);
	if (X509_NAME_print_ex(bio, X509_get_subject_name(x), 0,
			       XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		n = BIO_get_mem_data(bio, &data);
		snprintf(out->subject, sizeof(out->subject), "%.*s",
			 (int)(n < (long)sizeof(out->subject) ? n : (long)sizeof(out->subject) - 1),
			 data);
	}
	BIO_free(bio);
	SMIG_GUARD(x509_fp(x, out->fp));
	SMIG_GUARD(asn1_time(X509_get0_notBefore(x), &out->not_before));
	return asn1_time(X509_get0_notAfter(x), &out->not_after);
}

int smig_tls_cert_info_pem(const char *pem, struct smig_cert_info *out)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	int rc = x ? cert_info(x, out) : SMIG_ECRYPTO;

	ERR_clear_error();
	X509_free(x);
	BIO_free(bio);
	return rc;
}

enum smig_cert_expiry smig_cert_expiry(const struct smig_cert_info *ci, time_t now,
				       int warn_days, long *days_left)
{
	double left = difftime(ci->not_after, now);

	/* whole days: never more than there are (a day and a half is one) */
	*days_left = left >= 0 ? (long)(left / 86400) : -(long)((-left + 86399) / 86400);
	if (left <= 0)
		return SMIG_CERT_EXPIRED;
	if (left <= (double)warn_days * 86400)
		return SMIG_CERT_EXPIRING;
	return SMIG_CERT_OK;
}

void smig_cert_time(time_t t, char out[32])
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "%lld", (long long)t);
}

static int tls_ctx_setup(SSL_CTX *s)
{
	X509_VERIFY_PARAM *param = SSL_CTX_get0_param(s);

	SMIG_ENSURE(SSL_CTX_set_min_proto_version(s, TLS1_3_VERSION) == 1, SMIG_ETLS);
	SMIG_ENSURE(SSL_CTX_set_max_proto_version(s, TLS1_3_VERSION) == 1, SMIG_ETLS);
	SMIG_ENSURE(SSL_CTX_set_ciphersuites(s, TLS_CIPHERSUITES) == 1, SMIG_ETLS);
	SMIG_ENSURE(SSL_CTX_set1_groups_list(s, TLS_GROUPS) == 1, SMIG_ETLS);
	SSL_CTX_set_options(s, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
				       SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SMIG_ENSURE(SSL_CTX_set_num_tickets(s, 0) == 1, SMIG_ETLS);
	SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(s, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				    SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify(s, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_verify_depth(s, 4);
	X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
	return 0;
}

/* The CA's certificates of PEM text into the context's trust store. */
static int load_ca(SSL_CTX *s, const char *pem, struct smig_cert_info *first)
{
	X509_STORE *store = SSL_CTX_get_cert_store(s);
	BIO *bio = BIO_new_mem_buf(pem, -1);
	STACK_OF(X509_INFO) *infos = bio ? PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL) : NULL;
	int n = 0, rc = 0;

	for (int i = 0; rc == 0 && i < sk_X509_INFO_num(infos); i++) {
		X509 *x = sk_X509_INFO_value(infos, i)->x509;

		if (x == NULL)
			continue;
		if (X509_STORE_add_cert(store, x) != 1 || (n == 0 && cert_info(x, first) < 0))
			rc = SMIG_ETLS;
		n++;
	}
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	BIO_free(bio);
	return rc == 0 && n > 0 ? 0 : SMIG_ETLS;
}

/* This host's certificate, then its chain, from PEM text. */
static int load_cert(SSL_CTX *s, const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	int rc = x && SSL_CTX_use_certificate(s, x) == 1 ? 0 : SMIG_ETLS;

	X509_free(x);
	while (rc == 0 && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (SSL_CTX_add0_chain_cert(s, x) != 1) {
			X509_free(x);
			rc = SMIG_ETLS;
		}
	}
	if (rc == 0) /* the end of the text, not an error */
		ERR_clear_error();
	BIO_free(bio);
	return rc;
}

/* The key of PEM text: SMIG_ETLS if there is none, SMIG_EAUTH if it is another's. */
static int load_key(SSL_CTX *s, const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	int rc = k ? 0 : SMIG_ETLS;

	if (rc == 0 && X509_check_private_key(SSL_CTX_get0_certificate(s), k) != 1)
		rc = SMIG_EAUTH;
	if (rc == 0 && SSL_CTX_use_PrivateKey(s, k) != 1)
		rc = SMIG_ETLS;
	EVP_PKEY_free(k);
	BIO_free(bio);
	return rc;
}

int smig_tls_ctx_new_pem(struct smig_tls_ctx **out, const char *ca_pem, const char *cert_pem,
			 const char *key_pem, char *err, size_t errlen)
{
	struct smig_tls_ctx *ctx = calloc(1, sizeof(*ctx));

	SMIG_ENSURE(ctx != NULL, SMIG_ENOMEM);
	ctx->ssl = SSL_CTX_new(TLS_method());
	if (ctx->ssl == NULL || tls_ctx_setup(ctx->ssl) < 0) {
		tls_errstr(err, errlen, "TLS context");
		goto fail;
	}
	if (load_ca(ctx->ssl, ca_pem, &ctx->ca) < 0) {
		tls_errstr(err, errlen, "the CA (tls.ca): no PEM certificate");
		goto fail;
	}
	if (load_cert(ctx->ssl, cert_pem) < 0) {
		tls_errstr(err, errlen, "this host's certificate (tls.cert)");
		goto fail;
	}
	switch (load_key(ctx->ssl, key_pem)) {
	case 0:
		break;
	case SMIG_EAUTH:
		ERR_clear_error();
		snprintf(err, errlen, "tls.key does not match tls.cert (the key of another "
				      "certificate)");
		goto fail;
	default:
		tls_errstr(err, errlen, "this host's key (tls.key): no PEM private key");
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx->ssl) != 1) {
		tls_errstr(err, errlen, "tls.key does not match tls.cert");
		goto fail;
	}
	if (cert_info(SSL_CTX_get0_certificate(ctx->ssl), &ctx->cert) < 0) {
		snprintf(err, errlen, "tls.cert: cannot read its fingerprint and dates");
		goto fail;
	}
	memcpy(ctx->fp, ctx->cert.fp, SMIG_FP_LEN);
	*out = ctx;
	return 0;
fail:
	smig_tls_ctx_free(ctx);
	return SMIG_ETLS;
}

int smig_tls_ctx_new(struct smig_tls_ctx **out, const char *ca_file, const char *cert_file,
		     const char *key_file, char *err, size_t errlen)
{
	char *text[3] = { NULL, NULL, NULL };
	const char *path[3] = { ca_file, cert_file, key_file };
	char why[512];
	size_t len[3] = { 0, 0, 0 };
	int rc = smig_file_read(ca_file, SMIG_TLS_PEM_MAX, &text[0], &len[0], err, errlen);

	if (rc == 0)
		rc = smig_file_read(cert_file, SMIG_TLS_PEM_MAX, &text[1], &len[1], err, errlen);
	if (rc == 0)
		rc = smig_file_read_private(key_file, SMIG_TLS_PEM_MAX, &text[2], &len[2], err,
					    errlen);
	if (rc == 0) {
		rc = smig_tls_ctx_new_pem(out, text[0], text[1], text[2], why, sizeof(why));
		/* name the file: the PEM loader speaks of tls.ca, tls.cert, tls.key */
		if (rc < 0)
			snprintf(err, errlen, "%s (%s, %s, %s)", why, path[0], path[1], path[2]);
	}
	for (int i = 0; i < 3; i++) {
		if (text[i])
			OPENSSL_cleanse(text[i], len[i]);
		free(text[i]);
	}
	return rc;
}

void smig_tls_ctx_free(struct smig_tls_ctx *ctx)
{
	if (ctx == NULL)
		return;
	SSL_CTX_free(ctx->ssl);
	free(ctx);
}

const uint8_t *smig_tls_ctx_fp(const struct smig_tls_ctx *ctx)
{
	return ctx->fp;
}

const struct smig_cert_info *smig_tls_ctx_cert(const struct smig_tls_ctx *ctx)
{
	return &ctx->cert;
}

const struct smig_cert_info *smig_tls_ctx_ca(const struct smig_tls_ctx *ctx)
{
	return &ctx->ca;
}

int smig_tls_conn_new(struct smig_tls_ctx *ctx, int fd, bool server,
		      struct smig_tls_conn **out)
{
	struct smig_tls_conn *c = calloc(1, sizeof(*c));

	SMIG_ENSURE(c != NULL, SMIG_ENOMEM);
	c->ssl = SSL_new(ctx->ssl);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
		smig_tls_conn_free(c);
		return SMIG_ETLS;
	}
	if (server)
		SSL_set_accept_state(c->ssl);
	else
		SSL_set_connect_state(c->ssl);
	*out = c;
	return 0;
}

void smig_tls_conn_free(struct smig_tls_conn *c)
{
	if (c == NULL)
		return;
	SSL_free(c->ssl);
	free(c);
}

/* Maps an SSL_get_error() result to a code, recording the reason. */
/* What a failed certificate check means for the operator, for the common cases. */
static const char *verify_words(long vr)
{
	switch (vr) {
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
		return "the peer's certificate is not signed by this cluster's CA (tls.ca): "
		       "issue it with this CA (smig pki issue)";
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return "the peer's certificate has expired: issue it a new one (smig pki issue) "
		       "and update its fingerprint in the host table";
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return "the peer's certificate is not valid yet: check both hosts' clocks";
	case X509_V_ERR_INVALID_PURPOSE:
		return "the peer's certificate is not for TLS client and server use: issue it "
		       "with smig pki issue";
	default:
		return X509_verify_cert_error_string(vr);
	}
}

static int tls_result(struct smig_tls_conn *c, int ret, const char *what)
{
	int e = SSL_get_error(c->ssl, ret);
	long vr;

	c->want_write = false;
	switch (e) {
	case SSL_ERROR_WANT_READ:
		return SMIG_EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		c->want_write = true;
		return SMIG_EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		c->clean_close = true;
		snprintf(c->reason, sizeof(c->reason), "%s: peer closed the session", what);
		ERR_clear_error();
		return SMIG_ECLOSED;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0) {
			snprintf(c->reason, sizeof(c->reason), "%s: connection closed by peer",
				 what);
			return SMIG_ECLOSED;
		}
		break;
	case SSL_ERROR_SSL:
		/*
		 * EOF without close_notify: the peer's process or host went away (or
		 * someone cut the connection, which no record can prevent). A lost
		 * connection, not a record that failed to authenticate.
		 */
		if (ERR_GET_LIB(ERR_peek_error()) == ERR_LIB_SSL &&
		    ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			snprintf(c->reason, sizeof(c->reason),
				 "%s: connection closed by peer without close_notify", what);
			ERR_clear_error();
			return SMIG_ECLOSED;
		}
		break;
	default:
		break;
	}
	vr = SSL_get_verify_result(c->ssl);
	if (vr != X509_V_OK) {
		snprintf(c->reason, sizeof(c->reason), "%s: %s", what, verify_words(vr));
		ERR_clear_error();
	} else {
		tls_errstr(c->reason, sizeof(c->reason), what);
	}
	return SMIG_ETLS;
}

int smig_tls_handshake(struct smig_tls_conn *c)
{
	int ret;

	ERR_clear_error();
	ret = SSL_do_handshake(c->ssl);
	if (ret == 1)
		return 0;
	return tls_result(c, ret, "handshake");
}

int smig_tls_read(struct smig_tls_conn *c, void *buf, size_t len, size_t *n)
{
	int ret;

	ERR_clear_error();
	ret = SSL_read_ex(c->ssl, buf, len, n);
	if (ret == 1)
		return 0;
	*n = 0;
	return tls_result(c, ret, "read");
}

int smig_tls_write(struct smig_tls_conn *c, const void *buf, size_t len, size_t *n)
{
	int ret;

	ERR_clear_error();
	ret = SSL_write_ex(c->ssl, buf, len, n);
	if (ret == 1)
		return 0;
	*n = 0;
	return tls_result(c, ret, "write");
}

void smig_tls_close(struct smig_tls_conn *c)
{
	ERR_clear_error();
	if (SSL_is_init_finished(c->ssl))
		(void)SSL_shutdown(c->ssl);
	ERR_clear_error();
}

bool smig_tls_want_write(const struct smig_tls_conn *c)
{
	return c->want_write;
}

const char *smig_tls_reason(const struct smig_tls_conn *c)
{
	return c->reason[0] ? c->reason : "no error";
}

int smig_tls_peer_fp(const struct smig_tls_conn *c, uint8_t fp[SMIG_FP_LEN])
{
	X509 *peer = SSL_get0_peer_certificate(c->ssl);

	SMIG_ENSURE(peer != NULL, SMIG_EAUTH);
	return x509_fp(peer, fp);
}

int smig_tls_peer_cert(const struct smig_tls_conn *c, struct smig_cert_info *out)
{
	X509 *peer = SSL_get0_peer_certificate(c->ssl);

	SMIG_ENSURE(peer != NULL, SMIG_EAUTH);
	return cert_info(peer, out);
}

int smig_tls_own_fp(const struct smig_tls_conn *c, uint8_t fp[SMIG_FP_LEN])
{
	X509 *own = SSL_get_certificate(c->ssl);

	SMIG_ENSURE(own != NULL, SMIG_ENOENT);
	return x509_fp(own, fp);
}

EVP_PKEY *smig_tls_peer_key(const struct smig_tls_conn *c)
{
	X509 *peer = SSL_get0_peer_certificate(c->ssl);

	return peer ? X509_get0_pubkey(peer) : NULL;
}

const char *smig_tls_cipher(const struct smig_tls_conn *c)
{
	return SSL_get_cipher_name(c->ssl);
}

const char *smig_tls_version(const struct smig_tls_conn *c)
{
	return SSL_get_version(c->ssl);
}

bool smig_tls_closed_cleanly(const struct smig_tls_conn *c)
{
	return c->clean_close;
}

void smig_tls_want_ktls(struct smig_tls_conn *c)
{
	SSL_set_options(c->ssl, SSL_OP_ENABLE_KTLS);
}

bool smig_tls_ktls_send(const struct smig_tls_conn *c)
{
	return BIO_get_ktls_send(SSL_get_wbio(c->ssl)) > 0;
}

bool smig_tls_ktls_recv(const struct smig_tls_conn *c)
{
	return BIO_get_ktls_recv(SSL_get_rbio(c->ssl)) > 0;
}

int smig_tls_export(const struct smig_tls_conn *c, const char *label, const uint8_t *context,
		    size_t contextlen, uint8_t *out, size_t outlen)
{
	SMIG_ENSURE(SSL_is_init_finished(c->ssl), SMIG_EINVAL);
	SMIG_ENSURE(SSL_export_keying_material(c->ssl, out, outlen, label, strlen(label),
					       context, contextlen, 1) == 1,
		    SMIG_ECRYPTO);
	return 0;
}
