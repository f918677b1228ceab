/*
 * eventlog.c - the crypto-agile TCG event log (see eventlog.h): a strict
 * parser over the bounds-checked buffer, the replay of the sha256 bank,
 * and a builder for tests.
 *
 * Strict because the log is the host's word: every length is checked
 * against what remains, every digest must be of an algorithm the Spec ID
 * event declared and of the size it declared, and an event's SHA-256
 * digest is what gets extended, so an event without one is refused rather
 * than skipped.
 */
#include "eventlog.h"
#include "buf.h"
#include "error.h"
#include "le.h"
#include "sign.h"

#include <openssl/sha.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALG_SHA256 0x000B
#define ALGS_MAX 16 /* a Spec ID event declaring more is not a real one */
#define DIGEST_MAX 64

/* Both signatures are 15 characters and their NUL, 16 bytes in the log. */
static const char spec_id_sig[16] = "Spec ID Event03";
static const char locality_sig[16] = "StartupLocality";

struct alg {
	uint16_t id;
	uint16_t size;
};

struct parse {
	struct smig_buf b;
	struct alg alg[ALGS_MAX];
	uint32_t nalg;
	size_t index; /* of the event being read; the Spec ID event is 0 */
	size_t start; /* its offset */
	bool pcr0_extended;
	bool has_locality;
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 3, 4)))
static int bad(struct parse *p, int code, const char *fmt, ...)
{
	char msg[192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(p->err, p->errlen, "event log: event %zu at byte %zu: %s", p->index, p->start,
		 msg);
	return code;
}

/* rc of a get from the log itself: running out of bytes is truncation. */
static int need(struct parse *p, int rc, const char *what)
{
	return rc < 0 ? bad(p, SMIG_ESHORT, "the log ends inside %s", what) : 0;
}

/* rc of a get from the Spec ID event's data: that event is malformed. */
static int need_spec(struct parse *p, int rc, const char *what)
{
	return rc < 0 ? bad(p, SMIG_EPROTO, "the Spec ID event's data ends inside %s", what) : 0;
}

/* The digest size of the TPM algorithms a PC client may use; 0 if another. */
static unsigned known_size(uint16_t id)
{
	static const struct alg known[] = {
		{ 0x0004, 20 }, /* SHA-1 */
		{ 0x000B, 32 }, /* SHA-256 */
		{ 0x000C, 48 }, /* SHA-384 */
		{ 0x000D, 64 }, /* SHA-512 */
		{ 0x0012, 32 }, /* SM3-256 */
		{ 0x0027, 32 }, /* SHA3-256 */
		{ 0x0028, 48 }, /* SHA3-384 */
		{ 0x0029, 64 }, /* SHA3-512 */
	};

	for (size_t i = 0; i < ARRAY_LEN(known); i++)
		if (known[i].id == id)
			return known[i].size;
	return 0;
}

/* The {algorithmId, digestSize} list of the Spec ID event, from d. */
static int spec_algs(struct parse *p, struct smig_buf *d)
{
	bool sha256 = false;

	SMIG_GUARD(need_spec(p, smig_buf_get_le32(d, &p->nalg), "numberOfAlgorithms"));
	if (p->nalg == 0 || p->nalg > ALGS_MAX)
		return bad(p, SMIG_EPROTO, "the Spec ID event declares %u digest algorithms (1 to %d)",
			   p->nalg, ALGS_MAX);
	for (uint32_t i = 0; i < p->nalg; i++) {
		struct alg *a = &p->alg[i];
		unsigned want;

		SMIG_GUARD(need_spec(p, smig_buf_get_le16(d, &a->id), "its digest sizes"));
		SMIG_GUARD(need_spec(p, smig_buf_get_le16(d, &a->size), "its digest sizes"));
		want = known_size(a->id);
		if (a->size == 0 || a->size > DIGEST_MAX || (want && a->size != want))
			return bad(p, SMIG_EPROTO, "the Spec ID event gives algorithm 0x%04x %u-byte digests",
				   a->id, a->size);
		for (uint32_t k = 0; k < i; k++)
			if (p->alg[k].id == a->id)
				return bad(p, SMIG_EPROTO,
					   "the Spec ID event declares algorithm 0x%04x twice", a->id);
		sha256 |= a->id == ALG_SHA256;
	}
	if (!sha256)
		return bad(p, SMIG_EPROTO, "the Spec ID event declares no SHA-256 digests (smig "
			   "replays the sha256 bank)");
	return 0;
}

/*
 * Event 0: a TCG_PCR_EVENT (SHA-1 layout) in PCR 0, of type EV_NO_ACTION,
 * whose data is the Spec ID event. Its digest (zeros by the spec) is never
 * extended, so it is not looked at.
 */
static int spec_id(struct parse *p)
{
	uint32_t pcr = 0, type = 0, size = 0;
	const uint8_t *data = NULL, *sig = NULL;
	uint8_t ver[4] = { 0 }; /* specVersionMinor, specVersionMajor, specErrata, uintnSize */
	uint8_t nvendor = 0;
	struct smig_buf d;

	SMIG_GUARD(need(p, smig_buf_get_le32(&p->b, &pcr), "its PCR index"));
	SMIG_GUARD(need(p, smig_buf_get_le32(&p->b, &type), "its event type"));
	SMIG_GUARD(need(p, smig_buf_consume(&p->b, 20), "its SHA-1 digest"));
	SMIG_GUARD(need(p, smig_buf_get_le32(&p->b, &size), "its data size"));
	if (pcr != 0 || type != SMIG_EV_NO_ACTION)
		return bad(p, SMIG_EPROTO, "the first event must be the Spec ID event (EV_NO_ACTION "
			   "in PCR 0), not type %u in PCR %u", type, pcr);
	SMIG_GUARD(need(p, smig_buf_get_ptr(&p->b, &data, size), "its data"));
	smig_buf_view(&d, data, size);
	SMIG_GUARD(need_spec(p, smig_buf_get_ptr(&d, &sig, sizeof(spec_id_sig)), "its signature"));
	if (memcmp(sig, spec_id_sig, sizeof(spec_id_sig)) != 0)
		return bad(p, SMIG_EPROTO, "no \"Spec ID Event03\" signature: not a crypto-agile "
			   "(TPM 2.0) log");
	SMIG_GUARD(need_spec(p, smig_buf_consume(&d, 4), "platformClass"));
	SMIG_GUARD(need_spec(p, smig_buf_get_bytes(&d, ver, sizeof(ver)), "its versions"));
	if (ver[1] != 2 || (ver[3] != 1 && ver[3] != 2))
		return bad(p, SMIG_EPROTO, "the Spec ID event says version %u.%u with uintnSize %u "
			   "(2.x, 1 or 2)", ver[1], ver[0], ver[3]);
	SMIG_GUARD(spec_algs(p, &d));
	SMIG_GUARD(need_spec(p, smig_buf_get_u8(&d, &nvendor), "vendorInfoSize"));
	SMIG_GUARD(need_spec(p, smig_buf_consume(&d, nvendor), "vendorInfo"));
	if (smig_buf_expect_end(&d) < 0)
		return bad(p, SMIG_EPROTO, "%zu bytes after the Spec ID event's vendorInfo",
			   smig_buf_remaining(&d));
	return 0;
}

/*
 * The startup locality, from an EV_NO_ACTION event in PCR 0 whose data is
 * "StartupLocality\0" and one byte. It sets PCR 0's value before the first
 * extend, so it may come once and only before anything extends PCR 0.
 */
static int startup_locality(struct parse *p, const struct smig_evlog_event *ev,
			    const uint8_t *data, uint32_t size, struct smig_evlog *out)
{
	if (ev->type != SMIG_EV_NO_ACTION || ev->pcr != 0 || size < sizeof(locality_sig) ||
	    memcmp(data, locality_sig, sizeof(locality_sig)) != 0) {
		p->pcr0_extended |= ev->pcr == 0 && ev->type != SMIG_EV_NO_ACTION;
		return 0;
	}
	if (size != sizeof(locality_sig) + 1)
		return bad(p, SMIG_EPROTO, "a StartupLocality event of %u bytes (17)", size);
	if (p->has_locality)
		return bad(p, SMIG_EPROTO, "a second StartupLocality event");
	if (p->pcr0_extended)
		return bad(p, SMIG_EPROTO, "a StartupLocality event after PCR 0 was extended");
	if (data[sizeof(locality_sig)] > 4)
		return bad(p, SMIG_EPROTO, "startup locality %u (0 to 4)", data[sizeof(locality_sig)]);
	out->locality = data[sizeof(locality_sig)];
	p->has_locality = true;
	return 0;
}

/* The digests of one event: each of a declared algorithm, at most once. */
static int event_digests(struct parse *p, struct smig_evlog_event *ev)
{
	uint32_t count = 0, seen = 0;
	bool sha256 = false;

	SMIG_GUARD(need(p, smig_buf_get_le32(&p->b, &count), "its digest count"));
	if (count == 0 || count > p->nalg)
		return bad(p, SMIG_EPROTO, "%u digests; the Spec ID event declares %u algorithms",
			   count, p->nalg);
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *digest = NULL;
		uint16_t id = 0;
		uint32_t a = 0;

		SMIG_GUARD(need(p, smig_buf_get_le16(&p->b, &id), "its digests"));
		while (a < p->nalg && p->alg[a].id != id)
			a++;
		if (a == p->nalg)
			return bad(p, SMIG_EPROTO, "a digest of algorithm 0x%04x, which the Spec ID "
				   "event does not declare", id);
		if (seen & (1u << a))
			return bad(p, SMIG_EPROTO, "two digests of algorithm 0x%04x", id);
		seen |= 1u << a;
		SMIG_GUARD(need(p, smig_buf_get_ptr(&p->b, &digest, p->alg[a].size), "its digests"));
		if (id == ALG_SHA256) {
			memcpy(ev->sha256, digest, sizeof(ev->sha256));
			sha256 = true;
		}
	}
	if (!sha256)
		return bad(p, SMIG_EPROTO, "no SHA-256 digest");
	return 0;
}

/* One TCG_PCR_EVENT2 into ev. */
static int event2(struct parse *p, struct smig_evlog_event *ev, struct smig_evlog *out)
{
	uint32_t size = 0;
	const uint8_t *data = NULL;

	memset(ev, 0, sizeof(*ev));
	ev->offset = p->start;
	SMIG_GUARD(need(p, smig_buf_get_le32(&p->b, &ev->pcr), "its PCR index"));
	SMIG_GUARD(need(p, smig_buf_get_le32(&p->b, &ev->type), "its event type"));
	if (ev->pcr >= SMIG_EVLOG_PCRS)
		return bad(p, SMIG_EPROTO, "PCR index %u (0 to 23)", ev->pcr);
	SMIG_GUARD(event_digests(p, ev));
	SMIG_GUARD(need(p, smig_buf_get_le32(&p->b, &size), "its data size"));
	if (size > smig_buf_remaining(&p->b))
		return bad(p, SMIG_ESHORT, "its data size is %u, the log has %zu bytes left", size,
			   smig_buf_remaining(&p->b));
	SMIG_GUARD(need(p, smig_buf_get_ptr(&p->b, &data, size), "its data"));
	return startup_locality(p, ev, data, size, out);
}

/* Room for one more event in out; cap is its allocated count. */
static int grow(struct parse *p, struct smig_evlog *out, size_t *cap)
{
	struct smig_evlog_event *nv;
	size_t ncap;

	if (out->n == SMIG_EVLOG_EVENTS_MAX)
		return bad(p, SMIG_ETOOBIG, "more than %d events", SMIG_EVLOG_EVENTS_MAX);
	if (out->n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 64;
	if (ncap > SMIG_EVLOG_EVENTS_MAX)
		ncap = SMIG_EVLOG_EVENTS_MAX;
	nv = realloc(out->ev, ncap * sizeof(*nv));
	if (nv == NULL)
		return bad(p, SMIG_ENOMEM, "out of memory");
	out->ev = nv;
	*cap = ncap;
	return 0;
}

int smig_evlog_parse(const uint8_t *buf, size_t len, struct smig_evlog *out, char *err,
		     size_t errlen)
{
	struct parse p;
	size_t cap = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&p, 0, sizeof(p));
	p.err = err;
	p.errlen = errlen;
	if (len > SMIG_EVLOG_MAX) {
		snprintf(err, errlen, "event log: %zu bytes, more than %zu", len, SMIG_EVLOG_MAX);
		return SMIG_ETOOBIG;
	}
	smig_buf_view(&p.b, buf, len);
	rc = spec_id(&p);
	while (rc == 0 && smig_buf_remaining(&p.b) > 0) {
		p.index++;
		p.start = p.b.off;
		rc = grow(&p, out, &cap);
		if (rc == 0)
			rc = event2(&p, &out->ev[out->n], out);
		if (rc == 0)
			out->n++;
	}
	if (rc < 0)
		smig_evlog_free(out);
	return rc;
}

void smig_evlog_free(struct smig_evlog *l)
{
	free(l->ev);
	memset(l, 0, sizeof(*l));
}

void smig_pcr_extend(uint8_t pcr[32], const uint8_t digest[32])
{
	uint8_t both[64];

	memcpy(both, pcr, 32);
	memcpy(both + 32, digest, 32);
	SHA256(both, sizeof(both), pcr);
}

void smig_evlog_replay(const struct smig_evlog *l, uint8_t pcr[SMIG_EVLOG_PCRS][32],
		       uint32_t *touched)
{
	uint32_t t = 0;

	for (unsigned i = 0; i < SMIG_EVLOG_PCRS; i++)
		memset(pcr[i], i >= 17 && i <= 22 ? 0xff : 0, 32);
	pcr[0][31] = l->locality;
	for (size_t i = 0; i < l->n; i++) {
		const struct smig_evlog_event *ev = &l->ev[i];

		/* the parser refuses other PCRs; a caller's own array may not */
		if (ev->type == SMIG_EV_NO_ACTION || ev->pcr >= SMIG_EVLOG_PCRS)
			continue;
		smig_pcr_extend(pcr[ev->pcr], ev->sha256);
		t |= 1u << ev->pcr;
	}
	if (touched)
		*touched = t;
}

int smig_evlog_check(const struct smig_evlog *l, const unsigned *idx, const uint8_t (*val)[32],
		     size_t n, char *why, size_t whylen)
{
	uint8_t pcr[SMIG_EVLOG_PCRS][32];
	char got[65], want[65];
	uint32_t touched;

	smig_evlog_replay(l, pcr, &touched);
	for (size_t i = 0; i < n; i++) {
		if (idx[i] >= SMIG_EVLOG_PCRS) {
			snprintf(why, whylen, "PCR %u does not exist (0 to 23)", idx[i]);
			return SMIG_EINVAL;
		}
		if (memcmp(pcr[idx[i]], val[i], 32) == 0)
			continue;
		smig_hex(pcr[idx[i]], 32, got);
		smig_hex(val[i], 32, want);
		snprintf(why, whylen, "PCR %u: the event log leads to %s%s, the TPM quoted %s",
			 idx[i], got, touched & (1u << idx[i]) ? "" : " (no event extends it)",
			 want);
		return SMIG_EAUTH;
	}
	return 0;
}

/* Event 0: the Spec ID event declaring SHA-256 alone, with 8-byte UINTN. */
static int put_spec_id(struct smig_buf *b)
{
	static const uint8_t zero[20];
	static const uint8_t ver[4] = { 0, 2, 0, 2 };

	SMIG_GUARD(smig_buf_put_le32(b, 0));
	SMIG_GUARD(smig_buf_put_le32(b, SMIG_EV_NO_ACTION));
	SMIG_GUARD(smig_buf_put_bytes(b, zero, sizeof(zero)));
	SMIG_GUARD(smig_buf_put_le32(b, sizeof(spec_id_sig) + 4 + sizeof(ver) + 4 + 4 + 1));
	SMIG_GUARD(smig_buf_put_bytes(b, spec_id_sig, sizeof(spec_id_sig)));
	SMIG_GUARD(smig_buf_put_le32(b, 0)); /* platformClass: client */
	SMIG_GUARD(smig_buf_put_bytes(b, ver, sizeof(ver)));
	SMIG_GUARD(smig_buf_put_le32(b, 1));
	SMIG_GUARD(smig_buf_put_le16(b, ALG_SHA256));
	SMIG_GUARD(smig_buf_put_le16(b, 32));
	return smig_buf_put_u8(b, 0); /* no vendorInfo */
}

static int put_event(struct smig_buf *b, const struct smig_evlog_event *ev)
{
	SMIG_GUARD(smig_buf_put_le32(b, ev->pcr));
	SMIG_GUARD(smig_buf_put_le32(b, ev->type));
	SMIG_GUARD(smig_buf_put_le32(b, 1));
	SMIG_GUARD(smig_buf_put_le16(b, ALG_SHA256));
	SMIG_GUARD(smig_buf_put_bytes(b, ev->sha256, sizeof(ev->sha256)));
	return smig_buf_put_le32(b, 0);
}

int smig_evlog_build(const struct smig_evlog_event *ev, size_t n, uint8_t **out,
		     size_t *outlen)
{
	struct smig_buf b;
	int rc;

	*out = NULL;
	*outlen = 0;
	SMIG_ENSURE(n <= SMIG_EVLOG_EVENTS_MAX, SMIG_ETOOBIG);
	for (size_t i = 0; i < n; i++)
		SMIG_ENSURE(ev[i].pcr < SMIG_EVLOG_PCRS, SMIG_EINVAL);
	smig_buf_init(&b, SMIG_EVLOG_MAX);
	rc = put_spec_id(&b);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = put_event(&b, &ev[i]);
	if (rc < 0) {
		smig_buf_clear(&b);
		return rc;
	}
	*out = b.data; /* the caller owns the buffer's memory from here */
	*outlen = b.len;
	return 0;
}
