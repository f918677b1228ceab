/*
 * quote.h - TPM 2.0 quotes in evidence, and their verification.
 *
 * A host with a TPM adds to its evidence the values of the configured
 * PCRs (as components "pcr16", ... of the sha256 bank) and a quote over
 * them by its attestation key (AK: an ECC P-256 restricted signing key
 * made in the endorsement hierarchy). The quote's qualifying data is
 * SHA-256(nonce || binding), so a quote is as fresh and as bound to the
 * session as the evidence around it, and it does not rest on smigd's word:
 * even a host whose key and smigd an attacker controls cannot make its TPM
 * sign PCR values it does not hold, or a quote for a nonce it was not given.
 * Verification is pure: no TPM is needed to check a quote.
 */
#ifndef SMIG_QUOTE_H
#define SMIG_QUOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMIG_AK_LEN 64 /* the P-256 point x || y */
#define SMIG_QUOTE_MAX 1024
#define SMIG_PCR_MAX 24

struct smig_quote {
	uint8_t ak[SMIG_AK_LEN];
	uint8_t attest[SMIG_QUOTE_MAX]; /* the TPMS_ATTEST the TPM signed, marshalled */
	size_t attest_len;
	uint8_t sig[64]; /* ECDSA r || s over SHA-256(attest) */
};

/* A P-256 public key from its point x || y (an AK or an EK); NULL if not on the curve. */
struct evp_pkey_st;
struct evp_pkey_st *smig_p256_key(const uint8_t point[SMIG_AK_LEN]);
/* The qualifying data a quote for nonce and binding must carry. */
void smig_quote_extra(const uint8_t nonce[32], const uint8_t binding[32], uint8_t out[32]);
/* 1 and the index if name is "pcrN" with N < 24. */
bool smig_pcr_name(const char *name, unsigned *index);
/*
 * Checks q: a quote (magic, type) for extra, over exactly the PCRs idx[0..n)
 * (ascending) of the sha256 bank whose values are val[0..n), signed by the
 * key q->ak. 0, or SMIG_EAUTH with why naming what failed.
 */
int smig_quote_verify(const struct smig_quote *q, const uint8_t extra[32], const unsigned *idx,
		      const uint8_t (*val)[32], size_t n, char *why, size_t whylen);

#endif
