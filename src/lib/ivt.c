/*
 * ivt.c - the integrity validation table and attestation verdicts (see
 * ivt.h).
 */
#include "ivt.h"
#include "error.h"
#include "json.h"
#include "sign.h"
#include "tpmcred.h"
#include "eventlog.h"

#include <openssl/sha.h>
#include <stdint.h>

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IVT_HOSTS_MAX SMIG_HOSTS_MAX

static int parse_golden(const struct smig_json_doc *doc, const json_t *arr, size_t i,
			struct smig_golden *g, char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "name", SMIG_J_STRING, true, 0, 0 },
		{ "components", SMIG_J_OBJECT, true, 0, 0 },
	};
	const json_t *o = json_array_get(arr, i), *comps;
	const char *key;
	json_t *v;

	if (!json_is_object(o))
		return smig_json_fail_at(doc, arr, i, err, errlen, "golden[%zu] must be an object",
					 i);
	SMIG_GUARD(smig_json_check(doc, o, "golden set", fields, ARRAY_LEN(fields), err, errlen));
	if (!smig_name_valid(json_string_value(json_object_get(o, "name"))))
		return smig_json_fail(doc, o, "name", err, errlen, "golden set name must be a name");
	snprintf(g->name, sizeof(g->name), "%s", json_string_value(json_object_get(o, "name")));
	comps = json_object_get(o, "components");
	if (json_object_size(comps) > SMIG_COMPONENTS_MAX)
		return smig_json_fail(doc, o, "components", err, errlen,
				      "more than %d components", SMIG_COMPONENTS_MAX);
	json_object_foreach((json_t *)comps, key, v) {
		struct smig_component *c = &g->comp[g->ncomp];

		if (!smig_name_valid(key) ||
		    smig_unhex(json_string_value(v), c->sha256, SMIG_DIGEST_LEN) < 0)
			return smig_json_fail(doc, comps, key, err, errlen,
					      "component %.64s: a name and 64 hex digits", key);
		snprintf(c->name, sizeof(c->name), "%s", key);
		g->ncomp++;
	}
	return 0;
}

static int parse_tpm(const struct smig_json_doc *doc, const json_t *t, struct smig_ivt_host *h,
		     char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "ek", SMIG_J_STRING, true, 0, 0 },
		{ "ak", SMIG_J_STRING, true, 0, 0 },
		{ "ek_cert", SMIG_J_STRING, false, 0, 0 },
	};
	const char *cert;

	SMIG_GUARD(smig_json_check(doc, t, "IVT host tpm", fields, ARRAY_LEN(fields), err, errlen));
	if (smig_unhex(json_string_value(json_object_get(t, "ek")), h->ek, SMIG_EK_LEN) < 0)
		return smig_json_fail(doc, t, "ek", err, errlen,
				      "%s.tpm.ek must be 128 hex digits (a P-256 point)", h->name);
	if (smig_unhex(json_string_value(json_object_get(t, "ak")), h->ak, SMIG_AK_LEN) < 0)
		return smig_json_fail(doc, t, "ak", err, errlen,
				      "%s.tpm.ak must be 128 hex digits (a P-256 point)", h->name);
	cert = json_string_value(json_object_get(t, "ek_cert"));
	h->ek_cert_len = cert ? strlen(cert) / 2 : 0;
	if (cert && (h->ek_cert_len == 0 || h->ek_cert_len > SMIG_EK_CERT_MAX ||
		     smig_unhex(cert, h->ek_cert, h->ek_cert_len) < 0))
		return smig_json_fail(doc, t, "ek_cert", err, errlen,
				      "%s.tpm.ek_cert must be a DER certificate in hex, at most %d "
				      "bytes", h->name, SMIG_EK_CERT_MAX);
	h->has_tpm = true;
	return 0;
}

static int parse_host(const struct smig_json_doc *doc, const json_t *hosts, const char *name,
		      struct smig_ivt_host *h, char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "fingerprint", SMIG_J_STRING, true, 0, 0 },
		{ "trust", SMIG_J_STRING, true, 0, 0 },
		{ "golden", SMIG_J_ARRAY, true, 0, 0 },
		{ "tpm", SMIG_J_OBJECT, false, 0, 0 },
		{ "allowlist", SMIG_J_OBJECT, false, 0, 0 },
		{ "boot_log", SMIG_J_BOOL, false, 0, 0 },
	};
	const json_t *o = json_object_get(hosts, name), *golden;

	if (!smig_name_valid(name) || !json_is_object(o))
		return smig_json_fail(doc, hosts, name, err, errlen,
				      "hosts.%.64s: a host name and an object", name);
	SMIG_GUARD(smig_json_check(doc, o, "IVT host", fields, ARRAY_LEN(fields), err, errlen));
	snprintf(h->name, sizeof(h->name), "%s", name);
	if (smig_fp_parse(json_string_value(json_object_get(o, "fingerprint")), h->fp) < 0)
		return smig_json_fail(doc, o, "fingerprint", err, errlen,
				      "%s.fingerprint must be sha256: and 64 hex digits", name);
	if (smig_trust_parse(json_string_value(json_object_get(o, "trust")), &h->trust) < 0 ||
	    h->trust < SMIG_TRUST_ATTESTED)
		return smig_json_fail(doc, o, "trust", err, errlen,
				      "%s.trust must be attested or trusted", name);
	if (json_object_get(o, "tpm"))
		SMIG_GUARD(parse_tpm(doc, json_object_get(o, "tpm"), h, err, errlen));
	h->boot_log = json_is_true(json_object_get(o, "boot_log"));
	if (json_object_get(o, "allowlist")) {
		SMIG_GUARD(smig_allowlist_from_json(doc, json_object_get(o, "allowlist"), &h->allow,
						    err, errlen));
		h->has_allow = true;
	}
	golden = json_object_get(o, "golden");
	if (json_array_size(golden) > SMIG_GOLDEN_MAX)
		return smig_json_fail(doc, o, "golden", err, errlen, "%s: at most %d golden sets",
				      name, SMIG_GOLDEN_MAX);
	for (size_t i = 0; i < json_array_size(golden); i++, h->ngolden++)
		SMIG_GUARD(parse_golden(doc, golden, i, &h->golden[i], err, errlen));
	return 0;
}

static int ivt_top(const struct smig_json_doc *doc, struct smig_ivt *ivt, char *err,
		   size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "hosts", SMIG_J_OBJECT, true, 0, 0 },
	};
	const json_t *hosts;
	const char *name;
	json_t *v;

	SMIG_GUARD(smig_json_check(doc, doc->root, "IVT", fields, ARRAY_LEN(fields), err, errlen));
	hosts = json_object_get(doc->root, "hosts");
	if (json_object_size(hosts) > IVT_HOSTS_MAX)
		return smig_json_fail(doc, doc->root, "hosts", err, errlen, "more than %d hosts",
				      IVT_HOSTS_MAX);
	ivt->v = calloc(json_object_size(hosts) + 1, sizeof(*ivt->v));
	SMIG_ENSURE(ivt->v != NULL, SMIG_ENOMEM);
	json_object_foreach((json_t *)hosts, name, v) {
		ivt->n++; /* counted first: a failure's partial entry is freed with the rest */
		SMIG_GUARD(parse_host(doc, hosts, name, &ivt->v[ivt->n - 1], err, errlen));
	}
	return 0;
}

/* Reads the IVT in text, or in the file name when text is NULL. */
static int ivt_read(const char *name, const char *text, size_t len, struct smig_ivt *ivt,
		    char *err, size_t errlen)
{
	struct smig_json_doc doc;
	int rc;

	memset(ivt, 0, sizeof(*ivt));
	SMIG_GUARD(smig_json_load(&doc, name, text, len, err, errlen));
	rc = ivt_top(&doc, ivt, err, errlen);
	smig_json_doc_clear(&doc);
	if (rc < 0)
		smig_ivt_clear(ivt);
	return rc;
}

int smig_ivt_parse(const char *name, const char *text, size_t len, struct smig_ivt *ivt,
		   char *err, size_t errlen)
{
	return ivt_read(name, text, len, ivt, err, errlen);
}

int smig_ivt_load(const char *path, struct smig_ivt *ivt, char *err, size_t errlen)
{
	return ivt_read(path, NULL, 0, ivt, err, errlen);
}

void smig_ivt_clear(struct smig_ivt *ivt)
{
	for (size_t i = 0; ivt->v && i < ivt->n; i++)
		smig_allowlist_free(&ivt->v[i].allow);
	free(ivt->v);
	memset(ivt, 0, sizeof(*ivt));
}

const struct smig_ivt_host *smig_ivt_find(const struct smig_ivt *ivt, const char *host)
{
	for (size_t i = 0; ivt && i < ivt->n; i++)
		if (strcmp(ivt->v[i].name, host) == 0)
			return &ivt->v[i];
	return NULL;
}

static json_t *golden_json(const struct smig_golden *g)
{
	json_t *comps = json_object();
	char hex[2 * SMIG_DIGEST_LEN + 1];

	for (size_t i = 0; i < g->ncomp; i++) {
		smig_hex(g->comp[i].sha256, SMIG_DIGEST_LEN, hex);
		json_object_set_new(comps, g->comp[i].name, json_string(hex));
	}
	return json_pack("{s:s,s:o}", "name", g->name, "components", comps);
}

int smig_ivt_dump(const struct smig_ivt *ivt, char **text)
{
	json_t *hosts = json_object(), *root;
	char fp[SMIG_FP_STR_LEN];

	for (size_t i = 0; i < ivt->n; i++) {
		const struct smig_ivt_host *h = &ivt->v[i];
		json_t *golden = json_array();

		for (size_t k = 0; k < h->ngolden; k++)
			json_array_append_new(golden, golden_json(&h->golden[k]));
		smig_fp_format(h->fp, fp);
		json_object_set_new(hosts, h->name,
				    json_pack("{s:s,s:s,s:o}", "fingerprint", fp, "trust",
					      smig_trust_name(h->trust), "golden", golden));
		if (h->has_tpm) {
			char ak[2 * SMIG_AK_LEN + 1], ek[2 * SMIG_EK_LEN + 1];

			smig_hex(h->ak, SMIG_AK_LEN, ak);
			smig_hex(h->ek, SMIG_EK_LEN, ek);
			json_t *t = json_pack("{s:s,s:s}", "ek", ek, "ak", ak);

			if (h->ek_cert_len > 0)
				json_object_set_new(t, "ek_cert",
						    smig_json_hex(h->ek_cert, h->ek_cert_len));
			json_object_set_new(json_object_get(hosts, h->name), "tpm", t);
		}
		if (h->has_allow)
			json_object_set_new(json_object_get(hosts, h->name), "allowlist",
					    smig_allowlist_json(&h->allow));
		if (h->boot_log)
			json_object_set_new(json_object_get(hosts, h->name), "boot_log", json_true());
	}
	root = json_pack("{s:o}", "hosts", hosts);
	*text = root ? json_dumps(root, JSON_INDENT(2)) : NULL;
	json_decref(root);
	return *text ? 0 : SMIG_ENOMEM;
}

bool smig_ivt_ima_pcr(const struct smig_evidence *e, const char *name)
{
	unsigned k;

	return e->has_ima_log && smig_pcr_name(name, &k) && k == SMIG_IMA_PCR;
}

int smig_ivt_enrol(struct smig_ivt *ivt, const char *host, const uint8_t fp[SMIG_FP_LEN],
		   enum smig_trust trust, const char *golden, const struct smig_evidence *e,
		   bool tpm)
{
	struct smig_ivt_host *h = (struct smig_ivt_host *)smig_ivt_find(ivt, host);
	struct smig_golden *g = NULL;

	SMIG_ENSURE(smig_name_valid(host) && smig_name_valid(golden) &&
			    trust != SMIG_TRUST_NONE && (!tpm || e->has_tpm),
		    SMIG_EINVAL);
	if (h == NULL) {
		struct smig_ivt_host *nv = realloc(ivt->v, (ivt->n + 1) * sizeof(*nv));

		SMIG_ENSURE(nv != NULL, SMIG_ENOMEM);
		ivt->v = nv;
		h = &ivt->v[ivt->n++];
		memset(h, 0, sizeof(*h));
		snprintf(h->name, sizeof(h->name), "%s", host);
	}
	memcpy(h->fp, fp, SMIG_FP_LEN);
	h->trust = trust;
	if (tpm) {
		h->has_tpm = true;
		memcpy(h->ak, e->quote.ak, SMIG_AK_LEN);
		memcpy(h->ek, e->ek, SMIG_EK_LEN);
		memcpy(h->ek_cert, e->ek_cert, e->ek_cert_len);
		h->ek_cert_len = e->ek_cert_len;
	}
	for (size_t i = 0; i < h->ngolden; i++)
		if (strcmp(h->golden[i].name, golden) == 0)
			g = &h->golden[i];
	if (g == NULL) {
		if (h->ngolden == SMIG_GOLDEN_MAX) {
			memmove(&h->golden[0], &h->golden[1], (SMIG_GOLDEN_MAX - 1) * sizeof(*g));
			h->ngolden--;
		}
		g = &h->golden[h->ngolden++];
	}
	memset(g, 0, sizeof(*g));
	snprintf(g->name, sizeof(g->name), "%s", golden);
	for (size_t i = 0; i < e->ncomp; i++)
		if (!smig_ivt_ima_pcr(e, e->comp[i].name)) /* the IMA list speaks for PCR 10 */
			g->comp[g->ncomp++] = e->comp[i];
	if (tpm && e->has_boot_log)
		h->boot_log = true;
	return 0;
}

const char *smig_verdict_name(enum smig_verdict_kind k)
{
	static const char *const names[] = { "unknown", "untrusted", "unverified", "attested",
					     "trusted" };

	return (unsigned)k < ARRAY_LEN(names) ? names[k] : "unknown";
}

static void verdict(struct smig_verdict *v, enum smig_verdict_kind k, const char *component,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void verdict(struct smig_verdict *v, enum smig_verdict_kind k, const char *component,
		    const char *fmt, ...)
{
	va_list ap;

	v->kind = k;
	v->trust = SMIG_TRUST_NONE;
	snprintf(v->component, sizeof(v->component), "%s", component ? component : "");
	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
	va_end(ap);
}

/* Problems of e against g: the count, and the first one described in v. */
static size_t golden_diff(const struct smig_golden *g, const struct smig_evidence *e,
			  struct smig_verdict *v)
{
	char got[2 * SMIG_DIGEST_LEN + 1], want[2 * SMIG_DIGEST_LEN + 1];
	size_t n = 0;

	for (size_t i = 0; i < e->ncomp; i++) {
		const struct smig_component *c = &e->comp[i];
		const struct smig_component *w = NULL;

		if (smig_ivt_ima_pcr(e, c->name))
			continue;

		for (size_t k = 0; k < g->ncomp; k++)
			if (strcmp(g->comp[k].name, c->name) == 0)
				w = &g->comp[k];
		smig_hex(c->sha256, SMIG_DIGEST_LEN, got);
		if (w == NULL) {
			if (n++ == 0)
				verdict(v, SMIG_VERDICT_UNTRUSTED, c->name,
					"unknown component %s (sha256 %s), not in golden set %s",
					c->name, got, g->name);
		} else if (CRYPTO_memcmp(w->sha256, c->sha256, SMIG_DIGEST_LEN) != 0) {
			smig_hex(w->sha256, SMIG_DIGEST_LEN, want);
			if (n++ == 0)
				verdict(v, SMIG_VERDICT_UNTRUSTED, c->name,
					"component %s: sha256 %s, golden set %s has %s", c->name,
					got, g->name, want);
		}
	}
	for (size_t k = 0; k < g->ncomp; k++) {
		if (smig_evidence_find(e, g->comp[k].name) == NULL && n++ == 0) {
			smig_hex(g->comp[k].sha256, SMIG_DIGEST_LEN, want);
			verdict(v, SMIG_VERDICT_UNTRUSTED, g->comp[k].name,
				"component %s was not measured; golden set %s has %s",
				g->comp[k].name, g->name, want);
		}
	}
	return n;
}

void smig_ivt_match(const struct smig_ivt_host *h, const struct smig_evidence *e,
		    struct smig_verdict *v)
{
	struct smig_verdict best = { 0 }, cur;
	size_t best_n = (size_t)-1;

	for (size_t i = 0; i < h->ngolden; i++) {
		size_t n = golden_diff(&h->golden[i], e, &cur);

		if (n == 0) {
			verdict(v, h->trust == SMIG_TRUST_TRUSTED ? SMIG_VERDICT_TRUSTED
								  : SMIG_VERDICT_ATTESTED,
				NULL, "matches golden set %s", h->golden[i].name);
			v->trust = h->trust;
			snprintf(v->golden, sizeof(v->golden), "%s", h->golden[i].name);
			return;
		}
		if (n < best_n) {
			best = cur;
			best_n = n;
		}
	}
	if (h->ngolden == 0)
		verdict(v, SMIG_VERDICT_UNTRUSTED, NULL, "the IVT has no golden set for %s",
			h->name);
	else
		*v = best;
}

/* The PCR components of e, ascending: their indexes and values. */
static size_t pcr_values(const struct smig_evidence *e, unsigned idx[SMIG_PCR_MAX],
			 uint8_t val[SMIG_PCR_MAX][32])
{
	size_t n = 0;

	for (unsigned pcr = 0; pcr < SMIG_PCR_MAX; pcr++) {
		for (size_t i = 0; i < e->ncomp; i++) {
			unsigned k;

			if (smig_pcr_name(e->comp[i].name, &k) && k == pcr) {
				idx[n] = k;
				memcpy(val[n++], e->comp[i].sha256, 32);
			}
		}
	}
	return n;
}

enum tpm_root { TPM_BAD, TPM_ROOTED, TPM_OWN_WORD };

/*
 * The TPM part. Any quote must be fresh for this nonce and session and
 * cover exactly the PCR values the evidence reports. A host whose TPM the
 * IVT enrolled must bring a quote by the enrolled AK, from the TPM with
 * the enrolled EK: TPM_ROOTED. A host with no TPM enrolled has only its
 * own word (TPM_OWN_WORD). TPM_BAD with v set otherwise.
 */
static enum tpm_root tpm_check(const struct smig_ivt_host *h, const struct smig_evidence *e,
			       const struct smig_attest_ctx *x, struct smig_verdict *v)
{
	unsigned idx[SMIG_PCR_MAX];
	uint8_t val[SMIG_PCR_MAX][32], extra[32];
	char why[256], got[72], want[72];
	size_t n = pcr_values(e, idx, val);

	v->authentic = true; /* the host is who it says; what follows is its TPM's word */
	if (h && h->has_tpm && !e->has_quote) {
		verdict(v, SMIG_VERDICT_UNTRUSTED, NULL,
			"no TPM quote, though the IVT enrolled a TPM for %s", x->host);
		return TPM_BAD;
	}
	if (e->has_quote) {
		smig_quote_extra(x->nonce, x->binding, extra);
		if (smig_quote_verify(&e->quote, extra, idx, (const uint8_t(*)[32])val, n, why,
				      sizeof(why)) < 0) {
			verdict(v, SMIG_VERDICT_UNTRUSTED, NULL, "%s", why);
			return TPM_BAD;
		}
		v->quote_ok = true;
	} else if (n > 0) {
		verdict(v, SMIG_VERDICT_UNTRUSTED, NULL, "PCR values without a TPM quote");
		return TPM_BAD;
	}
	if (h == NULL || !h->has_tpm)
		return TPM_OWN_WORD;
	if (CRYPTO_memcmp(h->ek, e->ek, SMIG_EK_LEN) != 0) {
		smig_tpm_key_fp(e->ek, got);
		smig_tpm_key_fp(h->ek, want);
		verdict(v, SMIG_VERDICT_UNTRUSTED, "tpm",
			"%s presents another TPM (EK %s) than the one enrolled (EK %s); if its TPM "
			"was replaced, enrol it again: smig ivt enrol %s --new-tpm",
			x->host, got, want, x->host);
		return TPM_BAD;
	}
	if (CRYPTO_memcmp(h->ak, e->quote.ak, SMIG_AK_LEN) != 0) {
		smig_tpm_key_fp(e->quote.ak, got);
		smig_tpm_key_fp(h->ak, want);
		verdict(v, SMIG_VERDICT_UNTRUSTED, "tpm",
			"the quote is by attestation key %s, not the one enrolled for %s (%s): a "
			"new key is taken only by enrolment (smig ivt enrol %s --new-tpm)",
			got, x->host, want, x->host);
		return TPM_BAD;
	}
	return TPM_ROOTED;
}

/* Whether the log that came is the one the (signed) evidence names. */
static bool log_is(const uint8_t *data, size_t len, uint32_t size, const uint8_t sha[32])
{
	uint8_t d[32];

	if (data == NULL || len != size)
		return false;
	SHA256(data, len, d);
	return CRYPTO_memcmp(d, sha, 32) == 0;
}

/* The boot event log replays to the quoted PCRs below 10. */
static bool boot_log_ok(const struct smig_evidence *e, const struct smig_attest_ctx *x,
			const unsigned *idx, const uint8_t (*val)[32], size_t n,
			struct smig_verdict *v)
{
	struct smig_evlog l;
	char why[300];
	size_t m = 0;
	int rc;

	if (!log_is(x->boot_log, x->boot_len, e->boot_size, e->boot_sha256)) {
		verdict(v, SMIG_VERDICT_UNTRUSTED, "boot_log", "the boot event log that came is "
			"not the one its evidence names (%u bytes)", e->boot_size);
		return false;
	}
	if (smig_evlog_parse(x->boot_log, x->boot_len, &l, why, sizeof(why)) < 0) {
		verdict(v, SMIG_VERDICT_UNTRUSTED, "boot_log", "%s", why);
		return false;
	}
	while (m < n && idx[m] < SMIG_IMA_PCR)
		m++;
	rc = smig_evlog_check(&l, idx, val, m, why, sizeof(why));
	smig_evlog_free(&l);
	if (rc < 0)
		verdict(v, SMIG_VERDICT_UNTRUSTED, "boot_log", "%s", why);
	return rc == 0;
}

/*
 * The IMA list replays to the quoted PCR 10 (the list read after the
 * quote may be longer: the prefix that gives the quoted value counts,
 * what follows is for the next round), and every entry of that prefix is
 * in the IVT's allowlist for the host, if it has one.
 */
static bool ima_log_ok(const struct smig_ivt_host *h, const struct smig_evidence *e,
		       const struct smig_attest_ctx *x, const unsigned *idx,
		       const uint8_t (*val)[32], size_t n, struct smig_verdict *v)
{
	const uint8_t *q = NULL;
	uint8_t cur[32] = { 0 };
	struct smig_ima l, view;
	size_t matched = SIZE_MAX;
	char why[400], hex[65];
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		if (idx[i] == SMIG_IMA_PCR)
			q = val[i];
	if (q == NULL) {
		verdict(v, SMIG_VERDICT_UNTRUSTED, "ima", "an IMA list, but PCR %d is not quoted",
			SMIG_IMA_PCR);
		return false;
	}
	if (!log_is(x->ima_log, x->ima_len, e->ima_size, e->ima_sha256)) {
		verdict(v, SMIG_VERDICT_UNTRUSTED, "ima", "the IMA list that came is not the one "
			"its evidence names (%u bytes)", e->ima_size);
		return false;
	}
	if (smig_ima_parse(x->ima_log, x->ima_len, false, &l, why, sizeof(why)) < 0) {
		verdict(v, SMIG_VERDICT_UNTRUSTED, "ima", "%s", why);
		return false;
	}
	if (CRYPTO_memcmp(cur, q, 32) == 0)
		matched = 0;
	for (size_t i = 0; i < l.n; i++) {
		if (l.e[i].pcr != SMIG_IMA_PCR)
			continue;
		smig_pcr_extend(cur, l.e[i].extend);
		if (CRYPTO_memcmp(cur, q, 32) == 0)
			matched = i + 1;
	}
	if (matched == SIZE_MAX) {
		smig_hex(q, 32, hex);
		verdict(v, SMIG_VERDICT_UNTRUSTED, "ima", "the IMA list (%zu entries) does not replay "
			"to the quoted PCR %d (sha256 %s)", l.n, SMIG_IMA_PCR, hex);
		rc = SMIG_EAUTH;
	} else if (h->has_allow) {
		view = l;
		view.n = matched;
		rc = smig_allowlist_check(&h->allow, &view, 0, why, sizeof(why));
		if (rc < 0)
			verdict(v, SMIG_VERDICT_UNTRUSTED, "ima", "%s", why);
	}
	smig_ima_free(&l);
	return rc == 0;
}

/*
 * With a TPM-rooted quote: the logs the host sent replay to the quoted
 * PCRs and, for IMA, match the allowlist; the IVT may require them.
 */
static bool logs_ok(const struct smig_ivt_host *h, const struct smig_evidence *e,
		    const struct smig_attest_ctx *x, struct smig_verdict *v)
{
	unsigned idx[SMIG_PCR_MAX];
	uint8_t val[SMIG_PCR_MAX][32];
	size_t n = pcr_values(e, idx, val);

	if (h->boot_log && !e->has_boot_log) {
		verdict(v, SMIG_VERDICT_UNTRUSTED, "boot_log", "no boot event log, though %s was "
			"enrolled with one", x->host);
		return false;
	}
	if (h->has_allow && !e->has_ima_log) {
		verdict(v, SMIG_VERDICT_UNTRUSTED, "ima", "no IMA list, though the IVT has an "
			"allowlist for %s", x->host);
		return false;
	}
	if (e->has_boot_log &&
	    !boot_log_ok(e, x, idx, (const uint8_t(*)[32])val, n, v))
		return false;
	return !e->has_ima_log || ima_log_ok(h, e, x, idx, (const uint8_t(*)[32])val, n, v);
}

/* Without an enrolled TPM a match is the host's own word: at most unverified. */
static void cap_own_word(const char *host, struct smig_verdict *v)
{
	char was[sizeof(v->reason)];

	if (v->kind != SMIG_VERDICT_ATTESTED && v->kind != SMIG_VERDICT_TRUSTED)
		return;
	snprintf(was, sizeof(was), "%s", v->reason);
	verdict(v, SMIG_VERDICT_UNVERIFIED, NULL,
		"%s, but by its own word only: no quote by a TPM attestation key enrolled for "
		"%s (smig ivt enrol %s on a host with a TPM)", was, host, host);
	v->trust = SMIG_TRUST_UNVERIFIED;
}

void smig_attest_verify(const struct smig_ivt *ivt, const struct smig_evidence *e,
			const struct smig_attest_ctx *x, struct smig_verdict *v)
{
	const struct smig_ivt_host *h = smig_ivt_find(ivt, x->host);
	enum tpm_root root;

	memset(v, 0, sizeof(*v));
	if (strcmp(e->host, x->host) != 0) {
		verdict(v, SMIG_VERDICT_UNTRUSTED, NULL,
			"evidence is from %s, the session is with %s", e->host, x->host);
		return;
	}
	if (CRYPTO_memcmp(e->nonce, x->nonce, SMIG_NONCE_LEN) != 0) {
		verdict(v, SMIG_VERDICT_UNTRUSTED, NULL,
			"evidence answers another nonce (replayed)");
		return;
	}
	if (CRYPTO_memcmp(e->binding, x->binding, SMIG_BINDING_LEN) != 0) {
		verdict(v, SMIG_VERDICT_UNTRUSTED, NULL,
			"evidence is bound to another TLS session (relayed)");
		return;
	}
	if (smig_evidence_check_sig(e, x->pub) < 0) {
		verdict(v, SMIG_VERDICT_UNTRUSTED, NULL, "evidence signature is not %s's",
			x->host);
		return;
	}
	if (h && CRYPTO_memcmp(h->fp, x->fp, SMIG_FP_LEN) != 0 &&
	    (x->fp_other == NULL || CRYPTO_memcmp(h->fp, x->fp_other, SMIG_FP_LEN) != 0)) {
		verdict(v, SMIG_VERDICT_UNTRUSTED, NULL,
			"the IVT names another certificate for %s", x->host);
		return;
	}
	root = tpm_check(h, e, x, v);
	if (root == TPM_BAD)
		return;
	if (root == TPM_ROOTED && !logs_ok(h, e, x, v)) {
		v->authentic = true;
		return;
	}
	if (h) {
		bool quote_ok = v->quote_ok;

		smig_ivt_match(h, e, v);
		v->quote_ok = quote_ok;
	} else {
		verdict(v, SMIG_VERDICT_UNVERIFIED, NULL,
			"authentic and fresh; the IVT has no entry for %s", x->host);
		v->trust = SMIG_TRUST_UNVERIFIED;
	}
	v->authentic = true;
	if (root == TPM_OWN_WORD)
		cap_own_word(x->host, v);
}

void smig_ivt_self_check(const struct smig_ivt_host *h, const struct smig_evidence *e,
			 struct smig_verdict *v)
{
	smig_ivt_match(h, e, v);
	v->authentic = true;
	if (!h->has_tpm || !e->has_tpm || CRYPTO_memcmp(h->ek, e->ek, SMIG_EK_LEN) != 0 ||
	    CRYPTO_memcmp(h->ak, e->quote.ak, SMIG_AK_LEN) != 0)
		cap_own_word(h->name, v);
}

const char *smig_attest_fits(const char *host, const struct smig_verdict *v,
			     const struct smig_evidence *e, const struct smig_vmspec *spec,
			     char *why, size_t whylen)
{
	if (v == NULL || (v->kind != SMIG_VERDICT_UNVERIFIED && v->kind != SMIG_VERDICT_ATTESTED &&
			  v->kind != SMIG_VERDICT_TRUSTED)) {
		snprintf(why, whylen, "%s is %s: %s", host,
			 smig_verdict_name(v ? v->kind : SMIG_VERDICT_UNKNOWN),
			 v && v->reason[0] ? v->reason : "no evidence");
		return "attestation";
	}
	if (e && e->maintenance) {
		snprintf(why, whylen, "%s is in maintenance: it takes no VMs until it is out", host);
		return "maintenance";
	}
	if (v->trust < spec->min_trust) {
		snprintf(why, whylen, "%s is %s; %s needs %s", host, smig_trust_name(v->trust),
			 spec->name, smig_trust_name(spec->min_trust));
		return "constraint:min_trust";
	}
	for (size_t i = 0; i < spec->nrequires; i++) {
		if (e == NULL || !smig_evidence_has_cap(e, spec->requires[i])) {
			snprintf(why, whylen, "%s lacks %s, which %s requires", host,
				 spec->requires[i], spec->name);
			return "capability";
		}
	}
	return NULL;
}
