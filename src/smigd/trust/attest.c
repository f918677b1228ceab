/*
 * attest.c - this host's integrity and its view of its neighbours', in the
 * worker.
 *
 * The warden measures the hypervisor stack (it alone reads those files as
 * root and opens the host TPM) at start, on every change inotify reports
 * and every attestation.interval_s, and sends each result here
 * (EV_MEASURED). The worker checks it against this host's golden sets in
 * the IVT; a host that fails its own check logs it, audits it and
 * (attestation.evacuate) moves its VMs away.
 *
 * Evidence for a verifier is the warden's: the last measurement with fresh
 * PCRs and a TPM quote over the verifier's nonce and this session, signed
 * with the host key (privmsg EVIDENCE). The peer part above attests each
 * neighbour every interval over a fresh connection and brings its
 * evidence here (attest_check() records the verdict), so `smig hosts` and
 * evacuation know who is trustworthy now. The IVT is read at start; the
 * warden sends it again whenever it changes on disk (EV_IVT). A change of
 * this host's own verdict goes to the layer above (attest_self_fn).
 */
#include "trust/trust.h"
#include "error.h"
#include "ekcert.h"
#include "file.h"
#include "log.h"
#include "sign.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct attest {
	attest_self_fn on_self; /* the layer above: evacuation */
	attest_peer_fn on_peer; /* the layer above: telling the neighbours */
	struct smig_ivt ivt;
	struct x509_store_st *ek_roots; /* attestation.ek_roots; NULL: EK certificates unchecked */
	char ek_roots_bad[384]; /* configured, and none could be taken: why */
	struct smig_evidence self; /* the warden's last measurement (no nonce, no signature) */
	struct smig_verdict self_v;
	char bad[SMIG_NAME_MAX + 1]; /* the component it could not measure, if any */
	char bad_reason[256];
	double measure_ms;
	struct attest_maint maint;
	int64_t report_evac_ms; /* the last evacuation a neighbour's report started */
	struct evidence_wait *evidence; /* quotes the warden works on, for whom */
};

/* The self-check's outcome changed: say so, audit it, tell the layer above. */
static void self_changed(struct smigd *d, const struct smig_verdict *old)
{
	const struct smig_verdict *v = &d->attest->self_v;

	if (v->kind == SMIG_VERDICT_UNTRUSTED && old->kind != SMIG_VERDICT_UNTRUSTED) {
		smig_err("event=integrity_failed host=%s component=%s reason=\"%s\"", d->cfg.host,
			 v->component[0] ? v->component : "-", v->reason);
		audit_write(d, "smigd", "host.integrity", d->cfg.host, "none", "-", "failed",
			    v->reason);
		if (d->attest->maint.on)
			smig_warn("event=evacuation_held host=%s reason=\"in maintenance (%s)\"",
				  d->cfg.host, d->attest->maint.reason);
		else if (d->attest->on_self)
			d->attest->on_self(d, v->reason);
	} else if (v->kind != SMIG_VERDICT_UNTRUSTED && old->kind == SMIG_VERDICT_UNTRUSTED) {
		smig_info("event=integrity_restored host=%s reason=\"%s\"", d->cfg.host, v->reason);
		audit_write(d, "smigd", "host.integrity", d->cfg.host, "none", "-", "restored",
			    v->reason);
		if (d->attest->on_self)
			d->attest->on_self(d, NULL);
	}
}

/* The last measurement against our own golden sets. */
static void self_check(struct smigd *d)
{
	struct attest *a = d->attest;
	struct smig_verdict old = a->self_v;
	const struct smig_ivt_host *mine = smig_ivt_find(&a->ivt, d->cfg.host);

	memset(&a->self_v, 0, sizeof(a->self_v));
	if (a->bad[0]) {
		a->self_v.kind = SMIG_VERDICT_UNTRUSTED;
		snprintf(a->self_v.component, sizeof(a->self_v.component), "%s", a->bad);
		snprintf(a->self_v.reason, sizeof(a->self_v.reason),
			 "component %s cannot be measured: %s", a->bad, a->bad_reason);
	} else if (mine) {
		smig_ivt_self_check(mine, &a->self, &a->self_v);
	} else {
		a->self_v.kind = SMIG_VERDICT_UNVERIFIED;
		a->self_v.trust = SMIG_TRUST_UNVERIFIED;
		snprintf(a->self_v.reason, sizeof(a->self_v.reason),
			 "measured; the IVT has no entry for %s", d->cfg.host);
	}
	a->self_v.authentic = true;
	smig_debug("event=self_check components=%zu verdict=%s", a->self.ncomp,
		   smig_verdict_name(a->self_v.kind));
	self_changed(d, &old);
}

void attest_on_measured(void *arg, const struct smig_pm *ev)
{
	struct smigd *d = arg;
	struct attest *a = d->attest;
	const char *text = smig_pm_str(ev, 0);
	struct smig_evidence e;
	char err[256];

	/* signed with our own key: the warden's, not a peer's */
	if (smig_evidence_parse(text, strlen(text), &e, err, sizeof(err)) < 0 ||
	    smig_evidence_check_sig(&e, d->host_key) < 0) {
		smig_err("event=measurement_bad reason=\"%s\"", err);
		return;
	}
	memset(e.sig, 0, sizeof(e.sig));
	a->self = e;
	snprintf(a->bad, sizeof(a->bad), "%s", strcmp(smig_pm_str(ev, 1), "-") ? smig_pm_str(ev, 1) : "");
	snprintf(a->bad_reason, sizeof(a->bad_reason), "%s", smig_pm_str(ev, 2));
	a->measure_ms = (double)smig_pm_int(ev, 3) / 1000.0;
	self_check(d);
}

int attest_set_ivt(struct smigd *d, const char *text)
{
	struct attest *a = d->attest;
	struct smig_ivt nv;
	char err[512];

	if (text[0] == '\0') {
		if (d->cfg.ivt_file[0]) {
			/* configured but unreadable: an empty table would let everyone off */
			smig_err("event=ivt_invalid reason=\"%s cannot be read (or is over 1 MiB)\" "
				 "action=kept_previous", d->cfg.ivt_file);
			return SMIG_ECONFIG;
		}
		smig_ivt_clear(&a->ivt);
		return 0;
	}
	if (smig_ivt_parse(d->cfg.ivt_file, text, strlen(text), &nv, err, sizeof(err)) < 0) {
		smig_err("event=ivt_invalid reason=\"%s\" action=kept_previous", err);
		return SMIG_ECONFIG;
	}
	smig_ivt_clear(&a->ivt);
	a->ivt = nv;
	smig_info("event=ivt_loaded file=%s hosts=%zu", d->cfg.ivt_file, a->ivt.n);
	return 0;
}

int attest_set_ek_roots(struct smigd *d, const char *text)
{
	struct attest *a = d->attest;
	struct x509_store_st *nr = NULL;
	char err[512];
	size_t n = 0;

	if (d->cfg.ek_roots[0] && text[0] == '\0')
		snprintf(err, sizeof(err), "%s cannot be read", d->cfg.ek_roots);
	if (d->cfg.ek_roots[0] &&
	    (text[0] == '\0' ||
	     smig_ek_roots_parse(d->cfg.ek_roots, text, strlen(text), &nr, &n, err, sizeof(err)) <
		     0)) {
		/* enrolment must not take any EK meanwhile: the old roots, or none at all */
		smig_err("event=ek_roots_invalid reason=\"%s\" action=%s", err,
			 a->ek_roots ? "kept_previous" : "no_enrolment_of_tpms");
		if (a->ek_roots == NULL)
			snprintf(a->ek_roots_bad, sizeof(a->ek_roots_bad), "%s", err);
		return SMIG_ECONFIG;
	}
	a->ek_roots_bad[0] = '\0';
	smig_ek_roots_free(a->ek_roots);
	a->ek_roots = nr;
	if (nr)
		smig_info("event=ek_roots_loaded file=%s certificates=%zu", d->cfg.ek_roots, n);
	return 0;
}

struct x509_store_st *attest_ek_roots(const struct smigd *d, const char **bad)
{
	*bad = d->attest->ek_roots_bad[0] ? d->attest->ek_roots_bad : NULL;
	return d->attest->ek_roots;
}

void attest_on_ivt(void *arg, const struct smig_pm *ev)
{
	struct smigd *d = arg;

	if (attest_set_ivt(d, smig_pm_str(ev, 0)) == 0 && d->attest->self.ncomp > 0)
		self_check(d);
}

int attest_init(struct smigd *d, attest_self_fn on_self, attest_peer_fn on_peer)
{
	struct attest *a = calloc(1, sizeof(*a));
	char err[512];

	SMIG_ENSURE(a != NULL, SMIG_ENOMEM);
	a->on_self = on_self;
	a->on_peer = on_peer;
	d->attest = a;
	maint_load(d, &a->maint);
	/* read as root at start; later versions come from the warden */
	if (d->cfg.ivt_file[0] && smig_ivt_load(d->cfg.ivt_file, &a->ivt, err, sizeof(err)) < 0)
		smig_err("event=ivt_invalid reason=\"%s\"", err);
	else if (d->cfg.ivt_file[0])
		smig_info("event=ivt_loaded file=%s hosts=%zu", d->cfg.ivt_file, a->ivt.n);
	if (d->cfg.ek_roots[0]) {
		char *text = NULL;
		size_t len;

		if (smig_file_read(d->cfg.ek_roots, SMIG_PM_DOC_MAX, &text, &len, err,
				   sizeof(err)) < 0)
			smig_err("event=ek_roots_invalid reason=\"%s\"", err);
		(void)attest_set_ek_roots(d, text ? text : "");
		free(text);
	}
	return 0;
}

void attest_free(struct smigd *d)
{
	struct attest *a = d->attest;

	if (a == NULL)
		return;
	smig_ivt_clear(&a->ivt);
	smig_ek_roots_free(a->ek_roots);
	free(a);
	d->attest = NULL;
}

const struct smig_verdict *attest_self(const struct smigd *d)
{
	return &d->attest->self_v;
}

const struct attest_maint *attest_maintenance(const struct smigd *d)
{
	return &d->attest->maint;
}

int attest_set_maintenance(struct smigd *d, bool on, const char *by, const char *reason,
			   char *err, size_t errlen)
{
	struct attest *a = d->attest;
	struct attest_maint m = { .on = on, .since_ms = loop_wall_ms() };

	if (a->maint.on == on) {
		snprintf(err, errlen, "%s is %s in maintenance", d->cfg.host, on ? "already" : "not");
		return SMIG_EEXIST;
	}
	snprintf(m.by, sizeof(m.by), "%s", by);
	snprintf(m.reason, sizeof(m.reason), "%s", reason);
	SMIG_GUARD(maint_save(d, &m, err, errlen));
	a->maint = m;
	d->stats.gen++;
	if (on) {
		smig_warn("event=maintenance_on host=%s by=\"%s\" reason=\"%s\"", d->cfg.host, by,
			  reason);
		audit_write(d, by, "host.maintenance", d->cfg.host, "allow", "-", "on", reason);
		return 0;
	}
	smig_info("event=maintenance_off host=%s by=\"%s\" verdict=%s", d->cfg.host, by,
		  smig_verdict_name(a->self_v.kind));
	audit_write(d, by, "host.maintenance", d->cfg.host, "allow", "-", "off",
		    a->self_v.kind == SMIG_VERDICT_UNTRUSTED ? a->self_v.reason : "");
	if (a->self_v.kind == SMIG_VERDICT_UNTRUSTED && a->on_self)
		a->on_self(d, a->self_v.reason); /* what the failure was held back from */
	return 0;
}


struct evidence_wait {
	struct evidence_wait *next; /* the attest part's list of those the warden works on */
	char host[SMIG_NAME_MAX + 1];
	struct smigd *d;
	attest_evidence_fn done;
	uint32_t id;
};

/* The logs the warden put in the memory file: boot log, then IMA list. */
static int read_logs(const struct smig_pm *r, struct attest_logs *l)
{
	uint64_t boot = smig_pm_int(r, 3), ima = smig_pm_int(r, 4);
	size_t got = 0;

	memset(l, 0, sizeof(*l));
	if (r->nfds != 1 || boot + ima > SMIG_ATTEST_LOGS_MAX)
		return SMIG_EPROTO;
	if (boot + ima == 0)
		return 0;
	l->data = malloc(boot + ima);
	SMIG_ENSURE(l->data != NULL, SMIG_ENOMEM);
	while (got < boot + ima) {
		ssize_t n = pread(r->fds[0], l->data + got, boot + ima - got, (off_t)got);

		if (n <= 0) {
			free(l->data);
			l->data = NULL;
			return SMIG_EIO;
		}
		got += (size_t)n;
	}
	l->boot = boot ? l->data : NULL;
	l->boot_len = boot;
	l->ima = ima ? l->data + boot : NULL;
	l->ima_len = ima;
	return 0;
}

static void evidence_answer(struct evidence_wait *w, const struct smig_pm *r);

static void evidence_reply(void *arg, const struct smig_pm *r)
{
	struct evidence_wait *w = arg;

	for (struct evidence_wait **pp = w->d->attest ? &w->d->attest->evidence : NULL; pp && *pp;
	     pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	evidence_answer(w, r);
}

static void evidence_answer(struct evidence_wait *w, const struct smig_pm *r)
{
	int rc = r == NULL ? SMIG_ECLOSED : priv_status(r);
	struct attest_logs logs = { 0 };

	if (r && rc < 0)
		smig_err("event=evidence_failed reason=\"%s\"", smig_pm_str(r, 1));
	if (rc == 0 && (rc = read_logs(r, &logs)) < 0)
		smig_err("event=evidence_failed reason=\"cannot read the TPM logs from the warden: "
			 "%s\"", smig_strerror(rc));
	w->done(w->d, w->id, rc, rc == 0 ? smig_pm_str(r, 2) : NULL, &logs);
	free(logs.data);
	for (size_t i = 0; r && i < r->nfds; i++)
		close(r->fds[i]);
	free(w);
}

int attest_evidence_async(struct smigd *d, const char *verifier, const uint8_t *nonce,
			  const uint8_t *binding, const uint8_t *own_fp, uint64_t free_mib,
			  attest_evidence_fn done, uint32_t *id)
{
	struct evidence_wait *w;
	size_t n = 0;
	int rc;

	/* each is a TPM quote: one host's sessions may not keep the TPM from the others' */
	for (w = d->attest->evidence; w; w = w->next)
		n += strcmp(w->host, verifier) == 0;
	if (n >= ATTEST_EVIDENCE_PER_HOST)
		return SMIG_EBUSY;
	w = calloc(1, sizeof(*w));
	SMIG_ENSURE(w != NULL, SMIG_ENOMEM);
	w->d = d;
	w->done = done;
	snprintf(w->host, sizeof(w->host), "%s", verifier);
	rc = priv_call_async(d->priv, evidence_reply, w, &w->id, SMIG_PM_EVIDENCE, nonce, binding,
			     free_mib, own_fp, d->attest->maint.on);
	if (rc < 0) {
		free(w);
		return rc;
	}
	w->next = d->attest->evidence;
	d->attest->evidence = w;
	*id = w->id;
	return 0;
}

struct activate_wait {
	struct smigd *d;
	attest_activate_fn done;
	void *arg;
	uint32_t id;
};

static void activate_reply(void *arg, const struct smig_pm *r)
{
	struct activate_wait *w = arg;

	if (r == NULL)
		w->done(w->d, w->arg, w->id, SMIG_ECLOSED, NULL, "the warden went away");
	else if (priv_status(r) < 0)
		w->done(w->d, w->arg, w->id, priv_status(r), NULL, smig_pm_str(r, 1));
	else
		w->done(w->d, w->arg, w->id, 0, smig_pm_key(r, 2), "");
	free(w);
}

int attest_activate_async(struct smigd *d, const uint8_t *blob, size_t blob_len,
			  const uint8_t *secret, size_t secret_len, attest_activate_fn done,
			  void *arg, uint32_t *id)
{
	char bh[2 * SMIG_CRED_MAX + 1], sh[2 * SMIG_CRED_MAX + 1];
	struct activate_wait *w;
	int rc;

	SMIG_ENSURE(blob_len <= SMIG_CRED_MAX && secret_len <= SMIG_CRED_MAX, SMIG_ETOOBIG);
	w = calloc(1, sizeof(*w));
	SMIG_ENSURE(w != NULL, SMIG_ENOMEM);
	w->d = d;
	w->done = done;
	w->arg = arg;
	smig_hex(blob, blob_len, bh);
	smig_hex(secret, secret_len, sh);
	rc = priv_call_async(d->priv, activate_reply, w, &w->id, SMIG_PM_TPM_ACTIVATE, bh, sh);
	if (rc < 0) {
		free(w);
		return rc;
	}
	if (id)
		*id = w->id;
	return 0;
}

/* A neighbour's verdict changed: log and audit the change. */
static void peer_changed(struct smigd *d, const char *host, const struct smig_verdict *old,
			 const struct smig_verdict *v)
{
	if (old->kind == v->kind)
		return;
	if ((v->kind == SMIG_VERDICT_UNTRUSTED) != (old->kind == SMIG_VERDICT_UNTRUSTED) &&
	    (old->kind != SMIG_VERDICT_UNKNOWN || v->kind == SMIG_VERDICT_UNTRUSTED) &&
	    d->attest->on_peer)
		d->attest->on_peer(d, host, v); /* the neighbours hear it from us */
	if (v->kind == SMIG_VERDICT_UNTRUSTED) {
		smig_warn("event=host_untrusted host=%s component=%s reason=\"%s\"", host,
			  v->component[0] ? v->component : "-", v->reason);
		audit_write(d, "smigd", "host.attest", host, "none", "-", "untrusted", v->reason);
	} else {
		smig_info("event=host_verdict host=%s verdict=%s reason=\"%s\"", host,
			  smig_verdict_name(v->kind), v->reason);
		audit_write(d, "smigd", "host.attest", host, "none", "-",
			    smig_verdict_name(v->kind), v->reason);
	}
}

void attest_check(struct smigd *d, const struct smig_attest_ctx *x, const char *text,
		  size_t len, struct smig_verdict *v)
{
	struct host_state *hs = smigd_host_state(d, x->host);
	const struct smig_host *h = smig_hosts_by_name(smigd_hosts(d), x->host);
	struct smig_attest_ctx xr = *x;
	struct smig_evidence e;
	char err[256];

	if (h && xr.fp_other == NULL)
		xr.fp_other = smig_host_other_fp(h, x->fp);
	x = &xr;
	if (smig_evidence_parse(text, len, &e, err, sizeof(err)) < 0) {
		memset(v, 0, sizeof(*v));
		v->kind = SMIG_VERDICT_UNTRUSTED;
		snprintf(v->reason, sizeof(v->reason), "malformed evidence: %s", err);
	} else {
		smig_attest_verify(&d->attest->ivt, &e, x, v);
	}
	if (hs == NULL)
		return;
	peer_changed(d, x->host, &hs->verdict, v);
	hs->verdict = *v;
	hs->trust = v->trust;
	hs->attested_at = time(NULL);
	if (v->authentic) {
		hs->evidence = e;
		memcpy(hs->evidence_fp, x->fp, SMIG_FP_LEN);
	}
}

bool attest_report(struct smigd *d, const struct smig_report *r)
{
	struct host_state *hs = smigd_host_state(d, r->about);
	struct host_report *slot = NULL;
	char why[600], actor[SMIG_NAME_MAX + 8];

	if (hs == NULL)
		return false;
	for (size_t i = 0; i < hs->nreports && slot == NULL; i++)
		if (strcmp(hs->reports[i].by, r->by) == 0)
			slot = &hs->reports[i];
	if (slot == NULL && hs->nreports < HOST_REPORTS_MAX)
		slot = &hs->reports[hs->nreports++];
	if (slot == NULL) /* the oldest gives way */
		slot = &hs->reports[0];
	snprintf(slot->by, sizeof(slot->by), "%s", r->by);
	snprintf(slot->verdict, sizeof(slot->verdict), "%s", r->verdict);
	snprintf(slot->reason, sizeof(slot->reason), "%s", r->reason);
	slot->time_ms = r->time_ms;
	smig_info("event=verdict_report by=%s about=%s verdict=%s reason=\"%s\"", r->by,
		  r->about, r->verdict, r->reason);
	if (strcmp(r->about, d->cfg.host) != 0)
		return true; /* see for ourselves, now */
	if (strcmp(r->verdict, "untrusted") != 0)
		return false;
	snprintf(why, sizeof(why), "%s holds this host untrusted: %s", r->by, r->reason);
	snprintf(actor, sizeof(actor), "peer:%s", r->by);
	audit_write(d, actor, "host.integrity", d->cfg.host, "none", "-", "reported", why);
	if (d->attest->maint.on) {
		smig_warn("event=evacuation_held host=%s reason=\"in maintenance (%s)\"",
			  d->cfg.host, d->attest->maint.reason);
	} else if (loop_wall_ms() - d->attest->report_evac_ms <
		   (int64_t)d->cfg.attest_interval_s * 3000) {
		/* one evacuation per three intervals on the neighbours' word: no churn */
		smig_info("event=evacuation_recent host=%s by=%s", d->cfg.host, r->by);
	} else if (d->attest->on_self) {
		d->attest->report_evac_ms = loop_wall_ms();
		d->attest->on_self(d, why);
	}
	return false;
}

json_t *attest_verdict_json(const struct smig_verdict *v, time_t at)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:I}", "verdict", smig_verdict_name(v->kind), "trust",
			 smig_trust_name(v->trust), "reason", v->reason, "component",
			 v->component, "attested_at", (json_int_t)at);
}

json_t *attest_self_json(const struct smigd *d)
{
	const struct attest *a = d->attest;
	json_t *o = attest_verdict_json(&a->self_v, time(NULL));

	json_object_set_new(o, "components", json_integer((json_int_t)a->self.ncomp));
	json_object_set_new(o, "measure_ms", json_real(a->measure_ms));
	return o;
}

const struct smig_ivt *attest_ivt(const struct smigd *d)
{
	return &d->attest->ivt;
}

const struct smig_evidence *attest_measurement(const struct smigd *d)
{
	return &d->attest->self;
}

bool attest_complete(const struct smigd *d)
{
	return d->attest->bad[0] == '\0';
}
