/*
 * ids.h - the reactive part of smigd's monitor: security event kinds,
 * threshold rules, timed bans that double on repeat, and a per-source
 * connection rate limit.
 *
 * A rule says: N events of a kind from one source address within W
 * seconds ban that address for B seconds; each later ban of the same
 * address lasts twice as long as the one before (up to a day). Admission
 * of a new connection (before any TLS work) asks: is the address banned,
 * or over its connection rate (a token bucket)? Everything is a pure
 * function of the calls and the times given, so it is tested with a fake
 * clock; the state is bounded (SMIG_IDS_SOURCES addresses, the least
 * recently seen unbanned one is forgotten first).
 */
#ifndef SMIG_IDS_H
#define SMIG_IDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMIG_IDS_SOURCES 4096
#define SMIG_IDS_ADDR_MAX 64
#define SMIG_IDS_BAN_MAX_S 86400

enum smig_sec_kind {
	SMIG_SEC_CONN_ACCEPTED,
	SMIG_SEC_CONN_REFUSED,
	SMIG_SEC_TLS_FAILURE,
	SMIG_SEC_UNKNOWN_PEER,
	SMIG_SEC_ATTEST_FAILURE,
	SMIG_SEC_POLICY_DENIAL,
	SMIG_SEC_PROTOCOL_VIOLATION,
	SMIG_SEC_RECORD_AUTH_FAILURE,
	SMIG_SEC_STREAM_ANOMALY,
	SMIG_SEC_BAN,
	SMIG_SEC_UNBAN,
	SMIG_SEC_HOSTILE_SPEC, /* a peer's spec names a path, an escape from a pool */
	SMIG_SEC_PATH_ALARM,   /* records with one host keep failing: something on the path */
	SMIG_SEC_KINDS
};

const char *smig_sec_kind_name(enum smig_sec_kind k);
int smig_sec_kind_parse(const char *s, enum smig_sec_kind *out);
/*
 * May a rule ban for events of kind k? Not for what the address did not do
 * itself: a record that fails authentication after the handshake (anyone on
 * the path can flip a bit; it is counted and alarmed instead), nor for the
 * monitor's own outcomes (accepted, refused, ban, unban, path alarm).
 */
bool smig_sec_kind_bannable(enum smig_sec_kind k);

struct smig_ids_rule {
	enum smig_sec_kind kind;
	int count;    /* this many events ... */
	int window_s; /* ... within this many seconds ... */
	int ban_s;    /* ... ban the source this long (doubling on repeat) */
};

struct smig_ids_limits {
	double rate_per_s; /* new connections a source may open per second ... */
	double burst;      /* ... with this much credit; 0: no limit */
};

struct smig_ids;

int smig_ids_new(const struct smig_ids_rule *rules, size_t n,
		 const struct smig_ids_limits *lim, struct smig_ids **out);
void smig_ids_free(struct smig_ids *ids);
/* The default rules (docs/ids.md); *n gets their count. */
const struct smig_ids_rule *smig_ids_default_rules(size_t *n);

/*
 * An event of kind from addr at now_ms. Returns true when it bans addr now;
 * *ban_ms (if not NULL) then gets the ban's length and *rule its index.
 */
bool smig_ids_event(struct smig_ids *ids, const char *addr, enum smig_sec_kind kind,
		    int64_t now_ms, int64_t *ban_ms, size_t *rule);

enum smig_ids_admit {
	SMIG_ADMIT_OK,
	SMIG_ADMIT_BANNED,
	SMIG_ADMIT_RATE, /* over the connection rate */
};

/* May addr open a connection at now_ms? Spends one token when it may. */
enum smig_ids_admit smig_ids_admit(struct smig_ids *ids, const char *addr, int64_t now_ms);
/* Bans addr until until_ms (a ban restored from disk), as of now_ms. */
int smig_ids_ban(struct smig_ids *ids, const char *addr, int64_t now_ms, int64_t until_ms,
		 int strikes);
/* Lifts a ban; SMIG_ENOENT if addr is not banned. */
int smig_ids_unban(struct smig_ids *ids, const char *addr, int64_t now_ms);

struct smig_ids_ban_info {
	char addr[SMIG_IDS_ADDR_MAX];
	int64_t until_ms;
	int strikes; /* bans so far: the next lasts 2^strikes times the rule's */
};

/* The bans in force at now_ms, at most max, into out; returns how many. */
size_t smig_ids_bans(const struct smig_ids *ids, int64_t now_ms, struct smig_ids_ban_info *out,
		     size_t max);
/*
 * The bans in force as JSON text [{"addr", "until_ms", "strikes"}, ...]
 * (malloc'd), and back: entries that are malformed or expired are skipped;
 * returns how many bans were restored, or SMIG_EPROTO if text is not a list.
 */
int smig_ids_bans_dump(const struct smig_ids *ids, int64_t now_ms, char **text);
int smig_ids_bans_load(struct smig_ids *ids, const char *text, size_t len, int64_t now_ms);
/* Sources tracked now (for status: memory stays bounded). */
size_t smig_ids_sources(const struct smig_ids *ids);

#endif
