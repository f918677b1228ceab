/*
 * audit.c - audit records, checkpoints and the head (see audit.h);
 * audit_verify.c checks them.
 */
#include "audit.h"
#include "error.h"
#include "sign.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Printable ASCII copy of s, at most SMIG_AUDIT_FIELD_MAX characters. */
static json_t *field(const char *s)
{
	char buf[SMIG_AUDIT_FIELD_MAX + 1];
	size_t n = 0;

	for (; s && s[n] && n < SMIG_AUDIT_FIELD_MAX; n++)
		buf[n] = (s[n] >= ' ' && s[n] <= '~') ? s[n] : '?';
	buf[n] = '\0';
	return json_string(buf);
}

static json_t *time_field(int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	char buf[48];
	struct tm tm;

	if (ms < 0 || gmtime_r(&t, &tm) == NULL)
		return json_string("1970-01-01T00:00:00.000Z");
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), ".%03dZ", (int)(ms % 1000));
	return json_string(buf);
}

int smig_audit_hash_json(const json_t *rec, uint8_t out[SMIG_AUDIT_HASH_LEN])
{
	json_t *copy = json_copy((json_t *)rec);
	char *text;

	SMIG_ENSURE(copy != NULL, SMIG_ENOMEM);
	json_object_del(copy, "hash");
	json_object_del(copy, "sig");
	text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(copy);
	SMIG_ENSURE(text != NULL, SMIG_ENOMEM);
	SHA256((const unsigned char *)text, strlen(text), out);
	free(text);
	return 0;
}

static json_t *entry_json(uint64_t seq, const struct smig_audit_entry *e, const uint8_t *prev)
{
	char hex[2 * SMIG_AUDIT_HASH_LEN + 1];
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	smig_hex(prev, SMIG_AUDIT_HASH_LEN, hex);
	json_object_set_new(o, "seq", json_integer((json_int_t)seq));
	json_object_set_new(o, "time", time_field(e->time_ms));
	json_object_set_new(o, "host", field(e->host));
	json_object_set_new(o, "actor", field(e->actor));
	json_object_set_new(o, "action", field(e->action));
	json_object_set_new(o, "target", field(e->target));
	json_object_set_new(o, "decision", field(e->decision));
	json_object_set_new(o, "rule", field(e->rule));
	json_object_set_new(o, "outcome", field(e->outcome));
	if (e->detail)
		json_object_set_new(o, "detail", field(e->detail));
	json_object_set_new(o, "prev", json_string(hex));
	if (json_object_size(o) != (e->detail ? 11u : 10u)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Seals o (hash, optional sig), renders it as a line and advances c. */
static int seal(struct smig_audit_chain *c, json_t *o, EVP_PKEY *key, char **line)
{
	uint8_t hash[SMIG_AUDIT_HASH_LEN], sig[SMIG_SIG_LEN];
	char hex[2 * SMIG_SIG_LEN + 1];
	char *text;
	size_t n;

	SMIG_GUARD(smig_audit_hash_json(o, hash));
	smig_hex(hash, sizeof(hash), hex);
	json_object_set_new(o, "hash", json_string(hex));
	if (key) {
		SMIG_GUARD(smig_sign(key, SMIG_AUDIT_CTX_CHECKPOINT, hash, sizeof(hash), sig));
		smig_hex(sig, sizeof(sig), hex);
		json_object_set_new(o, "sig", json_string(hex));
	}
	text = json_dumps(o, JSON_COMPACT);
	SMIG_ENSURE(text != NULL, SMIG_ENOMEM);
	n = strlen(text);
	*line = malloc(n + 2);
	if (*line)
		snprintf(*line, n + 2, "%s\n", text);
	free(text);
	SMIG_ENSURE(*line != NULL, SMIG_ENOMEM);
	c->seq++;
	memcpy(c->head, hash, sizeof(hash));
	c->since_checkpoint = key ? 0 : c->since_checkpoint + 1;
	return 0;
}

int smig_audit_record(struct smig_audit_chain *c, const struct smig_audit_entry *e,
		      char **line)
{
	json_t *o = entry_json(c->seq + 1, e, c->head);
	int rc;

	SMIG_ENSURE(o != NULL, SMIG_ENOMEM);
	rc = seal(c, o, NULL, line);
	json_decref(o);
	return rc;
}

int smig_audit_checkpoint(struct smig_audit_chain *c, const char *host, int64_t time_ms,
			  EVP_PKEY *key, char **line)
{
	char detail[48];
	struct smig_audit_entry e = {
		.time_ms = time_ms, .host = host, .actor = "smigd",
		.action = SMIG_AUDIT_CHECKPOINT, .target = "log", .decision = "none",
		.rule = "-", .outcome = "ok", .detail = detail,
	};
	json_t *o;
	int rc;

	SMIG_ENSURE(key != NULL, SMIG_EINVAL);
	snprintf(detail, sizeof(detail), "records=%llu",
		 (unsigned long long)c->since_checkpoint);
	o = entry_json(c->seq + 1, &e, c->head);
	SMIG_ENSURE(o != NULL, SMIG_ENOMEM);
	rc = seal(c, o, key, line);
	json_decref(o);
	return rc;
}

int smig_audit_rekey(struct smig_audit_chain *c, const char *host, int64_t time_ms,
		     EVP_PKEY *old_key, EVP_PKEY *new_key, char **lines)
{
	uint8_t raw[2][32];
	size_t n0 = sizeof(raw[0]), n1 = sizeof(raw[1]);
	char hex[2][65], detail[160], *first = NULL, *second = NULL;
	struct smig_audit_entry e = {
		.time_ms = time_ms, .host = host, .actor = "smigd", .action = SMIG_AUDIT_REKEY,
		.target = "key", .decision = "none", .rule = "-", .outcome = "ok",
		.detail = detail,
	};
	json_t *o;
	int rc;

	SMIG_ENSURE(old_key && new_key, SMIG_EINVAL);
	SMIG_ENSURE(EVP_PKEY_get_raw_public_key(old_key, raw[0], &n0) == 1 && n0 == 32 &&
			    EVP_PKEY_get_raw_public_key(new_key, raw[1], &n1) == 1 && n1 == 32,
		    SMIG_ECRYPTO);
	smig_hex(raw[0], 32, hex[0]);
	smig_hex(raw[1], 32, hex[1]);
	snprintf(detail, sizeof(detail), "old:%s new:%s", hex[0], hex[1]);
	o = entry_json(c->seq + 1, &e, c->head);
	SMIG_ENSURE(o != NULL, SMIG_ENOMEM);
	rc = seal(c, o, old_key, &first);
	json_decref(o);
	if (rc == 0)
		rc = smig_audit_checkpoint(c, host, time_ms, new_key, &second);
	if (rc == 0) {
		size_t a = strlen(first), b = strlen(second);

		*lines = malloc(a + b + 1);
		if (*lines) {
			memcpy(*lines, first, a);
			memcpy(*lines + a, second, b + 1);
		}
		rc = *lines ? 0 : SMIG_ENOMEM;
	}
	free(first);
	free(second);
	return rc;
}

/* The signed message of a head: seq (8 bytes, big-endian) then hash. */
void smig_audit_head_msg(uint64_t seq, const uint8_t hash[SMIG_AUDIT_HASH_LEN],
			 uint8_t out[8 + SMIG_AUDIT_HASH_LEN])
{
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(seq >> (56 - 8 * i));
	memcpy(out + 8, hash, SMIG_AUDIT_HASH_LEN);
}

int smig_audit_head(const struct smig_audit_chain *c, EVP_PKEY *key, char **text)
{
	uint8_t msg[8 + SMIG_AUDIT_HASH_LEN], sig[SMIG_SIG_LEN];
	char hhex[2 * SMIG_AUDIT_HASH_LEN + 1], shex[2 * SMIG_SIG_LEN + 1];
	char buf[320];

	smig_audit_head_msg(c->seq, c->head, msg);
	SMIG_GUARD(smig_sign(key, SMIG_AUDIT_CTX_HEAD, msg, sizeof(msg), sig));
	smig_hex(c->head, SMIG_AUDIT_HASH_LEN, hhex);
	smig_hex(sig, sizeof(sig), shex);
	snprintf(buf, sizeof(buf), "{\"seq\":%llu,\"hash\":\"%s\",\"sig\":\"%s\"}\n",
		 (unsigned long long)c->seq, hhex, shex);
	*text = strdup(buf);
	return *text ? 0 : SMIG_ENOMEM;
}

int smig_audit_resume(const char *text, size_t len, struct smig_audit_chain *c, char *err,
		      size_t errlen)
{
	size_t off = 0, lineno = 0, bad = 0;

	memset(c, 0, sizeof(*c));
	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (text + off)) : len - off;
		json_t *o = json_loadb(text + off, n, JSON_REJECT_DUPLICATES, NULL);
		const json_t *seq = json_object_get(o, "seq");
		const char *action = json_string_value(json_object_get(o, "action"));
		uint8_t hash[SMIG_AUDIT_HASH_LEN];

		lineno++;
		if (json_is_integer(seq) && json_integer_value(seq) > 0 && action &&
		    smig_unhex(json_string_value(json_object_get(o, "hash")), hash,
			       sizeof(hash)) == 0) {
			c->seq = (uint64_t)json_integer_value(seq);
			memcpy(c->head, hash, sizeof(hash));
			c->since_checkpoint = strcmp(action, SMIG_AUDIT_CHECKPOINT) == 0 ||
							      strcmp(action, SMIG_AUDIT_REKEY) == 0
						      ? 0
						      : c->since_checkpoint + 1;
		} else if (n > 0) {
			bad++;
		}
		json_decref(o);
		off += n + (nl ? 1 : 0);
	}
	if (bad)
		snprintf(err, errlen, "%zu of %zu lines are not audit records", bad, lineno);
	return bad ? SMIG_EPROTO : 0;
}
