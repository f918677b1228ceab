/*
 * test_ivt.c - the integrity validation table and attestation verdicts:
 * a host matching a golden set is trusted; a changed, unknown or missing
 * component is refused naming the component and both values; evidence
 * for another nonce (replay), another session (relay), another host or
 * from another key is refused; enrolment makes a golden set.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "error.h"
#include "ivt.h"
#include "sign.h"

static EVP_PKEY *key, *other;
static uint8_t fp[SMIG_FP_LEN];

#define Q1 "1111111111111111111111111111111111111111111111111111111111111111"
#define Q2 "2222222222222222222222222222222222222222222222222222222222222222"
#define S1 "3333333333333333333333333333333333333333333333333333333333333333"
#define FP "sha256:abababababababababababababababababababababababababababababababab"

static const char ivt_text[] =
	"{\"hosts\": {\n"
	" \"h2\": {\"fingerprint\": \"" FP "\", \"trust\": \"trusted\",\n"
	"        \"golden\": [{\"name\": \"old\", \"components\": {\"qemu\": \"" Q1 "\", \"smigd\": \"" S1 "\"}},\n"
	"                   {\"name\": \"new\", \"components\": {\"qemu\": \"" Q2 "\", \"smigd\": \"" S1 "\"}}]},\n"
	" \"h3\": {\"fingerprint\": \"" FP "\", \"trust\": \"attested\",\n"
	"        \"golden\": [{\"name\": \"g\", \"components\": {\"qemu\": \"" Q1 "\"}}]}\n"
	"}}\n";

static int setup(void **state)
{
	(void)state;
	key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	memset(fp, 0xab, sizeof(fp));
	return key && other ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
	return 0;
}

static void add(struct smig_evidence *e, const char *name, const char *hex)
{
	snprintf(e->comp[e->ncomp].name, sizeof(e->comp[0].name), "%s", name);
	assert_int_equal(smig_unhex(hex, e->comp[e->ncomp].sha256, SMIG_DIGEST_LEN), 0);
	e->ncomp++;
}

/* Evidence of host with qemu=q (and smigd=S1), signed by k. */
static void make(struct smig_evidence *e, const char *host, const char *q, EVP_PKEY *k)
{
	char *text;

	memset(e, 0, sizeof(*e));
	snprintf(e->host, sizeof(e->host), "%s", host);
	memset(e->nonce, 7, SMIG_NONCE_LEN);
	memset(e->binding, 9, SMIG_BINDING_LEN);
	add(e, "qemu", q);
	add(e, "smigd", S1);
	assert_int_equal(smig_evidence_sign(e, k, &text), 0);
	free(text);
}

static void check(const struct smig_ivt *ivt, const struct smig_evidence *e, const char *host,
		  enum smig_verdict_kind want, const char *reason)
{
	uint8_t nonce[SMIG_NONCE_LEN], binding[SMIG_BINDING_LEN];
	struct smig_attest_ctx x = { .host = host, .fp = fp, .pub = key, .nonce = nonce,
				     .binding = binding };
	struct smig_verdict v;

	memset(nonce, 7, sizeof(nonce));
	memset(binding, 9, sizeof(binding));
	smig_attest_verify(ivt, e, &x, &v);
	/* authentic unless the nonce, session, host, key or certificate was wrong */
	assert_true(v.authentic == (strstr(v.reason, "replayed") == NULL &&
				    strstr(v.reason, "relayed") == NULL &&
				    strstr(v.reason, "evidence is from") == NULL &&
				    strstr(v.reason, "signature") == NULL &&
				    strstr(v.reason, "another certificate") == NULL));
	if (v.kind != want || strstr(v.reason, reason) == NULL)
		fail_msg("got %s \"%s\", want %s \"%s\"", smig_verdict_name(v.kind), v.reason,
			 smig_verdict_name(want), reason);
}

static void load(struct smig_ivt *ivt)
{
	char err[256] = "";

	if (smig_ivt_parse("ivt.json", ivt_text, strlen(ivt_text), ivt, err, sizeof(err)) < 0)
		fail_msg("%s", err);
}

static void test_golden_sets(void **state)
{
	struct smig_evidence e;
	struct smig_ivt ivt;

	(void)state;
	load(&ivt);
	assert_int_equal(ivt.n, 2);
	make(&e, "h2", Q1, key);
	/* no TPM enrolled: a match is the host's own word, never more than unverified */
	check(&ivt, &e, "h2", SMIG_VERDICT_UNVERIFIED, "matches golden set old, but by its own word");
	make(&e, "h2", Q2, key);
	check(&ivt, &e, "h2", SMIG_VERDICT_UNVERIFIED, "matches golden set new");
	make(&e, "h3", Q1, key);
	e.ncomp = 1;
	{
		char *t;
		assert_int_equal(smig_evidence_sign(&e, key, &t), 0);
		free(t);
	}
	check(&ivt, &e, "h3", SMIG_VERDICT_UNVERIFIED, "matches golden set g");
	make(&e, "h9", Q1, key);
	check(&ivt, &e, "h9", SMIG_VERDICT_UNVERIFIED, "the IVT has no entry for h9");
	smig_ivt_clear(&ivt);
}

static void test_mismatch_names_both_values(void **state)
{
	struct smig_evidence e;
	struct smig_ivt ivt;
	char *t;

	(void)state;
	load(&ivt);
	make(&e, "h2", "4444444444444444444444444444444444444444444444444444444444444444", key);
	check(&ivt, &e, "h2", SMIG_VERDICT_UNTRUSTED,
	      "component qemu: sha256 4444444444444444444444444444444444444444444444444444444444444444, golden set old has " Q1);
	make(&e, "h2", Q1, key);
	add(&e, "rootkit", Q2);
	assert_int_equal(smig_evidence_sign(&e, key, &t), 0);
	free(t);
	check(&ivt, &e, "h2", SMIG_VERDICT_UNTRUSTED, "unknown component rootkit (sha256 " Q2);
	make(&e, "h2", Q1, key);
	e.ncomp = 1;
	assert_int_equal(smig_evidence_sign(&e, key, &t), 0);
	free(t);
	check(&ivt, &e, "h2", SMIG_VERDICT_UNTRUSTED, "component smigd was not measured; golden set old has " S1);
	smig_ivt_clear(&ivt);
}

static void test_freshness_and_identity(void **state)
{
	struct smig_evidence e;
	struct smig_ivt ivt;

	(void)state;
	load(&ivt);
	make(&e, "h2", Q1, key);
	e.nonce[0] ^= 1; /* answers another verifier's nonce */
	check(&ivt, &e, "h2", SMIG_VERDICT_UNTRUSTED, "another nonce (replayed)");
	make(&e, "h2", Q1, key);
	e.binding[3] ^= 1; /* made in another session */
	check(&ivt, &e, "h2", SMIG_VERDICT_UNTRUSTED, "another TLS session (relayed)");
	make(&e, "h3", Q1, key);
	check(&ivt, &e, "h2", SMIG_VERDICT_UNTRUSTED, "evidence is from h3, the session is with h2");
	make(&e, "h2", Q1, other);
	check(&ivt, &e, "h2", SMIG_VERDICT_UNTRUSTED, "signature is not h2's");
	make(&e, "h2", Q1, key);
	fp[0] ^= 1;
	check(&ivt, &e, "h2", SMIG_VERDICT_UNTRUSTED, "another certificate for h2");
	fp[0] ^= 1;
	smig_ivt_clear(&ivt);
}

/*
 * h2 rotates: the session is with its new certificate, the IVT still
 * names the old one, which the host table lists as h2's other: its golden
 * sets hold. Without that listing, or with a third certificate, they do not.
 */
static void test_rotation_keeps_golden_sets(void **state)
{
	uint8_t nonce[SMIG_NONCE_LEN], binding[SMIG_BINDING_LEN], newfp[SMIG_FP_LEN],
		stranger[SMIG_FP_LEN];
	struct smig_attest_ctx x = { .host = "h2", .fp = newfp, .pub = key, .nonce = nonce,
				     .binding = binding };
	struct smig_evidence e;
	struct smig_verdict v;
	struct smig_ivt ivt;

	(void)state;
	load(&ivt);
	memset(nonce, 7, sizeof(nonce));
	memset(binding, 9, sizeof(binding));
	memset(newfp, 0x5a, sizeof(newfp));
	memset(stranger, 0x77, sizeof(stranger));
	make(&e, "h2", Q1, key);
	smig_attest_verify(&ivt, &e, &x, &v);
	assert_int_equal(v.kind, SMIG_VERDICT_UNTRUSTED);
	assert_non_null(strstr(v.reason, "another certificate for h2"));
	x.fp_other = fp; /* the table lists the IVT's (old) one beside the new */
	smig_attest_verify(&ivt, &e, &x, &v);
	assert_int_equal(v.kind, SMIG_VERDICT_UNVERIFIED);
	assert_int_equal(v.trust, SMIG_TRUST_UNVERIFIED);
	assert_true(v.authentic);
	x.fp_other = stranger;
	smig_attest_verify(&ivt, &e, &x, &v);
	assert_int_equal(v.kind, SMIG_VERDICT_UNTRUSTED);
	smig_ivt_clear(&ivt);
}

static void test_enrol_and_dump(void **state)
{
	struct smig_evidence e;
	struct smig_ivt ivt = { 0 }, back;
	char err[256] = "", *text;

	(void)state;
	make(&e, "h5", Q2, key);
	assert_int_equal(smig_ivt_enrol(&ivt, "h5", fp, SMIG_TRUST_TRUSTED, "first", &e, false), 0);
	assert_int_equal(smig_ivt_enrol(&ivt, "h5", fp, SMIG_TRUST_TRUSTED, "first", &e, false), 0);
	assert_int_equal(ivt.v[0].ngolden, 1); /* same name: replaced */
	for (int i = 0; i < SMIG_GOLDEN_MAX + 2; i++) {
		char name[16];

		snprintf(name, sizeof(name), "g%d", i);
		assert_int_equal(smig_ivt_enrol(&ivt, "h5", fp, SMIG_TRUST_TRUSTED, name, &e, false), 0);
	}
	assert_int_equal(ivt.v[0].ngolden, SMIG_GOLDEN_MAX);
	assert_string_equal(ivt.v[0].golden[SMIG_GOLDEN_MAX - 1].name, "g9");
	assert_int_equal(smig_ivt_enrol(&ivt, "h5", fp, SMIG_TRUST_NONE, "x", &e, false), SMIG_EINVAL);
	/* a TPM is enrolled only from evidence that has one */
	assert_int_equal(smig_ivt_enrol(&ivt, "h5", fp, SMIG_TRUST_TRUSTED, "x", &e, true),
			 SMIG_EINVAL);
	assert_false(ivt.v[0].has_tpm);
	assert_int_equal(smig_ivt_dump(&ivt, &text), 0);
	if (smig_ivt_parse("dump", text, strlen(text), &back, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	check(&back, &e, "h5", SMIG_VERDICT_UNVERIFIED, "matches golden set");
	free(text);
	smig_ivt_clear(&back);
	smig_ivt_clear(&ivt);
}

static void expect_bad(const char *text, const char *want)
{
	struct smig_ivt ivt;
	char err[256] = "";

	assert_int_equal(smig_ivt_parse("ivt.json", text, strlen(text), &ivt, err, sizeof(err)),
			 SMIG_ECONFIG);
	if (strstr(err, want) == NULL)
		fail_msg("got \"%s\", want \"%s\"", err, want);
}

static void test_strict(void **state)
{
	(void)state;
	expect_bad("{\"hosts\": {\"h2\": {\"fingerprint\": \"" FP "\", \"trust\": \"none\", \"golden\": []}}}",
		   "ivt.json:1:");
	expect_bad("{\"hosts\": {\"h2\": {\"fingerprint\": \"sha256:00\", \"trust\": \"trusted\", \"golden\": []}}}",
		   "fingerprint must be");
	expect_bad("{\"hosts\": {\"h2\": {\"fingerprint\": \"" FP "\", \"trust\": \"trusted\",\n"
		   " \"golden\": [{\"name\": \"g\", \"components\": {\"qemu\": \"xyz\"}}]}}}",
		   "ivt.json:2:");
	expect_bad("{\"hosts\": {\"h2\": {\"fingerprint\": \"" FP "\", \"trust\": \"trusted\", \"golden\": [], \"x\": 1}}}",
		   "unknown key \"x\"");
	/* an AK is taken only with the EK it was proven against (smig ivt enrol) */
	expect_bad("{\"hosts\": {\"h2\": {\"fingerprint\": \"" FP "\", \"trust\": \"trusted\", \"golden\": [], \"ak\": \"00\"}}}",
		   "unknown key \"ak\"");
	expect_bad("{\"hosts\": {\"h2\": {\"fingerprint\": \"" FP "\", \"trust\": \"trusted\", \"golden\": [], \"tpm\": {\"ak\": \"00\"}}}}",
		   "ek");
}

/* An allowlist and the boot log requirement survive a dump and a parse; a bad one is named. */
static void test_allowlist_roundtrip(void **state)
{
	static const char text[] =
		"{\"hosts\": {\"h2\": {\"fingerprint\": \"" FP "\", \"trust\": \"trusted\", "
		"\"golden\": [], \"boot_log\": true, \"allowlist\": {\"files\": "
		"{\"/usr/bin/swtpm\": [\"" Q1 "\", \"" Q2 "\"]}, \"exclude\": [\"/tmp/\"]}}}}";
	struct smig_ivt ivt, back;
	char err[256] = "", *dump = NULL;

	(void)state;
	if (smig_ivt_parse("ivt.json", text, strlen(text), &ivt, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_true(ivt.v[0].has_allow && ivt.v[0].boot_log);
	assert_int_equal(ivt.v[0].allow.n, 2);
	assert_int_equal(smig_ivt_dump(&ivt, &dump), 0);
	if (smig_ivt_parse("dump", dump, strlen(dump), &back, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_true(back.v[0].has_allow && back.v[0].boot_log);
	assert_int_equal(back.v[0].allow.n, 2);
	assert_int_equal(back.v[0].allow.nexclude, 1);
	free(dump);
	smig_ivt_clear(&back);
	smig_ivt_clear(&ivt);
	expect_bad("{\"hosts\": {\"h2\": {\"fingerprint\": \"" FP "\", \"trust\": \"trusted\", "
		   "\"golden\": [], \"allowlist\": {\"files\": {\"usr/bin/x\": [\"" Q1 "\"]}}}}}",
		   "ivt.json:1:");
}

static void test_fits(void **state)
{
	struct smig_vmspec spec = { .name = "web", .min_trust = SMIG_TRUST_TRUSTED, .nrequires = 1,
				    .requires = { "vtpm" } };
	struct smig_verdict v = { .kind = SMIG_VERDICT_TRUSTED, .trust = SMIG_TRUST_TRUSTED };
	struct smig_evidence e = { .ncaps = 1, .caps = { "vtpm" } };
	char why[256];

	(void)state;
	assert_null(smig_attest_fits("h2", &v, &e, &spec, why, sizeof(why)));
	assert_string_equal(smig_attest_fits("h2", NULL, &e, &spec, why, sizeof(why)),
			    "attestation");
	assert_string_equal(why, "h2 is unknown: no evidence");
	v.kind = SMIG_VERDICT_UNTRUSTED;
	snprintf(v.reason, sizeof(v.reason), "component qemu: sha256 x");
	assert_string_equal(smig_attest_fits("h2", &v, &e, &spec, why, sizeof(why)),
			    "attestation");
	assert_string_equal(why, "h2 is untrusted: component qemu: sha256 x");
	v.kind = SMIG_VERDICT_ATTESTED;
	v.trust = SMIG_TRUST_ATTESTED;
	assert_string_equal(smig_attest_fits("h2", &v, &e, &spec, why, sizeof(why)),
			    "constraint:min_trust");
	/* the host's own word passes the gate, but never a trust requirement above it */
	v.kind = SMIG_VERDICT_UNVERIFIED;
	v.trust = SMIG_TRUST_UNVERIFIED;
	assert_string_equal(smig_attest_fits("h2", &v, &e, &spec, why, sizeof(why)),
			    "constraint:min_trust");
	assert_string_equal(why, "h2 is unverified; web needs trusted");
	spec.min_trust = SMIG_TRUST_NONE;
	assert_null(smig_attest_fits("h2", &v, &e, &spec, why, sizeof(why)));
	v.kind = SMIG_VERDICT_ATTESTED;
	v.trust = SMIG_TRUST_ATTESTED;
	spec.min_trust = SMIG_TRUST_ATTESTED;
	e.ncaps = 0;
	assert_string_equal(smig_attest_fits("h2", &v, &e, &spec, why, sizeof(why)),
			    "capability");
	assert_string_equal(why, "h2 lacks vtpm, which web requires");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_sets),
		cmocka_unit_test(test_mismatch_names_both_values),
		cmocka_unit_test(test_freshness_and_identity),
		cmocka_unit_test(test_rotation_keeps_golden_sets),
		cmocka_unit_test(test_enrol_and_dump),
		cmocka_unit_test(test_strict),
		cmocka_unit_test(test_allowlist_roundtrip),
		cmocka_unit_test(test_fits),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
