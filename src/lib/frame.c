/*
 * frame.c - frame headers, per-type limits and strict decoding (frame.h).
 */
#include "frame.h"
#include "error.h"
#include "msg.h"

#include <string.h>

struct frame_type {
	uint8_t type;
	const char *name;
	uint32_t max;
};

#define ID SMIG_MIG_ID_LEN

static const struct frame_type frame_types[] = {
	{ SMIG_MSG_HELLO, "HELLO", 256 },
	{ SMIG_MSG_PING, "PING", 16 },
	{ SMIG_MSG_PONG, "PONG", 16 },
	{ SMIG_MSG_ERROR, "ERROR", 260 },
	{ SMIG_MSG_BYE, "BYE", 0 },
	{ SMIG_MSG_ATTEST_REQ, "ATTEST_REQ", 32 },
	{ SMIG_MSG_ATTEST, "ATTEST", 16 * 1024 },
	{ SMIG_MSG_ENROL_CHAL, "ENROL_CHAL", 4 + 2 * 256 },
	{ SMIG_MSG_ENROL_PROOF, "ENROL_PROOF", 32 },
	{ SMIG_MSG_ATTEST_LOG, "ATTEST_LOG", 1u << 20 },
	{ SMIG_MSG_VERDICT, "VERDICT", 4096 },
	{ SMIG_MSG_RESERVE, "RESERVE", 2 + 63 + 4 + 4 + 2 + 1 },
	{ SMIG_MSG_RESERVED, "RESERVED", 1 + 2 + 255 },
	{ SMIG_MSG_MIG_CHANNEL, "MIG_CHANNEL", ID + 1 + SMIG_CHAN_MAC_LEN },
	{ SMIG_MSG_MIG_CHANNEL_OK, "MIG_CHANNEL_OK", ID + 1 },
	/* spec, vTPM key, firmware build, agent, evacuation, channels */
	{ SMIG_MSG_MIG_PREPARE, "MIG_PREPARE", 2 + 16 * 1024 + 1 + 32 + 1 + 32 + 8 + 1 + 1 + 1 },
	{ SMIG_MSG_MIG_PREPARED, "MIG_PREPARED", ID },
	{ SMIG_MSG_MIG_DATA, "MIG_DATA", SMIG_FRAME_MAX_PAYLOAD },
	{ SMIG_MSG_MIG_COMMIT_REQ, "MIG_COMMIT_REQ", ID + 8 },
	{ SMIG_MSG_MIG_READY, "MIG_READY", ID + 4 },
	{ SMIG_MSG_MIG_COMMIT, "MIG_COMMIT", ID },
	{ SMIG_MSG_MIG_COMMITTED, "MIG_COMMITTED", ID },
	{ SMIG_MSG_MIG_ABORT, "MIG_ABORT", ID + 2 + 2 + 255 },
	{ SMIG_MSG_MIG_SETTLED, "MIG_SETTLED", ID + 1 + 2 + 255 },
	{ SMIG_MSG_MIG_QUERY, "MIG_QUERY", ID },
	{ SMIG_MSG_MIG_OUTCOME, "MIG_OUTCOME", ID + 1 },
};

static const struct frame_type *frame_type_find(uint8_t type)
{
	for (size_t i = 0; i < sizeof(frame_types) / sizeof(frame_types[0]); i++)
		if (frame_types[i].type == type)
			return &frame_types[i];
	return NULL;
}

int smig_frame_type_max(uint8_t type, uint32_t *max)
{
	const struct frame_type *t = frame_type_find(type);

	SMIG_ENSURE(t != NULL, SMIG_ETYPE);
	*max = t->max;
	return 0;
}

const char *smig_frame_type_name(uint8_t type)
{
	const struct frame_type *t = frame_type_find(type);

	return t ? t->name : "UNKNOWN";
}

int smig_frame_header(const uint8_t *p, size_t n, uint8_t *type, uint32_t *len)
{
	struct smig_buf b;
	uint8_t version;
	uint16_t reserved;
	uint32_t max;

	SMIG_ENSURE(n >= SMIG_FRAME_HDR_LEN, SMIG_ESHORT);
	smig_buf_view(&b, p, SMIG_FRAME_HDR_LEN);
	SMIG_GUARD(smig_buf_get_u8(&b, &version));
	SMIG_GUARD(smig_buf_get_u8(&b, type));
	SMIG_GUARD(smig_buf_get_u16(&b, &reserved));
	SMIG_GUARD(smig_buf_get_u32(&b, len));
	SMIG_ENSURE(version == SMIG_PROTO_VERSION, SMIG_EVERSION);
	SMIG_ENSURE(reserved == 0, SMIG_EPROTO);
	SMIG_GUARD(smig_frame_type_max(*type, &max));
	SMIG_ENSURE(*len <= max, SMIG_ETOOBIG);
	return 0;
}

int smig_frame_next(struct smig_buf *rx, struct smig_frame *f)
{
	size_t have = smig_buf_remaining(rx);
	const uint8_t *p = smig_buf_peek(rx);
	uint8_t type;
	uint32_t len;
	int rc;

	if (have < SMIG_FRAME_HDR_LEN)
		return SMIG_EAGAIN;
	rc = smig_frame_header(p, have, &type, &len);
	if (rc < 0)
		return rc;
	if (have - SMIG_FRAME_HDR_LEN < len)
		return SMIG_EAGAIN;
	f->type = type;
	f->len = len;
	f->payload = p + SMIG_FRAME_HDR_LEN;
	rx->off += SMIG_FRAME_HDR_LEN + (size_t)len;
	return 0;
}

int smig_frame_parse(const uint8_t *p, size_t n, struct smig_frame *f)
{
	uint8_t type;
	uint32_t len;

	SMIG_GUARD(smig_frame_header(p, n, &type, &len));
	SMIG_ENSURE(n - SMIG_FRAME_HDR_LEN >= len, SMIG_ESHORT);
	SMIG_ENSURE(n - SMIG_FRAME_HDR_LEN == len, SMIG_ETRAILING);
	f->type = type;
	f->len = len;
	f->payload = p + SMIG_FRAME_HDR_LEN;
	return 0;
}

int smig_frame_begin(struct smig_buf *out, uint8_t type, size_t *mark)
{
	uint32_t max;

	SMIG_GUARD(smig_frame_type_max(type, &max));
	/* relative to the read offset: compaction while the payload grows keeps it valid */
	*mark = out->len - out->off;
	SMIG_GUARD(smig_buf_put_u8(out, SMIG_PROTO_VERSION));
	SMIG_GUARD(smig_buf_put_u8(out, type));
	SMIG_GUARD(smig_buf_put_u16(out, 0));
	return smig_buf_put_u32(out, 0);
}

int smig_frame_end(struct smig_buf *out, size_t mark)
{
	size_t payload;
	uint32_t max;
	uint8_t *hdr;

	SMIG_ENSURE(out->off + mark + SMIG_FRAME_HDR_LEN <= out->len, SMIG_EINVAL);
	hdr = out->data + out->off + mark;
	payload = out->len - out->off - mark - SMIG_FRAME_HDR_LEN;
	SMIG_GUARD(smig_frame_type_max(hdr[1], &max));
	if (payload > max) {
		smig_frame_cancel(out, mark); /* drop the oversize frame entirely */
		return SMIG_ETOOBIG;
	}
	hdr[4] = (uint8_t)(payload >> 24);
	hdr[5] = (uint8_t)(payload >> 16);
	hdr[6] = (uint8_t)(payload >> 8);
	hdr[7] = (uint8_t)payload;
	return 0;
}

int smig_frame_put(struct smig_buf *out, uint8_t type, const void *payload, uint32_t len)
{
	size_t mark;
	int rc;

	SMIG_GUARD(smig_frame_begin(out, type, &mark));
	rc = smig_buf_put_bytes(out, payload, len);
	if (rc < 0) {
		smig_frame_cancel(out, mark);
		return rc;
	}
	return smig_frame_end(out, mark);
}

void smig_frame_cancel(struct smig_buf *out, size_t mark)
{
	if (out->off + mark <= out->len)
		out->len = out->off + mark;
}
