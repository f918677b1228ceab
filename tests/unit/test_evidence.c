/*
 * test_evidence.c - evidence signing and strict parsing: a signed piece of
 * evidence survives its text form; changing any signed field, or any byte
 * of the signature, breaks the signature; malformed evidence is refused
 * with a reason; file measurement is plain SHA-256.
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
#include "evidence.h"
#include "testutil.h"

static EVP_PKEY *key;

static int setup(void **state)
{
	(void)state;
	key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	return key ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(key);
	return 0;
}

static void sample(struct smig_evidence *e)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->host, sizeof(e->host), "h2");
	e->time_ms = 1795000000123LL;
	memset(e->nonce, 0xA5, sizeof(e->nonce));
	memset(e->binding, 0x3C, sizeof(e->binding));
	snprintf(e->comp[0].name, sizeof(e->comp[0].name), "qemu");
	memset(e->comp[0].sha256, 0x11, SMIG_DIGEST_LEN);
	snprintf(e->comp[1].name, sizeof(e->comp[1].name), "smigd");
	memset(e->comp[1].sha256, 0x22, SMIG_DIGEST_LEN);
	e->ncomp = 2;
	snprintf(e->caps[0], sizeof(e->caps[0]), "vtpm");
	e->ncaps = 1;
	e->free_mib = 4096;
}

static void test_round_trip(void **state)
{
	struct smig_evidence e, p;
	char err[256] = "";
	char *text;

	(void)state;
	sample(&e);
	assert_int_equal(smig_evidence_sign(&e, key, &text), 0);
	if (smig_evidence_parse(text, strlen(text), &p, err, sizeof(err)) < 0)
		fail_msg("%s: %s", text, err);
	assert_string_equal(p.host, "h2");
	assert_int_equal(p.time_ms, e.time_ms);
	assert_memory_equal(p.nonce, e.nonce, SMIG_NONCE_LEN);
	assert_int_equal(p.ncomp, 2);
	assert_non_null(smig_evidence_find(&p, "smigd"));
	assert_null(smig_evidence_find(&p, "swtpm"));
	assert_true(smig_evidence_has_cap(&p, "vtpm"));
	assert_int_equal(p.free_mib, 4096);
	assert_false(smig_evidence_has_cap(&p, "tpm2"));
	assert_int_equal(smig_evidence_check_sig(&p, key), 0);
	free(text);
}

/* Every signed field matters, every signature byte matters. */
static void test_tamper(void **state)
{
	struct smig_evidence e, t;
	char *text;

	(void)state;
	sample(&e);
	assert_int_equal(smig_evidence_sign(&e, key, &text), 0);
	free(text);
	t = e;
	t.nonce[31] ^= 1;
	assert_int_equal(smig_evidence_check_sig(&t, key), SMIG_ECRYPTO);
	t = e;
	t.binding[0] ^= 0x80;
	assert_int_equal(smig_evidence_check_sig(&t, key), SMIG_ECRYPTO);
	t = e;
	t.comp[1].sha256[5] ^= 4;
	assert_int_equal(smig_evidence_check_sig(&t, key), SMIG_ECRYPTO);
	t = e;
	t.time_ms++;
	assert_int_equal(smig_evidence_check_sig(&t, key), SMIG_ECRYPTO);
	t = e;
	t.free_mib = 1 << 20;
	assert_int_equal(smig_evidence_check_sig(&t, key), SMIG_ECRYPTO);
	t = e;
	t.ncaps = 0;
	assert_int_equal(smig_evidence_check_sig(&t, key), SMIG_ECRYPTO);
	t = e;
	t.host[1] = '3';
	assert_int_equal(smig_evidence_check_sig(&t, key), SMIG_ECRYPTO);
	for (size_t i = 0; i < sizeof(e.sig); i++) {
		t = e;
		t.sig[i] ^= 0x01;
		assert_int_equal(smig_evidence_check_sig(&t, key), SMIG_ECRYPTO);
	}
	assert_int_equal(smig_evidence_check_sig(&e, key), 0);
}

static void expect_bad(const char *text, const char *want)
{
	struct smig_evidence e;
	char err[256] = "";

	assert_true(smig_evidence_parse(text, strlen(text), &e, err, sizeof(err)) < 0);
	if (strstr(err, want) == NULL)
		fail_msg("got \"%s\", want \"%s\"", err, want);
}

#define H64 "1111111111111111111111111111111111111111111111111111111111111111"
#define SIG H64 H64
#define HEAD "{\"v\":1,\"host\":\"h2\",\"time\":1,\"nonce\":\"" H64 "\",\"binding\":\"" H64 "\","

static void test_strict(void **state)
{
	(void)state;
	expect_bad(HEAD "\"components\":[],\"capabilities\":[],\"free_mib\":1,\"sig\":\"" SIG "\",\"x\":1}",
		   "unknown key \"x\"");
	expect_bad("{\"v\":2,\"host\":\"h2\",\"time\":1,\"nonce\":\"" H64 "\",\"binding\":\"" H64
		   "\",\"components\":[],\"capabilities\":[],\"free_mib\":1,\"sig\":\"" SIG "\"}",
		   "version must be 1");
	expect_bad(HEAD "\"components\":[{\"name\":\"q\",\"sha256\":\"12\"}],\"capabilities\":[],"
			"\"free_mib\":1,\"sig\":\"" SIG "\"}",
		   "sha256 must be 64 hex digits");
	expect_bad(HEAD "\"components\":[{\"name\":\"q\",\"sha256\":\"" H64 "\"},{\"name\":\"q\","
			"\"sha256\":\"" H64 "\"}],\"capabilities\":[],\"free_mib\":1,\"sig\":\"" SIG "\"}",
		   "repeats");
	expect_bad(HEAD "\"components\":[],\"capabilities\":[\"a b\"],\"free_mib\":1,\"sig\":\"" SIG "\"}",
		   "must be a name");
	expect_bad(HEAD "\"components\":[],\"capabilities\":[],\"free_mib\":1,\"sig\":\"11\"}",
		   "sig must be 128 hex digits");
	expect_bad(HEAD "\"components\":[],\"capabilities\":[],\"free_mib\":1}", "missing required key \"sig\"");
	expect_bad("[]", "must be an object");
}

static void test_measure(void **state)
{
	char dir[256], path[300], err[256];
	uint8_t d[SMIG_DIGEST_LEN];
	static const uint8_t abc[SMIG_DIGEST_LEN] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
		0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
		0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
	};
	FILE *f;

	(void)state;
	assert_int_equal(test_mkdtemp(dir, sizeof(dir), "measure"), 0);
	snprintf(path, sizeof(path), "%s/abc", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("abc", f);
	fclose(f);
	assert_int_equal(smig_measure_file(path, d, err, sizeof(err)), 0);
	assert_memory_equal(d, abc, sizeof(abc));
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(smig_measure_file(path, d, err, sizeof(err)), SMIG_EIO);
	assert_non_null(strstr(err, "missing"));
	test_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_tamper),
		cmocka_unit_test(test_strict),
		cmocka_unit_test(test_measure),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
