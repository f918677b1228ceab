/*
 * pki_int.h - what pki.c (the CA, issue) and pki_req.c (requests and
 * their signing) share: the CA's files and the one way a host
 * certificate is made. Only those two files include it.
 */
#ifndef SMIG_PKI_INT_H
#define SMIG_PKI_INT_H

#include "pki.h"

#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <sys/types.h>

/* "what: OpenSSL's last error" into err; returns rc. */
int pki_fail(char *err, size_t errlen, const char *what, int rc);
/* dir/name+ext into out; SMIG_EINVAL when it does not fit. */
int pki_join(char *out, size_t outlen, const char *dir, const char *name, const char *ext);
/* Writes key and/or cert (PEM) to path with mode, atomically. */
int pki_pem_write(const char *path, EVP_PKEY *key, X509 *cert, mode_t mode);
/* The CA of dir: its key (checked private first) and certificate. */
int pki_ca_load(const char *dir, EVP_PKEY **key, X509 **cert, char *err, size_t errlen);
/* A new Ed25519 key. */
EVP_PKEY *pki_keygen(void);
/* DNS:host (and IP:ip) as subjectAltNames; SMIG_EINVAL if ip is no address. */
int pki_names(const char *host, const char *ip, GENERAL_NAMES **out);
/*
 * The host certificate for pub, CN=host, with names as its subjectAltName,
 * signed by the CA; the caller frees it.
 */
int pki_host_cert(X509 *ca, EVP_PKEY *cakey, EVP_PKEY *pub, const char *host,
		  GENERAL_NAMES *names, const struct smig_pki_opts *o, X509 **out);
/* SHA-256 of a certificate's DER. */
int pki_cert_fp(X509 *cert, uint8_t fp[SMIG_FP_LEN]);

#endif
