/*
 * migproto.c - which frame each state of a migration takes, and which
 * state follows which. Two small tables say it; the rest decodes and
 * checks what the tables let through.
 */
#include "migproto.h"

#include <stdio.h>
#include <string.h>

#include "error.h"

const char *const smig_mst_names[SMIG_MST_COUNT] = {
	"connecting", "preparing", "streaming", "commit-wait",
	"committing", "settling",  "resolving", "done",
};

#define ST(s) (1u << SMIG_MST_##s)
#define BEFORE_COMMIT (ST(CONNECTING) | ST(PREPARING) | ST(STREAMING) | ST(COMMIT_WAIT))

/*
 * legal[role][from]: the states `from` may move to. A source leaves
 * COMMITTING only for SETTLING (COMMITTED), COMMIT_WAIT (the destination's
 * ABORT: it discarded its copy first) or RESOLVING (anything else); it
 * never simply ends there, since the destination may be running the VM.
 */
static const unsigned legal[2][SMIG_MST_COUNT] = {
	[0] = {
		/* destination */
		[SMIG_MST_CONNECTING] = ST(PREPARING) | ST(DONE),
		[SMIG_MST_PREPARING] = ST(STREAMING) | ST(DONE),
		[SMIG_MST_STREAMING] = ST(COMMIT_WAIT) | ST(DONE),
		[SMIG_MST_COMMIT_WAIT] = ST(COMMITTING) | ST(DONE),
		/* DONE: the copy is discarded before the guest ran (resume failed, no record) */
		[SMIG_MST_COMMITTING] = ST(SETTLING) | ST(DONE),
		[SMIG_MST_SETTLING] = ST(DONE),
	},
	[1] = {
		/* source; CONNECTING -> RESOLVING: a pending commit found after a restart */
		[SMIG_MST_CONNECTING] = ST(PREPARING) | ST(RESOLVING) | ST(DONE),
		[SMIG_MST_PREPARING] = ST(STREAMING) | ST(DONE),
		[SMIG_MST_STREAMING] = ST(COMMIT_WAIT) | ST(DONE),
		[SMIG_MST_COMMIT_WAIT] = ST(COMMITTING) | ST(DONE),
		[SMIG_MST_COMMITTING] = ST(SETTLING) | ST(COMMIT_WAIT) | ST(RESOLVING),
		[SMIG_MST_SETTLING] = ST(DONE),
		[SMIG_MST_RESOLVING] = ST(DONE),
	},
};

/* allowed[role][frame type - PREPARE]: the states that take it. */
#define MIG_FIRST SMIG_MSG_MIG_PREPARE
#define MIG_LAST SMIG_MSG_MIG_OUTCOME
static const unsigned allowed[2][MIG_LAST - MIG_FIRST + 1] = {
	[0] = {
		[SMIG_MSG_MIG_DATA - MIG_FIRST] = ST(STREAMING),
		[SMIG_MSG_MIG_COMMIT_REQ - MIG_FIRST] = ST(STREAMING),
		[SMIG_MSG_MIG_COMMIT - MIG_FIRST] = ST(COMMIT_WAIT),
		[SMIG_MSG_MIG_ABORT - MIG_FIRST] = BEFORE_COMMIT | ST(COMMITTING) | ST(SETTLING),
	},
	[1] = {
		[SMIG_MSG_MIG_PREPARED - MIG_FIRST] = ST(PREPARING),
		[SMIG_MSG_MIG_READY - MIG_FIRST] = ST(COMMIT_WAIT),
		[SMIG_MSG_MIG_COMMITTED - MIG_FIRST] = ST(COMMITTING),
		[SMIG_MSG_MIG_SETTLED - MIG_FIRST] = ST(SETTLING),
		[SMIG_MSG_MIG_ABORT - MIG_FIRST] = BEFORE_COMMIT | ST(COMMITTING) | ST(SETTLING),
		[SMIG_MSG_MIG_OUTCOME - MIG_FIRST] = ST(RESOLVING),
	},
};

void smig_migproto_init(struct smig_migproto *p, bool source, const struct smig_mig_id *id)
{
	memset(p, 0, sizeof(*p));
	p->source = source;
	if (id)
		p->id = *id;
	p->state = SMIG_MST_CONNECTING;
	p->outcome = -1;
}

bool smig_migproto_legal(bool source, enum smig_mst from, enum smig_mst to)
{
	if ((unsigned)from >= SMIG_MST_COUNT || (unsigned)to >= SMIG_MST_COUNT)
		return false;
	return (legal[source][from] & (1u << to)) != 0;
}

int smig_migproto_to(struct smig_migproto *p, enum smig_mst to)
{
	SMIG_ENSURE(smig_migproto_legal(p->source, p->state, to), SMIG_EPROTO);
	/* back from COMMITTING only on the destination's word that it discarded */
	SMIG_ENSURE(!(p->source && p->state == SMIG_MST_COMMITTING && to == SMIG_MST_COMMIT_WAIT) ||
			    p->abort_heard,
		    SMIG_EPROTO);
	p->state = to;
	return 0;
}

int smig_migproto_ready_sent(struct smig_migproto *p)
{
	SMIG_ENSURE(!p->source && p->state == SMIG_MST_COMMIT_WAIT && !p->ready_sent, SMIG_EPROTO);
	p->ready_sent = true;
	return 0;
}

bool smig_migproto_may_resume(const struct smig_migproto *p)
{
	if (!p->source)
		return false;
	if (p->state <= SMIG_MST_COMMIT_WAIT)
		return true;
	return p->state == SMIG_MST_RESOLVING &&
	       (p->outcome == SMIG_OUTCOME_NOT_HERE || p->outcome == SMIG_OUTCOME_DISCARDED);
}

static bool frame_allowed(const struct smig_migproto *p, uint8_t type)
{
	if (type < MIG_FIRST || type > MIG_LAST)
		return false;
	if (!p->source && type == SMIG_MSG_MIG_COMMIT && !p->ready_sent)
		return false; /* COMMIT answers READY, never comes before it */
	return (allowed[p->source][type - MIG_FIRST] & (1u << p->state)) != 0;
}

static enum smig_mig_in bad(struct smig_mig_in_msg *out, const char *what, uint8_t type)
{
	snprintf(out->text, sizeof(out->text), "%s %s", what, smig_frame_type_name(type));
	return SMIG_IN_BAD;
}

/* A well-formed message whose id is not this migration's. */
static enum smig_mig_in wrong_id(struct smig_mig_in_msg *out, const struct smig_mig_id *id,
				 uint8_t type)
{
	char ids[SMIG_MIG_ID_STR_LEN];

	smig_mig_id_format(id, ids);
	snprintf(out->text, sizeof(out->text), "%s for another migration (id %s)",
		 smig_frame_type_name(type), ids);
	return SMIG_IN_WRONG_ID;
}

static enum smig_mig_in rx_data(struct smig_migproto *p, const struct smig_frame *f,
				struct smig_mig_in_msg *out)
{
	p->bytes += f->len;
	if (p->bytes > p->budget) {
		snprintf(out->text, sizeof(out->text), "stream larger than the VM allows (%llu bytes)",
			 (unsigned long long)p->bytes);
		return SMIG_IN_OVER_BUDGET;
	}
	return SMIG_IN_DATA;
}

static enum smig_mig_in rx_commit_req(struct smig_migproto *p, const struct smig_frame *f,
				      struct smig_mig_in_msg *out)
{
	struct smig_mig_commit_req cr;

	if (smig_msg_get_mig_commit_req(f, &cr) < 0)
		return bad(out, "malformed", f->type);
	if (!smig_mig_id_eq(&cr.id, &p->id))
		return wrong_id(out, &cr.id, f->type);
	if (cr.bytes != p->bytes) {
		out->claimed = cr.bytes;
		snprintf(out->text, sizeof(out->text), "stream length differs: sent %llu, got %llu",
			 (unsigned long long)cr.bytes, (unsigned long long)p->bytes);
		return SMIG_IN_WRONG_LENGTH;
	}
	return SMIG_IN_COMMIT_REQ;
}

static enum smig_mig_in rx_id_only(const struct smig_migproto *p, const struct smig_frame *f,
				   struct smig_mig_in_msg *out, enum smig_mig_in kind)
{
	struct smig_mig_id id;

	if (smig_msg_get_mig_id(f, f->type, &id) < 0)
		return bad(out, "malformed", f->type);
	if (!smig_mig_id_eq(&id, &p->id))
		return wrong_id(out, &id, f->type);
	return kind;
}

/* Source: PREPARED names the id the destination chose; from now on, only that one. */
static enum smig_mig_in rx_prepared(struct smig_migproto *p, const struct smig_frame *f,
				    struct smig_mig_in_msg *out)
{
	struct smig_mig_id id;

	if (smig_msg_get_mig_id(f, f->type, &id) < 0 || smig_mig_id_zero(&id))
		return bad(out, "malformed", f->type);
	if (!smig_mig_id_zero(&p->id))
		return wrong_id(out, &id, f->type);
	p->id = id;
	return SMIG_IN_PREPARED;
}

/*
 * Whether an ABORT's id is this migration's: the source takes the
 * destination's refusal of PREPARE before it knows the id; the destination
 * takes the source's ABORT with the unset id until the source has had
 * PREPARED (it may cross it).
 */
static bool abort_id_ok(const struct smig_migproto *p, const struct smig_mig_id *id)
{
	if (p->source && smig_mig_id_zero(&p->id))
		return !smig_mig_id_zero(id);
	if (!p->source && smig_mig_id_zero(id))
		return p->state <= SMIG_MST_STREAMING;
	return smig_mig_id_eq(id, &p->id);
}

static enum smig_mig_in rx_source(struct smig_migproto *p, const struct smig_frame *f,
				  struct smig_mig_in_msg *out)
{
	struct smig_mig_settled st;
	struct smig_mig_id id;

	switch (f->type) {
	case SMIG_MSG_MIG_PREPARED:
		return rx_prepared(p, f, out);
	case SMIG_MSG_MIG_COMMITTED:
		return rx_id_only(p, f, out, SMIG_IN_COMMITTED);
	case SMIG_MSG_MIG_READY:
		if (smig_msg_get_mig_ready(f, &id, &out->offered) < 0)
			return bad(out, "malformed", f->type);
		if (!smig_mig_id_eq(&id, &p->id))
			return wrong_id(out, &id, f->type);
		return SMIG_IN_READY;
	case SMIG_MSG_MIG_SETTLED:
		if (smig_msg_get_mig_settled(f, &st) < 0)
			return bad(out, "malformed", f->type);
		if (!smig_mig_id_eq(&st.id, &p->id))
			return wrong_id(out, &st.id, f->type);
		out->fate = st.fate;
		snprintf(out->text, sizeof(out->text), "%s", st.detail);
		return SMIG_IN_SETTLED;
	default: /* OUTCOME */
		if (smig_msg_get_mig_outcome(f, &id, &out->outcome) < 0)
			return bad(out, "malformed", f->type);
		if (!smig_mig_id_eq(&id, &p->id))
			return wrong_id(out, &id, f->type);
		p->outcome = out->outcome;
		return SMIG_IN_OUTCOME;
	}
}

enum smig_mig_in smig_migproto_rx(struct smig_migproto *p, const struct smig_frame *f,
				  struct smig_mig_in_msg *out)
{
	struct smig_mig_abort ab;

	memset(out, 0, sizeof(*out));
	if (!frame_allowed(p, f->type)) {
		snprintf(out->text, sizeof(out->text), "unexpected %s while %s",
			 smig_frame_type_name(f->type), smig_mst_names[p->state]);
		return SMIG_IN_VIOLATION;
	}
	if (f->type == SMIG_MSG_MIG_ABORT) {
		/*
		 * An ABORT that is not this migration's says nothing: after COMMIT
		 * only a real one lets the source resume its copy.
		 */
		if (smig_msg_get_mig_abort(f, &ab) < 0)
			return bad(out, "malformed", f->type);
		if (!abort_id_ok(p, &ab.id))
			return wrong_id(out, &ab.id, f->type);
		out->code = ab.code;
		snprintf(out->text, sizeof(out->text), "%s", ab.reason);
		if (p->source && p->state == SMIG_MST_COMMITTING)
			p->abort_heard = true;
		return SMIG_IN_ABORT;
	}
	if (p->source)
		return rx_source(p, f, out);
	if (f->type == SMIG_MSG_MIG_DATA)
		return rx_data(p, f, out);
	if (f->type == SMIG_MSG_MIG_COMMIT_REQ)
		return rx_commit_req(p, f, out);
	return rx_id_only(p, f, out, SMIG_IN_COMMIT);
}
