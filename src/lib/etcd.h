/*
 * etcd.h - a client of etcd v3 through its JSON gateway (/v3/kv/...,
 * /v3/lease/...) over HTTPS with a client certificate: the fleet store's
 * transport (docs/architecture.md, "The fleet store").
 *
 * Two halves: the gateway's messages (etcd_gw.c: base64 keys and values,
 * the request bodies, the answers parsed; no I/O, fuzzed), and the calls
 * (etcd.c: libcurl, one endpoint after another until one answers). A call
 * blocks for at most the configured timeout per endpoint tried; callers
 * that must not block run them on a thread of their own.
 *
 * An answer is etcd's: its text is checked as strictly as a peer's, since
 * whatever holds an endpoint's address or a member's certificate writes it.
 */
#ifndef SMIG_ETCD_H
#define SMIG_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMIG_ETCD_ENDPOINTS_MAX 9
#define SMIG_ETCD_KEY_MAX ((size_t)1024)
#define SMIG_ETCD_VALUE_MAX ((size_t)1 << 20)
/* The most keys one range answer may hold, and the most bytes of it. */
#define SMIG_ETCD_RANGE_MAX ((size_t)100000)
#define SMIG_ETCD_ANSWER_MAX ((size_t)16 << 20)

struct smig_etcd_cfg {
	const char *endpoints[SMIG_ETCD_ENDPOINTS_MAX]; /* "https://10.77.0.1:2379" */
	size_t nendpoints;
	const char *ca, *cert, *key; /* PEM files, or ... */
	const char *ca_pem, *cert_pem, *key_pem; /* ... their text (used when set) */
	long timeout_ms;             /* per endpoint tried (default 2000) */
};

struct smig_etcd_kv {
	char *key;
	uint8_t *value; /* NUL-terminated besides, for text */
	size_t value_len;
	int64_t create_revision, mod_revision, version, lease;
};

struct smig_etcd_kvs {
	struct smig_etcd_kv *v;
	size_t n;
	int64_t revision; /* the store's revision the answer was read at */
	int64_t count;    /* keys in the range (more than n when limited) */
};

void smig_etcd_kvs_free(struct smig_etcd_kvs *k);

/* --- etcd_gw.c: the gateway's messages --- */

/* base64 (standard alphabet, padded) of in[0, len) into a new string. */
char *smig_etcd_b64(const void *in, size_t len);
/* Decodes in into a new buffer (NUL-terminated besides); NULL if not base64. */
uint8_t *smig_etcd_unb64(const char *in, size_t *len);
/*
 * The end of the range of keys that begin with prefix (etcd's range_end):
 * prefix with its last byte that is not 0xff raised by one, in a new
 * buffer of *len bytes.
 */
uint8_t *smig_etcd_prefix_end(const char *prefix, size_t *len);

/*
 * An answer's error, if it is one: {"error": ..., "code": N, "message": ...}.
 * 1 with the message in err, 0 when the answer is not an error.
 */
int smig_etcd_answer_error(const char *body, size_t len, char *err, size_t errlen);
/* /v3/kv/range's answer into out (emptied first). 0, or negative with err. */
int smig_etcd_parse_range(const char *body, size_t len, struct smig_etcd_kvs *out, char *err,
			  size_t errlen);
/* /v3/kv/txn's answer: whether its compares held, and the revision after. */
int smig_etcd_parse_txn(const char *body, size_t len, bool *succeeded, int64_t *revision,
			char *err, size_t errlen);
/* /v3/kv/put's and /v3/kv/deleterange's answer: the revision, and deleted keys. */
int smig_etcd_parse_write(const char *body, size_t len, int64_t *revision, int64_t *deleted,
			  char *err, size_t errlen);
/*
 * /v3/lease/grant's and /v3/lease/keepalive's answer (the latter wrapped
 * in "result"): the lease's id and TTL; a keepalive of a lease that
 * expired answers TTL 0 or none.
 */
int smig_etcd_parse_lease(const char *body, size_t len, int64_t *id, int64_t *ttl, char *err,
			  size_t errlen);

/*
 * One message of /v3/watch's stream: {"result": {...}}, each followed by a
 * newline. The events' key-values in events (a delete's value is empty and
 * its deleted[i] set); canceled with compact_revision > 0 when the revision
 * asked for is compacted away (read anew, then watch from there).
 */
struct smig_etcd_watch_msg {
	bool created, canceled;
	int64_t revision;         /* the header's: the store's revision after these events */
	int64_t compact_revision; /* > 0: canceled for it */
	char reason[160];         /* cancel_reason, if any */
	struct smig_etcd_kvs events;
	bool *deleted;
};
void smig_etcd_watch_msg_free(struct smig_etcd_watch_msg *m);
/*
 * The first message in buf[0, len) (leading blanks skipped): 1 with *used
 * the bytes it took, 0 when buf holds only the start of one (read more),
 * negative with err when it is none.
 */
int smig_etcd_parse_watch(const char *buf, size_t len, struct smig_etcd_watch_msg *out,
			  size_t *used, char *err, size_t errlen);

/* --- etcd.c: the calls --- */

struct smig_etcd;

/* Checks cfg and keeps a copy; nothing is connected yet. NULL with err. */
struct smig_etcd *smig_etcd_open(const struct smig_etcd_cfg *cfg, char *err, size_t errlen);
void smig_etcd_close(struct smig_etcd *e);
/*
 * From another thread: on, the call under way (and any after) gives up at
 * once, failing SMIG_ECLOSED; off again for the calls after.
 */
void smig_etcd_abort(struct smig_etcd *e, bool on);
/* How often a call goes over every endpoint before it fails (default 3). */
void smig_etcd_set_rounds(struct smig_etcd *e, int rounds);
/* The endpoint the last call was answered by (or will be tried first). */
const char *smig_etcd_endpoint(const struct smig_etcd *e);

/* The key, or with prefix every key that begins with it (at most limit, 0: all). */
int smig_etcd_get(struct smig_etcd *e, const char *key, bool prefix, int64_t limit,
		  struct smig_etcd_kvs *out, char *err, size_t errlen);
/*
 * The keys that begin with prefix from key from on (which begins with it),
 * in key order, at most limit: a page of a long range (out->count says how
 * many there are from there). prefix NULL: the key from alone.
 */
int smig_etcd_get_from(struct smig_etcd *e, const char *from, const char *prefix, int64_t limit,
		       struct smig_etcd_kvs *out, char *err, size_t errlen);
/* Writes key (bound to lease unless 0); *revision (may be NULL) after. */
int smig_etcd_put(struct smig_etcd *e, const char *key, const void *value, size_t len,
		  int64_t lease, int64_t *revision, char *err, size_t errlen);
/*
 * Writes key only if its mod_revision is still expect (0: only if it does
 * not exist): the compare-and-swap every ownership change is made of.
 * *done says whether it was written.
 */
int smig_etcd_cas(struct smig_etcd *e, const char *key, int64_t expect, const void *value,
		  size_t len, int64_t lease, bool *done, int64_t *revision, char *err,
		  size_t errlen);
/* Deletes key only if its mod_revision is still expect; *done as above. */
int smig_etcd_delete_if(struct smig_etcd *e, const char *key, int64_t expect, bool *done,
			char *err, size_t errlen);
/* Deletes key (or every key with that prefix); *deleted (may be NULL) how many. */
int smig_etcd_delete(struct smig_etcd *e, const char *key, bool prefix, int64_t *deleted,
		     char *err, size_t errlen);
int smig_etcd_lease_grant(struct smig_etcd *e, int64_t ttl_s, int64_t *id, int64_t *ttl,
			  char *err, size_t errlen);
/* Renews lease id; *ttl is what is left of it then, 0 when it had expired. */
int smig_etcd_lease_keepalive(struct smig_etcd *e, int64_t id, int64_t *ttl, char *err,
			      size_t errlen);
int smig_etcd_lease_revoke(struct smig_etcd *e, int64_t id, char *err, size_t errlen);
/*
 * Watches every key that begins with prefix from revision start on, on the
 * first endpoint that answers: fn gets each message (its events, borrowed)
 * and ends the watch by returning non-zero (then 0 is returned). Blocks
 * until then, the stream ends or breaks (SMIG_ECLOSED; TCP keepalives find
 * a silent peer within about 15 s), smig_etcd_abort, or etcd cancels it
 * (SMIG_EAGAIN when start was compacted away: read anew). One call at a
 * time per client: a thread of its own needs a client of its own.
 */
typedef int (*smig_etcd_watch_fn)(void *arg, const struct smig_etcd_watch_msg *m);
int smig_etcd_watch(struct smig_etcd *e, const char *prefix, int64_t start, smig_etcd_watch_fn fn,
		    void *arg, char *err, size_t errlen);

#endif
