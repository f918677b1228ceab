/*
 * cmd_trust.c - control commands of trust: ivt.show, ivt.enrol and
 * evacuate.
 *
 * ivt.enrol HOST makes HOST's current evidence a golden set in the IVT
 * file: this host's own measurement, or another host's evidence from an
 * attestation made for the purpose (so it is fresh and authentic). The
 * file is rewritten atomically and reloaded; other hosts pick it up at
 * their next attestation round.
 */
#include "control/control.h"
#include "migration/migrate.h"
#include "peer/peer.h"
#include "trust/trust.h"
#include "ctl.h"
#include "error.h"
#include "file.h"
#include "log.h"
#include "sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct enrol_req {
	struct ctl_ref client;
	char host[SMIG_NAME_MAX + 1];
	char golden[SMIG_NAME_MAX + 1];
	enum smig_trust trust;
};

/*
 * Adds e as a golden set of the request's host to the IVT, which the
 * warden writes (the file is not the worker's to change) and checks first.
 */
static int enrol_write(struct smigd *d, const struct enrol_req *r, const uint8_t *fp,
		       const struct smig_evidence *e, char *err, size_t errlen)
{
	struct smig_ivt ivt;
	struct smig_pm rep;
	char *text = NULL;
	int rc;

	SMIG_GUARD(smig_ivt_dump(attest_ivt(d), &text));
	rc = smig_ivt_parse(d->cfg.ivt_file, text, strlen(text), &ivt, err, errlen);
	free(text);
	text = NULL;
	SMIG_GUARD(rc);
	rc = smig_ivt_enrol(&ivt, r->host, fp, r->trust, r->golden, e);
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

static void enrol_reply(struct smigd *d, struct enrol_req *r, const uint8_t *fp,
			const struct smig_evidence *e)
{
	char err[512];

	if (enrol_write(d, r, fp, e, err, sizeof(err)) < 0) {
		ctl_reply_err(d, &r->client, "error", "%s", err);
	} else {
		smig_info("event=ivt_enrolled host=%s golden=%s components=%zu", r->host,
			  r->golden, e->ncomp);
		ctl_reply_ok(d, &r->client,
			     json_pack("{s:s,s:s,s:s,s:I,s:s}", "host", r->host, "golden",
				       r->golden, "trust", smig_trust_name(r->trust), "components",
				       (json_int_t)e->ncomp, "ivt", d->cfg.ivt_file));
	}
	free(r);
}

/* Another host was attested for enrolment: use its evidence if authentic. */
static void enrol_attested(struct smigd *d, void *arg, const json_t *reply)
{
	struct enrol_req *r = arg;
	const struct host_state *hs = smigd_host_state(d, r->host);
	const struct smig_host *h = smig_hosts_by_name(smigd_hosts(d), r->host);
	const json_t *err = json_object_get(reply, "error");

	if (err || hs == NULL || h == NULL || !hs->verdict.authentic) {
		ctl_reply_err(d, &r->client, "untrusted", "cannot enrol %s: %s", r->host,
			      err ? json_string_value(json_object_get(err, "message"))
				  : hs ? hs->verdict.reason : "not in the host table");
		free(r);
		return;
	}
	/* the certificate it proved itself with: during a rotation, the one it uses now */
	enrol_reply(d, r, hs->evidence_fp, &hs->evidence);
}

void cmd_ivt_enrol(struct smigd *d, const json_t *args, struct ctl_ref *ref)
{
	static const char *const allowed[] = { "host", "golden", "trust", NULL };
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
	    r->trust == SMIG_TRUST_NONE || d->cfg.ivt_file[0] == '\0') {
		ctl_reply_err(d, ref, "bad_request",
			      "ivt.enrol needs args.host, optional golden (a name) and trust "
			      "(attested or trusted), and attestation.ivt in the config %s",
			      err);
		free(r);
		return;
	}
	snprintf(r->host, sizeof(r->host), "%s", host);
	snprintf(r->golden, sizeof(r->golden), "%s", golden ? golden : today);
	r->client = *ref;
	ref->id = NULL;
	ref->client_id = 0;
	if (strcmp(host, d->cfg.host) == 0) {
		if (!attest_complete(d)) {
			ctl_reply_err(d, &r->client, "error", "%s", attest_self(d)->reason);
			free(r);
			return;
		}
		enrol_reply(d, r, smig_tls_ctx_fp(d->tls), attest_measurement(d));
		return;
	}
	via.done_arg = r;
	peer_attest(d, host, &via);
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
