/*
 * tpm.h - the host TPM (tpm.c): its attestation key, PCR values and
 * quotes. Opened only by the warden.
 */
#ifndef SMIGD_TPM_H
#define SMIGD_TPM_H

#include "evidence.h"
#include "quote.h"
#include "tpmcred.h"

#include <stddef.h>
#include <stdint.h>

struct host_tpm;
int tpm_open(const char *tcti, const unsigned *pcrs, size_t n, struct host_tpm **out,
	     char *err, size_t errlen);
void tpm_close(struct host_tpm *t);
const uint8_t *tpm_ak(const struct host_tpm *t);
const uint8_t *tpm_ek(const struct host_tpm *t);
/*
 * The EK's certificate from NV index SMIG_EK_CERT_NV (DER) into out;
 * *len 0 when the TPM has none.
 */
int tpm_ek_cert(struct host_tpm *t, uint8_t *out, size_t max, size_t *len, char *err,
		size_t errlen);
/* TPM2_ActivateCredential of a credential made for the AK (tpmcred.h) with the EK. */
int tpm_activate(struct host_tpm *t, const uint8_t *blob, size_t blob_len,
		 const uint8_t *secret, size_t secret_len, uint8_t cred[SMIG_CRED_LEN], char *err,
		 size_t errlen);
/* Replaces e's pcrN components with the TPM's current values. */
int tpm_pcrs(struct host_tpm *t, struct smig_evidence *e, char *err, size_t errlen);
/* Fresh PCR values into e and a quote over them for extra (quote.h). */
int tpm_quote(struct host_tpm *t, const uint8_t extra[32], struct smig_evidence *e, char *err,
	      size_t errlen);

#endif
