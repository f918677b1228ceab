/*
 * tls.h - the peer channel: TLS 1.3 only, mutual X.509, on OpenSSL 3.
 *
 * One configuration, no negotiation knobs: TLS 1.3, AES-256-GCM or
 * ChaCha20-Poly1305, X25519 or P-256 key exchange, a client certificate
 * always required, certificates checked against the cluster CA, session
 * tickets and resumption off. The certificate fingerprint (SHA-256 of the
 * DER) is what the host table pins; callers compare it after the
 * handshake. smig_tls_export() gives RFC 8446 exporter values that bind
 * attestation evidence to this very session.
 *
 * Connections work on non-blocking sockets: calls return SMIG_EAGAIN and
 * smig_tls_want_write() tells which readiness to wait for.
 */
#ifndef SMIG_TLS_H
#define SMIG_TLS_H

#include <stdbool.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"

struct smig_tls_ctx;
struct smig_tls_conn;

/* What smig shows and checks of a certificate. */
struct smig_cert_info {
	char subject[256];       /* RFC 2253: "CN=h2,O=smig cluster" */
	uint8_t fp[SMIG_FP_LEN]; /* SHA-256 of its DER */
	time_t not_before;
	time_t not_after;
};

/*
 * Loads the CA, this host's certificate and key (the key file must pass
 * smig_file_check_private). err receives a message on failure.
 */
int smig_tls_ctx_new(struct smig_tls_ctx **out, const char *ca_file, const char *cert_file,
		     const char *key_file, char *err, size_t errlen);
/*
 * The same from PEM text already read (a reload: the warden read the
 * files, the worker cannot): the CA (one or more certificates), this
 * host's certificate (then its chain, if any) and its key, which must
 * belong to the certificate. The key text is the caller's to cleanse.
 */
int smig_tls_ctx_new_pem(struct smig_tls_ctx **out, const char *ca_pem, const char *cert_pem,
			 const char *key_pem, char *err, size_t errlen);
void smig_tls_ctx_free(struct smig_tls_ctx *ctx);
/* Fingerprint of this host's own certificate. */
const uint8_t *smig_tls_ctx_fp(const struct smig_tls_ctx *ctx);
/* This host's certificate, and the CA's (the first of tls.ca). */
const struct smig_cert_info *smig_tls_ctx_cert(const struct smig_tls_ctx *ctx);
const struct smig_cert_info *smig_tls_ctx_ca(const struct smig_tls_ctx *ctx);

/* A connection over fd (not owned: smig_tls_conn_free() leaves it open). */
int smig_tls_conn_new(struct smig_tls_ctx *ctx, int fd, bool server,
		      struct smig_tls_conn **out);
void smig_tls_conn_free(struct smig_tls_conn *c);

/* 0 when complete, SMIG_EAGAIN to retry, SMIG_ETLS on failure (see reason). */
int smig_tls_handshake(struct smig_tls_conn *c);
/* 0 with *n > 0, SMIG_EAGAIN, SMIG_ECLOSED (clean close) or SMIG_ETLS. */
int smig_tls_read(struct smig_tls_conn *c, void *buf, size_t len, size_t *n);
/* 0 with *n > 0 written, SMIG_EAGAIN or SMIG_ETLS. */
int smig_tls_write(struct smig_tls_conn *c, const void *buf, size_t len, size_t *n);
/*
 * After SMIG_ECLOSED: whether the peer ended the session with close_notify
 * (a stream that ends without it may have been cut short).
 */
bool smig_tls_closed_cleanly(const struct smig_tls_conn *c);
/*
 * Before the handshake: let OpenSSL hand the record layer to the kernel
 * (kTLS) where the kernel has the tls module and the cipher suits it; it
 * stays in user space otherwise. After it: which directions the kernel took.
 */
void smig_tls_want_ktls(struct smig_tls_conn *c);
bool smig_tls_ktls_send(const struct smig_tls_conn *c);
bool smig_tls_ktls_recv(const struct smig_tls_conn *c);
/* Sends close_notify (best effort). */
void smig_tls_close(struct smig_tls_conn *c);
/* After SMIG_EAGAIN: true if the socket must become writable, else readable. */
bool smig_tls_want_write(const struct smig_tls_conn *c);
/* Why the last call failed, for logs ("certificate verify failed: ..."). */
const char *smig_tls_reason(const struct smig_tls_conn *c);

int smig_tls_peer_fp(const struct smig_tls_conn *c, uint8_t fp[SMIG_FP_LEN]);
/* The peer's certificate as smig shows it. */
int smig_tls_peer_cert(const struct smig_tls_conn *c, struct smig_cert_info *out);
/*
 * The fingerprint of the certificate this end showed on c: the context's
 * when c was made, which a reload may since have replaced.
 */
int smig_tls_own_fp(const struct smig_tls_conn *c, uint8_t fp[SMIG_FP_LEN]);
/* The public key of the peer's certificate (borrowed; NULL if none). */
EVP_PKEY *smig_tls_peer_key(const struct smig_tls_conn *c);
const char *smig_tls_cipher(const struct smig_tls_conn *c);
const char *smig_tls_version(const struct smig_tls_conn *c);
/* RFC 8446 section 7.5 exporter: out[0..outlen) for label and context. */
int smig_tls_export(const struct smig_tls_conn *c, const char *label, const uint8_t *context,
		    size_t contextlen, uint8_t *out, size_t outlen);

/* SHA-256 of a PEM certificate file's DER encoding. */
int smig_tls_cert_fp(const char *cert_file, uint8_t fp[SMIG_FP_LEN]);
/* The first certificate of PEM text. */
int smig_tls_cert_info_pem(const char *pem, struct smig_cert_info *out);

/*
 * How near a certificate's end is: whole days from now to not_after in
 * *days_left (negative once it has passed), and whether that is past
 * (SMIG_CERT_EXPIRED), within warn_days (SMIG_CERT_EXPIRING) or not.
 */
enum smig_cert_expiry { SMIG_CERT_OK, SMIG_CERT_EXPIRING, SMIG_CERT_EXPIRED };
enum smig_cert_expiry smig_cert_expiry(const struct smig_cert_info *ci, time_t now,
				       int warn_days, long *days_left);
/* "2026-12-11T07:07:05Z" */
void smig_cert_time(time_t t, char out[32]);

#endif
