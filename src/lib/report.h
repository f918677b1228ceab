/*
 * report.h - a host's signed verdict on another host, told to its
 * neighbours (VERDICT): who said it, about whom, what and why, when.
 *
 *   {"v":1, "by":"h2", "about":"h1", "verdict":"untrusted",
 *    "reason":"IMA entry 5: ...", "time":MS, "sig":HEX64}
 *
 * The signature (context "smig-verdict-v1", the key of by's certificate)
 * covers SHA-256 of the compact, sorted-key JSON without sig, rebuilt
 * from what was parsed, so a report keeps its author's word when it is
 * passed on or stored.
 */
#ifndef SMIG_REPORT_H
#define SMIG_REPORT_H

#include "msg.h"

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#define SMIG_REPORT_MAX ((size_t)4096)
#define SMIG_REPORT_CTX "smig-verdict-v1"

struct smig_report {
	char by[SMIG_NAME_MAX + 1];
	char about[SMIG_NAME_MAX + 1];
	char verdict[16]; /* a verdict name: "untrusted", "trusted", ... */
	char reason[400];
	int64_t time_ms;
	uint8_t sig[64];
};

/* Signs r (its sig is set) and renders it as JSON text (malloc'd). */
int smig_report_sign(struct smig_report *r, EVP_PKEY *key, char **text);
/* Parses a report strictly (no signature check); err says what is wrong. */
int smig_report_parse(const char *text, size_t len, struct smig_report *r, char *err,
		      size_t errlen);
/* 0 if r's signature is pub's. */
int smig_report_check_sig(const struct smig_report *r, EVP_PKEY *pub);

#endif
