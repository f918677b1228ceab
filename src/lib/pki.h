/*
 * pki.h - a small cluster PKI for smig hosts, on OpenSSL's API.
 *
 * smig_pki_init() makes the cluster CA (DIR/ca.key, DIR/ca.crt);
 * smig_pki_issue() makes a host key and a certificate signed by that CA
 * (DIR/HOST.key, DIR/HOST.crt) usable for both ends of the peer channel.
 * Keys are Ed25519 and written 0600. Existing files are never overwritten.
 */
#ifndef SMIG_PKI_H
#define SMIG_PKI_H

#include "config.h"

#include <stddef.h>

struct smig_pki_opts {
	int days;              /* validity, from not_before */
	long not_before_shift; /* seconds from now to notBefore (negative: past) */
	const char *ip;        /* optional IP subjectAltName */
};

int smig_pki_init(const char *dir, int days, char *err, size_t errlen);
/* On success fp (if not NULL) receives the new certificate's fingerprint. */
int smig_pki_issue(const char *dir, const char *host, const struct smig_pki_opts *opts,
		   uint8_t *fp, char *err, size_t errlen);

#endif
