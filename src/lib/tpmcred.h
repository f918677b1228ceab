/*
 * tpmcred.h - a host TPM's identity: its endorsement key (EK) and the
 * attestation key (AK) smigd makes in it, and the proof, once at
 * enrolment, that the AK lives in the TPM that holds the EK.
 *
 * Both keys are primary ECC P-256 keys of the endorsement hierarchy, made
 * from fixed templates (the EK's is the TCG EK Credential Profile's
 * template L-2), so the same TPM gives the same keys after every restart.
 * A verifier that knows a host's EK point and AK point makes a credential
 * for the AK's name (TPM2_MakeCredential, done here in software: ECDH
 * with the EK, KDFe, KDFa, AES-128-CFB and an HMAC, as TPM 2.0 Part 1
 * describes it); only the TPM that holds that EK can recover the
 * credential, and it does so only for an object of exactly that name in
 * it (TPM2_ActivateCredential). The AK's name covers its attributes:
 * fixedTPM, restricted, sign - a key that cannot leave the TPM and signs
 * only what the TPM itself produced (quotes).
 */
#ifndef SMIG_TPMCRED_H
#define SMIG_TPMCRED_H

#include "quote.h"

#include <stddef.h>
#include <stdint.h>
#include <tss2/tss2_tpm2_types.h>

#define SMIG_EK_LEN 64        /* the EK's P-256 point x || y */
#define SMIG_TPM_NAME_LEN 34  /* nameAlg (SHA-256) || SHA-256 of the public area */
#define SMIG_CRED_LEN 32
#define SMIG_CRED_MAX 256     /* a marshalled credential blob or secret */
#define SMIG_EK_CERT_MAX 2048 /* an EK certificate, DER */
#define SMIG_EK_CERT_NV 0x01c0000au /* where the TCG puts the ECC P-256 EK's certificate */

struct smig_credential {
	uint8_t blob[SMIG_CRED_MAX]; /* TPM2B_ID_OBJECT, marshalled */
	size_t blob_len;
	uint8_t secret[SMIG_CRED_MAX]; /* TPM2B_ENCRYPTED_SECRET, marshalled */
	size_t secret_len;
};

/* smigd's AK template (unique empty) and the TCG EK template L-2. */
void smig_tpm_ak_template(TPMT_PUBLIC *pub);
void smig_tpm_ek_template(TPMT_PUBLIC *pub);
/* The name of the AK with point ak, made from smigd's template. */
int smig_tpm_ak_name(const uint8_t ak[SMIG_AK_LEN], uint8_t name[SMIG_TPM_NAME_LEN]);
/*
 * A credential holding cred for the AK with point ak, recoverable only by
 * the TPM that holds the EK with point ek. err says what failed.
 */
int smig_tpm_make_credential(const uint8_t ek[SMIG_EK_LEN], const uint8_t ak[SMIG_AK_LEN],
			     const uint8_t cred[SMIG_CRED_LEN], struct smig_credential *out,
			     char *err, size_t errlen);
/* "sha256:" and the hex SHA-256 of a TPM key's point: how operators compare EKs. */
void smig_tpm_key_fp(const uint8_t point[SMIG_EK_LEN], char out[72]);

#endif
