/*
 * fuzz_csr.c - a certificate request as another host sends it to the
 * CA's operator: PEM parsing, the self-signature, the key's kind, the
 * host name and the subjectAltNames the CA would keep (smig pki sign,
 * without the CA). A request that passes has a valid host name and keeps
 * DNS:HOST.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "msg.h"
#include "pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smig_pki_req r;
	char err[512];

	if (size > SMIG_PKI_CSR_MAX)
		return 0;
	if (smig_pki_req_check((const char *)data, size, "fuzz.csr", &r, err, sizeof(err)) == 0 &&
	    (!smig_name_valid(r.host) || r.ndns < 1))
		abort();
	return 0;
}
