/*
 * ekcert.h - a TPM's endorsement key certificate (ekcert.c), held against
 * the certificates of the TPM vendors (attestation.ek_roots) when a host
 * is enrolled: proof that the EK is a real TPM's, from its maker.
 */
#ifndef SMIG_EKCERT_H
#define SMIG_EKCERT_H

#include "tpmcred.h"

#include <stddef.h>
#include <stdint.h>

struct x509_store_st;

/*
 * The certificates of a PEM bundle (roots and intermediates alike are
 * anchors) into a store; name says where the text is from in err.
 */
int smig_ek_roots_parse(const char *name, const char *pem, size_t len,
			struct x509_store_st **out, size_t *count, char *err, size_t errlen);
void smig_ek_roots_free(struct x509_store_st *roots);

/*
 * der must be an X.509 certificate of the P-256 point ek, and with roots
 * (NULL: not checked) one that chains to them. about gets "SUBJECT,
 * issued by ISSUER" (printable ASCII) when der parses; err says what is
 * wrong.
 */
int smig_ek_cert_check(const uint8_t *der, size_t len, const uint8_t ek[SMIG_EK_LEN],
		       struct x509_store_st *roots, char *about, size_t aboutlen, char *err,
		       size_t errlen);

#endif
