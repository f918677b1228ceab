/*
 * migproto.h - one migration's protocol state machine, for either role.
 *
 * The daemon's migration engine (src/smigd/mig_*.c) keeps one of these per
 * migration. Every frame a peer sends about the migration goes through
 * smig_migproto_rx() first: it decides whether the frame is allowed in the
 * current state, decodes it, checks it names this migration, and on the
 * destination counts the stream against its budget and checks the length
 * COMMIT_REQ claims. Every change of state goes through smig_migproto_to(),
 * which refuses a transition the protocol does not have — above all, a
 * source that sent COMMIT never ends without either COMMITTED, the
 * destination's ABORT, or the destination's answer to a query.
 *
 * Nothing here does I/O; the fuzz target fuzz_migproto drives both roles
 * through sequences of frames. docs/protocol.md ("Migration") is the
 * reference.
 */
#ifndef SMIG_MIGPROTO_H
#define SMIG_MIGPROTO_H

#include "frame.h"
#include "msg.h"

#include <stdbool.h>
#include <stdint.h>

enum smig_mst {
	SMIG_MST_CONNECTING,  /* source: connecting, authenticating; dest: before PREPARE */
	SMIG_MST_PREPARING,   /* PREPARE sent / taken, QEMU not yet listening */
	SMIG_MST_STREAMING,   /* the stream flows */
	SMIG_MST_COMMIT_WAIT, /* COMMIT_REQ sent / taken: waiting for READY / to send it */
	SMIG_MST_COMMITTING,  /* COMMIT sent / taken: the destination resumes the VM */
	SMIG_MST_SETTLING,    /* committed: the destination watches the resumed guest */
	SMIG_MST_RESOLVING,   /* source: COMMIT out, no answer; asking the destination */
	SMIG_MST_DONE,
	SMIG_MST_COUNT
};

extern const char *const smig_mst_names[SMIG_MST_COUNT];

struct smig_migproto {
	bool source;
	enum smig_mst state;
	struct smig_mig_id id; /* the destination's; a source learns it from PREPARED */
	uint64_t bytes;  /* stream bytes relayed (source) or taken (destination) */
	uint64_t budget; /* destination: the most stream bytes it takes */
	bool ready_sent; /* destination: READY is out, COMMIT may come */
	bool abort_heard; /* source: the destination's own ABORT came after COMMIT */
	int outcome;      /* source: the destination's answer to QUERY, -1 none yet */
};

/* What a received frame is, once checked. */
enum smig_mig_in {
	SMIG_IN_VIOLATION,   /* not allowed in this state (why says what) */
	SMIG_IN_BAD,         /* allowed here, but malformed */
	SMIG_IN_WRONG_ID,    /* allowed here, well-formed, for another migration (text names it) */
	SMIG_IN_OVER_BUDGET, /* destination: DATA beyond the budget (the state's bytes count it) */
	SMIG_IN_WRONG_LENGTH, /* destination: COMMIT_REQ claims another length (claimed) */
	SMIG_IN_ABORT,       /* code, text: the peer's reason */
	SMIG_IN_DATA,        /* destination: the frame's payload is stream */
	SMIG_IN_COMMIT_REQ,  /* destination: the whole stream is here */
	SMIG_IN_COMMIT,      /* destination */
	SMIG_IN_PREPARED,    /* source */
	SMIG_IN_READY,       /* source: offered (SMIG_PROT_* the destination kept) */
	SMIG_IN_COMMITTED,   /* source */
	SMIG_IN_SETTLED,     /* source: fate, text (detail) */
	SMIG_IN_OUTCOME,     /* source, resolving: outcome */
};

struct smig_mig_in_msg {
	uint16_t code;
	uint32_t offered;
	uint8_t fate;
	uint8_t outcome;
	uint64_t claimed;
	char text[SMIG_REASON_MAX + 1]; /* the peer's reason or detail, or why it was refused */
};

/* id: the destination's fresh id; NULL for a source (PREPARED brings it). */
void smig_migproto_init(struct smig_migproto *p, bool source, const struct smig_mig_id *id);
/*
 * Checks and decodes f; never changes the state (DATA adds to bytes,
 * PREPARED sets the source's id, a genuine ABORT after COMMIT and an
 * OUTCOME are remembered).
 */
enum smig_mig_in smig_migproto_rx(struct smig_migproto *p, const struct smig_frame *f,
				  struct smig_mig_in_msg *out);
/* Whether the protocol has the transition (for the role). */
bool smig_migproto_legal(bool source, enum smig_mst from, enum smig_mst to);
/* Moves to `to`; SMIG_EPROTO (state unchanged) if the protocol has no such step. */
int smig_migproto_to(struct smig_migproto *p, enum smig_mst to);
/* The destination sent READY: only from COMMIT_WAIT, once. */
int smig_migproto_ready_sent(struct smig_migproto *p);
/*
 * Whether the source's copy may run again: before COMMIT went out, after the
 * destination's own ABORT of it, or once the destination answered that it
 * has no copy (not here, discarded). Never while COMMIT is unanswered.
 */
bool smig_migproto_may_resume(const struct smig_migproto *p);

#endif
