/*
 * ima.h - the kernel's IMA runtime measurement list, its replay into PCR
 * 10, and allowlists of the files a host may run.
 *
 * With IMA on, the kernel measures files as they are executed or read
 * (by its policy), appends an entry to a list and extends a PCR (10) with
 * it. The list is in /sys/kernel/security/ima/, in a binary and an ASCII
 * form; both are read here, for the templates ima-ng and ima-sig (and the
 * original ima). Replaying the list into the sha256 bank and comparing
 * with a quoted PCR 10 tells whether the list is complete and true; then
 * each entry can be held against an allowlist. Everything here is pure:
 * the bytes come from the caller.
 *
 * Binary entry (integers little-endian, as the kernel writes them on x86):
 *   u32 pcr, 20-byte template digest (SHA-1 of the template data),
 *   u32 template name length, name, u32 template data length, data.
 * ima-ng's template data: u32 length + "ALGO:\0" + file digest, then
 * u32 length + file name and its NUL; ima-sig adds u32 length + signature
 * (maybe empty). The original ima template has no data length: a 20-byte
 * SHA-1 file digest, then u32 length + name without its NUL.
 * ASCII line: "PCR TEMPLATE_SHA1 TEMPLATE ALGO:DIGEST PATH [SIG]", the PCR
 * printed as "%2d" and ima-sig's signature field empty (the line ends in
 * a space) when the file has none. The kernel writes every space in a
 * path as '_', so fields split on spaces.
 *
 * The sha256 bank is extended with SHA-256 of the template data (for ima,
 * of the file digest and the name padded with zeros to 256 bytes): not
 * with the SHA-1 template digest. An entry whose template digest is all
 * zeros records a measurement violation (a file measured while open for
 * write, or the like); for it the kernel extends 32 bytes of 0xff.
 */
#ifndef SMIG_IMA_H
#define SMIG_IMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMIG_IMA_MAX ((size_t)16 << 20) /* bytes */
#define SMIG_IMA_ENTRIES_MAX 200000
#define SMIG_IMA_PATH_MAX 4096 /* a file name's bytes with its NUL (PATH_MAX) */
#define SMIG_IMA_PCR 10	       /* the PCR IMA extends unless its policy says otherwise */
#define SMIG_IMA_DIGEST_MAX 64

struct smig_ima_entry {
	uint32_t pcr;
	char tmpl[8];  /* template: "ima", "ima-ng" or "ima-sig" */
	char algo[16]; /* of the file digest: "sha256", "sha1", ... */
	uint8_t digest[SMIG_IMA_DIGEST_MAX];
	size_t digest_len;
	const char *path; /* NUL-terminated, in the list's own storage */
	uint8_t extend[32]; /* what the sha256 bank was extended with */
	bool violation;
};

struct smig_ima {
	struct smig_ima_entry *e;
	size_t n;
	char *paths; /* the storage e[].path points into */
};

/*
 * Parses the len bytes of buf (at most SMIG_IMA_MAX), the binary list or,
 * when ascii, the ASCII one, into out, which then owns its entries
 * (smig_ima_free). A template digest that is not SHA-1 of the template
 * data is refused, except all zeros (a violation). On failure out is
 * empty and err names the entry (1-based) and its byte offset or line:
 * SMIG_ESHORT for a truncated list, SMIG_ETOOBIG past a maximum,
 * SMIG_EPROTO for anything else malformed.
 */
int smig_ima_parse(const uint8_t *buf, size_t len, bool ascii, struct smig_ima *out, char *err,
		   size_t errlen);
void smig_ima_free(struct smig_ima *l);

/*
 * PCR 10 of the sha256 bank after entries [from, n) (n an index, not a
 * count: at most l->n), extended from start, the value the PCR held after
 * entries [0, from) (32 zero bytes when from is 0). Entries of other PCRs
 * are skipped.
 */
void smig_ima_replay(const struct smig_ima *l, size_t from, size_t n, const uint8_t start[32],
		     uint8_t out[32]);

/*
 * A binary ima-ng list (for tests and the test harness), all in PCR 10:
 * boot_aggregate with the sha256 digest aggregate, then paths[i] with
 * digests[i]. Paths must be absolute, shorter than SMIG_IMA_PATH_MAX and
 * without spaces (the kernel never writes one). *out is malloc'd, the
 * caller frees it.
 */
int smig_ima_build(const char *const *paths, const uint8_t (*digests)[32], size_t n,
		   const uint8_t aggregate[32], uint8_t **out, size_t *outlen);

/*
 * An allowlist: the SHA-256 digests each file may have, and path prefixes
 * nobody judges (data directories whose files IMA measures but smig does
 * not care for). JSON, strict:
 *   {"files": {"/usr/bin/qemu-system-x86_64": [HEX32, ...], ...},
 *    "exclude": ["/tmp/", "/var/log/"]}
 * Lookups are a binary search over (path, digest) pairs sorted by path.
 */
#define SMIG_ALLOWLIST_MAX ((size_t)32 << 20) /* bytes of JSON */
#define SMIG_ALLOW_DIGESTS_MAX 256	      /* per file */
#define SMIG_ALLOW_EXCLUDE_MAX 256

struct smig_allowed {
	const char *path; /* in the allowlist's own storage */
	uint8_t sha256[32];
};

struct smig_allowlist {
	struct smig_allowed *v; /* sorted by path, then digest */
	size_t n;
	const char **exclude;
	size_t nexclude;
	char *paths; /* the storage of v[].path and exclude[] */
};

/*
 * Parses text (len bytes), or the file name when text is NULL, into al,
 * which then owns its storage (smig_allowlist_free). Errors say
 * file:line:column and return SMIG_ECONFIG (a file that cannot be read:
 * its error from smig_file_read).
 */
int smig_allowlist_parse(const char *name, const char *text, size_t len,
			 struct smig_allowlist *al, char *err, size_t errlen);
void smig_allowlist_free(struct smig_allowlist *al);
/* The same from an object (o) of a document already loaded (an IVT host's "allowlist"). */
struct smig_json_doc;
int smig_allowlist_from_json(const struct smig_json_doc *doc, const json_t *o,
			     struct smig_allowlist *al, char *err, size_t errlen);
/* The allowlist as the JSON object it was read from ("files", "exclude"). */
json_t *smig_allowlist_json(const struct smig_allowlist *al);

/*
 * Judges entries [from, l->n) of PCR 10: each must be the first entry's
 * boot_aggregate (its digest is checked elsewhere), under an excluded
 * prefix, or a file the allowlist names with a SHA-256 digest it accepts.
 * A measurement violation fails unless its path is excluded. 0, or
 * SMIG_EAUTH with why naming the first entry (1-based) that fails.
 */
int smig_allowlist_check(const struct smig_allowlist *al, const struct smig_ima *l, size_t from,
			 char *why, size_t whylen);

#endif
