/*
 * msg.h - payloads of the peer messages, each encoded as a whole frame and
 * decoded strictly from a frame (wrong type, short payload, oversize string
 * or trailing bytes are errors).
 */
#ifndef SMIG_MSG_H
#define SMIG_MSG_H

#include "buf.h"
#include "frame.h"

#include <stdbool.h>
#include <stdint.h>

#define SMIG_NAME_MAX 63
#define SMIG_VERSION_STR_MAX 31
#define SMIG_REASON_MAX 255

struct smig_hello {
	char host[SMIG_NAME_MAX + 1];
	char version[SMIG_VERSION_STR_MAX + 1];
	uint32_t features;
};

struct smig_ping {
	uint64_t nonce;
	uint64_t sent_ns;
};

struct smig_error_msg {
	uint16_t code; /* a positive SMIG_E* value */
	char reason[SMIG_REASON_MAX + 1];
};

int smig_msg_put_hello(struct smig_buf *out, const struct smig_hello *m);
int smig_msg_get_hello(const struct smig_frame *f, struct smig_hello *m);

/* type is SMIG_MSG_PING or SMIG_MSG_PONG; both carry the same fields. */
int smig_msg_put_ping(struct smig_buf *out, uint8_t type, const struct smig_ping *m);
int smig_msg_get_ping(const struct smig_frame *f, uint8_t type, struct smig_ping *m);

int smig_msg_put_error(struct smig_buf *out, const struct smig_error_msg *m);
int smig_msg_get_error(const struct smig_frame *f, struct smig_error_msg *m);

/*
 * Migration messages. The destination chooses a migration's id at random
 * (128 bits) when PREPARE arrives and sends it in PREPARED (or in its
 * ABORT); every later message carries it, so a frame from another
 * migration is a protocol violation, and no source can pick an id that
 * names someone else's migration. The all-zero id is "not yet known": only
 * a source's ABORT before PREPARED carries it.
 */
#define SMIG_MIG_KEY_LEN 32
#define SMIG_MIG_SPEC_MAX ((size_t)16 * 1024)
#define SMIG_MIG_ID_LEN 16
#define SMIG_MIG_ID_STR_LEN (2 * SMIG_MIG_ID_LEN + 1)

struct smig_mig_id {
	uint8_t b[SMIG_MIG_ID_LEN];
};

/* Whether two ids are the same (constant time), and whether one is unset. */
bool smig_mig_id_eq(const struct smig_mig_id *a, const struct smig_mig_id *b);
bool smig_mig_id_zero(const struct smig_mig_id *id);
/* 32 lower-case hex digits, and back (exactly 32 hex digits, not all zero). */
void smig_mig_id_format(const struct smig_mig_id *id, char out[SMIG_MIG_ID_STR_LEN]);
int smig_mig_id_parse(const char *s, struct smig_mig_id *id);
/* A fresh random id (never all zero); SMIG_EIO when the RNG fails. */
int smig_mig_id_new(struct smig_mig_id *id);

struct smig_mig_prepare {
	char *spec;  /* JSON text; decode: points into the frame, not NUL-terminated */
	size_t spec_len;
	uint8_t has_key;
	uint8_t key[SMIG_MIG_KEY_LEN]; /* the vTPM state key, when has_key */
	/* UEFI: the firmware build the VM runs (its flash travels in the stream) */
	uint8_t has_fw;
	uint8_t fw_sha256[32];
	uint64_t fw_size;
	/* the VM's guest agent answered the source's ping before PREPARE */
	uint8_t agent_answered;
	/* the source is evacuating: the only push a host held untrusted may make */
	uint8_t evacuation;
	/* parallel stream channels beside the main stream (QEMU multifd); 0: none */
	uint8_t channels;
};

struct smig_mig_commit_req {
	struct smig_mig_id id;
	uint64_t bytes; /* every byte of the stream the source sent */
};

struct smig_mig_abort {
	struct smig_mig_id id;
	uint16_t code;
	char reason[SMIG_REASON_MAX + 1];
};

/*
 * Parallel stream channels (docs/protocol.md, "Parallel channels"): each
 * is a TLS session of its own whose first frame, in place of HELLO, is
 * CHANNEL: the migration's id, the channel's index (below the PREPARE's
 * channels, at most SMIG_CHAN_MAX) and a MAC that binds this session to
 * the migration's attested one. CHANNEL_OK (id and index) takes it; the
 * channel's stream follows as TLS application data, unframed.
 */
#define SMIG_CHAN_MAX 16
#define SMIG_CHAN_MAC_LEN 32
struct smig_mig_channel {
	struct smig_mig_id id;
	uint8_t index;
	uint8_t mac[SMIG_CHAN_MAC_LEN]; /* CHANNEL only */
};
int smig_msg_put_mig_channel(struct smig_buf *out, uint8_t type, const struct smig_mig_channel *m);
int smig_msg_get_mig_channel(const struct smig_frame *f, uint8_t type, struct smig_mig_channel *m);

int smig_msg_put_mig_prepare(struct smig_buf *out, const struct smig_mig_prepare *m);
int smig_msg_get_mig_prepare(const struct smig_frame *f, struct smig_mig_prepare *m);
/*
 * READY: the id, and what the destination enforces for the VM there (PALM:
 * the source commits only if that covers the VM's profile).
 */
#define SMIG_PROT_NIC_FILTER 0x1u /* every NIC filter of the spec, on the taps */
#define SMIG_PROT_SANDBOX 0x2u    /* QEMU confined (-sandbox, no spawn, no privileges) */
#define SMIG_PROT_VTPM 0x4u       /* the vTPM state arrived and runs under its key */
#define SMIG_PROT_MIN_TRUST 0x8u  /* its own last self-check meets the VM's min_trust */
#define SMIG_PROT_ALL 0xfu
int smig_msg_put_mig_ready(struct smig_buf *out, const struct smig_mig_id *id,
			   uint32_t protections);
int smig_msg_get_mig_ready(const struct smig_frame *f, struct smig_mig_id *id,
			   uint32_t *protections);
/*
 * OUTCOME answers QUERY (the id alone): how did migration id end on the
 * destination? A source asks when it sent COMMIT and lost the connection
 * before COMMITTED, and acts on the answer: NOT_HERE or DISCARDED, it
 * resumes its copy; COMMITTED, it retires it; PENDING, it asks again.
 */
enum smig_mig_outcome {
	SMIG_OUTCOME_NOT_HERE = 0,  /* no such migration ever committed here */
	SMIG_OUTCOME_DISCARDED = 1, /* it was under way; the copy here is gone */
	SMIG_OUTCOME_COMMITTED = 2, /* the VM was resumed here */
	SMIG_OUTCOME_PENDING = 3,   /* COMMIT arrived, the resume is under way */
};
int smig_msg_put_mig_outcome(struct smig_buf *out, const struct smig_mig_id *id,
			     uint8_t outcome);
int smig_msg_get_mig_outcome(const struct smig_frame *f, struct smig_mig_id *id,
			     uint8_t *outcome);
/* PREPARED, COMMIT, COMMITTED, QUERY: the id alone. */
int smig_msg_put_mig_id(struct smig_buf *out, uint8_t type, const struct smig_mig_id *id);
int smig_msg_get_mig_id(const struct smig_frame *f, uint8_t type, struct smig_mig_id *id);
int smig_msg_put_mig_commit_req(struct smig_buf *out, const struct smig_mig_commit_req *m);
int smig_msg_get_mig_commit_req(const struct smig_frame *f, struct smig_mig_commit_req *m);
int smig_msg_put_mig_abort(struct smig_buf *out, const struct smig_mig_abort *m);
int smig_msg_get_mig_abort(const struct smig_frame *f, struct smig_mig_abort *m);

/*
 * SETTLED: after COMMITTED, what the destination saw of the guest during its
 * watch window: alive, crashed (GUEST_PANICKED, QEMU gone), or
 * unresponsive (its guest agent answered the source and not the
 * destination), with the detail.
 */
enum smig_guest_fate {
	SMIG_GUEST_ALIVE = 0,
	SMIG_GUEST_CRASHED = 1,
	SMIG_GUEST_UNRESPONSIVE = 2,
};

struct smig_mig_settled {
	struct smig_mig_id id;
	uint8_t fate; /* enum smig_guest_fate */
	char detail[SMIG_REASON_MAX + 1];
};

int smig_msg_put_mig_settled(struct smig_buf *out, const struct smig_mig_settled *m);
int smig_msg_get_mig_settled(const struct smig_frame *f, struct smig_mig_settled *m);

/* ATTEST_REQ: the verifier's fresh nonce. ATTEST: evidence text (evidence.h). */
#define SMIG_ATTEST_NONCE_LEN 32
#define SMIG_ATTEST_MAX ((size_t)16 * 1024)
int smig_msg_put_attest_req(struct smig_buf *out, const uint8_t nonce[SMIG_ATTEST_NONCE_LEN]);
int smig_msg_get_attest_req(const struct smig_frame *f, uint8_t nonce[SMIG_ATTEST_NONCE_LEN]);
int smig_msg_put_attest(struct smig_buf *out, const char *text, size_t len);
/* *text points into the frame (not NUL-terminated). */
int smig_msg_get_attest(const struct smig_frame *f, const char **text, size_t *len);

/*
 * ENROL_CHAL: a credential (blob and encrypted secret, each 1-256 bytes,
 * u16 length first) made for the peer's AK and EK; ENROL_PROOF: the 32
 * bytes its TPM recovered (tpmcred.h). Views point into the frame.
 */
#define SMIG_ENROL_PART_MAX 256
#define SMIG_ENROL_CRED_LEN 32
struct smig_enrol_chal {
	const uint8_t *blob;
	uint16_t blob_len;
	const uint8_t *secret;
	uint16_t secret_len;
};
int smig_msg_put_enrol_chal(struct smig_buf *out, const struct smig_enrol_chal *m);
int smig_msg_get_enrol_chal(const struct smig_frame *f, struct smig_enrol_chal *m);
int smig_msg_put_enrol_proof(struct smig_buf *out, const uint8_t cred[SMIG_ENROL_CRED_LEN]);
int smig_msg_get_enrol_proof(const struct smig_frame *f, uint8_t cred[SMIG_ENROL_CRED_LEN]);

/*
 * ATTEST_LOG: u8 which (1 the boot event log, 2 the IMA list), then the
 * next bytes of it; sent before the ATTEST they go with, in order. The
 * evidence names each log's size and digest.
 */
enum { SMIG_LOG_BOOT = 1, SMIG_LOG_IMA = 2 };
#define SMIG_ATTEST_LOG_CHUNK (((size_t)1 << 20) - 1)
#define SMIG_ATTEST_LOGS_MAX ((size_t)6 << 20) /* both logs of one evidence */
int smig_msg_put_attest_log(struct smig_buf *out, uint8_t which, const uint8_t *data,
			    size_t len);
int smig_msg_get_attest_log(const struct smig_frame *f, uint8_t *which, const uint8_t **data,
			    size_t *len);

/* VERDICT: a signed verdict report, JSON (report.h), at most 4 KiB. */
int smig_msg_put_verdict(struct smig_buf *out, const char *text, size_t len);
int smig_msg_get_verdict(const struct smig_frame *f, const char **text, size_t *len);

/*
 * RESERVE: the VM (name), the memory and vCPUs it needs, how long to hold
 * them (1..SMIG_RESERVE_TTL_MAX s) or, with release, to let them go.
 * RESERVED: held (1) or not (0), and why not.
 */
#define SMIG_RESERVE_TTL_MAX 3600
struct smig_reserve {
	char vm[SMIG_NAME_MAX + 1];
	uint32_t memory_mib, vcpus;
	uint16_t ttl_s;
	bool release;
};
struct smig_reserved {
	bool held;
	char reason[SMIG_REASON_MAX + 1];
};
int smig_msg_put_reserve(struct smig_buf *out, const struct smig_reserve *m);
int smig_msg_get_reserve(const struct smig_frame *f, struct smig_reserve *m);
int smig_msg_put_reserved(struct smig_buf *out, const struct smig_reserved *m);
int smig_msg_get_reserved(const struct smig_frame *f, struct smig_reserved *m);

int smig_msg_put_bye(struct smig_buf *out);
int smig_msg_get_bye(const struct smig_frame *f);

/* 1 if s is a valid host or VM name: 1..63 of [A-Za-z0-9._-], not "." first. */
int smig_name_valid(const char *s);

#endif
