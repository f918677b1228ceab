/*
 * test_tls.c - the TLS 1.3 peer channel over real sockets: a good pair, and
 * every kind of peer that must be refused (wrong CA, expired certificate,
 * no client certificate, plain TCP, garbage, TLS 1.2, weak suites).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "file.h"
#include "pki.h"
#include "testutil.h"
#include "tls.h"

static char dir[64];
static char other[80];

struct side {
	struct smig_tls_ctx *ctx;
	int fd;
	int rc;
	char reason[256];
	uint8_t fp[SMIG_FP_LEN];
	uint8_t exported[32];
	char cipher[64];
	char version[16];
	bool vanish; /* client: after the handshake, go without close_notify */
	bool drop_ctx; /* free the context once the connection is made (a reload) */
	uint8_t own_fp[SMIG_FP_LEN];
	struct smig_cert_info peer;
};

static void path(char *out, size_t n, const char *d, const char *name, const char *ext)
{
	snprintf(out, n, "%s/%s%s", d, name, ext);
}

static struct smig_tls_ctx *load(const char *d, const char *host)
{
	char ca[128], crt[128], key[128], err[512];
	struct smig_tls_ctx *ctx = NULL;

	path(ca, sizeof(ca), dir, "ca", ".crt"); /* always trust the cluster CA */
	path(crt, sizeof(crt), d, host, ".crt");
	path(key, sizeof(key), d, host, ".key");
	if (smig_tls_ctx_new(&ctx, ca, crt, key, err, sizeof(err)) < 0)
		fail_msg("ctx %s: %s", host, err);
	return ctx;
}

static int setup(void **state)
{
	struct smig_pki_opts ok = { .days = 30, .not_before_shift = -60 };
	struct smig_pki_opts expired = { .days = 1, .not_before_shift = -3L * 86400 };
	char err[512];

	(void)state;
	assert_int_equal(test_mkdtemp(dir, sizeof(dir), "tls"), 0);
	snprintf(other, sizeof(other), "%s/other", dir);
	assert_int_equal(smig_pki_init(dir, 30, err, sizeof(err)), 0);
	assert_int_equal(smig_pki_issue(dir, "h1", &ok, NULL, err, sizeof(err)), 0);
	assert_int_equal(smig_pki_issue(dir, "h2", &ok, NULL, err, sizeof(err)), 0);
	assert_int_equal(smig_pki_issue(dir, "old", &expired, NULL, err, sizeof(err)), 0);
	assert_int_equal(smig_pki_init(other, 30, err, sizeof(err)), 0);
	assert_int_equal(smig_pki_issue(other, "evil", &ok, NULL, err, sizeof(err)), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return test_rmtree(dir);
}

static void timeouts(int fd)
{
	struct timeval tv = { .tv_sec = 5 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Handshake, then "ping" -> "pong"; records the outcome in s. */
static void run_side(struct side *s, bool server)
{
	struct smig_tls_conn *c;
	char buf[8];
	size_t n = 0;

	assert_int_equal(smig_tls_conn_new(s->ctx, s->fd, server, &c), 0);
	if (s->drop_ctx) {
		smig_tls_ctx_free(s->ctx);
		s->ctx = NULL;
	}
	s->rc = smig_tls_handshake(c);
	if (s->rc == 0) {
		smig_tls_peer_fp(c, s->fp);
		assert_int_equal(smig_tls_own_fp(c, s->own_fp), 0);
		assert_int_equal(smig_tls_peer_cert(c, &s->peer), 0);
		smig_tls_export(c, "EXPORTER-smig-test", NULL, 0, s->exported, 32);
		snprintf(s->cipher, sizeof(s->cipher), "%s", smig_tls_cipher(c));
		snprintf(s->version, sizeof(s->version), "%s", smig_tls_version(c));
		if (!server && s->vanish) {
			shutdown(s->fd, SHUT_RDWR); /* a killed process: no close_notify */
			smig_tls_conn_free(c);
			return;
		}
		if (server) {
			s->rc = smig_tls_read(c, buf, 4, &n);
			if (s->rc == 0)
				s->rc = smig_tls_write(c, "pong", 4, &n);
		} else {
			s->rc = smig_tls_write(c, "ping", 4, &n);
			if (s->rc == 0)
				s->rc = smig_tls_read(c, buf, 4, &n);
		}
		if (s->rc == 0)
			smig_tls_close(c);
	}
	snprintf(s->reason, sizeof(s->reason), "%s", smig_tls_reason(c));
	smig_tls_conn_free(c);
	shutdown(s->fd, SHUT_RDWR);
}

static void *server_thread(void *arg)
{
	run_side(arg, true);
	return NULL;
}

static void pair(struct side *srv, struct side *cli)
{
	int sv[2];
	pthread_t t;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	timeouts(sv[0]);
	timeouts(sv[1]);
	srv->fd = sv[0];
	cli->fd = sv[1];
	assert_int_equal(pthread_create(&t, NULL, server_thread, srv), 0);
	run_side(cli, false);
	pthread_join(t, NULL);
	close(sv[0]);
	close(sv[1]);
}

static void test_good_pair(void **state)
{
	struct side s = { .ctx = load(dir, "h1") };
	struct side c = { .ctx = load(dir, "h2") };
	struct side s2 = { .ctx = s.ctx };
	struct side c2 = { .ctx = c.ctx };

	(void)state;
	pair(&s, &c);
	assert_int_equal(s.rc, 0);
	assert_int_equal(c.rc, 0);
	assert_string_equal(c.version, "TLSv1.3");
	assert_string_equal(c.cipher, "TLS_AES_256_GCM_SHA384");
	/* each side sees the other's certificate */
	assert_memory_equal(s.fp, smig_tls_ctx_fp(c.ctx), SMIG_FP_LEN);
	assert_memory_equal(c.fp, smig_tls_ctx_fp(s.ctx), SMIG_FP_LEN);
	/* both ends derive the same exporter value; another session a different one */
	assert_memory_equal(s.exported, c.exported, 32);
	pair(&s2, &c2);
	assert_int_equal(c2.rc, 0);
	assert_memory_not_equal(c.exported, c2.exported, 32);
	smig_tls_ctx_free(s.ctx);
	smig_tls_ctx_free(c.ctx);
}

/* A peer that vanishes after the handshake is a lost connection, not a bad record. */
static void test_vanished_peer_is_closed(void **state)
{
	struct side s = { .ctx = load(dir, "h1") };
	struct side c = { .ctx = load(dir, "h2"), .vanish = true };

	(void)state;
	pair(&s, &c);
	assert_int_equal(s.rc, SMIG_ECLOSED);
	assert_non_null(strstr(s.reason, "closed by peer"));
	smig_tls_ctx_free(s.ctx);
	smig_tls_ctx_free(c.ctx);
}

static void test_client_from_wrong_ca_refused(void **state)
{
	struct side s = { .ctx = load(dir, "h1") };
	struct side c = { .ctx = load(other, "evil") };

	(void)state;
	pair(&s, &c);
	assert_int_equal(s.rc, SMIG_ETLS);
	assert_non_null(strstr(s.reason, "not signed by this cluster's CA (tls.ca)"));
	assert_true(c.rc < 0);
	smig_tls_ctx_free(s.ctx);
	smig_tls_ctx_free(c.ctx);
}

static void test_server_from_wrong_ca_refused(void **state)
{
	struct side s = { .ctx = load(other, "evil") };
	struct side c = { .ctx = load(dir, "h1") };

	(void)state;
	pair(&s, &c);
	assert_int_equal(c.rc, SMIG_ETLS);
	assert_non_null(strstr(c.reason, "not signed by this cluster's CA (tls.ca)"));
	assert_true(s.rc < 0);
	smig_tls_ctx_free(s.ctx);
	smig_tls_ctx_free(c.ctx);
}

static void test_expired_cert_refused(void **state)
{
	struct side s = { .ctx = load(dir, "h1") };
	struct side c = { .ctx = load(dir, "old") };

	(void)state;
	pair(&s, &c);
	assert_int_equal(s.rc, SMIG_ETLS);
	assert_non_null(strstr(s.reason, "expired"));
	smig_tls_ctx_free(s.ctx);
	smig_tls_ctx_free(c.ctx);
}

static void test_fingerprint_mismatch_detected(void **state)
{
	struct side s = { .ctx = load(dir, "h2") };
	struct side c = { .ctx = load(dir, "h1") };
	uint8_t pinned[SMIG_FP_LEN];
	char p[128];

	(void)state;
	/* the client meant to reach h1's twin but finds h2: valid CA, wrong pin */
	path(p, sizeof(p), dir, "h1", ".crt");
	assert_int_equal(smig_tls_cert_fp(p, pinned), 0);
	pair(&s, &c);
	assert_int_equal(c.rc, 0);
	assert_memory_not_equal(c.fp, pinned, SMIG_FP_LEN);
	assert_memory_equal(c.fp, smig_tls_ctx_fp(s.ctx), SMIG_FP_LEN);
	smig_tls_ctx_free(s.ctx);
	smig_tls_ctx_free(c.ctx);
}

/* A raw OpenSSL client with its own settings, to play peers smig never is. */
static void raw_client(int fd, int maxver, const char *suites, const char *cert)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl;
	char crt[128], key[128];

	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_max_proto_version(ctx, maxver);
	if (suites)
		SSL_CTX_set_ciphersuites(ctx, suites);
	if (cert) {
		path(crt, sizeof(crt), dir, cert, ".crt");
		path(key, sizeof(key), dir, cert, ".key");
		SSL_CTX_use_certificate_file(ctx, crt, SSL_FILETYPE_PEM);
		SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM);
	}
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) == 1) {
		char b[4];
		(void)SSL_write(ssl, "ping", 4);
		(void)SSL_read(ssl, b, sizeof(b));
	}
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	ERR_clear_error();
	shutdown(fd, SHUT_RDWR);
}

enum raw_kind { RAW_NO_CERT, RAW_TLS12, RAW_WEAK_SUITE, RAW_PLAIN, RAW_GARBAGE };

static void raw_case(enum raw_kind kind, const char *want)
{
	struct side s = { .ctx = load(dir, "h1") };
	int sv[2];
	pthread_t t;
	uint8_t junk[1024];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	timeouts(sv[0]);
	timeouts(sv[1]);
	s.fd = sv[0];
	assert_int_equal(pthread_create(&t, NULL, server_thread, &s), 0);
	switch (kind) {
	case RAW_NO_CERT: raw_client(sv[1], TLS1_3_VERSION, NULL, NULL); break;
	case RAW_TLS12: raw_client(sv[1], TLS1_2_VERSION, NULL, "h2"); break;
	case RAW_WEAK_SUITE: raw_client(sv[1], TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", "h2"); break;
	case RAW_PLAIN:
		assert_true(write(sv[1], "HELLO smigd, let me in\r\n", 24) == 24);
		shutdown(sv[1], SHUT_WR);
		break;
	case RAW_GARBAGE:
		RAND_bytes(junk, sizeof(junk));
		junk[0] = 0x16; /* looks like a handshake record, then nonsense */
		(void)!write(sv[1], junk, sizeof(junk));
		shutdown(sv[1], SHUT_WR);
		break;
	}
	pthread_join(t, NULL);
	close(sv[0]);
	close(sv[1]);
	assert_true(s.rc < 0);
	if (strstr(s.reason, want) == NULL)
		fail_msg("reason \"%s\" lacks \"%s\"", s.reason, want);
	smig_tls_ctx_free(s.ctx);
}

static void test_client_without_cert_refused(void **state)
{
	(void)state;
	raw_case(RAW_NO_CERT, "peer did not return a certificate");
}

static void test_tls12_client_refused(void **state)
{
	(void)state;
	raw_case(RAW_TLS12, "unsupported protocol");
}

static void test_weak_suite_refused(void **state)
{
	(void)state;
	raw_case(RAW_WEAK_SUITE, "no shared cipher");
}

static void test_plain_tcp_refused(void **state)
{
	(void)state;
	raw_case(RAW_PLAIN, "handshake");
}

static void test_garbage_refused(void **state)
{
	(void)state;
	raw_case(RAW_GARBAGE, "handshake");
}

/*
 * A reload replaces the context while connections made with the old one
 * go on: they keep its certificate and key to their end.
 */
static void test_connection_outlives_its_context(void **state)
{
	struct side s = { .ctx = load(dir, "h1"), .drop_ctx = true };
	struct side c = { .ctx = load(dir, "h2") };
	uint8_t h1fp[SMIG_FP_LEN], h2fp[SMIG_FP_LEN];

	(void)state;
	memcpy(h1fp, smig_tls_ctx_fp(s.ctx), SMIG_FP_LEN);
	memcpy(h2fp, smig_tls_ctx_fp(c.ctx), SMIG_FP_LEN);
	pair(&s, &c);
	assert_int_equal(s.rc, 0);
	assert_int_equal(c.rc, 0);
	assert_null(s.ctx);
	assert_memory_equal(s.own_fp, h1fp, SMIG_FP_LEN);
	assert_memory_equal(c.fp, h1fp, SMIG_FP_LEN);
	assert_memory_equal(c.own_fp, h2fp, SMIG_FP_LEN);
	assert_memory_equal(s.peer.fp, h2fp, SMIG_FP_LEN);
	assert_non_null(strstr(s.peer.subject, "CN=h2"));
	smig_tls_ctx_free(c.ctx);
}

/* The context from PEM text, as a reload makes it; what it says of its certificates. */
static void test_context_from_text(void **state)
{
	char ca[128], crt[128], key[128], other_key[128], err[512];
	char *t[4];
	size_t n;
	struct smig_tls_ctx *ctx = NULL;
	struct smig_cert_info ci;
	uint8_t fp[SMIG_FP_LEN];

	(void)state;
	path(ca, sizeof(ca), dir, "ca", ".crt");
	path(crt, sizeof(crt), dir, "h1", ".crt");
	path(key, sizeof(key), dir, "h1", ".key");
	path(other_key, sizeof(other_key), dir, "h2", ".key");
	assert_int_equal(smig_file_read(ca, 1 << 16, &t[0], &n, err, sizeof(err)), 0);
	assert_int_equal(smig_file_read(crt, 1 << 16, &t[1], &n, err, sizeof(err)), 0);
	assert_int_equal(smig_file_read(key, 1 << 16, &t[2], &n, err, sizeof(err)), 0);
	assert_int_equal(smig_file_read(other_key, 1 << 16, &t[3], &n, err, sizeof(err)), 0);
	assert_int_equal(smig_tls_ctx_new_pem(&ctx, t[0], t[1], t[2], err, sizeof(err)), 0);
	assert_int_equal(smig_tls_cert_fp(crt, fp), 0);
	assert_memory_equal(smig_tls_ctx_fp(ctx), fp, SMIG_FP_LEN);
	assert_memory_equal(smig_tls_ctx_cert(ctx)->fp, fp, SMIG_FP_LEN);
	assert_non_null(strstr(smig_tls_ctx_cert(ctx)->subject, "CN=h1"));
	assert_non_null(strstr(smig_tls_ctx_ca(ctx)->subject, "CN=smig cluster CA"));
	/* h1: 30 days from a minute ago; the CA: 30 days from five minutes ago */
	assert_int_equal(smig_tls_ctx_cert(ctx)->not_after - smig_tls_ctx_cert(ctx)->not_before,
			 30L * 86400);
	assert_true(smig_tls_ctx_ca(ctx)->not_after > time(NULL) + 29L * 86400);
	assert_int_equal(smig_tls_cert_info_pem(t[1], &ci), 0);
	assert_memory_equal(ci.fp, fp, SMIG_FP_LEN);
	smig_tls_ctx_free(ctx);
	ctx = NULL;
	/* another certificate's key, no CA, no certificate: refused, saying which */
	assert_int_equal(smig_tls_ctx_new_pem(&ctx, t[0], t[1], t[3], err, sizeof(err)), SMIG_ETLS);
	assert_non_null(strstr(err, "tls.key does not match tls.cert"));
	assert_int_equal(smig_tls_ctx_new_pem(&ctx, "", t[1], t[2], err, sizeof(err)), SMIG_ETLS);
	assert_non_null(strstr(err, "tls.ca"));
	assert_int_equal(smig_tls_ctx_new_pem(&ctx, t[0], t[2], t[2], err, sizeof(err)), SMIG_ETLS);
	assert_non_null(strstr(err, "tls.cert"));
	assert_null(ctx);
	for (int i = 0; i < 4; i++)
		free(t[i]);
}

static void test_expiry(void **state)
{
	struct smig_cert_info ci = { .not_after = 1000000000 };
	long days;

	(void)state;
	assert_int_equal(smig_cert_expiry(&ci, ci.not_after - 31L * 86400, 30, &days),
			 SMIG_CERT_OK);
	assert_int_equal(days, 31);
	assert_int_equal(smig_cert_expiry(&ci, ci.not_after - 30L * 86400, 30, &days),
			 SMIG_CERT_EXPIRING);
	assert_int_equal(days, 30);
	/* four days and 23 hours: four whole days left */
	assert_int_equal(smig_cert_expiry(&ci, ci.not_after - 5L * 86400 + 3600, 30, &days),
			 SMIG_CERT_EXPIRING);
	assert_int_equal(days, 4);
	assert_int_equal(smig_cert_expiry(&ci, ci.not_after - 1, 1, &days), SMIG_CERT_EXPIRING);
	assert_int_equal(days, 0);
	assert_int_equal(smig_cert_expiry(&ci, ci.not_after, 1, &days), SMIG_CERT_EXPIRED);
	assert_int_equal(days, 0);
	assert_int_equal(smig_cert_expiry(&ci, ci.not_after + 3600, 1, &days), SMIG_CERT_EXPIRED);
	assert_int_equal(days, -1);
}

static void test_readable_key_refused(void **state)
{
	struct smig_tls_ctx *ctx = NULL;
	char ca[128], crt[128], key[128], err[512];

	(void)state;
	path(ca, sizeof(ca), dir, "ca", ".crt");
	path(crt, sizeof(crt), dir, "h1", ".crt");
	path(key, sizeof(key), dir, "h1", ".key");
	assert_int_equal(chmod(key, 0640), 0);
	assert_int_equal(smig_tls_ctx_new(&ctx, ca, crt, key, err, sizeof(err)), SMIG_EPERM);
	assert_non_null(strstr(err, "chmod 600"));
	assert_int_equal(chmod(key, 0600), 0);
	/* a key that does not belong to the certificate */
	path(key, sizeof(key), dir, "h2", ".key");
	assert_int_equal(smig_tls_ctx_new(&ctx, ca, crt, key, err, sizeof(err)), SMIG_ETLS);
	assert_null(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_pair),
		cmocka_unit_test(test_vanished_peer_is_closed),
		cmocka_unit_test(test_client_from_wrong_ca_refused),
		cmocka_unit_test(test_server_from_wrong_ca_refused),
		cmocka_unit_test(test_expired_cert_refused),
		cmocka_unit_test(test_fingerprint_mismatch_detected),
		cmocka_unit_test(test_client_without_cert_refused),
		cmocka_unit_test(test_tls12_client_refused),
		cmocka_unit_test(test_weak_suite_refused),
		cmocka_unit_test(test_plain_tcp_refused),
		cmocka_unit_test(test_garbage_refused),
		cmocka_unit_test(test_readable_key_refused),
		cmocka_unit_test(test_connection_outlives_its_context),
		cmocka_unit_test(test_context_from_text),
		cmocka_unit_test(test_expiry),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("tls", tests, setup, teardown);
}
