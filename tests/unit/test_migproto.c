/*
 * test_migproto.c - a migration's protocol state machine: whole sessions
 * for both roles, and the frames and steps it must refuse.
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
#include "migproto.h"
#include "msg.h"

#define ID 0x1122334455667788ull

/* A 128-bit id whose low 64 bits are v (the tests' ids differ there). */
static struct smig_mig_id mk(uint64_t v)
{
	struct smig_mig_id id = { { 0xa5, 0x5a, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06 } };

	for (int i = 0; i < 8; i++)
		id.b[8 + i] = (uint8_t)(v >> (56 - 8 * i));
	return id;
}

static const struct smig_mig_id *idp(uint64_t v)
{
	static struct smig_mig_id ring[4];
	static unsigned n;
	struct smig_mig_id *id = &ring[n++ % 4];

	*id = mk(v);
	return id;
}

/* Frames are built by the real encoders into one buffer and read back. */
static struct smig_buf wire;

static const struct smig_frame *next_frame(void)
{
	static struct smig_frame f;

	assert_int_equal(smig_frame_next(&wire, &f), 0);
	return &f;
}

static const struct smig_frame *id_frame(uint8_t type, uint64_t id)
{
	assert_int_equal(smig_msg_put_mig_id(&wire, type, idp(id)), 0);
	return next_frame();
}

static const struct smig_frame *data_frame(uint32_t len)
{
	static uint8_t zeros[4096];

	assert_true(len <= sizeof(zeros));
	assert_int_equal(smig_frame_put(&wire, SMIG_MSG_MIG_DATA, zeros, len), 0);
	return next_frame();
}

static const struct smig_frame *commit_req(uint64_t id, uint64_t bytes)
{
	struct smig_mig_commit_req cr = { .id = mk(id), .bytes = bytes };

	assert_int_equal(smig_msg_put_mig_commit_req(&wire, &cr), 0);
	return next_frame();
}

static const struct smig_frame *abort_frame(uint64_t id)
{
	struct smig_mig_abort ab = { .code = 5 };

	if (id)
		ab.id = mk(id);

	snprintf(ab.reason, sizeof(ab.reason), "no room");
	assert_int_equal(smig_msg_put_mig_abort(&wire, &ab), 0);
	return next_frame();
}

static enum smig_mig_in rx(struct smig_migproto *p, const struct smig_frame *f)
{
	struct smig_mig_in_msg m;

	return smig_migproto_rx(p, f, &m);
}

static int setup(void **state)
{
	(void)state;
	smig_buf_init(&wire, (size_t)2 * SMIG_FRAME_MAX_PAYLOAD);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	smig_buf_clear(&wire);
	return 0;
}

/* A destination in STREAMING with a budget of 10000 bytes. */
static void dst_streaming(struct smig_migproto *p)
{
	smig_migproto_init(p, false, idp(ID));
	p->budget = 10000;
	assert_int_equal(smig_migproto_to(p, SMIG_MST_PREPARING), 0);
	assert_int_equal(smig_migproto_to(p, SMIG_MST_STREAMING), 0);
}

static void test_destination_session(void **state)
{
	struct smig_migproto p;

	(void)state;
	dst_streaming(&p);
	assert_int_equal(rx(&p, data_frame(3000)), SMIG_IN_DATA);
	assert_int_equal(rx(&p, data_frame(1000)), SMIG_IN_DATA);
	assert_int_equal(p.bytes, 4000);
	/* COMMIT before COMMIT_REQ and READY: a violation */
	assert_int_equal(rx(&p, id_frame(SMIG_MSG_MIG_COMMIT, ID)), SMIG_IN_VIOLATION);
	assert_int_equal(rx(&p, commit_req(ID, 4000)), SMIG_IN_COMMIT_REQ);
	assert_int_equal(smig_migproto_to(&p, SMIG_MST_COMMIT_WAIT), 0);
	/* after COMMIT_REQ, no more stream; COMMIT only once READY is out */
	assert_int_equal(rx(&p, data_frame(10)), SMIG_IN_VIOLATION);
	assert_int_equal(rx(&p, id_frame(SMIG_MSG_MIG_COMMIT, ID)), SMIG_IN_VIOLATION);
	assert_int_equal(smig_migproto_ready_sent(&p), 0);
	assert_int_equal(smig_migproto_ready_sent(&p), SMIG_EPROTO);
	assert_int_equal(rx(&p, id_frame(SMIG_MSG_MIG_COMMIT, ID + 1)), SMIG_IN_WRONG_ID);
	assert_int_equal(smig_frame_put(&wire, SMIG_MSG_MIG_COMMIT, "short", 5), 0);
	assert_int_equal(rx(&p, next_frame()), SMIG_IN_BAD);
	assert_int_equal(rx(&p, id_frame(SMIG_MSG_MIG_COMMIT, ID)), SMIG_IN_COMMIT);
	assert_int_equal(smig_migproto_to(&p, SMIG_MST_COMMITTING), 0);
	assert_int_equal(smig_migproto_to(&p, SMIG_MST_SETTLING), 0);
	assert_int_equal(smig_migproto_to(&p, SMIG_MST_DONE), 0);
	/* DONE takes nothing and goes nowhere */
	assert_int_equal(rx(&p, abort_frame(ID)), SMIG_IN_VIOLATION);
	assert_int_equal(smig_migproto_to(&p, SMIG_MST_DONE), SMIG_EPROTO);
}

static void test_destination_stream_checks(void **state)
{
	struct smig_migproto p;
	struct smig_mig_in_msg m;

	(void)state;
	dst_streaming(&p);
	assert_int_equal(rx(&p, data_frame(4000)), SMIG_IN_DATA);
	assert_int_equal(smig_migproto_rx(&p, commit_req(ID, 4001), &m), SMIG_IN_WRONG_LENGTH);
	assert_int_equal(m.claimed, 4001);
	assert_int_equal(rx(&p, commit_req(ID + 1, 4000)), SMIG_IN_WRONG_ID);
	assert_int_equal(rx(&p, data_frame(4000)), SMIG_IN_DATA);
	assert_int_equal(smig_migproto_rx(&p, data_frame(2001), &m), SMIG_IN_OVER_BUDGET);
	assert_non_null(strstr(m.text, "10001"));
	/* the source's messages, PREPARE again, a QUERY: not a destination's to take */
	dst_streaming(&p);
	assert_int_equal(smig_msg_put_mig_ready(&wire, idp(ID), 0xf), 0);
	assert_int_equal(rx(&p, next_frame()), SMIG_IN_VIOLATION);
	assert_int_equal(rx(&p, id_frame(SMIG_MSG_MIG_COMMITTED, ID)), SMIG_IN_VIOLATION);
	assert_int_equal(rx(&p, id_frame(SMIG_MSG_MIG_QUERY, ID)), SMIG_IN_VIOLATION);
	assert_int_equal(rx(&p, abort_frame(ID + 1)), SMIG_IN_WRONG_ID);
	assert_int_equal(rx(&p, abort_frame(ID)), SMIG_IN_ABORT);
}

static void test_source_session(void **state)
{
	struct smig_migproto p;
	struct smig_mig_in_msg m;

	(void)state;
	smig_migproto_init(&p, true, NULL);
	assert_true(smig_mig_id_zero(&p.id));
	assert_int_equal(rx(&p, id_frame(SMIG_MSG_MIG_PREPARED, ID)), SMIG_IN_VIOLATION);
	assert_int_equal(smig_migproto_to(&p, SMIG_MST_PREPARING), 0);
	/* the id is the destination's: PREPARED brings it, and never the unset one */
	assert_int_equal(smig_msg_put_mig_id(&wire, SMIG_MSG_MIG_PREPARED, &(struct smig_mig_id){ { 0 } }),
			 0);
	assert_int_equal(rx(&p, next_frame()), SMIG_IN_BAD);
	assert_int_equal(rx(&p, id_frame(SMIG_MSG_MIG_PREPARED, ID)), SMIG_IN_PREPARED);
	assert_true(smig_mig_id_eq(&p.id, idp(ID)));
	assert_int_equal(smig_migproto_to(&p, SMIG_MST_STREAMING), 0);
	/* from now on another id is refused, PREPARED again is out of order */
	assert_int_equal(rx(&p, id_frame(SMIG_MSG_MIG_PREPARED, ID + 1)), SMIG_IN_VIOLATION);
	assert_int_equal(rx(&p, abort_frame(0)), SMIG_IN_WRONG_ID);
	assert_int_equal(rx(&p, abort_frame(ID + 1)), SMIG_IN_WRONG_ID);
	assert_int_equal(rx(&p, data_frame(8)), SMIG_IN_VIOLATION);
	assert_int_equal(smig_migproto_to(&p, SMIG_MST_COMMIT_WAIT), 0);
	assert_int_equal(smig_msg_put_mig_ready(&wire, idp(ID), 0xf), 0);
	assert_int_equal(smig_migproto_rx(&p, next_frame(), &m), SMIG_IN_READY);
	assert_int_equal(m.offered, 0xf);
	assert_true(smig_migproto_may_resume(&p));
	assert_int_equal(smig_migproto_to(&p, SMIG_MST_COMMITTING), 0);
	/* COMMIT is out: the source never just ends, nor runs its copy again */
	assert_int_equal(smig_migproto_to(&p, SMIG_MST_DONE), SMIG_EPROTO);
	assert_false(smig_migproto_may_resume(&p));
	assert_int_equal(smig_migproto_to(&p, SMIG_MST_COMMIT_WAIT), SMIG_EPROTO);
	assert_int_equal(rx(&p, abort_frame(ID + 1)), SMIG_IN_WRONG_ID);
	assert_int_equal(smig_migproto_to(&p, SMIG_MST_COMMIT_WAIT), SMIG_EPROTO);
	assert_int_equal(rx(&p, id_frame(SMIG_MSG_MIG_COMMITTED, ID)), SMIG_IN_COMMITTED);
	assert_int_equal(smig_migproto_to(&p, SMIG_MST_SETTLING), 0);
	assert_false(smig_migproto_may_resume(&p));
	assert_int_equal(smig_migproto_to(&p, SMIG_MST_DONE), 0);
}

/* The destination's own ABORT after COMMIT: it discarded its copy, ours may run. */
static void test_source_abort_after_commit(void **state)
{
	struct smig_migproto p;

	(void)state;
	smig_migproto_init(&p, true, NULL);
	assert_int_equal(smig_migproto_to(&p, SMIG_MST_PREPARING), 0);
	assert_int_equal(rx(&p, id_frame(SMIG_MSG_MIG_PREPARED, ID)), SMIG_IN_PREPARED);
	assert_int_equal(smig_migproto_to(&p, SMIG_MST_STREAMING), 0);
	assert_int_equal(smig_migproto_to(&p, SMIG_MST_COMMIT_WAIT), 0);
	assert_int_equal(smig_migproto_to(&p, SMIG_MST_COMMITTING), 0);
	assert_int_equal(rx(&p, abort_frame(ID)), SMIG_IN_ABORT);
	assert_int_equal(smig_migproto_to(&p, SMIG_MST_COMMIT_WAIT), 0);
	assert_true(smig_migproto_may_resume(&p));
}

static void test_source_resolving(void **state)
{
	struct smig_migproto p;
	struct smig_mig_in_msg m;

	(void)state;
	smig_migproto_init(&p, true, NULL);
	p.id = mk(ID); /* after a restart: from commit.pending */
	/* after a restart: a commit found pending */
	assert_int_equal(smig_migproto_to(&p, SMIG_MST_RESOLVING), 0);
	assert_false(smig_migproto_may_resume(&p));
	assert_int_equal(rx(&p, id_frame(SMIG_MSG_MIG_COMMITTED, ID)), SMIG_IN_VIOLATION);
	assert_int_equal(smig_msg_put_mig_outcome(&wire, idp(ID), SMIG_OUTCOME_PENDING), 0);
	assert_int_equal(rx(&p, next_frame()), SMIG_IN_OUTCOME);
	assert_false(smig_migproto_may_resume(&p));
	assert_int_equal(smig_msg_put_mig_outcome(&wire, idp(ID + 1), SMIG_OUTCOME_COMMITTED), 0);
	assert_int_equal(rx(&p, next_frame()), SMIG_IN_WRONG_ID);
	assert_int_equal(smig_msg_put_mig_outcome(&wire, idp(ID), SMIG_OUTCOME_DISCARDED), 0);
	assert_int_equal(smig_migproto_rx(&p, next_frame(), &m), SMIG_IN_OUTCOME);
	assert_int_equal(m.outcome, SMIG_OUTCOME_DISCARDED);
	assert_true(smig_migproto_may_resume(&p));
	assert_int_equal(smig_migproto_to(&p, SMIG_MST_STREAMING), SMIG_EPROTO);
	assert_int_equal(smig_migproto_to(&p, SMIG_MST_DONE), 0);
}

/* Before the source has PREPARED, ABORTs cross without the id. */
static void test_abort_before_id(void **state)
{
	struct smig_migproto p;
	struct smig_mig_in_msg m;

	(void)state;
	/* the destination refuses PREPARE: its ABORT names its id, unknown to the source */
	smig_migproto_init(&p, true, NULL);
	assert_int_equal(smig_migproto_to(&p, SMIG_MST_PREPARING), 0);
	assert_int_equal(rx(&p, abort_frame(0)), SMIG_IN_WRONG_ID);
	assert_int_equal(smig_migproto_rx(&p, abort_frame(ID), &m), SMIG_IN_ABORT);
	assert_string_equal(m.text, "no room");
	/* the source cancels before it had PREPARED: the destination takes the unset id */
	smig_migproto_init(&p, false, idp(ID));
	assert_int_equal(smig_migproto_to(&p, SMIG_MST_PREPARING), 0);
	assert_int_equal(rx(&p, abort_frame(0)), SMIG_IN_ABORT);
	assert_int_equal(smig_migproto_to(&p, SMIG_MST_STREAMING), 0);
	assert_int_equal(rx(&p, abort_frame(0)), SMIG_IN_ABORT);
	assert_int_equal(rx(&p, abort_frame(ID + 1)), SMIG_IN_WRONG_ID);
	/* once the stream is complete the source knows the id: the unset one is refused */
	assert_int_equal(rx(&p, commit_req(ID, 0)), SMIG_IN_COMMIT_REQ);
	assert_int_equal(smig_migproto_to(&p, SMIG_MST_COMMIT_WAIT), 0);
	assert_int_equal(rx(&p, abort_frame(0)), SMIG_IN_WRONG_ID);
	assert_int_equal(rx(&p, abort_frame(ID)), SMIG_IN_ABORT);
}

static void test_transitions(void **state)
{
	(void)state;
	/* no state goes back to CONNECTING; DONE goes nowhere */
	for (int from = 0; from < SMIG_MST_COUNT; from++) {
		assert_false(smig_migproto_legal(true, from, SMIG_MST_CONNECTING));
		assert_false(smig_migproto_legal(false, from, SMIG_MST_CONNECTING));
		assert_false(smig_migproto_legal(true, SMIG_MST_DONE, from));
		assert_false(smig_migproto_legal(false, SMIG_MST_DONE, from));
		assert_false(smig_migproto_legal(false, from, SMIG_MST_RESOLVING));
	}
	assert_false(smig_migproto_legal(true, SMIG_MST_COMMITTING, SMIG_MST_DONE));
	assert_true(smig_migproto_legal(true, SMIG_MST_COMMITTING, SMIG_MST_RESOLVING));
	assert_true(smig_migproto_legal(false, SMIG_MST_COMMITTING, SMIG_MST_DONE));
	assert_false(smig_migproto_legal(true, SMIG_MST_COUNT, SMIG_MST_DONE));
	assert_string_equal(smig_mst_names[SMIG_MST_COMMIT_WAIT], "commit-wait");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_destination_session, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destination_stream_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_source_session, setup, teardown),
		cmocka_unit_test_setup_teardown(test_source_abort_after_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_source_resolving, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_before_id, setup, teardown),
		cmocka_unit_test(test_transitions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
