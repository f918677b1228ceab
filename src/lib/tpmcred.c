/*
 * tpmcred.c - TPM key templates, names and TPM2_MakeCredential in
 * software (see tpmcred.h).
 */
#include "tpmcred.h"
#include "error.h"
#include "sign.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <tss2/tss2_mu.h>

/* Both keys: never leave the TPM, made inside it. */
#define KEY_ATTRS (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN)

/* PolicySecret(TPM_RH_ENDORSEMENT): the EK template's policy (TCG EK Credential Profile). */
static const uint8_t ek_policy[32] = {
	0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
	0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
};

void smig_tpm_ak_template(TPMT_PUBLIC *pub)
{
	memset(pub, 0, sizeof(*pub));
	pub->type = TPM2_ALG_ECC;
	pub->nameAlg = TPM2_ALG_SHA256;
	pub->objectAttributes = KEY_ATTRS | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED |
				TPMA_OBJECT_SIGN_ENCRYPT;
	pub->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
	pub->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
	pub->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	pub->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	pub->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
}

void smig_tpm_ek_template(TPMT_PUBLIC *pub)
{
	memset(pub, 0, sizeof(*pub));
	pub->type = TPM2_ALG_ECC;
	pub->nameAlg = TPM2_ALG_SHA256;
	pub->objectAttributes = KEY_ATTRS | TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED |
				TPMA_OBJECT_DECRYPT;
	pub->authPolicy.size = sizeof(ek_policy);
	memcpy(pub->authPolicy.buffer, ek_policy, sizeof(ek_policy));
	pub->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
	pub->parameters.eccDetail.symmetric.keyBits.aes = 128;
	pub->parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	pub->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
	pub->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	pub->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	pub->unique.ecc.x.size = 32;
	pub->unique.ecc.y.size = 32;
}

int smig_tpm_ak_name(const uint8_t ak[SMIG_AK_LEN], uint8_t name[SMIG_TPM_NAME_LEN])
{
	uint8_t buf[sizeof(TPMT_PUBLIC)];
	size_t off = 0;
	TPMT_PUBLIC pub;

	smig_tpm_ak_template(&pub);
	pub.unique.ecc.x.size = 32;
	memcpy(pub.unique.ecc.x.buffer, ak, 32);
	pub.unique.ecc.y.size = 32;
	memcpy(pub.unique.ecc.y.buffer, ak + 32, 32);
	SMIG_ENSURE(Tss2_MU_TPMT_PUBLIC_Marshal(&pub, buf, sizeof(buf), &off) == TSS2_RC_SUCCESS,
		    SMIG_EPROTO);
	name[0] = (uint8_t)(TPM2_ALG_SHA256 >> 8);
	name[1] = (uint8_t)TPM2_ALG_SHA256;
	SHA256(buf, off, name + 2);
	return 0;
}

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* KDFa (SP 800-108 counter mode, HMAC-SHA-256); label includes its NUL. */
static int kdfa(const uint8_t key[32], const char *label, const uint8_t *ctx_u, size_t ulen,
		uint8_t *out, size_t bytes)
{
	uint8_t in[4 + 16 + SMIG_TPM_NAME_LEN + 4], block[32];
	size_t llen = strlen(label) + 1, n = 4 + llen + ulen + 4;
	unsigned int blen;

	SMIG_ENSURE(llen <= 16 && ulen <= SMIG_TPM_NAME_LEN, SMIG_EINVAL);
	memcpy(in + 4, label, llen);
	if (ulen)
		memcpy(in + 4 + llen, ctx_u, ulen);
	be32(in + 4 + llen + ulen, (uint32_t)(bytes * 8));
	for (uint32_t i = 1, done = 0; done < bytes; i++) {
		size_t take = bytes - done < 32 ? bytes - done : 32;

		be32(in, i);
		SMIG_ENSURE(HMAC(EVP_sha256(), key, 32, in, n, block, &blen) != NULL && blen == 32,
			    SMIG_ECRYPTO);
		memcpy(out + done, block, take);
		done += (uint32_t)take;
	}
	OPENSSL_cleanse(block, sizeof(block));
	return 0;
}

/* The point of a P-256 key, x and y 32 bytes each. */
static int point_x(const EVP_PKEY *k, uint8_t x[32], uint8_t y[32])
{
	BIGNUM *bx = NULL, *by = NULL;
	int ok = EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &bx) == 1 &&
		 EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &by) == 1 &&
		 BN_bn2binpad(bx, x, 32) == 32 && BN_bn2binpad(by, y, 32) == 32;

	BN_free(bx);
	BN_free(by);
	return ok ? 0 : SMIG_ECRYPTO;
}

/*
 * The seed and its encryption to the EK: an ephemeral P-256 key, ECDH with
 * the EK, seed = KDFe(SHA-256, Z, "IDENTITY", ephemeral x, EK x).
 */
static int seed_for(const uint8_t ek[SMIG_EK_LEN], uint8_t seed[32], TPMS_ECC_POINT *eph)
{
	EVP_PKEY *ekk = smig_p256_key(ek), *e = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY_CTX *ctx = e ? EVP_PKEY_CTX_new(e, NULL) : NULL;
	uint8_t z[32], ctr[4] = { 0, 0, 0, 1 };
	size_t zlen = sizeof(z);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int rc = SMIG_ECRYPTO;

	if (ekk && ctx && md && EVP_PKEY_derive_init(ctx) == 1 &&
	    EVP_PKEY_derive_set_peer(ctx, ekk) == 1 && EVP_PKEY_derive(ctx, z, &zlen) == 1 &&
	    zlen == 32 && point_x(e, eph->x.buffer, eph->y.buffer) == 0 &&
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(md, ctr, 4) == 1 &&
	    EVP_DigestUpdate(md, z, 32) == 1 && EVP_DigestUpdate(md, "IDENTITY", 9) == 1 &&
	    EVP_DigestUpdate(md, eph->x.buffer, 32) == 1 && EVP_DigestUpdate(md, ek, 32) == 1 &&
	    EVP_DigestFinal_ex(md, seed, NULL) == 1) {
		eph->x.size = 32;
		eph->y.size = 32;
		rc = 0;
	}
	OPENSSL_cleanse(z, sizeof(z));
	EVP_MD_CTX_free(md);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(e);
	EVP_PKEY_free(ekk);
	return rc;
}

/* encIdentity: the credential as a TPM2B_DIGEST, AES-128-CFB under symkey, IV 0. */
static int enc_identity(const uint8_t symkey[16], const uint8_t cred[SMIG_CRED_LEN],
			uint8_t out[2 + SMIG_CRED_LEN])
{
	uint8_t plain[2 + SMIG_CRED_LEN], iv[16] = { 0 };
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, m = 0, ok;

	plain[0] = 0;
	plain[1] = SMIG_CRED_LEN;
	memcpy(plain + 2, cred, SMIG_CRED_LEN);
	ok = c && EVP_EncryptInit_ex(c, EVP_aes_128_cfb128(), NULL, symkey, iv) == 1 &&
	     EVP_EncryptUpdate(c, out, &n, plain, sizeof(plain)) == 1 &&
	     EVP_EncryptFinal_ex(c, out + n, &m) == 1 && n + m == (int)sizeof(plain);
	EVP_CIPHER_CTX_free(c);
	OPENSSL_cleanse(plain, sizeof(plain));
	return ok ? 0 : SMIG_ECRYPTO;
}

static int marshal_out(const uint8_t hmac[32], const uint8_t enc[2 + SMIG_CRED_LEN],
		       const TPMS_ECC_POINT *eph, struct smig_credential *out)
{
	TPM2B_ID_OBJECT id = { .size = 2 + 32 + 2 + SMIG_CRED_LEN };
	TPM2B_ENCRYPTED_SECRET es = { 0 };
	size_t off = 0;

	id.credential[0] = 0;
	id.credential[1] = 32;
	memcpy(id.credential + 2, hmac, 32);
	memcpy(id.credential + 34, enc, 2 + SMIG_CRED_LEN);
	SMIG_ENSURE(Tss2_MU_TPMS_ECC_POINT_Marshal(eph, es.secret, sizeof(es.secret), &off) ==
			    TSS2_RC_SUCCESS,
		    SMIG_EPROTO);
	es.size = (UINT16)off;
	out->blob_len = 0;
	out->secret_len = 0;
	SMIG_ENSURE(Tss2_MU_TPM2B_ID_OBJECT_Marshal(&id, out->blob, sizeof(out->blob),
						    &out->blob_len) == TSS2_RC_SUCCESS,
		    SMIG_EPROTO);
	SMIG_ENSURE(Tss2_MU_TPM2B_ENCRYPTED_SECRET_Marshal(&es, out->secret, sizeof(out->secret),
							   &out->secret_len) == TSS2_RC_SUCCESS,
		    SMIG_EPROTO);
	return 0;
}

int smig_tpm_make_credential(const uint8_t ek[SMIG_EK_LEN], const uint8_t ak[SMIG_AK_LEN],
			     const uint8_t cred[SMIG_CRED_LEN], struct smig_credential *out,
			     char *err, size_t errlen)
{
	uint8_t name[SMIG_TPM_NAME_LEN], seed[32], symkey[16], hkey[32], enc[2 + SMIG_CRED_LEN];
	uint8_t mac_in[sizeof(enc) + SMIG_TPM_NAME_LEN], hmac[32];
	TPMS_ECC_POINT eph = { 0 };
	unsigned int hlen = 0;
	int rc;

	rc = smig_tpm_ak_name(ak, name);
	if (rc == 0)
		rc = seed_for(ek, seed, &eph);
	if (rc == 0)
		rc = kdfa(seed, "STORAGE", name, sizeof(name), symkey, sizeof(symkey));
	if (rc == 0)
		rc = kdfa(seed, "INTEGRITY", NULL, 0, hkey, sizeof(hkey));
	if (rc == 0)
		rc = enc_identity(symkey, cred, enc);
	if (rc == 0) {
		memcpy(mac_in, enc, sizeof(enc));
		memcpy(mac_in + sizeof(enc), name, sizeof(name));
		if (HMAC(EVP_sha256(), hkey, sizeof(hkey), mac_in, sizeof(mac_in), hmac, &hlen) ==
			    NULL ||
		    hlen != 32)
			rc = SMIG_ECRYPTO;
	}
	if (rc == 0)
		rc = marshal_out(hmac, enc, &eph, out);
	OPENSSL_cleanse(seed, sizeof(seed));
	OPENSSL_cleanse(symkey, sizeof(symkey));
	OPENSSL_cleanse(hkey, sizeof(hkey));
	if (rc < 0)
		snprintf(err, errlen, "cannot make a TPM credential: the EK or AK is not a P-256 "
			 "point, or the crypto library failed");
	return rc;
}

void smig_tpm_key_fp(const uint8_t point[SMIG_EK_LEN], char out[72])
{
	uint8_t d[32];

	char hex[2 * sizeof(d) + 1];

	SHA256(point, SMIG_EK_LEN, d);
	smig_hex(d, sizeof(d), hex);
	snprintf(out, 72, "sha256:%s", hex);
}
