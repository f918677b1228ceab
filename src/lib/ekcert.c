/*
 * ekcert.c - EK certificates against the TPM vendors' CAs (ekcert.h).
 *
 * A TPM's maker writes a certificate of its endorsement key into the
 * TPM's NV (the ECC P-256 EK's at SMIG_EK_CERT_NV, TCG EK Credential
 * Profile). Enrolment takes a host's EK only with a certificate that
 * names that very key and chains to one of attestation.ek_roots: the
 * makers' roots and intermediates, every one an anchor (X509 partial
 * chains), since vendors publish both. The certificates carry TCG
 * extensions (a critical subjectAltName of directory names, the
 * tcg-kp-EKCertificate key purpose); OpenSSL verifies them as they are,
 * without a purpose.
 */
#include "ekcert.h"
#include "error.h"
#include "log.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <string.h>

int smig_ek_roots_parse(const char *name, const char *pem, size_t len, X509_STORE **out,
			size_t *count, char *err, size_t errlen)
{
	BIO *bio = len <= INT32_MAX ? BIO_new_mem_buf(pem, (int)len) : NULL;
	X509_STORE *store = X509_STORE_new();
	X509 *x;
	size_t n = 0;

	if (bio == NULL || store == NULL) {
		BIO_free(bio);
		X509_STORE_free(store);
		snprintf(err, errlen, "%s: out of memory", name);
		return SMIG_ENOMEM;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		int ok = X509_STORE_add_cert(store, x);

		X509_free(x);
		if (!ok) {
			BIO_free(bio);
			X509_STORE_free(store);
			snprintf(err, errlen, "%s: certificate %zu cannot be added", name, n + 1);
			return SMIG_ECRYPTO;
		}
		n++;
	}
	BIO_free(bio);
	/* the end of the text is a "no start line" error; anything else is a broken certificate */
	if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE || n == 0) {
		X509_STORE_free(store);
		ERR_clear_error();
		snprintf(err, errlen, "%s: %s", name,
			 n == 0 ? "no PEM certificate in it (the TPM vendors' EK CA certificates)"
				: "a certificate in it cannot be read");
		return SMIG_ECONFIG;
	}
	ERR_clear_error();
	X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
	*out = store;
	*count = n;
	return 0;
}

void smig_ek_roots_free(X509_STORE *roots)
{
	X509_STORE_free(roots);
}

/* "SUBJECT, issued by ISSUER", one line, printable ASCII. */
static void describe(X509 *x, char *about, size_t aboutlen)
{
	char subj[256] = "", iss[256] = "", line[560];

	X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof(subj));
	X509_NAME_oneline(X509_get_issuer_name(x), iss, sizeof(iss));
	snprintf(line, sizeof(line), "%s, issued by %s", subj, iss);
	smig_printable_copy(line, about, aboutlen);
}

/* 0 if x's key is the P-256 point ek (x || y). */
static int same_key(X509 *x, const uint8_t ek[SMIG_EK_LEN], char *err, size_t errlen)
{
	EVP_PKEY *pk = X509_get0_pubkey(x);
	uint8_t point[1 + SMIG_EK_LEN];
	char group[32] = "";
	size_t n = 0;

	if (pk == NULL || !EVP_PKEY_is_a(pk, "EC") ||
	    !EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
					    NULL) ||
	    strcmp(group, "prime256v1") != 0) {
		snprintf(err, errlen, "the EK certificate is not for an ECC P-256 key (%s)",
			 pk ? EVP_PKEY_get0_type_name(pk) : "no key");
		return SMIG_EAUTH;
	}
	if (!EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
					     sizeof(point), &n) ||
	    n != sizeof(point) || point[0] != 0x04 ||
	    memcmp(point + 1, ek, SMIG_EK_LEN) != 0) {
		snprintf(err, errlen, "the EK certificate is for another key than the EK the TPM "
			 "presents");
		return SMIG_EAUTH;
	}
	return 0;
}

static int chains(X509 *x, X509_STORE *roots, char *err, size_t errlen)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok;

	if (ctx == NULL || !X509_STORE_CTX_init(ctx, roots, x, NULL)) {
		X509_STORE_CTX_free(ctx);
		snprintf(err, errlen, "out of memory");
		return SMIG_ENOMEM;
	}
	ok = X509_verify_cert(ctx);
	if (ok != 1)
		snprintf(err, errlen, "the EK certificate does not chain to attestation.ek_roots: %s",
			 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	return ok == 1 ? 0 : SMIG_EAUTH;
}

/*
 * The length of the DER SEQUENCE der starts with, when what follows it is
 * padding (0x00 or 0xff: an NV index written larger than its certificate);
 * else len.
 */
static size_t der_trim(const uint8_t *der, size_t len)
{
	size_t hdr = 2, body = 0;

	if (len < 2 || der[0] != 0x30)
		return len;
	if (der[1] < 0x80) {
		body = der[1];
	} else {
		size_t nlen = der[1] & 0x7f;

		if (nlen == 0 || nlen > 2 || len < 2 + nlen)
			return len;
		for (size_t i = 0; i < nlen; i++)
			body = body << 8 | der[2 + i];
		hdr += nlen;
	}
	if (hdr + body >= len)
		return len;
	for (size_t i = hdr + body; i < len; i++)
		if (der[i] != 0x00 && der[i] != 0xff)
			return len;
	return hdr + body;
}

int smig_ek_cert_check(const uint8_t *der, size_t len, const uint8_t ek[SMIG_EK_LEN],
		       X509_STORE *roots, char *about, size_t aboutlen, char *err, size_t errlen)
{
	const unsigned char *p = der;
	X509 *x;
	int rc;

	len = der_trim(der, len);
	x = len <= SMIG_EK_CERT_MAX ? d2i_X509(NULL, &p, (long)len) : NULL;

	if (aboutlen)
		about[0] = '\0';
	if (x == NULL || p != der + len) {
		X509_free(x);
		ERR_clear_error();
		snprintf(err, errlen, "the EK certificate is not one DER X.509 certificate of at most "
			 "%d bytes", SMIG_EK_CERT_MAX);
		return SMIG_EPROTO;
	}
	describe(x, about, aboutlen);
	rc = same_key(x, ek, err, errlen);
	if (rc == 0 && roots)
		rc = chains(x, roots, err, errlen);
	X509_free(x);
	return rc;
}
