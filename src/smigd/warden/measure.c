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
 * verifier's nonce and the session, signed with the host key. The TPM
 * lives in a process of its own (tpmproc.c): PCR reads, quotes and
 * activations answer through callbacks, and the warden never waits.
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
#include "warden/tpmproc.h"

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
	/* the one being made: its files are hashed, the TPM's PCRs are awaited */
	struct smig_evidence next;
	char next_bad[SMIG_NAME_MAX + 1];
	char next_reason[256];
	uint64_t t0;
	bool busy, again;
	bool whole; /* self is a whole measurement (the TPM's PCRs too) */
	int ino_fd;
	struct loop_watch *ino_w;
	struct loop_timer *tick;
	struct loop_timer *debounce;
	struct wd_tpm *tpm; /* NULL without attestation.tpm */
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

/* The TPM's keys and EK certificate as a measurement shows them. */
struct tpm_keys {
	const uint8_t *ak, *ek; /* NULL without a TPM */
	const uint8_t *cert;
	size_t cert_len;
};

/*
 * Hashes every component into e (host and capabilities too). The first
 * component that cannot be read is named in bad and err; it is left out.
 */
static size_t measure_into(const struct smig_config *cfg, const struct tpm_keys *tpm,
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
	if (tpm->ak && tpm->ek) {
		snprintf(e->caps[e->ncaps++], sizeof(e->caps[0]), "tpm2");
		e->has_tpm = true;
		memcpy(e->quote.ak, tpm->ak, SMIG_AK_LEN);
		memcpy(e->ek, tpm->ek, SMIG_EK_LEN);
		e->ek_cert_len = tpm->cert && tpm->cert_len <= sizeof(e->ek_cert) ? tpm->cert_len : 0;
		if (e->ek_cert_len)
			memcpy(e->ek_cert, tpm->cert, e->ek_cert_len);
		if (cfg->tpm_ima_log[0] && log_digest(cfg->tpm_ima_log, &e->ima_size,
						       e->ima_sha256, why, sizeof(why)) == 0)
			e->has_ima_log = true; /* its PCR 10 is the list's, not a golden value */
		else if (cfg->tpm_ima_log[0] && !bad[0]) {
			snprintf(bad, SMIG_NAME_MAX + 1, "ima");
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

	if (!m->whole) /* the first is still with the TPM: measured() sends it */
		return;
	/* signed like evidence, so the worker parses it with the same strict parser */
	if (smig_evidence_sign(&e, w->host_key, &text) < 0)
		return;
	if (smig_pm_build(&w->tx, SMIG_PM_EV_MEASURED, 0, text, m->bad[0] ? m->bad : "-",
			  m->reason, m->took_us) == 0)
		wd_send(w, &w->tx, NULL, 0);
	free(text);
}

static void measure(struct warden *w);
static void on_debounce(void *arg);

/* The measurement is whole: it goes to the worker, and the next one starts if one was asked. */
static void measured(struct warden *w, const struct smig_evidence *e, const char *tpm_err)
{
	struct wd_measure *m = w->measure;

	m->self = e ? *e : m->next;
	memcpy(m->bad, m->next_bad, sizeof(m->bad));
	memcpy(m->reason, m->next_reason, sizeof(m->reason));
	if (tpm_err && !m->bad[0]) {
		snprintf(m->bad, sizeof(m->bad), "tpm");
		snprintf(m->reason, sizeof(m->reason), "%s", tpm_err);
	}
	if (!m->bad[0])
		m->reason[0] = '\0';
	m->took_us = (loop_now_ns() - m->t0) / 1000;
	m->busy = false;
	m->whole = true;
	smig_debug("event=measured components=%zu us=%llu bad=%s", m->self.ncomp,
		   (unsigned long long)m->took_us, m->bad[0] ? m->bad : "-");
	wd_measure_send(w);
	if (m->again && m->debounce == NULL) /* asked meanwhile: from the loop, right away */
		(void)loop_timer_add(w->loop, 0, on_debounce, w, &m->debounce);
	m->again = false;
}

static void on_pcrs(void *arg, int rc, const char *err, const struct smig_evidence *e,
		    const uint8_t *cred)
{
	(void)cred;
	measured(arg, rc == 0 ? e : NULL, rc == 0 ? NULL : err);
}

static void measure(struct warden *w)
{
	static char paths[SMIG_COMPONENTS_MAX][PATH_MAX];
	struct wd_measure *m = w->measure;
	struct tpm_keys keys = { 0 };
	char err[256];
	size_t n;
	int rc;

	if (m->busy) { /* the TPM still reads the last one's PCRs */
		m->again = true;
		return;
	}
	m->t0 = loop_now_ns();
	if (m->tpm) {
		keys.ak = wd_tpm_ak(m->tpm);
		keys.ek = wd_tpm_ek(m->tpm);
		keys.cert = wd_tpm_ek_cert(m->tpm, &keys.cert_len);
	}
	n = measure_into(&w->cfg, &keys, &m->next, m->next_bad, m->next_reason,
			 sizeof(m->next_reason), paths);
	watch_all(w, paths, n);
	if (!m->whole) /* until the first is whole: what evidence starts from */
		m->self = m->next;
	if (m->tpm == NULL) {
		measured(w, NULL, NULL);
		return;
	}
	m->busy = true;
	rc = wd_tpm_pcrs(m->tpm, &m->next, NULL, on_pcrs, w, err, sizeof(err));
	if (rc == SMIG_EBUSY) { /* requests queue up: the last measurement stands, the next tick tries */
		smig_warn("event=measurement_deferred reason=\"%s\"", err);
		m->busy = false;
	} else if (rc < 0) {
		measured(w, NULL, err);
	}
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

/* A new TPM process holds the TPM again: measure now, not at the next tick. */
static void tpm_back(void *arg)
{
	measure(arg);
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

		if (wd_tpm_start(w->loop, &w->cfg, tpm_back, w, &m->tpm, err, sizeof(err)) < 0) {
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
	wd_tpm_stop(m->tpm);
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

/* One evidence on its way: what it answers, and the measurement it starts from. */
struct ev_req {
	struct warden *w;
	pid_t worker; /* the worker that asked: a later one's ids are not its */
	uint32_t id;
	uint8_t own_fp[SMIG_FP_LEN];
	wd_evidence_fn done;
	struct smig_evidence e;
};

/* Signs the evidence (quoted: with the TPM's quote and the logs after it) and answers. */
static void ev_finish(struct ev_req *r, const struct smig_evidence *quoted)
{
	struct warden *w = r->w;
	struct wd_logs logs = { .fd = -1 };
	struct smig_evidence e = quoted ? *quoted : r->e;
	EVP_PKEY *key = wd_hostcert_key_for(w, r->own_fp);
	char err[512] = "", fp[SMIG_FP_STR_LEN], *text = NULL;
	int rc = 0;

	if (w->worker_pid != r->worker) { /* it restarted meanwhile: nobody waits */
		free(r);
		return;
	}
	if (key == NULL) { /* the certificate changed while the TPM quoted */
		smig_fp_format(r->own_fp, fp);
		snprintf(err, sizeof(err), "the session showed certificate %s, neither this host's "
			 "now nor the one before: no key to sign its evidence", fp);
		rc = SMIG_ENOENT;
	}
	if (rc == 0 && quoted)
		rc = evidence_logs(&w->cfg, &e, &logs, err, sizeof(err));
	if (rc == 0)
		rc = smig_evidence_sign(&e, key, &text);
	r->done(w, r->id, rc, err, text, &logs);
	if (logs.fd >= 0)
		close(logs.fd);
	free(text);
	free(r);
}

static void on_quote(void *arg, int rc, const char *err, const struct smig_evidence *e,
		     const uint8_t *cred)
{
	(void)cred;
	if (rc < 0) /* evidence without a quote still says who this host is: at most unverified */
		smig_err("event=tpm_quote_failed reason=\"%s\"", err);
	ev_finish(arg, rc == 0 ? e : NULL);
}

void wd_evidence(struct warden *w, uint32_t id, const uint8_t *nonce, const uint8_t *binding,
		 uint64_t free_mib, const uint8_t *own_fp, bool maintenance, wd_evidence_fn done)
{
	struct ev_req *r = calloc(1, sizeof(*r));
	struct wd_logs none = { .fd = -1 };
	struct timespec ts;
	uint8_t extra[32];
	char err[512];
	int rc;

	if (r == NULL) {
		done(w, id, SMIG_ENOMEM, "out of memory", NULL, &none);
		return;
	}
	r->w = w;
	r->worker = w->worker_pid;
	r->id = id;
	r->done = done;
	memcpy(r->own_fp, own_fp, SMIG_FP_LEN);
	r->e = w->measure->self;
	clock_gettime(CLOCK_REALTIME, &ts);
	r->e.time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	memcpy(r->e.nonce, nonce, SMIG_NONCE_LEN);
	memcpy(r->e.binding, binding, SMIG_BINDING_LEN);
	r->e.free_mib = free_mib;
	r->e.maintenance = maintenance;
	/* the measurement's IMA digest was for the host's own check: these are the quote's */
	r->e.has_ima_log = r->e.has_boot_log = false;
	if (w->measure->tpm == NULL || wd_hostcert_key_for(w, own_fp) == NULL) {
		ev_finish(r, NULL);
		return;
	}
	smig_quote_extra(nonce, binding, extra);
	rc = wd_tpm_pcrs(w->measure->tpm, &r->e, extra, on_quote, r, err, sizeof(err));
	if (rc == SMIG_EBUSY) {
		/*
		 * too many quotes wait (a flood of sessions): no evidence rather than
		 * evidence without a quote, which its verifier would hold untrusted
		 */
		smig_warn("event=evidence_deferred reason=\"%s\"", err);
		r->done(w, id, rc, err, NULL, &none);
		free(r);
	} else if (rc < 0) {
		on_quote(r, SMIG_EIO, err, NULL, NULL);
	}
}

/* One activation on its way. */
struct act_req {
	struct warden *w;
	pid_t worker;
	uint32_t id;
	wd_activate_fn done;
};

static void on_activated(void *arg, int rc, const char *err, const struct smig_evidence *e,
			 const uint8_t *cred)
{
	struct act_req *r = arg;

	(void)e;
	if (r->w->worker_pid == r->worker)
		r->done(r->w, r->id, rc, err, cred);
	free(r);
}

void wd_tpm_activate(struct warden *w, uint32_t id, const char *blob_hex,
		     const char *secret_hex, wd_activate_fn done)
{
	uint8_t blob[SMIG_CRED_MAX], secret[SMIG_CRED_MAX];
	size_t bl = strlen(blob_hex) / 2, sl = strlen(secret_hex) / 2;
	struct act_req *r;
	char err[512];

	if (w->measure->tpm == NULL) {
		snprintf(err, sizeof(err), "%s has no host TPM (attestation.tpm)", w->cfg.host);
		done(w, id, SMIG_ENOENT, err, NULL);
		return;
	}
	if (bl == 0 || bl > sizeof(blob) || sl == 0 || sl > sizeof(secret) ||
	    smig_unhex(blob_hex, blob, bl) < 0 || smig_unhex(secret_hex, secret, sl) < 0) {
		snprintf(err, sizeof(err), "the credential is not hex of at most %d bytes",
			 SMIG_CRED_MAX);
		done(w, id, SMIG_EPROTO, err, NULL);
		return;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		done(w, id, SMIG_ENOMEM, "out of memory", NULL);
		return;
	}
	*r = (struct act_req){ .w = w, .worker = w->worker_pid, .id = id, .done = done };
	if (wd_tpm_activate_cred(w->measure->tpm, blob, bl, secret, sl, on_activated, r, err,
				 sizeof(err)) < 0)
		on_activated(r, SMIG_EIO, err, NULL, NULL);
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
	struct tpm_keys keys = { 0 };
	static uint8_t cert[SMIG_EK_CERT_MAX];
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
	if (tpm) {
		keys.ak = tpm_ak(tpm);
		keys.ek = tpm_ek(tpm);
		if (tpm_ek_cert(tpm, cert, sizeof(cert), &keys.cert_len, err, sizeof(err)) < 0) {
			fprintf(stderr, "smigd: %s\n", err);
			json_decref(comps);
			tpm_close(tpm);
			return SMIG_EIO;
		}
		keys.cert = cert;
	}
	(void)measure_into(cfg, &keys, &e, bad, err, sizeof(err), paths);
	if (tpm && !bad[0] && tpm_pcrs(tpm, &e, err, sizeof(err)) < 0)
		snprintf(bad, sizeof(bad), "tpm");
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
		if (keys.cert_len > 0)
			json_object_set_new(json_object_get(out, "tpm"), "ek_cert",
					    smig_json_hex(cert, keys.cert_len));
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
