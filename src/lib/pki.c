/*
 * pki.c - cluster CA and host certificates (pki.h).
 */
#include "pki.h"
#include "error.h"
#include "file.h"
#include "msg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int pki_fail(char *err, size_t errlen, const char *what, int rc)
{
	unsigned long e = ERR_peek_last_error();
	char buf[160] = "";

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s%s%s", what, buf[0] ? ": " : "", buf);
	ERR_clear_error();
	return rc;
}

static int pki_join(char *out, size_t outlen, const char *dir, const char *name,
		    const char *ext)
{
	int w = snprintf(out, outlen, "%s/%s%s", dir, name, ext);

	SMIG_ENSURE(w > 0 && (size_t)w < outlen, SMIG_EINVAL);
	return 0;
}

static int pem_write(const char *path, EVP_PKEY *key, X509 *cert, mode_t mode)
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
	FILE *f = fopen(path, "r");
	EVP_PKEY *k;

	if (f == NULL)
		return NULL;
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	return k;
}

static X509 *cert_load(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x;

	if (f == NULL)
		return NULL;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return x;
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
	key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
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
	rc = pem_write(kpath, key, NULL, 0600);
	if (rc == 0)
		rc = pem_write(cpath, NULL, cert, 0644);
	if (rc < 0)
		snprintf(err, errlen, "%s: cannot write CA files", dir);
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}

static int host_exts(X509 *cert, X509 *ca, const char *host, const char *ip)
{
	char san[160];
	unsigned char bin[16];

	if (ip && inet_pton(AF_INET, ip, bin) != 1 && inet_pton(AF_INET6, ip, bin) != 1)
		return SMIG_EINVAL;
	if (ip)
		snprintf(san, sizeof(san), "DNS:%s,IP:%s", host, ip);
	else
		snprintf(san, sizeof(san), "DNS:%s", host);
	SMIG_GUARD(add_ext(cert, ca, NID_basic_constraints, "critical,CA:FALSE"));
	SMIG_GUARD(add_ext(cert, ca, NID_key_usage, "critical,digitalSignature"));
	SMIG_GUARD(add_ext(cert, ca, NID_ext_key_usage, "serverAuth,clientAuth"));
	SMIG_GUARD(add_ext(cert, ca, NID_subject_key_identifier, "hash"));
	SMIG_GUARD(add_ext(cert, ca, NID_authority_key_identifier, "keyid:always"));
	return add_ext(cert, ca, NID_subject_alt_name, san);
}

int smig_pki_issue(const char *dir, const char *host, const struct smig_pki_opts *opts,
		   uint8_t *fp, char *err, size_t errlen)
{
	char path[4][4096];
	EVP_PKEY *cakey = NULL;
	EVP_PKEY *key = NULL;
	X509 *ca = NULL;
	X509 *cert = NULL;
	unsigned int fplen = 0;
	int rc;

	if (!smig_name_valid(host)) {
		snprintf(err, errlen, "%s: not a valid host name (1-63 of A-Z a-z 0-9 . _ -)", host);
		return SMIG_EINVAL;
	}
	SMIG_GUARD(pki_join(path[0], sizeof(path[0]), dir, "ca", ".key"));
	SMIG_GUARD(pki_join(path[1], sizeof(path[1]), dir, "ca", ".crt"));
	SMIG_GUARD(pki_join(path[2], sizeof(path[2]), dir, host, ".key"));
	SMIG_GUARD(pki_join(path[3], sizeof(path[3]), dir, host, ".crt"));
	if (access(path[2], F_OK) == 0 || access(path[3], F_OK) == 0) {
		snprintf(err, errlen, "%s: a key or certificate for %s already exists", dir, host);
		return SMIG_EEXIST;
	}
	rc = smig_file_check_private(path[0], err, errlen);
	if (rc < 0)
		return rc;
	cakey = key_load(path[0]);
	ca = cert_load(path[1]);
	if (cakey == NULL || ca == NULL) {
		rc = pki_fail(err, errlen, "cannot load the cluster CA (run smig pki init first)",
			      SMIG_ENOENT);
		goto out;
	}
	key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	cert = key ? cert_new(key, host, opts) : NULL;
	if (cert == NULL || X509_set_issuer_name(cert, X509_get_subject_name(ca)) != 1) {
		rc = pki_fail(err, errlen, "host certificate", SMIG_ECRYPTO);
		goto out;
	}
	rc = host_exts(cert, ca, host, opts->ip);
	if (rc == SMIG_EINVAL) {
		snprintf(err, errlen, "%s: not a numeric IP address", opts->ip);
		goto out;
	}
	if (rc < 0 || X509_sign(cert, cakey, NULL) <= 0 ||
	    (fp && (X509_digest(cert, EVP_sha256(), fp, &fplen) != 1 || fplen != SMIG_FP_LEN))) {
		rc = pki_fail(err, errlen, "host certificate", SMIG_ECRYPTO);
		goto out;
	}
	rc = pem_write(path[2], key, NULL, 0600);
	if (rc == 0)
		rc = pem_write(path[3], NULL, cert, 0644);
	if (rc < 0)
		snprintf(err, errlen, "%s: cannot write host files", dir);
out:
	X509_free(cert);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(cakey);
	return rc;
}
