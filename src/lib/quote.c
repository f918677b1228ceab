/*
 * quote.c - verifying TPM 2.0 quotes (see quote.h): the TPMS_ATTEST is
 * unmarshalled with tpm2-tss's MU library, the signature checked with
 * OpenSSL.
 */
#include "quote.h"
#include "error.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_mu.h>

void smig_quote_extra(const uint8_t nonce[32], const uint8_t binding[32], uint8_t out[32])
{
	uint8_t both[64];

	memcpy(both, nonce, 32);
	memcpy(both + 32, binding, 32);
	SHA256(both, sizeof(both), out);
}

bool smig_pcr_name(const char *name, unsigned *index)
{
	char *end;
	unsigned long v;

	if (strncmp(name, "pcr", 3) != 0 || name[3] < '0' || name[3] > '9')
		return false;
	v = strtoul(name + 3, &end, 10);
	if (*end != '\0' || v >= SMIG_PCR_MAX || (name[3] == '0' && name[4] != '\0'))
		return false;
	*index = (unsigned)v;
	return true;
}

EVP_PKEY *smig_p256_key(const uint8_t ak[SMIG_AK_LEN])
{
	uint8_t point[1 + SMIG_AK_LEN];
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *key = NULL;

	point[0] = 0x04; /* uncompressed */
	memcpy(point + 1, ak, SMIG_AK_LEN);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
						     (char *)"prime256v1", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point,
						      sizeof(point));
	params[2] = OSSL_PARAM_construct_end();
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
		key = NULL;
	EVP_PKEY_CTX_free(ctx);
	return key;
}

/* ECDSA r || s (32 bytes each) over SHA-256(msg) by ak. */
static bool ecdsa_ok(const uint8_t ak[SMIG_AK_LEN], const uint8_t sig[64], const uint8_t *msg,
		     size_t len)
{
	EVP_PKEY *key = smig_p256_key(ak);
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL), *ss = BN_bin2bn(sig + 32, 32, NULL);
	unsigned char *der = NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int derlen = -1;
	bool ok = false;

	if (s && r && ss && ECDSA_SIG_set0(s, r, ss) == 1) {
		r = ss = NULL; /* owned by s now */
		derlen = i2d_ECDSA_SIG(s, &der);
	}
	ok = key && md && derlen > 0 &&
	     EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
	     EVP_DigestVerify(md, der, (size_t)derlen, msg, len) == 1;
	OPENSSL_free(der);
	BN_free(r);
	BN_free(ss);
	ECDSA_SIG_free(s);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	return ok;
}

static int fail(char *why, size_t len, const char *msg)
{
	snprintf(why, len, "%s", msg);
	return SMIG_EAUTH;
}

/* The selection must be exactly idx[0..n) of the sha256 bank. */
static bool selection_ok(const TPML_PCR_SELECTION *sel, const unsigned *idx, size_t n)
{
	uint8_t want[TPM2_PCR_SELECT_MAX] = { 0 };
	const TPMS_PCR_SELECTION *s = &sel->pcrSelections[0];

	for (size_t i = 0; i < n; i++)
		want[idx[i] / 8] |= (uint8_t)(1u << (idx[i] % 8));
	if (sel->count != 1 || s->hash != TPM2_ALG_SHA256 || s->sizeofSelect < 3 ||
	    s->sizeofSelect > TPM2_PCR_SELECT_MAX)
		return false;
	for (size_t i = 0; i < TPM2_PCR_SELECT_MAX; i++)
		if ((i < s->sizeofSelect ? s->pcrSelect[i] : 0) != want[i])
			return false;
	return true;
}

int smig_quote_verify(const struct smig_quote *q, const uint8_t extra[32], const unsigned *idx,
		      const uint8_t (*val)[32], size_t n, char *why, size_t whylen)
{
	TPMS_ATTEST a;
	uint8_t digest[32];
	EVP_MD_CTX *md;
	size_t off = 0;
	bool digest_ok;

	memset(&a, 0, sizeof(a));
	if (q->attest_len > SMIG_QUOTE_MAX ||
	    Tss2_MU_TPMS_ATTEST_Unmarshal(q->attest, q->attest_len, &off, &a) != TSS2_RC_SUCCESS ||
	    off != q->attest_len)
		return fail(why, whylen, "TPM quote is malformed");
	if (a.magic != TPM2_GENERATED_VALUE || a.type != TPM2_ST_ATTEST_QUOTE)
		return fail(why, whylen, "TPM quote is not a quote made by a TPM");
	if (a.extraData.size != 32 || CRYPTO_memcmp(a.extraData.buffer, extra, 32) != 0)
		return fail(why, whylen, "TPM quote answers another nonce or session (replayed)");
	if (!selection_ok(&a.attested.quote.pcrSelect, idx, n))
		return fail(why, whylen, "TPM quote covers other PCRs than the evidence reports");
	md = EVP_MD_CTX_new();
	digest_ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
	for (size_t i = 0; digest_ok && i < n; i++)
		digest_ok = EVP_DigestUpdate(md, val[i], 32) == 1;
	digest_ok = digest_ok && EVP_DigestFinal_ex(md, digest, NULL) == 1;
	EVP_MD_CTX_free(md);
	if (!digest_ok || a.attested.quote.pcrDigest.size != 32 ||
	    CRYPTO_memcmp(a.attested.quote.pcrDigest.buffer, digest, 32) != 0)
		return fail(why, whylen, "the PCR values in the evidence are not the ones the TPM quoted");
	if (!ecdsa_ok(q->ak, q->sig, q->attest, q->attest_len))
		return fail(why, whylen, "TPM quote signature is not the attestation key's");
	return 0;
}
