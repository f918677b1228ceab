/*
 * test_pki.c - cluster CA and host certificates: files, modes, extensions,
 * refusals; certificate requests and what the CA takes from them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "file.h"
#include "pki.h"
#include "testutil.h"
#include "tls.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	return test_mkdtemp(dir, sizeof(dir), "pki");
}

static int teardown(void **state)
{
	(void)state;
	return test_rmtree(dir);
}

static mode_t mode_of(const char *name)
{
	char p[128];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	assert_int_equal(stat(p, &st), 0);
	return st.st_mode & 07777;
}

static void test_init_and_issue(void **state)
{
	struct smig_pki_opts o = { .days = 10, .not_before_shift = -60, .ip = "10.9.0.1" };
	uint8_t fp[SMIG_FP_LEN];
	uint8_t fp2[SMIG_FP_LEN];
	char err[512];
	char p[128];
	X509 *x;
	FILE *f;

	(void)state;
	assert_int_equal(smig_pki_init(dir, 100, err, sizeof(err)), 0);
	assert_int_equal(mode_of("ca.key"), 0600);
	assert_int_equal(smig_pki_issue(dir, "web-host1", &o, fp, err, sizeof(err)), 0);
	assert_int_equal(mode_of("web-host1.key"), 0600);
	snprintf(p, sizeof(p), "%s/web-host1.crt", dir);
	assert_int_equal(smig_tls_cert_fp(p, fp2), 0);
	assert_memory_equal(fp, fp2, SMIG_FP_LEN);

	f = fopen(p, "r");
	assert_non_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	assert_int_equal(X509_check_host(x, "web-host1", 0, 0, NULL), 1);
	assert_int_equal(X509_check_ip_asc(x, "10.9.0.1", 0), 1);
	assert_true(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
	assert_true(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
	assert_int_equal(X509_check_ca(x), 0);
	X509_free(x);
}

static void test_refuses_to_overwrite(void **state)
{
	struct smig_pki_opts o = { .days = 10 };
	char err[512];

	(void)state;
	assert_int_equal(smig_pki_init(dir, 100, err, sizeof(err)), SMIG_EEXIST);
	assert_int_equal(smig_pki_issue(dir, "web-host1", &o, NULL, err, sizeof(err)), SMIG_EEXIST);
}

static void test_bad_names_and_ips(void **state)
{
	struct smig_pki_opts o = { .days = 10, .ip = "not-an-ip" };
	char err[512];

	(void)state;
	assert_int_equal(smig_pki_issue(dir, "../etc/passwd", &o, NULL, err, sizeof(err)),
			 SMIG_EINVAL);
	assert_int_equal(smig_pki_issue(dir, "h9", &o, NULL, err, sizeof(err)), SMIG_EINVAL);
	assert_non_null(strstr(err, "not-an-ip"));
}

static void test_issue_needs_private_ca_key(void **state)
{
	struct smig_pki_opts o = { .days = 10 };
	char p[128];
	char err[512];

	(void)state;
	snprintf(p, sizeof(p), "%s/ca.key", dir);
	assert_int_equal(chmod(p, 0644), 0);
	assert_int_equal(smig_pki_issue(dir, "h3", &o, NULL, err, sizeof(err)), SMIG_EPERM);
	assert_int_equal(chmod(p, 0600), 0);
	if (geteuid() == 0) { /* a key someone else owns: they could replace it */
		assert_int_equal(chown(p, 4242, 4242), 0);
		assert_int_equal(smig_pki_issue(dir, "h3", &o, NULL, err, sizeof(err)),
				 SMIG_EPERM);
		assert_non_null(strstr(err, "belongs to uid 4242"));
		assert_int_equal(chown(p, 0, 0), 0);
	}
	assert_int_equal(smig_pki_issue(dir, "h3", &o, NULL, err, sizeof(err)), 0);
}

static void test_issue_without_ca(void **state)
{
	struct smig_pki_opts o = { .days = 10 };
	char empty[96];
	char err[512];

	(void)state;
	snprintf(empty, sizeof(empty), "%s/empty", dir);
	assert_int_equal(mkdir(empty, 0700), 0);
	assert_int_equal(smig_pki_issue(empty, "h1", &o, NULL, err, sizeof(err)), SMIG_ENOENT);
}

/* ---- requests (smig pki csr) and their signing (smig pki sign) ---- */

static X509 *cert_read(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x;

	assert_non_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	return x;
}

static void req_write_der(const char *path, const unsigned char *der, long len)
{
	const unsigned char *p = der;
	X509_REQ *req = d2i_X509_REQ(NULL, &p, len);
	FILE *f = fopen(path, "w");

	assert_non_null(req);
	assert_non_null(f);
	assert_int_equal(PEM_write_X509_REQ(f, req), 1);
	fclose(f);
	X509_REQ_free(req);
}

/*
 * A request made here, as another tool or a dishonest host would: key
 * (Ed25519 unless rsa), subject CN (NULL: none), subjectAltName text
 * (NULL: none), basicConstraints text (NULL: none); tamper flips a bit of
 * its signature.
 */
static void req_forge(const char *path, bool rsa, const char *cn, const char *san,
		      const char *bc, bool tamper)
{
	EVP_PKEY *key = rsa ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
			    : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_REQ_get_subject_name(req);
	X509V3_CTX v3;
	unsigned char *der = NULL;
	int len;

	assert_non_null(key);
	X509V3_set_ctx(&v3, NULL, NULL, req, NULL, 0);
	if (cn)
		assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
							    (const unsigned char *)cn, -1, -1, 0),
				 1);
	if (san)
		sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
								 san));
	if (bc)
		sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
								 bc));
	assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
	if (sk_X509_EXTENSION_num(exts) > 0)
		assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
	assert_true(X509_REQ_sign(req, key, rsa ? EVP_sha256() : NULL) > 0);
	len = i2d_X509_REQ(req, &der);
	assert_true(len > 0);
	if (tamper)
		der[len - 1] ^= 0x01; /* the signature's last bits */
	req_write_der(path, der, len);
	OPENSSL_free(der);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
}

static void test_csr_makes_key_and_request(void **state)
{
	uint8_t fp[SMIG_FP_LEN], zero[SMIG_FP_LEN] = { 0 };
	char p[160], err[512];
	X509_REQ *req;
	FILE *f;

	(void)state;
	assert_int_equal(smig_pki_csr(dir, "h7", "10.9.0.7", fp, err, sizeof(err)), 0);
	assert_int_equal(mode_of("h7.key"), 0600);
	assert_memory_not_equal(fp, zero, SMIG_FP_LEN);
	snprintf(p, sizeof(p), "%s/h7.csr", dir);
	f = fopen(p, "r");
	assert_non_null(f);
	req = PEM_read_X509_REQ(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(req);
	assert_int_equal(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)), 1);
	X509_REQ_free(req);
	/* never over the key in use */
	assert_int_equal(smig_pki_csr(dir, "h7", NULL, NULL, err, sizeof(err)), SMIG_EEXIST);
	assert_non_null(strstr(err, "another directory"));
	assert_int_equal(smig_pki_csr(dir, "../h8", NULL, NULL, err, sizeof(err)), SMIG_EINVAL);
	assert_int_equal(smig_pki_csr(dir, "h8", "10.9.0", NULL, err, sizeof(err)), SMIG_EINVAL);
}

static void test_sign_copies_names_and_days(void **state)
{
	struct smig_pki_opts o = { .days = 5, .not_before_shift = -60 };
	struct smig_pki_signed s;
	uint8_t req_fp[SMIG_FP_LEN];
	char csr[160], crt[160], err[512];
	int days, secs;
	X509 *x;

	(void)state;
	snprintf(csr, sizeof(csr), "%s/sub", dir);
	assert_int_equal(smig_pki_csr(csr, "h9", "fd00::9", req_fp, err, sizeof(err)), 0);
	snprintf(csr, sizeof(csr), "%s/sub/h9.csr", dir);
	assert_int_equal(smig_pki_sign(dir, csr, &o, NULL, &s, err, sizeof(err)), 0);
	assert_string_equal(s.host, "h9");
	snprintf(crt, sizeof(crt), "%s/sub/h9.crt", dir);
	assert_string_equal(s.cert, crt);
	assert_memory_equal(s.req_fp, req_fp, SMIG_FP_LEN);
	assert_int_equal(s.dropped, 0);
	assert_false(s.outlives_ca);
	x = cert_read(crt);
	assert_int_equal(X509_check_host(x, "h9", 0, 0, NULL), 1);
	assert_int_equal(X509_check_ip_asc(x, "fd00::9", 0), 1);
	assert_true(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
	assert_true(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
	assert_int_equal(X509_check_ca(x), 0);
	assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x),
					X509_get0_notAfter(x)), 1);
	assert_int_equal(days, 5);
	assert_int_equal(secs, 0);
	X509_free(x);
	/* a second time would overwrite: refused, and --out elsewhere works */
	assert_int_equal(smig_pki_sign(dir, csr, &o, NULL, &s, err, sizeof(err)), SMIG_EEXIST);
	snprintf(crt, sizeof(crt), "%s/sub/h9-b.crt", dir);
	o.days = 9000; /* past the CA's 100 days */
	assert_int_equal(smig_pki_sign(dir, csr, &o, crt, &s, err, sizeof(err)), 0);
	assert_string_equal(s.cert, crt);
	assert_true(s.outlives_ca);
}

static void test_sign_copies_only_what_it_allows(void **state)
{
	struct smig_pki_opts o = { .days = 30 };
	struct smig_pki_signed s;
	char csr[160], err[512];
	X509 *x;
	GENERAL_NAMES *names;
	int ndns = 0, nip = 0, nother = 0;

	(void)state;
	snprintf(csr, sizeof(csr), "%s/greedy.csr", dir);
	req_forge(csr, false, "h10",
		  "DNS:h10.lan,IP:192.0.2.10,URI:https://evil.example/,email:a@b.example",
		  "critical,CA:TRUE,pathlen:3", false);
	assert_int_equal(smig_pki_sign(dir, csr, &o, NULL, &s, err, sizeof(err)), 0);
	assert_string_equal(s.host, "h10");
	assert_int_equal(s.dropped, 2);
	/* the same verdict from the text alone, as fuzz_csr sees it */
	{
		struct smig_pki_req r;
		char *text;
		size_t len;

		assert_int_equal(smig_file_read(csr, SMIG_PKI_CSR_MAX, &text, &len, err,
						sizeof(err)), 0);
		assert_int_equal(smig_pki_req_check(text, len, csr, &r, err, sizeof(err)), 0);
		assert_string_equal(r.host, "h10");
		assert_int_equal(r.ndns, 2);
		assert_int_equal(r.nip, 1);
		assert_int_equal(r.dropped, 2);
		assert_memory_equal(r.req_fp, s.req_fp, SMIG_FP_LEN);
		free(text);
	}
	x = cert_read(s.cert);
	assert_int_equal(X509_check_ca(x), 0); /* the request's CA:TRUE is not the CA's word */
	names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	assert_non_null(names);
	for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
		int t = sk_GENERAL_NAME_value(names, i)->type;

		ndns += t == GEN_DNS;
		nip += t == GEN_IPADD;
		nother += t != GEN_DNS && t != GEN_IPADD;
	}
	GENERAL_NAMES_free(names);
	assert_int_equal(ndns, 2); /* DNS:h10 added first, DNS:h10.lan kept */
	assert_int_equal(nip, 1);
	assert_int_equal(nother, 0);
	assert_int_equal(X509_check_host(x, "h10", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(x, "h10.lan", 0, 0, NULL), 1);
	assert_int_equal(X509_check_ip_asc(x, "192.0.2.10", 0), 1);
	X509_free(x);

	/* no CN: the first DNS name is the host */
	snprintf(csr, sizeof(csr), "%s/nocn.csr", dir);
	req_forge(csr, false, NULL, "DNS:h11", NULL, false);
	assert_int_equal(smig_pki_sign(dir, csr, &o, NULL, &s, err, sizeof(err)), 0);
	assert_string_equal(s.host, "h11");
}

static void test_sign_refuses_bad_requests(void **state)
{
	struct smig_pki_opts o = { .days = 30 };
	struct smig_pki_signed s;
	char csr[160], crt[160], err[512];

	(void)state;
	snprintf(csr, sizeof(csr), "%s/tampered.csr", dir);
	req_forge(csr, false, "h12", "DNS:h12", NULL, true);
	assert_int_equal(smig_pki_sign(dir, csr, &o, NULL, &s, err, sizeof(err)), SMIG_EINVAL);
	assert_non_null(strstr(err, "signature does not verify"));
	snprintf(crt, sizeof(crt), "%s/tampered.crt", dir);
	assert_int_equal(access(crt, F_OK), -1);

	snprintf(csr, sizeof(csr), "%s/rsa.csr", dir);
	req_forge(csr, true, "h13", "DNS:h13", NULL, false);
	assert_int_equal(smig_pki_sign(dir, csr, &o, NULL, &s, err, sizeof(err)), SMIG_EINVAL);
	assert_non_null(strstr(err, "key is RSA, not Ed25519"));

	snprintf(csr, sizeof(csr), "%s/badcn.csr", dir);
	req_forge(csr, false, "h14/../../etc", NULL, NULL, false);
	assert_int_equal(smig_pki_sign(dir, csr, &o, NULL, &s, err, sizeof(err)), SMIG_EINVAL);
	assert_non_null(strstr(err, "CN"));

	snprintf(csr, sizeof(csr), "%s/baddns.csr", dir);
	req_forge(csr, false, "h15", "DNS:h15,DNS:*.example.com", NULL, false);
	assert_int_equal(smig_pki_sign(dir, csr, &o, NULL, &s, err, sizeof(err)), SMIG_EINVAL);
	assert_non_null(strstr(err, "DNS name 2"));

	snprintf(csr, sizeof(csr), "%s/noname.csr", dir);
	req_forge(csr, false, NULL, "IP:192.0.2.16", NULL, false);
	assert_int_equal(smig_pki_sign(dir, csr, &o, NULL, &s, err, sizeof(err)), SMIG_EINVAL);
	assert_non_null(strstr(err, "names no host"));

	snprintf(csr, sizeof(csr), "%s/ca.crt", dir); /* a certificate, not a request */
	assert_int_equal(smig_pki_sign(dir, csr, &o, "/dev/null/x", &s, err, sizeof(err)),
			 SMIG_EINVAL);
	assert_non_null(strstr(err, "not a PEM certificate request"));
}

static void test_sign_needs_the_ca(void **state)
{
	struct smig_pki_opts o = { .days = 30 };
	struct smig_pki_signed s;
	char csr[160], other[160], err[512];

	(void)state;
	snprintf(csr, sizeof(csr), "%s/h17.csr", dir);
	req_forge(csr, false, "h17", NULL, NULL, false);
	snprintf(other, sizeof(other), "%s/noca", dir);
	assert_int_equal(mkdir(other, 0700), 0);
	assert_int_equal(smig_pki_sign(other, csr, &o, NULL, &s, err, sizeof(err)), SMIG_ENOENT);
	assert_non_null(strstr(err, "smig pki init"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_and_issue),
		cmocka_unit_test(test_refuses_to_overwrite),
		cmocka_unit_test(test_bad_names_and_ips),
		cmocka_unit_test(test_issue_needs_private_ca_key),
		cmocka_unit_test(test_issue_without_ca),
		cmocka_unit_test(test_csr_makes_key_and_request),
		cmocka_unit_test(test_sign_copies_names_and_days),
		cmocka_unit_test(test_sign_copies_only_what_it_allows),
		cmocka_unit_test(test_sign_refuses_bad_requests),
		cmocka_unit_test(test_sign_needs_the_ca),
	};
	return cmocka_run_group_tests_name("pki", tests, setup, teardown);
}
