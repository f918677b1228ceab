/*
 * test_privmsg.c - the warden/worker messages: every kind of field round
 * trips; what a compromised worker could send instead (unknown types,
 * names outside their alphabet, NUL inside strings, missing terminators,
 * lengths past their kind, trailing bytes, the wrong number of
 * descriptors, a bool of 2, a cut datagram) is refused; descriptors cross
 * a real socketpair with their datagram.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "privmsg.h"

static const uint8_t key[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
				 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };

static void test_round_trip(void **state)
{
	struct smig_buf b;
	struct smig_pm m;
	int fds[2] = { 7, 8 };

	(void)state;
	smig_buf_init(&b, SMIG_PM_MAX);
	assert_int_equal(smig_pm_build(&b, SMIG_PM_VM_STAGE, 42, "{\"name\":\"web1\"}", "h2", key, 1,
				       key, (uint64_t)4194304),
			 0);
	assert_int_equal(smig_pm_parse(smig_buf_peek(&b), smig_buf_remaining(&b), NULL, 0, &m), 0);
	assert_int_equal(m.type, SMIG_PM_VM_STAGE);
	assert_int_equal(m.id, 42);
	assert_int_equal(m.nf, 6);
	assert_string_equal(smig_pm_str(&m, 0), "{\"name\":\"web1\"}");
	assert_string_equal(smig_pm_str(&m, 1), "h2");
	assert_memory_equal(smig_pm_key(&m, 2), key, 32);
	assert_int_equal(smig_pm_int(&m, 3), 1);
	assert_int_equal(smig_pm_int(&m, 5), 4194304);
	assert_string_equal(smig_pm_name(m.type), "vm.stage");

	/* a reply with descriptors: the schema says how many */
	assert_int_equal(smig_pm_build(&b, SMIG_PM_VM_START + 1, 9, 0u, "", 1234u, 1235u, 1), 0);
	assert_int_equal(smig_pm_parse(smig_buf_peek(&b), smig_buf_remaining(&b), fds, 2, &m), 0);
	assert_int_equal(m.nfds, 2);
	assert_int_equal(m.fds[1], 8);
	assert_int_equal(smig_pm_int(&m, 2), 1234);
	assert_int_equal(smig_pm_parse(smig_buf_peek(&b), smig_buf_remaining(&b), fds, 1, &m),
			 SMIG_EPROTO);
	assert_int_equal(smig_pm_parse(smig_buf_peek(&b), smig_buf_remaining(&b), NULL, 0, &m),
			 SMIG_EPROTO);
	/* a failed start comes back without descriptors, and still reaches its caller */
	assert_int_equal(smig_pm_build(&b, SMIG_PM_VM_START + 1, 9, 5u, "cannot limit memory", 0u,
				       0u, 0),
			 0);
	assert_int_equal(smig_pm_parse(smig_buf_peek(&b), smig_buf_remaining(&b), NULL, 0, &m), 0);
	assert_int_equal(smig_pm_int(&m, 0), 5);
	assert_string_equal(smig_pm_str(&m, 1), "cannot limit memory");
	assert_int_equal(smig_pm_parse(smig_buf_peek(&b), smig_buf_remaining(&b), fds, 2, &m),
			 SMIG_EPROTO);
	smig_buf_clear(&b);
}

static void test_build_refuses(void **state)
{
	char big[SMIG_PM_TEXT_MAX + 2];
	struct smig_buf b;

	(void)state;
	smig_buf_init(&b, SMIG_PM_MAX);
	/* names keep their alphabet: no path, no dot first */
	assert_int_equal(smig_pm_build(&b, SMIG_PM_VM_UNDEFINE, 1, "../etc"), SMIG_EINVAL);
	assert_int_equal(smig_pm_build(&b, SMIG_PM_VM_UNDEFINE, 1, ".x"), SMIG_EINVAL);
	assert_int_equal(smig_pm_build(&b, SMIG_PM_VM_UNDEFINE, 1, ""), SMIG_EINVAL);
	assert_int_equal(smig_pm_build(&b, SMIG_PM_VM_UNDEFINE, 1, (const char *)NULL), SMIG_EINVAL);
	assert_int_equal(smig_pm_build(&b, SMIG_PM_BAN, 1, "10.0.0.1 x", (uint64_t)1), SMIG_EINVAL);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(smig_pm_build(&b, SMIG_PM_AUDIT_WRITABLE + 1, 1, 1) , 0);
	assert_int_equal(smig_pm_build(&b, SMIG_PM_VM_KILL + 1, 1, 0u, big), SMIG_EINVAL);
	assert_int_equal(smig_pm_build(&b, 999, 1), SMIG_ETYPE);
	smig_buf_clear(&b);
}

/* A VM_UNDEFINE whose name field is raw bytes of length len. */
static size_t undefine_raw(uint8_t *out, const void *name, uint32_t len, bool nul)
{
	size_t n = 0;

	out[n++] = 0;
	out[n++] = SMIG_PM_VM_UNDEFINE;
	memset(out + n, 0, 4);
	n += 4;
	out[n++] = (uint8_t)(len >> 24);
	out[n++] = (uint8_t)(len >> 16);
	out[n++] = (uint8_t)(len >> 8);
	out[n++] = (uint8_t)len;
	memcpy(out + n, name, len);
	n += len;
	if (nul)
		out[n++] = 0;
	return n;
}

static void test_parse_refuses(void **state)
{
	uint8_t raw[512];
	struct smig_pm m;
	size_t n;

	(void)state;
	n = undefine_raw(raw, "web1", 4, true);
	assert_int_equal(smig_pm_parse(raw, n, NULL, 0, &m), 0);
	assert_string_equal(smig_pm_str(&m, 0), "web1");
	/* trailing bytes, a cut datagram, a missing terminator */
	raw[n] = 'x';
	assert_int_equal(smig_pm_parse(raw, n + 1, NULL, 0, &m), SMIG_ETRAILING);
	assert_int_equal(smig_pm_parse(raw, n - 1, NULL, 0, &m), SMIG_ESHORT);
	n = undefine_raw(raw, "web1", 4, true);
	raw[n - 1] = 'x'; /* where the NUL belongs */
	assert_int_equal(smig_pm_parse(raw, n, NULL, 0, &m), SMIG_EPROTO);
	n = undefine_raw(raw, "web1", 4, false);
	assert_int_equal(smig_pm_parse(raw, n, NULL, 0, &m), SMIG_ESHORT);
	/* a NUL inside, a path, a name longer than names are */
	n = undefine_raw(raw, "we\0b1", 5, true);
	assert_int_equal(smig_pm_parse(raw, n, NULL, 0, &m), SMIG_EPROTO);
	n = undefine_raw(raw, "a/../../b", 9, true);
	assert_int_equal(smig_pm_parse(raw, n, NULL, 0, &m), SMIG_EPROTO);
	memset(raw + 200, 'a', 64);
	n = undefine_raw(raw, raw + 200, 64, true);
	assert_int_equal(smig_pm_parse(raw, n, NULL, 0, &m), SMIG_ETOOBIG);
	/* a length that claims more than the datagram has */
	n = undefine_raw(raw, "web1", 4, true);
	raw[6] = 0x7f;
	assert_int_equal(smig_pm_parse(raw, n, NULL, 0, &m), SMIG_ETOOBIG);
	/* an unknown type, a reply's type missing its fields */
	raw[1] = 99;
	assert_int_equal(smig_pm_parse(raw, n, NULL, 0, &m), SMIG_ETYPE);
	/* a bool of 2 */
	{
		uint8_t v[] = { 0, SMIG_PM_AUDIT_WRITABLE + 1, 0, 0, 0, 1, 2 };

		assert_int_equal(smig_pm_parse(v, sizeof(v), NULL, 0, &m), SMIG_EPROTO);
		v[6] = 1;
		assert_int_equal(smig_pm_parse(v, sizeof(v), NULL, 0, &m), 0);
	}
}

static void test_socketpair(void **state)
{
	int sv[2], fds[SMIG_PM_FDS_MAX], devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	uint8_t *buf = malloc(SMIG_PM_MAX);
	char *doc = malloc(SMIG_PM_DOC_MAX + 1);
	struct smig_buf b;
	struct smig_pm m;
	struct stat a, c;
	size_t len, nfds;

	(void)state;
	assert_non_null(buf);
	assert_non_null(doc);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	smig_buf_init(&b, SMIG_PM_MAX);
	assert_int_equal(smig_pm_build(&b, SMIG_PM_VM_CONNECT + 1, 3, 0u, ""), 0);
	assert_int_equal(smig_pm_send(sv[0], &b, &devnull, 1), 0);
	assert_int_equal(smig_pm_recv(sv[1], buf, SMIG_PM_MAX, &len, fds, &nfds), 0);
	assert_int_equal(nfds, 1);
	assert_int_equal(smig_pm_parse(buf, len, fds, nfds, &m), 0);
	assert_int_equal(fstat(devnull, &a), 0);
	assert_int_equal(fstat(m.fds[0], &c), 0);
	assert_int_equal(a.st_ino, c.st_ino); /* the same file arrived */
	close(m.fds[0]);
	/* nothing waiting: EAGAIN, not a block */
	assert_int_equal(smig_pm_recv(sv[1], buf, SMIG_PM_MAX, &len, fds, &nfds), SMIG_EAGAIN);
	/* a whole document, a megabyte, in one datagram */
	memset(doc, 'x', SMIG_PM_DOC_MAX);
	doc[SMIG_PM_DOC_MAX] = '\0';
	assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &(int){ 4 << 20 }, sizeof(int)), 0);
	assert_int_equal(smig_pm_build(&b, SMIG_PM_EV_IVT, 0, doc), 0);
	if (smig_pm_send(sv[0], &b, NULL, 0) == 0) { /* unprivileged: SO_SNDBUF may cap it */
		assert_int_equal(smig_pm_recv(sv[1], buf, SMIG_PM_MAX, &len, fds, &nfds), 0);
		assert_int_equal(smig_pm_parse(buf, len, fds, nfds, &m), 0);
		assert_int_equal(m.f[0].len, SMIG_PM_DOC_MAX);
	}
	/* the other end gone */
	close(sv[0]);
	assert_int_equal(smig_pm_recv(sv[1], buf, SMIG_PM_MAX, &len, fds, &nfds), SMIG_ECLOSED);
	close(sv[1]);
	close(devnull);
	smig_buf_clear(&b);
	free(buf);
	free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_build_refuses),
		cmocka_unit_test(test_parse_refuses),
		cmocka_unit_test(test_socketpair),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
