/*
 * test_ekcert.c - EK certificates against vendor CAs: a certificate of
 * the EK with the TCG's extensions (critical subjectAltName of directory
 * names, critical key usage, tcg-kp-EKCertificate) issued by an
 * intermediate of the vendor's root passes with the root and the
 * intermediate in the bundle, and with the intermediate alone; another
 * vendor's CA, another key, an RSA key, an expired certificate, bytes
 * that are not a certificate or carry trailing bytes (other than an NV
 * index's padding, which is taken off), and bundles
 * without certificates are refused, each naming why.
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
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ekcert.h"
#include "error.h"

static EVP_PKEY *root_key, *mid_key, *other_key, *ek_key, *rsa_key;
static X509 *root, *mid, *other_root;
static uint8_t ek[SMIG_EK_LEN];

static void ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

static X509 *cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, bool ca,
		  long days)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), days < 0 ? days * 2 * 86400 : 0);
	X509_gmtime_adj(X509_getm_notAfter(x), days * 86400);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509_NAME_free(n);
	X509_set_pubkey(x, key);
	if (ca) {
		ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
		ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		/* as the TCG EK Credential Profile (and swtpm's local CA) write them */
		ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
		ext(x, issuer, NID_key_usage, "critical,keyAgreement");
		ext(x, issuer, NID_ext_key_usage, "2.23.133.8.1");
		ext(x, issuer, NID_subject_alt_name, "critical,DNS:tpm.vendor.example");
	}
	assert_true(X509_sign(x, issuer_key, EVP_sha256()) > 0);
	return x;
}

static size_t der_of(X509 *x, uint8_t **out)
{
	int n = i2d_X509(x, out);

	assert_true(n > 0);
	return (size_t)n;
}

static char *pem_of(X509 *a, X509 *b)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p, *text;
	long n;

	PEM_write_bio_X509(bio, a);
	if (b)
		PEM_write_bio_X509(bio, b);
	n = BIO_get_mem_data(bio, &p);
	text = strndup(p, (size_t)n);
	BIO_free(bio);
	return text;
}

static X509_STORE *roots_of(X509 *a, X509 *b)
{
	char *pem = pem_of(a, b), err[256];
	X509_STORE *s = NULL;
	size_t n = 0;

	assert_int_equal(smig_ek_roots_parse("roots.pem", pem, strlen(pem), &s, &n, err,
					     sizeof(err)),
			 0);
	assert_int_equal(n, b ? 2 : 1);
	free(pem);
	return s;
}

static int setup(void **state)
{
	uint8_t point[65];
	size_t n = 0;

	(void)state;
	root_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	mid_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	other_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ek_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	if (!root_key || !mid_key || !other_key || !ek_key || !rsa_key ||
	    !EVP_PKEY_get_octet_string_param(ek_key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
					     sizeof(point), &n) ||
	    n != sizeof(point))
		return -1;
	memcpy(ek, point + 1, SMIG_EK_LEN);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(root_key);
	EVP_PKEY_free(mid_key);
	EVP_PKEY_free(other_key);
	EVP_PKEY_free(ek_key);
	EVP_PKEY_free(rsa_key);
	return 0;
}

static int vendor(void **state)
{
	(void)state;
	root = cert("Vendor EK Root", root_key, NULL, root_key, true, 3650);
	mid = cert("Vendor EK Issuing CA", mid_key, root, root_key, true, 3650);
	other_root = cert("Other Vendor Root", other_key, NULL, other_key, true, 3650);
	return 0;
}

static int vendor_free(void **state)
{
	(void)state;
	X509_free(root);
	X509_free(mid);
	X509_free(other_root);
	return 0;
}

static int check(X509 *x, const uint8_t *key, X509_STORE *s, char *about, char *err)
{
	uint8_t *der = NULL;
	size_t n = der_of(x, &der);
	int rc = smig_ek_cert_check(der, n, key, s, about, 256, err, 256);

	OPENSSL_free(der);
	return rc;
}

static void test_chains_to_the_vendor(void **state)
{
	X509 *x = cert("TPM EK", ek_key, mid, mid_key, false, 3650);
	X509_STORE *both = roots_of(root, mid), *mid_only = roots_of(mid, NULL);
	char about[256], err[256];

	(void)state;
	assert_int_equal(check(x, ek, both, about, err), 0);
	assert_string_equal(about, "/CN=TPM EK, issued by /CN=Vendor EK Issuing CA");
	assert_int_equal(check(x, ek, mid_only, about, err), 0);
	assert_int_equal(check(x, ek, NULL, about, err), 0); /* no roots: the key only */
	smig_ek_roots_free(both);
	smig_ek_roots_free(mid_only);
	X509_free(x);
}

static void test_other_vendor(void **state)
{
	X509 *x = cert("TPM EK", ek_key, mid, mid_key, false, 3650);
	X509_STORE *s = roots_of(other_root, NULL);
	char about[256], err[256];

	(void)state;
	assert_int_equal(check(x, ek, s, about, err), SMIG_EAUTH);
	assert_string_equal(err, "the EK certificate does not chain to attestation.ek_roots: "
				 "unable to get local issuer certificate");
	smig_ek_roots_free(s);
	X509_free(x);
}

static void test_other_key(void **state)
{
	X509 *x = cert("TPM EK", ek_key, mid, mid_key, false, 3650);
	X509 *r = cert("RSA EK", rsa_key, mid, mid_key, false, 3650);
	X509_STORE *s = roots_of(root, mid);
	uint8_t wrong[SMIG_EK_LEN];
	char about[256], err[256];

	(void)state;
	memcpy(wrong, ek, sizeof(wrong));
	wrong[5] ^= 1;
	assert_int_equal(check(x, wrong, s, about, err), SMIG_EAUTH);
	assert_string_equal(err, "the EK certificate is for another key than the EK the TPM "
				 "presents");
	assert_int_equal(check(r, ek, s, about, err), SMIG_EAUTH);
	assert_string_equal(err, "the EK certificate is not for an ECC P-256 key (RSA)");
	smig_ek_roots_free(s);
	X509_free(x);
	X509_free(r);
}

static void test_expired(void **state)
{
	X509 *x = cert("TPM EK", ek_key, mid, mid_key, false, -1);
	X509_STORE *s = roots_of(root, mid);
	char about[256], err[256];

	(void)state;
	assert_int_equal(check(x, ek, s, about, err), SMIG_EAUTH);
	assert_non_null(strstr(err, "certificate has expired"));
	smig_ek_roots_free(s);
	X509_free(x);
}

static void test_not_a_certificate(void **state)
{
	X509 *x = cert("TPM EK", ek_key, mid, mid_key, false, 3650);
	uint8_t *der = NULL, junk[] = { 0x30, 0x82, 0x01, 0x00, 0x00 }, *longer;
	size_t n = der_of(x, &der);
	char about[256], err[256];

	(void)state;
	assert_int_equal(smig_ek_cert_check(junk, sizeof(junk), ek, NULL, about, sizeof(about),
					    err, sizeof(err)),
			 SMIG_EPROTO);
	assert_non_null(strstr(err, "not one DER X.509 certificate"));
	longer = calloc(1, n + 8);
	memcpy(longer, der, n);
	longer[n] = 0x01; /* a byte after the certificate */
	assert_int_equal(smig_ek_cert_check(longer, n + 1, ek, NULL, about, sizeof(about), err,
					    sizeof(err)),
			 SMIG_EPROTO);
	memset(longer + n, 0xff, 8); /* an NV index larger than its certificate: padding */
	assert_int_equal(smig_ek_cert_check(longer, n + 8, ek, NULL, about, sizeof(about), err,
					    sizeof(err)),
			 0);
	free(longer);
	OPENSSL_free(der);
	X509_free(x);
}

static void test_bundles(void **state)
{
	const char *none = "just text\n", *broken = "-----BEGIN CERTIFICATE-----\nAAAA\n"
						    "-----END CERTIFICATE-----\n";
	X509_STORE *s = NULL;
	char err[256];
	size_t n;

	(void)state;
	assert_int_equal(smig_ek_roots_parse("r.pem", none, strlen(none), &s, &n, err,
					     sizeof(err)),
			 SMIG_ECONFIG);
	assert_string_equal(err, "r.pem: no PEM certificate in it (the TPM vendors' EK CA "
				 "certificates)");
	assert_int_equal(smig_ek_roots_parse("r.pem", broken, strlen(broken), &s, &n, err,
					     sizeof(err)),
			 SMIG_ECONFIG);
	assert_null(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chains_to_the_vendor, vendor, vendor_free),
		cmocka_unit_test_setup_teardown(test_other_vendor, vendor, vendor_free),
		cmocka_unit_test_setup_teardown(test_other_key, vendor, vendor_free),
		cmocka_unit_test_setup_teardown(test_expired, vendor, vendor_free),
		cmocka_unit_test_setup_teardown(test_not_a_certificate, vendor, vendor_free),
		cmocka_unit_test(test_bundles),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
