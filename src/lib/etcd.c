/*
 * etcd.c - calls to etcd v3's JSON gateway over HTTPS, through libcurl
 * (Debian's libcurl4-openssl-dev: TLS 1.2 or newer, the member's
 * certificate checked against the configured CA and its address, our
 * client certificate presented).
 *
 * A call goes to the endpoint that answered last; when that one cannot be
 * reached, times out or says it has no leader, the next is tried, each
 * once per round, and the round again after a pause while etcd elects a
 * leader. An answer that is an etcd error (a compare that failed is not
 * one) ends the call.
 */
#include "etcd.h"
#include "error.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ETCD_ROUNDS 3
#define ETCD_ROUND_PAUSE_MS 400

struct smig_etcd {
	char *endpoints[SMIG_ETCD_ENDPOINTS_MAX];
	size_t n, cur;
	char *ca, *cert, *key;
	bool pem; /* ca, cert and key are the PEM text itself */
	long timeout_ms;
	CURL *curl;
	atomic_bool abort; /* smig_etcd_abort: the call under way gives up */
	int rounds;        /* over every endpoint, ETCD_ROUNDS unless set */
};

struct answer {
	char *p;
	size_t len;
	bool too_big;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

struct smig_etcd *smig_etcd_open(const struct smig_etcd_cfg *cfg, char *err, size_t errlen)
{
	struct smig_etcd *e;

	if (cfg->nendpoints == 0 || cfg->nendpoints > SMIG_ETCD_ENDPOINTS_MAX) {
		snprintf(err, errlen, "etcd: 1 to %d endpoints are needed, not %zu",
			 SMIG_ETCD_ENDPOINTS_MAX, cfg->nendpoints);
		return NULL;
	}
	for (size_t i = 0; i < cfg->nendpoints; i++)
		if (cfg->endpoints[i] == NULL || strncmp(cfg->endpoints[i], "https://", 8) != 0 ||
		    strlen(cfg->endpoints[i]) > 200) {
			snprintf(err, errlen,
				 "etcd: endpoint %zu is not an https:// URL of at most 200 bytes "
				 "(etcd is reached over TLS only)",
				 i + 1);
			return NULL;
		}
	if ((cfg->ca == NULL || cfg->cert == NULL || cfg->key == NULL) &&
	    (cfg->ca_pem == NULL || cfg->cert_pem == NULL || cfg->key_pem == NULL)) {
		snprintf(err, errlen, "etcd: a CA, a client certificate and its key are needed");
		return NULL;
	}
	(void)pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		snprintf(err, errlen, "etcd: libcurl does not start: %s",
			 curl_easy_strerror(curl_init_rc));
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	e->n = cfg->nendpoints;
	for (size_t i = 0; i < e->n; i++) {
		size_t l = strlen(cfg->endpoints[i]);

		e->endpoints[i] = strdup(cfg->endpoints[i]);
		if (e->endpoints[i] && l > 8 && e->endpoints[i][l - 1] == '/')
			e->endpoints[i][l - 1] = '\0';
	}
	e->pem = cfg->ca_pem && cfg->cert_pem && cfg->key_pem;
	e->ca = dup_or_null(e->pem ? cfg->ca_pem : cfg->ca);
	e->cert = dup_or_null(e->pem ? cfg->cert_pem : cfg->cert);
	e->key = dup_or_null(e->pem ? cfg->key_pem : cfg->key);
	e->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 2000;
	e->rounds = ETCD_ROUNDS;
	e->curl = curl_easy_init();
	bool all = true;

	for (size_t i = 0; i < e->n; i++)
		all = all && e->endpoints[i] != NULL;
	if (!all || e->curl == NULL || e->ca == NULL || e->cert == NULL || e->key == NULL) {
		smig_etcd_close(e);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	return e;
}

void smig_etcd_close(struct smig_etcd *e)
{
	if (e == NULL)
		return;
	if (e->curl)
		curl_easy_cleanup(e->curl);
	for (size_t i = 0; i < e->n; i++)
		free(e->endpoints[i]);
	free(e->ca);
	free(e->cert);
	if (e->key && e->pem)
		OPENSSL_cleanse(e->key, strlen(e->key));
	free(e->key);
	free(e);
}

const char *smig_etcd_endpoint(const struct smig_etcd *e)
{
	return e->endpoints[e->cur];
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *arg)
{
	struct answer *a = arg;
	size_t n = size * nmemb;
	char *q;

	if (a->len + n > SMIG_ETCD_ANSWER_MAX) {
		a->too_big = true;
		return 0; /* curl stops with CURLE_WRITE_ERROR */
	}
	q = realloc(a->p, a->len + n + 1);
	if (q == NULL)
		return 0;
	memcpy(q + a->len, p, n);
	a->p = q;
	a->len += n;
	a->p[a->len] = '\0';
	return n;
}

/* Sleeps ms in steps of 50, less if the call is to give up. */
static void pause_ms(struct smig_etcd *e, long ms)
{
	for (long slept = 0; slept < ms && !atomic_load(&e->abort); slept += 50) {
		struct timespec ts = { 0, 50 * 1000000L };

		while (nanosleep(&ts, &ts) != 0)
			;
	}
}

void smig_etcd_abort(struct smig_etcd *e, bool on)
{
	atomic_store(&e->abort, on);
}

void smig_etcd_set_rounds(struct smig_etcd *e, int rounds)
{
	e->rounds = rounds < 1 ? 1 : rounds;
}

/* curl asks this now and then during a transfer: non-zero stops it. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct smig_etcd *e = arg;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load(&e->abort) ? 1 : 0;
}

static void blob(CURL *c, CURLoption o, char *pem)
{
	struct curl_blob b = { .data = pem, .len = strlen(pem), .flags = CURL_BLOB_NOCOPY };

	curl_easy_setopt(c, o, &b); /* curl points at e's text, which outlives the transfer */
}

/* Whom we trust and who we are: files, or their text (no file read then). */
static void set_identity(struct smig_etcd *e)
{
	curl_easy_setopt(e->curl, CURLOPT_CAPATH, NULL);
	if (!e->pem) {
		curl_easy_setopt(e->curl, CURLOPT_CAINFO, e->ca);
		curl_easy_setopt(e->curl, CURLOPT_SSLCERT, e->cert);
		curl_easy_setopt(e->curl, CURLOPT_SSLKEY, e->key);
		return;
	}
	curl_easy_setopt(e->curl, CURLOPT_CAINFO, NULL); /* not the system's bundle too */
	blob(e->curl, CURLOPT_CAINFO_BLOB, e->ca);
	blob(e->curl, CURLOPT_SSLCERT_BLOB, e->cert);
	curl_easy_setopt(e->curl, CURLOPT_SSLCERTTYPE, "PEM");
	blob(e->curl, CURLOPT_SSLKEY_BLOB, e->key);
	curl_easy_setopt(e->curl, CURLOPT_SSLKEYTYPE, "PEM");
}

/* Whether a transfer failed in or right after the TLS handshake. */
static bool tls_failure(CURLcode cc)
{
	return cc == CURLE_SSL_CONNECT_ERROR || cc == CURLE_PEER_FAILED_VERIFICATION ||
	       cc == CURLE_SSL_CERTPROBLEM || cc == CURLE_SSL_CACERT_BADFILE ||
	       cc == CURLE_RECV_ERROR || cc == CURLE_SEND_ERROR || cc == CURLE_GOT_NOTHING;
}

/* Whether an etcd error means another member (or a moment later) may do. */
static bool retry_elsewhere(const char *msg)
{
	return strstr(msg, "no leader") || strstr(msg, "leader changed") ||
	       strstr(msg, "timed out") || strstr(msg, "not capable") ||
	       strstr(msg, "too many requests") || strstr(msg, "unhealthy");
}

/*
 * Whether a failed transfer certainly did not reach etcd: no connection,
 * or no TLS session. Anything later (a timeout, a reset, no answer) may
 * have come after etcd applied the request.
 */
static bool not_sent(CURLcode cc)
{
	return cc == CURLE_COULDNT_CONNECT || cc == CURLE_SSL_CONNECT_ERROR ||
	       cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CERTPROBLEM ||
	       cc == CURLE_COULDNT_RESOLVE_HOST;
}

/*
 * One POST of text to url: HTTPS only, TLS 1.2 or later with the member's
 * certificate and name checked, our identity, HTTP/1.1, no proxy, no
 * redirect, the connection bounded by the timeout, and smig_etcd_abort
 * heard; what arrives goes to write(arg). The caller adds what differs.
 */
static void setup(struct smig_etcd *e, const char *url, const char *text,
		  curl_write_callback write, void *arg)
{
	curl_easy_reset(e->curl);
	curl_easy_setopt(e->curl, CURLOPT_URL, url);
	curl_easy_setopt(e->curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, text);
	curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, write);
	curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, arg);
	set_identity(e);
	curl_easy_setopt(e->curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(e->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS, e->timeout_ms);
	curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e->curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(e->curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(e->curl, CURLOPT_XFERINFODATA, e);
}

/*
 * POSTs body (a JSON object, taken) to path on one endpoint after another;
 * the answer's text in *out (malloc'd) on success. An etcd error answer
 * fails with its message. once: the request must not be applied twice (a
 * transaction): it goes to another member only when it certainly did not
 * reach the last one (or that one had no leader), else the call fails as
 * SMIG_ETIMEDOUT, its outcome unknown, for the caller to read what is.
 */
static int call(struct smig_etcd *e, const char *path, json_t *body, bool once, char **out,
		size_t *outlen, char *err, size_t errlen)
{
	char *text = json_dumps(body, JSON_COMPACT);
	char url[256], why[256] = "";
	int rc = SMIG_EUNREACH;

	json_decref(body);
	*out = NULL;
	if (text == NULL) {
		snprintf(err, errlen, "out of memory");
		return SMIG_ENOMEM;
	}
	for (int round = 0; round < e->rounds && rc == SMIG_EUNREACH && !atomic_load(&e->abort);
	     round++) {
		if (round)
			pause_ms(e, ETCD_ROUND_PAUSE_MS);
		for (size_t tried = 0; tried < e->n && !atomic_load(&e->abort); tried++) {
			struct answer a = { 0 };
			const char *ep = e->endpoints[e->cur];
			CURLcode cc;
			long status = 0;

			snprintf(url, sizeof(url), "%s%s", ep, path);
			setup(e, url, text, on_data, &a);
			curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, e->timeout_ms);
			cc = curl_easy_perform(e->curl);
			curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status);
			if (cc != CURLE_OK) {
				snprintf(why, sizeof(why), "%s: %s%s", ep,
					 a.too_big ? "the answer is too long"
						   : curl_easy_strerror(cc),
					 tls_failure(cc) ? " (does the member's certificate come from "
							   "the configured CA, and ours from the one "
							   "it trusts?)"
							 : "");
				free(a.p);
				if (a.too_big) {
					rc = SMIG_ETOOBIG;
					break;
				}
				if (cc == CURLE_ABORTED_BY_CALLBACK) {
					snprintf(why, sizeof(why), "given up: smigd stops");
					rc = SMIG_ECLOSED;
					break;
				}
				if (once && !not_sent(cc)) {
					rc = SMIG_ETIMEDOUT;
					break;
				}
				e->cur = (e->cur + 1) % e->n;
				continue;
			}
			if (a.p == NULL) {
				snprintf(why, sizeof(why), "%s: an empty answer (HTTP %ld)", ep, status);
				if (once) {
					rc = SMIG_ETIMEDOUT;
					break;
				}
				e->cur = (e->cur + 1) % e->n;
				continue;
			}
			char msg[200] = "";
			bool is_err = smig_etcd_answer_error(a.p, a.len, msg, sizeof(msg)) == 1;

			if (is_err || status != 200) {
				if (!is_err)
					snprintf(msg, sizeof(msg), "HTTP %ld", status);
				snprintf(why, sizeof(why), "%s: %s", ep, msg);
				free(a.p);
				if (once && !strstr(msg, "no leader") && retry_elsewhere(msg)) {
					rc = SMIG_ETIMEDOUT; /* "leader changed", "timed out": maybe applied */
					break;
				}
				if (retry_elsewhere(msg) || (!once && status >= 500)) {
					e->cur = (e->cur + 1) % e->n;
					continue;
				}
				rc = SMIG_EPROTO;
				break;
			}
			*out = a.p;
			*outlen = a.len;
			rc = 0;
			break;
		}
	}
	free(text);
	if (rc == SMIG_EUNREACH && atomic_load(&e->abort)) {
		snprintf(why, sizeof(why), "given up: smigd stops");
		rc = SMIG_ECLOSED;
	}
	if (rc < 0)
		snprintf(err, errlen, "etcd %s: %s%s", path, why,
			 rc == SMIG_EUNREACH	  ? " (no endpoint answered)"
			 : rc == SMIG_ETIMEDOUT ? " (whether it was applied is not known)"
						: "");
	return rc;
}

static json_t *b64_string(const void *p, size_t len)
{
	char *s = smig_etcd_b64(p, len);
	json_t *j = s ? json_string(s) : NULL;

	free(s);
	return j;
}

static int check_key(const char *key, char *err, size_t errlen)
{
	size_t n = key ? strlen(key) : 0;

	if (n == 0 || n > SMIG_ETCD_KEY_MAX) {
		snprintf(err, errlen, "etcd: a key of 1 to %zu bytes is needed", SMIG_ETCD_KEY_MAX);
		return SMIG_EINVAL;
	}
	return 0;
}

/* {"key": base64 key} with "range_end" for a prefix. */
static json_t *key_range(const char *key, bool prefix)
{
	json_t *o = json_object();
	size_t elen;
	uint8_t *end;

	if (o == NULL || json_object_set_new(o, "key", b64_string(key, strlen(key))) < 0) {
		json_decref(o);
		return NULL;
	}
	if (!prefix)
		return o;
	end = smig_etcd_prefix_end(key, &elen);
	if (end == NULL || json_object_set_new(o, "range_end", b64_string(end, elen)) < 0) {
		free(end);
		json_decref(o);
		return NULL;
	}
	free(end);
	return o;
}

int smig_etcd_get(struct smig_etcd *e, const char *key, bool prefix, int64_t limit,
		  struct smig_etcd_kvs *out, char *err, size_t errlen)
{
	return smig_etcd_get_from(e, key, prefix ? key : NULL, limit, out, err, errlen);
}

int smig_etcd_get_from(struct smig_etcd *e, const char *from, const char *prefix, int64_t limit,
		       struct smig_etcd_kvs *out, char *err, size_t errlen)
{
	json_t *req;
	char *ans;
	size_t len;
	int rc = check_key(from, err, errlen);

	memset(out, 0, sizeof(*out));
	if (rc < 0 || (prefix && (rc = check_key(prefix, err, errlen)) < 0))
		return rc;
	if (prefix && strncmp(from, prefix, strlen(prefix)) != 0) {
		snprintf(err, errlen, "etcd: a range's first key must begin with its prefix");
		return SMIG_EINVAL;
	}
	req = key_range(prefix ? prefix : from, prefix != NULL);
	if (req && prefix) /* from on, to the prefix's end */
		(void)json_object_set_new(req, "key", b64_string(from, strlen(from)));
	if (req && limit > 0)
		(void)json_object_set_new(req, "limit", json_integer(limit));
	if (req == NULL) {
		snprintf(err, errlen, "out of memory");
		return SMIG_ENOMEM;
	}
	rc = call(e, "/v3/kv/range", req, false, &ans, &len, err, errlen);
	if (rc < 0)
		return rc;
	rc = smig_etcd_parse_range(ans, len, out, err, errlen);
	free(ans);
	return rc;
}

static json_t *put_req(const char *key, const void *value, size_t len, int64_t lease)
{
	json_t *o = json_pack("{s:o,s:o}", "key", b64_string(key, strlen(key)), "value",
			      b64_string(value, len));

	if (o && lease)
		(void)json_object_set_new(o, "lease", json_integer(lease));
	return o;
}

/*
 * A write (put, deleterange) of req (taken; NULL: out of memory) to path:
 * the store's revision after it, and how many keys it deleted.
 */
static int write_call(struct smig_etcd *e, const char *path, json_t *req, int64_t *revision,
		      int64_t *deleted, char *err, size_t errlen)
{
	char *ans;
	size_t len;
	int64_t rev, n;
	int rc;

	if (req == NULL) {
		snprintf(err, errlen, "out of memory");
		return SMIG_ENOMEM;
	}
	rc = call(e, path, req, false, &ans, &len, err, errlen);
	if (rc < 0)
		return rc;
	rc = smig_etcd_parse_write(ans, len, &rev, &n, err, errlen);
	free(ans);
	if (rc == 0 && revision)
		*revision = rev;
	if (rc == 0 && deleted)
		*deleted = n;
	return rc;
}

int smig_etcd_put(struct smig_etcd *e, const char *key, const void *value, size_t len,
		  int64_t lease, int64_t *revision, char *err, size_t errlen)
{
	int rc = check_key(key, err, errlen);

	if (rc < 0)
		return rc;
	if (len > SMIG_ETCD_VALUE_MAX) {
		snprintf(err, errlen, "etcd: a value of %zu bytes, more than %zu", len,
			 SMIG_ETCD_VALUE_MAX);
		return SMIG_ETOOBIG;
	}
	return write_call(e, "/v3/kv/put", put_req(key, value, len, lease), revision, NULL, err,
			  errlen);
}

/* A txn: if key's mod_revision is expect (0: key absent), do the request op. */
static int txn_if(struct smig_etcd *e, const char *key, int64_t expect, const char *op,
		  json_t *opreq, bool *done, int64_t *revision, char *err, size_t errlen)
{
	json_t *cmp, *req;
	char *ans;
	size_t len;
	int64_t rev;
	int rc;

	/* absent: its create_revision compares as 0 */
	/* json_pack's "o" takes its reference whether the pack succeeds or not */
	cmp = json_pack("{s:s,s:s,s:o,s:I}", "result", "EQUAL", "target",
			expect ? "MOD" : "CREATE", "key", b64_string(key, strlen(key)),
			expect ? "mod_revision" : "create_revision", (json_int_t)expect);
	if (cmp == NULL || opreq == NULL) {
		json_decref(cmp);
		json_decref(opreq);
		snprintf(err, errlen, "out of memory");
		return SMIG_ENOMEM;
	}
	req = json_pack("{s:[o],s:[{s:o}]}", "compare", cmp, "success", op, opreq);
	if (req == NULL) {
		snprintf(err, errlen, "out of memory");
		return SMIG_ENOMEM;
	}
	rc = call(e, "/v3/kv/txn", req, true, &ans, &len, err, errlen);
	if (rc < 0)
		return rc;
	rc = smig_etcd_parse_txn(ans, len, done, &rev, err, errlen);
	free(ans);
	if (rc == 0 && revision)
		*revision = rev;
	return rc;
}

int smig_etcd_cas(struct smig_etcd *e, const char *key, int64_t expect, const void *value,
		  size_t len, int64_t lease, bool *done, int64_t *revision, char *err,
		  size_t errlen)
{
	int rc = check_key(key, err, errlen);

	*done = false;
	if (rc < 0)
		return rc;
	if (len > SMIG_ETCD_VALUE_MAX || expect < 0) {
		snprintf(err, errlen, "etcd: a value of %zu bytes (at most %zu), or a revision "
				      "below 0",
			 len, SMIG_ETCD_VALUE_MAX);
		return SMIG_EINVAL;
	}
	return txn_if(e, key, expect, "request_put", put_req(key, value, len, lease), done,
		      revision, err, errlen);
}

int smig_etcd_delete_if(struct smig_etcd *e, const char *key, int64_t expect, bool *done,
			char *err, size_t errlen)
{
	int rc = check_key(key, err, errlen);

	*done = false;
	if (rc < 0)
		return rc;
	if (expect <= 0) {
		snprintf(err, errlen, "etcd: delete_if needs the revision the key has");
		return SMIG_EINVAL;
	}
	return txn_if(e, key, expect, "request_delete_range", key_range(key, false), done, NULL,
		      err, errlen);
}

int smig_etcd_delete(struct smig_etcd *e, const char *key, bool prefix, int64_t *deleted,
		     char *err, size_t errlen)
{
	int rc = check_key(key, err, errlen);

	if (rc < 0)
		return rc;
	return write_call(e, "/v3/kv/deleterange", key_range(key, prefix), NULL, deleted, err,
			  errlen);
}

int smig_etcd_lease_grant(struct smig_etcd *e, int64_t ttl_s, int64_t *id, int64_t *ttl,
			  char *err, size_t errlen)
{
	char *ans;
	size_t len;
	int rc;

	if (ttl_s < 2 || ttl_s > 3600) {
		snprintf(err, errlen, "etcd: a lease of 2 to 3600 s, not %" PRId64, ttl_s);
		return SMIG_EINVAL;
	}
	rc = call(e, "/v3/lease/grant", json_pack("{s:I}", "TTL", (json_int_t)ttl_s), false, &ans, &len,
		  err, errlen);
	if (rc < 0)
		return rc;
	rc = smig_etcd_parse_lease(ans, len, id, ttl, err, errlen);
	free(ans);
	if (rc == 0 && (*id == 0 || *ttl == 0)) {
		snprintf(err, errlen, "etcd granted no lease (ID %" PRId64 ", TTL %" PRId64 ")", *id,
			 *ttl);
		rc = SMIG_EPROTO;
	}
	return rc;
}

int smig_etcd_lease_keepalive(struct smig_etcd *e, int64_t id, int64_t *ttl, char *err,
			      size_t errlen)
{
	char *ans;
	size_t len;
	int64_t got;
	int rc;

	rc = call(e, "/v3/lease/keepalive", json_pack("{s:I}", "ID", (json_int_t)id), false, &ans, &len,
		  err, errlen);
	if (rc == SMIG_EPROTO && strstr(err, "lease not found")) {
		*ttl = 0; /* it ran out, or etcd forgot it: the same to the caller */
		return 0;
	}
	if (rc < 0)
		return rc;
	rc = smig_etcd_parse_lease(ans, len, &got, ttl, err, errlen);
	free(ans);
	if (rc == 0 && *ttl > 0 && got != id) {
		snprintf(err, errlen, "etcd renewed lease %" PRId64 " when asked for %" PRId64, got,
			 id);
		rc = SMIG_EPROTO;
	}
	return rc;
}

int smig_etcd_lease_revoke(struct smig_etcd *e, int64_t id, char *err, size_t errlen)
{
	char *ans;
	size_t len;
	int rc;

	rc = call(e, "/v3/lease/revoke", json_pack("{s:I}", "ID", (json_int_t)id), false, &ans, &len, err,
		  errlen);
	free(ans);
	return rc;
}

/* A watch's stream as it arrives: the messages split off and handed on. */
struct watch_ctx {
	struct answer a; /* bytes not yet a whole message */
	smig_etcd_watch_fn fn;
	void *arg;
	bool created;  /* etcd said the watch is set up */
	bool stopped;  /* fn asked to end it */
	int rc;        /* a message that was none, or a cancel */
	char why[256];
};

/*
 * The gateway writes each message on a line of its own: only whole lines
 * are parsed (once each), the rest waits for the bytes to come.
 */
static size_t on_watch_data(char *p, size_t size, size_t nmemb, void *arg)
{
	struct watch_ctx *w = arg;
	size_t n = size * nmemb, off = 0;
	char *nl;

	if (on_data(p, size, nmemb, &w->a) != n)
		return 0; /* too long (w->a.too_big) or out of memory */
	while ((nl = memchr(w->a.p + off, '\n', w->a.len - off)) != NULL) {
		struct smig_etcd_watch_msg m;
		size_t line = (size_t)(nl - (w->a.p + off)), used;
		int r = smig_etcd_parse_watch(w->a.p + off, line, &m, &used, w->why,
					      sizeof(w->why));

		off += line + 1;
		if (r == 0 && used == 0 && strspn(nl - line, " \t\r") == line)
			continue; /* a blank line */
		if (r == 1 && strspn(nl - line + used, " \t\r") != line - used) {
			smig_etcd_watch_msg_free(&m);
			r = 0; /* more than one message on the line */
		}
		if (r <= 0) {
			if (r == 0)
				snprintf(w->why, sizeof(w->why), "etcd's watch stream has a line that "
								 "is no whole message");
			w->rc = r < 0 ? r : SMIG_EPROTO;
			return 0;
		}
		w->created = w->created || m.created;
		if (m.canceled) {
			if (m.compact_revision > 0)
				snprintf(w->why, sizeof(w->why),
					 "the revision asked for is compacted (etcd keeps from %lld)",
					 (long long)m.compact_revision);
			else
				snprintf(w->why, sizeof(w->why), "etcd cancelled the watch: %s",
					 m.reason[0] ? m.reason : "no reason given");
			w->rc = m.compact_revision > 0 ? SMIG_EAGAIN : SMIG_EPROTO;
			smig_etcd_watch_msg_free(&m);
			return 0;
		}
		r = w->fn(w->arg, &m);
		smig_etcd_watch_msg_free(&m);
		if (r) {
			w->stopped = true;
			return 0;
		}
	}
	/* what is left is the start of the next line */
	memmove(w->a.p, w->a.p + off, w->a.len - off);
	w->a.len -= off;
	w->a.p[w->a.len] = '\0';
	return n;
}

int smig_etcd_watch(struct smig_etcd *e, const char *prefix, int64_t start, smig_etcd_watch_fn fn,
		    void *arg, char *err, size_t errlen)
{
	json_t *req = key_range(prefix, true), *body;
	char *text, url[256], why[256] = "";
	struct curl_slist *hdr = NULL;
	int rc = SMIG_EUNREACH;

	if (check_key(prefix, err, errlen) < 0) {
		json_decref(req);
		return SMIG_EINVAL;
	}
	if (req && start > 0)
		(void)json_object_set_new(req, "start_revision", json_integer(start));
	body = req ? json_pack("{s:o}", "create_request", req) : NULL;
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (text == NULL) {
		snprintf(err, errlen, "out of memory");
		return SMIG_ENOMEM;
	}
	/* a member cut off from its leader answers nothing: it must refuse instead */
	hdr = curl_slist_append(NULL, "Grpc-Metadata-hasleader: true");
	for (size_t tried = 0; tried < e->n && rc == SMIG_EUNREACH && !atomic_load(&e->abort);
	     tried++) {
		struct watch_ctx w = { .fn = fn, .arg = arg };
		const char *ep = e->endpoints[e->cur];
		CURLcode cc;
		long status = 0;

		snprintf(url, sizeof(url), "%s/v3/watch", ep);
		setup(e, url, text, on_watch_data, &w);
		/* no overall timeout: it runs as long as etcd streams; keepalives find a dead peer */
		curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(e->curl, CURLOPT_TCP_KEEPALIVE, 1L);
		curl_easy_setopt(e->curl, CURLOPT_TCP_KEEPIDLE, 5L);
		curl_easy_setopt(e->curl, CURLOPT_TCP_KEEPINTVL, 2L);
		cc = curl_easy_perform(e->curl);
		curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status);
		free(w.a.p);
		if (w.stopped) {
			rc = 0;
		} else if (w.a.too_big) {
			snprintf(why, sizeof(why), "%s: a message longer than %zu bytes", ep,
				 SMIG_ETCD_ANSWER_MAX);
			rc = SMIG_ETOOBIG;
		} else if (w.rc < 0 && !w.created && retry_elsewhere(w.why)) {
			snprintf(why, sizeof(why), "%s: %s", ep, w.why); /* no leader there: the next */
			e->cur = (e->cur + 1) % e->n;
		} else if (w.rc < 0) {
			snprintf(why, sizeof(why), "%s: %s", ep, w.why);
			rc = w.rc;
		} else if (cc == CURLE_ABORTED_BY_CALLBACK) {
			snprintf(why, sizeof(why), "given up: smigd stops");
			rc = SMIG_ECLOSED;
		} else if (w.created) {
			/* it ran, then ended: the caller watches again from what it saw */
			snprintf(why, sizeof(why), "%s: the stream ended (%s, HTTP %ld)", ep,
				 cc == CURLE_OK ? "closed" : curl_easy_strerror(cc), status);
			rc = SMIG_ECLOSED;
		} else {
			snprintf(why, sizeof(why), "%s: %s", ep,
				 cc == CURLE_OK ? "no watch was set up" : curl_easy_strerror(cc));
			e->cur = (e->cur + 1) % e->n; /* never set up here: the next member */
		}
	}
	curl_slist_free_all(hdr);
	free(text);
	if (rc == SMIG_EUNREACH && atomic_load(&e->abort)) {
		snprintf(why, sizeof(why), "given up: smigd stops");
		rc = SMIG_ECLOSED;
	}
	if (rc < 0)
		snprintf(err, errlen, "etcd /v3/watch: %s%s", why,
			 rc == SMIG_EUNREACH ? " (no endpoint answered)" : "");
	return rc;
}
