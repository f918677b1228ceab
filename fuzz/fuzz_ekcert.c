/*
 * fuzz_ekcert.c - EK certificates and EK CA bundles on arbitrary bytes:
 * each input as a DER certificate held against a fixed EK (without CAs,
 * and with the CAs the input itself holds as PEM), and as a PEM bundle.
 * Nothing may crash, leak or be taken: a certificate for the fixed EK
 * cannot come out of random bytes, so a pass aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ekcert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t ek[SMIG_EK_LEN] = { 1, 2, 3 };
	struct x509_store_st *roots = NULL;
	char about[256], err[256];
	size_t n = 0;

	if (smig_ek_cert_check(data, size, ek, NULL, about, sizeof(about), err, sizeof(err)) == 0)
		abort();
	if (smig_ek_roots_parse("fuzz", (const char *)data, size, &roots, &n, err, sizeof(err)) ==
	    0) {
		if (n == 0 || smig_ek_cert_check(data, size, ek, roots, about, sizeof(about), err,
						 sizeof(err)) == 0)
			abort();
		smig_ek_roots_free(roots);
	}
	return 0;
}
