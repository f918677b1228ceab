/*
 * peer_resv.c - capacity held ahead of a migration (peer.h, peer_reserve).
 *
 * An evacuation places each VM on a host that holds its memory and vCPUs
 * for it, never on the free memory a peer says it has: the source opens a
 * session of its own, both ends attest each other as on every session,
 * and the source sends RESERVE (the VM, what it needs, for how long). The
 * destination's admission control (vm_res_hold) answers RESERVED, held
 * or not and why, and holds what it granted until that VM's PREPARE from
 * this source takes it, the source lets it go (RESERVE with release), or
 * the time is up (at most RESV_HOLD_MAX_S). One RESERVE per session, and
 * only once the source's evidence was judged authentic in it; at most
 * VM_HOLDS_PER_HOST holds per source. A source need not be trusted (a
 * host held untrusted may still evacuate), and the policy is not asked
 * (it needs the whole VM spec): PREPARE decides that, as ever. A host in
 * maintenance holds nothing.
 */
#include "peer/peer_int.h"
#include "core/smigd.h"
#include "error.h"
#include "log.h"
#include "msg.h"
#include "trust/trust.h"
#include "vm/vm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESV_HOLD_MAX_S 600

struct peer_resv {
	struct smig_reserve r;
	peer_resv_fn fn;
	void *arg;
	bool sent;
};

/* The destination: one RESERVE, answered at once. */
static int on_reserve(struct peer *p, const struct smig_frame *f, char *why, size_t whylen)
{
	struct smig_reserved a = { 0 };
	struct smig_reserve r;
	int rc;

	if (p->outbound || p->resv_seen || smig_msg_get_reserve(f, &r) < 0) {
		snprintf(why, whylen, "%s", p->outbound ? "RESERVE on a session we opened"
			 : p->resv_seen ? "a second RESERVE in one session" : "bad RESERVE");
		return SMIG_EPROTO;
	}
	p->resv_seen = true;
	if (!p->attested || !p->verdict.authentic) {
		/* its evidence comes before its RESERVE: without it, it is nobody we know */
		snprintf(why, whylen, "RESERVE before authentic evidence");
		return SMIG_EPROTO;
	}
	if (!r.release && attest_maintenance(p->d)->on) {
		a.held = false;
		snprintf(a.reason, sizeof(a.reason), "%s is in maintenance: it takes no VMs",
			 p->d->cfg.host);
	} else if (r.release) {
		a.held = false;
		snprintf(a.reason, sizeof(a.reason), "%s",
			 vm_res_release(p->d, p->name, r.vm) ? "released" : "nothing held");
		smig_info("event=capacity_released from=%s vm=%s", p->name, r.vm);
	} else {
		rc = vm_res_hold(p->d, p->name, r.vm, r.memory_mib, r.vcpus,
				 r.ttl_s < RESV_HOLD_MAX_S ? r.ttl_s : RESV_HOLD_MAX_S, a.reason,
				 sizeof(a.reason));
		a.held = rc == 0;
		if (rc < 0)
			smig_info("event=capacity_refused from=%s vm=%s reason=\"%s\"", p->name, r.vm,
				  a.reason);
	}
	if (smig_msg_put_reserved(&p->tx, &a) < 0) {
		snprintf(why, whylen, "cannot encode RESERVED");
		return SMIG_EPROTO;
	}
	return 0;
}

/* The source: the answer to its RESERVE ends the session. */
static int on_reserved(struct peer *p, const struct smig_frame *f, char *why, size_t whylen)
{
	struct peer_resv *v = p->resv;
	struct smig_reserved a;

	if (!p->outbound || v == NULL || !v->sent || smig_msg_get_reserved(f, &a) < 0) {
		snprintf(why, whylen, "unexpected or bad RESERVED");
		return SMIG_EPROTO;
	}
	p->resv = NULL;
	if (v->fn)
		v->fn(p->d, v->arg, p->name, true, a.held, a.held ? "held" : a.reason);
	free(v);
	(void)smig_msg_put_bye(&p->tx);
	p->closing = true;
	return 0;
}

int peer_resv_frame(struct peer *p, const struct smig_frame *f, char *why, size_t whylen)
{
	if (p->state != PS_READY) {
		snprintf(why, whylen, "%s before HELLO", smig_frame_type_name(f->type));
		return SMIG_EPROTO;
	}
	return f->type == SMIG_MSG_RESERVE ? on_reserve(p, f, why, whylen)
					   : on_reserved(p, f, why, whylen);
}

int peer_resv_send(struct peer *p)
{
	if (p->resv == NULL || p->resv->sent)
		return 0;
	SMIG_GUARD(smig_msg_put_reserve(&p->tx, &p->resv->r));
	p->resv->sent = true;
	return 0;
}

void peer_resv_end(struct peer *p, const char *why)
{
	struct peer_resv *v = p->resv;

	if (v == NULL)
		return;
	p->resv = NULL;
	if (v->fn)
		v->fn(p->d, v->arg, p->name, false, false, why);
	free(v);
}

struct peer_resv *peer_resv_new(const struct smig_reserve *r, peer_resv_fn fn, void *arg)
{
	struct peer_resv *v = calloc(1, sizeof(*v));

	if (v) {
		v->r = *r;
		v->fn = fn;
		v->arg = arg;
	}
	return v;
}
