/*
 * sha256.h - SHA-256 (FIPS 180-4) for the freestanding guest, which keeps
 * its own copy of the PCR chain to compare with what the vTPM reports.
 */
#ifndef GUEST_SHA256_H
#define GUEST_SHA256_H

#include <stdint.h>

struct sha256 {
	uint32_t h[8];
	uint8_t block[64];
	uint32_t used;
	uint64_t total;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, uint32_t len);
void sha256_final(struct sha256 *s, uint8_t out[32]);

#endif
