/*
 * msg.c - encoding and strict decoding of peer message payloads (msg.h).
 */
#include "msg.h"
#include "error.h"

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
		out->len = mark;
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
