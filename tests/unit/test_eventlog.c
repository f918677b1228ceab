/*
 * test_eventlog.c - the measured-boot event log: a log in the real
 * on-disk layout (written out here byte by byte: a Spec ID event with
 * SHA-1 and SHA-256, a startup locality, events with both digests) parses
 * and replays to the values computed here; logs from the builder parse
 * back to their events and replay as an independent SHA-256 chain does;
 * every cut of a log fails cleanly or is a shorter log; a changed digest
 * changes the replay; the check names the PCR that differs; malformed
 * logs are refused naming the event and its offset.
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
#include "eventlog.h"
#include "sign.h"

#define LE16(x) (uint8_t)((x) & 0xff), (uint8_t)(((x) >> 8) & 0xff)
#define LE32(x) LE16((x) & 0xffff), LE16(((x) >> 16) & 0xffff)
#define R4(b) b, b, b, b
#define R20(b) R4(b), R4(b), R4(b), R4(b), R4(b)
#define R32(b) R20(b), R4(b), R4(b), R4(b)
#define EV_SEPARATOR 4u
#define EV_S_CRTM_VERSION 8u

/*
 * A crypto-agile log as firmware writes it: the Spec ID event declares
 * SHA-1 and SHA-256; then a StartupLocality of 3, the CRTM version in
 * PCR 0 and a separator in PCR 7, each with both digests (the separator's
 * in the other order, as the spec allows).
 */
static const uint8_t real_log[] = {
	/* event 0 at byte 0: the Spec ID event in the SHA-1 layout */
	LE32(0), LE32(3), R20(0), LE32(37),
	'S', 'p', 'e', 'c', ' ', 'I', 'D', ' ', 'E', 'v', 'e', 'n', 't', '0', '3', 0,
	LE32(0),       /* platformClass */
	0, 2, 0, 2,    /* spec version 2.0, errata 0, UINTN of 8 bytes */
	LE32(2), LE16(0x0004), LE16(20), LE16(0x000B), LE16(32),
	0,             /* no vendorInfo */
	/* event 1 at byte 69: StartupLocality 3 */
	LE32(0), LE32(3), LE32(2), LE16(0x0004), R20(0), LE16(0x000B), R32(0), LE32(17),
	'S', 't', 'a', 'r', 't', 'u', 'p', 'L', 'o', 'c', 'a', 'l', 'i', 't', 'y', 0, 3,
	/* event 2 at byte 158: EV_S_CRTM_VERSION in PCR 0 */
	LE32(0), LE32(EV_S_CRTM_VERSION), LE32(2), LE16(0x0004), R20(0x11), LE16(0x000B),
	R32(0x22), LE32(4), '1', 0, 0, 0,
	/* event 3 at byte 234: EV_SEPARATOR in PCR 7, its data four zero bytes */
	LE32(7), LE32(EV_SEPARATOR), LE32(2), LE16(0x000B),
	0xdf, 0x3f, 0x61, 0x98, 0x04, 0xa9, 0x2f, 0xdb, 0x40, 0x57, 0x19, 0x2d, 0xc4, 0x3d, 0xd7,
	0x48, 0xea, 0x77, 0x8a, 0xdc, 0x52, 0xbc, 0x49, 0x8c, 0xe8, 0x05, 0x24, 0xc0, 0x14, 0xb8,
	0x11, 0x19, LE16(0x0004),
	0x90, 0x69, 0xca, 0x78, 0xe7, 0x45, 0x0a, 0x28, 0x51, 0x73, 0x43, 0x1b, 0x3e, 0x52, 0xc5,
	0xc2, 0x52, 0x99, 0xe4, 0x73, LE32(4), 0, 0, 0, 0,
};
#define REAL_EV1 69
#define REAL_EV2 158
#define REAL_EV3 234

static void sha256(const uint8_t *p, size_t n, uint8_t out[32])
{
	unsigned len = 0;

	assert_int_equal(EVP_Digest(p, n, out, &len, EVP_sha256(), NULL), 1);
	assert_int_equal(len, 32);
}

/* The test's own extend, through EVP rather than the library's code. */
static void extend(uint8_t pcr[32], const uint8_t digest[32])
{
	uint8_t both[64];

	memcpy(both, pcr, 32);
	memcpy(both + 32, digest, 32);
	sha256(both, sizeof(both), pcr);
}

static void parse_ok(const uint8_t *buf, size_t len, struct smig_evlog *l)
{
	char err[256] = "";

	if (smig_evlog_parse(buf, len, l, err, sizeof(err)) != 0)
		fail_msg("refused: %s", err);
}

static void parse_bad(const uint8_t *buf, size_t len, int code, const char *want)
{
	struct smig_evlog l;
	char err[256] = "";
	int rc = smig_evlog_parse(buf, len, &l, err, sizeof(err));

	if (rc != code || strstr(err, want) == NULL)
		fail_msg("got %d \"%s\", want %d \"%s\"", rc, err, code, want);
	assert_null(l.ev);
	assert_int_equal(l.n, 0);
}

static void test_real_layout(void **state)
{
	struct smig_evlog l;
	uint8_t pcr[SMIG_EVLOG_PCRS][32], want0[32] = { 0 }, want7[32] = { 0 }, sep[32];
	uint8_t crtm[32];
	static const uint8_t zero4[4];
	uint32_t touched;

	(void)state;
	parse_ok(real_log, sizeof(real_log), &l);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.locality, 3);
	assert_int_equal(l.ev[0].type, SMIG_EV_NO_ACTION);
	assert_int_equal(l.ev[0].offset, REAL_EV1);
	assert_int_equal(l.ev[1].type, EV_S_CRTM_VERSION);
	assert_int_equal(l.ev[1].offset, REAL_EV2);
	assert_int_equal(l.ev[2].pcr, 7);
	assert_int_equal(l.ev[2].offset, REAL_EV3);
	memset(crtm, 0x22, sizeof(crtm));
	assert_memory_equal(l.ev[1].sha256, crtm, 32);
	/* the separator's SHA-256 digest is the one of its data: the layout was read right */
	sha256(zero4, sizeof(zero4), sep);
	assert_memory_equal(l.ev[2].sha256, sep, 32);

	smig_evlog_replay(&l, pcr, &touched);
	assert_int_equal(touched, (1u << 0) | (1u << 7));
	want0[31] = 3; /* locality 3 starts PCR 0 at 00..03 */
	extend(want0, crtm);
	extend(want7, sep);
	assert_memory_equal(pcr[0], want0, 32);
	assert_memory_equal(pcr[7], want7, 32);
	for (unsigned i = 1; i < SMIG_EVLOG_PCRS; i++) {
		uint8_t start[32];

		memset(start, i >= 17 && i <= 22 ? 0xff : 0, sizeof(start));
		if (i != 7)
			assert_memory_equal(pcr[i], start, 32);
	}
	smig_evlog_free(&l);
}

/* A copy of the real log with byte off set to v. */
static void real_with(uint8_t *copy, size_t off, uint8_t v)
{
	memcpy(copy, real_log, sizeof(real_log));
	copy[off] = v;
}

static void test_real_layout_refused(void **state)
{
	uint8_t b[sizeof(real_log) + 128];

	(void)state;
	/* event 2's SHA-1 digest made a SHA-384 one: not declared */
	real_with(b, REAL_EV2 + 12, 0x0C);
	parse_bad(b, sizeof(real_log), SMIG_EPROTO,
		  "event 2 at byte 158: a digest of algorithm 0x000c, which the Spec ID event "
		  "does not declare");
	real_with(b, REAL_EV2 + 8, 0);
	parse_bad(b, sizeof(real_log), SMIG_EPROTO, "event 2 at byte 158: 0 digests");
	real_with(b, REAL_EV2 + 8, 3);
	parse_bad(b, sizeof(real_log), SMIG_EPROTO, "event 2 at byte 158: 3 digests");
	real_with(b, REAL_EV3, 24);
	parse_bad(b, sizeof(real_log), SMIG_EPROTO, "event 3 at byte 234: PCR index 24");
	/* event 3's SHA-256 digest relabelled SHA-1: two SHA-1 digests, sizes astray */
	real_with(b, REAL_EV3 + 12, 0x04);
	parse_bad(b, sizeof(real_log), SMIG_EPROTO, "event 3 at byte 234: ");
	/* the separator's data size past the end */
	real_with(b, sizeof(real_log) - 8, 5);
	parse_bad(b, sizeof(real_log), SMIG_ESHORT,
		  "event 3 at byte 234: its data size is 5, the log has 4 bytes left");
	/* the Spec ID event's second algorithm made SHA-384, first with SHA-256's size */
	real_with(b, 64, 0x0C);
	parse_bad(b, sizeof(real_log), SMIG_EPROTO, "event 0 at byte 0: the Spec ID event "
		  "gives algorithm 0x000c 32-byte digests");
	real_with(b, 64, 0x0C);
	b[66] = 48; /* then with its own: SHA-1 and SHA-384, no sha256 bank */
	parse_bad(b, sizeof(real_log), SMIG_EPROTO, "declares no SHA-256 digests");
	real_with(b, 32 + 14, '4'); /* "Spec ID Event04" */
	parse_bad(b, sizeof(real_log), SMIG_EPROTO, "not a crypto-agile");
	real_with(b, 4, 1); /* the first event is not EV_NO_ACTION */
	parse_bad(b, sizeof(real_log), SMIG_EPROTO, "the first event must be the Spec ID event");
	real_with(b, REAL_EV2 - 1, 7); /* locality 7 */
	parse_bad(b, sizeof(real_log), SMIG_EPROTO, "event 1 at byte 69: startup locality 7");
	/* the StartupLocality event twice, or only after PCR 0 was extended */
	memcpy(b, real_log, sizeof(real_log));
	memcpy(b + sizeof(real_log), real_log + REAL_EV1, REAL_EV2 - REAL_EV1);
	parse_bad(b, sizeof(real_log) + REAL_EV2 - REAL_EV1, SMIG_EPROTO,
		  "event 4 at byte 310: a second StartupLocality event");
	memmove(b + REAL_EV1, b + REAL_EV2, sizeof(real_log) - REAL_EV1);
	parse_bad(b, sizeof(real_log), SMIG_EPROTO,
		  "event 3 at byte 221: a StartupLocality event after PCR 0 was extended");
	/* a log with only SHA-1 digests in an event */
	real_with(b, REAL_EV2 + 8, 1);
	memmove(b + REAL_EV2 + 12 + 22, b + REAL_EV2 + 12 + 22 + 34,
		sizeof(real_log) - (REAL_EV2 + 12 + 22 + 34));
	parse_bad(b, sizeof(real_log) - 34, SMIG_EPROTO, "event 2 at byte 158: no SHA-256 digest");
	parse_bad(real_log, 0, SMIG_ESHORT, "event 0 at byte 0: the log ends inside its PCR index");
}

static void test_every_cut(void **state)
{
	struct smig_evlog_event ev[5] = {
		{ .pcr = 0, .type = 8 }, { .pcr = 4, .type = 0x80000003 },
		{ .pcr = 4, .type = SMIG_EV_NO_ACTION }, { .pcr = 7, .type = 4 },
		{ .pcr = 23, .type = 0xd },
	};
	struct smig_evlog l, full;
	uint8_t *buf;
	size_t len, k = 0;
	char err[256];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(ev); i++)
		memset(ev[i].sha256, 0x30 + (int)i, 32);
	assert_int_equal(smig_evlog_build(ev, ARRAY_LEN(ev), &buf, &len), 0);
	parse_ok(buf, len, &full);
	/* each cut: refused, or exactly at an event's start, a log of the events before it */
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *copy = malloc(cut + 1); /* its own block: ASan sees any overread */
		int rc;

		assert_non_null(copy);
		memcpy(copy, buf, cut);
		rc = smig_evlog_parse(copy, cut, &l, err, sizeof(err));
		while (k < full.n && full.ev[k].offset < cut)
			k++;
		if (k < full.n && full.ev[k].offset == cut) {
			assert_int_equal(rc, 0);
			assert_int_equal(l.n, k);
			smig_evlog_free(&l);
		} else {
			assert_int_equal(rc, SMIG_ESHORT);
			assert_non_null(strstr(err, "event log: event "));
		}
		free(copy);
	}
	smig_evlog_free(&full);
	free(buf);
}

static void test_build_replay(void **state)
{
	enum { N = 200 };
	struct smig_evlog_event ev[N];
	uint8_t want[SMIG_EVLOG_PCRS][32], pcr[SMIG_EVLOG_PCRS][32];
	uint32_t want_touched = 0, touched;
	struct smig_evlog l;
	uint8_t *buf;
	size_t len;

	(void)state;
	for (unsigned i = 0; i < SMIG_EVLOG_PCRS; i++)
		memset(want[i], i >= 17 && i <= 22 ? 0xff : 0, 32);
	for (size_t i = 0; i < N; i++) {
		uint8_t seed[8] = { (uint8_t)i, (uint8_t)(i >> 8), 'e', 'v' };

		ev[i].pcr = (uint32_t)((i * 7) % SMIG_EVLOG_PCRS);
		ev[i].type = i % 9 == 0 ? SMIG_EV_NO_ACTION : 0x80000000u + (uint32_t)i;
		sha256(seed, sizeof(seed), ev[i].sha256);
		if (ev[i].type != SMIG_EV_NO_ACTION) {
			extend(want[ev[i].pcr], ev[i].sha256);
			want_touched |= 1u << ev[i].pcr;
		}
	}
	assert_int_equal(smig_evlog_build(ev, N, &buf, &len), 0);
	parse_ok(buf, len, &l);
	assert_int_equal(l.n, N);
	assert_int_equal(l.locality, 0);
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(l.ev[i].pcr, ev[i].pcr);
		assert_int_equal(l.ev[i].type, ev[i].type);
		assert_memory_equal(l.ev[i].sha256, ev[i].sha256, 32);
	}
	smig_evlog_replay(&l, pcr, &touched);
	assert_memory_equal(pcr, want, sizeof(want));
	assert_int_equal(touched, want_touched);
	smig_evlog_free(&l);

	/* one changed byte of one event's SHA-256 digest changes its PCR, and only it */
	parse_ok(buf, len, &l);
	buf[l.ev[5].offset + 4 + 4 + 4 + 2 + 17] ^= 0x01; /* past pcr, type, count, algorithm */
	smig_evlog_free(&l);
	parse_ok(buf, len, &l);
	smig_evlog_replay(&l, pcr, &touched);
	for (unsigned i = 0; i < SMIG_EVLOG_PCRS; i++) {
		if (i == ev[5].pcr)
			assert_memory_not_equal(pcr[i], want[i], 32);
		else
			assert_memory_equal(pcr[i], want[i], 32);
	}
	smig_evlog_free(&l);
	free(buf);
}

static void checked(const struct smig_evlog *l, const unsigned *idx,
			 const uint8_t (*val)[32], size_t n, int code, const char *want)
{
	char why[256] = "";
	int rc = smig_evlog_check(l, idx, val, n, why, sizeof(why));

	if (rc != code || (want && strstr(why, want) == NULL))
		fail_msg("got %d \"%s\", want %d \"%s\"", rc, why, code, want ? want : "");
}

static void test_check(void **state)
{
	struct smig_evlog l;
	uint8_t pcr[SMIG_EVLOG_PCRS][32], val[3][32];
	const unsigned idx[3] = { 0, 7, 16 };
	const unsigned past[1] = { 24 };
	char got[65], want[130];

	(void)state;
	parse_ok(real_log, sizeof(real_log), &l);
	smig_evlog_replay(&l, pcr, NULL);
	for (size_t i = 0; i < 3; i++)
		memcpy(val[i], pcr[idx[i]], 32);
	checked(&l, idx, (const uint8_t(*)[32])val, 3, 0, NULL);
	val[1][31] ^= 0x80;
	smig_hex(pcr[7], 32, got);
	smig_hex(val[1], 32, want);
	checked(&l, idx, (const uint8_t(*)[32])val, 3, SMIG_EAUTH, "PCR 7: the event log leads to ");
	checked(&l, idx, (const uint8_t(*)[32])val, 3, SMIG_EAUTH, got);
	checked(&l, idx, (const uint8_t(*)[32])val, 3, SMIG_EAUTH, want);
	val[1][31] ^= 0x80;
	val[2][0] = 1; /* PCR 16: no event extends it */
	snprintf(want, sizeof(want), "PCR 16: the event log leads to %064d (no event extends it)", 0);
	checked(&l, idx, (const uint8_t(*)[32])val, 3, SMIG_EAUTH, want);
	checked(&l, past, (const uint8_t(*)[32])val, 1, SMIG_EINVAL, "PCR 24 does not exist");
	smig_evlog_free(&l);
}

static void test_limits(void **state)
{
	struct smig_evlog_event *ev = calloc(SMIG_EVLOG_EVENTS_MAX + 1, sizeof(*ev));
	struct smig_evlog l;
	uint8_t *buf, *more;
	size_t len, one;

	(void)state;
	assert_non_null(ev);
	assert_int_equal(smig_evlog_build(ev, SMIG_EVLOG_EVENTS_MAX + 1, &buf, &len),
			 SMIG_ETOOBIG);
	ev[0].pcr = 24;
	assert_int_equal(smig_evlog_build(ev, 1, &buf, &len), SMIG_EINVAL);
	ev[0].pcr = 0;
	assert_int_equal(smig_evlog_build(ev, SMIG_EVLOG_EVENTS_MAX, &buf, &len), 0);
	parse_ok(buf, len, &l);
	assert_int_equal(l.n, SMIG_EVLOG_EVENTS_MAX);
	one = len - l.ev[l.n - 1].offset;
	smig_evlog_free(&l);
	/* one event more than the maximum */
	more = malloc(len + one);
	assert_non_null(more);
	memcpy(more, buf, len);
	memcpy(more + len, buf + len - one, one);
	parse_bad(more, len + one, SMIG_ETOOBIG, "more than 4096 events");
	/* refused for its length before a byte is read */
	parse_bad(more, SMIG_EVLOG_MAX + 1, SMIG_ETOOBIG, "more than 1048576");
	free(more);
	free(buf);
	free(ev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_layout),
		cmocka_unit_test(test_real_layout_refused),
		cmocka_unit_test(test_every_cut),
		cmocka_unit_test(test_build_replay),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
