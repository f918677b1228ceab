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

struct smig_tls_ctx {
	SSL_CTX *ssl;
	uint8_t fp[SMIG_FP_LEN];
};

struct smig_tls_conn {
	SSL *ssl;
	bool want_write;
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
	FILE *f = fopen(cert_file, "r");
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

int smig_tls_ctx_new(struct smig_tls_ctx **out, const char *ca_file, const char *cert_file,
		     const char *key_file, char *err, size_t errlen)
{
	struct smig_tls_ctx *ctx;
	int rc;

	rc = smig_file_check_private(key_file, err, errlen);
	if (rc < 0)
		return rc;
	ctx = calloc(1, sizeof(*ctx));
	SMIG_ENSURE(ctx != NULL, SMIG_ENOMEM);
	ctx->ssl = SSL_CTX_new(TLS_method());
	if (ctx->ssl == NULL || tls_ctx_setup(ctx->ssl) < 0) {
		tls_errstr(err, errlen, "TLS context");
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(ctx->ssl, ca_file, NULL) != 1) {
		tls_errstr(err, errlen, ca_file);
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx->ssl, cert_file) != 1) {
		tls_errstr(err, errlen, cert_file);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx->ssl, key_file, SSL_FILETYPE_PEM) != 1) {
		tls_errstr(err, errlen, key_file);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx->ssl) != 1) {
		tls_errstr(err, errlen, "key does not match certificate");
		goto fail;
	}
	if (x509_fp(SSL_CTX_get0_certificate(ctx->ssl), ctx->fp) < 0) {
		snprintf(err, errlen, "%s: cannot compute fingerprint", cert_file);
		goto fail;
	}
	*out = ctx;
	return 0;
fail:
	smig_tls_ctx_free(ctx);
	return SMIG_ETLS;
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

int smig_tls_export(const struct smig_tls_conn *c, const char *label, const uint8_t *context,
		    size_t contextlen, uint8_t *out, size_t outlen)
{
	SMIG_ENSURE(SSL_is_init_finished(c->ssl), SMIG_EINVAL);
	SMIG_ENSURE(SSL_export_keying_material(c->ssl, out, outlen, label, strlen(label),
					       context, contextlen, 1) == 1,
		    SMIG_ECRYPTO);
	return 0;
}
