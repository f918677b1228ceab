/*
 * test_etcd.c - etcd's JSON gateway messages: base64 both ways, the end of
 * a prefix's range, and the answers parsed, including the hostile ones (a
 * key that is not base64, a count below the keys, revisions that are not
 * numbers) that a member or whoever holds its address may send.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "etcd.h"

static void test_b64(void **state)
{
	const char *in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	const char *want[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
	const uint8_t bin[] = { 0, 0xff, 0x80, 0x7f, 0 };
	size_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		char *e = smig_etcd_b64(in[i], strlen(in[i]));
		uint8_t *d;

		assert_string_equal(e, want[i]);
		d = smig_etcd_unb64(e, &len);
		assert_non_null(d);
		assert_int_equal(len, strlen(in[i]));
		assert_memory_equal(d, in[i], len);
		free(d);
		free(e);
	}
	{
		char *e = smig_etcd_b64(bin, sizeof(bin));
		uint8_t *d = smig_etcd_unb64(e, &len);

		assert_int_equal(len, sizeof(bin));
		assert_memory_equal(d, bin, sizeof(bin));
		free(d);
		free(e);
	}
	assert_null(smig_etcd_unb64("Zm9", &len));    /* not a multiple of 4 */
	assert_null(smig_etcd_unb64("Zm9*", &len));   /* not the alphabet */
	assert_null(smig_etcd_unb64("Z===", &len));   /* three pads */
	assert_null(smig_etcd_unb64("Zg==Zg==", &len)); /* padding inside */
	assert_null(smig_etcd_unb64("Zh==", &len));     /* bits past the pad: not canonical */
	assert_null(smig_etcd_unb64("Zm9=", &len));
	assert_null(smig_etcd_unb64("Zg=A", &len));
}

static void test_prefix_end(void **state)
{
	size_t len;
	uint8_t *e;

	(void)state;
	e = smig_etcd_prefix_end("/smig/hosts/", &len);
	assert_int_equal(len, 12);
	assert_memory_equal(e, "/smig/hosts0", 12);
	free(e);
	e = smig_etcd_prefix_end("a\xff\xff", &len);
	assert_int_equal(len, 1);
	assert_int_equal(e[0], 'b');
	free(e);
	e = smig_etcd_prefix_end("\xff", &len);
	assert_int_equal(len, 1);
	assert_int_equal(e[0], 0);
	free(e);
}

static int range(const char *s, struct smig_etcd_kvs *k, char *err, size_t errlen)
{
	return smig_etcd_parse_range(s, strlen(s), k, err, errlen);
}

static void test_range(void **state)
{
	struct smig_etcd_kvs k;
	char err[256];

	(void)state;
	/* "/a" = L2E=, "x" = eA==; proto3 leaves out what is 0 (the value here) */
	assert_int_equal(range("{\"header\":{\"revision\":\"9\"},\"kvs\":[{\"key\":\"L2E=\","
			       "\"value\":\"eA==\",\"mod_revision\":\"7\",\"create_revision\":\"3\","
			       "\"version\":\"2\",\"lease\":\"7587862\"},{\"key\":\"L2I=\","
			       "\"mod_revision\":\"8\"}],\"count\":\"2\"}",
			       &k, err, sizeof(err)),
			 0);
	assert_int_equal(k.revision, 9);
	assert_int_equal(k.n, 2);
	assert_int_equal(k.count, 2);
	assert_string_equal(k.v[0].key, "/a");
	assert_string_equal((char *)k.v[0].value, "x");
	assert_int_equal(k.v[0].mod_revision, 7);
	assert_int_equal(k.v[0].lease, 7587862);
	assert_string_equal(k.v[1].key, "/b");
	assert_int_equal(k.v[1].value_len, 0);
	smig_etcd_kvs_free(&k);
	/* no key at all: no kvs, no count */
	assert_int_equal(range("{\"header\":{\"revision\":\"9\"}}", &k, err, sizeof(err)), 0);
	assert_int_equal(k.n, 0);
	smig_etcd_kvs_free(&k);

	assert_int_equal(range("{\"kvs\":[]}", &k, err, sizeof(err)), SMIG_EPROTO);
	assert_non_null(strstr(err, "header.revision"));
	assert_int_equal(range("{\"header\":{\"revision\":\"x9\"}}", &k, err, sizeof(err)),
			 SMIG_EPROTO);
	assert_int_equal(range("{\"header\":{\"revision\":\" 9\"}}", &k, err, sizeof(err)),
			 SMIG_EPROTO);
	assert_int_equal(range("{\"header\":{\"revision\":\"+9\"}}", &k, err, sizeof(err)),
			 SMIG_EPROTO);
	assert_int_equal(range("{\"header\":{\"revision\":\"9\"},\"kvs\":[{\"key\":\"L2E\"}],"
			       "\"count\":\"1\"}",
			       &k, err, sizeof(err)),
			 SMIG_EPROTO);
	assert_non_null(strstr(err, "base64"));
	/* a key with a NUL in it ("/\0" = LwA=) */
	assert_int_equal(range("{\"header\":{\"revision\":\"9\"},\"kvs\":[{\"key\":\"LwA=\"}],"
			       "\"count\":\"1\"}",
			       &k, err, sizeof(err)),
			 SMIG_EPROTO);
	assert_int_equal(range("{\"header\":{\"revision\":\"9\"},\"kvs\":[{\"key\":\"L2E=\"}],"
			       "\"count\":\"0\"}",
			       &k, err, sizeof(err)),
			 SMIG_EPROTO);
	assert_non_null(strstr(err, "count"));
	assert_int_equal(range("{\"header\":{\"revision\":\"9\"},\"kvs\":{}}", &k, err, sizeof(err)),
			 SMIG_EPROTO);
	assert_int_equal(range("[1]", &k, err, sizeof(err)), SMIG_EPROTO);
	assert_int_equal(range("{\"header\":{\"revision\":\"9\"},\"header\":{}}", &k, err,
			       sizeof(err)),
			 SMIG_EPROTO); /* duplicate keys */
	assert_int_equal(range("{\"header\":{\"revision\":\"9\"},\"kvs\":[{\"key\":\"L2E=\","
			       "\"mod_revision\":\"-1\"}],\"count\":\"1\"}",
			       &k, err, sizeof(err)),
			 SMIG_EPROTO);
}

static void test_answers(void **state)
{
	char err[256];
	bool ok;
	int64_t rev, del, id, ttl;
	const char *s;

	(void)state;
	s = "{\"header\":{\"revision\":\"12\"},\"succeeded\":true,\"responses\":[{}]}";
	assert_int_equal(smig_etcd_parse_txn(s, strlen(s), &ok, &rev, err, sizeof(err)), 0);
	assert_true(ok);
	assert_int_equal(rev, 12);
	s = "{\"header\":{\"revision\":\"12\"}}"; /* false is left out */
	assert_int_equal(smig_etcd_parse_txn(s, strlen(s), &ok, &rev, err, sizeof(err)), 0);
	assert_false(ok);
	s = "{\"header\":{\"revision\":\"12\"},\"succeeded\":\"yes\"}";
	assert_int_equal(smig_etcd_parse_txn(s, strlen(s), &ok, &rev, err, sizeof(err)),
			 SMIG_EPROTO);
	s = "{\"header\":{\"revision\":\"13\"},\"deleted\":\"2\"}";
	assert_int_equal(smig_etcd_parse_write(s, strlen(s), &rev, &del, err, sizeof(err)), 0);
	assert_int_equal(del, 2);
	s = "{\"header\":{\"revision\":\"13\"},\"ID\":\"7587862\",\"TTL\":\"10\"}";
	assert_int_equal(smig_etcd_parse_lease(s, strlen(s), &id, &ttl, err, sizeof(err)), 0);
	assert_int_equal(id, 7587862);
	assert_int_equal(ttl, 10);
	s = "{\"result\":{\"header\":{\"revision\":\"13\"},\"ID\":\"7587862\"}}";
	assert_int_equal(smig_etcd_parse_lease(s, strlen(s), &id, &ttl, err, sizeof(err)), 0);
	assert_int_equal(ttl, 0); /* expired */
	s = "{\"ID\":\"1\",\"TTL\":\"99999999999\"}"; /* past any lease etcd grants */
	assert_int_equal(smig_etcd_parse_lease(s, strlen(s), &id, &ttl, err, sizeof(err)),
			 SMIG_EPROTO);
	s = "{\"ID\":\"1\",\"TTL\":\"-5\"}";
	assert_int_equal(smig_etcd_parse_lease(s, strlen(s), &id, &ttl, err, sizeof(err)),
			 SMIG_EPROTO);
	s = "{\"error\":\"etcdserver: requested lease not found\",\"code\":5,\"message\":"
	    "\"etcdserver: requested lease not found\"}";
	assert_int_equal(smig_etcd_answer_error(s, strlen(s), err, sizeof(err)), 1);
	assert_string_equal(err, "etcdserver: requested lease not found");
	s = "{\"header\":{\"revision\":\"13\"}}";
	assert_int_equal(smig_etcd_answer_error(s, strlen(s), err, sizeof(err)), 0);
}

/* The watch's stream: message by message, a part of one waits for the rest. */
static void test_watch(void **state)
{
	static const char stream[] =
		"{\"result\":{\"header\":{\"revision\":\"1\"},\"created\":true}}\n"
		"{\"result\":{\"header\":{\"revision\":\"3\"},\"events\":["
		"{\"kv\":{\"key\":\"Zm9v\",\"mod_revision\":\"2\",\"value\":\"YmFy\"}},"
		"{\"type\":\"DELETE\",\"kv\":{\"key\":\"Zm9v\",\"mod_revision\":\"3\"}}]}}\n";
	struct smig_etcd_watch_msg m;
	char err[256];
	size_t used, off;

	(void)state;
	assert_int_equal(smig_etcd_parse_watch(stream, sizeof(stream) - 1, &m, &used, err,
					       sizeof(err)), 1);
	assert_true(m.created);
	assert_int_equal(m.revision, 1);
	assert_int_equal(m.events.n, 0);
	off = used;
	smig_etcd_watch_msg_free(&m);
	/* the next message cut short: not yet one */
	assert_int_equal(smig_etcd_parse_watch(stream + off, 40, &m, &used, err, sizeof(err)), 0);
	assert_int_equal(used, 0);
	assert_int_equal(smig_etcd_parse_watch(stream + off, sizeof(stream) - 1 - off, &m, &used,
					       err, sizeof(err)), 1);
	assert_int_equal(m.revision, 3);
	assert_int_equal(m.events.n, 2);
	assert_string_equal(m.events.v[0].key, "foo");
	assert_string_equal((char *)m.events.v[0].value, "bar");
	assert_false(m.deleted[0]);
	assert_true(m.deleted[1]);
	assert_int_equal(m.events.v[1].mod_revision, 3);
	off += used;
	smig_etcd_watch_msg_free(&m);
	assert_int_equal(smig_etcd_parse_watch(stream + off, sizeof(stream) - 1 - off, &m, &used,
					       err, sizeof(err)), 0); /* only the last newline left */
	/* compacted away: cancelled, with the revision etcd keeps from */
	assert_int_equal(smig_etcd_parse_watch("{\"result\":{\"header\":{\"revision\":\"9\"},"
					       "\"canceled\":true,\"compact_revision\":\"5\"}}",
					       77, &m, &used, err, sizeof(err)), 1);
	assert_true(m.canceled);
	assert_int_equal(m.compact_revision, 5);
	smig_etcd_watch_msg_free(&m);
	/* not a message: an error, a bad event */
	assert_true(smig_etcd_parse_watch("{\"error\":{\"message\":\"no leader\"}}", 33, &m, &used, err,
					  sizeof(err)) < 0);
	assert_non_null(strstr(err, "no leader"));
	assert_true(smig_etcd_parse_watch("{\"result\":{\"header\":{\"revision\":\"2\"},"
					  "\"events\":[{\"type\":\"EXPLODE\",\"kv\":{}}]}}",
					  76, &m, &used, err, sizeof(err)) < 0);
	assert_true(smig_etcd_parse_watch("]", 1, &m, &used, err, sizeof(err)) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_prefix_end),
		cmocka_unit_test(test_range),
		cmocka_unit_test(test_answers),
		cmocka_unit_test(test_watch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
