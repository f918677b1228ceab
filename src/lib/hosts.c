/*
 * hosts.c - the cluster's host table (config.h): strict loading, lookups
 * by name, certificate fingerprint (a host's one, or its two during a
 * rotation) and address, and the address and fingerprint forms it is
 * written in. Every fingerprint belongs to one host; a revoked one may be
 * a rotating host's other, never a host's last.
 */
#include "config.h"
#include "error.h"
#include "json.h"
#include "sign.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int smig_addr_parse(const char *s, char *addr, size_t addrlen, uint16_t *port)
{
	char tmp[SMIG_ADDR_MAX];
	const char *host = s;
	const char *portstr = NULL;
	unsigned char bin[16];
	size_t hlen;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		SMIG_ENSURE(close != NULL, SMIG_EINVAL);
		host = s + 1;
		hlen = (size_t)(close - host);
		if (close[1] == ':')
			portstr = close + 2;
		else
			SMIG_ENSURE(close[1] == '\0', SMIG_EINVAL);
	} else {
		const char *colon = strchr(s, ':');
		SMIG_ENSURE(colon == NULL || strchr(colon + 1, ':') == NULL, SMIG_EINVAL);
		hlen = colon ? (size_t)(colon - s) : strlen(s);
		if (colon)
			portstr = colon + 1;
	}
	SMIG_ENSURE(hlen > 0 && hlen < sizeof(tmp) && hlen < addrlen, SMIG_EINVAL);
	memcpy(tmp, host, hlen);
	tmp[hlen] = '\0';
	if (inet_pton(AF_INET, tmp, bin) != 1 && inet_pton(AF_INET6, tmp, bin) != 1)
		return SMIG_EINVAL;
	*port = SMIG_DEFAULT_PORT;
	if (portstr) {
		char *end;
		long p;

		SMIG_ENSURE(*portstr >= '0' && *portstr <= '9', SMIG_EINVAL);
		p = strtol(portstr, &end, 10);
		SMIG_ENSURE(*end == '\0' && p > 0 && p <= 65535, SMIG_EINVAL);
		*port = (uint16_t)p;
	}
	memcpy(addr, tmp, hlen + 1);
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int smig_fp_parse(const char *s, uint8_t fp[SMIG_FP_LEN])
{
	size_t n = 0;

	SMIG_ENSURE(strncmp(s, "sha256:", 7) == 0, SMIG_EINVAL);
	s += 7;
	while (*s) {
		int hi;
		int lo;

		if (*s == ':' && n > 0) {
			s++;
			continue;
		}
		SMIG_ENSURE(n < SMIG_FP_LEN, SMIG_EINVAL);
		hi = hexval(s[0]);
		SMIG_ENSURE(hi >= 0 && s[1] != '\0', SMIG_EINVAL);
		lo = hexval(s[1]);
		SMIG_ENSURE(lo >= 0, SMIG_EINVAL);
		fp[n++] = (uint8_t)(hi << 4 | lo);
		s += 2;
	}
	SMIG_ENSURE(n == SMIG_FP_LEN, SMIG_EINVAL);
	return 0;
}

void smig_fp_format(const uint8_t fp[SMIG_FP_LEN], char out[SMIG_FP_STR_LEN])
{
	snprintf(out, SMIG_FP_STR_LEN, "sha256:");
	smig_hex(fp, SMIG_FP_LEN, out + 7);
}

/* hosts[i].key, a fingerprint: parsed into fp, and no other host's. */
static int host_fp(const struct smig_json_doc *doc, const json_t *e, const char *key,
		   const char *what, const struct smig_hosts *h, uint8_t fp[SMIG_FP_LEN],
		   char *err, size_t errlen)
{
	const struct smig_host *owner;

	if (smig_fp_parse(json_string_value(json_object_get(e, key)), fp) < 0)
		return smig_json_fail(doc, e, key, err, errlen,
				      "%s.%s must be sha256: and 64 hex digits (smig pki "
				      "fingerprint CERT prints it)", what, key);
	if ((owner = smig_hosts_by_fp(h, fp)))
		return smig_json_fail(doc, e, key, err, errlen,
				      "%s.%s already belongs to host %s: one certificate, one host",
				      what, key, owner->name);
	return 0;
}

static int hosts_entry(const struct smig_json_doc *doc, const json_t *arr, size_t i,
		       struct smig_hosts *h, char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "name", SMIG_J_STRING, true, 0, 0 },
		{ "address", SMIG_J_STRING, true, 0, 0 },
		{ "fingerprint", SMIG_J_STRING, true, 0, 0 },
		{ "next_fingerprint", SMIG_J_STRING, false, 0, 0 },
		{ "labels", SMIG_J_OBJECT, false, 0, 0 },
	};
	const json_t *e = json_array_get(arr, i);
	const json_t *labels;
	struct smig_host *host = &h->v[i];
	char what[32];
	const char *name;

	snprintf(what, sizeof(what), "hosts[%zu]", i);
	if (!json_is_object(e))
		return smig_json_fail_at(doc, arr, i, err, errlen, "%s must be an object", what);
	SMIG_GUARD(smig_json_check(doc, e, what, fields, ARRAY_LEN(fields), err, errlen));
	name = json_string_value(json_object_get(e, "name"));
	if (!smig_name_valid(name))
		return smig_json_fail(doc, e, "name", err, errlen,
				      "%s.name must be 1-63 characters of A-Z a-z 0-9 . _ -", what);
	if (strcmp(name, "auto") == 0)
		return smig_json_fail(doc, e, "name", err, errlen,
				      "%s.name \"auto\" is reserved (smig migrate --to auto lets smigd "
				      "choose the host): rename the host",
				      what);
	if (smig_hosts_by_name(h, name))
		return smig_json_fail(doc, e, "name", err, errlen, "duplicate host name \"%s\"",
				      name);
	if (smig_addr_parse(json_string_value(json_object_get(e, "address")), host->addr,
			    sizeof(host->addr), &host->port) < 0)
		return smig_json_fail(doc, e, "address", err, errlen,
				      "%s.address must be a numeric address with optional :port",
				      what);
	SMIG_GUARD(host_fp(doc, e, "fingerprint", what, h, host->fp, err, errlen));
	if (json_object_get(e, "next_fingerprint")) {
		SMIG_GUARD(host_fp(doc, e, "next_fingerprint", what, h, host->next_fp, err,
				   errlen));
		if (memcmp(host->next_fp, host->fp, SMIG_FP_LEN) == 0)
			return smig_json_fail(doc, e, "next_fingerprint", err, errlen,
					      "%s.next_fingerprint is its fingerprint again: name "
					      "the new certificate's, or leave it out", what);
		host->has_next = true;
	}
	if ((labels = json_object_get(e, "labels")))
		SMIG_GUARD(smig_labels_parse(doc, labels, host->labels, SMIG_HOST_LABELS_MAX,
					     &host->nlabels, err, errlen));
	snprintf(host->name, sizeof(host->name), "%s", name);
	h->n++;
	return 0;
}

static int revoked_entry(const struct smig_json_doc *doc, const json_t *arr, size_t i,
			 struct smig_hosts *h, char *err, size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "fingerprint", SMIG_J_STRING, true, 0, 0 },
		{ "reason", SMIG_J_STRING, true, 0, 0 },
		{ "host", SMIG_J_STRING, false, 0, 0 },
	};
	const json_t *e = json_array_get(arr, i);
	struct smig_revoked *r = &h->revoked[i];
	const struct smig_host *owner;
	const char *reason, *host;
	char what[32];

	snprintf(what, sizeof(what), "revoked[%zu]", i);
	if (!json_is_object(e))
		return smig_json_fail_at(doc, arr, i, err, errlen, "%s must be an object", what);
	SMIG_GUARD(smig_json_check(doc, e, what, fields, ARRAY_LEN(fields), err, errlen));
	if (smig_fp_parse(json_string_value(json_object_get(e, "fingerprint")), r->fp) < 0)
		return smig_json_fail(doc, e, "fingerprint", err, errlen,
				      "%s.fingerprint must be sha256: and 64 hex digits", what);
	if (smig_hosts_revoked(h, r->fp))
		return smig_json_fail(doc, e, "fingerprint", err, errlen,
				      "%s.fingerprint is revoked twice", what);
	/*
	 * a rotating host's other certificate may be revoked (the revocation
	 * wins at every handshake); a host must keep one that is not
	 */
	owner = smig_hosts_by_fp(h, r->fp);
	if (owner && (smig_host_other_fp(owner, r->fp) == NULL ||
		      smig_hosts_revoked(h, smig_host_other_fp(owner, r->fp))))
		return smig_json_fail(doc, e, "fingerprint", err, errlen,
				      "%s.fingerprint is the certificate of host %s, which would "
				      "have none left: re-key %s (smig pki csr, smig pki sign) "
				      "and list the new one as its next_fingerprint, or take %s "
				      "out of hosts",
				      what, owner->name, owner->name, owner->name);
	reason = json_string_value(json_object_get(e, "reason"));
	if (reason[0] == '\0' || strlen(reason) > SMIG_REVOKED_REASON_MAX)
		return smig_json_fail(doc, e, "reason", err, errlen,
				      "%s.reason must be 1-%d characters", what,
				      SMIG_REVOKED_REASON_MAX);
	host = json_string_value(json_object_get(e, "host"));
	if (host && !smig_name_valid(host))
		return smig_json_fail(doc, e, "host", err, errlen,
				      "%s.host must be 1-63 characters of A-Z a-z 0-9 . _ -", what);
	snprintf(r->reason, sizeof(r->reason), "%s", reason);
	snprintf(r->host, sizeof(r->host), "%s", host ? host : "");
	h->nrevoked++;
	return 0;
}

static int hosts_revoked(const struct smig_json_doc *doc, struct smig_hosts *h, char *err,
			 size_t errlen)
{
	const json_t *arr = json_object_get(doc->root, "revoked");
	size_t n = json_array_size(arr);

	if (arr == NULL)
		return 0;
	if (n > SMIG_REVOKED_MAX)
		return smig_json_fail(doc, doc->root, "revoked", err, errlen,
				      "more than %d revoked certificates", SMIG_REVOKED_MAX);
	h->revoked = calloc(n ? n : 1, sizeof(*h->revoked));
	SMIG_ENSURE(h->revoked != NULL, SMIG_ENOMEM);
	for (size_t i = 0; i < n; i++)
		SMIG_GUARD(revoked_entry(doc, arr, i, h, err, errlen));
	return 0;
}

static int hosts_top(const struct smig_json_doc *doc, struct smig_hosts *h, char *err,
		     size_t errlen)
{
	static const struct smig_jfield fields[] = {
		{ "hosts", SMIG_J_ARRAY, true, 0, 0 },
		{ "revoked", SMIG_J_ARRAY, false, 0, 0 },
	};
	const json_t *arr;
	size_t n;

	SMIG_GUARD(smig_json_check(doc, doc->root, "host table", fields, ARRAY_LEN(fields), err,
				   errlen));
	arr = json_object_get(doc->root, "hosts");
	n = json_array_size(arr);
	if (n > SMIG_HOSTS_MAX)
		return smig_json_fail(doc, doc->root, "hosts", err, errlen,
				      "more than %d hosts", SMIG_HOSTS_MAX);
	h->v = calloc(n ? n : 1, sizeof(*h->v));
	SMIG_ENSURE(h->v != NULL, SMIG_ENOMEM);
	for (size_t i = 0; i < n; i++)
		SMIG_GUARD(hosts_entry(doc, arr, i, h, err, errlen));
	return hosts_revoked(doc, h, err, errlen);
}

/* Reads the host table in text, or in the file name when text is NULL. */
static int hosts_read(const char *name, const char *text, size_t len, struct smig_hosts *h,
		      char *err, size_t errlen)
{
	struct smig_json_doc doc;
	int rc;

	memset(h, 0, sizeof(*h));
	SMIG_GUARD(smig_json_load(&doc, name, text, len, err, errlen));
	rc = hosts_top(&doc, h, err, errlen);
	smig_json_doc_clear(&doc);
	if (rc < 0)
		smig_hosts_clear(h);
	return rc;
}

int smig_hosts_parse(const char *name, const char *text, size_t len, struct smig_hosts *h,
		     char *err, size_t errlen)
{
	return hosts_read(name, text, len, h, err, errlen);
}

int smig_hosts_load(const char *path, struct smig_hosts *h, char *err, size_t errlen)
{
	return hosts_read(path, NULL, 0, h, err, errlen);
}

void smig_hosts_clear(struct smig_hosts *h)
{
	free(h->v);
	free(h->revoked);
	memset(h, 0, sizeof(*h));
}

const struct smig_host *smig_hosts_by_name(const struct smig_hosts *h, const char *name)
{
	for (size_t i = 0; i < h->n; i++)
		if (strcmp(h->v[i].name, name) == 0)
			return &h->v[i];
	return NULL;
}

bool smig_host_has_fp(const struct smig_host *host, const uint8_t *fp)
{
	return memcmp(host->fp, fp, SMIG_FP_LEN) == 0 ||
	       (host->has_next && memcmp(host->next_fp, fp, SMIG_FP_LEN) == 0);
}

const uint8_t *smig_host_other_fp(const struct smig_host *host, const uint8_t *fp)
{
	if (!host->has_next)
		return NULL;
	if (memcmp(host->fp, fp, SMIG_FP_LEN) == 0)
		return host->next_fp;
	if (memcmp(host->next_fp, fp, SMIG_FP_LEN) == 0)
		return host->fp;
	return NULL;
}

const struct smig_host *smig_hosts_by_fp(const struct smig_hosts *h, const uint8_t *fp)
{
	for (size_t i = 0; i < h->n; i++)
		if (smig_host_has_fp(&h->v[i], fp))
			return &h->v[i];
	return NULL;
}

const struct smig_host *smig_hosts_by_addr(const struct smig_hosts *h, const char *addr)
{
	for (size_t i = 0; i < h->n; i++)
		if (strcmp(h->v[i].addr, addr) == 0)
			return &h->v[i];
	return NULL;
}

const struct smig_revoked *smig_hosts_revoked(const struct smig_hosts *h, const uint8_t *fp)
{
	for (size_t i = 0; i < h->nrevoked; i++)
		if (memcmp(h->revoked[i].fp, fp, SMIG_FP_LEN) == 0)
			return &h->revoked[i];
	return NULL;
}
