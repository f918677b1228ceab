/*
 * etcd_gw.c - etcd v3's JSON gateway messages: keys and values travel in
 * base64, 64-bit numbers as decimal strings (proto3's JSON mapping), and a
 * field at its default value (0, false, empty) is left out altogether.
 */
#include "etcd.h"
#include "error.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *smig_etcd_b64(const void *in, size_t len)
{
	const uint8_t *p = in;
	char *out, *o;

	if (len > SIZE_MAX / 4 - 4)
		return NULL;
	out = malloc((len + 2) / 3 * 4 + 1);
	if (out == NULL)
		return NULL;
	o = out;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		size_t left = len - i;

		if (left > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (left > 2)
			v |= p[i + 2];
		*o++ = b64_alphabet[(v >> 18) & 63];
		*o++ = b64_alphabet[(v >> 12) & 63];
		*o++ = left > 1 ? b64_alphabet[(v >> 6) & 63] : '=';
		*o++ = left > 2 ? b64_alphabet[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

static int b64_value(char c)
{
	const char *at = c ? strchr(b64_alphabet, c) : NULL;

	return at ? (int)(at - b64_alphabet) : -1;
}

uint8_t *smig_etcd_unb64(const char *in, size_t *len)
{
	size_t n = strlen(in), pad = 0, o = 0;
	uint8_t *out;

	if (n % 4 != 0)
		return NULL;
	if (n && in[n - 1] == '=')
		pad++;
	if (pad && n > 1 && in[n - 2] == '=')
		pad++;
	out = malloc(n / 4 * 3 + 1);
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i += 4) {
		uint32_t v = 0;
		size_t last = i + 4 == n ? pad : 0;

		for (size_t j = 0; j < 4; j++) {
			int x = j >= 4 - last ? 0 : b64_value(in[i + j]);

			if (x < 0) {
				free(out);
				return NULL;
			}
			v = v << 6 | (uint32_t)x;
		}
		/* the bits a pad leaves over must be 0: one text for one value */
		if ((last == 2 && (v & 0xffff) != 0) || (last == 1 && (v & 0xff) != 0)) {
			free(out);
			return NULL;
		}
		out[o++] = (uint8_t)(v >> 16);
		if (last < 2)
			out[o++] = (uint8_t)(v >> 8);
		if (last < 1)
			out[o++] = (uint8_t)v;
	}
	out[o] = '\0';
	*len = o;
	return out;
}

uint8_t *smig_etcd_prefix_end(const char *prefix, size_t *len)
{
	size_t n = strlen(prefix);
	uint8_t *end = malloc(n + 1);

	if (end == NULL)
		return NULL;
	memcpy(end, prefix, n + 1);
	while (n > 0 && end[n - 1] == 0xff)
		n--;
	if (n == 0) { /* all 0xff, or empty: every key from there on ("\0") */
		end[0] = 0;
		*len = 1;
		return end;
	}
	end[n - 1]++;
	*len = n;
	return end;
}

/* A proto3 int64: a decimal string, or (leniently) a JSON integer; absent is 0. */
static int get_i64(const json_t *o, const char *name, int64_t *v)
{
	const json_t *x = json_object_get(o, name);
	const char *s;
	char *end;
	long long n;

	*v = 0;
	if (x == NULL || json_is_null(x))
		return 0;
	if (json_is_integer(x)) {
		*v = json_integer_value(x);
		return 0;
	}
	s = json_string_value(x);
	if (s == NULL || *s == '\0' || strlen(s) > 20 || strspn(s + (*s == '-'), "0123456789") !=
							      strlen(s) - (*s == '-'))
		return SMIG_EPROTO;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno || *end)
		return SMIG_EPROTO;
	*v = n;
	return 0;
}

static json_t *load(const char *body, size_t len, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root;

	if (len > SMIG_ETCD_ANSWER_MAX) {
		snprintf(err, errlen, "etcd's answer is %zu bytes, more than %zu", len,
			 SMIG_ETCD_ANSWER_MAX);
		return NULL;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL) {
		snprintf(err, errlen, "etcd's answer is not JSON: %s (at %d)", je.text, je.position);
		return NULL;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "etcd's answer is not a JSON object");
		json_decref(root);
		return NULL;
	}
	return root;
}

int smig_etcd_answer_error(const char *body, size_t len, char *err, size_t errlen)
{
	char dummy[8];
	json_t *root = load(body, len, dummy, sizeof(dummy));
	const json_t *e;
	const char *msg;
	int rc = 0;

	if (root == NULL)
		return 0;
	e = json_object_get(root, "error");
	if (e) {
		msg = json_string_value(json_object_get(root, "message"));
		if (msg == NULL)
			msg = json_string_value(e);
		if (msg == NULL)
			msg = json_string_value(json_object_get(e, "message"));
		snprintf(err, errlen, "%s", msg ? msg : "an error without a message");
		rc = 1;
	}
	json_decref(root);
	return rc;
}

/* The "header" every answer carries: the store's revision. */
static int header_revision(const json_t *root, int64_t *rev, char *err, size_t errlen)
{
	const json_t *h = json_object_get(root, "header");

	if (!json_is_object(h) || get_i64(h, "revision", rev) < 0 || *rev < 0) {
		snprintf(err, errlen, "etcd's answer has no valid header.revision");
		return SMIG_EPROTO;
	}
	return 0;
}

static int parse_kv(const json_t *o, struct smig_etcd_kv *kv, char *err, size_t errlen)
{
	const char *k = json_string_value(json_object_get(o, "key"));
	const json_t *vj = json_object_get(o, "value");
	const char *v = vj ? json_string_value(vj) : "";
	size_t klen = 0;

	memset(kv, 0, sizeof(*kv));
	if (!json_is_object(o) || k == NULL || v == NULL) {
		snprintf(err, errlen, "etcd's answer has a key-value without a key or value string");
		return SMIG_EPROTO;
	}
	kv->key = (char *)smig_etcd_unb64(k, &klen);
	kv->value = smig_etcd_unb64(v, &kv->value_len);
	if (kv->key == NULL || kv->value == NULL || klen == 0 || klen > SMIG_ETCD_KEY_MAX ||
	    memchr(kv->key, '\0', klen) != NULL || kv->value_len > SMIG_ETCD_VALUE_MAX) {
		snprintf(err, errlen, "etcd's answer has a key or value that is not base64 of a "
				      "key (1..%zu bytes, no NUL) or value (up to %zu bytes)",
			 SMIG_ETCD_KEY_MAX, SMIG_ETCD_VALUE_MAX);
		return SMIG_EPROTO;
	}
	if (get_i64(o, "create_revision", &kv->create_revision) < 0 ||
	    get_i64(o, "mod_revision", &kv->mod_revision) < 0 ||
	    get_i64(o, "version", &kv->version) < 0 || get_i64(o, "lease", &kv->lease) < 0 ||
	    kv->mod_revision < 0 || kv->create_revision < 0 || kv->version < 0) {
		snprintf(err, errlen, "etcd's answer has a key-value with a bad revision or lease");
		return SMIG_EPROTO;
	}
	return 0;
}

void smig_etcd_kvs_free(struct smig_etcd_kvs *k)
{
	for (size_t i = 0; i < k->n; i++) {
		free(k->v[i].key);
		free(k->v[i].value);
	}
	free(k->v);
	memset(k, 0, sizeof(*k));
}

/* The key-values of a range answer (or of a txn's response_range) into out. */
static int parse_kvs(const json_t *o, struct smig_etcd_kvs *out, char *err, size_t errlen)
{
	const json_t *kvs = json_object_get(o, "kvs");
	size_t n = json_array_size(kvs);

	if (kvs && !json_is_array(kvs)) {
		snprintf(err, errlen, "etcd's answer has kvs that is not an array");
		return SMIG_EPROTO;
	}
	if (n > SMIG_ETCD_RANGE_MAX) {
		snprintf(err, errlen, "etcd's answer holds %zu keys, more than %zu", n,
			 SMIG_ETCD_RANGE_MAX);
		return SMIG_ETOOBIG;
	}
	if (get_i64(o, "count", &out->count) < 0 || out->count < (int64_t)n) {
		snprintf(err, errlen, "etcd's answer has a count below its keys");
		return SMIG_EPROTO;
	}
	out->v = n ? calloc(n, sizeof(*out->v)) : NULL;
	if (n && out->v == NULL) {
		snprintf(err, errlen, "out of memory");
		return SMIG_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		int rc = parse_kv(json_array_get(kvs, i), &out->v[i], err, errlen);

		out->n = i + 1; /* freed with the rest, whole or not */
		if (rc < 0)
			return rc;
	}
	return 0;
}

int smig_etcd_parse_range(const char *body, size_t len, struct smig_etcd_kvs *out, char *err,
			  size_t errlen)
{
	json_t *root;
	int rc;

	memset(out, 0, sizeof(*out));
	root = load(body, len, err, errlen);
	if (root == NULL)
		return SMIG_EPROTO;
	rc = header_revision(root, &out->revision, err, errlen);
	if (rc == 0)
		rc = parse_kvs(root, out, err, errlen);
	json_decref(root);
	if (rc < 0)
		smig_etcd_kvs_free(out);
	return rc;
}

int smig_etcd_parse_txn(const char *body, size_t len, bool *succeeded, int64_t *revision,
			char *err, size_t errlen)
{
	json_t *root = load(body, len, err, errlen);
	const json_t *s;
	int rc;

	if (root == NULL)
		return SMIG_EPROTO;
	rc = header_revision(root, revision, err, errlen);
	s = json_object_get(root, "succeeded");
	if (rc == 0 && s && !json_is_boolean(s)) {
		snprintf(err, errlen, "etcd's answer has succeeded that is not a boolean");
		rc = SMIG_EPROTO;
	}
	*succeeded = json_is_true(s);
	json_decref(root);
	return rc;
}

int smig_etcd_parse_write(const char *body, size_t len, int64_t *revision, int64_t *deleted,
			  char *err, size_t errlen)
{
	json_t *root = load(body, len, err, errlen);
	int rc;

	if (root == NULL)
		return SMIG_EPROTO;
	rc = header_revision(root, revision, err, errlen);
	if (rc == 0 && (get_i64(root, "deleted", deleted) < 0 || *deleted < 0)) {
		snprintf(err, errlen, "etcd's answer has a bad deleted count");
		rc = SMIG_EPROTO;
	}
	json_decref(root);
	return rc;
}

int smig_etcd_parse_lease(const char *body, size_t len, int64_t *id, int64_t *ttl, char *err,
			  size_t errlen)
{
	json_t *root = load(body, len, err, errlen);
	const json_t *o;
	int rc = 0;

	if (root == NULL)
		return SMIG_EPROTO;
	/* keepalive answers a stream of {"result": {...}}; grant the object itself */
	o = json_object_get(root, "result");
	if (o == NULL)
		o = root;
	if (!json_is_object(o) || get_i64(o, "ID", id) < 0 || get_i64(o, "TTL", ttl) < 0 ||
	    *ttl < 0 || *ttl > 3600 || *id < 0) {
		snprintf(err, errlen, "etcd's lease answer has no valid ID or TTL");
		rc = SMIG_EPROTO;
	}
	json_decref(root);
	return rc;
}

void smig_etcd_watch_msg_free(struct smig_etcd_watch_msg *m)
{
	smig_etcd_kvs_free(&m->events);
	free(m->deleted);
	memset(m, 0, sizeof(*m));
}

static int watch_events(const json_t *res, struct smig_etcd_watch_msg *out, char *err,
			size_t errlen)
{
	const json_t *evs = json_object_get(res, "events");
	size_t n = json_array_size(evs);

	if (evs && !json_is_array(evs)) {
		snprintf(err, errlen, "etcd's watch message has events that are not an array");
		return SMIG_EPROTO;
	}
	if (n > SMIG_ETCD_RANGE_MAX) {
		snprintf(err, errlen, "etcd's watch message holds %zu events, more than %zu", n,
			 SMIG_ETCD_RANGE_MAX);
		return SMIG_ETOOBIG;
	}
	out->events.v = n ? calloc(n, sizeof(*out->events.v)) : NULL;
	out->deleted = n ? calloc(n, sizeof(*out->deleted)) : NULL;
	if (n && (out->events.v == NULL || out->deleted == NULL)) {
		snprintf(err, errlen, "out of memory");
		return SMIG_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *ev = json_array_get(evs, i);
		const json_t *type = json_object_get(ev, "type");
		int rc;

		if (!json_is_object(ev) ||
		    (type && (!json_is_string(type) || (strcmp(json_string_value(type), "PUT") != 0 &&
							 strcmp(json_string_value(type), "DELETE") != 0)))) {
			snprintf(err, errlen, "etcd's watch message has an event that is not a PUT or "
					      "DELETE");
			return SMIG_EPROTO;
		}
		out->deleted[i] = type && strcmp(json_string_value(type), "DELETE") == 0;
		rc = parse_kv(json_object_get(ev, "kv"), &out->events.v[i], err, errlen);
		out->events.n = i + 1; /* freed with the rest, whole or not */
		if (rc < 0)
			return rc;
	}
	out->events.count = (int64_t)n;
	return 0;
}

int smig_etcd_parse_watch(const char *buf, size_t len, struct smig_etcd_watch_msg *out,
			  size_t *used, char *err, size_t errlen)
{
	size_t skip = 0;
	json_error_t je;
	json_t *root;
	const json_t *res;
	const char *reason;
	int rc;

	memset(out, 0, sizeof(*out));
	*used = 0;
	while (skip < len && strchr(" \t\r\n", buf[skip]) && buf[skip] != '\0')
		skip++;
	if (skip == len)
		return 0;
	root = json_loadb(buf + skip, len - skip, JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES,
			  &je);
	if (root == NULL) {
		if (json_error_code(&je) == json_error_premature_end_of_input &&
		    len - skip <= SMIG_ETCD_ANSWER_MAX)
			return 0;
		snprintf(err, errlen, "etcd's watch stream is not JSON: %s (at %d)", je.text,
			 je.position);
		return SMIG_EPROTO;
	}
	*used = skip + (size_t)je.position;
	res = json_object_get(root, "result");
	if (!json_is_object(res)) {
		const json_t *e = json_object_get(root, "error");
		const char *m = json_string_value(json_object_get(e, "message"));

		snprintf(err, errlen, "etcd's watch stream: %s",
			 m ? m : e ? "an error without a message" : "a message without a result");
		json_decref(root);
		return SMIG_EPROTO;
	}
	rc = header_revision(res, &out->revision, err, errlen);
	out->created = json_is_true(json_object_get(res, "created"));
	out->canceled = json_is_true(json_object_get(res, "canceled"));
	reason = json_string_value(json_object_get(res, "cancel_reason"));
	snprintf(out->reason, sizeof(out->reason), "%s", reason ? reason : "");
	if (rc == 0 && (get_i64(res, "compact_revision", &out->compact_revision) < 0 ||
			out->compact_revision < 0)) {
		snprintf(err, errlen, "etcd's watch message has a bad compact_revision");
		rc = SMIG_EPROTO;
	}
	if (rc == 0)
		rc = watch_events(res, out, err, errlen);
	json_decref(root);
	if (rc < 0) {
		smig_etcd_watch_msg_free(out);
		*used = 0;
		return rc;
	}
	return 1;
}
