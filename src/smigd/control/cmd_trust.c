/*
 * cmd_trust.c - control commands of trust: ivt.show, ivt.enrol and
 * evacuate.
 *
 * ivt.enrol HOST makes HOST's current evidence a golden set in the IVT
 * file: this host's own measurement, or another host's evidence from an
 * attestation made for the purpose (so it is fresh and authentic). A host
 * with a TPM has its EK and AK enrolled with it, once the AK is proven to
 * live in that TPM (a credential only that TPM opens, tpmcred.h); a host
 * whose enrolled TPM is another than the one it presents is refused
 * unless the operator says its TPM was replaced (new_tpm). The file is
 * rewritten atomically and reloaded; other hosts pick it up at their next
 * attestation round.
 */
#include "control/control.h"
#include "migration/migrate.h"
#include "peer/peer.h"
#include "trust/trust.h"
#include "ctl.h"
#include "ekcert.h"
#include "error.h"
#include "file.h"
#include "log.h"
#include "sign.h"
#include "tpmcred.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct enrol_req {
	struct ctl_ref client;
	char host[SMIG_NAME_MAX + 1];
	char golden[SMIG_NAME_MAX + 1];
	enum smig_trust trust;
	bool new_tpm; /* the host's TPM was replaced (or removed): take the one it presents */
	struct smig_component with[SMIG_COMPONENTS_MAX]; /* values to set in the new set */
	size_t nwith;
	uint8_t cred[SMIG_CRED_LEN]; /* this host's own enrolment: the credential made */
};

/* The IVT's enrolled TPM for the host against the one its evidence presents. */
static int tpm_same(const struct enrol_req *r, const struct smig_ivt_host *old,
		    const struct smig_evidence *e, bool proven, char *err, size_t errlen)
{
	char got[72], want[72];

	if (old == NULL || !old->has_tpm || r->new_tpm)
		return 0;
	smig_tpm_key_fp(old->ek, want);
	if (!proven) {
		snprintf(err, errlen, "the IVT enrolled a TPM for %s (EK %s), but %s brought no "
			 "proof of it; if its TPM was removed, enrol it with --new-tpm", r->host,
			 want, r->host);
		return SMIG_EAUTH;
	}
	if (CRYPTO_memcmp(old->ek, e->ek, SMIG_EK_LEN) != 0 ||
	    CRYPTO_memcmp(old->ak, e->quote.ak, SMIG_AK_LEN) != 0) {
		smig_tpm_key_fp(e->ek, got);
		snprintf(err, errlen, "%s presents another TPM or attestation key (EK %s) than "
			 "the one enrolled (EK %s); if its TPM was replaced, enrol it with "
			 "--new-tpm", r->host, got, want);
		return SMIG_EAUTH;
	}
	return 0;
}

/*
 * The EK certificate in the host's TPM: it must name the EK the host
 * presents and, with attestation.ek_roots, chain to a TPM maker's CA;
 * about says what it is (or that there is none and why that is enough).
 */
static int ek_cert_ok(struct smigd *d, const struct enrol_req *r, const struct smig_evidence *e,
		      char *about, size_t aboutlen, char *err, size_t errlen)
{
	const char *bad;
	struct x509_store_st *roots = attest_ek_roots(d, &bad);
	char why[384];

	if (bad) {
		snprintf(err, errlen, "attestation.ek_roots cannot be used (%s): no TPM is enrolled "
			 "here until it can", bad);
		return SMIG_ECONFIG;
	}
	if (e->ek_cert_len == 0 && roots) {
		snprintf(err, errlen, "%s's TPM holds no EK certificate (NV 0x%08x), and "
			 "attestation.ek_roots (%s) asks for one: only a TPM whose maker vouches "
			 "for its EK is enrolled here", r->host, SMIG_EK_CERT_NV, d->cfg.ek_roots);
		return SMIG_EAUTH;
	}
	if (e->ek_cert_len == 0) {
		snprintf(about, aboutlen, "none in the TPM; its EK taken on this enrolment's word "
			 "(no attestation.ek_roots)");
		return 0;
	}
	if (smig_ek_cert_check(e->ek_cert, e->ek_cert_len, e->ek, roots, about, aboutlen, why,
			       sizeof(why)) < 0) {
		snprintf(err, errlen, "%s's EK certificate%s%s%s: %s", r->host,
			 about[0] ? " (" : "", about, about[0] ? ")" : "", why);
		return SMIG_EAUTH;
	}
	if (roots == NULL)
		snprintf(about + strlen(about), aboutlen - strlen(about),
			 "; not checked against a maker's CA (no attestation.ek_roots)");
	else
		snprintf(about + strlen(about), aboutlen - strlen(about),
			 "; chains to attestation.ek_roots");
	return 0;
}

/* The IVT with e as a golden set of the request's host, written by the warden. */
static int ivt_update(struct smigd *d, const struct enrol_req *r, const uint8_t *fp,
		      const struct smig_evidence *e, bool proven, char *err, size_t errlen)
{
	struct smig_ivt_host *h;
	struct smig_ivt ivt;
	struct smig_pm rep;
	char *text = NULL;
	int rc;

	SMIG_GUARD(smig_ivt_dump(attest_ivt(d), &text));
	rc = smig_ivt_parse(d->cfg.ivt_file, text, strlen(text), &ivt, err, errlen);
	free(text);
	text = NULL;
	SMIG_GUARD(rc);
	rc = smig_ivt_enrol(&ivt, r->host, fp, r->trust, r->golden, e, proven);
	h = (struct smig_ivt_host *)smig_ivt_find(&ivt, r->host);
	if (rc == 0 && h && !proven && r->new_tpm)
		h->has_tpm = false;
	if (rc == 0)
		rc = smig_ivt_dump(&ivt, &text);
	if (rc == 0)
		rc = priv_call(d->priv, &rep, SMIG_PM_IVT_WRITE, text);
	if (rc == 0 && (rc = priv_status(&rep)) < 0)
		snprintf(err, errlen, "%s", smig_pm_str(&rep, 1));
	else if (rc < 0)
		snprintf(err, errlen, "%s: cannot write: %s", d->cfg.ivt_file, smig_strerror(rc));
	else
		rc = attest_set_ivt(d, text); /* the warden's EV_IVT says the same again */
	free(text);
	smig_ivt_clear(&ivt);
	return rc;
}

/*
 * Adds e as a golden set of the request's host to the IVT, which the
 * warden writes (the file is not the worker's to change) and checks
 * first; the request's --with values replace or add components (an
 * upgrade enrolled before it lands).
 */
static int enrol_write(struct smigd *d, const struct enrol_req *r, const uint8_t *fp,
		       const struct smig_evidence *e, bool proven, char *about, size_t aboutlen,
		       char *err, size_t errlen)
{
	struct smig_evidence *ev;
	int rc;

	SMIG_GUARD(tpm_same(r, smig_ivt_find(attest_ivt(d), r->host), e, proven, err, errlen));
	if (proven)
		SMIG_GUARD(ek_cert_ok(d, r, e, about, aboutlen, err, errlen));
	ev = malloc(sizeof(*ev));
	SMIG_ENSURE(ev != NULL, SMIG_ENOMEM);
	*ev = *e;
	for (size_t i = 0; i < r->nwith; i++) {
		struct smig_component *c = NULL;

		for (size_t k = 0; k < ev->ncomp && c == NULL; k++)
			if (strcmp(ev->comp[k].name, r->with[i].name) == 0)
				c = &ev->comp[k];
		if (c == NULL && ev->ncomp < SMIG_COMPONENTS_MAX)
			c = &ev->comp[ev->ncomp++];
		if (c == NULL) {
			snprintf(err, errlen, "no room for component %s: a golden set holds at most %d",
				 r->with[i].name, SMIG_COMPONENTS_MAX);
			free(ev);
			return SMIG_ETOOBIG;
		}
		*c = r->with[i];
	}
	rc = ivt_update(d, r, fp, ev, proven, err, errlen);
	free(ev);
	return rc;
}

static void enrol_reply(struct smigd *d, struct enrol_req *r, const uint8_t *fp,
			const struct smig_evidence *e, bool proven)
{
	char err[768], ekfp[72] = "-", akfp[72] = "-", about[512] = "";
	json_t *res;

	if (enrol_write(d, r, fp, e, proven, about, sizeof(about), err, sizeof(err)) < 0) {
		smig_warn("event=enrol_refused host=%s reason=\"%s\"", r->host, err);
		ctl_reply_err(d, &r->client, "untrusted", "cannot enrol %s: %s", r->host, err);
		free(r);
		return;
	}
	res = json_pack("{s:s,s:s,s:s,s:I,s:s}", "host", r->host, "golden", r->golden, "trust",
			smig_trust_name(r->trust), "components", (json_int_t)e->ncomp, "ivt",
			d->cfg.ivt_file);
	if (proven) {
		smig_tpm_key_fp(e->ek, ekfp);
		smig_tpm_key_fp(e->quote.ak, akfp);
		json_object_set_new(res, "tpm", json_pack("{s:s,s:s,s:s,s:s}", "ek_fingerprint",
							  ekfp, "ak_fingerprint", akfp, "proof",
							  "credential activated", "ek_cert", about));
	}
	smig_info("event=ivt_enrolled host=%s golden=%s components=%zu tpm_ek=%s", r->host,
		  r->golden, e->ncomp, ekfp);
	ctl_reply_ok(d, &r->client, res);
	free(r);
}

/* This host's own TPM recovered the credential made for it (or not). */
static void self_activated(struct smigd *d, void *arg, uint32_t id, int rc,
			   const uint8_t *cred, const char *why)
{
	struct enrol_req *r = arg;

	(void)id;
	if (rc == 0 && CRYPTO_memcmp(cred, r->cred, SMIG_CRED_LEN) != 0)
		why = "the TPM recovered another credential";
	if (rc < 0 || CRYPTO_memcmp(cred, r->cred, SMIG_CRED_LEN) != 0) {
		ctl_reply_err(d, &r->client, "untrusted", "cannot enrol %s: its attestation key "
			      "cannot be proven to live in its TPM: %s", r->host, why);
		free(r);
		return;
	}
	enrol_reply(d, r, smig_tls_ctx_fp(d->tls), attest_measurement(d), true);
}

/* This host: with a TPM, the same proof a verifier asks of a peer, from our own warden. */
static void enrol_self(struct smigd *d, struct enrol_req *r)
{
	const struct smig_evidence *e = attest_measurement(d);
	struct smig_credential c;
	char err[256] = "the random number generator failed";
	int rc;

	if (!attest_complete(d)) {
		ctl_reply_err(d, &r->client, "error", "%s", attest_self(d)->reason);
		free(r);
		return;
	}
	if (!e->has_tpm) {
		enrol_reply(d, r, smig_tls_ctx_fp(d->tls), e, false);
		return;
	}
	rc = RAND_bytes(r->cred, sizeof(r->cred)) == 1 ? 0 : SMIG_ECRYPTO;
	if (rc == 0)
		rc = smig_tpm_make_credential(e->ek, e->quote.ak, r->cred, &c, err, sizeof(err));
	if (rc == 0)
		rc = attest_activate_async(d, c.blob, c.blob_len, c.secret, c.secret_len,
					   self_activated, r, NULL);
	if (rc < 0) {
		ctl_reply_err(d, &r->client, "error", "cannot enrol %s: %s", r->host, err);
		free(r);
	}
}

/*
 * Another host was attested for enrolment, in a session of its own: its
 * evidence from that session, if authentic, with its TPM proven when it
 * has one (its quote valid and the credential opened).
 */
static void enrol_attested(struct smigd *d, void *arg, const json_t *reply)
{
	struct enrol_req *r = arg;
	const struct smig_evidence *e = peer_enrol_evidence(d);
	const json_t *res = json_object_get(reply, "result");
	const json_t *err = json_object_get(reply, "error");
	uint8_t fp[SMIG_FP_LEN];
	const char *why = NULL;

	if (err)
		why = json_string_value(json_object_get(err, "message"));
	else if (e == NULL || !json_is_true(json_object_get(res, "authentic")) ||
		 (e->has_tpm && !json_is_true(json_object_get(res, "tpm_proven"))))
		why = json_string_value(json_object_get(res, "reason")); /* or its quote failed */
	else if (smig_fp_parse(json_string_value(json_object_get(res, "fingerprint")), fp) < 0)
		why = "the session's certificate is unknown";
	if (why || e == NULL) {
		ctl_reply_err(d, &r->client, "untrusted", "cannot enrol %s: %s", r->host,
			      why ? why : "no authentic evidence");
		free(r);
		return;
	}
	/* the certificate it proved itself with: during a rotation, the one it uses now */
	enrol_reply(d, r, fp, e, e->has_tpm);
}

/* args.with: {component: 64 hex digits}, the values an upgrade will have. */
static int enrol_with(const json_t *with, struct enrol_req *r, char *err, size_t errlen)
{
	const char *name;
	json_t *v;

	if (with == NULL)
		return 0;
	if (!json_is_object(with) || json_object_size(with) > SMIG_COMPONENTS_MAX) {
		snprintf(err, errlen, "with must be an object of at most %d components",
			 SMIG_COMPONENTS_MAX);
		return SMIG_EINVAL;
	}
	json_object_foreach((json_t *)with, name, v) {
		struct smig_component *c = &r->with[r->nwith];

		if (!smig_name_valid(name) ||
		    smig_unhex(json_string_value(v), c->sha256, SMIG_DIGEST_LEN) < 0) {
			snprintf(err, errlen, "with.%.64s: a component name and 64 hex digits (its "
				 "SHA-256)", name);
			return SMIG_EINVAL;
		}
		snprintf(c->name, sizeof(c->name), "%s", name);
		r->nwith++;
	}
	return 0;
}

void cmd_ivt_enrol(struct smigd *d, const json_t *args, struct ctl_ref *ref)
{
	static const char *const allowed[] = { "host", "golden", "trust", "new_tpm", "with", NULL };
	const char *host = json_string_value(json_object_get(args, "host"));
	const char *golden = json_string_value(json_object_get(args, "golden"));
	const char *trust = json_string_value(json_object_get(args, "trust"));
	struct ctl_ref via = { .done = enrol_attested };
	struct enrol_req *r;
	char err[128] = "", today[16];
	time_t now = time(NULL);
	struct tm tm;

	strftime(today, sizeof(today), "%Y-%m-%d", gmtime_r(&now, &tm));
	r = calloc(1, sizeof(*r));
	if (r == NULL || smig_ctl_args_only(args, allowed, err, sizeof(err)) < 0 || host == NULL ||
	    !smig_name_valid(golden ? golden : today) ||
	    smig_trust_parse(trust ? trust : "trusted", &r->trust) < 0 ||
	    r->trust < SMIG_TRUST_ATTESTED || d->cfg.ivt_file[0] == '\0') {
		ctl_reply_err(d, ref, "bad_request",
			      "ivt.enrol needs args.host, optional golden (a name), trust "
			      "(attested or trusted), new_tpm (true) and with ({component: "
			      "sha256}), and attestation.ivt in the config %s",
			      err);
		free(r);
		return;
	}
	snprintf(r->host, sizeof(r->host), "%s", host);
	snprintf(r->golden, sizeof(r->golden), "%s", golden ? golden : today);
	r->new_tpm = json_is_true(json_object_get(args, "new_tpm"));
	if (enrol_with(json_object_get(args, "with"), r, err, sizeof(err)) < 0) {
		ctl_reply_err(d, ref, "bad_request", "ivt.enrol: %s", err);
		free(r);
		return;
	}
	r->client = *ref;
	ref->id = NULL;
	ref->client_id = 0;
	if (strcmp(host, d->cfg.host) == 0) {
		enrol_self(d, r);
		return;
	}
	via.done_arg = r;
	peer_enrol(d, host, &via);
}

static json_t *measurement_json(const struct smig_evidence *e)
{
	char hex[2 * SMIG_DIGEST_LEN + 1];
	json_t *o = json_object();

	for (size_t i = 0; i < e->ncomp; i++) {
		smig_hex(e->comp[i].sha256, SMIG_DIGEST_LEN, hex);
		json_object_set_new(o, e->comp[i].name, json_string(hex));
	}
	return o;
}

void cmd_ivt_show(struct smigd *d, const json_t *args, struct ctl_ref *ref)
{
	static const char *const allowed[] = { NULL };
	char err[128], *text = NULL;
	json_t *ivt = NULL;

	if (smig_ctl_args_only(args, allowed, err, sizeof(err)) < 0) {
		ctl_reply_err(d, ref, "bad_request", "ivt.show: %s", err);
		return;
	}
	if (smig_ivt_dump(attest_ivt(d), &text) == 0)
		ivt = json_loads(text, 0, NULL);
	free(text);
	ctl_reply_ok(d, ref, json_pack("{s:s,s:o,s:o,s:o}", "file", d->cfg.ivt_file, "ivt",
				       ivt ? ivt : json_object(), "self", attest_self_json(d),
				       "measurement", measurement_json(attest_measurement(d))));
}

void cmd_evacuate(struct smigd *d, const json_t *args, struct ctl_ref *ref)
{
	static const char *const allowed[] = { "dry_run", NULL };
	char err[128];

	if (smig_ctl_args_only(args, allowed, err, sizeof(err)) < 0) {
		ctl_reply_err(d, ref, "bad_request", "evacuate: %s", err);
		return;
	}
	evac_start(d, "requested by an operator", ref,
		   json_is_true(json_object_get(args, "dry_run")));
}

/* maintenance {on, host, reason}: this host's maintenance mode (trust/maint.c). */
void cmd_maintenance(struct smigd *d, const json_t *args, struct ctl_ref *ref)
{
	static const char *const allowed[] = { "on", "host", "reason", NULL };
	const json_t *on = json_object_get(args, "on");
	const char *host = json_string_value(json_object_get(args, "host"));
	const char *reason = json_string_value(json_object_get(args, "reason"));
	char err[512] = "";
	int rc;

	if (smig_ctl_args_only(args, allowed, err, sizeof(err)) < 0 || !json_is_boolean(on) ||
	    (json_object_get(args, "reason") && (reason == NULL || strlen(reason) > 199))) {
		ctl_reply_err(d, ref, "bad_request",
			      "maintenance needs args.on (true or false), optional host (this "
			      "host's name) and reason (at most 199 bytes) %s", err);
		return;
	}
	if (host && strcmp(host, d->cfg.host) != 0) {
		ctl_reply_err(d, ref, "bad_request",
			      "this is %s's smigd; run smig maintenance on %s's own socket", d->cfg.host,
			      host);
		return;
	}
	rc = attest_set_maintenance(d, json_is_true(on), ref->audit.actor, reason ? reason : "",
				    err, sizeof(err));
	if (rc < 0) {
		ctl_reply_err(d, ref, rc == SMIG_EEXIST ? "bad_request" : "error", "%s", err);
		return;
	}
	ref->audit.on = false; /* host.maintenance on/off is audited with its reason already */
	ctl_reply_ok(d, ref, json_pack("{s:s,s:o,s:o}", "host", d->cfg.host, "maintenance",
				       maint_json(attest_maintenance(d)), "attestation", attest_self_json(d)));
}
