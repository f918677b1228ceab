/*
 * fuzz_audit.c - the audit log verifier and chain resumption on arbitrary
 * text. The input is a log, optionally followed by a blank line and a head.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t seed[32] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	static EVP_PKEY *pub;
	const char *text = (const char *)data;
	const char *split = size >= 2 ? memmem(text, size, "\n\n", 2) : NULL;
	size_t loglen = split ? (size_t)(split - text) + 1 : size;
	struct smig_audit_report rep;
	struct smig_audit_chain c;
	char err[128];

	if (pub == NULL)
		pub = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
	if (pub == NULL)
		return 0;
	if (smig_audit_verify(text, loglen, split ? split + 2 : NULL,
			      split ? size - loglen - 1 : 0, pub, &rep) == 0) {
		if (rep.records > 0 && !rep.damaged && rep.last_seq == 0)
			abort(); /* an undamaged non-empty log has records */
	}
	(void)smig_audit_resume(text, size, &c, err, sizeof(err));
	return 0;
}
