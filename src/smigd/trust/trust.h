/*
 * trust.h - the trust part of the worker (attest.c): this host's
 * self-check on each of the warden's measurements, the IVT, evidence for
 * verifiers (the warden makes it), and the verdicts on other hosts. It
 * tells the layer above when this host's own verdict turns untrusted (an
 * event the worker wires to evacuation); it calls nothing above it.
 */
#ifndef SMIGD_TRUST_H
#define SMIGD_TRUST_H

#include "core/smigd.h"
#include "evidence.h"
#include "ivt.h"
#include "report.h"

/* Maintenance mode (maint.c): no VMs arrive, a failed self-check does not evacuate. */
struct attest_maint {
	bool on;
	char reason[200];
	char by[80]; /* who turned it on */
	int64_t since_ms;
};
void maint_load(struct smigd *d, struct attest_maint *m);
int maint_save(struct smigd *d, const struct attest_maint *m, char *err, size_t errlen);
const struct attest_maint *attest_maintenance(const struct smigd *d);
/* {"on"} or {"on", "by", "reason", "since"} for status and hosts. */
json_t *maint_json(const struct attest_maint *m);
/*
 * Turns maintenance on or off (persisted, logged, audited for by). Off
 * while this host fails its own check starts what the failure would
 * have started (the layer above evacuates).
 */
int attest_set_maintenance(struct smigd *d, bool on, const char *by, const char *reason,
			   char *err, size_t errlen);

/* This host failed its own check (why), or passes again (why is NULL). */
typedef void (*attest_self_fn)(struct smigd *d, const char *why);

/* Our verdict on a neighbour turned untrusted, or back (the layer above tells the others). */
typedef void (*attest_peer_fn)(struct smigd *d, const char *host,
			       const struct smig_verdict *v);
int attest_init(struct smigd *d, attest_self_fn on_self, attest_peer_fn on_peer);
/*
 * A neighbour's signed verdict (report.h), checked by the caller: kept in
 * the host's state (smig hosts shows who said what). About this host and
 * untrusted: it is evacuated (unless in maintenance), the neighbours having
 * seen what this host did not. Returns true when the caller should attest
 * the host it is about again now.
 */
bool attest_report(struct smigd *d, const struct smig_report *r);
void attest_free(struct smigd *d);
/* The warden's measurement (EV_MEASURED) and IVT (EV_IVT); priv.h handlers, arg is d. */
void attest_on_measured(void *arg, const struct smig_pm *ev);
void attest_on_ivt(void *arg, const struct smig_pm *ev);
/* Takes the IVT in text ("" for none); a bad one keeps the old table. */
int attest_set_ivt(struct smigd *d, const char *text);
/*
 * Takes attestation.ek_roots in text (PEM; "" when the config names
 * none); a bad or unreadable one keeps the old roots.
 */
int attest_set_ek_roots(struct smigd *d, const char *text);
/*
 * The TPM makers' CAs an EK certificate must chain to; NULL: not checked,
 * unless *bad says why the configured ones cannot be had (then no TPM may
 * be enrolled).
 */
struct x509_store_st *attest_ek_roots(const struct smigd *d, const char **bad);
const struct smig_verdict *attest_self(const struct smigd *d);
/*
 * Signed evidence for a verifier's nonce, bound to binding; free_mib for
 * placement; verifier the host asking (at most 4 of its requests wait for
 * the TPM at a time, SMIG_EBUSY beyond); own_fp the certificate this end
 * showed on the session, whose
 * key signs (a reload may have made another one current since). The
 * warden quotes while the loop goes on: done gets the
 * request's id (as *id had it) and the evidence text (valid during the
 * call) with the TPM logs to send before it, or a negative rc and NULL.
 */
/* The logs that go with one evidence (ATTEST_LOG), in one allocation. */
struct attest_logs {
	uint8_t *data;
	const uint8_t *boot, *ima;
	size_t boot_len, ima_len;
};
typedef void (*attest_evidence_fn)(struct smigd *d, uint32_t id, int rc, const char *text,
				   const struct attest_logs *logs);
/* Evidence a verifier may have the warden quote for at a time (sessions it closed count too). */
#define ATTEST_EVIDENCE_PER_HOST 4
int attest_evidence_async(struct smigd *d, const char *verifier, const uint8_t *nonce,
			  const uint8_t *binding, const uint8_t *own_fp, uint64_t free_mib,
			  attest_evidence_fn done, uint32_t *id);
/*
 * TPM2_ActivateCredential by the warden with this host's AK and EK
 * (tpmcred.h): done gets arg, the request's id (as *id had it) and the
 * recovered credential (SMIG_CRED_LEN bytes, valid during the call), or a
 * negative rc and why.
 */
typedef void (*attest_activate_fn)(struct smigd *d, void *arg, uint32_t id, int rc,
				   const uint8_t *cred, const char *why);
int attest_activate_async(struct smigd *d, const uint8_t *blob, size_t blob_len,
			  const uint8_t *secret, size_t secret_len, attest_activate_fn done,
			  void *arg, uint32_t *id);
/* Checks a peer's evidence into v and records it in the host's state. */
void attest_check(struct smigd *d, const struct smig_attest_ctx *x, const char *text,
		  size_t len, struct smig_verdict *v);
json_t *attest_verdict_json(const struct smig_verdict *v, time_t at);
json_t *attest_self_json(const struct smigd *d);
const struct smig_ivt *attest_ivt(const struct smigd *d);
const struct smig_evidence *attest_measurement(const struct smigd *d);
/* False when the last measurement missed a component (unreadable file, TPM). */
bool attest_complete(const struct smigd *d);

#endif
