/*
 * tpmproc.h - the host TPM in a process of its own (tpmproc.c), so that
 * a slow or hung TPM never holds up the warden: every request answers
 * through a callback from the warden's loop.
 */
#ifndef SMIGD_TPMPROC_H
#define SMIGD_TPMPROC_H

#include "config.h"
#include "evidence.h"
#include "tpmcred.h"

#include <stddef.h>
#include <stdint.h>

struct loop;
struct wd_tpm;

/*
 * The answer to one request: rc 0 or a negative SMIG_E* with err saying
 * why; e is the evidence with the TPM's PCR values (and quote) for
 * wd_tpm_pcrs, cred the opened credential for wd_tpm_activate_cred.
 */
typedef void (*wd_tpm_fn)(void *arg, int rc, const char *err, const struct smig_evidence *e,
			  const uint8_t *cred);

/*
 * Forks the process and waits (at most attestation.tpm.timeout_s) until
 * it holds the TPM's EK and AK; err says why not. back is called (with
 * arg) whenever a new process holds the TPM again after one was lost.
 */
int wd_tpm_start(struct loop *loop, const struct smig_config *cfg, void (*back)(void *arg),
		 void *arg, struct wd_tpm **out, char *err, size_t errlen);
/* Ends the process; waiting requests are dropped without their callbacks. */
void wd_tpm_stop(struct wd_tpm *t);
const uint8_t *wd_tpm_ak(const struct wd_tpm *t);
const uint8_t *wd_tpm_ek(const struct wd_tpm *t);
/* The EK certificate read from the TPM's NV at start (DER), or NULL and 0 when it has none. */
const uint8_t *wd_tpm_ek_cert(const struct wd_tpm *t, size_t *len);

/*
 * e with its pcrN components replaced by the TPM's values now, and with
 * extra (32 bytes, not NULL) a quote over them. On a request that cannot
 * be sent (no process right now, too many waiting) returns < 0 with err
 * set, and fn is not called.
 */
int wd_tpm_pcrs(struct wd_tpm *t, const struct smig_evidence *e, const uint8_t *extra,
		wd_tpm_fn fn, void *arg, char *err, size_t errlen);
/* TPM2_ActivateCredential of a credential made for the AK (tpmcred.h) with the EK. */
int wd_tpm_activate_cred(struct wd_tpm *t, const uint8_t *blob, size_t blob_len,
			 const uint8_t *secret, size_t secret_len, wd_tpm_fn fn, void *arg,
			 char *err, size_t errlen);

#endif
