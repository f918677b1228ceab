/*
 * fuzz_frame.c - the frame decoder and every message decoder on arbitrary
 * bytes, both as a stream (smig_frame_next) and as one frame.
 */
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "frame.h"
#include "msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode(const struct smig_frame *f)
{
	struct smig_hello h;
	struct smig_ping p;
	struct smig_error_msg e;
	struct smig_mig_prepare mp;
	struct smig_mig_commit_req cr;
	struct smig_mig_abort ab;
	struct smig_mig_settled st;
	uint32_t prot;
	uint8_t nonce[SMIG_ATTEST_NONCE_LEN];
	const char *text;
	size_t len;
	struct smig_mig_id id;
	struct smig_enrol_chal ec;
	uint8_t cred[SMIG_ENROL_CRED_LEN];

	(void)smig_msg_get_attest_req(f, nonce);
	(void)smig_msg_get_attest(f, &text, &len);
	(void)smig_msg_get_enrol_chal(f, &ec);
	(void)smig_msg_get_enrol_proof(f, cred);
	{
		uint8_t which;
		const uint8_t *data;
		size_t dlen;

		(void)smig_msg_get_attest_log(f, &which, &data, &dlen);
		(void)smig_msg_get_verdict(f, &text, &len);
	}
	{
		struct smig_reserve r;
		struct smig_reserved a;

		(void)smig_msg_get_reserve(f, &r);
		(void)smig_msg_get_reserved(f, &a);
	}
	{
		struct smig_mig_channel c;

		(void)smig_msg_get_mig_channel(f, SMIG_MSG_MIG_CHANNEL, &c);
		(void)smig_msg_get_mig_channel(f, SMIG_MSG_MIG_CHANNEL_OK, &c);
	}
	(void)smig_msg_get_mig_prepare(f, &mp);
	(void)smig_msg_get_mig_commit_req(f, &cr);
	(void)smig_msg_get_mig_abort(f, &ab);
	(void)smig_msg_get_mig_settled(f, &st);
	(void)smig_msg_get_mig_id(f, f->type, &id);
	(void)smig_msg_get_mig_ready(f, &id, &prot);
	(void)smig_msg_get_hello(f, &h);
	(void)smig_msg_get_ping(f, SMIG_MSG_PING, &p);
	(void)smig_msg_get_ping(f, SMIG_MSG_PONG, &p);
	(void)smig_msg_get_error(f, &e);
	(void)smig_msg_get_bye(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smig_buf rx;
	struct smig_frame f;

	if (smig_frame_parse(data, size, &f) == 0)
		decode(&f);
	smig_buf_view(&rx, data, size);
	while (smig_frame_next(&rx, &f) == 0)
		decode(&f);
	return 0;
}
