/*
 * pki_req.c - certificate requests (pki.h): a host makes its key and a
 * request for it; the CA checks a request and signs what it allows.
 *
 * A request is the host's word, read on another machine: it is checked
 * the way any input is. Its self-signature must verify (it was made with
 * the key it carries), the key must be Ed25519 (the only key smigd signs
 * evidence and audit checkpoints with), the host name must be a valid
 * name. From it the CA takes only the key, the host name and the DNS and
 * IP subjectAltNames; every other field or extension it asks for (a CA
 * flag, key usages, another subject) is ignored, and the certificate's
 * own are set by pki_host_cert() as for every host.
 */
#include "pki_int.h"
#include "error.h"
#include "file.h"
#include "msg.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int req_write(const char *path, X509_REQ *req)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long len;
	int rc = SMIG_ECRYPTO;

	SMIG_ENSURE(bio != NULL, SMIG_ENOMEM);
	if (PEM_write_bio_X509_REQ(bio, req) == 1) {
		len = BIO_get_mem_data(bio, &data);
		rc = smig_file_write_atomic(path, data, (size_t)len, 0644);
	}
	BIO_free(bio);
	return rc;
}

static int req_fp_of(X509_REQ *req, uint8_t fp[SMIG_FP_LEN])
{
	unsigned int n = 0;

	SMIG_ENSURE(X509_REQ_digest(req, EVP_sha256(), fp, &n) == 1 && n == SMIG_FP_LEN,
		    SMIG_ECRYPTO);
	return 0;
}

/* The request for key: CN=host, the names as requested subjectAltNames, self-signed. */
static int req_make(EVP_PKEY *key, const char *host, GENERAL_NAMES *names, X509_REQ **out)
{
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_REQ *req = X509_REQ_new();
	X509_NAME *subject = X509_NAME_new();
	int ok;

	ok = exts && req && subject &&
	     X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_UTF8,
					(const unsigned char *)"smig cluster", -1, -1, 0) == 1 &&
	     X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
					(const unsigned char *)host, -1, -1, 0) == 1 &&
	     X509_REQ_set_version(req, X509_REQ_VERSION_1) == 1 &&
	     X509_REQ_set_subject_name(req, subject) == 1 && X509_REQ_set_pubkey(req, key) == 1 &&
	     X509V3_add1_i2d(&exts, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) == 1 &&
	     X509_REQ_add_extensions(req, exts) == 1 && X509_REQ_sign(req, key, NULL) > 0;
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(subject);
	if (!ok) {
		X509_REQ_free(req);
		return SMIG_ECRYPTO;
	}
	*out = req;
	return 0;
}

int smig_pki_csr(const char *dir, const char *host, const char *ip, uint8_t *req_fp,
		 char *err, size_t errlen)
{
	char kpath[4096], rpath[4096];
	GENERAL_NAMES *names = NULL;
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	int rc;

	if (!smig_name_valid(host)) {
		snprintf(err, errlen, "%s: not a valid host name (1-63 of A-Z a-z 0-9 . _ -)", host);
		return SMIG_EINVAL;
	}
	if (pki_names(host, ip, &names) < 0) {
		snprintf(err, errlen, "%s: not a numeric IP address", ip);
		return SMIG_EINVAL;
	}
	rc = pki_join(kpath, sizeof(kpath), dir, host, ".key");
	if (rc == 0)
		rc = pki_join(rpath, sizeof(rpath), dir, host, ".csr");
	if (rc == 0 && smig_file_mkdirs(dir, 0700) < 0) {
		snprintf(err, errlen, "%s: cannot create the directory", dir);
		rc = SMIG_EIO;
	} else if (rc == 0 && (access(kpath, F_OK) == 0 || access(rpath, F_OK) == 0)) {
		snprintf(err, errlen,
			 "%s: %s.key or %s.csr already exists; for a new key beside the one in use, "
			 "make the request in another directory (e.g. %s/next)",
			 dir, host, host, dir);
		rc = SMIG_EEXIST;
	} else if (rc < 0) {
		snprintf(err, errlen, "%s: path too long", dir);
	}
	if (rc < 0)
		goto out;
	key = pki_keygen();
	if (key == NULL || req_make(key, host, names, &req) < 0 ||
	    (req_fp && req_fp_of(req, req_fp) < 0)) {
		rc = pki_fail(err, errlen, "certificate request", SMIG_ECRYPTO);
		goto out;
	}
	/* the key first: a request on disk always has its key beside it */
	rc = pki_pem_write(kpath, key, NULL, 0600);
	if (rc == 0)
		rc = req_write(rpath, req);
	if (rc < 0)
		snprintf(err, errlen, "%s: cannot write %s.key and %s.csr", dir, host, host);
out:
	GENERAL_NAMES_free(names);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return rc;
}

/* The request in PEM text (name: where it came from, for err). */
static int req_parse(const char *pem, size_t len, const char *name, X509_REQ **out, char *err,
		     size_t errlen)
{
	BIO *bio = len <= SMIG_PKI_CSR_MAX ? BIO_new_mem_buf(pem, (int)len) : NULL;

	*out = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	ERR_clear_error();
	if (*out == NULL) {
		snprintf(err, errlen,
			 "%s: not a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----) "
			 "of at most %zu bytes; make one with smig pki csr on the host", name,
			 SMIG_PKI_CSR_MAX);
		return SMIG_EINVAL;
	}
	return 0;
}

/* The subject's one CN as text, or "" when it has none; SMIG_EINVAL if odd. */
static int req_cn(X509_REQ *req, char *out, size_t outlen)
{
	const X509_NAME *subject = X509_REQ_get_subject_name(req);
	int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
	const ASN1_STRING *s;

	out[0] = '\0';
	if (i < 0)
		return 0;
	SMIG_ENSURE(X509_NAME_get_index_by_NID(subject, NID_commonName, i) < 0, SMIG_EINVAL);
	s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
	SMIG_ENSURE(s != NULL && ASN1_STRING_length(s) > 0 &&
			    (size_t)ASN1_STRING_length(s) < outlen &&
			    memchr(ASN1_STRING_get0_data(s), '\0', (size_t)ASN1_STRING_length(s)) ==
				    NULL,
		    SMIG_EINVAL);
	memcpy(out, ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
	out[ASN1_STRING_length(s)] = '\0';
	return 0;
}

/* A DNS name of the request as a C string, if it is a valid host name. */
static bool dns_name(const GENERAL_NAME *g, char *out, size_t outlen)
{
	const ASN1_IA5STRING *s = g->d.dNSName;
	int n = ASN1_STRING_length(s);

	if (n <= 0 || (size_t)n >= outlen)
		return false;
	memcpy(out, ASN1_STRING_get0_data(s), (size_t)n);
	out[n] = '\0';
	return strlen(out) == (size_t)n && smig_name_valid(out);
}

/*
 * The request's subjectAltNames the CA keeps: DNS names (each must be a
 * valid host name: else the request is refused) and IP addresses; the
 * rest are counted in *dropped. host (if empty) becomes the first DNS name.
 */
static int req_names(X509_REQ *req, char *host, size_t hostlen, GENERAL_NAMES *keep,
		     size_t *dropped, char *err, size_t errlen)
{
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
	GENERAL_NAMES *asked = exts ? X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL)
				    : NULL;
	char name[SMIG_NAME_MAX + 2];
	int rc = 0;

	for (int i = 0; rc == 0 && i < sk_GENERAL_NAME_num(asked); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(asked, i);
		bool ip = g->type == GEN_IPADD && (ASN1_STRING_length(g->d.iPAddress) == 4 ||
						   ASN1_STRING_length(g->d.iPAddress) == 16);

		if (g->type == GEN_DNS && !dns_name(g, name, sizeof(name))) {
			snprintf(err, errlen, "the request asks for DNS name %d, which is not a valid "
				 "host name (1-63 of A-Z a-z 0-9 . _ -)", i + 1);
			rc = SMIG_EINVAL;
		} else if (g->type == GEN_DNS || ip) {
			GENERAL_NAME *copy = GENERAL_NAME_dup(g);

			if (copy == NULL || sk_GENERAL_NAME_push(keep, copy) <= 0) {
				GENERAL_NAME_free(copy);
				rc = SMIG_ENOMEM;
			} else if (g->type == GEN_DNS && host[0] == '\0') {
				snprintf(host, hostlen, "%s", name);
			}
		} else {
			(*dropped)++;
		}
	}
	GENERAL_NAMES_free(asked);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return rc;
}

/* True if names has DNS:host. */
static bool names_have_host(const GENERAL_NAMES *names, const char *host)
{
	for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);

		if (g->type == GEN_DNS && (size_t)ASN1_STRING_length(g->d.dNSName) == strlen(host) &&
		    memcmp(ASN1_STRING_get0_data(g->d.dNSName), host, strlen(host)) == 0)
			return true;
	}
	return false;
}

/* The request's key, its signature and its host name: what makes it signable. */
static int req_check(X509_REQ *req, const char *path, char *host, size_t hostlen,
		     GENERAL_NAMES *names, size_t *dropped, char *err, size_t errlen)
{
	EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
	GENERAL_NAMES *front;
	char why[256] = "";

	if (pub == NULL || EVP_PKEY_get_id(pub) != EVP_PKEY_ED25519) {
		snprintf(err, errlen, "%s: the request's key is %s, not Ed25519, the only kind "
			 "smigd signs with; make the request with smig pki csr", path,
			 pub ? EVP_PKEY_get0_type_name(pub) : "missing");
		return SMIG_EINVAL;
	}
	if (X509_REQ_verify(req, pub) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "%s: the request's signature does not verify with its own key: "
			 "it was altered or not made with that key; make it again on the host",
			 path);
		return SMIG_EINVAL;
	}
	if (req_cn(req, host, hostlen) < 0 || (host[0] && !smig_name_valid(host))) {
		snprintf(err, errlen, "%s: the request's subject CN is not one valid host name "
			 "(1-63 of A-Z a-z 0-9 . _ -)", path);
		return SMIG_EINVAL;
	}
	if (req_names(req, host, hostlen, names, dropped, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: %s", path, why[0] ? why : "out of memory");
		return SMIG_EINVAL;
	}
	if (host[0] == '\0') {
		snprintf(err, errlen, "%s: the request names no host: neither a subject CN nor a "
			 "DNS subjectAltName", path);
		return SMIG_EINVAL;
	}
	if (names_have_host(names, host))
		return 0;
	/* DNS:HOST always, first, as smig pki issue writes it */
	SMIG_GUARD(pki_names(host, NULL, &front));
	if (sk_GENERAL_NAME_insert(names, sk_GENERAL_NAME_value(front, 0), 0) <= 0) {
		GENERAL_NAMES_free(front);
		return SMIG_ENOMEM;
	}
	(void)sk_GENERAL_NAME_pop(front);
	GENERAL_NAMES_free(front);
	return 0;
}

/* Parsed and checked: what the CA would take from the request. */
static int req_load(const char *pem, size_t len, const char *name, X509_REQ **req,
		    GENERAL_NAMES *names, struct smig_pki_req *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	SMIG_GUARD(req_parse(pem, len, name, req, err, errlen));
	SMIG_GUARD(req_check(*req, name, out->host, sizeof(out->host), names, &out->dropped, err,
			     errlen));
	for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
		if (sk_GENERAL_NAME_value(names, i)->type == GEN_DNS)
			out->ndns++;
		else
			out->nip++;
	}
	return req_fp_of(*req, out->req_fp);
}

int smig_pki_req_check(const char *pem, size_t len, const char *name, struct smig_pki_req *out,
		       char *err, size_t errlen)
{
	GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
	X509_REQ *req = NULL;
	int rc;

	SMIG_ENSURE(names != NULL, SMIG_ENOMEM);
	rc = req_load(pem, len, name, &req, names, out, err, errlen);
	GENERAL_NAMES_free(names);
	X509_REQ_free(req);
	return rc;
}

/* HOST.csr -> HOST.crt beside it; anything else gets .crt appended. */
static int out_path(const char *csr, const char *out, char *path, size_t pathlen)
{
	size_t n = strlen(csr);
	int w;

	if (out)
		w = snprintf(path, pathlen, "%s", out);
	else if (n > 4 && strcmp(csr + n - 4, ".csr") == 0)
		w = snprintf(path, pathlen, "%.*s.crt", (int)(n - 4), csr);
	else
		w = snprintf(path, pathlen, "%s.crt", csr);
	SMIG_ENSURE(w > 0 && (size_t)w < pathlen, SMIG_EINVAL);
	return 0;
}

int smig_pki_sign(const char *cadir, const char *csr, const struct smig_pki_opts *opts,
		  const char *out, struct smig_pki_signed *res, char *err, size_t errlen)
{
	GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
	struct smig_pki_req r;
	EVP_PKEY *cakey = NULL;
	X509 *ca = NULL, *cert = NULL;
	X509_REQ *req = NULL;
	char *text = NULL;
	size_t len = 0;
	int rc;

	memset(res, 0, sizeof(*res));
	SMIG_ENSURE(names != NULL, SMIG_ENOMEM);
	rc = out_path(csr, out, res->cert, sizeof(res->cert));
	if (rc < 0)
		snprintf(err, errlen, "%s: path too long", out ? out : csr);
	else if (access(res->cert, F_OK) == 0) {
		snprintf(err, errlen, "%s already exists; name another with --out, or move it away",
			 res->cert);
		rc = SMIG_EEXIST;
	}
	if (rc == 0)
		rc = smig_file_read(csr, SMIG_PKI_CSR_MAX, &text, &len, err, errlen);
	if (rc == 0)
		rc = req_load(text, len, csr, &req, names, &r, err, errlen);
	free(text);
	if (rc == 0) {
		snprintf(res->host, sizeof(res->host), "%s", r.host);
		memcpy(res->req_fp, r.req_fp, SMIG_FP_LEN);
		res->dropped = r.dropped;
	}
	if (rc == 0)
		rc = pki_ca_load(cadir, &cakey, &ca, err, errlen);
	if (rc < 0)
		goto done;
	if (pki_host_cert(ca, cakey, X509_REQ_get0_pubkey(req), res->host, names, opts, &cert) < 0 ||
	    pki_cert_fp(cert, res->fp) < 0) {
		rc = pki_fail(err, errlen, "host certificate", SMIG_ECRYPTO);
		goto done;
	}
	res->outlives_ca = ASN1_TIME_compare(X509_get0_notAfter(cert), X509_get0_notAfter(ca)) > 0;
	rc = pki_pem_write(res->cert, NULL, cert, 0644);
	if (rc < 0)
		snprintf(err, errlen, "%s: cannot write the certificate", res->cert);
done:
	GENERAL_NAMES_free(names);
	X509_REQ_free(req);
	X509_free(cert);
	X509_free(ca);
	EVP_PKEY_free(cakey);
	return rc;
}
