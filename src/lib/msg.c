/*
 * msg.c - encoding and strict decoding of peer message payloads (msg.h).
 */
#include "msg.h"
#include "error.h"
#include "log.h"
#include "sign.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <stdbool.h>
#include <string.h>

int smig_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > SMIG_NAME_MAX || s[0] == '.' || s[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static int msg_view(const struct smig_frame *f, uint8_t type, struct smig_buf *b)
{
	SMIG_ENSURE(f->type == type, SMIG_EPROTO);
	smig_buf_view(b, f->payload, f->len);
	return 0;
}

static int msg_finish(struct smig_buf *out, size_t mark, int rc)
{
	if (rc < 0) {
		smig_frame_cancel(out, mark);
		return rc;
	}
	return smig_frame_end(out, mark);
}

int smig_msg_put_hello(struct smig_buf *out, const struct smig_hello *m)
{
	size_t mark;
	int rc;

	SMIG_ENSURE(smig_name_valid(m->host), SMIG_EINVAL);
	SMIG_GUARD(smig_frame_begin(out, SMIG_MSG_HELLO, &mark));
	rc = smig_buf_put_string(out, m->host, SMIG_NAME_MAX);
	if (rc == 0)
		rc = smig_buf_put_string(out, m->version, SMIG_VERSION_STR_MAX);
	if (rc == 0)
		rc = smig_buf_put_u32(out, m->features);
	return msg_finish(out, mark, rc);
}

int smig_msg_get_hello(const struct smig_frame *f, struct smig_hello *m)
{
	struct smig_buf b;

	SMIG_GUARD(msg_view(f, SMIG_MSG_HELLO, &b));
	SMIG_GUARD(smig_buf_get_string(&b, m->host, sizeof(m->host), SMIG_NAME_MAX));
	SMIG_ENSURE(smig_name_valid(m->host), SMIG_EPROTO);
	SMIG_GUARD(smig_buf_get_string(&b, m->version, sizeof(m->version), SMIG_VERSION_STR_MAX));
	SMIG_GUARD(smig_buf_get_u32(&b, &m->features));
	return smig_buf_expect_end(&b);
}

int smig_msg_put_ping(struct smig_buf *out, uint8_t type, const struct smig_ping *m)
{
	size_t mark;
	int rc;

	SMIG_ENSURE(type == SMIG_MSG_PING || type == SMIG_MSG_PONG, SMIG_EINVAL);
	SMIG_GUARD(smig_frame_begin(out, type, &mark));
	rc = smig_buf_put_u64(out, m->nonce);
	if (rc == 0)
		rc = smig_buf_put_u64(out, m->sent_ns);
	return msg_finish(out, mark, rc);
}

int smig_msg_get_ping(const struct smig_frame *f, uint8_t type, struct smig_ping *m)
{
	struct smig_buf b;

	SMIG_ENSURE(type == SMIG_MSG_PING || type == SMIG_MSG_PONG, SMIG_EINVAL);
	SMIG_GUARD(msg_view(f, type, &b));
	SMIG_GUARD(smig_buf_get_u64(&b, &m->nonce));
	SMIG_GUARD(smig_buf_get_u64(&b, &m->sent_ns));
	return smig_buf_expect_end(&b);
}

int smig_msg_put_error(struct smig_buf *out, const struct smig_error_msg *m)
{
	size_t mark;
	int rc;

	SMIG_GUARD(smig_frame_begin(out, SMIG_MSG_ERROR, &mark));
	rc = smig_buf_put_u16(out, m->code);
	if (rc == 0)
		rc = smig_buf_put_string(out, m->reason, SMIG_REASON_MAX);
	return msg_finish(out, mark, rc);
}

int smig_msg_get_error(const struct smig_frame *f, struct smig_error_msg *m)
{
	struct smig_buf b;

	SMIG_GUARD(msg_view(f, SMIG_MSG_ERROR, &b));
	SMIG_GUARD(smig_buf_get_u16(&b, &m->code));
	SMIG_GUARD(smig_buf_get_string(&b, m->reason, sizeof(m->reason), SMIG_REASON_MAX));
	return smig_buf_expect_end(&b);
}

int smig_msg_put_attest_req(struct smig_buf *out, const uint8_t nonce[SMIG_ATTEST_NONCE_LEN])
{
	return smig_frame_put(out, SMIG_MSG_ATTEST_REQ, nonce, SMIG_ATTEST_NONCE_LEN);
}

int smig_msg_get_attest_req(const struct smig_frame *f, uint8_t nonce[SMIG_ATTEST_NONCE_LEN])
{
	struct smig_buf b;

	SMIG_GUARD(msg_view(f, SMIG_MSG_ATTEST_REQ, &b));
	SMIG_GUARD(smig_buf_get_bytes(&b, nonce, SMIG_ATTEST_NONCE_LEN));
	return smig_buf_expect_end(&b);
}

/* A frame whose whole payload is text of 1..max bytes (ATTEST, VERDICT). */
static int put_text(struct smig_buf *out, uint8_t type, const char *text, size_t len,
		    size_t max)
{
	SMIG_ENSURE(len > 0 && len <= max, SMIG_ETOOBIG);
	return smig_frame_put(out, type, text, len);
}

static int get_text(const struct smig_frame *f, uint8_t type, const char **text, size_t *len)
{
	struct smig_buf b;
	const uint8_t *p;

	SMIG_GUARD(msg_view(f, type, &b));
	*len = smig_buf_remaining(&b);
	SMIG_ENSURE(*len > 0, SMIG_ESHORT);
	SMIG_GUARD(smig_buf_get_ptr(&b, &p, *len));
	*text = (const char *)p;
	return 0;
}

int smig_msg_put_attest(struct smig_buf *out, const char *text, size_t len)
{
	return put_text(out, SMIG_MSG_ATTEST, text, len, SMIG_ATTEST_MAX);
}

int smig_msg_get_attest(const struct smig_frame *f, const char **text, size_t *len)
{
	return get_text(f, SMIG_MSG_ATTEST, text, len);
}

int smig_msg_put_enrol_chal(struct smig_buf *out, const struct smig_enrol_chal *m)
{
	size_t mark;
	int rc;

	SMIG_ENSURE(m->blob_len > 0 && m->blob_len <= SMIG_ENROL_PART_MAX && m->secret_len > 0 &&
			    m->secret_len <= SMIG_ENROL_PART_MAX,
		    SMIG_ETOOBIG);
	SMIG_GUARD(smig_frame_begin(out, SMIG_MSG_ENROL_CHAL, &mark));
	rc = smig_buf_put_u16(out, m->blob_len);
	if (rc == 0)
		rc = smig_buf_put_bytes(out, m->blob, m->blob_len);
	if (rc == 0)
		rc = smig_buf_put_u16(out, m->secret_len);
	if (rc == 0)
		rc = smig_buf_put_bytes(out, m->secret, m->secret_len);
	return msg_finish(out, mark, rc);
}

/* A u16 length (1..SMIG_ENROL_PART_MAX) and a view of that many bytes. */
static int enrol_part(struct smig_buf *b, const uint8_t **p, uint16_t *len)
{
	SMIG_GUARD(smig_buf_get_u16(b, len));
	SMIG_ENSURE(*len > 0 && *len <= SMIG_ENROL_PART_MAX, SMIG_EPROTO);
	return smig_buf_get_ptr(b, p, *len);
}

int smig_msg_get_enrol_chal(const struct smig_frame *f, struct smig_enrol_chal *m)
{
	struct smig_buf b;

	SMIG_GUARD(msg_view(f, SMIG_MSG_ENROL_CHAL, &b));
	SMIG_GUARD(enrol_part(&b, &m->blob, &m->blob_len));
	SMIG_GUARD(enrol_part(&b, &m->secret, &m->secret_len));
	return smig_buf_expect_end(&b);
}

int smig_msg_put_enrol_proof(struct smig_buf *out, const uint8_t cred[SMIG_ENROL_CRED_LEN])
{
	return smig_frame_put(out, SMIG_MSG_ENROL_PROOF, cred, SMIG_ENROL_CRED_LEN);
}

int smig_msg_get_enrol_proof(const struct smig_frame *f, uint8_t cred[SMIG_ENROL_CRED_LEN])
{
	struct smig_buf b;

	SMIG_GUARD(msg_view(f, SMIG_MSG_ENROL_PROOF, &b));
	SMIG_GUARD(smig_buf_get_bytes(&b, cred, SMIG_ENROL_CRED_LEN));
	return smig_buf_expect_end(&b);
}

int smig_msg_put_attest_log(struct smig_buf *out, uint8_t which, const uint8_t *data,
			    size_t len)
{
	size_t mark;
	int rc;

	SMIG_ENSURE((which == SMIG_LOG_BOOT || which == SMIG_LOG_IMA) && len > 0 &&
			    len <= SMIG_ATTEST_LOG_CHUNK,
		    SMIG_ETOOBIG);
	SMIG_GUARD(smig_frame_begin(out, SMIG_MSG_ATTEST_LOG, &mark));
	rc = smig_buf_put_u8(out, which);
	if (rc == 0)
		rc = smig_buf_put_bytes(out, data, len);
	return msg_finish(out, mark, rc);
}

int smig_msg_get_attest_log(const struct smig_frame *f, uint8_t *which, const uint8_t **data,
			    size_t *len)
{
	struct smig_buf b;

	SMIG_GUARD(msg_view(f, SMIG_MSG_ATTEST_LOG, &b));
	SMIG_GUARD(smig_buf_get_u8(&b, which));
	SMIG_ENSURE(*which == SMIG_LOG_BOOT || *which == SMIG_LOG_IMA, SMIG_EPROTO);
	*len = smig_buf_remaining(&b);
	SMIG_ENSURE(*len > 0, SMIG_ESHORT);
	return smig_buf_get_ptr(&b, data, *len);
}

int smig_msg_put_verdict(struct smig_buf *out, const char *text, size_t len)
{
	return put_text(out, SMIG_MSG_VERDICT, text, len, 4096);
}

int smig_msg_get_verdict(const struct smig_frame *f, const char **text, size_t *len)
{
	return get_text(f, SMIG_MSG_VERDICT, text, len);
}

int smig_msg_put_reserve(struct smig_buf *out, const struct smig_reserve *m)
{
	size_t mark;
	int rc;

	SMIG_GUARD(smig_frame_begin(out, SMIG_MSG_RESERVE, &mark));
	rc = smig_buf_put_string(out, m->vm, SMIG_NAME_MAX);
	if (rc == 0)
		rc = smig_buf_put_u32(out, m->memory_mib);
	if (rc == 0)
		rc = smig_buf_put_u32(out, m->vcpus);
	if (rc == 0)
		rc = smig_buf_put_u16(out, m->ttl_s);
	if (rc == 0)
		rc = smig_buf_put_u8(out, m->release ? 1 : 0);
	return msg_finish(out, mark, rc);
}

int smig_msg_get_reserve(const struct smig_frame *f, struct smig_reserve *m)
{
	struct smig_buf b;
	uint8_t release;

	SMIG_GUARD(msg_view(f, SMIG_MSG_RESERVE, &b));
	SMIG_GUARD(smig_buf_get_string(&b, m->vm, sizeof(m->vm), SMIG_NAME_MAX));
	SMIG_GUARD(smig_buf_get_u32(&b, &m->memory_mib));
	SMIG_GUARD(smig_buf_get_u32(&b, &m->vcpus));
	SMIG_GUARD(smig_buf_get_u16(&b, &m->ttl_s));
	SMIG_GUARD(smig_buf_get_u8(&b, &release));
	SMIG_GUARD(smig_buf_expect_end(&b));
	SMIG_ENSURE(smig_name_valid(m->vm) && release <= 1 && m->vcpus > 0 &&
			    m->ttl_s <= SMIG_RESERVE_TTL_MAX && (release || m->ttl_s > 0),
		    SMIG_EPROTO);
	m->release = release == 1;
	return 0;
}

int smig_msg_put_reserved(struct smig_buf *out, const struct smig_reserved *m)
{
	size_t mark;
	int rc;

	SMIG_GUARD(smig_frame_begin(out, SMIG_MSG_RESERVED, &mark));
	rc = smig_buf_put_u8(out, m->held ? 1 : 0);
	if (rc == 0)
		rc = smig_buf_put_string(out, m->reason, SMIG_REASON_MAX);
	return msg_finish(out, mark, rc);
}

int smig_msg_get_reserved(const struct smig_frame *f, struct smig_reserved *m)
{
	struct smig_buf b;
	uint8_t held;

	SMIG_GUARD(msg_view(f, SMIG_MSG_RESERVED, &b));
	SMIG_GUARD(smig_buf_get_u8(&b, &held));
	SMIG_GUARD(smig_buf_get_string(&b, m->reason, sizeof(m->reason), SMIG_REASON_MAX));
	SMIG_GUARD(smig_buf_expect_end(&b));
	SMIG_ENSURE(held <= 1 && smig_is_printable(m->reason), SMIG_EPROTO);
	m->held = held == 1;
	return 0;
}

int smig_msg_put_bye(struct smig_buf *out)
{
	return smig_frame_put(out, SMIG_MSG_BYE, NULL, 0);
}

int smig_msg_get_bye(const struct smig_frame *f)
{
	struct smig_buf b;

	SMIG_GUARD(msg_view(f, SMIG_MSG_BYE, &b));
	return smig_buf_expect_end(&b);
}

int smig_msg_put_mig_prepare(struct smig_buf *out, const struct smig_mig_prepare *m)
{
	size_t mark;
	int rc;

	SMIG_ENSURE(m->spec_len <= SMIG_MIG_SPEC_MAX, SMIG_ETOOBIG);
	SMIG_GUARD(smig_frame_begin(out, SMIG_MSG_MIG_PREPARE, &mark));
	rc = smig_buf_put_u16(out, (uint16_t)m->spec_len);
	if (rc == 0)
		rc = smig_buf_put_bytes(out, m->spec, m->spec_len);
	if (rc == 0)
		rc = smig_buf_put_u8(out, m->has_key ? 1 : 0);
	if (rc == 0 && m->has_key)
		rc = smig_buf_put_bytes(out, m->key, SMIG_MIG_KEY_LEN);
	if (rc == 0)
		rc = smig_buf_put_u8(out, m->has_fw ? 1 : 0);
	if (rc == 0 && m->has_fw)
		rc = smig_buf_put_bytes(out, m->fw_sha256, sizeof(m->fw_sha256));
	if (rc == 0 && m->has_fw)
		rc = smig_buf_put_u64(out, m->fw_size);
	if (rc == 0)
		rc = smig_buf_put_u8(out, m->agent_answered ? 1 : 0);
	if (rc == 0)
		rc = smig_buf_put_u8(out, m->evacuation ? 1 : 0);
	if (rc == 0)
		rc = m->channels <= SMIG_CHAN_MAX ? smig_buf_put_u8(out, m->channels) : SMIG_EINVAL;
	return msg_finish(out, mark, rc);
}

int smig_msg_get_mig_prepare(const struct smig_frame *f, struct smig_mig_prepare *m)
{
	struct smig_buf b;
	const uint8_t *spec;
	uint16_t n;

	SMIG_GUARD(msg_view(f, SMIG_MSG_MIG_PREPARE, &b));
	SMIG_GUARD(smig_buf_get_u16(&b, &n));
	SMIG_ENSURE(n <= SMIG_MIG_SPEC_MAX, SMIG_ETOOBIG);
	SMIG_GUARD(smig_buf_get_ptr(&b, &spec, n));
	m->spec = (char *)(uintptr_t)spec; // NOLINT(performance-no-int-to-ptr)
	m->spec_len = n;
	SMIG_GUARD(smig_buf_get_u8(&b, &m->has_key));
	SMIG_ENSURE(m->has_key <= 1, SMIG_EPROTO);
	if (m->has_key)
		SMIG_GUARD(smig_buf_get_bytes(&b, m->key, SMIG_MIG_KEY_LEN));
	SMIG_GUARD(smig_buf_get_u8(&b, &m->has_fw));
	SMIG_ENSURE(m->has_fw <= 1, SMIG_EPROTO);
	if (m->has_fw) {
		SMIG_GUARD(smig_buf_get_bytes(&b, m->fw_sha256, sizeof(m->fw_sha256)));
		SMIG_GUARD(smig_buf_get_u64(&b, &m->fw_size));
	}
	SMIG_GUARD(smig_buf_get_u8(&b, &m->agent_answered));
	SMIG_ENSURE(m->agent_answered <= 1, SMIG_EPROTO);
	SMIG_GUARD(smig_buf_get_u8(&b, &m->evacuation));
	SMIG_ENSURE(m->evacuation <= 1, SMIG_EPROTO);
	SMIG_GUARD(smig_buf_get_u8(&b, &m->channels));
	SMIG_ENSURE(m->channels <= SMIG_CHAN_MAX && m->channels != 1, SMIG_EPROTO);
	return smig_buf_expect_end(&b);
}

int smig_msg_put_mig_channel(struct smig_buf *out, uint8_t type, const struct smig_mig_channel *m)
{
	size_t mark;
	int rc;

	SMIG_ENSURE(type == SMIG_MSG_MIG_CHANNEL || type == SMIG_MSG_MIG_CHANNEL_OK, SMIG_EINVAL);
	SMIG_ENSURE(m->index < SMIG_CHAN_MAX, SMIG_EINVAL);
	SMIG_GUARD(smig_frame_begin(out, type, &mark));
	rc = smig_buf_put_bytes(out, m->id.b, SMIG_MIG_ID_LEN);
	if (rc == 0)
		rc = smig_buf_put_u8(out, m->index);
	if (rc == 0 && type == SMIG_MSG_MIG_CHANNEL)
		rc = smig_buf_put_bytes(out, m->mac, SMIG_CHAN_MAC_LEN);
	return msg_finish(out, mark, rc);
}

int smig_msg_get_mig_channel(const struct smig_frame *f, uint8_t type, struct smig_mig_channel *m)
{
	struct smig_buf b;

	SMIG_ENSURE(type == SMIG_MSG_MIG_CHANNEL || type == SMIG_MSG_MIG_CHANNEL_OK, SMIG_EINVAL);
	SMIG_GUARD(msg_view(f, type, &b));
	memset(m, 0, sizeof(*m));
	SMIG_GUARD(smig_buf_get_bytes(&b, m->id.b, SMIG_MIG_ID_LEN));
	SMIG_GUARD(smig_buf_get_u8(&b, &m->index));
	SMIG_ENSURE(m->index < SMIG_CHAN_MAX && !smig_mig_id_zero(&m->id), SMIG_EPROTO);
	if (type == SMIG_MSG_MIG_CHANNEL)
		SMIG_GUARD(smig_buf_get_bytes(&b, m->mac, SMIG_CHAN_MAC_LEN));
	return smig_buf_expect_end(&b);
}

static bool mig_id_type(uint8_t type)
{
	return type == SMIG_MSG_MIG_PREPARED || type == SMIG_MSG_MIG_COMMIT ||
	       type == SMIG_MSG_MIG_COMMITTED || type == SMIG_MSG_MIG_QUERY;
}

int smig_msg_put_mig_id(struct smig_buf *out, uint8_t type, const struct smig_mig_id *id)
{
	SMIG_ENSURE(mig_id_type(type), SMIG_EINVAL);
	return smig_frame_put(out, type, id->b, SMIG_MIG_ID_LEN);
}

int smig_msg_get_mig_id(const struct smig_frame *f, uint8_t type, struct smig_mig_id *id)
{
	struct smig_buf b;

	SMIG_ENSURE(mig_id_type(type), SMIG_EINVAL);
	SMIG_GUARD(msg_view(f, type, &b));
	SMIG_GUARD(smig_buf_get_bytes(&b, id->b, SMIG_MIG_ID_LEN));
	return smig_buf_expect_end(&b);
}

int smig_msg_put_mig_outcome(struct smig_buf *out, const struct smig_mig_id *id,
			     uint8_t outcome)
{
	size_t mark;
	int rc;

	SMIG_ENSURE(outcome <= SMIG_OUTCOME_PENDING, SMIG_EINVAL);
	SMIG_GUARD(smig_frame_begin(out, SMIG_MSG_MIG_OUTCOME, &mark));
	rc = smig_buf_put_bytes(out, id->b, SMIG_MIG_ID_LEN);
	if (rc == 0)
		rc = smig_buf_put_u8(out, outcome);
	return msg_finish(out, mark, rc);
}

int smig_msg_get_mig_outcome(const struct smig_frame *f, struct smig_mig_id *id,
			     uint8_t *outcome)
{
	struct smig_buf b;

	SMIG_GUARD(msg_view(f, SMIG_MSG_MIG_OUTCOME, &b));
	SMIG_GUARD(smig_buf_get_bytes(&b, id->b, SMIG_MIG_ID_LEN));
	SMIG_GUARD(smig_buf_get_u8(&b, outcome));
	SMIG_ENSURE(*outcome <= SMIG_OUTCOME_PENDING, SMIG_EPROTO);
	return smig_buf_expect_end(&b);
}

int smig_msg_put_mig_commit_req(struct smig_buf *out, const struct smig_mig_commit_req *m)
{
	size_t mark;
	int rc;

	SMIG_GUARD(smig_frame_begin(out, SMIG_MSG_MIG_COMMIT_REQ, &mark));
	rc = smig_buf_put_bytes(out, m->id.b, SMIG_MIG_ID_LEN);
	if (rc == 0)
		rc = smig_buf_put_u64(out, m->bytes);
	return msg_finish(out, mark, rc);
}

int smig_msg_get_mig_commit_req(const struct smig_frame *f, struct smig_mig_commit_req *m)
{
	struct smig_buf b;

	SMIG_GUARD(msg_view(f, SMIG_MSG_MIG_COMMIT_REQ, &b));
	SMIG_GUARD(smig_buf_get_bytes(&b, m->id.b, SMIG_MIG_ID_LEN));
	SMIG_GUARD(smig_buf_get_u64(&b, &m->bytes));
	return smig_buf_expect_end(&b);
}

int smig_msg_put_mig_abort(struct smig_buf *out, const struct smig_mig_abort *m)
{
	size_t mark;
	int rc;

	SMIG_GUARD(smig_frame_begin(out, SMIG_MSG_MIG_ABORT, &mark));
	rc = smig_buf_put_bytes(out, m->id.b, SMIG_MIG_ID_LEN);
	if (rc == 0)
		rc = smig_buf_put_u16(out, m->code);
	if (rc == 0)
		rc = smig_buf_put_string(out, m->reason, SMIG_REASON_MAX);
	return msg_finish(out, mark, rc);
}

int smig_msg_get_mig_abort(const struct smig_frame *f, struct smig_mig_abort *m)
{
	struct smig_buf b;

	SMIG_GUARD(msg_view(f, SMIG_MSG_MIG_ABORT, &b));
	SMIG_GUARD(smig_buf_get_bytes(&b, m->id.b, SMIG_MIG_ID_LEN));
	SMIG_GUARD(smig_buf_get_u16(&b, &m->code));
	SMIG_GUARD(smig_buf_get_string(&b, m->reason, sizeof(m->reason), SMIG_REASON_MAX));
	return smig_buf_expect_end(&b);
}

int smig_msg_put_mig_ready(struct smig_buf *out, const struct smig_mig_id *id,
			   uint32_t protections)
{
	size_t mark;
	int rc;

	SMIG_GUARD(smig_frame_begin(out, SMIG_MSG_MIG_READY, &mark));
	rc = smig_buf_put_bytes(out, id->b, SMIG_MIG_ID_LEN);
	if (rc == 0)
		rc = smig_buf_put_u32(out, protections);
	return msg_finish(out, mark, rc);
}

int smig_msg_get_mig_ready(const struct smig_frame *f, struct smig_mig_id *id,
			   uint32_t *protections)
{
	struct smig_buf b;

	SMIG_GUARD(msg_view(f, SMIG_MSG_MIG_READY, &b));
	SMIG_GUARD(smig_buf_get_bytes(&b, id->b, SMIG_MIG_ID_LEN));
	SMIG_GUARD(smig_buf_get_u32(&b, protections));
	SMIG_ENSURE((*protections & ~SMIG_PROT_ALL) == 0, SMIG_EPROTO);
	return smig_buf_expect_end(&b);
}

int smig_msg_put_mig_settled(struct smig_buf *out, const struct smig_mig_settled *m)
{
	size_t mark;
	int rc;

	SMIG_ENSURE(m->fate <= SMIG_GUEST_UNRESPONSIVE, SMIG_EINVAL);
	SMIG_GUARD(smig_frame_begin(out, SMIG_MSG_MIG_SETTLED, &mark));
	rc = smig_buf_put_bytes(out, m->id.b, SMIG_MIG_ID_LEN);
	if (rc == 0)
		rc = smig_buf_put_u8(out, m->fate);
	if (rc == 0)
		rc = smig_buf_put_string(out, m->detail, SMIG_REASON_MAX);
	return msg_finish(out, mark, rc);
}

int smig_msg_get_mig_settled(const struct smig_frame *f, struct smig_mig_settled *m)
{
	struct smig_buf b;

	SMIG_GUARD(msg_view(f, SMIG_MSG_MIG_SETTLED, &b));
	SMIG_GUARD(smig_buf_get_bytes(&b, m->id.b, SMIG_MIG_ID_LEN));
	SMIG_GUARD(smig_buf_get_u8(&b, &m->fate));
	SMIG_ENSURE(m->fate <= SMIG_GUEST_UNRESPONSIVE, SMIG_EPROTO);
	SMIG_GUARD(smig_buf_get_string(&b, m->detail, sizeof(m->detail), SMIG_REASON_MAX));
	return smig_buf_expect_end(&b);
}

bool smig_mig_id_eq(const struct smig_mig_id *a, const struct smig_mig_id *b)
{
	return CRYPTO_memcmp(a->b, b->b, SMIG_MIG_ID_LEN) == 0;
}

bool smig_mig_id_zero(const struct smig_mig_id *id)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < SMIG_MIG_ID_LEN; i++)
		acc |= id->b[i];
	return acc == 0;
}

void smig_mig_id_format(const struct smig_mig_id *id, char out[SMIG_MIG_ID_STR_LEN])
{
	smig_hex(id->b, SMIG_MIG_ID_LEN, out);
}

int smig_mig_id_parse(const char *s, struct smig_mig_id *id)
{
	SMIG_ENSURE(strspn(s, "0123456789abcdef") == (size_t)2 * SMIG_MIG_ID_LEN &&
			    s[(size_t)2 * SMIG_MIG_ID_LEN] == '\0',
		    SMIG_EINVAL);
	SMIG_GUARD(smig_unhex(s, id->b, SMIG_MIG_ID_LEN));
	SMIG_ENSURE(!smig_mig_id_zero(id), SMIG_EINVAL);
	return 0;
}

int smig_mig_id_new(struct smig_mig_id *id)
{
	do {
		SMIG_ENSURE(RAND_bytes(id->b, SMIG_MIG_ID_LEN) == 1, SMIG_EIO);
	} while (smig_mig_id_zero(id));
	return 0;
}
