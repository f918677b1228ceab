/*
 * sign.c - host-key signatures (see sign.h).
 */
#include "sign.h"
#include "error.h"
#include "file.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIGN_MSG_MAX 4096
#define SIGN_KEY_PEM_MAX ((size_t)64 * 1024)

int smig_sign_key_pem(const char *pem, const char *name, EVP_PKEY **key, char *err,
		      size_t errlen)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);

	*key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	ERR_clear_error();
	if (*key == NULL || EVP_PKEY_get_id(*key) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(*key);
		*key = NULL;
		snprintf(err, errlen, "%s: not an Ed25519 private key", name);
		return SMIG_ECRYPTO;
	}
	return 0;
}

int smig_sign_load_key(const char *path, EVP_PKEY **key, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	*key = NULL;
	SMIG_GUARD(smig_file_read_private(path, SIGN_KEY_PEM_MAX, &text, &len, err, errlen));
	rc = smig_sign_key_pem(text, path, key, err, errlen);
	OPENSSL_cleanse(text, len);
	free(text);
	return rc;
}

int smig_sign_load_cert_pub(const char *path, EVP_PKEY **pub, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	X509 *x;

	if (f == NULL) {
		snprintf(err, errlen, "%s: cannot open", path);
		return SMIG_EIO;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	*pub = x ? X509_get_pubkey(x) : NULL;
	X509_free(x);
	if (*pub == NULL || EVP_PKEY_get_id(*pub) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(*pub);
		*pub = NULL;
		snprintf(err, errlen, "%s: not a certificate with an Ed25519 key", path);
		return SMIG_ECRYPTO;
	}
	return 0;
}

/* ctx with its NUL, then msg, in one buffer: Ed25519 signs in one shot. */
static int sign_input(const char *ctx, const uint8_t *msg, size_t len, uint8_t *buf,
		      size_t *n)
{
	size_t clen = strlen(ctx) + 1;

	SMIG_ENSURE(clen + len <= SIGN_MSG_MAX, SMIG_ETOOBIG);
	memcpy(buf, ctx, clen);
	if (len)
		memcpy(buf + clen, msg, len);
	*n = clen + len;
	return 0;
}

int smig_sign(EVP_PKEY *key, const char *ctx, const uint8_t *msg, size_t len,
	      uint8_t sig[SMIG_SIG_LEN])
{
	uint8_t buf[SIGN_MSG_MAX];
	size_t n, siglen = SMIG_SIG_LEN;
	EVP_MD_CTX *md;
	int ok;

	SMIG_GUARD(sign_input(ctx, msg, len, buf, &n));
	md = EVP_MD_CTX_new();
	SMIG_ENSURE(md != NULL, SMIG_ENOMEM);
	ok = EVP_DigestSignInit(md, NULL, NULL, NULL, key) == 1 &&
	     EVP_DigestSign(md, sig, &siglen, buf, n) == 1 && siglen == SMIG_SIG_LEN;
	EVP_MD_CTX_free(md);
	return ok ? 0 : SMIG_ECRYPTO;
}

int smig_sign_verify(EVP_PKEY *pub, const char *ctx, const uint8_t *msg, size_t len,
		     const uint8_t sig[SMIG_SIG_LEN])
{
	uint8_t buf[SIGN_MSG_MAX];
	EVP_MD_CTX *md;
	size_t n;
	int ok;

	SMIG_GUARD(sign_input(ctx, msg, len, buf, &n));
	md = EVP_MD_CTX_new();
	SMIG_ENSURE(md != NULL, SMIG_ENOMEM);
	ok = EVP_DigestVerifyInit(md, NULL, NULL, NULL, pub) == 1 &&
	     EVP_DigestVerify(md, sig, SMIG_SIG_LEN, buf, n) == 1;
	EVP_MD_CTX_free(md);
	return ok ? 0 : SMIG_ECRYPTO;
}

void smig_hex(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int smig_unhex_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	SMIG_ENSURE(s != NULL, SMIG_EINVAL);
	for (size_t i = 0; i < 16; i++) {
		int d = hexval(s[i]);

		SMIG_ENSURE(d >= 0, SMIG_EINVAL);
		v = v << 4 | (uint64_t)d;
	}
	SMIG_ENSURE(hexval(s[16]) < 0, SMIG_EINVAL);
	*out = v;
	return 0;
}

int smig_unhex(const char *s, uint8_t *out, size_t n)
{
	SMIG_ENSURE(s != NULL && strlen(s) == 2 * n, SMIG_EINVAL);
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		SMIG_ENSURE(hi >= 0 && lo >= 0, SMIG_EINVAL);
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}
