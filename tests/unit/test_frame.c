/*
 * test_frame.c - wire framing and message payloads: every truncation of a
 * valid frame, every oversize length, every unknown type, strict payloads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "error.h"
#include "frame.h"
#include "msg.h"

static const uint8_t known_types[] = {
	SMIG_MSG_HELLO, SMIG_MSG_PING, SMIG_MSG_PONG, SMIG_MSG_ERROR, SMIG_MSG_BYE,
	SMIG_MSG_ATTEST_REQ, SMIG_MSG_ATTEST, SMIG_MSG_ENROL_CHAL, SMIG_MSG_ENROL_PROOF,
	SMIG_MSG_ATTEST_LOG, SMIG_MSG_VERDICT, SMIG_MSG_RESERVE, SMIG_MSG_RESERVED,
	SMIG_MSG_MIG_CHANNEL, SMIG_MSG_MIG_CHANNEL_OK, SMIG_MSG_MIG_PREPARE, SMIG_MSG_MIG_PREPARED, SMIG_MSG_MIG_DATA, SMIG_MSG_MIG_COMMIT_REQ,
	SMIG_MSG_MIG_READY, SMIG_MSG_MIG_COMMIT, SMIG_MSG_MIG_COMMITTED, SMIG_MSG_MIG_ABORT,
	SMIG_MSG_MIG_SETTLED, SMIG_MSG_MIG_QUERY, SMIG_MSG_MIG_OUTCOME,
};

static const struct smig_mig_id id9 = { { 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9 } };

static void encode_mig(struct smig_buf *out)
{
	struct smig_mig_prepare mp = { .spec = "{\"name\":\"a\"}", .spec_len = 12,
				       .has_key = 1, .has_fw = 1, .fw_size = 4194304 };
	struct smig_mig_commit_req cr = { .id = id9, .bytes = 123456789 };
	struct smig_mig_abort ab = { .id = id9, .code = 5, .reason = "stream damaged" };
	struct smig_mig_settled st = { .id = id9, .fate = SMIG_GUEST_CRASHED,
				       .detail = "GUEST_PANICKED 1.2 s after resume" };

	memset(mp.key, 0xab, sizeof(mp.key));
	memset(mp.fw_sha256, 0xcd, sizeof(mp.fw_sha256));
	assert_int_equal(smig_msg_put_mig_prepare(out, &mp), 0);
	assert_int_equal(smig_msg_put_mig_id(out, SMIG_MSG_MIG_PREPARED, &id9), 0);
	assert_int_equal(smig_frame_put(out, SMIG_MSG_MIG_DATA, "guest-ram", 9), 0);
	assert_int_equal(smig_msg_put_mig_commit_req(out, &cr), 0);
	assert_int_equal(smig_msg_put_mig_ready(out, &id9, SMIG_PROT_NIC_FILTER | SMIG_PROT_SANDBOX), 0);
	assert_int_equal(smig_msg_put_mig_id(out, SMIG_MSG_MIG_COMMIT, &id9), 0);
	assert_int_equal(smig_msg_put_mig_id(out, SMIG_MSG_MIG_COMMITTED, &id9), 0);
	assert_int_equal(smig_msg_put_mig_abort(out, &ab), 0);
	assert_int_equal(smig_msg_put_mig_settled(out, &st), 0);
	assert_int_equal(smig_msg_put_mig_id(out, SMIG_MSG_MIG_QUERY, &id9), 0);
	assert_int_equal(smig_msg_put_mig_outcome(out, &id9, SMIG_OUTCOME_COMMITTED), 0);
}

/* Decodes f with the decoder of its type; the result code. */
static int decode_any(const struct smig_frame *f)
{
	struct smig_hello h;
	struct smig_ping p;
	struct smig_error_msg e;
	struct smig_mig_prepare mp;
	struct smig_mig_commit_req cr;
	struct smig_mig_abort ab;
	struct smig_mig_settled st;
	uint32_t prot;
	uint8_t outcome;
	uint8_t nonce[SMIG_ATTEST_NONCE_LEN];
	const char *text;
	size_t len;
	struct smig_mig_id id;
	struct smig_enrol_chal ch;

	switch (f->type) {
	case SMIG_MSG_ATTEST_REQ: return smig_msg_get_attest_req(f, nonce);
	case SMIG_MSG_ATTEST: return smig_msg_get_attest(f, &text, &len);
	case SMIG_MSG_ENROL_CHAL: return smig_msg_get_enrol_chal(f, &ch);
	case SMIG_MSG_ENROL_PROOF: return smig_msg_get_enrol_proof(f, nonce);
	case SMIG_MSG_VERDICT: return smig_msg_get_verdict(f, &text, &len);
	case SMIG_MSG_RESERVE: {
		struct smig_reserve r;

		return smig_msg_get_reserve(f, &r);
	}
	case SMIG_MSG_RESERVED: {
		struct smig_reserved r;

		return smig_msg_get_reserved(f, &r);
	}
	case SMIG_MSG_MIG_CHANNEL:
	case SMIG_MSG_MIG_CHANNEL_OK: {
		struct smig_mig_channel c;

		return smig_msg_get_mig_channel(f, f->type, &c);
	}
	case SMIG_MSG_ATTEST_LOG: {
		uint8_t which;
		const uint8_t *data;

		return smig_msg_get_attest_log(f, &which, &data, &len);
	}
	case SMIG_MSG_HELLO: return smig_msg_get_hello(f, &h);
	case SMIG_MSG_PING: return smig_msg_get_ping(f, SMIG_MSG_PING, &p);
	case SMIG_MSG_PONG: return smig_msg_get_ping(f, SMIG_MSG_PONG, &p);
	case SMIG_MSG_ERROR: return smig_msg_get_error(f, &e);
	case SMIG_MSG_BYE: return smig_msg_get_bye(f);
	case SMIG_MSG_MIG_PREPARE: return smig_msg_get_mig_prepare(f, &mp);
	case SMIG_MSG_MIG_COMMIT_REQ: return smig_msg_get_mig_commit_req(f, &cr);
	case SMIG_MSG_MIG_ABORT: return smig_msg_get_mig_abort(f, &ab);
	case SMIG_MSG_MIG_SETTLED: return smig_msg_get_mig_settled(f, &st);
	case SMIG_MSG_MIG_DATA: return 0;
	case SMIG_MSG_MIG_READY: return smig_msg_get_mig_ready(f, &id, &prot);
	case SMIG_MSG_MIG_OUTCOME: return smig_msg_get_mig_outcome(f, &id, &outcome);
	default: return smig_msg_get_mig_id(f, f->type, &id);
	}
}

/* One valid frame of each known type, encoded with the msg functions. */
static void encode_all(struct smig_buf *out)
{
	struct smig_hello h = { .host = "h1", .version = "0.1.0", .features = 7 };
	struct smig_ping p = { .nonce = 42, .sent_ns = 99 };
	struct smig_error_msg e = { .code = 5, .reason = "nope" };
	uint8_t nonce[SMIG_ATTEST_NONCE_LEN];

	assert_int_equal(smig_msg_put_hello(out, &h), 0);
	assert_int_equal(smig_msg_put_ping(out, SMIG_MSG_PING, &p), 0);
	assert_int_equal(smig_msg_put_ping(out, SMIG_MSG_PONG, &p), 0);
	assert_int_equal(smig_msg_put_error(out, &e), 0);
	assert_int_equal(smig_msg_put_bye(out), 0);
	memset(nonce, 0x5a, sizeof(nonce));
	assert_int_equal(smig_msg_put_attest_req(out, nonce), 0);
	assert_int_equal(smig_msg_put_attest(out, "{\"v\":1}", 7), 0);
	{
		struct smig_enrol_chal ch = { nonce, 32, nonce, 16 };

		assert_int_equal(smig_msg_put_enrol_chal(out, &ch), 0);
		assert_int_equal(smig_msg_put_enrol_proof(out, nonce), 0);
		assert_int_equal(smig_msg_put_attest_log(out, SMIG_LOG_IMA, nonce, 32), 0);
		assert_int_equal(smig_msg_put_verdict(out, "{}", 2), 0);
	}
	{
		struct smig_reserve r = { .vm = "web1", .memory_mib = 48, .vcpus = 1, .ttl_s = 600 };
		struct smig_reserved a = { .held = false, .reason = "capacity: no" };

		assert_int_equal(smig_msg_put_reserve(out, &r), 0);
		assert_int_equal(smig_msg_put_reserved(out, &a), 0);
	}
	{
		struct smig_mig_channel ch = { .id = id9, .index = 3 };

		memset(ch.mac, 0x77, sizeof(ch.mac));
		assert_int_equal(smig_msg_put_mig_channel(out, SMIG_MSG_MIG_CHANNEL, &ch), 0);
		assert_int_equal(smig_msg_put_mig_channel(out, SMIG_MSG_MIG_CHANNEL_OK, &ch), 0);
	}
	encode_mig(out);
}

static void test_roundtrip_every_type(void **state)
{
	struct smig_buf b;
	struct smig_frame f;
	struct smig_hello h;
	struct smig_ping p;
	struct smig_error_msg e;

	(void)state;
	smig_buf_init(&b, 4096);
	encode_all(&b);
	assert_int_equal(smig_frame_next(&b, &f), 0);
	assert_int_equal(smig_msg_get_hello(&f, &h), 0);
	assert_string_equal(h.host, "h1");
	assert_string_equal(h.version, "0.1.0");
	assert_int_equal(h.features, 7);
	assert_int_equal(smig_frame_next(&b, &f), 0);
	assert_int_equal(smig_msg_get_ping(&f, SMIG_MSG_PING, &p), 0);
	assert_true(p.nonce == 42 && p.sent_ns == 99);
	assert_int_equal(smig_frame_next(&b, &f), 0);
	assert_int_equal(smig_msg_get_ping(&f, SMIG_MSG_PONG, &p), 0);
	assert_int_equal(smig_frame_next(&b, &f), 0);
	assert_int_equal(smig_msg_get_error(&f, &e), 0);
	assert_int_equal(e.code, 5);
	assert_string_equal(e.reason, "nope");
	assert_int_equal(smig_frame_next(&b, &f), 0);
	assert_int_equal(smig_msg_get_bye(&f), 0);
	for (size_t i = 5; i < sizeof(known_types); i++) {
		assert_int_equal(smig_frame_next(&b, &f), 0);
		assert_int_equal(f.type, known_types[i]);
		assert_int_equal(decode_any(&f), 0);
	}
	assert_int_equal(smig_frame_next(&b, &f), SMIG_EAGAIN);
	smig_buf_clear(&b);
}

/* Splits a buffer of consecutive frames into (offset, length) pairs. */
static size_t split_frames(const struct smig_buf *b, size_t *off, size_t *len, size_t max)
{
	size_t n = 0;
	size_t at = 0;

	while (at < b->len && n < max) {
		uint8_t type;
		uint32_t plen;
		assert_int_equal(smig_frame_header(b->data + at, b->len - at, &type, &plen), 0);
		off[n] = at;
		len[n] = SMIG_FRAME_HDR_LEN + plen;
		at += len[n++];
	}
	return n;
}

static void test_every_truncation_fails(void **state)
{
	struct smig_buf b;
	size_t off[32];
	size_t len[32];
	size_t n;

	(void)state;
	smig_buf_init(&b, 4096);
	encode_all(&b);
	n = split_frames(&b, off, len, 32);
	assert_int_equal(n, sizeof(known_types));
	for (size_t i = 0; i < n; i++) {
		struct smig_frame f;
		assert_int_equal(smig_frame_parse(b.data + off[i], len[i], &f), 0);
		for (size_t cut = 0; cut < len[i]; cut++) {
			struct smig_buf rx;
			assert_int_equal(smig_frame_parse(b.data + off[i], cut, &f), SMIG_ESHORT);
			smig_buf_view(&rx, b.data + off[i], cut);
			assert_int_equal(smig_frame_next(&rx, &f), SMIG_EAGAIN);
		}
	}
	smig_buf_clear(&b);
}

static void test_truncated_payloads_fail(void **state)
{
	struct smig_buf b;
	size_t off[32];
	size_t len[32];
	size_t n;

	(void)state;
	smig_buf_init(&b, 4096);
	encode_all(&b);
	n = split_frames(&b, off, len, 32);
	/* a frame whose header agrees with a shortened payload still fails to decode */
	for (size_t i = 0; i < n; i++) {
		uint32_t plen = (uint32_t)(len[i] - SMIG_FRAME_HDR_LEN);
		for (uint32_t cut = 0; cut < plen; cut++) {
			struct smig_frame f = { .type = b.data[off[i] + 1], .len = cut,
						.payload = b.data + off[i] + SMIG_FRAME_HDR_LEN };
			if (f.type == SMIG_MSG_MIG_DATA || (f.type == SMIG_MSG_ATTEST && cut > 0) ||
			    (f.type == SMIG_MSG_ATTEST_LOG && cut > 1) ||
			    (f.type == SMIG_MSG_VERDICT && cut > 0))
				continue; /* raw bytes: any length is a payload (evidence.h parses
					     ATTEST's, a log's bytes are checked against its evidence) */
			assert_true(decode_any(&f) < 0);
		}
	}
	smig_buf_clear(&b);
}

static void test_every_oversize_length_fails(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(known_types); i++) {
		uint32_t max;
		const uint32_t probes[] = { 1, 2, 255, 65536, 0x7fffffff, 0xffffffff };
		assert_int_equal(smig_frame_type_max(known_types[i], &max), 0);
		for (size_t j = 0; j < sizeof(probes) / sizeof(probes[0]); j++) {
			uint32_t l = max + probes[j];
			uint8_t hdr[8] = { SMIG_PROTO_VERSION, known_types[i], 0, 0,
					   (uint8_t)(l >> 24), (uint8_t)(l >> 16), (uint8_t)(l >> 8),
					   (uint8_t)l };
			uint8_t type;
			uint32_t got;
			if (l <= max)
				continue; /* wrapped around */
			assert_int_equal(smig_frame_header(hdr, sizeof(hdr), &type, &got),
					 SMIG_ETOOBIG);
		}
	}
}

/* ENROL_CHAL and ENROL_PROOF round-trip; empty, oversize or trailing parts fail. */
static void test_enrol_messages(void **state)
{
	uint8_t blob[70], secret[70], cred[SMIG_ENROL_CRED_LEN], back[SMIG_ENROL_CRED_LEN];
	struct smig_enrol_chal ch = { blob, sizeof(blob), secret, sizeof(secret) }, got;
	struct smig_buf b;
	struct smig_frame f;

	(void)state;
	memset(blob, 0xb1, sizeof(blob));
	memset(secret, 0x5e, sizeof(secret));
	memset(cred, 0xc7, sizeof(cred));
	smig_buf_init(&b, 4096);
	assert_int_equal(smig_msg_put_enrol_chal(&b, &ch), 0);
	assert_int_equal(smig_frame_next(&b, &f), 0);
	assert_int_equal(smig_msg_get_enrol_chal(&f, &got), 0);
	assert_int_equal(got.blob_len, sizeof(blob));
	assert_memory_equal(got.secret, secret, sizeof(secret));
	assert_int_equal(smig_msg_get_enrol_proof(&f, back), SMIG_EPROTO);
	smig_buf_reset(&b);
	assert_int_equal(smig_msg_put_enrol_proof(&b, cred), 0);
	assert_int_equal(smig_frame_next(&b, &f), 0);
	assert_int_equal(smig_msg_get_enrol_proof(&f, back), 0);
	assert_memory_equal(back, cred, sizeof(cred));
	ch.blob_len = 0;
	assert_int_equal(smig_msg_put_enrol_chal(&b, &ch), SMIG_ETOOBIG);
	ch.blob_len = SMIG_ENROL_PART_MAX + 1;
	assert_int_equal(smig_msg_put_enrol_chal(&b, &ch), SMIG_ETOOBIG);
	smig_buf_clear(&b);
}

/* RESERVE and RESERVED round-trip; a bad name, no time, a flag not 0/1, unprintable text fail. */
static void test_reserve_messages(void **state)
{
	struct smig_reserve r = { .vm = "db1", .memory_mib = 4096, .vcpus = 4, .ttl_s = 600 }, g;
	struct smig_reserved a = { .held = true }, ga;
	struct smig_buf b;
	struct smig_frame f;

	(void)state;
	smig_buf_init(&b, 4096);
	assert_int_equal(smig_msg_put_reserve(&b, &r), 0);
	assert_int_equal(smig_frame_next(&b, &f), 0);
	assert_int_equal(smig_msg_get_reserve(&f, &g), 0);
	assert_string_equal(g.vm, "db1");
	assert_true(g.memory_mib == 4096 && g.vcpus == 4 && g.ttl_s == 600 && !g.release);
	assert_int_equal(smig_msg_get_reserved(&f, &ga), SMIG_EPROTO);
	smig_buf_reset(&b);
	assert_int_equal(smig_msg_put_reserved(&b, &a), 0);
	assert_int_equal(smig_frame_next(&b, &f), 0);
	assert_int_equal(smig_msg_get_reserved(&f, &ga), 0);
	assert_true(ga.held && ga.reason[0] == '\0');
	/* each field the receiver must refuse */
	{
		struct smig_reserve bad[] = {
			{ .vm = "../x", .memory_mib = 1, .vcpus = 1, .ttl_s = 1 },
			{ .vm = "a", .memory_mib = 1, .vcpus = 1, .ttl_s = 0 },
			{ .vm = "a", .memory_mib = 1, .vcpus = 0, .ttl_s = 1 },
			{ .vm = "a", .memory_mib = 1, .vcpus = 1, .ttl_s = SMIG_RESERVE_TTL_MAX + 1 },
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			smig_buf_reset(&b);
			assert_int_equal(smig_msg_put_reserve(&b, &bad[i]), 0);
			assert_int_equal(smig_frame_next(&b, &f), 0);
			assert_int_equal(smig_msg_get_reserve(&f, &g), SMIG_EPROTO);
		}
	}
	smig_buf_reset(&b);
	snprintf(a.reason, sizeof(a.reason), "bell\a");
	assert_int_equal(smig_msg_put_reserved(&b, &a), 0);
	assert_int_equal(smig_frame_next(&b, &f), 0);
	assert_int_equal(smig_msg_get_reserved(&f, &ga), SMIG_EPROTO);
	smig_buf_clear(&b);
}

static void test_every_unknown_type_fails(void **state)
{
	(void)state;
	for (int t = 0; t < 256; t++) {
		uint8_t hdr[8] = { SMIG_PROTO_VERSION, (uint8_t)t, 0, 0, 0, 0, 0, 0 };
		uint8_t type;
		uint32_t len;
		int known = memchr(known_types, t, sizeof(known_types)) != NULL;
		int rc = smig_frame_header(hdr, sizeof(hdr), &type, &len);
		assert_int_equal(rc, known ? 0 : SMIG_ETYPE);
		if (!known)
			assert_string_equal(smig_frame_type_name((uint8_t)t), "UNKNOWN");
	}
}

static void test_bad_version_and_reserved(void **state)
{
	uint8_t hdr[8] = { SMIG_PROTO_VERSION + 1, SMIG_MSG_BYE, 0, 0, 0, 0, 0, 0 };
	uint8_t type;
	uint32_t len;

	(void)state;
	assert_int_equal(smig_frame_header(hdr, 8, &type, &len), SMIG_EVERSION);
	/* version 1 carried the source's 64-bit migration ids: refused, not misread */
	hdr[0] = 1;
	assert_int_equal(smig_frame_header(hdr, 8, &type, &len), SMIG_EVERSION);
	hdr[0] = 0;
	assert_int_equal(smig_frame_header(hdr, 8, &type, &len), SMIG_EVERSION);
	hdr[0] = SMIG_PROTO_VERSION;
	hdr[3] = 1;
	assert_int_equal(smig_frame_header(hdr, 8, &type, &len), SMIG_EPROTO);
}

static void test_trailing_bytes_fail(void **state)
{
	struct smig_buf b;
	struct smig_frame f;
	uint8_t extra[64];
	struct smig_ping p = { 1, 2 };

	(void)state;
	smig_buf_init(&b, 256);
	assert_int_equal(smig_msg_put_ping(&b, SMIG_MSG_PING, &p), 0);
	memcpy(extra, b.data, b.len);
	extra[b.len] = 0;
	assert_int_equal(smig_frame_parse(extra, b.len + 1, &f), SMIG_ETRAILING);
	smig_buf_clear(&b);

	/* a payload longer than its fields: header length 17 on a PING (max 16) */
	{
		uint8_t hdr[8 + 17] = { SMIG_PROTO_VERSION, SMIG_MSG_PING, 0, 0, 0, 0, 0, 17 };
		uint8_t type;
		uint32_t len;
		assert_int_equal(smig_frame_header(hdr, sizeof(hdr), &type, &len), SMIG_ETOOBIG);
	}
	/* a HELLO with one byte after its fields */
	{
		struct smig_hello h = { .host = "h1", .version = "v" };
		smig_buf_init(&b, 256);
		assert_int_equal(smig_msg_put_hello(&b, &h), 0);
		f.type = SMIG_MSG_HELLO;
		f.payload = b.data + SMIG_FRAME_HDR_LEN;
		assert_int_equal(smig_buf_put_u8(&b, 0), 0);
		f.len = (uint32_t)(b.len - SMIG_FRAME_HDR_LEN);
		assert_int_equal(smig_msg_get_hello(&f, &h), SMIG_ETRAILING);
		smig_buf_clear(&b);
	}
}

static void test_stream_byte_by_byte(void **state)
{
	struct smig_buf all;
	struct smig_buf rx;
	struct smig_frame f;
	size_t frames = 0;

	(void)state;
	smig_buf_init(&all, 4096);
	smig_buf_init(&rx, 4096);
	encode_all(&all);
	for (size_t i = 0; i < all.len; i++) {
		int rc;
		assert_int_equal(smig_buf_put_u8(&rx, all.data[i]), 0);
		while ((rc = smig_frame_next(&rx, &f)) == 0)
			frames++;
		assert_int_equal(rc, SMIG_EAGAIN);
	}
	assert_int_equal(frames, sizeof(known_types));
	smig_buf_clear(&all);
	smig_buf_clear(&rx);
}

static void test_encoder_refuses_oversize(void **state)
{
	struct smig_buf b;
	uint8_t big[300] = { 0 };
	size_t mark;

	(void)state;
	smig_buf_init(&b, 4096);
	assert_int_equal(smig_frame_put(&b, SMIG_MSG_HELLO, big, sizeof(big)), SMIG_ETOOBIG);
	assert_int_equal(b.len, 0);
	assert_int_equal(smig_frame_put(&b, SMIG_MSG_BYE, big, 1), SMIG_ETOOBIG);
	assert_int_equal(smig_frame_begin(&b, 0x7f, &mark), SMIG_ETYPE);
	smig_buf_clear(&b);
}

static void test_hello_checks_names(void **state)
{
	struct smig_buf b;
	struct smig_hello h = { .host = "bad name", .version = "1" };
	const uint8_t evil[] = { SMIG_PROTO_VERSION, SMIG_MSG_HELLO, 0, 0, 0, 0, 0, 10,
				 0, 2, '.', '.', 0, 0, 0, 0, 0, 0 };
	struct smig_frame f;

	(void)state;
	smig_buf_init(&b, 256);
	assert_int_equal(smig_msg_put_hello(&b, &h), SMIG_EINVAL);
	assert_int_equal(smig_frame_parse(evil, sizeof(evil), &f), 0);
	assert_int_equal(smig_msg_get_hello(&f, &h), SMIG_EPROTO);
	assert_true(smig_name_valid("web-1.prod_a"));
	assert_false(smig_name_valid(""));
	assert_false(smig_name_valid("-x"));
	assert_false(smig_name_valid("a/b"));
	smig_buf_clear(&b);
}

static void test_wrong_type_decoders_refuse(void **state)
{
	struct smig_buf b;
	struct smig_frame f;
	struct smig_hello h;
	struct smig_ping p = { 1, 2 };

	(void)state;
	smig_buf_init(&b, 256);
	assert_int_equal(smig_msg_put_ping(&b, SMIG_MSG_PING, &p), 0);
	assert_int_equal(smig_frame_parse(b.data, b.len, &f), 0);
	assert_int_equal(smig_msg_get_hello(&f, &h), SMIG_EPROTO);
	assert_int_equal(smig_msg_get_ping(&f, SMIG_MSG_PONG, &p), SMIG_EPROTO);
	assert_int_equal(smig_msg_get_bye(&f), SMIG_EPROTO);
	smig_buf_clear(&b);
}

/* A frame built in place while the buffer compacts under it stays intact. */
/*
 * CHANNEL carries id, index and MAC, CHANNEL_OK id and index; an index of
 * SMIG_CHAN_MAX or more, the zero id or a missing MAC fail; PREPARE's
 * channels round-trip, and 1 (a channel beside the main stream is 2 or
 * more) or above SMIG_CHAN_MAX fail.
 */
static void test_channels(void **state)
{
	struct smig_mig_channel in = { .id = id9, .index = SMIG_CHAN_MAX - 1 }, out;
	struct smig_mig_prepare mp = { .spec = "{}", .spec_len = 2, .channels = 4 }, mo;
	uint8_t bad[SMIG_MIG_ID_LEN + 1 + SMIG_CHAN_MAC_LEN];
	struct smig_buf b;
	struct smig_frame f;

	(void)state;
	memset(in.mac, 0x31, sizeof(in.mac));
	smig_buf_init(&b, 4096);
	assert_int_equal(smig_msg_put_mig_channel(&b, SMIG_MSG_MIG_CHANNEL, &in), 0);
	assert_int_equal(smig_frame_next(&b, &f), 0);
	assert_int_equal(smig_msg_get_mig_channel(&f, SMIG_MSG_MIG_CHANNEL, &out), 0);
	assert_true(smig_mig_id_eq(&out.id, &id9));
	assert_int_equal(out.index, SMIG_CHAN_MAX - 1);
	assert_memory_equal(out.mac, in.mac, sizeof(in.mac));
	assert_int_equal(smig_msg_get_mig_channel(&f, SMIG_MSG_MIG_CHANNEL_OK, &out), SMIG_EPROTO);
	assert_int_equal(smig_msg_put_mig_channel(&b, SMIG_MSG_MIG_CHANNEL_OK, &in), 0);
	assert_int_equal(smig_frame_next(&b, &f), 0);
	assert_int_equal(f.len, SMIG_MIG_ID_LEN + 1);
	assert_int_equal(smig_msg_get_mig_channel(&f, SMIG_MSG_MIG_CHANNEL_OK, &out), 0);
	in.index = SMIG_CHAN_MAX;
	assert_int_equal(smig_msg_put_mig_channel(&b, SMIG_MSG_MIG_CHANNEL, &in), SMIG_EINVAL);
	assert_int_equal(smig_msg_put_mig_channel(&b, SMIG_MSG_MIG_PREPARED, &in), SMIG_EINVAL);
	/* by hand: index 16, then the zero id, then no MAC */
	memcpy(bad, id9.b, SMIG_MIG_ID_LEN);
	bad[SMIG_MIG_ID_LEN] = SMIG_CHAN_MAX;
	memset(bad + SMIG_MIG_ID_LEN + 1, 0, SMIG_CHAN_MAC_LEN);
	assert_int_equal(smig_frame_put(&b, SMIG_MSG_MIG_CHANNEL, bad, sizeof(bad)), 0);
	assert_int_equal(smig_frame_next(&b, &f), 0);
	assert_int_equal(smig_msg_get_mig_channel(&f, SMIG_MSG_MIG_CHANNEL, &out), SMIG_EPROTO);
	memset(bad, 0, SMIG_MIG_ID_LEN + 1);
	assert_int_equal(smig_frame_put(&b, SMIG_MSG_MIG_CHANNEL, bad, sizeof(bad)), 0);
	assert_int_equal(smig_frame_next(&b, &f), 0);
	assert_int_equal(smig_msg_get_mig_channel(&f, SMIG_MSG_MIG_CHANNEL, &out), SMIG_EPROTO);
	memcpy(bad, id9.b, SMIG_MIG_ID_LEN);
	assert_int_equal(smig_frame_put(&b, SMIG_MSG_MIG_CHANNEL, bad, SMIG_MIG_ID_LEN + 1), 0);
	assert_int_equal(smig_frame_next(&b, &f), 0);
	assert_true(smig_msg_get_mig_channel(&f, SMIG_MSG_MIG_CHANNEL, &out) < 0);
	/* PREPARE */
	assert_int_equal(smig_msg_put_mig_prepare(&b, &mp), 0);
	assert_int_equal(smig_frame_next(&b, &f), 0);
	assert_int_equal(smig_msg_get_mig_prepare(&f, &mo), 0);
	assert_int_equal(mo.channels, 4);
	mp.channels = SMIG_CHAN_MAX + 1;
	assert_int_equal(smig_msg_put_mig_prepare(&b, &mp), SMIG_EINVAL);
	mp.channels = 1;
	assert_int_equal(smig_msg_put_mig_prepare(&b, &mp), 0);
	assert_int_equal(smig_frame_next(&b, &f), 0);
	assert_int_equal(smig_msg_get_mig_prepare(&f, &mo), SMIG_EPROTO);
	smig_buf_clear(&b);
}

/* PREPARE carries the firmware build of a UEFI VM, and only then. */
static void test_prepare_firmware(void **state)
{
	struct smig_mig_prepare in = { .spec = "{}", .spec_len = 2, .has_fw = 1,
				       .fw_size = 2097152, .agent_answered = 1 }, out;
	struct smig_buf b;
	struct smig_frame f;

	(void)state;
	memset(in.fw_sha256, 0x5a, sizeof(in.fw_sha256));
	smig_buf_init(&b, 1024);
	assert_int_equal(smig_msg_put_mig_prepare(&b, &in), 0);
	in.has_fw = 0;
	in.agent_answered = 0;
	assert_int_equal(smig_msg_put_mig_prepare(&b, &in), 0);
	assert_int_equal(smig_frame_next(&b, &f), 0);
	assert_int_equal(smig_msg_get_mig_prepare(&f, &out), 0);
	assert_int_equal(out.has_fw, 1);
	assert_int_equal(out.fw_size, 2097152);
	assert_memory_equal(out.fw_sha256, in.fw_sha256, sizeof(in.fw_sha256));
	assert_int_equal(out.has_key, 0);
	assert_int_equal(out.agent_answered, 1);
	assert_int_equal(smig_frame_next(&b, &f), 0);
	assert_int_equal(smig_msg_get_mig_prepare(&f, &out), 0);
	assert_int_equal(out.has_fw, 0);
	assert_int_equal(out.agent_answered, 0);
	smig_buf_clear(&b);
}

/* SETTLED: the three fates a watched guest can have, and nothing else. */
static void test_settled_fates(void **state)
{
	struct smig_mig_settled in = { .id = id9, .fate = SMIG_GUEST_UNRESPONSIVE,
				       .detail = "agent silent" }, out;
	struct smig_buf b;
	struct smig_frame f;
	uint8_t *fate;

	(void)state;
	smig_buf_init(&b, 1024);
	assert_int_equal(smig_msg_put_mig_settled(&b, &in), 0);
	assert_int_equal(smig_frame_next(&b, &f), 0);
	assert_int_equal(smig_msg_get_mig_settled(&f, &out), 0);
	assert_int_equal(out.fate, SMIG_GUEST_UNRESPONSIVE);
	assert_string_equal(out.detail, "agent silent");
	fate = (uint8_t *)(uintptr_t)f.payload + SMIG_MIG_ID_LEN; // NOLINT(performance-no-int-to-ptr)
	*fate = 3;
	assert_int_equal(smig_msg_get_mig_settled(&f, &out), SMIG_EPROTO);
	in.fate = 3;
	assert_int_equal(smig_msg_put_mig_settled(&b, &in), SMIG_EINVAL);
	smig_buf_clear(&b);
}

/* Migration ids: 128 random bits, never all zero, 32 hex digits and back. */
static void test_mig_ids(void **state)
{
	struct smig_mig_id a, b, c;
	char s[SMIG_MIG_ID_STR_LEN];

	(void)state;
	assert_int_equal(smig_mig_id_new(&a), 0);
	assert_int_equal(smig_mig_id_new(&b), 0);
	assert_false(smig_mig_id_zero(&a));
	assert_false(smig_mig_id_eq(&a, &b));
	smig_mig_id_format(&a, s);
	assert_int_equal(strlen(s), 32);
	assert_int_equal(smig_mig_id_parse(s, &c), 0);
	assert_true(smig_mig_id_eq(&a, &c));
	assert_int_equal(smig_mig_id_parse("00000000000000000000000000000000", &c), SMIG_EINVAL);
	assert_int_equal(smig_mig_id_parse("0123456789abcdef", &c), SMIG_EINVAL);
	assert_int_equal(smig_mig_id_parse("0123456789ABCDEF0123456789abcdef", &c), SMIG_EINVAL);
	assert_int_equal(smig_mig_id_parse("0123456789abcdef0123456789abcdef0", &c), SMIG_EINVAL);
	assert_int_equal(smig_mig_id_parse("0123456789abcdef0123456789abcdef", &c), 0);
}

/* OUTCOME: the four answers to a QUERY, and nothing else. */
static void test_outcomes(void **state)
{
	struct smig_buf b;
	struct smig_frame f;
	struct smig_mig_id id = { { 0 } };
	uint8_t outcome = 9;

	(void)state;
	smig_buf_init(&b, 256);
	assert_int_equal(smig_msg_put_mig_outcome(&b, &id9, SMIG_OUTCOME_PENDING), 0);
	assert_int_equal(smig_msg_put_mig_outcome(&b, &id9, SMIG_OUTCOME_PENDING + 1), SMIG_EINVAL);
	assert_int_equal(smig_frame_next(&b, &f), 0);
	assert_int_equal(smig_msg_get_mig_outcome(&f, &id, &outcome), 0);
	assert_true(smig_mig_id_eq(&id, &id9) && outcome == SMIG_OUTCOME_PENDING);
	((uint8_t *)(uintptr_t)f.payload)[SMIG_MIG_ID_LEN] = 4; // NOLINT(performance-no-int-to-ptr)
	assert_int_equal(smig_msg_get_mig_outcome(&f, &id, &outcome), SMIG_EPROTO);
	smig_buf_clear(&b);
}

static void test_frame_survives_compaction(void **state)
{
	struct smig_buf b;
	struct smig_frame f;
	uint8_t *dst;
	size_t mark;
	uint8_t junk[3000];

	(void)state;
	memset(junk, 0x5a, sizeof(junk));
	smig_buf_init(&b, 4096);
	assert_int_equal(smig_buf_put_bytes(&b, junk, sizeof(junk)), 0);
	assert_int_equal(smig_buf_consume(&b, 2900), 0); /* 100 unread bytes at offset 2900 */
	assert_int_equal(smig_frame_begin(&b, SMIG_MSG_MIG_DATA, &mark), 0);
	/* needs 3000 more: only fits after compaction, which moves everything */
	assert_int_equal(smig_buf_reserve(&b, 3000, &dst), 0);
	assert_int_equal(b.off, 0);
	memset(dst, 0xc3, 3000);
	smig_buf_commit(&b, 3000);
	assert_int_equal(smig_frame_end(&b, mark), 0);
	assert_int_equal(smig_buf_consume(&b, 100), 0);
	assert_int_equal(smig_frame_next(&b, &f), 0);
	assert_int_equal(f.type, SMIG_MSG_MIG_DATA);
	assert_int_equal(f.len, 3000);
	assert_int_equal(f.payload[0], 0xc3);
	assert_int_equal(f.payload[2999], 0xc3);
	smig_buf_clear(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_every_type),
		cmocka_unit_test(test_every_truncation_fails),
		cmocka_unit_test(test_truncated_payloads_fail),
		cmocka_unit_test(test_every_oversize_length_fails),
		cmocka_unit_test(test_every_unknown_type_fails),
		cmocka_unit_test(test_enrol_messages),
		cmocka_unit_test(test_reserve_messages),
		cmocka_unit_test(test_bad_version_and_reserved),
		cmocka_unit_test(test_trailing_bytes_fail),
		cmocka_unit_test(test_stream_byte_by_byte),
		cmocka_unit_test(test_encoder_refuses_oversize),
		cmocka_unit_test(test_hello_checks_names),
		cmocka_unit_test(test_wrong_type_decoders_refuse),
		cmocka_unit_test(test_frame_survives_compaction),
		cmocka_unit_test(test_prepare_firmware),
		cmocka_unit_test(test_channels),
		cmocka_unit_test(test_settled_fates),
		cmocka_unit_test(test_outcomes),
		cmocka_unit_test(test_mig_ids),
	};
	return cmocka_run_group_tests_name("frame", tests, NULL, NULL);
}
