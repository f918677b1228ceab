/*
 * peer_attest.c - mutual attestation on every peer connection.
 *
 * Once the HELLOs are exchanged each side sends ATTEST_REQ with a fresh
 * 32-byte nonce; the other answers with ATTEST: its evidence (attest.c),
 * bound to this TLS session by the RFC 8446 exporter value both ends can
 * compute and nobody else can. The verdict is kept on the connection (a
 * migration's gate) and in the host's state (`smig hosts`, evacuation).
 *
 * Outbound connections wait for the verdict before they do their job: a
 * migration starts only then, a ping answers only then, and a connection
 * opened just to attest the peer closes then.
 */
#include "peer/peer_int.h"
#include "error.h"
#include "log.h"
#include "msg.h"
#include "trust/trust.h"
#include "vm/vm.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void peer_attest_ask(struct peer *p)
{
	if (RAND_bytes(p->att_nonce, sizeof(p->att_nonce)) != 1 ||
	    smig_msg_put_attest_req(&p->tx, p->att_nonce) < 0) {
		peer_abort(p, SMIG_ECRYPTO, "cannot make an attestation request");
		return;
	}
	p->att_asked = true;
}

static int session_binding(const struct peer *p, uint8_t out[SMIG_BINDING_LEN])
{
	return smig_tls_export(p->tls, SMIG_EXPORTER_LABEL, NULL, 0, out, SMIG_BINDING_LEN);
}

static void attested(struct peer *p);

/* The warden's evidence for a request: to the peer that asked, if it is still here. */
static void evidence_done(struct smigd *d, uint32_t id, int rc, const char *text)
{
	struct peer *p = d->peers->head;

	while (p && p->evidence_id != id)
		p = p->next;
	if (p == NULL)
		return; /* the connection went meanwhile */
	p->evidence_id = 0;
	if (rc == 0)
		rc = smig_msg_put_attest(&p->tx, text, strlen(text));
	if (rc < 0) {
		peer_abort(p, rc, "cannot answer ATTEST_REQ: %s", smig_strerror(rc));
	} else if (p->job_waits) {
		p->job_waits = false;
		attested(p); /* its first frame goes after our evidence */
	}
	peer_send_now(p);
}

/*
 * A verifier's request: answered once per session (each answer is a TPM
 * quote), by the warden, while the loop goes on.
 */
static void on_request(struct peer *p, const struct smig_frame *f)
{
	uint8_t nonce[SMIG_NONCE_LEN], binding[SMIG_BINDING_LEN], own_fp[SMIG_FP_LEN];
	int rc = smig_msg_get_attest_req(f, nonce);

	if (rc < 0) {
		peer_abort(p, rc, "bad ATTEST_REQ: %s", smig_strerror(rc));
		return;
	}
	if (p->att_answered) {
		peer_abort(p, SMIG_EPROTO, "a second ATTEST_REQ in one session (one is answered)");
		return;
	}
	p->att_answered = true;
	rc = session_binding(p, binding);
	/* signed by the key of the certificate we showed here, even if a reload replaced it since */
	if (rc == 0)
		rc = smig_tls_own_fp(p->tls, own_fp);
	if (rc == 0)
		rc = attest_evidence_async(p->d, nonce, binding, own_fp, vm_free_mib(p->d),
					   evidence_done, &p->evidence_id);
	if (rc < 0)
		peer_abort(p, rc, "cannot answer ATTEST_REQ: %s", smig_strerror(rc));
}

/* The connection's job, now that the peer's verdict is known. */
static void attested(struct peer *p)
{
	if (!p->outbound)
		return;
	if (p->evidence_id) {
		/*
		 * the peer asked for our evidence and the warden is still quoting:
		 * a PREPARE sent before it would find us unattested
		 */
		p->job_waits = true;
		return;
	}
	if (p->mig) {
		loop_timer_cancel(p->d->loop, p->timer);
		p->timer = NULL;
		p->d->peers->mig.ready(p->mig);
	} else if (p->for_attest) {
		if (ctl_ref_waits(&p->ref))
			ctl_reply_ok(p->d, &p->ref,
				     attest_verdict_json(&p->verdict, time(NULL)));
		(void)smig_msg_put_bye(&p->tx);
		p->closing = true;
	} else {
		peer_ping_done(p);
	}
}

static void on_evidence(struct peer *p, const struct smig_frame *f)
{
	uint8_t binding[SMIG_BINDING_LEN], fp[SMIG_FP_LEN];
	struct smig_attest_ctx x = { .host = p->name, .fp = fp, .nonce = p->att_nonce,
				     .binding = binding };
	const char *text;
	size_t len;
	int rc;

	if (!p->att_asked || p->attested) {
		peer_abort(p, SMIG_EPROTO, "ATTEST that answers no request");
		return;
	}
	rc = smig_msg_get_attest(f, &text, &len);
	if (rc == 0)
		rc = session_binding(p, binding);
	if (rc == 0)
		rc = smig_tls_peer_fp(p->tls, fp);
	x.pub = rc == 0 ? smig_tls_peer_key(p->tls) : NULL;
	if (rc < 0 || x.pub == NULL) {
		peer_abort(p, rc < 0 ? rc : SMIG_EAUTH, "bad ATTEST");
		return;
	}
	attest_check(p->d, &x, text, len, &p->verdict);
	p->attested = true;
	if (p->verdict.kind == SMIG_VERDICT_UNTRUSTED)
		sec_event(p->d, SMIG_SEC_ATTEST_FAILURE, p->ip, p->name, "%s", p->verdict.reason);
	smig_info("event=peer_attested host=%s verdict=%s trust=%s reason=\"%s\"", p->name,
		  smig_verdict_name(p->verdict.kind), smig_trust_name(p->verdict.trust),
		  p->verdict.reason);
	attested(p);
}

void peer_attest_frame(struct peer *p, const struct smig_frame *f)
{
	if (f->type == SMIG_MSG_ATTEST_REQ)
		on_request(p, f);
	else
		on_evidence(p, f);
}

void peer_attest(struct smigd *d, const char *host, struct ctl_ref *ref)
{
	const char *code;
	char err[256];
	struct peer *p;

	for (p = d->peers->head; p; p = p->next) {
		if (p->outbound && p->for_attest && strcmp(p->name, host) == 0 && ref == NULL)
			return; /* the last round's is still under way */
	}
	p = peer_open(d, host, &code, err, sizeof(err));
	if (p == NULL) {
		if (ref)
			ctl_reply_err(d, ref, code, "%s", err);
		return;
	}
	p->for_attest = true;
	if (ref) {
		p->ref = *ref;
		ref->id = NULL;
		ref->client_id = 0;
		ref->done = NULL;
	}
}

const struct smig_verdict *peer_verdict(const struct peer *p)
{
	return p->attested ? &p->verdict : NULL;
}

static void on_round(void *arg)
{
	struct smigd *d = arg;
	const struct smig_hosts *h = smigd_hosts(d);

	d->peers->round = NULL;
	for (size_t i = 0; i < h->n; i++)
		if (strcmp(h->v[i].name, d->cfg.host) != 0)
			peer_attest(d, h->v[i].name, NULL);
	(void)loop_timer_add(d->loop, (uint64_t)d->cfg.attest_interval_s * 1000, on_round, d,
			     &d->peers->round);
}

int peer_attest_rounds(struct smigd *d)
{
	return loop_timer_add(d->loop, (uint64_t)d->cfg.attest_interval_s * 1000, on_round, d,
			      &d->peers->round);
}
