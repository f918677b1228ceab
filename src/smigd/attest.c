/*
 * attest.c - this host's integrity and its view of its neighbours'.
 *
 * Measuring: the hypervisor stack (QEMU, swtpm, smigd's own binary, its
 * config, the running kernel's image when readable, and the components the
 * config adds) is hashed at start, whenever inotify reports a change to one
 * of the files, and every attestation.interval_s. The result is compared
 * with this host's own golden sets in the IVT; a host that fails its own
 * check logs it, audits it and (attestation.evacuate) moves its VMs away.
 *
 * Evidence is built from the last measurement, so answering a verifier
 * costs one signature, not a re-hash of QEMU. Every interval the host also
 * attests each neighbour over a fresh connection (peer.c does the
 * exchange; attest_check() records the verdict), so `smig hosts` and
 * evacuation know who is trustworthy now.
 */
#include "smigd.h"
#include "vm.h"
#include "error.h"
#include "file.h"
#include "log.h"
#include "migrate.h"
#include "sign.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define DEBOUNCE_MS 50

struct attest {
	struct smig_ivt ivt;
	struct timespec ivt_mtime;
	struct smig_evidence self; /* the last measurement (no nonce, no signature) */
	struct smig_verdict self_v;
	double measure_ms;
	int ino_fd;
	struct loop_watch *ino_w;
	struct loop_timer *tick;
	struct loop_timer *debounce;
	struct host_tpm *tpm; /* NULL without attestation.tpm */
	bool incomplete;      /* the last measurement missed a component */
};

static void on_inotify(void *arg, uint32_t events);

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
static size_t components(const struct smigd *d, char names[][SMIG_NAME_MAX + 1],
			 char paths[][PATH_MAX], size_t max)
{
	struct utsname u;
	size_t n = 0;

	snprintf(names[n], SMIG_NAME_MAX + 1, "qemu");
	(void)resolve(d->cfg.qemu_binary, paths[n++], PATH_MAX);
	snprintf(names[n], SMIG_NAME_MAX + 1, "swtpm");
	(void)resolve(d->cfg.swtpm_binary, paths[n++], PATH_MAX);
	snprintf(names[n], SMIG_NAME_MAX + 1, "smigd");
	if (realpath("/proc/self/exe", paths[n]) != NULL)
		n++;
	snprintf(names[n], SMIG_NAME_MAX + 1, "config");
	snprintf(paths[n++], PATH_MAX, "%s", d->cfg.path);
	if (uname(&u) == 0) {
		snprintf(paths[n], PATH_MAX, "/boot/vmlinuz-%s", u.release);
		snprintf(names[n], SMIG_NAME_MAX + 1, "kernel");
		if (access(paths[n], R_OK) == 0)
			n++;
	}
	for (size_t i = 0; i < d->cfg.ncomponents && n < max; i++, n++) {
		snprintf(names[n], SMIG_NAME_MAX + 1, "%s", d->cfg.components[i].name);
		snprintf(paths[n], PATH_MAX, "%s", d->cfg.components[i].path);
	}
	return n;
}

/* What admission control would let a new VM have here, not what the kernel has free. */
static uint64_t free_mib(struct smigd *d)
{
	struct vm_usage u;
	uint64_t taken;

	vm_res_usage(d, &u);
	taken = u.used_memory_mib + u.reserved_memory_mib;
	return u.memory_mib > taken ? u.memory_mib - taken : 0;
}

static void watch_all(struct smigd *d, char paths[][PATH_MAX], size_t n)
{
	struct attest *a = d->attest;

	if (a->ino_fd < 0)
		return;
	/* A fresh set of watches each time: files replaced by rename are new inodes. */
	loop_watch_del(d->loop, a->ino_w);
	close(a->ino_fd);
	a->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	a->ino_w = NULL;
	if (a->ino_fd < 0)
		return;
	for (size_t i = 0; i < n; i++)
		(void)inotify_add_watch(a->ino_fd, paths[i],
					IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_MOVE_SELF |
						IN_DELETE_SELF);
	(void)loop_watch_add(d->loop, a->ino_fd, EPOLLIN, on_inotify, d, &a->ino_w);
}

/* The self-check's outcome changed: say so, audit it, act on it. */
static void self_changed(struct smigd *d, const struct smig_verdict *old)
{
	const struct smig_verdict *v = &d->attest->self_v;

	if (v->kind == SMIG_VERDICT_UNTRUSTED && old->kind != SMIG_VERDICT_UNTRUSTED) {
		smig_err("event=integrity_failed host=%s component=%s reason=\"%s\"", d->cfg.host,
			 v->component[0] ? v->component : "-", v->reason);
		audit_write(d, "smigd", "host.integrity", d->cfg.host, "none", "-", "failed",
			    v->reason);
		if (d->cfg.evacuate)
			evac_start(d, v->reason, NULL, false);
	} else if (v->kind != SMIG_VERDICT_UNTRUSTED && old->kind == SMIG_VERDICT_UNTRUSTED) {
		smig_info("event=integrity_restored host=%s reason=\"%s\"", d->cfg.host, v->reason);
		audit_write(d, "smigd", "host.integrity", d->cfg.host, "none", "-", "restored",
			    v->reason);
	}
}

/*
 * Hashes every component into e (host and capabilities too). The first
 * component that cannot be read is named in bad and err; it is left out.
 */
static size_t measure_into(const struct smigd *d, struct host_tpm *tpm, struct smig_evidence *e,
			   char *bad, char *err, size_t errlen, char paths[][PATH_MAX])
{
	char names[SMIG_COMPONENTS_MAX][SMIG_NAME_MAX + 1];
	size_t n = components(d, names, paths, SMIG_COMPONENTS_MAX);
	char why[256];

	memset(e, 0, sizeof(*e));
	bad[0] = '\0';
	snprintf(e->host, sizeof(e->host), "%s", d->cfg.host);
	for (size_t i = 0; i < n; i++) {
		struct smig_component *c = &e->comp[e->ncomp];

		if (smig_measure_file(paths[i], c->sha256, why, sizeof(why)) < 0) {
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
		if (tpm_pcrs(tpm, e, why, sizeof(why)) < 0 && !bad[0]) {
			snprintf(bad, SMIG_NAME_MAX + 1, "tpm");
			snprintf(err, errlen, "%s", why);
		}
	}
	return n;
}

/* Measures, then checks the result against our own golden sets. */
static void measure_self(struct smigd *d)
{
	static char paths[SMIG_COMPONENTS_MAX][PATH_MAX];
	struct attest *a = d->attest;
	struct smig_verdict old = a->self_v;
	const struct smig_ivt_host *mine = smig_ivt_find(&a->ivt, d->cfg.host);
	char bad[SMIG_NAME_MAX + 1], err[256];
	uint64_t t0 = loop_now_ns();
	size_t n = measure_into(d, a->tpm, &a->self, bad, err, sizeof(err), paths);

	a->measure_ms = (double)(loop_now_ns() - t0) / 1e6;
	a->incomplete = bad[0] != '\0';
	memset(&a->self_v, 0, sizeof(a->self_v));
	if (bad[0]) {
		a->self_v.kind = SMIG_VERDICT_UNTRUSTED;
		snprintf(a->self_v.component, sizeof(a->self_v.component), "%s", bad);
		snprintf(a->self_v.reason, sizeof(a->self_v.reason),
			 "component %s cannot be measured: %s", bad, err);
	} else if (mine) {
		smig_ivt_match(mine, &a->self, &a->self_v);
	} else {
		a->self_v.kind = SMIG_VERDICT_ATTESTED;
		a->self_v.trust = SMIG_TRUST_ATTESTED;
		snprintf(a->self_v.reason, sizeof(a->self_v.reason),
			 "measured; the IVT has no golden values for %s", d->cfg.host);
	}
	a->self_v.authentic = true;
	smig_debug("event=measured components=%zu ms=%.1f verdict=%s", a->self.ncomp,
		   a->measure_ms, smig_verdict_name(a->self_v.kind));
	watch_all(d, paths, n);
	self_changed(d, &old);
}

static void on_debounce(void *arg)
{
	struct smigd *d = arg;

	d->attest->debounce = NULL;
	measure_self(d);
}

static void on_inotify(void *arg, uint32_t events)
{
	struct smigd *d = arg;
	struct attest *a = d->attest;
	char buf[4096];

	(void)events;
	while (read(a->ino_fd, buf, sizeof(buf)) > 0)
		;
	if (a->debounce == NULL)
		(void)loop_timer_add(d->loop, DEBOUNCE_MS, on_debounce, d, &a->debounce);
}

/* Loads the IVT when it changed on disk; a bad file keeps the old table. */
static void ivt_refresh(struct smigd *d, bool force)
{
	struct attest *a = d->attest;
	struct smig_ivt nv;
	struct stat st;
	char err[512];

	if (d->cfg.ivt_file[0] == '\0') {
		smig_ivt_clear(&a->ivt);
		return;
	}
	if (stat(d->cfg.ivt_file, &st) < 0 ||
	    (!force && st.st_mtim.tv_sec == a->ivt_mtime.tv_sec &&
	     st.st_mtim.tv_nsec == a->ivt_mtime.tv_nsec))
		return;
	if (smig_ivt_load(d->cfg.ivt_file, &nv, err, sizeof(err)) < 0) {
		smig_err("event=ivt_invalid reason=\"%s\" action=kept_previous", err);
		return;
	}
	smig_ivt_clear(&a->ivt);
	a->ivt = nv;
	a->ivt_mtime = st.st_mtim;
	smig_info("event=ivt_loaded file=%s hosts=%zu", d->cfg.ivt_file, a->ivt.n);
}

static void on_tick(void *arg)
{
	struct smigd *d = arg;
	struct attest *a = d->attest;

	a->tick = NULL;
	ivt_refresh(d, false);
	/*
	 * Hashing the stack takes ~20 ms of this loop; while a migration runs
	 * the periodic pass waits (a change still triggers one through inotify).
	 */
	if (mig_count(d) == 0)
		measure_self(d);
	for (size_t i = 0; i < d->hosts.n; i++)
		if (strcmp(d->hosts.v[i].name, d->cfg.host) != 0)
			peer_attest(d, d->hosts.v[i].name, NULL);
	(void)loop_timer_add(d->loop, (uint64_t)d->cfg.attest_interval_s * 1000, on_tick, d,
			     &a->tick);
}

int attest_init(struct smigd *d)
{
	struct attest *a = calloc(1, sizeof(*a));

	SMIG_ENSURE(a != NULL, SMIG_ENOMEM);
	d->attest = a;
	a->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (d->cfg.tpm_tcti[0]) {
		char err[512];

		if (tpm_open(d->cfg.tpm_tcti, d->cfg.tpm_pcrs, d->cfg.ntpm_pcrs, &a->tpm, err,
			     sizeof(err)) < 0) {
			smig_err("event=tpm_failed tcti=%s reason=\"%s\"", d->cfg.tpm_tcti, err);
			return SMIG_EIO;
		}
		smig_info("event=tpm_open tcti=%s pcrs=%zu", d->cfg.tpm_tcti, d->cfg.ntpm_pcrs);
	}
	ivt_refresh(d, true);
	measure_self(d);
	return loop_timer_add(d->loop, (uint64_t)d->cfg.attest_interval_s * 1000, on_tick, d,
			      &a->tick);
}

int attest_print_measurement(const struct smigd *d)
{
	static char paths[SMIG_COMPONENTS_MAX][PATH_MAX];
	struct smig_evidence e;
	char bad[SMIG_NAME_MAX + 1], err[512], hex[2 * SMIG_AK_LEN + 1], fp[SMIG_FP_STR_LEN];
	json_t *comps = json_object(), *out;
	struct host_tpm *tpm = NULL;
	char *text;

	if (d->cfg.tpm_tcti[0] && tpm_open(d->cfg.tpm_tcti, d->cfg.tpm_pcrs, d->cfg.ntpm_pcrs,
					   &tpm, err, sizeof(err)) < 0) {
		fprintf(stderr, "smigd: %s\n", err);
		json_decref(comps);
		return SMIG_EIO;
	}
	(void)measure_into(d, tpm, &e, bad, err, sizeof(err), paths);
	if (bad[0]) {
		fprintf(stderr, "smigd: component %s cannot be measured: %s\n", bad, err);
		json_decref(comps);
		tpm_close(tpm);
		return SMIG_EIO;
	}
	for (size_t i = 0; i < e.ncomp; i++) {
		smig_hex(e.comp[i].sha256, SMIG_DIGEST_LEN, hex);
		json_object_set_new(comps, e.comp[i].name, json_string(hex));
	}
	smig_fp_format(smig_tls_ctx_fp(d->tls), fp);
	out = json_pack("{s:s,s:s,s:o}", "host", d->cfg.host, "fingerprint", fp, "components",
			comps);
	if (tpm) {
		smig_hex(tpm_ak(tpm), SMIG_AK_LEN, hex);
		json_object_set_new(out, "ak", json_string(hex));
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

void attest_free(struct smigd *d)
{
	struct attest *a = d->attest;

	if (a == NULL)
		return;
	if (d->loop) {
		loop_watch_del(d->loop, a->ino_w);
		loop_timer_cancel(d->loop, a->tick);
		loop_timer_cancel(d->loop, a->debounce);
	}
	if (a->ino_fd >= 0)
		close(a->ino_fd);
	tpm_close(a->tpm);
	smig_ivt_clear(&a->ivt);
	free(a);
	d->attest = NULL;
}

void attest_reload(struct smigd *d)
{
	ivt_refresh(d, true);
	measure_self(d);
}

const struct smig_verdict *attest_self(const struct smigd *d)
{
	return &d->attest->self_v;
}

int attest_evidence(struct smigd *d, const uint8_t *nonce, const uint8_t *binding,
		    char **text)
{
	struct smig_evidence e = d->attest->self;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	e.time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	memcpy(e.nonce, nonce, SMIG_NONCE_LEN);
	memcpy(e.binding, binding, SMIG_BINDING_LEN);
	e.free_mib = free_mib(d);
	if (d->attest->tpm) {
		uint8_t extra[32];
		char err[512];

		smig_quote_extra(nonce, binding, extra);
		if (tpm_quote(d->attest->tpm, extra, &e, err, sizeof(err)) < 0)
			smig_err("event=tpm_quote_failed reason=\"%s\"", err);
	}
	return smig_evidence_sign(&e, d->host_key, text);
}

/* A neighbour's verdict changed: log and audit the change. */
static void peer_changed(struct smigd *d, const char *host, const struct smig_verdict *old,
			 const struct smig_verdict *v)
{
	if (old->kind == v->kind)
		return;
	if (v->kind == SMIG_VERDICT_UNTRUSTED) {
		smig_warn("event=host_untrusted host=%s component=%s reason=\"%s\"", host,
			  v->component[0] ? v->component : "-", v->reason);
		audit_write(d, "smigd", "host.attest", host, "none", "-", "untrusted", v->reason);
	} else {
		smig_info("event=host_verdict host=%s verdict=%s reason=\"%s\"", host,
			  smig_verdict_name(v->kind), v->reason);
		audit_write(d, "smigd", "host.attest", host, "none", "-",
			    smig_verdict_name(v->kind), v->reason);
	}
}

void attest_check(struct smigd *d, const struct smig_attest_ctx *x, const char *text,
		  size_t len, struct smig_verdict *v)
{
	struct host_state *hs = smigd_host_state(d, x->host);
	struct smig_evidence e;
	char err[256];

	if (smig_evidence_parse(text, len, &e, err, sizeof(err)) < 0) {
		memset(v, 0, sizeof(*v));
		v->kind = SMIG_VERDICT_UNTRUSTED;
		snprintf(v->reason, sizeof(v->reason), "malformed evidence: %s", err);
	} else {
		smig_attest_verify(&d->attest->ivt, &e, x, v);
	}
	if (hs == NULL)
		return;
	peer_changed(d, x->host, &hs->verdict, v);
	hs->verdict = *v;
	hs->trust = v->trust;
	hs->attested_at = time(NULL);
	if (v->authentic)
		hs->evidence = e;
}

json_t *attest_verdict_json(const struct smig_verdict *v, time_t at)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:I}", "verdict", smig_verdict_name(v->kind), "trust",
			 smig_trust_name(v->trust), "reason", v->reason, "component",
			 v->component, "attested_at", (json_int_t)at);
}

json_t *attest_self_json(const struct smigd *d)
{
	const struct attest *a = d->attest;
	json_t *o = attest_verdict_json(&a->self_v, time(NULL));

	json_object_set_new(o, "components", json_integer((json_int_t)a->self.ncomp));
	json_object_set_new(o, "measure_ms", json_real(a->measure_ms));
	return o;
}

const struct smig_ivt *attest_ivt(const struct smigd *d)
{
	return &d->attest->ivt;
}

const struct smig_evidence *attest_measurement(const struct smigd *d)
{
	return &d->attest->self;
}

bool attest_complete(const struct smigd *d)
{
	return !d->attest->incomplete;
}
