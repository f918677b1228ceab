/*
 * test_pki.c - cluster CA and host certificates: files, modes, extensions,
 * refusals.
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_and_issue),
		cmocka_unit_test(test_refuses_to_overwrite),
		cmocka_unit_test(test_bad_names_and_ips),
		cmocka_unit_test(test_issue_needs_private_ca_key),
		cmocka_unit_test(test_issue_without_ca),
	};
	return cmocka_run_group_tests_name("pki", tests, setup, teardown);
}
