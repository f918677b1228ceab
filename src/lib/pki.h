/*
 * pki.h - a small cluster PKI for smig hosts, on OpenSSL's API.
 *
 * smig_pki_init() makes the cluster CA (DIR/ca.key, DIR/ca.crt). A host's
 * certificate comes one of two ways:
 *  - smig_pki_csr() on the host itself: a new key (DIR/HOST.key, 0600),
 *    which never leaves the host, and a certificate request for it
 *    (DIR/HOST.csr); smig_pki_sign() on the CA's host checks the request
 *    and makes the certificate from it;
 *  - smig_pki_issue(), a convenience where the CA and the host share a
 *    machine (tests, a first try): key and certificate at once.
 * Either way the certificate is the CA's own making: its subject, its
 * extensions (not a CA, digital signatures, TLS client and server), only
 * the DNS and IP subjectAltNames a request asked for. Keys are Ed25519,
 * the only kind smigd signs with (sign.h). Existing files are never
 * overwritten.
 */
#ifndef SMIG_PKI_H
#define SMIG_PKI_H

#include "config.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

/* Where the CA and a host's files are when a command names no directory. */
#define SMIG_PKI_DIR "/etc/smig/pki"
#define SMIG_PKI_CSR_MAX ((size_t)64 * 1024)

struct smig_pki_opts {
	int days;              /* validity, from not_before */
	long not_before_shift; /* seconds from now to notBefore (negative: past) */
	const char *ip;        /* optional IP subjectAltName (issue, csr) */
};

int smig_pki_init(const char *dir, int days, char *err, size_t errlen);
/* On success fp (if not NULL) receives the new certificate's fingerprint. */
int smig_pki_issue(const char *dir, const char *host, const struct smig_pki_opts *opts,
		   uint8_t *fp, char *err, size_t errlen);

/*
 * A new key DIR/HOST.key (0600) and the request DIR/HOST.csr for it:
 * subject CN=HOST, subjectAltName DNS:HOST (and IP:ip), signed by the new
 * key. req_fp (if not NULL) receives the SHA-256 of the request's DER, for
 * the CA's operator to compare before signing.
 */
int smig_pki_csr(const char *dir, const char *host, const char *ip, uint8_t *req_fp,
		 char *err, size_t errlen);

struct smig_pki_signed {
	char host[SMIG_NAME_MAX + 1]; /* whose certificate it is */
	char cert[PATH_MAX];          /* where it was written */
	uint8_t fp[SMIG_FP_LEN];      /* the certificate's fingerprint */
	uint8_t req_fp[SMIG_FP_LEN];  /* the request's (as smig_pki_csr printed it) */
	size_t dropped;               /* subjectAltNames of the request not copied */
	bool outlives_ca;             /* notAfter is past the CA's own */
};

/* What the CA takes from a request: see smig_pki_sign. */
struct smig_pki_req {
	char host[SMIG_NAME_MAX + 1];
	uint8_t req_fp[SMIG_FP_LEN]; /* SHA-256 of its DER */
	size_t ndns, nip;            /* the subjectAltNames kept (DNS:HOST among them) */
	size_t dropped;              /* those of other kinds, not kept */
};

/*
 * Parses PEM text of a request (at most SMIG_PKI_CSR_MAX bytes; name says
 * where it came from, for err) and checks it as smig_pki_sign does,
 * without a CA: what another host sends is read here first (fuzz_csr).
 */
int smig_pki_req_check(const char *pem, size_t len, const char *name, struct smig_pki_req *out,
		       char *err, size_t errlen);

/*
 * The CA in cadir signs the request in the file csr: its signature must
 * verify with its own key, an Ed25519 key; its host name is the subject's
 * CN (or, without one, its first DNS name), a valid host name, as every
 * DNS name it asks for must be. The certificate gets opts->days and only
 * the request's DNS and IP subjectAltNames (DNS:HOST always); nothing
 * else of the request is copied. It is written to out, or beside the
 * request (HOST.csr -> HOST.crt) when out is NULL; never over a file.
 */
int smig_pki_sign(const char *cadir, const char *csr, const struct smig_pki_opts *opts,
		  const char *out, struct smig_pki_signed *res, char *err, size_t errlen);

#endif
