/*
 * sign.h - signatures by a host's own key (Ed25519, the key of its TLS
 * certificate) over domain-separated messages.
 *
 * Every signed statement starts with a context string naming what it is
 * ("smig-audit-checkpoint-v1", ...), so a signature made for one purpose
 * can never be presented as another.
 */
#ifndef SMIG_SIGN_H
#define SMIG_SIGN_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#define SMIG_SIG_LEN 64

/* Loads a private key (refused unless 0600-like, see file.h). */
int smig_sign_load_key(const char *path, EVP_PKEY **key, char *err, size_t errlen);
/* The Ed25519 private key of PEM text (name says where it came from, for err). */
int smig_sign_key_pem(const char *pem, const char *name, EVP_PKEY **key, char *err,
		      size_t errlen);
/* Loads the public key of a PEM certificate. */
int smig_sign_load_cert_pub(const char *path, EVP_PKEY **pub, char *err, size_t errlen);
/* Signs ctx (a NUL-terminated context, included with its NUL) then msg. */
int smig_sign(EVP_PKEY *key, const char *ctx, const uint8_t *msg, size_t len,
	      uint8_t sig[SMIG_SIG_LEN]);
/* 0 if sig is pub's signature of ctx and msg; SMIG_ECRYPTO otherwise. */
int smig_sign_verify(EVP_PKEY *pub, const char *ctx, const uint8_t *msg, size_t len,
		     const uint8_t sig[SMIG_SIG_LEN]);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void smig_hex(const uint8_t *in, size_t n, char *out);
/* The 16 hex digits that begin s (the next character is not one) as a number. */
int smig_unhex_u64(const char *s, uint64_t *out);
/* Exactly 2n hex digits into out; SMIG_EINVAL otherwise. */
int smig_unhex(const char *s, uint8_t *out, size_t n);

#endif
