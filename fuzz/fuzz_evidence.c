/*
 * fuzz_evidence.c - the evidence parser on arbitrary text; whatever parses
 * is checked against a fixed key (a forged signature must never verify),
 * its TPM quote (arbitrary TPMS_ATTEST bytes) goes through the quote
 * verifier, and it must survive being signed and parsed again.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "evidence.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t seed[32] = { 9, 9, 9 };
	static EVP_PKEY *key;
	struct smig_evidence e, back;
	char err[256];
	char *text;

	if (key == NULL)
		key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
	if (key == NULL || smig_evidence_parse((const char *)data, size, &e, err, sizeof(err)) < 0)
		return 0;
	(void)smig_evidence_check_sig(&e, key);
	if (e.has_quote) {
		static const uint8_t extra[32];
		static const unsigned idx[] = { 16 };
		static const uint8_t val[1][32];
		char why[256];

		/* a made-up quote never verifies against a made-up key */
		if (smig_quote_verify(&e.quote, extra, idx, val, 1, why, sizeof(why)) == 0)
			abort();
	}
	if (smig_evidence_sign(&e, key, &text) == 0) {
		if (smig_evidence_parse(text, strlen(text), &back, err, sizeof(err)) < 0 ||
		    smig_evidence_check_sig(&back, key) < 0 || back.ncomp != e.ncomp)
			abort();
		free(text);
	}
	return 0;
}
