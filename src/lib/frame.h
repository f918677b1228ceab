/*
 * frame.h - wire framing between smigd peers (inside TLS).
 *
 * Every message is a frame:
 *
 *   u8 version | u8 type | u16 reserved (0) | u32 length | payload[length]
 *
 * Each type has a maximum payload length; a header that names an unknown
 * type, a foreign version, a non-zero reserved field or an oversize length
 * is rejected as soon as its 8 bytes arrive, before any payload is buffered.
 * Payload layouts live in msg.h; docs/protocol.md is the reference.
 */
#ifndef SMIG_FRAME_H
#define SMIG_FRAME_H

#include "buf.h"

#include <stddef.h>
#include <stdint.h>

#define SMIG_PROTO_VERSION 2
#define SMIG_FRAME_HDR_LEN 8
/* The largest payload of any type; a receive buffer never needs more. */
#define SMIG_FRAME_MAX_PAYLOAD (1u << 20)

enum smig_msg_type {
	SMIG_MSG_HELLO = 0x01,
	SMIG_MSG_PING = 0x02,
	SMIG_MSG_PONG = 0x03,
	SMIG_MSG_ERROR = 0x04,
	SMIG_MSG_BYE = 0x05,
	SMIG_MSG_ATTEST_REQ = 0x06, /* a verifier's nonce */
	SMIG_MSG_ATTEST = 0x07,     /* evidence answering it (evidence.h) */
	SMIG_MSG_ENROL_CHAL = 0x08,  /* enrolment: a credential for the peer's AK (tpmcred.h) */
	SMIG_MSG_ENROL_PROOF = 0x09, /* ... and what its TPM recovered from it */
	SMIG_MSG_ATTEST_LOG = 0x0a,  /* a piece of a log that goes with the evidence */
	SMIG_MSG_VERDICT = 0x0b,     /* a host's signed verdict on another (report.h) */
	SMIG_MSG_RESERVE = 0x0c,     /* hold capacity for a VM the peer means to send */
	SMIG_MSG_RESERVED = 0x0d,    /* ... held or not, and why */
	SMIG_MSG_MIG_CHANNEL = 0x0e,    /* first frame of a parallel stream channel's session */
	SMIG_MSG_MIG_CHANNEL_OK = 0x0f, /* ... taken: the stream follows */
	/* migration (docs/protocol.md, "Migration") */
	SMIG_MSG_MIG_PREPARE = 0x10,
	SMIG_MSG_MIG_PREPARED = 0x11,
	SMIG_MSG_MIG_DATA = 0x12,
	SMIG_MSG_MIG_COMMIT_REQ = 0x13,
	SMIG_MSG_MIG_READY = 0x14,
	SMIG_MSG_MIG_COMMIT = 0x15,
	SMIG_MSG_MIG_COMMITTED = 0x16,
	SMIG_MSG_MIG_ABORT = 0x17,
	SMIG_MSG_MIG_SETTLED = 0x18, /* the guest's fate after switch-over */
	SMIG_MSG_MIG_QUERY = 0x19,   /* a source that lost a commit asks how it ended */
	SMIG_MSG_MIG_OUTCOME = 0x1a, /* ... and the destination answers */
};

struct smig_frame {
	uint8_t type;
	uint32_t len;
	const uint8_t *payload; /* points into the buffer it was read from */
};

/* The maximum payload of type in *max; SMIG_ETYPE if type is unknown. */
int smig_frame_type_max(uint8_t type, uint32_t *max);
/* "HELLO", "PING", ...; "UNKNOWN" for others. */
const char *smig_frame_type_name(uint8_t type);

/* Checks an 8-byte header; on success stores its type and length. */
int smig_frame_header(const uint8_t *p, size_t n, uint8_t *type, uint32_t *len);

/*
 * Takes the next complete frame from a receive buffer. Returns 0 and fills
 * f (payload valid until rx is next written), SMIG_EAGAIN if more bytes are
 * needed, or a negative code for a bad header.
 */
int smig_frame_next(struct smig_buf *rx, struct smig_frame *f);

/* Parses p[0..n) as exactly one frame: short input and trailing bytes fail. */
int smig_frame_parse(const uint8_t *p, size_t n, struct smig_frame *f);

/* Appends a whole frame with the given payload. */
int smig_frame_put(struct smig_buf *out, uint8_t type, const void *payload, uint32_t len);

/*
 * Two-step writing for payloads built in place: begin reserves the header
 * and remembers where it is in *mark; end fills in the length after
 * checking it against the type's maximum.
 */
int smig_frame_begin(struct smig_buf *out, uint8_t type, size_t *mark);
int smig_frame_end(struct smig_buf *out, size_t mark);
/* Drops a frame begun with smig_frame_begin() and everything after it. */
void smig_frame_cancel(struct smig_buf *out, size_t mark);

#endif
