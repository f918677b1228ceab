/*
 * test_audit.c - the audit chain: a clean log verifies, and each kind of
 * damage (edited, edited and re-hashed, deleted, reordered, inserted,
 * truncated after the last checkpoint, bad checkpoint signature, chain
 * rewritten, forged head, another host's key) is found and named at the
 * first bad record, without reporting kinds that did not happen.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "audit.h"
#include "error.h"
#include "sign.h"

#define NLINES 12
#define MAXLINES 32

struct log {
	char *line[MAXLINES]; /* each without its newline */
	size_t n;
	char *head;
};

static EVP_PKEY *key, *other_key;

static int setup(void **state)
{
	(void)state;
	key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	other_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	return key && other_key ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(key);
	EVP_PKEY_free(other_key);
	return 0;
}

static void push(struct log *l, char *line)
{
	line[strcspn(line, "\n")] = '\0';
	l->line[l->n++] = line;
}

/* Records 1-4, checkpoint 5, records 6-9, checkpoint 10, records 11-12. */
static void make_log(struct log *l)
{
	struct smig_audit_chain c = { 0 };
	char outcome[32];
	char *line;

	memset(l, 0, sizeof(*l));
	for (int i = 1; i <= NLINES; i++) {
		struct smig_audit_entry e = {
			.time_ms = 1795000000000LL + i, .host = "h1", .actor = "user:root(0)",
			.action = "vm.migrate", .target = "vm:web1 to:h2", .decision = "allow",
			.rule = "root-admin", .outcome = outcome,
		};
		snprintf(outcome, sizeof(outcome), "ok-%d", i);
		if (i == 5 || i == 10)
			assert_int_equal(smig_audit_checkpoint(&c, "h1", e.time_ms, key, &line), 0);
		else
			assert_int_equal(smig_audit_record(&c, &e, &line), 0);
		push(l, line);
	}
	assert_int_equal(c.seq, NLINES);
	assert_int_equal(c.since_checkpoint, 2);
	assert_int_equal(smig_audit_head(&c, key, &l->head), 0);
}

static void log_free(struct log *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->line[i]);
	free(l->head);
}

static char *join(const struct log *l)
{
	size_t len = 1, off = 0;
	char *s;

	for (size_t i = 0; i < l->n; i++)
		len += strlen(l->line[i]) + 1;
	s = calloc(1, len);
	assert_non_null(s);
	for (size_t i = 0; i < l->n; i++)
		off += (size_t)snprintf(s + off, len - off, "%s\n", l->line[i]);
	return s;
}

static void verify(const struct log *l, bool with_head, EVP_PKEY *pub,
		   struct smig_audit_report *rep)
{
	char *text = join(l);

	assert_int_equal(smig_audit_verify(text, strlen(text), with_head ? l->head : NULL,
					   with_head ? strlen(l->head) : 0, pub, rep),
			 0);
	free(text);
}

/* Exactly the kinds in want (a bit per kind) were found; k's first at line. */
static void expect(const struct smig_audit_report *rep, unsigned want,
		   enum smig_audit_damage k, size_t line)
{
	for (int i = 0; i < SMIG_AUDIT_DAMAGE_KINDS; i++) {
		bool w = (want >> i) & 1;

		if (rep->kind[i].found != w)
			fail_msg("%s: found=%d want=%d (%s)",
				 smig_audit_damage_name((enum smig_audit_damage)i),
				 rep->kind[i].found, w, rep->kind[i].msg);
	}
	assert_true(rep->damaged == (want != 0));
	if (want) {
		if (rep->kind[k].line != line)
			fail_msg("%s at line %zu, want %zu: %s", smig_audit_damage_name(k),
				 rep->kind[k].line, line, rep->kind[k].msg);
	}
}

#define BIT(k) (1u << (k))

/* Re-hashes line i after an edit, as an attacker without the key can. */
static void rehash(struct log *l, size_t i, const char *prev_hex)
{
	json_t *o = json_loads(l->line[i], 0, NULL);
	uint8_t h[SMIG_AUDIT_HASH_LEN];
	char hex[2 * SMIG_AUDIT_HASH_LEN + 1];

	assert_non_null(o);
	if (prev_hex)
		json_object_set_new(o, "prev", json_string(prev_hex));
	assert_int_equal(smig_audit_hash_json(o, h), 0);
	smig_hex(h, sizeof(h), hex);
	json_object_set_new(o, "hash", json_string(hex));
	free(l->line[i]);
	l->line[i] = json_dumps(o, JSON_COMPACT);
	json_decref(o);
}

static const char *hash_of(const struct log *l, size_t i)
{
	static char hex[2 * SMIG_AUDIT_HASH_LEN + 1];
	json_t *o = json_loads(l->line[i], 0, NULL);

	snprintf(hex, sizeof(hex), "%s", json_string_value(json_object_get(o, "hash")));
	json_decref(o);
	return hex;
}

static void replace(struct log *l, size_t i, const char *from, const char *to)
{
	char *p = strstr(l->line[i], from);
	size_t len;
	char *n;

	assert_non_null(p);
	len = strlen(l->line[i]) + strlen(to) + 1;
	n = malloc(len);
	assert_non_null(n);
	snprintf(n, len, "%.*s%s%s", (int)(p - l->line[i]), l->line[i], to, p + strlen(from));
	free(l->line[i]);
	l->line[i] = n;
}

/* As make_log, with files rotated before records 6 and 9 (their audit.rotate). */
static void make_rotated(struct log *l)
{
	struct smig_audit_chain c = { 0 };
	char *line;

	memset(l, 0, sizeof(*l));
	for (int i = 1; i <= NLINES; i++) {
		struct smig_audit_entry e = {
			.time_ms = 1795000000000LL + i, .host = "h1", .actor = "smigd",
			.action = i == 6 || i == 9 ? SMIG_AUDIT_ROTATE : "vm.start",
			/* audit.keep 1: each rotation keeps the file before it */
			.target = i == 6 ? "log keep:1 from:1" : i == 9 ? "log keep:1 from:6" : "vm:web1",
			.decision = "none", .rule = "-", .outcome = "ok",
		};
		if (i == 5 || i == 8)
			assert_int_equal(smig_audit_checkpoint(&c, "h1", e.time_ms, key, &line), 0);
		else
			assert_int_equal(smig_audit_record(&c, &e, &line), 0);
		push(l, line);
	}
	assert_int_equal(smig_audit_head(&c, key, &l->head), 0);
}

/* Lines [from, to) of l as one file's text. */
static char *slice(const struct log *l, size_t from, size_t to)
{
	struct log part = { .n = 0 };

	for (size_t i = from; i < to; i++)
		part.line[part.n++] = l->line[i];
	return join(&part);
}

static void verify_set(const struct log *l, const size_t *cuts, const char *const *names,
		       size_t nfiles, struct smig_audit_report *rep)
{
	struct smig_audit_file f[4];
	char *text[4];

	for (size_t i = 0; i < nfiles; i++) {
		text[i] = slice(l, cuts[2 * i], cuts[2 * i + 1]);
		f[i] = (struct smig_audit_file){ names[i], text[i], strlen(text[i]) };
	}
	assert_int_equal(smig_audit_verify_files(f, nfiles, l->head, strlen(l->head), key, rep),
			 0);
	for (size_t i = 0; i < nfiles; i++)
		free(text[i]);
}

/* A rotated set is one chain: whole, with its oldest files gone, or with one missing. */
static void test_rotated(void **state)
{
	static const char *const names[] = { "audit.log.2", "audit.log.1", "audit.log" };
	static const char *const last2[] = { "audit.log.1", "audit.log" };
	static const char *const ends[] = { "audit.log.2", "audit.log" };
	const size_t all[] = { 0, 5, 5, 8, 8, NLINES };
	const size_t newest[] = { 5, 8, 8, NLINES };
	const size_t gap[] = { 0, 5, 8, NLINES };
	const size_t cut[] = { 6, 8, 8, NLINES };
	struct smig_audit_report rep;
	struct log l;

	(void)state;
	make_rotated(&l);
	verify_set(&l, all, names, 3, &rep);
	expect(&rep, 0, 0, 0);
	assert_int_equal(rep.files, 3);
	assert_int_equal(rep.first_seq, 1);
	assert_int_equal(rep.last_seq, NLINES);
	assert_true(rep.head_checked);
	/* audit.log.2 rotated away: the set begins at the audit.rotate record, seq 6 */
	verify_set(&l, newest, last2, 2, &rep);
	expect(&rep, 0, 0, 0);
	assert_int_equal(rep.first_seq, 6);
	/* audit.log.1 deleted from the middle: a gap, named in the file after it */
	verify_set(&l, gap, ends, 2, &rep);
	expect(&rep, BIT(SMIG_AUDIT_DELETED), SMIG_AUDIT_DELETED, 1);
	assert_string_equal(rep.kind[SMIG_AUDIT_DELETED].file, "audit.log");
	assert_non_null(strstr(rep.kind[SMIG_AUDIT_DELETED].msg, "records 6..8 are missing"));
	/* audit.log.1 taken away too: the last rotation said the kept files begin at 6 */
	{
		const size_t only[] = { 8, NLINES };
		static const char *const cur[] = { "audit.log" };

		verify_set(&l, only, cur, 1, &rep);
		expect(&rep, BIT(SMIG_AUDIT_DELETED), SMIG_AUDIT_DELETED, 1);
		assert_non_null(strstr(rep.kind[SMIG_AUDIT_DELETED].msg, "kept files from seq 6"));
	}
	/* the oldest file's first lines cut: it no longer begins with audit.rotate */
	verify_set(&l, cut, last2, 2, &rep);
	expect(&rep, BIT(SMIG_AUDIT_DELETED), SMIG_AUDIT_DELETED, 1);
	assert_string_equal(rep.kind[SMIG_AUDIT_DELETED].file, "audit.log.1");
	log_free(&l);
}

static void test_clean(void **state)
{
	struct smig_audit_report rep;
	struct log l;

	(void)state;
	make_log(&l);
	verify(&l, true, key, &rep);
	expect(&rep, 0, 0, 0);
	assert_int_equal(rep.records, NLINES);
	assert_int_equal(rep.checkpoints, 2);
	assert_int_equal(rep.last_seq, NLINES);
	assert_true(rep.head_checked);
	assert_int_equal(rep.unsigned_tail, 0);
	verify(&l, false, key, &rep);
	expect(&rep, 0, 0, 0);
	assert_int_equal(rep.unsigned_tail, 2);
	log_free(&l);
}

static void test_edited(void **state)
{
	struct smig_audit_report rep;
	struct log l;

	(void)state;
	make_log(&l);
	replace(&l, 2, "ok-3", "failed");
	verify(&l, true, key, &rep);
	expect(&rep, BIT(SMIG_AUDIT_EDITED), SMIG_AUDIT_EDITED, 3);
	assert_non_null(strstr(rep.kind[SMIG_AUDIT_EDITED].msg, "does not match its hash"));
	log_free(&l);
}

static void test_edited_rehashed(void **state)
{
	struct smig_audit_report rep;
	struct log l;

	(void)state;
	make_log(&l);
	replace(&l, 2, "user:root(0)", "user:alice(1000)");
	rehash(&l, 2, NULL);
	verify(&l, true, key, &rep);
	expect(&rep, BIT(SMIG_AUDIT_EDITED), SMIG_AUDIT_EDITED, 3);
	assert_non_null(strstr(rep.kind[SMIG_AUDIT_EDITED].msg, "re-hashed"));
	log_free(&l);
}

static void test_deleted(void **state)
{
	struct smig_audit_report rep;
	struct log l;

	(void)state;
	make_log(&l);
	free(l.line[6]);
	memmove(&l.line[6], &l.line[7], (l.n - 7) * sizeof(l.line[0]));
	l.n--;
	verify(&l, true, key, &rep);
	expect(&rep, BIT(SMIG_AUDIT_DELETED), SMIG_AUDIT_DELETED, 7);
	assert_int_equal(rep.kind[SMIG_AUDIT_DELETED].seq, 7);
	assert_non_null(strstr(rep.kind[SMIG_AUDIT_DELETED].msg, "records 7..7 are missing"));
	log_free(&l);
}

static void test_deleted_first(void **state)
{
	struct smig_audit_report rep;
	struct log l;

	(void)state;
	make_log(&l);
	free(l.line[0]);
	memmove(&l.line[0], &l.line[1], (l.n - 1) * sizeof(l.line[0]));
	l.n--;
	verify(&l, true, key, &rep);
	expect(&rep, BIT(SMIG_AUDIT_DELETED), SMIG_AUDIT_DELETED, 1);
	log_free(&l);
}

static void test_reordered(void **state)
{
	struct smig_audit_report rep;
	struct log l;
	char *t;

	(void)state;
	make_log(&l);
	t = l.line[6];
	l.line[6] = l.line[7];
	l.line[7] = t;
	verify(&l, true, key, &rep);
	expect(&rep, BIT(SMIG_AUDIT_REORDERED), SMIG_AUDIT_REORDERED, 8);
	log_free(&l);
}

static void test_inserted(void **state)
{
	struct smig_audit_report rep;
	struct log l;
	char prev[2 * SMIG_AUDIT_HASH_LEN + 1];

	(void)state;
	make_log(&l);
	/* A forged seq 7 chained to seq 6, placed before the real seq 7. */
	snprintf(prev, sizeof(prev), "%s", hash_of(&l, 5));
	memmove(&l.line[7], &l.line[6], (l.n - 6) * sizeof(l.line[0]));
	l.n++;
	l.line[6] = strdup(l.line[7]);
	replace(&l, 6, "ok-7", "ok-forged");
	rehash(&l, 6, prev);
	verify(&l, true, key, &rep);
	expect(&rep, BIT(SMIG_AUDIT_INSERTED), SMIG_AUDIT_INSERTED, 7);
	log_free(&l);
}

static void test_appended_after_head(void **state)
{
	struct smig_audit_report rep;
	struct smig_audit_chain c = { 0 };
	struct smig_audit_entry e = { .host = "h1", .actor = "x", .action = "vm.start",
				      .target = "vm:a", .decision = "allow", .rule = "r",
				      .outcome = "ok" };
	char *text, *line;
	struct log l;

	(void)state;
	make_log(&l);
	text = join(&l);
	assert_int_equal(smig_audit_resume(text, strlen(text), &c, NULL, 0), 0);
	free(text);
	assert_int_equal(smig_audit_record(&c, &e, &line), 0);
	push(&l, line);
	verify(&l, true, key, &rep);
	expect(&rep, BIT(SMIG_AUDIT_INSERTED), SMIG_AUDIT_INSERTED, 13);
	log_free(&l);
}

static void test_truncated(void **state)
{
	struct smig_audit_report rep;
	struct log l;

	(void)state;
	make_log(&l);
	free(l.line[--l.n]);
	free(l.line[--l.n]);
	verify(&l, true, key, &rep);
	expect(&rep, BIT(SMIG_AUDIT_TRUNCATED), SMIG_AUDIT_TRUNCATED, 10);
	assert_non_null(strstr(rep.kind[SMIG_AUDIT_TRUNCATED].msg, "says seq 12"));
	/* Without its head a cut after the last checkpoint cannot be seen. */
	verify(&l, false, key, &rep);
	expect(&rep, 0, 0, 0);
	log_free(&l);
}

static void test_bad_checkpoint_signature(void **state)
{
	struct smig_audit_report rep;
	struct log l;
	char *sig;

	(void)state;
	make_log(&l);
	sig = strstr(l.line[4], "\"sig\":\"");
	assert_non_null(sig);
	sig[7] = sig[7] == '0' ? '1' : '0';
	verify(&l, true, key, &rep);
	expect(&rep, BIT(SMIG_AUDIT_SIGNATURE), SMIG_AUDIT_SIGNATURE, 5);
	assert_int_equal(rep.checkpoints, 1);
	log_free(&l);
}

/* Everything from seq 3 on is edited and re-chained: the keys' signatures break. */
static void test_rewritten_chain(void **state)
{
	struct smig_audit_report rep;
	struct log l;
	char prev[2 * SMIG_AUDIT_HASH_LEN + 1];

	(void)state;
	make_log(&l);
	replace(&l, 2, "ok-3", "nothing-happened");
	for (size_t i = 2; i < l.n; i++) {
		snprintf(prev, sizeof(prev), "%s", hash_of(&l, i - 1));
		rehash(&l, i, prev);
	}
	verify(&l, true, key, &rep);
	assert_true(rep.kind[SMIG_AUDIT_SIGNATURE].found);
	assert_int_equal(rep.kind[SMIG_AUDIT_SIGNATURE].line, 5);
	assert_true(rep.kind[SMIG_AUDIT_EDITED].found); /* against the signed head */
	assert_false(rep.kind[SMIG_AUDIT_DELETED].found);
	log_free(&l);
}

static void test_other_key_and_forged_head(void **state)
{
	struct smig_audit_report rep;
	struct log l;

	(void)state;
	make_log(&l);
	verify(&l, true, other_key, &rep);
	expect(&rep, BIT(SMIG_AUDIT_SIGNATURE), SMIG_AUDIT_SIGNATURE, 5);
	verify(&l, true, key, &rep);
	expect(&rep, 0, 0, 0);
	l.head[7] = l.head[7] == '1' ? '2' : '1'; /* {"seq":12 -> 22 or 11 */
	verify(&l, true, key, &rep);
	expect(&rep, BIT(SMIG_AUDIT_SIGNATURE), SMIG_AUDIT_SIGNATURE, 0);
	free(l.head);
	l.head = strdup("not a head");
	verify(&l, true, key, &rep);
	expect(&rep, BIT(SMIG_AUDIT_SIGNATURE), SMIG_AUDIT_SIGNATURE, 0);
	log_free(&l);
}

/*
 * Records 1-3 and checkpoint 4 by first; the key change (5, signed by
 * first; 6, a checkpoint by second); records 7-8 and checkpoint 9 by
 * second; the head by second. keep_vouch false leaves out line 6, the new
 * key's word for the change.
 */
static void make_rekeyed_log(struct log *l, EVP_PKEY *first, EVP_PKEY *second, bool keep_vouch)
{
	struct smig_audit_chain c = { 0 };
	struct smig_audit_entry e = {
		.time_ms = 1795000000000LL, .host = "h1", .actor = "smigd", .action = "vm.start",
		.target = "vm:web1", .decision = "allow", .rule = "root", .outcome = "ok",
	};
	char *line, *two, *nl;

	memset(l, 0, sizeof(*l));
	for (int i = 1; i <= 3; i++) {
		assert_int_equal(smig_audit_record(&c, &e, &line), 0);
		push(l, line);
	}
	assert_int_equal(smig_audit_checkpoint(&c, "h1", e.time_ms, first, &line), 0);
	push(l, line);
	assert_int_equal(smig_audit_rekey(&c, "h1", e.time_ms, first, second, &two), 0);
	nl = strchr(two, '\n');
	assert_non_null(nl);
	push(l, strndup(two, (size_t)(nl - two)));
	if (keep_vouch)
		push(l, strdup(nl + 1));
	free(two);
	assert_int_equal(c.since_checkpoint, 0);
	for (int i = 7; i <= 8; i++) {
		assert_int_equal(smig_audit_record(&c, &e, &line), 0);
		push(l, line);
	}
	assert_int_equal(smig_audit_checkpoint(&c, "h1", e.time_ms, second, &line), 0);
	push(l, line);
	assert_int_equal(smig_audit_head(&c, second, &l->head), 0);
}

/* The host key was renewed: the log verifies with the new key, stretch by stretch. */
static void test_rekey(void **state)
{
	struct smig_audit_report rep;
	struct log l;

	(void)state;
	make_rekeyed_log(&l, key, other_key, true);
	assert_non_null(strstr(l.line[4], "\"action\":\"audit.rekey\""));
	verify(&l, true, other_key, &rep);
	expect(&rep, 0, 0, 0);
	assert_int_equal(rep.checkpoints, 4); /* 4 and the change by the old key, 6 and 9 by the new */
	assert_true(rep.head_checked);
	verify(&l, false, other_key, &rep);
	expect(&rep, 0, 0, 0);
	/* the old key is not the key of this log any more */
	verify(&l, true, key, &rep);
	expect(&rep, BIT(SMIG_AUDIT_SIGNATURE), SMIG_AUDIT_SIGNATURE, 5);
	assert_non_null(strstr(rep.kind[SMIG_AUDIT_SIGNATURE].msg, "not the key of the records after it"));
	/* the change's record edited: its hash no longer holds, nor does the change */
	replace(&l, 4, "\"outcome\":\"ok\"", "\"outcome\":\"ok!\"");
	verify(&l, true, other_key, &rep);
	assert_true(rep.kind[SMIG_AUDIT_EDITED].found);
	assert_true(rep.kind[SMIG_AUDIT_SIGNATURE].found);
	assert_int_equal(rep.kind[SMIG_AUDIT_SIGNATURE].line, 4);
	log_free(&l);
}

/*
 * Someone with a key of their own writes a log and ends it with a change
 * "from my key to the host's": without a record the host's key signed
 * after it, it is not taken, and nothing before it verifies.
 */
static void test_rekey_forged(void **state)
{
	struct smig_audit_report rep;
	struct log l;

	(void)state;
	make_rekeyed_log(&l, other_key, key, false);
	/* cut after the change: the host key signed nothing after it */
	for (size_t i = 5; i < l.n; i++)
		free(l.line[i]);
	l.n = 5;
	verify(&l, false, key, &rep);
	assert_true(rep.kind[SMIG_AUDIT_SIGNATURE].found);
	assert_int_equal(rep.kind[SMIG_AUDIT_SIGNATURE].line, 4);
	assert_int_equal(rep.checkpoints, 0);
	log_free(&l);
	/* the same with the host key's later records in place but its vouching checkpoint gone */
	make_rekeyed_log(&l, key, other_key, false);
	verify(&l, true, other_key, &rep);
	assert_true(rep.kind[SMIG_AUDIT_SIGNATURE].found);
	assert_int_equal(rep.kind[SMIG_AUDIT_SIGNATURE].line, 4);
	assert_true(rep.kind[SMIG_AUDIT_DELETED].found); /* seq 6 is missing */
	log_free(&l);
}

static void test_garbage_line(void **state)
{
	struct smig_audit_report rep;
	struct log l;

	(void)state;
	make_log(&l);
	free(l.line[3]);
	l.line[3] = strdup("{\"seq\": \"four\"}");
	verify(&l, true, key, &rep);
	assert_true(rep.kind[SMIG_AUDIT_EDITED].found);
	assert_int_equal(rep.kind[SMIG_AUDIT_EDITED].line, 4);
	log_free(&l);
}

static void test_resume(void **state)
{
	struct smig_audit_chain c;
	char err[128] = "";
	struct log l;
	char *text;
	uint8_t h[SMIG_AUDIT_HASH_LEN];

	(void)state;
	make_log(&l);
	text = join(&l);
	assert_int_equal(smig_audit_resume(text, strlen(text), &c, err, sizeof(err)), 0);
	assert_int_equal(c.seq, NLINES);
	assert_int_equal(c.since_checkpoint, 2);
	assert_int_equal(smig_unhex(hash_of(&l, NLINES - 1), h, sizeof(h)), 0);
	assert_memory_equal(c.head, h, sizeof(h));
	free(text);
	text = strdup("junk\n");
	assert_int_equal(smig_audit_resume(text, strlen(text), &c, err, sizeof(err)),
			 SMIG_EPROTO);
	assert_int_equal(c.seq, 0);
	assert_non_null(strstr(err, "1 of 1 lines"));
	free(text);
	assert_int_equal(smig_audit_resume("", 0, &c, err, sizeof(err)), 0);
	assert_int_equal(c.seq, 0);
	log_free(&l);
}

static void test_fields_sanitized(void **state)
{
	struct smig_audit_chain c = { 0 };
	char long_detail[2000];
	struct smig_audit_entry e = { .host = "h1", .actor = "peer:h\x01\n2",
				      .action = "vm.migrate", .target = "vm:\xff",
				      .decision = "deny", .rule = "r", .outcome = "refused",
				      .detail = long_detail };
	json_t *o;
	char *line;

	(void)state;
	memset(long_detail, 'x', sizeof(long_detail) - 1);
	long_detail[sizeof(long_detail) - 1] = '\0';
	assert_int_equal(smig_audit_record(&c, &e, &line), 0);
	assert_int_equal(strchr(line, '\n'), line + strlen(line) - 1);
	o = json_loads(line, 0, NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "actor")), "peer:h??2");
	assert_string_equal(json_string_value(json_object_get(o, "target")), "vm:?");
	assert_int_equal(strlen(json_string_value(json_object_get(o, "detail"))),
			 SMIG_AUDIT_FIELD_MAX);
	json_decref(o);
	free(line);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean),
		cmocka_unit_test(test_rotated),
		cmocka_unit_test(test_edited),
		cmocka_unit_test(test_edited_rehashed),
		cmocka_unit_test(test_deleted),
		cmocka_unit_test(test_deleted_first),
		cmocka_unit_test(test_reordered),
		cmocka_unit_test(test_inserted),
		cmocka_unit_test(test_appended_after_head),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_bad_checkpoint_signature),
		cmocka_unit_test(test_rewritten_chain),
		cmocka_unit_test(test_other_key_and_forged_head),
		cmocka_unit_test(test_rekey),
		cmocka_unit_test(test_rekey_forged),
		cmocka_unit_test(test_garbage_line),
		cmocka_unit_test(test_resume),
		cmocka_unit_test(test_fields_sanitized),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
