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
 * opened just to attest the peer closes then - or, to enrol the peer's
 * TPM, sends ENROL_CHAL (a credential for the AK its quote is by, which
 * only the TPM with the EK it presents can open) and closes once
 * ENROL_PROOF shows what that TPM recovered.
 */
#include "peer/peer_int.h"
#include "error.h"
#include "log.h"
#include "sign.h"
#include "msg.h"
#include "report.h"
#include "tpmcred.h"
#include "trust/trust.h"
#include "vm/vm.h"

#include <openssl/crypto.h>
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
/* A log in ATTEST_LOG pieces, ahead of the evidence that names it. */
static int put_log(struct peer *p, uint8_t which, const uint8_t *data, size_t len)
{
	for (size_t off = 0; off < len; off += SMIG_ATTEST_LOG_CHUNK) {
		size_t n = len - off < SMIG_ATTEST_LOG_CHUNK ? len - off : SMIG_ATTEST_LOG_CHUNK;

		SMIG_GUARD(smig_msg_put_attest_log(&p->tx, which, data + off, n));
	}
	return 0;
}

static void evidence_done(struct smigd *d, uint32_t id, int rc, const char *text,
			  const struct attest_logs *logs)
{
	struct peer *p = d->peers->head;

	while (p && p->evidence_id != id)
		p = p->next;
	if (p == NULL)
		return; /* the connection went meanwhile */
	p->evidence_id = 0;
	if (rc == 0 && logs->boot_len)
		rc = put_log(p, SMIG_LOG_BOOT, logs->boot, logs->boot_len);
	if (rc == 0 && logs->ima_len)
		rc = put_log(p, SMIG_LOG_IMA, logs->ima, logs->ima_len);
	if (rc == 0)
		rc = smig_msg_put_attest(&p->tx, text, strlen(text));
	if (rc == SMIG_EBUSY) { /* the TPM has too much to do: not the verifier's fault */
		peer_decline(p, rc, "cannot answer ATTEST_REQ: the TPM is busy");
	} else if (rc < 0) {
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
		rc = attest_evidence_async(p->d, p->name, nonce, binding, own_fp,
					   vm_free_mib(p->d), evidence_done, &p->evidence_id);
	if (rc == SMIG_EBUSY)
		peer_decline(p, rc, "cannot answer ATTEST_REQ: %s has %d requests waiting for the "
			     "TPM already", p->name, ATTEST_EVIDENCE_PER_HOST);
	else if (rc < 0)
		peer_abort(p, rc, "cannot answer ATTEST_REQ: %s", smig_strerror(rc));
}

/* The verdict (and the proven TPM keys) to the control request; the connection ends. */
static void attest_reply(struct peer *p, bool proven)
{
	char fps[SMIG_FP_STR_LEN];
	json_t *res;

	if (ctl_ref_waits(&p->ref)) {
		res = attest_verdict_json(&p->verdict, time(NULL));
		json_object_set_new(res, "authentic", json_boolean(p->verdict.authentic));
		json_object_set_new(res, "quote_ok", json_boolean(p->verdict.quote_ok));
		json_object_set_new(res, "tpm_proven", json_boolean(proven));
		smig_fp_format(p->fp, fps);
		json_object_set_new(res, "fingerprint", json_string(fps));
		/* the session's own evidence, for the reply's reader only (peer_enrol_evidence) */
		p->d->peers->enrol_handoff = p->enrol_ev;
		ctl_reply_ok(p->d, &p->ref, res);
		p->d->peers->enrol_handoff = NULL;
	}
	(void)smig_msg_put_bye(&p->tx);
	p->closing = true;
}

/*
 * Enrolment: a credential for the AK whose quote this session verified,
 * for the EK the same evidence presents. False when there is nothing to
 * prove (no TPM, or its quote failed: the verdict says so).
 */
static bool enrol_challenge(struct peer *p)
{
	struct smig_enrol_chal ch;
	struct smig_credential c;
	char err[256];

	if (!p->verdict.quote_ok || p->enrol_ev == NULL || !p->enrol_ev->has_tpm)
		return false;
	memcpy(p->enrol_ek, p->enrol_ev->ek, SMIG_EK_LEN);
	memcpy(p->enrol_ak, p->enrol_ev->quote.ak, SMIG_AK_LEN);
	if (RAND_bytes(p->enrol_cred, sizeof(p->enrol_cred)) != 1 ||
	    smig_tpm_make_credential(p->enrol_ek, p->enrol_ak, p->enrol_cred, &c, err,
				     sizeof(err)) < 0) {
		ctl_reply_err(p->d, &p->ref, "error", "cannot enrol %s: %s", p->name, err);
		(void)smig_msg_put_bye(&p->tx);
		p->closing = true;
		return true;
	}
	ch.blob = c.blob;
	ch.blob_len = (uint16_t)c.blob_len;
	ch.secret = c.secret;
	ch.secret_len = (uint16_t)c.secret_len;
	if (smig_msg_put_enrol_chal(&p->tx, &ch) < 0) {
		peer_abort(p, SMIG_EPROTO, "cannot encode ENROL_CHAL");
		return true;
	}
	p->enrol_sent = true;
	return true;
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
	} else if (p->report) {
		/* told, whatever the peer's verdict: a host held untrusted hears why */
		if (smig_msg_put_verdict(&p->tx, p->report, strlen(p->report)) < 0)
			smig_warn("event=verdict_not_sent host=%s", p->name);
		(void)smig_msg_put_bye(&p->tx);
		p->closing = true;
	} else if (p->resv) {
		if (peer_resv_send(p) < 0)
			peer_abort(p, SMIG_EPROTO, "cannot encode RESERVE");
		else /* a host that never answers */
			peer_rearm(p, (uint64_t)p->d->cfg.request_timeout_ms);
	} else if (p->for_attest) {
		if (!p->for_enrol || !enrol_challenge(p))
			attest_reply(p, false);
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
	x.boot_log = p->logs[0].data;
	x.boot_len = p->logs[0].len;
	x.ima_log = p->logs[1].data;
	x.ima_len = p->logs[1].len;
	attest_check(p->d, &x, text, len, &p->verdict);
	peer_logs_drop(p);
	/* enrolment takes this session's evidence, not whatever another session left */
	if (p->for_enrol && p->verdict.authentic) {
		p->enrol_ev = malloc(sizeof(*p->enrol_ev));
		if (p->enrol_ev && smig_evidence_parse(text, len, p->enrol_ev, NULL, 0) < 0) {
			free(p->enrol_ev);
			p->enrol_ev = NULL;
		}
	}
	p->attested = true;
	/*
	 * Forged, replayed or relayed evidence is an attack on this host; an
	 * authentic host that fails its golden values is a trust state, and
	 * banning it would cut off its evacuation.
	 */
	if (p->verdict.kind == SMIG_VERDICT_UNTRUSTED && !p->verdict.authentic)
		sec_event(p->d, SMIG_SEC_ATTEST_FAILURE, p->ip, p->name, "%s", p->verdict.reason);
	smig_info("event=peer_attested host=%s verdict=%s trust=%s reason=\"%s\"", p->name,
		  smig_verdict_name(p->verdict.kind), smig_trust_name(p->verdict.trust),
		  p->verdict.reason);
	attested(p);
}

/* The verifier: a piece of a log that goes with the evidence still to come. */
static void on_log(struct peer *p, const struct smig_frame *f)
{
	const uint8_t *data;
	uint8_t which;
	size_t len;
	struct smig_buf *b;

	if (!p->att_asked || p->attested || smig_msg_get_attest_log(f, &which, &data, &len) < 0) {
		peer_abort(p, SMIG_EPROTO, "ATTEST_LOG %s",
			   p->att_asked && !p->attested ? "malformed" : "that answers no request");
		return;
	}
	b = &p->logs[which == SMIG_LOG_BOOT ? 0 : 1];
	if (b->data == NULL)
		smig_buf_init(b, SMIG_ATTEST_LOGS_MAX);
	if (p->logs[0].len + p->logs[1].len + len > SMIG_ATTEST_LOGS_MAX ||
	    smig_buf_put_bytes(b, data, len) < 0) {
		peer_abort(p, SMIG_ETOOBIG, "ATTEST_LOG: more than %zu bytes of logs",
			   SMIG_ATTEST_LOGS_MAX);
		return;
	}
}

void peer_logs_drop(struct peer *p)
{
	smig_buf_clear(&p->logs[0]);
	smig_buf_clear(&p->logs[1]);
}

/* The verifier: what the peer's TPM recovered from our credential. */
static void on_proof(struct peer *p, const struct smig_frame *f)
{
	uint8_t cred[SMIG_ENROL_CRED_LEN];

	if (!p->enrol_sent || smig_msg_get_enrol_proof(f, cred) < 0) {
		peer_abort(p, SMIG_EPROTO, "ENROL_PROOF that answers no ENROL_CHAL");
		return;
	}
	p->enrol_sent = false;
	if (CRYPTO_memcmp(cred, p->enrol_cred, sizeof(cred)) != 0) {
		smig_warn("event=enrol_refused host=%s reason=\"its TPM did not recover the "
			  "credential\"", p->name);
		ctl_reply_err(p->d, &p->ref, "untrusted",
			      "%s's TPM did not recover the enrolment credential: the attestation "
			      "key that signed its quote is not in the TPM with the endorsement key "
			      "it presents", p->name);
		(void)smig_msg_put_bye(&p->tx);
		p->closing = true;
		return;
	}
	attest_reply(p, true);
}

/* The host being enrolled: its warden's TPM recovered the credential (or not). */
static void activate_done(struct smigd *d, void *arg, uint32_t id, int rc, const uint8_t *cred,
			  const char *why)
{
	struct peer *p = d->peers->head;

	(void)arg;
	while (p && p->activate_id != id)
		p = p->next;
	if (p == NULL)
		return;
	p->activate_id = 0;
	if (rc < 0) {
		/* our own TPM's answer, not the verifier's fault: no security event */
		struct smig_error_msg m = { .code = (uint16_t)-rc };

		snprintf(m.reason, sizeof(m.reason), "cannot activate the enrolment credential: %s",
			 why);
		smig_warn("event=enrol_failed host=%s reason=\"%s\"", p->name, m.reason);
		(void)smig_msg_put_error(&p->tx, &m);
		p->closing = true;
	} else if (smig_msg_put_enrol_proof(&p->tx, cred) < 0) {
		peer_abort(p, SMIG_EPROTO, "cannot encode ENROL_PROOF");
	}
	peer_send_now(p);
}

/* The host being enrolled: a verifier's credential, once per session, after our evidence. */
static void on_challenge(struct peer *p, const struct smig_frame *f)
{
	struct smig_enrol_chal ch;
	int rc = smig_msg_get_enrol_chal(f, &ch);

	if (rc < 0 || !p->att_answered || p->evidence_id || p->enrol_answered || !p->attested) {
		peer_abort(p, SMIG_EPROTO, "ENROL_CHAL %s",
			   rc < 0 ? "malformed" : "before our evidence, or a second one");
		return;
	}
	p->enrol_answered = true;
	smig_info("event=enrol_challenge host=%s", p->name);
	rc = attest_activate_async(p->d, ch.blob, ch.blob_len, ch.secret, ch.secret_len,
				   activate_done, NULL, &p->activate_id);
	if (rc < 0)
		peer_abort(p, rc, "cannot activate the enrolment credential: %s",
			   smig_strerror(rc));
}

/* A neighbour's verdict on a host: its own word, signed, in an attested session. */
static void on_report(struct peer *p, const struct smig_frame *f)
{
	struct smig_report r;
	const char *text;
	size_t len;
	char err[256] = "";
	int rc;

	if (!p->attested || !p->verdict.authentic || p->report_seen) {
		peer_abort(p, SMIG_EPROTO, "VERDICT %s",
			   p->report_seen ? "twice in one session" : "before the sender's evidence");
		return;
	}
	p->report_seen = true;
	rc = smig_msg_get_verdict(f, &text, &len);
	if (rc == 0)
		rc = smig_report_parse(text, len, &r, err, sizeof(err));
	if (rc == 0 && strcmp(r.by, p->name) != 0) {
		snprintf(err, sizeof(err), "a verdict by %s, sent by %s", r.by, p->name);
		rc = SMIG_EAUTH;
	}
	if (rc == 0 && smig_report_check_sig(&r, smig_tls_peer_key(p->tls)) < 0) {
		snprintf(err, sizeof(err), "the verdict's signature is not %s's", p->name);
		rc = SMIG_EAUTH;
	}
	if (rc < 0) {
		peer_abort(p, rc, "bad VERDICT: %s", err[0] ? err : smig_strerror(rc));
		return;
	}
	/* the word of a host we hold untrusted moves nothing here */
	if (p->verdict.kind == SMIG_VERDICT_UNTRUSTED) {
		smig_warn("event=verdict_ignored by=%s about=%s reason=\"%s is untrusted here\"",
			  r.by, r.about, r.by);
		return;
	}
	if (attest_report(p->d, &r) && strcmp(r.about, p->d->cfg.host) != 0)
		peer_attest(p->d, r.about, NULL);
}

void peer_report(struct smigd *d, const char *host, const struct smig_verdict *v)
{
	const struct smig_hosts *h = smigd_hosts(d);
	struct smig_report r = { .time_ms = loop_wall_ms() };
	char *text = NULL;

	snprintf(r.by, sizeof(r.by), "%s", d->cfg.host);
	snprintf(r.about, sizeof(r.about), "%s", host);
	snprintf(r.verdict, sizeof(r.verdict), "%s", smig_verdict_name(v->kind));
	smig_printable_copy(v->reason, r.reason, sizeof(r.reason)); /* signed, JSON, shown */
	if (smig_report_sign(&r, d->host_key, &text) < 0) {
		smig_err("event=verdict_not_sent about=%s reason=\"cannot sign the report\"", host);
		return;
	}
	for (size_t i = 0; i < h->n; i++) {
		const char *code;
		char err[256];
		struct peer *p;

		if (strcmp(h->v[i].name, d->cfg.host) == 0)
			continue;
		p = peer_open(d, h->v[i].name, &code, err, sizeof(err));
		if (p == NULL)
			continue;
		p->for_attest = true; /* no PING: its job is the report */
		p->report = strdup(text);
		if (p->report == NULL)
			p->closing = true;
	}
	smig_info("event=verdict_told about=%s verdict=%s", host, r.verdict);
	free(text);
}

void peer_attest_frame(struct peer *p, const struct smig_frame *f)
{
	if (f->type == SMIG_MSG_ATTEST_REQ)
		on_request(p, f);
	else if (f->type == SMIG_MSG_ATTEST)
		on_evidence(p, f);
	else if (f->type == SMIG_MSG_ENROL_CHAL)
		on_challenge(p, f);
	else if (f->type == SMIG_MSG_ATTEST_LOG)
		on_log(p, f);
	else if (f->type == SMIG_MSG_VERDICT)
		on_report(p, f);
	else
		on_proof(p, f);
}

/* A connection to attest host, the verdict for ref (NULL: a round's); NULL if none opened. */
static struct peer *attest_open(struct smigd *d, const char *host, struct ctl_ref *ref)
{
	const char *code;
	char err[256];
	struct peer *p;

	for (p = d->peers->head; p; p = p->next) {
		if (p->outbound && p->for_attest && strcmp(p->name, host) == 0 && ref == NULL)
			return NULL; /* the last round's is still under way */
	}
	p = peer_open(d, host, &code, err, sizeof(err));
	if (p == NULL) {
		if (ref)
			ctl_reply_err(d, ref, code, "%s", err);
		return NULL;
	}
	p->for_attest = true;
	if (ref) {
		p->ref = *ref;
		ref->id = NULL;
		ref->client_id = 0;
		ref->done = NULL;
	}
	return p;
}

void peer_attest(struct smigd *d, const char *host, struct ctl_ref *ref)
{
	(void)attest_open(d, host, ref);
}

const struct smig_evidence *peer_enrol_evidence(const struct smigd *d)
{
	return d->peers->enrol_handoff;
}

void peer_enrol(struct smigd *d, const char *host, struct ctl_ref *ref)
{
	struct peer *p = attest_open(d, host, ref);

	if (p)
		p->for_enrol = true;
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
