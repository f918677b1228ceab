/*
 * test_quote.c - TPM quote verification with a software attestation key:
 * a quote for the right nonce and session over exactly the reported PCR
 * values verifies; another nonce, other PCRs, other values, another key,
 * a forged signature, a non-quote or a malformed structure fail. Through
 * the IVT: a pinned key requires a quote by that key, and a PCR extended
 * off-policy is named like any component.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <tss2/tss2_mu.h>

#include "error.h"
#include "ivt.h"
#include "quote.h"
#include "sign.h"
#include "tpmcred.h"

static EVP_PKEY *ak, *other_ak, *host_key, *host_ek;
static uint8_t nonce[32], binding[32], extra[32];

static int setup(void **state)
{
	(void)state;
	ak = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	other_ak = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	host_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	host_ek = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	memset(nonce, 0x11, sizeof(nonce));
	memset(binding, 0x22, sizeof(binding));
	smig_quote_extra(nonce, binding, extra);
	return ak && other_ak && host_key && host_ek ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(ak);
	EVP_PKEY_free(other_ak);
	EVP_PKEY_free(host_key);
	EVP_PKEY_free(host_ek);
	return 0;
}

static void ak_public(EVP_PKEY *k, uint8_t out[SMIG_AK_LEN])
{
	uint8_t point[65];
	size_t len = 0;

	assert_int_equal(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, point,
							 sizeof(point), &len), 1);
	assert_int_equal(len, 65);
	memcpy(out, point + 1, SMIG_AK_LEN);
}

/* A quote as a TPM would make it, over pcrs (bitmap of bank sha256) with digest of vals. */
static void make_quote(struct smig_quote *q, EVP_PKEY *signer, const uint8_t *qextra,
		       uint32_t pcr_bits, const uint8_t (*vals)[32], size_t n, uint16_t type)
{
	TPMS_ATTEST a = { .magic = TPM2_GENERATED_VALUE, .type = type };
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t der[80];
	unsigned char *p = der;
	size_t off = 0, derlen = sizeof(der);
	ECDSA_SIG *s;
	const unsigned char *dp;

	a.extraData.size = 32;
	memcpy(a.extraData.buffer, qextra, 32);
	a.attested.quote.pcrSelect.count = 1;
	a.attested.quote.pcrSelect.pcrSelections[0].hash = TPM2_ALG_SHA256;
	a.attested.quote.pcrSelect.pcrSelections[0].sizeofSelect = 3;
	for (int i = 0; i < 3; i++)
		a.attested.quote.pcrSelect.pcrSelections[0].pcrSelect[i] = (uint8_t)(pcr_bits >> (8 * i));
	SHA256((const uint8_t *)vals, 32 * n, a.attested.quote.pcrDigest.buffer);
	a.attested.quote.pcrDigest.size = 32;
	assert_int_equal(Tss2_MU_TPMS_ATTEST_Marshal(&a, q->attest, sizeof(q->attest), &off),
			 TSS2_RC_SUCCESS);
	q->attest_len = off;
	ak_public(ak, q->ak);
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, signer), 1);
	assert_int_equal(EVP_DigestSign(md, der, &derlen, q->attest, q->attest_len), 1);
	EVP_MD_CTX_free(md);
	dp = der;
	s = d2i_ECDSA_SIG(NULL, &dp, (long)derlen);
	assert_non_null(s);
	assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(s), q->sig, 32), 32);
	assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(s), q->sig + 32, 32), 32);
	ECDSA_SIG_free(s);
	(void)p;
}

static const unsigned idx[] = { 16, 23 };
static const uint8_t vals[2][32] = { { 0xaa, 1 }, { 0xbb, 2 } };
#define BITS ((1u << 16) | (1u << 23))

static void expect(const struct smig_quote *q, const uint8_t *x, const unsigned *ix,
		   const uint8_t (*v)[32], size_t n, const char *want)
{
	char why[256] = "";
	int rc = smig_quote_verify(q, x, ix, v, n, why, sizeof(why));

	if (want == NULL) {
		if (rc != 0)
			fail_msg("refused: %s", why);
		return;
	}
	assert_int_equal(rc, SMIG_EAUTH);
	if (strstr(why, want) == NULL)
		fail_msg("got \"%s\", want \"%s\"", why, want);
}

static void test_quote_checks(void **state)
{
	struct smig_quote q, t;
	uint8_t other_extra[32];
	uint8_t changed[2][32];
	const unsigned only16[] = { 16 };

	(void)state;
	make_quote(&q, ak, extra, BITS, vals, 2, TPM2_ST_ATTEST_QUOTE);
	expect(&q, extra, idx, vals, 2, NULL);
	memset(other_extra, 0x33, sizeof(other_extra));
	expect(&q, other_extra, idx, vals, 2, "another nonce or session");
	expect(&q, extra, only16, vals, 1, "other PCRs");
	memcpy(changed, vals, sizeof(changed));
	changed[1][5] ^= 1;
	expect(&q, extra, idx, (const uint8_t(*)[32])changed, 2, "not the ones the TPM quoted");
	t = q;
	t.sig[10] ^= 1;
	expect(&t, extra, idx, vals, 2, "signature is not the attestation key's");
	t = q;
	ak_public(other_ak, t.ak);
	expect(&t, extra, idx, vals, 2, "signature is not the attestation key's");
	make_quote(&t, other_ak, extra, BITS, vals, 2, TPM2_ST_ATTEST_QUOTE);
	expect(&t, extra, idx, vals, 2, "signature is not the attestation key's");
	make_quote(&t, ak, extra, BITS, vals, 2, TPM2_ST_ATTEST_CERTIFY);
	expect(&t, extra, idx, vals, 2, "not a quote");
	t = q;
	t.attest_len -= 3;
	expect(&t, extra, idx, vals, 2, "malformed");
	t = q;
	t.attest[0] ^= 0xff; /* magic */
	expect(&t, extra, idx, vals, 2, "not a quote");
}

static void test_pcr_names(void **state)
{
	unsigned i;

	(void)state;
	assert_true(smig_pcr_name("pcr16", &i) && i == 16);
	assert_true(smig_pcr_name("pcr0", &i) && i == 0);
	assert_false(smig_pcr_name("pcr24", &i));
	assert_false(smig_pcr_name("pcr016", &i));
	assert_false(smig_pcr_name("pcr", &i));
	assert_false(smig_pcr_name("qemu", &i));
	assert_false(smig_pcr_name("pcr1x", &i));
}

/* Evidence of h4 with its PCR values as components and a quote by signer for this session. */
static void evidence_by(struct smig_evidence *e, const uint8_t (*v)[32], EVP_PKEY *signer,
			EVP_PKEY *ek)
{
	char *text;

	memset(e, 0, sizeof(*e));
	snprintf(e->host, sizeof(e->host), "h4");
	memcpy(e->nonce, nonce, 32);
	memcpy(e->binding, binding, 32);
	snprintf(e->comp[0].name, sizeof(e->comp[0].name), "pcr16");
	memcpy(e->comp[0].sha256, v[0], 32);
	snprintf(e->comp[1].name, sizeof(e->comp[1].name), "pcr23");
	memcpy(e->comp[1].sha256, v[1], 32);
	e->ncomp = 2;
	if (signer) {
		make_quote(&e->quote, signer, extra, BITS, v, 2, TPM2_ST_ATTEST_QUOTE);
		ak_public(signer, e->quote.ak);
		e->has_quote = true;
		e->has_tpm = true;
		ak_public(ek, e->ek);
	}
	assert_int_equal(smig_evidence_sign(e, host_key, &text), 0);
	free(text);
}

static void evidence(struct smig_evidence *e, const uint8_t (*v)[32], bool with_quote)
{
	/* any P-256 point stands for the EK here: no credential is made */
	evidence_by(e, v, with_quote ? ak : NULL, host_ek);
}

static void verify(const struct smig_ivt *ivt, const struct smig_evidence *e,
		   enum smig_verdict_kind want, const char *reason)
{
	uint8_t fp[SMIG_FP_LEN];
	struct smig_attest_ctx x = { .host = "h4", .fp = fp, .pub = host_key, .nonce = nonce,
				     .binding = binding };
	struct smig_verdict v;

	memset(fp, 0xcd, sizeof(fp));
	smig_attest_verify(ivt, e, &x, &v);
	if (v.kind != want || strstr(v.reason, reason) == NULL)
		fail_msg("got %s \"%s\", want %s \"%s\"", smig_verdict_name(v.kind), v.reason,
			 smig_verdict_name(want), reason);
	assert_true(v.authentic);
}

static void test_ivt_pins_the_key(void **state)
{
	struct smig_ivt ivt = { 0 };
	struct smig_evidence e, t;
	uint8_t fp[SMIG_FP_LEN], off_policy[2][32];
	char *text;

	(void)state;
	memset(fp, 0xcd, sizeof(fp));
	evidence(&e, vals, true);
	/* golden values but no TPM enrolled: a valid quote by a key nobody proved is not enough */
	assert_int_equal(smig_ivt_enrol(&ivt, "h4", fp, SMIG_TRUST_TRUSTED, "boot", &e, false), 0);
	verify(&ivt, &e, SMIG_VERDICT_UNVERIFIED, "by its own word only");
	assert_int_equal(smig_ivt_enrol(&ivt, "h4", fp, SMIG_TRUST_TRUSTED, "boot", &e, true), 0);
	assert_true(ivt.v[0].has_tpm);
	verify(&ivt, &e, SMIG_VERDICT_TRUSTED, "matches golden set boot");
	evidence(&t, vals, false);
	verify(&ivt, &t, SMIG_VERDICT_UNTRUSTED, "no TPM quote, though the IVT enrolled a TPM");
	memcpy(off_policy, vals, sizeof(off_policy));
	off_policy[0][0] ^= 0x40; /* PCR 16 extended with something else */
	evidence(&t, (const uint8_t(*)[32])off_policy, true);
	verify(&ivt, &t, SMIG_VERDICT_UNTRUSTED, "component pcr16: sha256 ea01");
	t = e; /* the values changed after the quote was made */
	t.comp[1].sha256[0] ^= 1;
	assert_int_equal(smig_evidence_sign(&t, host_key, &text), 0);
	free(text);
	verify(&ivt, &t, SMIG_VERDICT_UNTRUSTED, "not the ones the TPM quoted");
	t = e; /* a key swapped in under a quote it did not sign */
	ak_public(other_ak, t.quote.ak);
	assert_int_equal(smig_evidence_sign(&t, host_key, &text), 0);
	free(text);
	verify(&ivt, &t, SMIG_VERDICT_UNTRUSTED, "signature is not the attestation key's");
	/* a valid quote by a new AK in the same TPM: not without re-enrolment */
	evidence_by(&t, vals, other_ak, host_ek);
	verify(&ivt, &t, SMIG_VERDICT_UNTRUSTED, "not the one enrolled for h4");
	/* another TPM altogether */
	evidence_by(&t, vals, other_ak, other_ak);
	verify(&ivt, &t, SMIG_VERDICT_UNTRUSTED, "presents another TPM (EK sha256:");
	smig_ivt_clear(&ivt);
}

/* A credential for an AK, to an EK: the sizes a TPM expects; a bad EK fails. */
static void test_make_credential(void **state)
{
	uint8_t ekp[SMIG_EK_LEN], akp[SMIG_AK_LEN], cred[SMIG_CRED_LEN] = { 1, 2, 3 },
		name[SMIG_TPM_NAME_LEN], name2[SMIG_TPM_NAME_LEN];
	struct smig_credential c, c2;
	char err[256] = "";

	(void)state;
	ak_public(host_ek, ekp);
	ak_public(ak, akp);
	assert_int_equal(smig_tpm_make_credential(ekp, akp, cred, &c, err, sizeof(err)), 0);
	/* TPM2B_ID_OBJECT: size, the HMAC as a TPM2B_DIGEST, the encrypted TPM2B_DIGEST */
	assert_int_equal(c.blob_len, 2 + 2 + 32 + 2 + SMIG_CRED_LEN);
	assert_int_equal(c.blob[0] << 8 | c.blob[1], c.blob_len - 2);
	/* TPM2B_ENCRYPTED_SECRET holding the ephemeral point (x and y as TPM2Bs) */
	assert_int_equal(c.secret_len, 2 + 2 + 32 + 2 + 32);
	assert_int_equal(smig_tpm_make_credential(ekp, akp, cred, &c2, err, sizeof(err)), 0);
	assert_memory_not_equal(c.secret, c2.secret, c.secret_len); /* a fresh seed each time */
	assert_int_equal(smig_tpm_ak_name(akp, name), 0);
	assert_int_equal(name[0] << 8 | name[1], 0x000b); /* SHA-256 */
	akp[5] ^= 1;
	assert_int_equal(smig_tpm_ak_name(akp, name2), 0);
	assert_memory_not_equal(name, name2, sizeof(name));
	memset(ekp, 0x11, sizeof(ekp)); /* not on the curve */
	assert_int_equal(smig_tpm_make_credential(ekp, akp, cred, &c, err, sizeof(err)),
			 SMIG_ECRYPTO);
	assert_non_null(strstr(err, "not a P-256 point"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quote_checks),
		cmocka_unit_test(test_pcr_names),
		cmocka_unit_test(test_ivt_pins_the_key),
		cmocka_unit_test(test_make_credential),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
