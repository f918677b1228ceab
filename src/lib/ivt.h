/*
 * ivt.h - the integrity validation table and the attestation verdict.
 *
 * The IVT (strict JSON, one file for the cluster like the host table)
 * says, for each host, the fingerprint of its certificate, the trust level
 * it earns, and one or more accepted golden sets (component name ->
 * SHA-256), so that a fleet can accept an old and a new QEMU at once
 * during an upgrade, and its TPM once enrolled (tpmcred.h):
 *   {"hosts": {"h2": {"fingerprint": "sha256:...", "trust": "trusted",
 *     "tpm": {"ek": HEX64, "ak": HEX64},
 *     "allowlist": {"files": {"/usr/bin/qemu-system-x86_64": [HEX32, ...]}, "exclude": [...]},
 *     "golden": [{"name": "2026-11-24", "components": {"qemu": HEX, ...}}]}}}
 * What a host's evidence earns is capped by where it comes from: without
 * a quote by the AK enrolled for it, only the host's own word, at most
 * unverified.
 *
 * smig_attest_verify() turns one host's evidence into a verdict, a pure
 * function of the IVT, the evidence and what the verifier knows of the
 * session (the peer's name, fingerprint and key, its own nonce, the
 * session's exporter value). A refusal names the component and both
 * values. The IVT's fingerprint of a host must be the session's, or,
 * while the host table lists two for the host (a rotation), the other:
 * a host that moved to its new certificate keeps its golden sets until
 * the IVT names the new one.
 */
#ifndef SMIG_IVT_H
#define SMIG_IVT_H

#include "config.h"
#include "evidence.h"
#include "ima.h"
#include "vmspec.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>

#define SMIG_GOLDEN_MAX 8

struct smig_golden {
	char name[SMIG_NAME_MAX + 1];
	struct smig_component comp[SMIG_COMPONENTS_MAX];
	size_t ncomp;
};

struct smig_ivt_host {
	char name[SMIG_NAME_MAX + 1];
	uint8_t fp[SMIG_FP_LEN];
	enum smig_trust trust; /* what a match earns: attested or trusted */
	struct smig_golden golden[SMIG_GOLDEN_MAX];
	size_t ngolden;
	/* its TPM, enrolled: the AK proven to live in the TPM with this EK */
	bool has_tpm;
	uint8_t ek[SMIG_EK_LEN];
	uint8_t ak[SMIG_AK_LEN];
	uint8_t ek_cert[SMIG_EK_CERT_MAX]; /* the EK's certificate, DER, as enrolled (0: none) */
	size_t ek_cert_len;
	/* the files its IMA list may show (PCR 10): its evidence must then carry the list */
	bool has_allow;
	struct smig_allowlist allow;
	bool boot_log; /* enrolled with a measured-boot event log: its evidence must carry one */
};

struct smig_ivt {
	struct smig_ivt_host *v;
	size_t n;
};

int smig_ivt_parse(const char *name, const char *text, size_t len, struct smig_ivt *ivt,
		   char *err, size_t errlen);
int smig_ivt_load(const char *path, struct smig_ivt *ivt, char *err, size_t errlen);
void smig_ivt_clear(struct smig_ivt *ivt);
const struct smig_ivt_host *smig_ivt_find(const struct smig_ivt *ivt, const char *host);
/* The IVT as JSON text (malloc'd), the format smig_ivt_parse reads. */
int smig_ivt_dump(const struct smig_ivt *ivt, char **text);
/*
 * Makes e's components a golden set of host (named golden; a set of that
 * name is replaced, else added, the oldest dropped beyond SMIG_GOLDEN_MAX),
 * adding the host with fp and trust if it is not in the table. With tpm,
 * e's EK and AK become the host's enrolled TPM: the caller proved that the
 * AK lives in that TPM (tpmcred.h).
 */
int smig_ivt_enrol(struct smig_ivt *ivt, const char *host, const uint8_t fp[SMIG_FP_LEN],
		   enum smig_trust trust, const char *golden, const struct smig_evidence *e,
		   bool tpm);

enum smig_verdict_kind {
	SMIG_VERDICT_UNKNOWN,   /* not attested (yet) */
	SMIG_VERDICT_UNTRUSTED, /* evidence refused */
	SMIG_VERDICT_UNVERIFIED, /* authentic and fresh, but only its own word (no enrolled TPM) */
	SMIG_VERDICT_ATTESTED,  /* a quote by its enrolled TPM; no golden values to compare */
	SMIG_VERDICT_TRUSTED,   /* ... and its measurements match a golden set */
};

struct smig_verdict {
	enum smig_verdict_kind kind;
	bool authentic; /* from that host, for this nonce and session: it is who it says */
	bool quote_ok;  /* its evidence carried a TPM quote valid for this nonce and session */
	enum smig_trust trust; /* none unless attested or trusted */
	char golden[SMIG_NAME_MAX + 1];
	char component[SMIG_NAME_MAX + 1]; /* the component a refusal is about */
	char reason[400];
};

/* What the verifier knows of the session the evidence came in. */
struct smig_attest_ctx {
	const char *host;        /* the peer, as its certificate proved */
	const uint8_t *fp;       /* its certificate's fingerprint */
	const uint8_t *fp_other; /* its other one in the host table while it rotates, or NULL */
	EVP_PKEY *pub;           /* its certificate's key */
	const uint8_t *nonce;    /* the nonce this verifier sent */
	const uint8_t *binding;  /* this session's exporter value */
	/* the logs that came with the evidence in this session (ATTEST_LOG), or NULL */
	const uint8_t *boot_log;
	size_t boot_len;
	const uint8_t *ima_log;
	size_t ima_len;
};

const char *smig_verdict_name(enum smig_verdict_kind k);
void smig_attest_verify(const struct smig_ivt *ivt, const struct smig_evidence *e,
			const struct smig_attest_ctx *x, struct smig_verdict *v);
/*
 * The security-preservation check: may a VM with spec go to host, whose
 * verdict is v (NULL: none) and whose evidence e lists its capabilities?
 * NULL if so; otherwise the refusing rule ("attestation", "maintenance",
 * "constraint:min_trust" or "capability") with why naming the reason.
 */
const char *smig_attest_fits(const char *host, const struct smig_verdict *v,
			     const struct smig_evidence *e, const struct smig_vmspec *spec,
			     char *why, size_t whylen);
/* A PCR component that e's IMA list stands for (PCR 10): no golden value holds it. */
bool smig_ivt_ima_pcr(const struct smig_evidence *e, const char *name);
/* Compares evidence with a host's golden sets only. */
void smig_ivt_match(const struct smig_ivt_host *h, const struct smig_evidence *e,
		    struct smig_verdict *v);
/*
 * A host checking its own measurement e (its TPM's PCRs read by itself):
 * the golden sets, and trust above unverified only if e's TPM is the one
 * the IVT enrolled for it.
 */
void smig_ivt_self_check(const struct smig_ivt_host *h, const struct smig_evidence *e,
			 struct smig_verdict *v);

#endif
