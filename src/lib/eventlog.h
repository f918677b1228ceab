/*
 * eventlog.h - the measured-boot event log a host's firmware leaves, and
 * the PCR values it leads to.
 *
 * A quote tells which values a host's PCRs hold, not how they came to
 * hold them. The firmware records every measurement it extends into the
 * TPM in the TCG PC Client event log (Linux shows it in
 * /sys/kernel/security/tpm0/binary_bios_measurements); replaying the log
 * and comparing the result with quoted PCR values tells whether the log
 * is the true story of the boot, and then each event can be judged on
 * its own. Parsing and replay are pure: the bytes come from the caller.
 *
 * The format is the crypto-agile log of the TCG PC Client Platform
 * Firmware Profile, integers little-endian:
 *   - a first event in the old SHA-1 layout (pcrIndex, eventType =
 *     EV_NO_ACTION, a 20-byte digest, eventSize, data) whose data is the
 *     Spec ID event ("Spec ID Event03"): it declares which digest
 *     algorithms every later event carries and their sizes;
 *   - then events of the form pcrIndex, eventType, a count of digests,
 *     per digest a TPM algorithm id and its digest, eventSize, data.
 * Events are numbered as they stand in the log, the Spec ID event being
 * event 0, so ev[i] is event i + 1; parse errors name the event and its
 * byte offset. Only the SHA-256 digests are kept: smig quotes the sha256
 * bank.
 */
#ifndef SMIG_EVENTLOG_H
#define SMIG_EVENTLOG_H

#include <stddef.h>
#include <stdint.h>

#define SMIG_EVLOG_MAX ((size_t)1 << 20) /* bytes */
#define SMIG_EVLOG_EVENTS_MAX 4096	 /* events after the Spec ID event */
#define SMIG_EVLOG_PCRS 24

#define SMIG_EV_NO_ACTION 3u /* recorded, never extended into a PCR */

struct smig_evlog_event {
	uint32_t pcr;
	uint32_t type;
	uint8_t sha256[32];
	size_t offset; /* of the event in the log */
};

struct smig_evlog {
	struct smig_evlog_event *ev;
	size_t n;
	uint8_t locality; /* from a StartupLocality EV_NO_ACTION event, 0 if none */
};

/*
 * Parses the len bytes of buf (at most SMIG_EVLOG_MAX) into out, which
 * then owns its events (smig_evlog_free). On failure out is empty and err
 * names the event and offset: SMIG_ESHORT for a truncated log,
 * SMIG_ETOOBIG past a maximum, SMIG_EPROTO for anything else malformed.
 */
int smig_evlog_parse(const uint8_t *buf, size_t len, struct smig_evlog *out, char *err,
		     size_t errlen);
void smig_evlog_free(struct smig_evlog *l);

/*
 * The sha256 bank the log leads to, PCRs 0..23. Each PCR starts at its
 * value after TPM2_Startup: 32 zero bytes, but PCR 0 ends in the locality
 * byte when a StartupLocality event says so, and PCRs 17..22 (the dynamic
 * root of trust's, unset on a static boot) start as 32 bytes of 0xff.
 * EV_NO_ACTION events are not extended; every other event extends
 * pcr = SHA-256(pcr || digest). *touched gets bit i for each PCR i the
 * log extends.
 */
void smig_evlog_replay(const struct smig_evlog *l, uint8_t pcr[SMIG_EVLOG_PCRS][32],
		       uint32_t *touched);

/* pcr = SHA-256(pcr || digest): TPM2_PCR_Extend in the sha256 bank. */
void smig_pcr_extend(uint8_t pcr[32], const uint8_t digest[32]);

/*
 * Compares the replay with quoted values: for each i < n, PCR idx[i] must
 * hold val[i]. 0, SMIG_EINVAL for an index past 23, or SMIG_EAUTH; either
 * way why names the first PCR that differs and both values in hex.
 */
int smig_evlog_check(const struct smig_evlog *l, const unsigned *idx, const uint8_t (*val)[32],
		     size_t n, char *why, size_t whylen);

/*
 * A log in the on-disk format (for tests and the test harness): a Spec ID
 * event declaring SHA-256 only, then ev[0..n) with empty event data (their
 * offsets are ignored). *out is malloc'd, the caller frees it.
 * SMIG_EINVAL for a PCR past 23, SMIG_ETOOBIG past the maxima.
 */
int smig_evlog_build(const struct smig_evlog_event *ev, size_t n, uint8_t **out,
		     size_t *outlen);

#endif
