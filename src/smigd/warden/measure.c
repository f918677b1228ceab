/*
 * measure.c - this host's measurement, made by the warden, which alone
 * reads the hypervisor stack's files as root and alone opens the host
 * TPM. The stack (QEMU, swtpm, smigd's own binary, its config, the
 * running kernel's image when readable, and the components the config
 * adds) is hashed at start, whenever inotify reports a change to one of
 * the files (after a 50 ms quiet time), and every attestation.interval_s;
 * the config is the text in force (read at start or reload), so an edit
 * counts when a reload takes it, not before;
 * each result goes to the worker (EV_MEASURED), which checks it against
 * the IVT and acts on the verdict. Evidence for a verifier (EVIDENCE) is
 * the last measurement with fresh PCRs and a TPM quote over the
 * verifier's nonce and the session, signed with the host key.
 *
 * The IVT is the worker's to read and the warden's to keep on disk: a
 * change on disk goes to the worker (EV_IVT), and `smig ivt enrol`
 * writes through the warden (IVT_WRITE), which checks it parses first.
 */
#include "warden/wd_int.h"
#include "error.h"
#include "evidence.h"
#include "file.h"
#include "ivt.h"
#include "log.h"
#include "quote.h"
#include "sign.h"
#include "tls.h"
#include "warden/tpm.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define DEBOUNCE_MS 50

struct wd_measure {
	struct smig_evidence self; /* the last measurement (no nonce, no signature) */
	char bad[SMIG_NAME_MAX + 1]; /* the first component it could not measure */
	char reason[256];
	uint64_t took_us;
	int ino_fd;
	struct loop_watch *ino_w;
	struct loop_timer *tick;
	struct loop_timer *debounce;
	struct host_tpm *tpm; /* NULL without attestation.tpm */
	struct timespec ivt_mtime;
};

/* A binary named like execvp would find it. */
static int resolve(const char *bin, char *out, size_t len)
{
	const char *path = getenv("PATH");
	char dir[PATH_MAX];

	if (strchr(bin, '/'))
		return realpath(bin, out) ? 0 : SMIG_ENOENT;
	for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
		size_t n = strcspn(p, ":");

		snprintf(dir, sizeof(dir), "%.*s/%s", (int)n, p, bin);
		if (access(dir, X_OK) == 0 && realpath(dir, out))
			return 0;
		p += n + (p[n] == ':');
	}
	snprintf(out, len, "%s", bin);
	return SMIG_ENOENT;
}

/* The files measured: name and path, built-in ones first. */
static size_t components(const struct smig_config *cfg, char names[][SMIG_NAME_MAX + 1],
			 char paths[][PATH_MAX], size_t max)
{
	struct utsname u;
	size_t n = 0;

	snprintf(names[n], SMIG_NAME_MAX + 1, "qemu");
	(void)resolve(cfg->qemu_binary, paths[n++], PATH_MAX);
	snprintf(names[n], SMIG_NAME_MAX + 1, "swtpm");
	(void)resolve(cfg->swtpm_binary, paths[n++], PATH_MAX);
	snprintf(names[n], SMIG_NAME_MAX + 1, "smigd");
	if (realpath("/proc/self/exe", paths[n]) != NULL)
		n++;
	snprintf(names[n], SMIG_NAME_MAX + 1, "config");
	snprintf(paths[n++], PATH_MAX, "%s", cfg->path);
	if (uname(&u) == 0) {
		snprintf(paths[n], PATH_MAX, "/boot/vmlinuz-%s", u.release);
		snprintf(names[n], SMIG_NAME_MAX + 1, "kernel");
		if (access(paths[n], R_OK) == 0)
			n++;
	}
	for (size_t i = 0; i < cfg->ncomponents && n < max; i++, n++) {
		snprintf(names[n], SMIG_NAME_MAX + 1, "%s", cfg->components[i].name);
		snprintf(paths[n], PATH_MAX, "%s", cfg->components[i].path);
	}
	return n;
}

/* A log's size and SHA-256 (the IMA list in a host's own measurement). */
static int log_digest(const char *path, uint32_t *size, uint8_t sha[SMIG_DIGEST_LEN], char *err,
		      size_t errlen)
{
	uint8_t *data = NULL;
	size_t len;

	SMIG_GUARD(smig_file_read_stream(path, SMIG_ATTEST_LOGS_MAX, &data, &len, err, errlen));
	SHA256(data, len, sha);
	*size = (uint32_t)len;
	free(data);
	if (len == 0) {
		snprintf(err, errlen, "%s is empty", path);
		return SMIG_EIO;
	}
	return 0;
}

/*
 * Hashes every component into e (host and capabilities too). The first
 * component that cannot be read is named in bad and err; it is left out.
 */
static size_t measure_into(const struct smig_config *cfg, struct host_tpm *tpm,
			   struct smig_evidence *e, char *bad, char *err, size_t errlen,
			   char paths[][PATH_MAX])
{
	char names[SMIG_COMPONENTS_MAX][SMIG_NAME_MAX + 1];
	size_t n = components(cfg, names, paths, SMIG_COMPONENTS_MAX);
	char why[256];

	memset(e, 0, sizeof(*e));
	bad[0] = '\0';
	snprintf(e->host, sizeof(e->host), "%s", cfg->host);
	for (size_t i = 0; i < n; i++) {
		struct smig_component *c = &e->comp[e->ncomp];

		if (strcmp(names[i], "config") == 0) /* the config in force (reload re-measures) */
			memcpy(c->sha256, cfg->sha256, SMIG_DIGEST_LEN);
		else if (smig_measure_file(paths[i], c->sha256, why, sizeof(why)) < 0) {
			if (!bad[0]) {
				snprintf(bad, SMIG_NAME_MAX + 1, "%s", names[i]);
				snprintf(err, errlen, "%s", why);
			}
			continue;
		}
		snprintf(c->name, sizeof(c->name), "%s", names[i]);
		e->ncomp++;
	}
	snprintf(e->caps[e->ncaps++], sizeof(e->caps[0]), "tcg");
	if (access("/dev/kvm", R_OK | W_OK) == 0)
		snprintf(e->caps[e->ncaps++], sizeof(e->caps[0]), "kvm");
	if (smig_evidence_find(e, "swtpm"))
		snprintf(e->caps[e->ncaps++], sizeof(e->caps[0]), "vtpm");
	if (tpm) {
		snprintf(e->caps[e->ncaps++], sizeof(e->caps[0]), "tpm2");
		e->has_tpm = true;
		memcpy(e->quote.ak, tpm_ak(tpm), SMIG_AK_LEN);
		memcpy(e->ek, tpm_ek(tpm), SMIG_EK_LEN);
		if (cfg->tpm_ima_log[0] && log_digest(cfg->tpm_ima_log, &e->ima_size,
						       e->ima_sha256, why, sizeof(why)) == 0)
			e->has_ima_log = true; /* its PCR 10 is the list's, not a golden value */
		else if (cfg->tpm_ima_log[0] && !bad[0]) {
			snprintf(bad, SMIG_NAME_MAX + 1, "ima");
			snprintf(err, errlen, "%s", why);
		}
		if (tpm_pcrs(tpm, e, why, sizeof(why)) < 0 && !bad[0]) {
			snprintf(bad, SMIG_NAME_MAX + 1, "tpm");
			snprintf(err, errlen, "%s", why);
		}
	}
	return n;
}

static void on_inotify(void *arg, uint32_t events);

/* A fresh set of watches each time: files replaced by rename are new inodes. */
static void watch_all(struct warden *w, char paths[][PATH_MAX], size_t n)
{
	struct wd_measure *m = w->measure;

	loop_watch_del(w->loop, m->ino_w);
	m->ino_w = NULL;
	if (m->ino_fd >= 0)
		close(m->ino_fd);
	m->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (m->ino_fd < 0)
		return;
	for (size_t i = 0; i < n; i++)
		if (strcmp(paths[i], w->cfg.path) != 0) /* edits count when reloaded */
			(void)inotify_add_watch(m->ino_fd, paths[i],
					IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_MOVE_SELF |
						IN_DELETE_SELF);
	(void)loop_watch_add(w->loop, m->ino_fd, EPOLLIN, on_inotify, w, &m->ino_w);
}

void wd_measure_send(struct warden *w)
{
	struct wd_measure *m = w->measure;
	struct smig_evidence e = m->self;
	char *text = NULL;

	/* signed like evidence, so the worker parses it with the same strict parser */
	if (smig_evidence_sign(&e, w->host_key, &text) < 0)
		return;
	if (smig_pm_build(&w->tx, SMIG_PM_EV_MEASURED, 0, text, m->bad[0] ? m->bad : "-",
			  m->reason, m->took_us) == 0)
		wd_send(w, &w->tx, NULL, 0);
	free(text);
}

static void measure(struct warden *w)
{
	static char paths[SMIG_COMPONENTS_MAX][PATH_MAX];
	struct wd_measure *m = w->measure;
	uint64_t t0 = loop_now_ns();
	size_t n = measure_into(&w->cfg, m->tpm, &m->self, m->bad, m->reason, sizeof(m->reason),
				paths);

	if (!m->bad[0])
		m->reason[0] = '\0';
	m->took_us = (loop_now_ns() - t0) / 1000;
	smig_debug("event=measured components=%zu us=%llu bad=%s", m->self.ncomp,
		   (unsigned long long)m->took_us, m->bad[0] ? m->bad : "-");
	watch_all(w, paths, n);
	wd_measure_send(w);
}

void wd_measure_now(struct warden *w)
{
	measure(w);
}

static void on_debounce(void *arg)
{
	struct warden *w = arg;

	w->measure->debounce = NULL;
	measure(w);
}

static void on_inotify(void *arg, uint32_t events)
{
	struct warden *w = arg;
	struct wd_measure *m = w->measure;
	char buf[4096];

	(void)events;
	while (read(m->ino_fd, buf, sizeof(buf)) > 0)
		;
	if (m->debounce == NULL)
		(void)loop_timer_add(w->loop, DEBOUNCE_MS, on_debounce, w, &m->debounce);
}

char *wd_ivt_text(struct warden *w)
{
	char err[256], *text = NULL;
	size_t len;

	if (w->cfg.ivt_file[0] == '\0' ||
	    smig_file_read(w->cfg.ivt_file, SMIG_PM_DOC_MAX, &text, &len, err, sizeof(err)) < 0)
		return strdup("");
	return text;
}

/* Sends the IVT to the worker when it changed on disk. */
static void ivt_check(struct warden *w, bool force)
{
	struct wd_measure *m = w->measure;
	struct stat st;
	char *text;

	if (w->cfg.ivt_file[0] == '\0' || stat(w->cfg.ivt_file, &st) < 0)
		return;
	if (!force && st.st_mtim.tv_sec == m->ivt_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == m->ivt_mtime.tv_nsec)
		return;
	m->ivt_mtime = st.st_mtim;
	text = wd_ivt_text(w);
	if (text && smig_pm_build(&w->tx, SMIG_PM_EV_IVT, 0, text) == 0)
		wd_send(w, &w->tx, NULL, 0);
	free(text);
}

static void on_tick(void *arg)
{
	struct warden *w = arg;

	w->measure->tick = NULL;
	ivt_check(w, false);
	measure(w);
	(void)loop_timer_add(w->loop, (uint64_t)w->cfg.attest_interval_s * 1000, on_tick, w,
			     &w->measure->tick);
}

int wd_measure_open(struct warden *w)
{
	struct wd_measure *m = calloc(1, sizeof(*m));
	struct stat st;

	SMIG_ENSURE(m != NULL, SMIG_ENOMEM);
	m->ino_fd = -1;
	w->measure = m;
	if (w->cfg.tpm_tcti[0]) {
		char err[512];

		if (tpm_open(w->cfg.tpm_tcti, w->cfg.tpm_pcrs, w->cfg.ntpm_pcrs, &m->tpm, err,
			     sizeof(err)) < 0) {
			smig_err("event=tpm_failed tcti=%s reason=\"%s\"", w->cfg.tpm_tcti, err);
			return SMIG_EIO;
		}
		smig_info("event=tpm_open tcti=%s pcrs=%zu", w->cfg.tpm_tcti, w->cfg.ntpm_pcrs);
	}
	if (w->cfg.ivt_file[0] && stat(w->cfg.ivt_file, &st) == 0)
		m->ivt_mtime = st.st_mtim; /* the worker reads this one itself at its start */
	measure(w);
	return loop_timer_add(w->loop, (uint64_t)w->cfg.attest_interval_s * 1000, on_tick, w,
			      &m->tick);
}

void wd_measure_close(struct warden *w)
{
	struct wd_measure *m = w->measure;

	if (m == NULL)
		return;
	if (w->loop) {
		loop_watch_del(w->loop, m->ino_w);
		loop_timer_cancel(w->loop, m->tick);
		loop_timer_cancel(w->loop, m->debounce);
	}
	if (m->ino_fd >= 0)
		close(m->ino_fd);
	tpm_close(m->tpm);
	free(m);
	w->measure = NULL;
}

/*
 * The logs that go with a quote, read after it (a list that grew since
 * is longer than the quote covers; verifiers replay its prefix): into one
 * memory file for the worker, boot log first, their sizes and digests
 * into e.
 */
static int evidence_logs(const struct smig_config *cfg, struct smig_evidence *e,
			 struct wd_logs *logs, char *err, size_t errlen)
{
	const char *paths[2] = { cfg->tpm_event_log, cfg->tpm_ima_log };
	size_t total = 0;

	logs->fd = memfd_create("smig-attest-logs", MFD_CLOEXEC);
	if (logs->fd < 0) {
		snprintf(err, errlen, "memfd_create: %s", strerror(errno));
		return SMIG_EIO;
	}
	for (int i = 0; i < 2; i++) {
		uint8_t *data = NULL;
		size_t len = 0;

		if (paths[i][0] == '\0')
			continue;
		if (smig_file_read_stream(paths[i], SMIG_ATTEST_LOGS_MAX - total, &data, &len, err,
					  errlen) < 0) {
			/*
			 * evidence without that log still proves who this host is: its
			 * verifiers hold it untrusted, and its VMs can still leave
			 */
			smig_warn("event=attest_log_left_out path=%s reason=\"%s\"", paths[i], err);
			continue;
		}
		total += len;
		if (len > 0 && smig_file_write_all(logs->fd, data, len) < 0) {
			free(data);
			snprintf(err, errlen, "writing the logs: %s", strerror(errno));
			return SMIG_EIO;
		}
		if (i == 0 && len > 0) {
			SHA256(data, len, e->boot_sha256);
			e->boot_size = (uint32_t)len;
			e->has_boot_log = true;
			logs->boot_len = len;
		} else if (len > 0) {
			SHA256(data, len, e->ima_sha256);
			e->ima_size = (uint32_t)len;
			e->has_ima_log = true;
			logs->ima_len = len;
		}
		free(data);
	}
	return 0;
}

int wd_evidence(struct warden *w, const uint8_t *nonce, const uint8_t *binding,
		uint64_t free_mib, const uint8_t *own_fp, bool maintenance, struct wd_logs *logs,
		char **text, char *err, size_t errlen)
{
	struct smig_evidence e = w->measure->self;
	EVP_PKEY *key = wd_hostcert_key_for(w, own_fp);
	char fp[SMIG_FP_STR_LEN];
	struct timespec ts;

	if (key == NULL) {
		smig_fp_format(own_fp, fp);
		snprintf(err, errlen, "the session showed certificate %s, neither this host's now "
			 "nor the one before: no key to sign its evidence", fp);
		return SMIG_ENOENT;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	e.time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	memcpy(e.nonce, nonce, SMIG_NONCE_LEN);
	memcpy(e.binding, binding, SMIG_BINDING_LEN);
	e.free_mib = free_mib;
	e.maintenance = maintenance;
	/* the measurement's IMA digest was for the host's own check: these are the quote's */
	e.has_ima_log = e.has_boot_log = false;
	logs->fd = -1;
	logs->boot_len = logs->ima_len = 0;
	if (w->measure->tpm) {
		uint8_t extra[32];

		smig_quote_extra(nonce, binding, extra);
		if (tpm_quote(w->measure->tpm, extra, &e, err, errlen) < 0)
			smig_err("event=tpm_quote_failed reason=\"%s\"", err);
		else
			SMIG_GUARD(evidence_logs(&w->cfg, &e, logs, err, errlen));
	}
	return smig_evidence_sign(&e, key, text);
}

int wd_tpm_activate(struct warden *w, const char *blob_hex, const char *secret_hex,
		    uint8_t cred[SMIG_CRED_LEN], char *err, size_t errlen)
{
	uint8_t blob[SMIG_CRED_MAX], secret[SMIG_CRED_MAX];
	size_t bl = strlen(blob_hex) / 2, sl = strlen(secret_hex) / 2;

	if (w->measure->tpm == NULL) {
		snprintf(err, errlen, "%s has no host TPM (attestation.tpm)", w->cfg.host);
		return SMIG_ENOENT;
	}
	if (bl == 0 || bl > sizeof(blob) || sl == 0 || sl > sizeof(secret) ||
	    smig_unhex(blob_hex, blob, bl) < 0 || smig_unhex(secret_hex, secret, sl) < 0) {
		snprintf(err, errlen, "the credential is not hex of at most %d bytes", SMIG_CRED_MAX);
		return SMIG_EPROTO;
	}
	return tpm_activate(w->measure->tpm, blob, bl, secret, sl, cred, err, errlen);
}

/*
 * The proof an enrolment asks for, made here against our own TPM: a
 * credential for our AK that only the TPM with our EK opens.
 */
static int tpm_self_prove(struct host_tpm *tpm, char *err, size_t errlen)
{
	uint8_t cred[SMIG_CRED_LEN], back[SMIG_CRED_LEN];
	struct smig_credential c;
	int rc = RAND_bytes(cred, sizeof(cred)) == 1 ? 0 : SMIG_ECRYPTO;

	if (rc == 0)
		rc = smig_tpm_make_credential(tpm_ek(tpm), tpm_ak(tpm), cred, &c, err, errlen);
	if (rc == 0)
		rc = tpm_activate(tpm, c.blob, c.blob_len, c.secret, c.secret_len, back, err,
				  errlen);
	if (rc == 0 && CRYPTO_memcmp(cred, back, sizeof(cred)) != 0) {
		snprintf(err, errlen, "TPM: the credential came back changed");
		rc = SMIG_EAUTH;
	}
	return rc;
}

int wd_ivt_write(struct warden *w, const char *text, char *err, size_t errlen)
{
	struct smig_ivt ivt;

	if (w->cfg.ivt_file[0] == '\0') {
		snprintf(err, errlen, "no attestation.ivt in %s's config", w->cfg.host);
		return SMIG_ECONFIG;
	}
	SMIG_GUARD(smig_ivt_parse("the new IVT", text, strlen(text), &ivt, err, errlen));
	smig_ivt_clear(&ivt);
	if (smig_file_write_atomic(w->cfg.ivt_file, text, strlen(text), 0644) < 0) {
		snprintf(err, errlen, "%s: %s", w->cfg.ivt_file, strerror(errno));
		return SMIG_EIO;
	}
	ivt_check(w, true);
	return 0;
}

int wd_measure_print(const struct smig_config *cfg)
{
	static char paths[SMIG_COMPONENTS_MAX][PATH_MAX];
	struct smig_evidence e;
	char bad[SMIG_NAME_MAX + 1], err[512], hex[2 * SMIG_AK_LEN + 1], fp[SMIG_FP_STR_LEN];
	uint8_t fpb[SMIG_FP_LEN];
	json_t *comps = json_object(), *out;
	struct host_tpm *tpm = NULL;
	char *text;

	if (smig_tls_cert_fp(cfg->tls_cert, fpb) < 0) {
		fprintf(stderr, "smigd: cannot read %s\n", cfg->tls_cert);
		json_decref(comps);
		return SMIG_EIO;
	}
	if (cfg->tpm_tcti[0] &&
	    tpm_open(cfg->tpm_tcti, cfg->tpm_pcrs, cfg->ntpm_pcrs, &tpm, err, sizeof(err)) < 0) {
		fprintf(stderr, "smigd: %s\n", err);
		json_decref(comps);
		return SMIG_EIO;
	}
	(void)measure_into(cfg, tpm, &e, bad, err, sizeof(err), paths);
	if (bad[0]) {
		fprintf(stderr, "smigd: component %s cannot be measured: %s\n", bad, err);
		json_decref(comps);
		tpm_close(tpm);
		return SMIG_EIO;
	}
	for (size_t i = 0; i < e.ncomp; i++) {
		/* with an IMA list, PCR 10 is the list's to vouch for, not a golden value */
		if (smig_ivt_ima_pcr(&e, e.comp[i].name))
			continue;
		smig_hex(e.comp[i].sha256, SMIG_DIGEST_LEN, hex);
		json_object_set_new(comps, e.comp[i].name, json_string(hex));
	}
	smig_fp_format(fpb, fp);
	out = json_pack("{s:s,s:s,s:o}", "host", cfg->host, "fingerprint", fp, "components", comps);
	if (tpm) {
		char ek[2 * SMIG_EK_LEN + 1], ekfp[72];

		if (tpm_self_prove(tpm, err, sizeof(err)) < 0) {
			fprintf(stderr, "smigd: %s: the attestation key cannot be proven to live "
				"in this TPM: %s\n", cfg->tpm_tcti, err);
			json_decref(out);
			tpm_close(tpm);
			return SMIG_EIO;
		}
		smig_hex(tpm_ak(tpm), SMIG_AK_LEN, hex);
		smig_hex(tpm_ek(tpm), SMIG_EK_LEN, ek);
		smig_tpm_key_fp(tpm_ek(tpm), ekfp);
		json_object_set_new(out, "tpm", json_pack("{s:s,s:s,s:s}", "ek", ek, "ak", hex,
							  "ek_fingerprint", ekfp));
		tpm_close(tpm);
	}
	text = out ? json_dumps(out, JSON_COMPACT) : NULL;
	json_decref(out);
	if (text == NULL)
		return SMIG_ENOMEM;
	puts(text);
	free(text);
	return 0;
}
