/*
 * pki.c - the cluster CA, and the one way a host certificate is made
 * (pki.h); requests and their signing are in pki_req.c.
 */
#include "pki_int.h"
#include "error.h"
#include "file.h"
#include "msg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int pki_fail(char *err, size_t errlen, const char *what, int rc)
{
	unsigned long e = ERR_peek_last_error();
	char buf[160] = "";

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s%s%s", what, buf[0] ? ": " : "", buf);
	ERR_clear_error();
	return rc;
}

int pki_join(char *out, size_t outlen, const char *dir, const char *name, const char *ext)
{
	int w = snprintf(out, outlen, "%s/%s%s", dir, name, ext);

	SMIG_ENSURE(w > 0 && (size_t)w < outlen, SMIG_EINVAL);
	return 0;
}

int pki_pem_write(const char *path, EVP_PKEY *key, X509 *cert, mode_t mode)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long len;
	int rc = SMIG_ECRYPTO;

	SMIG_ENSURE(bio != NULL, SMIG_ENOMEM);
	if (key && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1)
		goto out;
	if (cert && PEM_write_bio_X509(bio, cert) != 1)
		goto out;
	len = BIO_get_mem_data(bio, &data);
	rc = smig_file_write_atomic(path, data, (size_t)len, mode);
	OPENSSL_cleanse(data, (size_t)len);
out:
	BIO_free(bio);
	return rc;
}

EVP_PKEY *pki_keygen(void)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
}

int pki_cert_fp(X509 *cert, uint8_t fp[SMIG_FP_LEN])
{
	unsigned int n = 0;

	SMIG_ENSURE(X509_digest(cert, EVP_sha256(), fp, &n) == 1 && n == SMIG_FP_LEN,
		    SMIG_ECRYPTO);
	return 0;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	SMIG_ENSURE(ext != NULL, SMIG_ECRYPTO);
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	SMIG_ENSURE(ok == 1, SMIG_ECRYPTO);
	return 0;
}

static int set_serial(X509 *cert)
{
	unsigned char raw[16];
	BIGNUM *bn;
	int ok;

	SMIG_ENSURE(RAND_bytes(raw, sizeof(raw)) == 1, SMIG_ECRYPTO);
	raw[0] &= 0x7f;
	raw[0] |= 0x01; /* positive and never zero */
	bn = BN_bin2bn(raw, sizeof(raw), NULL);
	SMIG_ENSURE(bn != NULL, SMIG_ENOMEM);
	ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
	BN_free(bn);
	SMIG_ENSURE(ok, SMIG_ECRYPTO);
	return 0;
}

/* A certificate for key with subject CN=cn, valid per opts, not yet signed. */
static X509 *cert_new(EVP_PKEY *key, const char *cn, const struct smig_pki_opts *o)
{
	X509 *cert = X509_new();
	X509_NAME *name;

	if (cert == NULL)
		return NULL;
	name = X509_get_subject_name(cert);
	if (X509_set_version(cert, 2) != 1 || set_serial(cert) < 0 ||
	    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
				       (const unsigned char *)"smig cluster", -1, -1, 0) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
				       -1, -1, 0) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(cert), o->not_before_shift) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(cert),
			    o->not_before_shift + (long)o->days * 86400L) == NULL ||
	    X509_set_pubkey(cert, key) != 1) {
		X509_free(cert);
		return NULL;
	}
	return cert;
}

static EVP_PKEY *key_load(const char *path)
{
	FILE *f = fopen(path, "re");
	EVP_PKEY *k;

	if (f == NULL)
		return NULL;
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	return k;
}

static X509 *cert_load(const char *path)
{
	FILE *f = fopen(path, "re");
	X509 *x;

	if (f == NULL)
		return NULL;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return x;
}

int pki_ca_load(const char *dir, EVP_PKEY **key, X509 **cert, char *err, size_t errlen)
{
	char kpath[4096], cpath[4096];
	int rc;

	*key = NULL;
	*cert = NULL;
	SMIG_GUARD(pki_join(kpath, sizeof(kpath), dir, "ca", ".key"));
	SMIG_GUARD(pki_join(cpath, sizeof(cpath), dir, "ca", ".crt"));
	rc = smig_file_check_private(kpath, err, errlen);
	if (rc == SMIG_ENOENT)
		snprintf(err, errlen, "%s: no cluster CA here (no ca.key): run smig pki init %s "
			 "on the CA's host, or name the CA's directory", dir, dir);
	if (rc < 0)
		return rc;
	*key = key_load(kpath);
	*cert = cert_load(cpath);
	if (*key == NULL || *cert == NULL) {
		EVP_PKEY_free(*key);
		X509_free(*cert);
		*key = NULL;
		*cert = NULL;
		return pki_fail(err, errlen, "cannot load the cluster CA (run smig pki init first)",
				SMIG_ENOENT);
	}
	return 0;
}

int smig_pki_init(const char *dir, int days, char *err, size_t errlen)
{
	struct smig_pki_opts o = { .days = days, .not_before_shift = -300 };
	char kpath[4096];
	char cpath[4096];
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int rc;

	if (smig_file_mkdirs(dir, 0700) < 0) {
		snprintf(err, errlen, "%s: cannot create directory: %s", dir, strerror(errno));
		return SMIG_EIO;
	}
	SMIG_GUARD(pki_join(kpath, sizeof(kpath), dir, "ca", ".key"));
	SMIG_GUARD(pki_join(cpath, sizeof(cpath), dir, "ca", ".crt"));
	if (access(kpath, F_OK) == 0 || access(cpath, F_OK) == 0) {
		snprintf(err, errlen, "%s: a cluster CA already exists here", dir);
		return SMIG_EEXIST;
	}
	key = pki_keygen();
	if (key == NULL)
		return pki_fail(err, errlen, "CA key generation", SMIG_ECRYPTO);
	cert = cert_new(key, "smig cluster CA", &o);
	if (cert == NULL ||
	    X509_set_issuer_name(cert, X509_get_subject_name(cert)) != 1 ||
	    add_ext(cert, cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") < 0 ||
	    add_ext(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
	    add_ext(cert, cert, NID_subject_key_identifier, "hash") < 0 ||
	    X509_sign(cert, key, NULL) <= 0) {
		rc = pki_fail(err, errlen, "CA certificate", SMIG_ECRYPTO);
		goto out;
	}
	rc = pki_pem_write(kpath, key, NULL, 0600);
	if (rc == 0)
		rc = pki_pem_write(cpath, NULL, cert, 0644);
	if (rc < 0)
		snprintf(err, errlen, "%s: cannot write CA files", dir);
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}

static int add_name(GENERAL_NAMES *names, int type, const unsigned char *data, int len)
{
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_STRING *s = type == GEN_DNS ? ASN1_IA5STRING_new() : ASN1_OCTET_STRING_new();

	if (g == NULL || s == NULL || ASN1_STRING_set(s, data, len) != 1) {
		GENERAL_NAME_free(g);
		ASN1_STRING_free(s);
		return SMIG_ENOMEM;
	}
	GENERAL_NAME_set0_value(g, type, s);
	if (sk_GENERAL_NAME_push(names, g) <= 0) {
		GENERAL_NAME_free(g);
		return SMIG_ENOMEM;
	}
	return 0;
}

int pki_names(const char *host, const char *ip, GENERAL_NAMES **out)
{
	unsigned char bin[16];
	int iplen = 0;
	GENERAL_NAMES *names;

	if (ip && inet_pton(AF_INET, ip, bin) == 1)
		iplen = 4;
	else if (ip && inet_pton(AF_INET6, ip, bin) == 1)
		iplen = 16;
	else if (ip)
		return SMIG_EINVAL;
	names = sk_GENERAL_NAME_new_null();
	SMIG_ENSURE(names != NULL, SMIG_ENOMEM);
	if (add_name(names, GEN_DNS, (const unsigned char *)host, (int)strlen(host)) < 0 ||
	    (iplen && add_name(names, GEN_IPADD, bin, iplen) < 0)) {
		GENERAL_NAMES_free(names);
		return SMIG_ENOMEM;
	}
	*out = names;
	return 0;
}

int pki_host_cert(X509 *ca, EVP_PKEY *cakey, EVP_PKEY *pub, const char *host,
		  GENERAL_NAMES *names, const struct smig_pki_opts *o, X509 **out)
{
	X509 *cert = cert_new(pub, host, o);

	SMIG_ENSURE(cert != NULL, SMIG_ECRYPTO);
	if (X509_set_issuer_name(cert, X509_get_subject_name(ca)) != 1 ||
	    add_ext(cert, ca, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_ext(cert, ca, NID_key_usage, "critical,digitalSignature") < 0 ||
	    add_ext(cert, ca, NID_ext_key_usage, "serverAuth,clientAuth") < 0 ||
	    add_ext(cert, ca, NID_subject_key_identifier, "hash") < 0 ||
	    add_ext(cert, ca, NID_authority_key_identifier, "keyid:always") < 0 ||
	    X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) != 1 ||
	    X509_sign(cert, cakey, NULL) <= 0) {
		X509_free(cert);
		return SMIG_ECRYPTO;
	}
	*out = cert;
	return 0;
}

int smig_pki_issue(const char *dir, const char *host, const struct smig_pki_opts *opts,
		   uint8_t *fp, char *err, size_t errlen)
{
	char kpath[4096], cpath[4096];
	GENERAL_NAMES *names = NULL;
	EVP_PKEY *cakey = NULL, *key = NULL;
	X509 *ca = NULL, *cert = NULL;
	int rc;

	if (!smig_name_valid(host)) {
		snprintf(err, errlen, "%s: not a valid host name (1-63 of A-Z a-z 0-9 . _ -)", host);
		return SMIG_EINVAL;
	}
	SMIG_GUARD(pki_join(kpath, sizeof(kpath), dir, host, ".key"));
	SMIG_GUARD(pki_join(cpath, sizeof(cpath), dir, host, ".crt"));
	if (access(kpath, F_OK) == 0 || access(cpath, F_OK) == 0) {
		snprintf(err, errlen, "%s: a key or certificate for %s already exists", dir, host);
		return SMIG_EEXIST;
	}
	if (pki_names(host, opts->ip, &names) < 0) {
		snprintf(err, errlen, "%s: not a numeric IP address", opts->ip);
		return SMIG_EINVAL;
	}
	rc = pki_ca_load(dir, &cakey, &ca, err, errlen);
	if (rc < 0)
		goto out;
	key = pki_keygen();
	if (key == NULL || pki_host_cert(ca, cakey, key, host, names, opts, &cert) < 0 ||
	    (fp && pki_cert_fp(cert, fp) < 0)) {
		rc = pki_fail(err, errlen, "host certificate", SMIG_ECRYPTO);
		goto out;
	}
	rc = pki_pem_write(kpath, key, NULL, 0600);
	if (rc == 0)
		rc = pki_pem_write(cpath, NULL, cert, 0644);
	if (rc < 0)
		snprintf(err, errlen, "%s: cannot write host files", dir);
out:
	GENERAL_NAMES_free(names);
	X509_free(cert);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(cakey);
	return rc;
}
