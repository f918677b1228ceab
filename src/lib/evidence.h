/*
 * evidence.h - a host's attestation evidence: what it measured, bound to
 * one verifier's nonce and one TLS session, signed with the host key.
 *
 * Evidence is JSON:
 *   {"v":1, "host":"h2", "time":MS, "nonce":HEX32, "binding":HEX32,
 *    "components":[{"name":"qemu", "sha256":HEX32}, ...],
 *    "capabilities":["vtpm", ...], "free_mib":N, "maintenance":true (only when),
 *    "logs":{"boot":{"size":N,"sha256":HEX32}, "ima":{...}} (either, when sent),
 *    "tpm":{"ak":HEX64, "ek":HEX64, "quote":HEX, "sig":HEX64} (with a host TPM),
 *    "sig":HEX64}
 * With a TPM, the values of the quoted PCRs are components "pcr16", ...
 * The signature (context "smig-evidence-v1") covers nonce || binding ||
 * digest, the digest being SHA-256 of the compact sorted-key JSON without
 * sig. binding is the TLS exporter value of the session it travels in, so
 * evidence relayed into another session, or replayed with another nonce,
 * fails. docs/attestation.md is the reference.
 */
#ifndef SMIG_EVIDENCE_H
#define SMIG_EVIDENCE_H

#include "msg.h"
#include "quote.h"
#include "tpmcred.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMIG_NONCE_LEN 32
#define SMIG_BINDING_LEN 32
#define SMIG_DIGEST_LEN 32
#define SMIG_COMPONENTS_MAX 32
#define SMIG_CAPS_MAX 8
#define SMIG_EVIDENCE_MAX ((size_t)16 * 1024)
#define SMIG_EVIDENCE_CTX "smig-evidence-v1"
/* The TLS exporter label evidence is bound with (RFC 8446 section 7.5). */
#define SMIG_EXPORTER_LABEL "EXPORTER-smig-attestation"

struct smig_component {
	char name[SMIG_NAME_MAX + 1];
	uint8_t sha256[SMIG_DIGEST_LEN];
};

struct smig_evidence {
	char host[SMIG_NAME_MAX + 1];
	int64_t time_ms;
	uint8_t nonce[SMIG_NONCE_LEN];
	uint8_t binding[SMIG_BINDING_LEN];
	struct smig_component comp[SMIG_COMPONENTS_MAX];
	size_t ncomp;
	char caps[SMIG_CAPS_MAX][SMIG_NAME_MAX + 1];
	size_t ncaps;
	uint64_t free_mib; /* memory available for VMs, for placement */
	bool maintenance;  /* the host is in maintenance: it takes no VMs */
	/* with a TPM: the logs that follow the evidence (ATTEST_LOG), by size and SHA-256 */
	bool has_boot_log, has_ima_log;
	uint32_t boot_size, ima_size;
	uint8_t boot_sha256[SMIG_DIGEST_LEN], ima_sha256[SMIG_DIGEST_LEN];
	bool has_tpm;   /* its TPM's keys: quote.ak and ek */
	uint8_t ek[SMIG_EK_LEN];
	uint8_t ek_cert[SMIG_EK_CERT_MAX]; /* the EK's certificate from the TPM's NV (DER) */
	size_t ek_cert_len;                /* 0: the TPM has none */
	bool has_quote; /* and a quote by the AK (peer evidence; a host's own measurement has none) */
	struct smig_quote quote;
	uint8_t sig[64];
};

/* SHA-256 and size of an open file's contents (from offset 0, the offset untouched). */
int smig_measure_fd(int fd, const char *name, uint8_t out[SMIG_DIGEST_LEN], uint64_t *size,
		    char *err, size_t errlen);
/* SHA-256 of a file's contents; err names the file on failure. */
int smig_measure_file(const char *path, uint8_t out[SMIG_DIGEST_LEN], char *err,
		      size_t errlen);

/* Signs e (its sig is set) and renders it as JSON text (malloc'd). */
int smig_evidence_sign(struct smig_evidence *e, EVP_PKEY *key, char **text);
/* Parses evidence strictly (no signature check); err says what is wrong. */
int smig_evidence_parse(const char *text, size_t len, struct smig_evidence *e, char *err,
			size_t errlen);
/* 0 if e's signature is pub's over its nonce, binding and digest. */
int smig_evidence_check_sig(const struct smig_evidence *e, EVP_PKEY *pub);
const struct smig_component *smig_evidence_find(const struct smig_evidence *e,
						const char *name);
bool smig_evidence_has_cap(const struct smig_evidence *e, const char *cap);

#endif
