/*
 * tpm.c - the host's own TPM 2.0, which only the warden opens, through tpm2-tss's ESAPI: its
 * endorsement key, the attestation key, quotes over the configured PCRs
 * (quote.h says why) and the activation of an enrolment credential
 * (tpmcred.h).
 *
 * The AK is a primary ECC P-256 restricted signing key (ECDSA, SHA-256)
 * in the endorsement hierarchy, the EK the TCG's ECC P-256 template: the
 * same templates on the same TPM give the same keys after every restart,
 * so the IVT can enrol them. Calls to the TPM are synchronous: they run
 * in a process of their own (tpmproc.c), never in the warden's loop.
 */
#include "warden/tpm.h"
#include "error.h"
#include "log.h"
#include "tpmcred.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

struct host_tpm {
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *esys;
	ESYS_TR ak, ek;
	uint8_t ak_pub[SMIG_AK_LEN];
	uint8_t ek_pub[SMIG_EK_LEN];
	TPML_PCR_SELECTION sel;
	unsigned pcrs[SMIG_PCR_MAX];
	size_t npcrs;
};

static int tss_fail(const char *what, TSS2_RC rc, char *err, size_t errlen)
{
	snprintf(err, errlen, "TPM: %s: %s", what, Tss2_RC_Decode(rc));
	return SMIG_EIO;
}

/* Left-pads a TPM ECC parameter to 32 bytes. */
static int ecc32(const TPM2B_ECC_PARAMETER *p, uint8_t out[32])
{
	SMIG_ENSURE(p->size <= 32, SMIG_EPROTO);
	memset(out, 0, 32);
	memcpy(out + 32 - p->size, p->buffer, p->size);
	return 0;
}

/* A primary key of the endorsement hierarchy from tmpl; its point into out. */
static int make_primary(struct host_tpm *t, const TPMT_PUBLIC *tmpl, const char *what,
			ESYS_TR *handle, uint8_t out[64], char *err, size_t errlen)
{
	TPM2B_SENSITIVE_CREATE sens = { 0 };
	TPM2B_DATA outside = { 0 };
	TPML_PCR_SELECTION creation = { 0 };
	TPM2B_PUBLIC *pub = NULL;
	TPM2B_PUBLIC in = { .publicArea = *tmpl };
	TSS2_RC rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD,
					ESYS_TR_NONE, ESYS_TR_NONE, &sens, &in, &outside,
					&creation, handle, &pub, NULL, NULL, NULL);
	int r;

	if (rc != TSS2_RC_SUCCESS)
		return tss_fail(what, rc, err, errlen);
	r = ecc32(&pub->publicArea.unique.ecc.x, out);
	if (r == 0)
		r = ecc32(&pub->publicArea.unique.ecc.y, out + 32);
	Esys_Free(pub);
	return r;
}

static int make_keys(struct host_tpm *t, char *err, size_t errlen)
{
	TPMT_PUBLIC tmpl;

	smig_tpm_ek_template(&tmpl);
	SMIG_GUARD(make_primary(t, &tmpl, "create the endorsement key", &t->ek, t->ek_pub, err,
				errlen));
	smig_tpm_ak_template(&tmpl);
	return make_primary(t, &tmpl, "create the attestation key", &t->ak, t->ak_pub, err, errlen);
}

/*
 * Flushes the transient objects a TPM without a resource manager (swtpm's
 * socket, /dev/tpm0) still holds from an earlier process that was killed
 * before it could (a hung TPM's, tpmproc.c): they would fill its few
 * object slots. Not behind a resource manager (/dev/tpmrm0, tabrmd),
 * which flushes a client's objects itself and shows none of others'.
 * smigd takes a TPM without one to be its own (attestation.tpm).
 */
#define TRANSIENT_FIRST 0x80000000u /* TPM2_TRANSIENT_FIRST: its macro shifts an int too far */
#define TRANSIENT_LAST 0x80ffffffu

static void flush_leftovers(struct host_tpm *t)
{
	TPMS_CAPABILITY_DATA *cap = NULL;

	if (Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
			       TPM2_CAP_HANDLES, TRANSIENT_FIRST, TPM2_MAX_CAP_HANDLES, NULL,
			       &cap) != TSS2_RC_SUCCESS)
		return;
	for (UINT32 i = 0; i < cap->data.handles.count; i++) {
		TPM2_HANDLE h = cap->data.handles.handle[i];
		ESYS_TR tr = ESYS_TR_NONE;

		if (h < TRANSIENT_FIRST || h > TRANSIENT_LAST ||
		    Esys_TR_FromTPMPublic(t->esys, h, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
					  &tr) != TSS2_RC_SUCCESS)
			continue;
		if (Esys_FlushContext(t->esys, tr) == TSS2_RC_SUCCESS)
			smig_info("event=tpm_leftover_flushed handle=0x%08x", (unsigned)h);
	}
	Esys_Free(cap);
}

int tpm_open(const char *tcti, const unsigned *pcrs, size_t n, struct host_tpm **out,
	     char *err, size_t errlen)
{
	struct host_tpm *t = calloc(1, sizeof(*t));
	TSS2_RC rc;

	SMIG_ENSURE(t != NULL, SMIG_ENOMEM);
	t->ak = ESYS_TR_NONE;
	t->ek = ESYS_TR_NONE;
	t->sel.count = 1;
	t->sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
	t->sel.pcrSelections[0].sizeofSelect = 3;
	for (size_t i = 0; i < n && i < SMIG_PCR_MAX; i++) {
		t->pcrs[t->npcrs++] = pcrs[i];
		t->sel.pcrSelections[0].pcrSelect[pcrs[i] / 8] |= (uint8_t)(1u << (pcrs[i] % 8));
	}
	rc = Tss2_TctiLdr_Initialize(tcti, &t->tcti);
	if (rc == TSS2_RC_SUCCESS)
		rc = Esys_Initialize(&t->esys, t->tcti, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		tpm_close(t);
		return tss_fail(tcti, rc, err, errlen);
	}
	if (strstr(tcti, "tpmrm") == NULL && strncmp(tcti, "tabrmd", 6) != 0)
		flush_leftovers(t);
	if (make_keys(t, err, errlen) < 0) {
		tpm_close(t);
		return SMIG_EIO;
	}
#ifdef SMIG_TEST_HOOKS
	/*
	 * Test builds only: a lying host, that presents the EK of the TPM
	 * behind SMIG_TEST_FOREIGN_EK (a TCTI) beside the AK of its own.
	 */
	{
		static int nested;
		const char *foreign = getenv("SMIG_TEST_FOREIGN_EK");
		struct host_tpm *o = NULL;

		if (foreign && foreign[0] && !nested) {
			nested = 1;
			if (tpm_open(foreign, NULL, 0, &o, err, errlen) == 0)
				memcpy(t->ek_pub, o->ek_pub, SMIG_EK_LEN);
			tpm_close(o);
			nested = 0;
		}
	}
#endif
	*out = t;
	return 0;
}

void tpm_close(struct host_tpm *t)
{
	if (t == NULL)
		return;
	if (t->esys && t->ak != ESYS_TR_NONE)
		(void)Esys_FlushContext(t->esys, t->ak);
	if (t->esys && t->ek != ESYS_TR_NONE)
		(void)Esys_FlushContext(t->esys, t->ek);
	if (t->esys)
		Esys_Finalize(&t->esys);
	if (t->tcti)
		Tss2_TctiLdr_Finalize(&t->tcti);
	free(t);
}

const uint8_t *tpm_ak(const struct host_tpm *t)
{
	return t->ak_pub;
}

const uint8_t *tpm_ek(const struct host_tpm *t)
{
	return t->ek_pub;
}

int tpm_activate(struct host_tpm *t, const uint8_t *blob, size_t blob_len,
		 const uint8_t *secret, size_t secret_len, uint8_t cred[SMIG_CRED_LEN], char *err,
		 size_t errlen)
{
	TPMT_SYM_DEF sym = { .algorithm = TPM2_ALG_NULL };
	TPM2B_ID_OBJECT id = { 0 };
	TPM2B_ENCRYPTED_SECRET es = { 0 };
	TPM2B_DIGEST *out = NULL;
	ESYS_TR sess = ESYS_TR_NONE;
	size_t off = 0, off2 = 0;
	TSS2_RC rc;

	if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(blob, blob_len, &off, &id) != TSS2_RC_SUCCESS ||
	    off != blob_len ||
	    Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(secret, secret_len, &off2, &es) !=
		    TSS2_RC_SUCCESS ||
	    off2 != secret_len) {
		snprintf(err, errlen, "TPM: the credential is not a marshalled TPM2B_ID_OBJECT and "
			 "TPM2B_ENCRYPTED_SECRET");
		return SMIG_EPROTO;
	}
	/* the EK's policy: PolicySecret(TPM_RH_ENDORSEMENT) */
	rc = Esys_StartAuthSession(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
				   ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &sym, TPM2_ALG_SHA256,
				   &sess);
	if (rc == TSS2_RC_SUCCESS)
		rc = Esys_PolicySecret(t->esys, ESYS_TR_RH_ENDORSEMENT, sess, ESYS_TR_PASSWORD,
				       ESYS_TR_NONE, ESYS_TR_NONE, NULL, NULL, NULL, 0, NULL, NULL);
	if (rc == TSS2_RC_SUCCESS)
		rc = Esys_ActivateCredential(t->esys, t->ak, t->ek, ESYS_TR_PASSWORD, sess,
					     ESYS_TR_NONE, &id, &es, &out);
	if (sess != ESYS_TR_NONE)
		(void)Esys_FlushContext(t->esys, sess);
	if (rc != TSS2_RC_SUCCESS)
		return tss_fail("activate the credential", rc, err, errlen);
	if (out->size != SMIG_CRED_LEN) {
		snprintf(err, errlen, "TPM: the credential has %u bytes, not %d", out->size,
			 SMIG_CRED_LEN);
		Esys_Free(out);
		return SMIG_EPROTO;
	}
	memcpy(cred, out->buffer, SMIG_CRED_LEN);
	OPENSSL_cleanse(out->buffer, out->size);
	Esys_Free(out);
	return 0;
}

int tpm_ek_cert(struct host_tpm *t, uint8_t *out, size_t max, size_t *len, char *err,
		size_t errlen)
{
	TPM2B_NV_PUBLIC *pub = NULL;
	ESYS_TR nv = ESYS_TR_NONE;
	size_t size, off = 0;
	TSS2_RC rc;

	TPMS_CAPABILITY_DATA *cap = NULL;
	bool there;

	*len = 0;
	/* asked first: a missing index would have the TSS log an error */
	rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
				TPM2_CAP_HANDLES, SMIG_EK_CERT_NV, 1, NULL, &cap);
	if (rc != TSS2_RC_SUCCESS)
		return tss_fail("list the NV indices", rc, err, errlen);
	there = cap->data.handles.count == 1 && cap->data.handles.handle[0] == SMIG_EK_CERT_NV;
	Esys_Free(cap);
	if (!there)
		return 0; /* a TPM without an EK certificate */
	rc = Esys_TR_FromTPMPublic(t->esys, SMIG_EK_CERT_NV, ESYS_TR_NONE, ESYS_TR_NONE,
				   ESYS_TR_NONE, &nv);
	if (rc != TSS2_RC_SUCCESS)
		return tss_fail("open the EK certificate's NV index", rc, err, errlen);
	rc = Esys_NV_ReadPublic(t->esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		(void)Esys_TR_Close(t->esys, &nv);
		return tss_fail("read the EK certificate's NV public area", rc, err, errlen);
	}
	size = pub->nvPublic.dataSize;
	Esys_Free(pub);
	if (size > max) {
		(void)Esys_TR_Close(t->esys, &nv);
		snprintf(err, errlen, "TPM: the EK certificate (NV 0x%08x) has %zu bytes, more than "
			 "the %zu smigd takes", SMIG_EK_CERT_NV, size, max);
		return SMIG_ETOOBIG;
	}
	while (off < size) {
		/* 512 bytes a read: below every TPM's MAX_NV_BUFFER_SIZE */
		UINT16 n = (UINT16)(size - off > 512 ? 512 : size - off);
		TPM2B_MAX_NV_BUFFER *data = NULL;

		rc = Esys_NV_Read(t->esys, nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, n,
				  (UINT16)off, &data);
		if (rc != TSS2_RC_SUCCESS || data->size != n) {
			Esys_Free(data);
			(void)Esys_TR_Close(t->esys, &nv);
			return tss_fail("read the EK certificate", rc ? rc : TSS2_ESYS_RC_GENERAL_FAILURE,
					err, errlen);
		}
		memcpy(out + off, data->buffer, n);
		off += n;
		Esys_Free(data);
	}
	(void)Esys_TR_Close(t->esys, &nv);
	*len = size;
	return 0;
}

/* Replaces e's pcrN components by the TPM's current values. */
int tpm_pcrs(struct host_tpm *t, struct smig_evidence *e, char *err, size_t errlen)
{
	TPML_PCR_SELECTION *out = NULL;
	TPML_DIGEST *vals = NULL;
	UINT32 counter;
	size_t k = 0;
	TSS2_RC rc = Esys_PCR_Read(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &t->sel,
				   &counter, &out, &vals);

	if (rc != TSS2_RC_SUCCESS)
		return tss_fail("read PCRs", rc, err, errlen);
	for (size_t i = 0; i < e->ncomp;) {
		unsigned idx;

		if (smig_pcr_name(e->comp[i].name, &idx))
			e->comp[i] = e->comp[--e->ncomp];
		else
			i++;
	}
	/* the TPM returns the selected PCRs in ascending order */
	for (unsigned pcr = 0; pcr < SMIG_PCR_MAX && k < vals->count; pcr++) {
		struct smig_component *c;

		if (!(t->sel.pcrSelections[0].pcrSelect[pcr / 8] & (1u << (pcr % 8))))
			continue;
		if (e->ncomp == SMIG_COMPONENTS_MAX || vals->digests[k].size != 32)
			break;
		c = &e->comp[e->ncomp++];
		snprintf(c->name, sizeof(c->name), "pcr%u", pcr);
		memcpy(c->sha256, vals->digests[k++].buffer, 32);
	}
	Esys_Free(out);
	Esys_Free(vals);
	return 0;
}

int tpm_quote(struct host_tpm *t, const uint8_t extra[32], struct smig_evidence *e, char *err,
	      size_t errlen)
{
	TPMT_SIG_SCHEME ecdsa = { .scheme = TPM2_ALG_ECDSA,
				  .details.ecdsa.hashAlg = TPM2_ALG_SHA256 };
	TPM2B_DATA qd = { .size = 32 };
	TPM2B_ATTEST *quoted = NULL;
	TPMT_SIGNATURE *sig = NULL;
	TSS2_RC rc;
	int r;

	memcpy(qd.buffer, extra, 32);
	SMIG_GUARD(tpm_pcrs(t, e, err, errlen));
	rc = Esys_Quote(t->esys, t->ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &qd, &ecdsa,
			&t->sel, &quoted, &sig);
	if (rc != TSS2_RC_SUCCESS)
		return tss_fail("quote", rc, err, errlen);
	r = quoted->size <= SMIG_QUOTE_MAX ? 0 : SMIG_ETOOBIG;
	if (r == 0) {
		memcpy(e->quote.attest, quoted->attestationData, quoted->size);
		e->quote.attest_len = quoted->size;
		memcpy(e->quote.ak, t->ak_pub, SMIG_AK_LEN);
		r = ecc32(&sig->signature.ecdsa.signatureR, e->quote.sig);
	}
	if (r == 0)
		r = ecc32(&sig->signature.ecdsa.signatureS, e->quote.sig + 32);
	e->has_quote = r == 0;
	Esys_Free(quoted);
	Esys_Free(sig);
	if (r < 0)
		snprintf(err, errlen, "TPM: the quote does not fit");
	return r;
}
