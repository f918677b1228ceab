/*
 * audit_verify.c - checks an audit log (see audit.h).
 *
 * The records are read once into a table; then each kind of damage has
 * its own pass, so that one kind never hides another:
 *  - edited: a record whose content does not match its hash, or whose hash
 *    is not what the next record chained to (edited and re-hashed), or
 *    that differs from the signed head;
 *  - inserted: a second record with the same seq that the chain does not
 *    go through, or records after the signed head;
 *  - deleted: a seq missing between 1 (or, in a rotated set, the first
 *    file's audit.rotate record) and the last;
 *  - reordered: a record that comes after a record with a higher seq;
 *  - truncated: the log ends before the seq its signed head names;
 *  - signature: a checkpoint or head whose signature is not the host's,
 *    or a key change (audit.rekey) that does not lead to the host's key.
 *
 * Which key signs which stretch: the log is walked back from its end with
 * the key the caller trusts (the host's now). An audit.rekey record names
 * the key before it and the key after; it is taken only when the key
 * after is the one in force and a record after it signed by that key
 * vouches for it (smigd writes a checkpoint of the new key right after),
 * and from there back the old key is in force. So a forged change at the
 * end of a log, or one the trusted key never signed over, changes nothing.
 */
#include "audit.h"
#include "error.h"
#include "sign.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_LINES_MAX ((size_t)16 * 1024 * 1024)

struct ent {
	size_t file; /* index into the set */
	size_t line; /* in its file */
	bool ok; /* a well-formed record */
	uint64_t seq;
	uint8_t prev[SMIG_AUDIT_HASH_LEN];
	uint8_t hash[SMIG_AUDIT_HASH_LEN];
	bool hash_ok;
	bool checkpoint;
	bool rotate; /* an audit.rotate record: a file rotation began */
	uint64_t rot_from; /* ... and the seq its oldest kept file begins at ("from:N") */
	bool has_sig;
	uint8_t sig[SMIG_SIG_LEN];
	bool sig_ok;   /* signed by the key in force where it stands */
	bool rekey;    /* an audit.rekey record with both keys readable */
	uint8_t rk_old[32], rk_new[32];
	const char *rk_bad; /* why this key change was not taken, or NULL */
	bool inserted;
};

struct vctx {
	const struct smig_audit_file *files;
	size_t nfiles;
	struct ent *e;
	size_t n;
	size_t *by_seq; /* indexes of ok entries, sorted by (seq, line) */
	size_t nseq;
	struct smig_audit_report *rep;
	EVP_PKEY *pub;
};

const char *smig_audit_damage_name(enum smig_audit_damage k)
{
	static const char *const names[SMIG_AUDIT_DAMAGE_KINDS] = {
		"edited", "deleted", "reordered", "inserted", "truncated", "signature",
	};
	return (unsigned)k < SMIG_AUDIT_DAMAGE_KINDS ? names[k] : "unknown";
}

/* "audit.log.1:12", or "line 12" for one unnamed text: where a record is. */
static const char *at(const struct vctx *v, const struct ent *e, char *buf, size_t len)
{
	const char *name = v->files[e->file].name;

	if (name && name[0])
		snprintf(buf, len, "%s:%zu", name, e->line);
	else
		snprintf(buf, len, "line %zu", e->line);
	return buf;
}

/* e: the record it is about, NULL for the head file. */
static void found(struct vctx *v, enum smig_audit_damage k, const struct ent *e, uint64_t seq,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void found(struct vctx *v, enum smig_audit_damage k, const struct ent *e, uint64_t seq,
		  const char *fmt, ...)
{
	struct smig_audit_finding *f = &v->rep->kind[k];
	const char *name = e ? v->files[e->file].name : NULL;
	va_list ap;

	v->rep->damaged = true;
	if (f->found)
		return;
	f->found = true;
	snprintf(f->file, sizeof(f->file), "%s", name ? name : "");
	f->line = e ? e->line : 0;
	f->seq = seq;
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
	va_end(ap);
}

/* "old:HEX new:HEX" (64 digits each), the detail of an audit.rekey record. */
static bool parse_rekey(const char *s, struct ent *e)
{
	char old[65], new_[65];

	if (s == NULL || strlen(s) != 4 + 64 + 5 + 64 || strncmp(s, "old:", 4) != 0 ||
	    strncmp(s + 68, " new:", 5) != 0)
		return false;
	memcpy(old, s + 4, 64);
	old[64] = '\0';
	memcpy(new_, s + 73, 64);
	new_[64] = '\0';
	return smig_unhex(old, e->rk_old, 32) == 0 && smig_unhex(new_, e->rk_new, 32) == 0;
}

static void parse_entry(struct ent *e, const char *s, size_t n)
{
	json_t *o = json_loadb(s, n, JSON_REJECT_DUPLICATES, NULL);
	static const char *const strs[] = { "time", "host", "actor", "action", "target",
					    "decision", "rule", "outcome" };
	const json_t *seq = json_object_get(o, "seq");
	const json_t *sig = json_object_get(o, "sig");
	uint8_t h[SMIG_AUDIT_HASH_LEN];

	e->ok = json_is_object(o) && json_is_integer(seq) && json_integer_value(seq) > 0 &&
		smig_unhex(json_string_value(json_object_get(o, "prev")), e->prev,
			   SMIG_AUDIT_HASH_LEN) == 0 &&
		smig_unhex(json_string_value(json_object_get(o, "hash")), e->hash,
			   SMIG_AUDIT_HASH_LEN) == 0;
	for (size_t i = 0; e->ok && i < ARRAY_LEN(strs); i++)
		e->ok = json_is_string(json_object_get(o, strs[i]));
	if (e->ok) {
		e->seq = (uint64_t)json_integer_value(seq);
		e->checkpoint = strcmp(json_string_value(json_object_get(o, "action")),
				       SMIG_AUDIT_CHECKPOINT) == 0;
		if (strcmp(json_string_value(json_object_get(o, "action")), SMIG_AUDIT_REKEY) == 0)
			e->rekey = e->checkpoint =
				parse_rekey(json_string_value(json_object_get(o, "detail")), e);
		e->rotate = strcmp(json_string_value(json_object_get(o, "action")),
				   SMIG_AUDIT_ROTATE) == 0;
		if (e->rotate) {
			const char *from =
				strstr(json_string_value(json_object_get(o, "target")), "from:");
			char *end = NULL;
			unsigned long long v = 0;

			if (from && from[5] >= '0' && from[5] <= '9') {
				errno = 0;
				v = strtoull(from + 5, &end, 10);
			}
			if (end && errno == 0 && (*end == '\0' || *end == ' '))
				e->rot_from = v;
		}
		e->has_sig = sig && smig_unhex(json_string_value(sig), e->sig, SMIG_SIG_LEN) == 0;
		e->hash_ok = smig_audit_hash_json(o, h) == 0 &&
			     memcmp(h, e->hash, SMIG_AUDIT_HASH_LEN) == 0;
	}
	json_decref(o);
}

static int read_entries(struct vctx *v, size_t file, size_t *cap)
{
	const char *text = v->files[file].text;
	size_t len = v->files[file].len, off = 0, line = 0;

	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (text + off)) : len - off;

		if (v->n == *cap) {
			struct ent *ne;

			SMIG_ENSURE(*cap < AUDIT_LINES_MAX, SMIG_ETOOBIG);
			*cap = *cap ? 2 * *cap : 256;
			ne = realloc(v->e, *cap * sizeof(*ne));
			SMIG_ENSURE(ne != NULL, SMIG_ENOMEM);
			v->e = ne;
		}
		memset(&v->e[v->n], 0, sizeof(v->e[0]));
		v->e[v->n].file = file;
		v->e[v->n].line = ++line;
		parse_entry(&v->e[v->n], text + off, n);
		v->n++;
		off += n + (nl ? 1 : 0);
	}
	return 0;
}

static int cmp_seq(const void *a, const void *b, void *arg)
{
	const struct ent *base = arg;
	const struct ent *x = &base[*(const size_t *)a];
	const struct ent *y = &base[*(const size_t *)b];

	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return x < y ? -1 : (x > y); /* then in the order read */
}

static int index_by_seq(struct vctx *v)
{
	v->by_seq = calloc(v->n + 1, sizeof(*v->by_seq));
	SMIG_ENSURE(v->by_seq != NULL, SMIG_ENOMEM);
	for (size_t i = 0; i < v->n; i++)
		if (v->e[i].ok)
			v->by_seq[v->nseq++] = i;
	qsort_r(v->by_seq, v->nseq, sizeof(*v->by_seq), cmp_seq, v->e);
	return 0;
}

static void check_malformed(struct vctx *v)
{
	char w[96];

	for (size_t i = 0; i < v->n; i++)
		if (!v->e[i].ok)
			found(v, SMIG_AUDIT_EDITED, &v->e[i], 0, "%s is not an audit record",
			      at(v, &v->e[i], w, sizeof(w)));
}

/* True if some record with seq s+1 chains to e. */
static bool chained_to(const struct vctx *v, size_t from, const struct ent *e)
{
	for (size_t i = from; i < v->nseq && v->e[v->by_seq[i]].seq <= e->seq + 1; i++) {
		const struct ent *n = &v->e[v->by_seq[i]];

		if (n->seq == e->seq + 1 && memcmp(n->prev, e->hash, SMIG_AUDIT_HASH_LEN) == 0)
			return true;
	}
	return false;
}

/* Of several records with one seq, the chain goes through one; the rest are inserted. */
static void check_duplicates(struct vctx *v, const uint8_t *head_hash, uint64_t head_seq)
{
	char w[96];

	for (size_t i = 0, j; i < v->nseq; i = j) {
		uint64_t seq = v->e[v->by_seq[i]].seq;
		size_t keep = i;

		for (j = i + 1; j < v->nseq && v->e[v->by_seq[j]].seq == seq; j++)
			;
		if (j - i == 1)
			continue;
		for (size_t k = i; k < j; k++) {
			const struct ent *e = &v->e[v->by_seq[k]];

			if (chained_to(v, j, e) ||
			    (head_hash && seq == head_seq &&
			     memcmp(e->hash, head_hash, SMIG_AUDIT_HASH_LEN) == 0)) {
				keep = k;
				break;
			}
		}
		for (size_t k = i; k < j; k++) {
			struct ent *e = &v->e[v->by_seq[k]];

			if (k == keep)
				continue;
			e->inserted = true;
			found(v, SMIG_AUDIT_INSERTED, e, seq,
			      "%s: a second record with seq %llu, outside the chain",
			      at(v, e, w, sizeof(w)), (unsigned long long)seq);
		}
	}
}

static void check_link(struct vctx *v, const struct ent *prev, const struct ent *e)
{
	static const uint8_t zero[SMIG_AUDIT_HASH_LEN];
	char w[96];

	/*
	 * A set may begin where rotation began a file (older files rotated
	 * away): only at the first line of the first file, only with the
	 * audit.rotate record rotation writes there.
	 */
	if (prev == NULL && e->rotate && e->file == 0 && e->line == 1) {
		v->rep->first_seq = e->seq;
		return;
	}
	if (prev == NULL)
		v->rep->first_seq = e->seq;
	if (prev == NULL && e->seq > 1)
		found(v, SMIG_AUDIT_DELETED, e, 1, "records 1..%llu are missing (before %s)",
		      (unsigned long long)e->seq - 1, at(v, e, w, sizeof(w)));
	else if (prev == NULL && memcmp(e->prev, zero, sizeof(zero)) != 0)
		found(v, SMIG_AUDIT_EDITED, e, e->seq, "%s: the first record does not start a chain",
		      at(v, e, w, sizeof(w)));
	else if (prev && e->seq > prev->seq + 1)
		found(v, SMIG_AUDIT_DELETED, e, prev->seq + 1,
		      "records %llu..%llu are missing (before %s)",
		      (unsigned long long)prev->seq + 1, (unsigned long long)e->seq - 1,
		      at(v, e, w, sizeof(w)));
	else if (prev && memcmp(e->prev, prev->hash, SMIG_AUDIT_HASH_LEN) != 0 &&
		 prev->hash_ok)
		found(v, SMIG_AUDIT_EDITED, prev, prev->seq,
		      "%s (seq %llu) was changed and re-hashed: seq %llu chains to "
		      "another hash", at(v, prev, w, sizeof(w)), (unsigned long long)prev->seq,
		      (unsigned long long)e->seq);
}

/* Walks the chain in seq order: content vs hash, links, gaps. */
static void check_chain(struct vctx *v)
{
	const struct ent *prev = NULL;
	char w[96];

	for (size_t i = 0; i < v->nseq; i++) {
		const struct ent *e = &v->e[v->by_seq[i]];

		if (e->inserted)
			continue;
		if (!e->hash_ok)
			found(v, SMIG_AUDIT_EDITED, e, e->seq,
			      "%s (seq %llu): content does not match its hash",
			      at(v, e, w, sizeof(w)), (unsigned long long)e->seq);
		check_link(v, prev, e);
		prev = e;
		v->rep->last_seq = e->seq;
	}
}

/*
 * The newest audit.rotate record says where the oldest file rotation kept
 * begins: a set that begins later lost files that should still be there
 * (taken away, not rotated away).
 */
static void check_kept(struct vctx *v)
{
	const struct ent *last = NULL;

	for (size_t i = 0; i < v->nseq; i++) {
		const struct ent *e = &v->e[v->by_seq[i]];

		if (!e->inserted && e->rotate && e->rot_from && e->hash_ok)
			last = e;
	}
	if (last && v->rep->first_seq > last->rot_from)
		found(v, SMIG_AUDIT_DELETED, &v->e[v->by_seq[0]], last->rot_from,
		      "records %llu..%llu are missing: the set begins at seq %llu, but its last "
		      "rotation (seq %llu) kept files from seq %llu",
		      (unsigned long long)last->rot_from,
		      (unsigned long long)v->rep->first_seq - 1,
		      (unsigned long long)v->rep->first_seq, (unsigned long long)last->seq,
		      (unsigned long long)last->rot_from);
}

static void check_order(struct vctx *v)
{
	uint64_t max = 0;
	char w[96];

	for (size_t i = 0; i < v->n; i++) {
		const struct ent *e = &v->e[i];

		if (!e->ok || e->inserted)
			continue;
		if (e->seq < max)
			found(v, SMIG_AUDIT_REORDERED, e, e->seq, "%s: seq %llu comes after seq %llu",
			      at(v, e, w, sizeof(w)), (unsigned long long)e->seq,
			      (unsigned long long)max);
		if (e->seq > max)
			max = e->seq;
	}
}

static bool sig_by(EVP_PKEY *key, const struct ent *e)
{
	return key && e->has_sig &&
	       smig_sign_verify(key, SMIG_AUDIT_CTX_CHECKPOINT, e->hash, SMIG_AUDIT_HASH_LEN,
				e->sig) == 0;
}

static bool key_is(EVP_PKEY *key, const uint8_t raw[32])
{
	uint8_t k[32];
	size_t n = sizeof(k);

	return key && EVP_PKEY_get_raw_public_key(key, k, &n) == 1 && n == sizeof(k) &&
	       memcmp(k, raw, sizeof(k)) == 0;
}

/*
 * Back from the end: each signed record is checked against the key in
 * force where it stands (sig_ok); a key change is taken (the key before it
 * is in force before it) only when it leads to the key in force after it
 * and a record after it, joined to it by an unbroken chain, was signed by
 * that key. The keys made here are freed before the walk returns.
 */
static int check_keys(struct vctx *v)
{
	EVP_PKEY *made = NULL; /* the key in force, when a key change made it */
	EVP_PKEY *cur = v->pub;
	const struct ent *later = NULL;
	bool vouched = false; /* a record after here, chained to here, was signed by cur */

	for (size_t i = v->nseq; i-- > 0;) {
		struct ent *e = &v->e[v->by_seq[i]];

		if (e->inserted)
			continue;
		if (later && (later->seq != e->seq + 1 || !e->hash_ok ||
			      memcmp(later->prev, e->hash, SMIG_AUDIT_HASH_LEN) != 0))
			vouched = false; /* what was signed after the break does not cover this */
		later = e;
		if (!e->checkpoint)
			continue;
		if (e->rekey && !e->hash_ok)
			e->rk_bad = "it was edited";
		else if (e->rekey && !key_is(cur, e->rk_new))
			e->rk_bad = "the key it names as the new one is not the key of the records "
				    "after it";
		else if (e->rekey && !vouched)
			e->rk_bad = "no record after it is signed by the new key";
		else if (e->rekey) {
			EVP_PKEY_free(made);
			made = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, e->rk_old, 32);
			SMIG_ENSURE(made != NULL, SMIG_ENOMEM);
			cur = made;
		}
		e->sig_ok = sig_by(cur, e);
		vouched = e->sig_ok && e->hash_ok;
	}
	EVP_PKEY_free(made);
	return 0;
}

/* Returns the highest seq a good checkpoint covers. */
static uint64_t check_checkpoints(struct vctx *v)
{
	uint64_t covered = 0;
	char w[96];

	for (size_t i = 0; i < v->n; i++) {
		const struct ent *e = &v->e[i];

		if (!e->ok || e->inserted || !e->checkpoint)
			continue;
		if (e->rk_bad)
			found(v, SMIG_AUDIT_SIGNATURE, e, e->seq,
			      "%s (seq %llu): a change of the host key that is not taken: %s",
			      at(v, e, w, sizeof(w)), (unsigned long long)e->seq, e->rk_bad);
		if (!e->sig_ok) {
			found(v, SMIG_AUDIT_SIGNATURE, e, e->seq,
			      "%s (seq %llu): checkpoint signature is not this host's",
			      at(v, e, w, sizeof(w)), (unsigned long long)e->seq);
			continue;
		}
		if (e->hash_ok) {
			v->rep->checkpoints++;
			if (e->seq > covered)
				covered = e->seq;
		}
	}
	return covered;
}

struct head {
	uint64_t seq;
	uint8_t hash[SMIG_AUDIT_HASH_LEN];
	uint8_t sig[SMIG_SIG_LEN];
};

static int parse_head(const char *text, size_t len, struct head *h)
{
	json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	const json_t *seq = json_object_get(o, "seq");
	int ok = json_is_object(o) && json_object_size(o) == 3 && json_is_integer(seq) &&
		 json_integer_value(seq) >= 0 &&
		 smig_unhex(json_string_value(json_object_get(o, "hash")), h->hash,
			    sizeof(h->hash)) == 0 &&
		 smig_unhex(json_string_value(json_object_get(o, "sig")), h->sig,
			    sizeof(h->sig)) == 0;

	if (ok)
		h->seq = (uint64_t)json_integer_value(seq);
	json_decref(o);
	return ok ? 0 : SMIG_EINVAL;
}

static const struct ent *genuine(const struct vctx *v, uint64_t seq)
{
	for (size_t i = 0; i < v->nseq; i++) {
		const struct ent *e = &v->e[v->by_seq[i]];

		if (e->seq == seq && !e->inserted)
			return e;
	}
	return NULL;
}

static void check_head(struct vctx *v, const struct head *h)
{
	uint8_t msg[8 + SMIG_AUDIT_HASH_LEN];
	const struct ent *last;
	char w[96];

	smig_audit_head_msg(h->seq, h->hash, msg);
	if (smig_sign_verify(v->pub, SMIG_AUDIT_CTX_HEAD, msg, sizeof(msg), h->sig) < 0) {
		found(v, SMIG_AUDIT_SIGNATURE, NULL, h->seq, "head: signature is not this host's");
		return;
	}
	v->rep->head_checked = true;
	if (h->seq > v->rep->last_seq) {
		const struct ent *end = v->n ? &v->e[v->n - 1] : NULL;

		found(v, SMIG_AUDIT_TRUNCATED, end, v->rep->last_seq + 1,
		      "the log ends at seq %llu (%s); its signed head says seq %llu",
		      (unsigned long long)v->rep->last_seq,
		      end ? at(v, end, w, sizeof(w)) : "empty", (unsigned long long)h->seq);
		return;
	}
	last = genuine(v, h->seq);
	if (last && memcmp(last->hash, h->hash, SMIG_AUDIT_HASH_LEN) != 0)
		found(v, SMIG_AUDIT_EDITED, last, last->seq, "%s (seq %llu) differs from the signed head",
		      at(v, last, w, sizeof(w)), (unsigned long long)last->seq);
	for (size_t i = 0; i < v->n; i++) {
		const struct ent *e = &v->e[i];

		if (e->ok && !e->inserted && e->seq > h->seq)
			found(v, SMIG_AUDIT_INSERTED, e, e->seq,
			      "%s (seq %llu) comes after the signed head (seq %llu)",
			      at(v, e, w, sizeof(w)), (unsigned long long)e->seq,
			      (unsigned long long)h->seq);
	}
}

int smig_audit_verify_files(const struct smig_audit_file *files, size_t nfiles,
			    const char *head, size_t head_len, EVP_PKEY *pub,
			    struct smig_audit_report *rep)
{
	struct vctx v = { .files = files, .nfiles = nfiles, .rep = rep, .pub = pub };
	struct head h;
	bool have_head = false;
	uint64_t covered;
	size_t cap = 0;
	int rc;

	memset(rep, 0, sizeof(*rep));
	rep->files = nfiles;
	for (size_t i = 0; i < nfiles; i++)
		SMIG_GUARD_GOTO(read_entries(&v, i, &cap), rc, out);
	SMIG_GUARD_GOTO(index_by_seq(&v), rc, out);
	rep->records = v.n;
	if (head) {
		have_head = parse_head(head, head_len, &h) == 0;
		if (!have_head)
			found(&v, SMIG_AUDIT_SIGNATURE, NULL, 0, "head: not a signed head");
	}
	check_malformed(&v);
	check_duplicates(&v, have_head ? h.hash : NULL, have_head ? h.seq : 0);
	check_chain(&v);
	check_kept(&v);
	check_order(&v);
	SMIG_GUARD_GOTO(check_keys(&v), rc, out);
	covered = check_checkpoints(&v);
	if (have_head)
		check_head(&v, &h);
	for (size_t i = 0; !rep->head_checked && i < v.nseq; i++)
		if (!v.e[v.by_seq[i]].inserted && v.e[v.by_seq[i]].seq > covered)
			rep->unsigned_tail++;
	rc = 0;
out:
	free(v.e);
	free(v.by_seq);
	return rc;
}

int smig_audit_verify(const char *text, size_t len, const char *head, size_t head_len,
		      EVP_PKEY *pub, struct smig_audit_report *rep)
{
	const struct smig_audit_file one = { .name = NULL, .text = text, .len = len };

	return smig_audit_verify_files(&one, 1, head, head_len, pub, rep);
}

json_t *smig_audit_report_json(const struct smig_audit_report *rep)
{
	json_t *damage = json_array();

	for (int k = 0; k < SMIG_AUDIT_DAMAGE_KINDS; k++) {
		const struct smig_audit_finding *f = &rep->kind[k];

		if (f->found)
			json_array_append_new(
				damage, json_pack("{s:s,s:s,s:I,s:I,s:s}", "kind",
						  smig_audit_damage_name((enum smig_audit_damage)k),
						  "file", f->file, "line", (json_int_t)f->line, "seq",
						  (json_int_t)f->seq, "message", f->msg));
	}
	return json_pack("{s:b,s:I,s:I,s:I,s:I,s:I,s:b,s:I,s:o}", "ok", !rep->damaged, "files",
			 (json_int_t)rep->files, "first_seq", (json_int_t)rep->first_seq, "records",
			 (json_int_t)rep->records, "checkpoints", (json_int_t)rep->checkpoints,
			 "last_seq", (json_int_t)rep->last_seq, "head_checked", rep->head_checked,
			 "unsigned_tail", (json_int_t)rep->unsigned_tail, "damage", damage);
}
