/*
 * tpm.h - a minimal TPM 2.0 driver over the TIS interface at 0xFED40000:
 * enough to start the TPM, extend a PCR and read it back.
 */
#ifndef GUEST_TPM_H
#define GUEST_TPM_H

#include <stdint.h>

/* 1 if a TIS TPM answers at the standard address, else 0. */
int tpm_present(void);
/* TPM2_Startup(CLEAR); an already started TPM is fine. 0 or -1. */
int tpm_startup(void);
/* TPM2_PCR_Extend(pcr, SHA-256 digest) with an empty password session. */
int tpm_extend(uint32_t pcr, const uint8_t digest[32]);
/* TPM2_PCR_Read of one SHA-256 PCR into out. */
int tpm_read(uint32_t pcr, uint8_t out[32]);

#endif
