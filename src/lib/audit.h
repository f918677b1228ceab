/*
 * audit.h - the tamper-evident audit log: records, their hash chain,
 * signed checkpoints, the signed head, and verification.
 *
 * A log is JSON lines. Each record has seq (1, 2, ...), time, host, actor,
 * action, target, decision, rule, outcome, optional detail, prev (the hash
 * of the record before, 64 zero digits for the first) and hash: SHA-256 of
 * the record's compact JSON with sorted keys, without hash and sig.
 * Anyone can recompute such a chain, so the host key signs it:
 *  - every N records or T seconds, and at shutdown, a checkpoint record
 *    (action "audit.checkpoint") whose sig is the host key's signature of
 *    its hash, which covers every record before it;
 *  - after every record, a head file {seq, hash, sig} that says where the
 *    log ends, so a log cut after its last checkpoint is found too.
 * Building records and verifying logs are pure functions over text; the
 * daemon does the writing and fsyncs (docs/audit.md).
 */
#ifndef SMIG_AUDIT_H
#define SMIG_AUDIT_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMIG_AUDIT_HASH_LEN 32
#define SMIG_AUDIT_FIELD_MAX 512 /* longer field values are cut */
#define SMIG_AUDIT_CHECKPOINT "audit.checkpoint"
/*
 * The first record of a file that rotation started: it continues the chain
 * of the file before (prev is that file's last hash). A set of files may
 * begin with one when older files were rotated away.
 */
#define SMIG_AUDIT_ROTATE "audit.rotate"
/*
 * The host key changed (its certificate was renewed): a record signed, as
 * a checkpoint is, by the old key, whose detail names both public keys
 * ("old:HEX new:HEX"), followed at once by a checkpoint of the new key.
 * The old key so vouches for everything up to the change and the new key
 * for the change itself; verification, given the current key, goes back
 * through these records to the key of each stretch of the log.
 */
#define SMIG_AUDIT_REKEY "audit.rekey"
/* Signature contexts (sign.h). */
#define SMIG_AUDIT_CTX_CHECKPOINT "smig-audit-checkpoint-v1"
#define SMIG_AUDIT_CTX_HEAD "smig-audit-head-v1"

/* Where a chain stands: the last record written. */
struct smig_audit_chain {
	uint64_t seq; /* 0: empty log */
	uint8_t head[SMIG_AUDIT_HASH_LEN];
	uint64_t since_checkpoint; /* records after the last checkpoint */
};

struct smig_audit_entry {
	int64_t time_ms; /* Unix time in ms */
	const char *host;
	const char *actor;    /* "user:alice(1000)", "peer:h2", "smigd" */
	const char *action;   /* "vm.migrate", "policy.reload", ... */
	const char *target;   /* "vm:web1 to:h2", "host:h1", ... */
	const char *decision; /* "allow", "deny" or "none" */
	const char *rule;     /* the deciding rule, or "-" */
	const char *outcome;  /* "ok", "refused", "failed", "committed", ... */
	const char *detail;   /* NULL or free text */
};

/*
 * Makes the next record (one line ending in '\n', malloc'd in *line) and
 * advances the chain. Field values are made printable ASCII and cut at
 * SMIG_AUDIT_FIELD_MAX.
 */
int smig_audit_record(struct smig_audit_chain *c, const struct smig_audit_entry *e,
		      char **line);
/* SHA-256 of a record: its compact sorted-key JSON without hash and sig. */
int smig_audit_hash_json(const json_t *rec, uint8_t out[SMIG_AUDIT_HASH_LEN]);
/* Makes a checkpoint record signed with key and advances the chain. */
int smig_audit_checkpoint(struct smig_audit_chain *c, const char *host, int64_t time_ms,
			  EVP_PKEY *key, char **line);
/*
 * The two records of a key change (SMIG_AUDIT_REKEY) as two lines in one
 * malloc'd *lines, the chain advanced past both; old_key and new_key are
 * Ed25519. The head after them is the new key's to sign.
 */
int smig_audit_rekey(struct smig_audit_chain *c, const char *host, int64_t time_ms,
		     EVP_PKEY *old_key, EVP_PKEY *new_key, char **lines);
/* The message a head's signature covers. */
void smig_audit_head_msg(uint64_t seq, const uint8_t hash[SMIG_AUDIT_HASH_LEN],
			 uint8_t out[8 + SMIG_AUDIT_HASH_LEN]);
/* The head text for the chain's current end, signed with key. */
int smig_audit_head(const struct smig_audit_chain *c, EVP_PKEY *key, char **text);
/*
 * Sets c from an existing log: the last complete record's seq and hash and
 * the records after its last checkpoint. An empty log gives an empty chain.
 * Lines that are not records are skipped and counted in err (SMIG_EPROTO);
 * c is still set from the records that were read.
 */
int smig_audit_resume(const char *text, size_t len, struct smig_audit_chain *c, char *err,
		      size_t errlen);

enum smig_audit_damage {
	SMIG_AUDIT_EDITED,
	SMIG_AUDIT_DELETED,
	SMIG_AUDIT_REORDERED,
	SMIG_AUDIT_INSERTED,
	SMIG_AUDIT_TRUNCATED,
	SMIG_AUDIT_SIGNATURE,
	SMIG_AUDIT_DAMAGE_KINDS
};

const char *smig_audit_damage_name(enum smig_audit_damage k);

/* The first bad record found for each kind of damage. */
struct smig_audit_finding {
	bool found;
	char file[64]; /* the file of the set it is in ("" with one unnamed text) */
	size_t line;  /* 1-based line of that file; 0 for the head file */
	uint64_t seq; /* the record's seq, when it has one */
	char msg[256];
};

struct smig_audit_report {
	size_t files;       /* files read, oldest first */
	uint64_t first_seq; /* the first record's seq: > 1 when older files rotated away */
	size_t records;     /* lines read, checkpoints included */
	size_t checkpoints; /* with a good signature */
	uint64_t last_seq;
	bool head_checked;
	size_t unsigned_tail; /* records after the last good checkpoint */
	bool damaged;
	struct smig_audit_finding kind[SMIG_AUDIT_DAMAGE_KINDS];
};

/*
 * Verifies a whole log against pub (the host's public key now; stretches
 * before an audit.rekey record are checked against the key it names as
 * the old one, once the records after it prove it with pub). head may be
 * NULL (a copy of a log without its head file): then records after the
 * last checkpoint cannot be checked for truncation and are counted in
 * unsigned_tail. Returns 0 when the log could be examined (damaged or
 * not: see rep->damaged), negative on errors such as out of memory.
 */
int smig_audit_verify(const char *text, size_t len, const char *head, size_t head_len,
		      EVP_PKEY *pub, struct smig_audit_report *rep);

/* One file of a rotated set. */
struct smig_audit_file {
	const char *name; /* for findings, e.g. "audit.log.2" */
	const char *text;
	size_t len;
};

/*
 * Verifies a rotated set as one chain: files[0] the oldest (audit.log.N),
 * the last the current log, whose head is head. The chain runs across
 * files; only the first file may begin past seq 1, and only with an
 * audit.rotate record (first_seq says where the set begins).
 */
int smig_audit_verify_files(const struct smig_audit_file *files, size_t nfiles,
			    const char *head, size_t head_len, EVP_PKEY *pub,
			    struct smig_audit_report *rep);

/*
 * Reads the rotated set of the log at path: path.N .. path.2, path.1 (N the
 * highest number there is; one missing below it reads as empty, so the
 * chain shows the gap), then path itself (missing: empty). Each file at most max bytes. *files is malloc'd, names
 * are the files' base names; free with smig_audit_files_free.
 */
int smig_audit_files_read(const char *path, size_t max, struct smig_audit_file **files,
			  size_t *n, char *err, size_t errlen);
void smig_audit_files_free(struct smig_audit_file *files, size_t n);

/*
 * The report as JSON: {ok, files, first_seq, records, checkpoints, last_seq,
 * head_checked, unsigned_tail, damage: [{kind, file, line, seq, message}]}.
 */
json_t *smig_audit_report_json(const struct smig_audit_report *rep);

#endif
