/*
 * fuzz_migproto.c - a migration's protocol state machine (migproto.h),
 * either role, driven through whole sessions: sequences of frames from a
 * hostile peer mixed with the daemon's own steps.
 *
 * Input (the format smigd's frame trace writes, see migrate.c, so real
 * sessions are the seed corpus):
 *
 *   u8 role (1: source, 0: destination) | id[16] | u64 budget (big-endian)
 *   (a source's id is the one it resolves after a restart, or all zero:
 *   PREPARED brings it)
 *   then records:
 *     'F' header[8] payload[len]  a frame as the peer sent it
 *     'D' header[8]               a DATA frame of that length, payload elided
 *     'S' u8 state                the daemon's own step to that state
 *     'R'                         the destination sent READY
 *
 * The harness answers each accepted frame the way the engine does (COMMIT
 * -> COMMITTING, READY -> COMMITTING, a garbled message after COMMIT ->
 * RESOLVING, ...) and takes only the steps the engine takes by itself from
 * 'S' records. It aborts when the tables disagree with each other (an
 * answer the transition table refuses) or when a frame got through that
 * must not: COMMIT before READY, a COMMIT_REQ whose length is not what was
 * streamed, stream beyond the budget, another migration's ABORT, anything
 * after DONE, a source that ends, or may resume its copy, while COMMIT is
 * unanswered.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "migproto.h"
#include "msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t zeros[SMIG_FRAME_MAX_PAYLOAD];

struct run {
	struct smig_migproto p;
	uint64_t streamed; /* DATA bytes the peer sent while they were taken */
	bool commit_out;   /* source: COMMIT went out */
	bool cleared;      /* ... and the destination said it has no copy */
	bool id_known;     /* source: the id came (PREPARED) or was there (restart) */
};

#define CHECK(c)                                                                  \
	do {                                                                      \
		if (!(c)) {                                                       \
			fprintf(stderr, "fuzz_migproto: %s (state %s)\n", #c,     \
				smig_mst_names[r->p.state]);                      \
			abort();                                                  \
		}                                                                 \
	} while (0)

static uint64_t get_be64(const uint8_t *b)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | b[i];
	return v;
}

/* The engine's answer: a step the transition table must have. */
static void step(struct run *r, enum smig_mst to)
{
	CHECK(smig_migproto_to(&r->p, to) == 0);
}

/* How the engine ends a migration that failed in its current state. */
static void fail(struct run *r)
{
	/* a source failing before COMMIT resumes its copy; after, only if cleared */
	if (r->p.source && r->p.state <= SMIG_MST_COMMIT_WAIT)
		CHECK(smig_migproto_may_resume(&r->p) && (!r->commit_out || r->cleared));
	if (r->p.source && r->p.state == SMIG_MST_COMMITTING) {
		/* COMMIT out: never simply over */
		CHECK(smig_migproto_to(&r->p, SMIG_MST_DONE) < 0);
		step(r, SMIG_MST_RESOLVING);
	} else if (r->p.source && r->p.state == SMIG_MST_RESOLVING) {
		return; /* asks again */
	} else if (r->p.state != SMIG_MST_DONE) {
		step(r, SMIG_MST_DONE);
	}
}

static void answer(struct run *r, enum smig_mig_in in, const struct smig_frame *f,
		   const struct smig_mig_in_msg *m)
{
	struct smig_mig_abort ab;
	struct smig_mig_commit_req cr;
	struct smig_mig_id id;
	bool unset = smig_mig_id_zero(&r->p.id);

	switch (in) {
	case SMIG_IN_DATA:
		CHECK(!r->p.source && r->p.state == SMIG_MST_STREAMING);
		CHECK(r->streamed == r->p.bytes && r->p.bytes <= r->p.budget);
		return;
	case SMIG_IN_COMMIT_REQ:
		CHECK(smig_msg_get_mig_commit_req(f, &cr) == 0 && smig_mig_id_eq(&cr.id, &r->p.id));
		CHECK(cr.bytes == r->streamed && cr.bytes == r->p.bytes);
		step(r, SMIG_MST_COMMIT_WAIT);
		return;
	case SMIG_IN_COMMIT:
		CHECK(r->p.ready_sent && r->p.state == SMIG_MST_COMMIT_WAIT);
		CHECK(smig_msg_get_mig_id(f, f->type, &id) == 0 && smig_mig_id_eq(&id, &r->p.id));
		step(r, SMIG_MST_COMMITTING);
		return;
	case SMIG_IN_ABORT:
		CHECK(smig_msg_get_mig_abort(f, &ab) == 0);
		/* this migration's id; the unset one only before the source could know it */
		CHECK(smig_mig_id_eq(&ab.id, &r->p.id) ||
		      (r->p.source && unset && !smig_mig_id_zero(&ab.id)) ||
		      (!r->p.source && smig_mig_id_zero(&ab.id) &&
		       r->p.state <= SMIG_MST_STREAMING));
		if (r->p.source && r->p.state == SMIG_MST_COMMITTING) {
			r->cleared = true;
			step(r, SMIG_MST_COMMIT_WAIT); /* the destination discarded its copy */
		}
		fail(r);
		return;
	case SMIG_IN_PREPARED:
		/* once, and the id taken is the one PREPARED carries */
		CHECK(r->p.source && !r->id_known && !smig_mig_id_zero(&r->p.id));
		CHECK(smig_msg_get_mig_id(f, f->type, &id) == 0 && smig_mig_id_eq(&id, &r->p.id));
		r->id_known = true;
		step(r, SMIG_MST_STREAMING);
		return;
	case SMIG_IN_READY:
		CHECK(r->p.source && r->p.state == SMIG_MST_COMMIT_WAIT);
		step(r, SMIG_MST_COMMITTING);
		r->commit_out = true;
		return;
	case SMIG_IN_COMMITTED:
		step(r, SMIG_MST_SETTLING);
		return;
	case SMIG_IN_SETTLED:
		CHECK(m->fate <= SMIG_GUEST_UNRESPONSIVE);
		step(r, SMIG_MST_DONE);
		return;
	case SMIG_IN_OUTCOME:
		CHECK(r->p.state == SMIG_MST_RESOLVING && m->outcome <= SMIG_OUTCOME_PENDING);
		r->cleared = m->outcome == SMIG_OUTCOME_NOT_HERE ||
			     m->outcome == SMIG_OUTCOME_DISCARDED;
		CHECK(smig_migproto_may_resume(&r->p) == r->cleared);
		if (m->outcome != SMIG_OUTCOME_PENDING)
			step(r, SMIG_MST_DONE);
		return;
	case SMIG_IN_VIOLATION:
	case SMIG_IN_BAD:
	case SMIG_IN_WRONG_ID:
	case SMIG_IN_OVER_BUDGET:
	case SMIG_IN_WRONG_LENGTH:
		fail(r); /* after COMMITTED: the guest's fate unknown; resolving: asked again */
		return;
	}
	CHECK(!"an answer kind the engine does not know");
}

static void frame(struct run *r, const struct smig_frame *f)
{
	struct smig_mig_in_msg m;
	enum smig_mst before = r->p.state;
	bool was_ready = r->p.ready_sent;
	enum smig_mig_in in;

	if (f->type == SMIG_MSG_MIG_DATA && before == SMIG_MST_STREAMING && !r->p.source)
		r->streamed += f->len;
	in = smig_migproto_rx(&r->p, f, &m);
	CHECK(r->p.state == before && r->p.ready_sent == was_ready);
	CHECK(m.text[sizeof(m.text) - 1] == '\0');
	if (before == SMIG_MST_DONE || f->type < SMIG_MSG_MIG_PREPARE ||
	    f->type > SMIG_MSG_MIG_OUTCOME || f->type == SMIG_MSG_MIG_PREPARE ||
	    f->type == SMIG_MSG_MIG_QUERY)
		CHECK(in == SMIG_IN_VIOLATION);
	if (in == SMIG_IN_OVER_BUDGET)
		CHECK(r->p.bytes > r->p.budget);
	answer(r, in, f, &m);
}

/* 'S': a step the engine takes by itself (the others answer frames). */
static void local_step(struct run *r, uint8_t to)
{
	static const unsigned dst_own = 1u << SMIG_MST_PREPARING | 1u << SMIG_MST_STREAMING |
					1u << SMIG_MST_SETTLING | 1u << SMIG_MST_DONE;
	static const unsigned src_own = 1u << SMIG_MST_PREPARING | 1u << SMIG_MST_COMMIT_WAIT |
					1u << SMIG_MST_DONE;

	if (to >= SMIG_MST_COUNT || !((r->p.source ? src_own : dst_own) & (1u << to)))
		return;
	if (to == SMIG_MST_DONE) {
		fail(r); /* a failure of the engine's own (QEMU, disk, timer) */
		return;
	}
	if (r->p.source && to == SMIG_MST_COMMIT_WAIT && r->p.state != SMIG_MST_STREAMING)
		return;
	if (!r->p.source && to == SMIG_MST_SETTLING && r->p.state != SMIG_MST_COMMITTING)
		return;
	(void)smig_migproto_to(&r->p, to); /* refused: not a step the engine takes from here */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run run, *r = &run;
	size_t off = 1 + SMIG_MIG_ID_LEN + 8;
	struct smig_mig_id id;

	if (size < off)
		return 0;
	memset(r, 0, sizeof(*r));
	memcpy(id.b, data + 1, SMIG_MIG_ID_LEN);
	smig_migproto_init(&r->p, data[0] & 1, (data[0] & 1) ? NULL : &id);
	if (data[0] & 1)
		r->p.id = id; /* a restarted source resolving the commit it found */
	r->id_known = (data[0] & 1) && !smig_mig_id_zero(&id);
	r->p.budget = get_be64(data + 1 + SMIG_MIG_ID_LEN);
	while (off < size) {
		uint8_t op = data[off++];
		struct smig_frame f;
		uint32_t len;
		uint8_t type;

		if (op == 'S' && off < size) {
			local_step(r, data[off++]);
		} else if (op == 'R') {
			if (!r->p.source && r->p.state == SMIG_MST_COMMIT_WAIT && !r->p.ready_sent)
				CHECK(smig_migproto_ready_sent(&r->p) == 0);
			else
				CHECK(smig_migproto_ready_sent(&r->p) < 0);
		} else if ((op == 'F' || op == 'D') && size - off >= SMIG_FRAME_HDR_LEN) {
			if (smig_frame_header(data + off, SMIG_FRAME_HDR_LEN, &type, &len) < 0)
				break; /* the framing layer closes the connection */
			off += SMIG_FRAME_HDR_LEN;
			f.type = type;
			f.len = len;
			if (op == 'D') {
				if (type != SMIG_MSG_MIG_DATA)
					break;
				f.payload = zeros;
			} else {
				if (size - off < len)
					break;
				f.payload = data + off;
				off += len;
			}
			frame(r, &f);
		} else {
			break;
		}
		if (r->p.state == SMIG_MST_DONE)
			CHECK(smig_migproto_to(&r->p, SMIG_MST_DONE) < 0);
		/* the source's copy never runs again while COMMIT is unanswered */
		if (r->p.source && r->p.state != SMIG_MST_DONE && r->commit_out && !r->cleared)
			CHECK(!smig_migproto_may_resume(&r->p));
	}
	return 0;
}
