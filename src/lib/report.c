/*
 * report.c - signed verdicts on other hosts (report.h).
 */
#include "report.h"
#include "error.h"
#include "ivt.h"
#include "json.h"
#include "log.h"
#include "sign.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *report_json(const struct smig_report *r)
{
	return json_pack("{s:i,s:s,s:s,s:s,s:s,s:I}", "v", 1, "by", r->by, "about", r->about,
			 "verdict", r->verdict, "reason", r->reason, "time", (json_int_t)r->time_ms);
}

/* SHA-256 of the canonical JSON without sig: what the signature covers. */
static int digest(const struct smig_report *r, uint8_t out[32])
{
	json_t *o = report_json(r);
	char *text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(o);
	SMIG_ENSURE(text != NULL, SMIG_ENOMEM);
	SHA256((const unsigned char *)text, strlen(text), out);
	free(text);
	return 0;
}

int smig_report_sign(struct smig_report *r, EVP_PKEY *key, char **text)
{
	uint8_t d[32];
	char hex[2 * sizeof(r->sig) + 1];
	json_t *o;

	SMIG_GUARD(digest(r, d));
	SMIG_GUARD(smig_sign(key, SMIG_REPORT_CTX, d, sizeof(d), r->sig));
	o = report_json(r);
	smig_hex(r->sig, sizeof(r->sig), hex);
	json_object_set_new(o, "sig", json_string(hex));
	*text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return *text ? 0 : SMIG_ENOMEM;
}

static int copy_name(const struct smig_json_doc *doc, const char *key, char *out, size_t len,
		     char *err, size_t errlen)
{
	const char *s = json_string_value(json_object_get(doc->root, key));

	if (!smig_name_valid(s))
		return smig_json_fail(doc, doc->root, key, err, errlen, "%s must be a host name",
				      key);
	snprintf(out, len, "%s", s);
	return 0;
}

static int report_top(const struct smig_json_doc *doc, struct smig_report *r, char *err,
		      size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "v", SMIG_J_INT, true, 1, 1 },
		{ "by", SMIG_J_STRING, true, 0, 0 },
		{ "about", SMIG_J_STRING, true, 0, 0 },
		{ "verdict", SMIG_J_STRING, true, 0, 0 },
		{ "reason", SMIG_J_STRING, true, 0, 0 },
		{ "time", SMIG_J_INT, true, 0, INT64_MAX },
		{ "sig", SMIG_J_STRING, true, 0, 0 },
	};
	const char *v, *reason;
	bool known = false;

	SMIG_GUARD(smig_json_check(doc, doc->root, "verdict report", fields, ARRAY_LEN(fields),
				   err, errlen));
	SMIG_GUARD(copy_name(doc, "by", r->by, sizeof(r->by), err, errlen));
	SMIG_GUARD(copy_name(doc, "about", r->about, sizeof(r->about), err, errlen));
	v = json_string_value(json_object_get(doc->root, "verdict"));
	for (int k = SMIG_VERDICT_UNKNOWN; k <= SMIG_VERDICT_TRUSTED; k++)
		known |= strcmp(v, smig_verdict_name((enum smig_verdict_kind)k)) == 0;
	if (!known)
		return smig_json_fail(doc, doc->root, "verdict", err, errlen,
				      "verdict must be a verdict name");
	snprintf(r->verdict, sizeof(r->verdict), "%s", v);
	reason = json_string_value(json_object_get(doc->root, "reason"));
	if (!smig_is_printable(reason))
		return smig_json_fail(doc, doc->root, "reason", err, errlen,
				      "reason: printable ASCII only");
	if (strlen(reason) >= sizeof(r->reason))
		return smig_json_fail(doc, doc->root, "reason", err, errlen,
				      "reason: at most %zu bytes", sizeof(r->reason) - 1);
	snprintf(r->reason, sizeof(r->reason), "%s", reason);
	r->time_ms = json_integer_value(json_object_get(doc->root, "time"));
	if (smig_unhex(json_string_value(json_object_get(doc->root, "sig")), r->sig,
		       sizeof(r->sig)) < 0)
		return smig_json_fail(doc, doc->root, "sig", err, errlen,
				      "sig must be 128 hex digits");
	return 0;
}

int smig_report_parse(const char *text, size_t len, struct smig_report *r, char *err,
		      size_t errlen)
{
	struct smig_json_doc doc;
	int rc;

	memset(r, 0, sizeof(*r));
	if (len > SMIG_REPORT_MAX) {
		snprintf(err, errlen, "verdict report: more than %zu bytes", SMIG_REPORT_MAX);
		return SMIG_ETOOBIG;
	}
	SMIG_GUARD(smig_json_load_text(&doc, "verdict report", text, len, err, errlen));
	rc = report_top(&doc, r, err, errlen);
	smig_json_doc_clear(&doc);
	return rc;
}

int smig_report_check_sig(const struct smig_report *r, EVP_PKEY *pub)
{
	uint8_t d[32];

	SMIG_GUARD(digest(r, d));
	return smig_sign_verify(pub, SMIG_REPORT_CTX, d, sizeof(d), r->sig);
}
