/*
 * evidence.c - attestation evidence: measuring, signing, strict parsing
 * (see evidence.h).
 *
 * The digest is computed from the parsed structure, never from the bytes
 * received: a verifier rebuilds the canonical JSON, so a field it did not
 * understand can never be covered by a signature it accepts.
 */
#include "evidence.h"
#include "eventlog.h"
#include "ima.h"
#include "error.h"
#include "json.h"
#include "sign.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int smig_measure_fd(int fd, const char *name, uint8_t out[SMIG_DIGEST_LEN], uint64_t *size,
		    char *err, size_t errlen)
{
	uint8_t buf[65536];
	EVP_MD_CTX *md;
	uint64_t off = 0;
	ssize_t r = 0;

	md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		return SMIG_ENOMEM;
	}
	/* pread: a descriptor shared with QEMU keeps its offset */
	while ((r = pread(fd, buf, sizeof(buf), (off_t)off)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || EVP_DigestUpdate(md, buf, (size_t)r) != 1)
			break;
		off += (uint64_t)r;
	}
	if (r < 0)
		snprintf(err, errlen, "%s: read: %s", name, strerror(errno));
	if (r == 0 && EVP_DigestFinal_ex(md, out, NULL) != 1)
		r = -1;
	EVP_MD_CTX_free(md);
	if (size != NULL)
		*size = off;
	return r == 0 ? 0 : SMIG_EIO;
}

int smig_measure_file(const char *path, uint8_t out[SMIG_DIGEST_LEN], char *err,
		      size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc;

	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return SMIG_EIO;
	}
	rc = smig_measure_fd(fd, path, out, NULL, err, errlen);
	close(fd);
	return rc;
}

static json_t *evidence_json(const struct smig_evidence *e)
{
	json_t *o = json_object(), *comps = json_array(), *caps = json_array();

	for (size_t i = 0; i < e->ncomp; i++)
		json_array_append_new(comps, json_pack("{s:s,s:o}", "name", e->comp[i].name,
						       "sha256",
						       smig_json_hex(e->comp[i].sha256, SMIG_DIGEST_LEN)));
	for (size_t i = 0; i < e->ncaps; i++)
		json_array_append_new(caps, json_string(e->caps[i]));
	json_object_set_new(o, "v", json_integer(1));
	json_object_set_new(o, "host", json_string(e->host));
	json_object_set_new(o, "time", json_integer((json_int_t)e->time_ms));
	json_object_set_new(o, "nonce", smig_json_hex(e->nonce, SMIG_NONCE_LEN));
	json_object_set_new(o, "binding", smig_json_hex(e->binding, SMIG_BINDING_LEN));
	json_object_set_new(o, "components", comps);
	json_object_set_new(o, "capabilities", caps);
	json_object_set_new(o, "free_mib", json_integer((json_int_t)e->free_mib));
	if (e->maintenance)
		json_object_set_new(o, "maintenance", json_true());
	if (e->has_boot_log || e->has_ima_log) {
		json_t *logs = json_object();

		if (e->has_boot_log)
			json_object_set_new(logs, "boot",
					    json_pack("{s:I,s:o}", "size", (json_int_t)e->boot_size,
						      "sha256", smig_json_hex(e->boot_sha256, 32)));
		if (e->has_ima_log)
			json_object_set_new(logs, "ima",
					    json_pack("{s:I,s:o}", "size", (json_int_t)e->ima_size,
						      "sha256", smig_json_hex(e->ima_sha256, 32)));
		json_object_set_new(o, "logs", logs);
	}
	if (e->has_tpm) {
		json_t *t = json_pack("{s:o,s:o}", "ak", smig_json_hex(e->quote.ak, SMIG_AK_LEN), "ek",
				      smig_json_hex(e->ek, SMIG_EK_LEN));

		if (e->ek_cert_len > 0)
			json_object_set_new(t, "ek_cert", smig_json_hex(e->ek_cert, e->ek_cert_len));
		if (e->has_quote) {
			json_object_set_new(t, "quote",
					    smig_json_hex(e->quote.attest, e->quote.attest_len));
			json_object_set_new(t, "sig", smig_json_hex(e->quote.sig, sizeof(e->quote.sig)));
		}
		json_object_set_new(o, "tpm", t);
	}
	return o;
}

/* nonce || binding || SHA-256(canonical JSON): what the signature covers. */
static int signed_message(const struct smig_evidence *e, uint8_t msg[96])
{
	json_t *o = evidence_json(e);
	char *text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(o);
	SMIG_ENSURE(text != NULL, SMIG_ENOMEM);
	memcpy(msg, e->nonce, SMIG_NONCE_LEN);
	memcpy(msg + SMIG_NONCE_LEN, e->binding, SMIG_BINDING_LEN);
	SHA256((const unsigned char *)text, strlen(text), msg + 64);
	free(text);
	return 0;
}

int smig_evidence_sign(struct smig_evidence *e, EVP_PKEY *key, char **text)
{
	uint8_t msg[96];
	json_t *o;

	SMIG_GUARD(signed_message(e, msg));
	SMIG_GUARD(smig_sign(key, SMIG_EVIDENCE_CTX, msg, sizeof(msg), e->sig));
	o = evidence_json(e);
	SMIG_ENSURE(o != NULL, SMIG_ENOMEM);
	json_object_set_new(o, "sig", smig_json_hex(e->sig, sizeof(e->sig)));
	*text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return *text ? 0 : SMIG_ENOMEM;
}

int smig_evidence_check_sig(const struct smig_evidence *e, EVP_PKEY *pub)
{
	uint8_t msg[96];

	SMIG_GUARD(signed_message(e, msg));
	return smig_sign_verify(pub, SMIG_EVIDENCE_CTX, msg, sizeof(msg), e->sig);
}

static int parse_components(const struct smig_json_doc *doc, const json_t *arr,
			    struct smig_evidence *e, char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "name", SMIG_J_STRING, true, 0, 0 },
		{ "sha256", SMIG_J_STRING, true, 0, 0 },
	};
	const json_t *c;
	size_t i;

	if (json_array_size(arr) > SMIG_COMPONENTS_MAX)
		return smig_json_fail(doc, doc->root, "components", err, errlen,
				      "more than %d components", SMIG_COMPONENTS_MAX);
	json_array_foreach(arr, i, c) {
		struct smig_component *k = &e->comp[e->ncomp];
		const char *name;

		if (!json_is_object(c))
			return smig_json_fail_at(doc, arr, i, err, errlen,
						 "components[%zu] must be an object", i);
		SMIG_GUARD(smig_json_check(doc, c, "component", fields, ARRAY_LEN(fields), err,
					   errlen));
		name = json_string_value(json_object_get(c, "name"));
		if (!smig_name_valid(name) || smig_evidence_find(e, name))
			return smig_json_fail(doc, c, "name", err, errlen,
					      "component name \"%.64s\" is not a name or repeats",
					      name);
		if (smig_unhex(json_string_value(json_object_get(c, "sha256")), k->sha256,
			       SMIG_DIGEST_LEN) < 0)
			return smig_json_fail(doc, c, "sha256", err, errlen,
					      "component %s: sha256 must be 64 hex digits", name);
		snprintf(k->name, sizeof(k->name), "%s", name);
		e->ncomp++;
	}
	return 0;
}

static int parse_caps(const struct smig_json_doc *doc, const json_t *arr,
		      struct smig_evidence *e, char *err, size_t errlen)
{
	const json_t *c;
	size_t i;

	if (json_array_size(arr) > SMIG_CAPS_MAX)
		return smig_json_fail(doc, doc->root, "capabilities", err, errlen,
				      "more than %d capabilities", SMIG_CAPS_MAX);
	json_array_foreach(arr, i, c) {
		if (!json_is_string(c) || !smig_name_valid(json_string_value(c)))
			return smig_json_fail_at(doc, arr, i, err, errlen,
						 "capabilities[%zu] must be a name", i);
		snprintf(e->caps[e->ncaps++], sizeof(e->caps[0]), "%s", json_string_value(c));
	}
	return 0;
}

static int parse_hex(const struct smig_json_doc *doc, const char *key, uint8_t *out,
		     size_t n, char *err, size_t errlen)
{
	if (smig_unhex(json_string_value(json_object_get(doc->root, key)), out, n) < 0)
		return smig_json_fail(doc, doc->root, key, err, errlen,
				      "%s must be %zu hex digits", key, 2 * n);
	return 0;
}

static int parse_tpm(const struct smig_json_doc *doc, const json_t *t, struct smig_evidence *e,
		     char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "ak", SMIG_J_STRING, true, 0, 0 },
		{ "ek", SMIG_J_STRING, true, 0, 0 },
		{ "quote", SMIG_J_STRING, false, 0, 0 },
		{ "sig", SMIG_J_STRING, false, 0, 0 },
		{ "ek_cert", SMIG_J_STRING, false, 0, 0 },
	};
	const char *q, *sig, *cert;
	size_t n;

	SMIG_GUARD(smig_json_check(doc, t, "tpm", fields, ARRAY_LEN(fields), err, errlen));
	q = json_string_value(json_object_get(t, "quote"));
	sig = json_string_value(json_object_get(t, "sig"));
	n = q ? strlen(q) / 2 : 0;
	if (smig_unhex(json_string_value(json_object_get(t, "ak")), e->quote.ak, SMIG_AK_LEN) < 0 ||
	    smig_unhex(json_string_value(json_object_get(t, "ek")), e->ek, SMIG_EK_LEN) < 0 ||
	    (q == NULL) != (sig == NULL) ||
	    (sig && smig_unhex(sig, e->quote.sig, sizeof(e->quote.sig)) < 0) ||
	    (q && (n == 0 || n > SMIG_QUOTE_MAX || smig_unhex(q, e->quote.attest, n) < 0)))
		return smig_json_fail(doc, t, NULL, err, errlen,
				      "tpm: ak and ek (128 hex digits each), and quote (hex, at "
				      "most %d bytes) with sig (128 hex digits) or neither",
				      SMIG_QUOTE_MAX);
	e->quote.attest_len = n;
	cert = json_string_value(json_object_get(t, "ek_cert"));
	e->ek_cert_len = cert ? strlen(cert) / 2 : 0;
	if (cert && (e->ek_cert_len == 0 || e->ek_cert_len > SMIG_EK_CERT_MAX ||
		     smig_unhex(cert, e->ek_cert, e->ek_cert_len) < 0))
		return smig_json_fail(doc, t, "ek_cert", err, errlen,
				      "tpm.ek_cert: the EK certificate, DER in hex, at most %d bytes",
				      SMIG_EK_CERT_MAX);
	e->has_tpm = true;
	e->has_quote = q != NULL;
	return 0;
}

/* One log's size and digest ("boot" or "ima" of "logs"). */
static int parse_log(const struct smig_json_doc *doc, const json_t *logs, const char *key,
		     uint32_t max, bool *has, uint32_t *size, uint8_t sha[SMIG_DIGEST_LEN],
		     char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "size", SMIG_J_INT, true, 1, (long long)SMIG_IMA_MAX },
		{ "sha256", SMIG_J_STRING, true, 0, 0 },
	};
	const json_t *o = json_object_get(logs, key);

	if (o == NULL)
		return 0;
	if (!json_is_object(o))
		return smig_json_fail(doc, logs, key, err, errlen, "logs.%s must be an object", key);
	SMIG_GUARD(smig_json_check(doc, o, key, fields, ARRAY_LEN(fields), err, errlen));
	if (json_integer_value(json_object_get(o, "size")) > (json_int_t)max ||
	    smig_unhex(json_string_value(json_object_get(o, "sha256")), sha, SMIG_DIGEST_LEN) < 0)
		return smig_json_fail(doc, logs, key, err, errlen,
				      "logs.%s: size 1-%u and sha256 (64 hex digits)", key, max);
	*size = (uint32_t)json_integer_value(json_object_get(o, "size"));
	*has = true;
	return 0;
}

static int parse_logs(const struct smig_json_doc *doc, const json_t *logs,
		      struct smig_evidence *e, char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "boot", SMIG_J_OBJECT, false, 0, 0 },
		{ "ima", SMIG_J_OBJECT, false, 0, 0 },
	};

	SMIG_GUARD(smig_json_check(doc, logs, "logs", fields, ARRAY_LEN(fields), err, errlen));
	SMIG_GUARD(parse_log(doc, logs, "boot", (uint32_t)SMIG_EVLOG_MAX, &e->has_boot_log,
			     &e->boot_size, e->boot_sha256, err, errlen));
	return parse_log(doc, logs, "ima", (uint32_t)SMIG_IMA_MAX, &e->has_ima_log, &e->ima_size,
			 e->ima_sha256, err, errlen);
}

static int evidence_top(const struct smig_json_doc *doc, struct smig_evidence *e, char *err,
			size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "v", SMIG_J_INT, true, 0, 0 },
		{ "host", SMIG_J_STRING, true, 0, 0 },
		{ "time", SMIG_J_INT, true, 0, INT64_MAX },
		{ "nonce", SMIG_J_STRING, true, 0, 0 },
		{ "binding", SMIG_J_STRING, true, 0, 0 },
		{ "components", SMIG_J_ARRAY, true, 0, 0 },
		{ "capabilities", SMIG_J_ARRAY, true, 0, 0 },
		{ "free_mib", SMIG_J_INT, true, 0, INT64_MAX },
		{ "maintenance", SMIG_J_BOOL, false, 0, 0 },
		{ "logs", SMIG_J_OBJECT, false, 0, 0 },
		{ "tpm", SMIG_J_OBJECT, false, 0, 0 },
		{ "sig", SMIG_J_STRING, true, 0, 0 },
	};
	const json_t *root = doc->root;

	SMIG_GUARD(smig_json_check(doc, root, "evidence", fields, ARRAY_LEN(fields), err, errlen));
	if (json_integer_value(json_object_get(root, "v")) != 1)
		return smig_json_fail(doc, root, "v", err, errlen, "evidence version must be 1");
	if (!smig_name_valid(json_string_value(json_object_get(root, "host"))))
		return smig_json_fail(doc, root, "host", err, errlen, "host must be a name");
	snprintf(e->host, sizeof(e->host), "%s", json_string_value(json_object_get(root, "host")));
	e->time_ms = (int64_t)json_integer_value(json_object_get(root, "time"));
	e->free_mib = (uint64_t)json_integer_value(json_object_get(root, "free_mib"));
	if (json_object_get(root, "logs"))
		SMIG_GUARD(parse_logs(doc, json_object_get(root, "logs"), e, err, errlen));
	/* present only when true: the signed text has one canonical form */
	if (json_object_get(root, "maintenance")) {
		if (!json_is_true(json_object_get(root, "maintenance")))
			return smig_json_fail(doc, root, "maintenance", err, errlen,
					      "maintenance is present only as true");
		e->maintenance = true;
	}
	SMIG_GUARD(parse_hex(doc, "nonce", e->nonce, SMIG_NONCE_LEN, err, errlen));
	SMIG_GUARD(parse_hex(doc, "binding", e->binding, SMIG_BINDING_LEN, err, errlen));
	SMIG_GUARD(parse_hex(doc, "sig", e->sig, sizeof(e->sig), err, errlen));
	SMIG_GUARD(parse_components(doc, json_object_get(root, "components"), e, err, errlen));
	if (json_object_get(root, "tpm"))
		SMIG_GUARD(parse_tpm(doc, json_object_get(root, "tpm"), e, err, errlen));
	return parse_caps(doc, json_object_get(root, "capabilities"), e, err, errlen);
}

int smig_evidence_parse(const char *text, size_t len, struct smig_evidence *e, char *err,
			size_t errlen)
{
	struct smig_json_doc doc;
	int rc;

	memset(e, 0, sizeof(*e));
	if (len > SMIG_EVIDENCE_MAX) {
		snprintf(err, errlen, "evidence: %zu bytes, more than %zu", len, SMIG_EVIDENCE_MAX);
		return SMIG_ETOOBIG;
	}
	SMIG_GUARD(smig_json_load_text(&doc, "evidence", text, len, err, errlen));
	rc = evidence_top(&doc, e, err, errlen);
	smig_json_doc_clear(&doc);
	return rc;
}

const struct smig_component *smig_evidence_find(const struct smig_evidence *e,
						const char *name)
{
	for (size_t i = 0; i < e->ncomp; i++)
		if (strcmp(e->comp[i].name, name) == 0)
			return &e->comp[i];
	return NULL;
}

bool smig_evidence_has_cap(const struct smig_evidence *e, const char *cap)
{
	for (size_t i = 0; i < e->ncaps; i++)
		if (strcmp(e->caps[i], cap) == 0)
			return true;
	return false;
}
