/*
 * hostcert.c - this host's certificate and key as the warden holds them,
 * and their renewal while smigd runs.
 *
 * The key signs evidence and the audit log here, and the worker holds a
 * copy for TLS (it loads the files itself, as root, when it starts). When
 * the files are replaced (a renewed certificate, docs/configuration.md
 * "Certificate rotation") the warden reads them again on SIGHUP, and also
 * when it sees them change (looked at every few seconds; a change is
 * taken once it has stood still for one look, so a cert and key moved in
 * one after the other are read as a pair). The new pair is taken only
 * when the key file passes smig_file_check_private (read through the very
 * descriptor that was checked), the key is Ed25519 and belongs to the
 * certificate, the certificate is the CA's, valid now, and listed for
 * this host in the host table (as its fingerprint or next_fingerprint);
 * otherwise the old pair serves on and the log says why
 * (event=tls_reload_failed). A taken pair is written to the audit log as
 * a key change (the old key vouching for the new), becomes the key of
 * evidence and audit checkpoints, and goes to the worker (EV_TLS) for its
 * next connections. The key before is kept: evidence for a session made
 * with the old certificate is still signed by the old key.
 */
#include "warden/wd_int.h"
#include "error.h"
#include "file.h"
#include "log.h"
#include "sign.h"
#include "tls.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define HOSTCERT_LOOK_MS 3000
#define HOSTCERT_PEM_MAX ((size_t)1 << 20)

/* What stat says of a file: a change in any of it is a change of the file. */
struct look {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	bool exists;
};

struct wd_hostcert {
	uint8_t fp[SMIG_FP_LEN];      /* the certificate of w->host_key */
	EVP_PKEY *prev_key;           /* the key before the last change, or NULL */
	uint8_t prev_fp[SMIG_FP_LEN];
	uint8_t self[2][SMIG_FP_LEN]; /* this host's certificates in the host table */
	size_t nself;                 /* 0: the table could not be read (the worker checks) */
	struct look seen[3];          /* tls.ca, tls.cert, tls.key at the last look */
	bool settling;                /* they changed at the last look */
	struct loop_timer *timer;
};

/* A pair read from the files, checked, not yet taken. */
struct pair {
	char *text[3]; /* CA, certificate, key (PEM) */
	size_t len[3];
	EVP_PKEY *key;
	uint8_t fp[SMIG_FP_LEN];
	struct smig_cert_info info;
};

static void pair_clear(struct pair *p)
{
	for (int i = 0; i < 3; i++) {
		if (p->text[i])
			OPENSSL_cleanse(p->text[i], p->len[i]);
		free(p->text[i]);
	}
	EVP_PKEY_free(p->key);
	memset(p, 0, sizeof(*p));
}

static void look_at(const char *path, struct look *l)
{
	struct stat st;

	memset(l, 0, sizeof(*l));
	if (stat(path, &st) < 0)
		return;
	l->exists = true;
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	l->size = st.st_size;
	l->mtime = st.st_mtim;
}

static bool look_same(const struct look *a, const struct look *b)
{
	return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino &&
	       a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static void look_all(const struct warden *w, struct look out[3])
{
	look_at(w->cfg.tls_ca, &out[0]);
	look_at(w->cfg.tls_cert, &out[1]);
	look_at(w->cfg.tls_key, &out[2]);
}

void wd_hostcert_table(struct warden *w, const char *name, const char *text)
{
	struct wd_hostcert *c = w->hostcert;
	const struct smig_host *self;
	struct smig_hosts h;
	char err[512];

	if (smig_hosts_parse(name, text, strlen(text), &h, err, sizeof(err)) < 0)
		return; /* the worker keeps its table and says why; so do we */
	self = smig_hosts_by_name(&h, w->cfg.host);
	c->nself = 0;
	if (self) {
		memcpy(c->self[c->nself++], self->fp, SMIG_FP_LEN);
		if (self->has_next)
			memcpy(c->self[c->nself++], self->next_fp, SMIG_FP_LEN);
	}
	smig_hosts_clear(&h);
}

/* The certificate is the CA's and valid now. */
static int chain_ok(const char *ca_pem, X509 *cert, char *err, size_t errlen)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	BIO *bio = BIO_new_mem_buf(ca_pem, -1);
	X509 *ca;
	int n = 0, ok = 0;

	while (store && bio && (ca = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		n += X509_STORE_add_cert(store, ca) == 1;
		X509_free(ca);
	}
	ERR_clear_error();
	if (n > 0 && ctx && X509_STORE_CTX_init(ctx, store, cert, NULL) == 1) {
		ok = X509_verify_cert(ctx) == 1;
		if (!ok)
			snprintf(err, errlen, "tls.cert does not verify with tls.ca: %s",
				 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	} else {
		snprintf(err, errlen, "tls.ca holds no PEM certificate");
	}
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	BIO_free(bio);
	return ok ? 0 : SMIG_ECONFIG;
}

/* The files read and checked: a pair that may serve this host. */
static int pair_read(struct warden *w, struct pair *p, char *err, size_t errlen)
{
	const struct wd_hostcert *c = w->hostcert;
	char fps[SMIG_FP_STR_LEN];
	BIO *bio;
	X509 *cert = NULL;
	bool listed = c->nself == 0;
	int rc;

	rc = smig_file_read(w->cfg.tls_ca, HOSTCERT_PEM_MAX, &p->text[0], &p->len[0], err, errlen);
	if (rc == 0)
		rc = smig_file_read(w->cfg.tls_cert, HOSTCERT_PEM_MAX, &p->text[1], &p->len[1], err,
				    errlen);
	if (rc == 0) /* mode, owner, a regular file: of the file opened, not of a name */
		rc = smig_file_read_private(w->cfg.tls_key, HOSTCERT_PEM_MAX, &p->text[2],
					    &p->len[2], err, errlen);
	if (rc == 0)
		rc = smig_sign_key_pem(p->text[2], w->cfg.tls_key, &p->key, err, errlen);
	if (rc < 0)
		return rc;
	bio = BIO_new_mem_buf(p->text[1], -1);
	cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	ERR_clear_error();
	if (cert == NULL || smig_tls_cert_info_pem(p->text[1], &p->info) < 0) {
		snprintf(err, errlen, "%s: not a PEM certificate", w->cfg.tls_cert);
		rc = SMIG_ECONFIG;
	} else if (X509_check_private_key(cert, p->key) != 1) {
		snprintf(err, errlen, "%s does not belong to %s (the key of another certificate)",
			 w->cfg.tls_key, w->cfg.tls_cert);
		rc = SMIG_ECONFIG;
	} else {
		rc = chain_ok(p->text[0], cert, err, errlen);
	}
	ERR_clear_error();
	X509_free(cert);
	if (rc < 0)
		return rc;
	memcpy(p->fp, p->info.fp, SMIG_FP_LEN);
	for (size_t i = 0; i < c->nself; i++)
		listed = listed || memcmp(c->self[i], p->fp, SMIG_FP_LEN) == 0;
	if (!listed) {
		smig_fp_format(p->fp, fps);
		snprintf(err, errlen, "%s (%s) is not %s's in the host table: list it as %s's "
			 "next_fingerprint on every host first", w->cfg.tls_cert, fps, w->cfg.host,
			 w->cfg.host);
		return SMIG_ECONFIG;
	}
	return 0;
}

/* The pair to the worker, for its next connections; the datagram wiped after. */
static void pair_send(struct warden *w, const struct pair *p, bool reload)
{
	struct smig_buf b;

	smig_buf_init(&b, SMIG_PM_MAX);
	if (smig_pm_build(&b, SMIG_PM_EV_TLS, 0, p->text[0], p->text[1], p->text[2], reload) == 0)
		wd_send(w, &b, NULL, 0);
	else
		smig_err("event=tls_reload_failed reason=\"the files are too large to send to the "
			 "worker\" action=worker_keeps_previous");
	smig_buf_clear(&b); /* wipes */
}

/* Takes the checked pair: the audit log records the change, then every use follows. */
static int pair_take(struct warden *w, struct pair *p, bool reload, char *err, size_t errlen)
{
	struct wd_hostcert *c = w->hostcert;
	EVP_PKEY *old = w->host_key;

	if (EVP_PKEY_eq(old, p->key) != 1) {
		w->host_key = p->key; /* the head after the change is the new key's */
		if (!wd_audit_rekey(w, old, p->key)) {
			w->host_key = old;
			snprintf(err, errlen, "the audit log cannot record the key change (see "
					      "event=audit_write_failed)");
			return SMIG_EIO;
		}
		EVP_PKEY_free(c->prev_key);
		c->prev_key = old;
		memcpy(c->prev_fp, c->fp, SMIG_FP_LEN);
		p->key = NULL; /* w->host_key's now */
	} else {
		/* the same key in a new certificate: sessions of the old one sign with it too */
		EVP_PKEY_free(c->prev_key);
		c->prev_key = old;
		if (EVP_PKEY_up_ref(old) != 1)
			c->prev_key = NULL;
		memcpy(c->prev_fp, c->fp, SMIG_FP_LEN);
	}
	memcpy(c->fp, p->fp, SMIG_FP_LEN);
	pair_send(w, p, reload);
	return 0;
}

int wd_hostcert_reload(struct warden *w, const char *why)
{
	struct wd_hostcert *c = w->hostcert;
	struct pair p = { 0 };
	char err[512] = "", fps[SMIG_FP_STR_LEN], was[SMIG_FP_STR_LEN], until[32];
	bool reload = strcmp(why, "sighup") == 0;
	int rc;

	look_all(w, c->seen);
	c->settling = false;
	rc = pair_read(w, &p, err, sizeof(err));
	if (rc == 0 && memcmp(p.fp, c->fp, SMIG_FP_LEN) == 0 && EVP_PKEY_eq(p.key, w->host_key) == 1) {
		pair_send(w, &p, reload); /* the same pair; the CA may be another: the worker takes it */
		pair_clear(&p);
		return 0;
	}
	smig_fp_format(c->fp, was);
	if (rc == 0)
		rc = pair_take(w, &p, reload, err, sizeof(err));
	if (rc < 0) {
		smig_err("event=tls_reload_failed why=%s cert=%s key=%s reason=\"%s\" "
			 "action=kept_previous fingerprint=%s",
			 why, w->cfg.tls_cert, w->cfg.tls_key, err, was);
		(void)wd_audit_write(w, "smigd", "tls.reload", w->cfg.tls_cert, "none", "-",
				     "failed", err, NULL);
		pair_clear(&p);
		return rc;
	}
	smig_fp_format(c->fp, fps);
	smig_cert_time(p.info.not_after, until);
	smig_info("event=tls_reloaded why=%s fingerprint=%s previous=%s subject=\"%s\" "
		  "not_after=%s",
		  why, fps, was, p.info.subject, until);
	(void)wd_audit_write(w, "smigd", "tls.reload", w->cfg.tls_cert, "none", "-", "ok", fps,
			     NULL);
	pair_clear(&p);
	return 0;
}

static void on_look(void *arg)
{
	struct warden *w = arg;
	struct wd_hostcert *c = w->hostcert;
	struct look now[3];
	bool same = true;

	c->timer = NULL;
	look_all(w, now);
	for (int i = 0; i < 3; i++)
		same = same && look_same(&now[i], &c->seen[i]);
	if (!same) {
		memcpy(c->seen, now, sizeof(now)); /* changed: read once it stands still */
		c->settling = true;
	} else if (c->settling) {
		(void)wd_hostcert_reload(w, "files_changed");
	}
	(void)loop_timer_add(w->loop, HOSTCERT_LOOK_MS, on_look, w, &c->timer);
}

int wd_hostcert_open(struct warden *w)
{
	struct wd_hostcert *c = calloc(1, sizeof(*c));
	char err[512], *table = NULL;
	size_t len;

	SMIG_ENSURE(c != NULL, SMIG_ENOMEM);
	w->hostcert = c;
	if (smig_sign_load_key(w->cfg.tls_key, &w->host_key, err, sizeof(err)) < 0 ||
	    smig_tls_cert_fp(w->cfg.tls_cert, c->fp) < 0) {
		smig_err("event=key_failed reason=\"%s\"", err);
		return SMIG_ECRYPTO;
	}
	if (smig_file_read(w->cfg.hosts_file, SMIG_PM_DOC_MAX, &table, &len, err, sizeof(err)) == 0)
		wd_hostcert_table(w, w->cfg.hosts_file, table);
	free(table);
	look_all(w, c->seen);
	return loop_timer_add(w->loop, HOSTCERT_LOOK_MS, on_look, w, &c->timer);
}

void wd_hostcert_close(struct warden *w)
{
	struct wd_hostcert *c = w->hostcert;

	if (c == NULL)
		return;
	if (w->loop)
		loop_timer_cancel(w->loop, c->timer);
	EVP_PKEY_free(c->prev_key);
	free(c);
	w->hostcert = NULL;
}

EVP_PKEY *wd_hostcert_key_for(struct warden *w, const uint8_t *fp)
{
	const struct wd_hostcert *c = w->hostcert;

	if (c == NULL || CRYPTO_memcmp(fp, c->fp, SMIG_FP_LEN) == 0)
		return w->host_key;
	if (c->prev_key && CRYPTO_memcmp(fp, c->prev_fp, SMIG_FP_LEN) == 0)
		return c->prev_key;
	return NULL;
}
