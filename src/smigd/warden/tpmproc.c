/*
 * tpmproc.c - the host TPM in a process of its own (tpmproc.h).
 *
 * The warden forks it at start. The process opens the TPM (tpm.c), tells
 * the warden its EK, AK and EK certificate (READY), and then answers one
 * request at a time over a SOCK_SEQPACKET pair: the PCRs, a quote, the
 * activation of a credential. A TPM call takes milliseconds on swtpm and
 * up to hundreds on a hardware TPM; none of it runs in the warden, whose
 * loop goes on launching VMs and writing the audit log meanwhile. The
 * requests wait in the warden (at most TP_WAITING_MAX) and go to the
 * process one at a time, the next when the last is answered.
 *
 * A TPM that answers nothing for attestation.tpm.timeout_s while requests
 * wait is taken as hung: the process is killed, the waiting requests fail
 * naming the wait, and a new process opens the TPM again after a pause
 * (1 s, doubling up to 30 s while it keeps failing). The EK and AK are
 * primaries of the endorsement hierarchy: the new process has the same
 * keys, and says so (a change is logged as tpm_keys_changed).
 *
 * The process is a fork of the warden, not an exec: the messages are this
 * file's struct, checked for size and order all the same, and of what the
 * process answers only the TPM's part is taken (the PCR values, the quote,
 * the credential).
 */
#include "warden/tpmproc.h"
#include "common/loop.h"
#include "error.h"
#include "log.h"
#include "warden/tpm.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <syslog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define TP_WAITING_MAX 64
#define TP_BACKOFF_MAX_S 30

enum tp_op { TP_READY = 1, TP_PCRS, TP_QUOTE, TP_ACTIVATE };

struct tp_msg {
	uint32_t op, id;
	int32_t rc;
	char err[512];
	uint8_t extra[32];
	uint32_t blob_len, secret_len, cert_len;
	uint8_t blob[SMIG_CRED_MAX], secret[SMIG_CRED_MAX];
	uint8_t cred[SMIG_CRED_LEN];
	uint8_t ak[SMIG_AK_LEN], ek[SMIG_EK_LEN];
	uint8_t cert[SMIG_EK_CERT_MAX];
	struct smig_evidence e;
};

struct tp_wait {
	struct tp_wait *next;
	wd_tpm_fn fn;
	void *arg;
	struct tp_msg m; /* the request, until it is answered */
};

struct wd_tpm {
	struct loop *loop;
	char tcti[256];
	unsigned pcrs[24];
	size_t npcrs;
	unsigned timeout_s;
	pid_t pid;
	int fd;
	struct loop_watch *w;
	bool keys_known; /* ak and ek hold what a process said: a later one is held to them */
	uint8_t ak[SMIG_AK_LEN], ek[SMIG_EK_LEN];
	uint8_t cert[SMIG_EK_CERT_MAX];
	size_t cert_len;
	struct tp_wait *head, *tail; /* the head is with the process (in_flight) */
	size_t nwait;
	bool in_flight;
	uint32_t next_id;
	struct loop_timer *watchdog, *respawn;
	unsigned backoff_s;
	char why[256]; /* why there is no process now */
	void (*back)(void *arg); /* a new process holds the TPM again */
	void *back_arg;
	struct tp_msg msg;
};

/* --- the process --------------------------------------------------------------------- */

static void tp_answer(int fd, struct tp_msg *m)
{
	if (send(fd, m, sizeof(*m), MSG_NOSIGNAL) != (ssize_t)sizeof(*m))
		_exit(1);
}

static void tp_do(struct host_tpm *tpm, struct tp_msg *m)
{
	int rc;

	m->err[0] = '\0';
	switch (m->op) {
	case TP_PCRS: rc = tpm_pcrs(tpm, &m->e, m->err, sizeof(m->err)); break;
	case TP_QUOTE: rc = tpm_quote(tpm, m->extra, &m->e, m->err, sizeof(m->err)); break;
	case TP_ACTIVATE:
		rc = m->blob_len <= SMIG_CRED_MAX && m->secret_len <= SMIG_CRED_MAX
			     ? tpm_activate(tpm, m->blob, m->blob_len, m->secret, m->secret_len,
					    m->cred, m->err, sizeof(m->err))
			     : SMIG_EPROTO;
		break;
	default:
		rc = SMIG_EPROTO;
		snprintf(m->err, sizeof(m->err), "no such TPM request %u", m->op);
	}
	m->rc = rc;
}

__attribute__((noreturn)) static void tp_main(struct wd_tpm *t, int fd, pid_t parent)
{
	struct tp_msg *m = calloc(1, sizeof(*m));
	struct host_tpm *tpm = NULL;
	sigset_t none;

	/* the warden's signals come through its signalfd: here they act */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/*
	 * No PR_SET_PDEATHSIG: the warden daemonizes after this fork, and its
	 * parent's exit must not end us. The warden's end closes the socket,
	 * and the next recv ends us.
	 */
	(void)prctl(PR_SET_NAME, "smigd-tpm");
	if (getppid() != parent || m == NULL)
		_exit(1);
	/* nothing of the warden's but the log (stderr) and this socket */
	closelog(); /* its socket goes below: glibc must not write to the number */
	if (fd != 3 && (dup2(fd, 3) < 0 || close(fd) < 0))
		_exit(1);
	(void)close_range(4, ~0U, 0);
	fd = 3;
	m->op = TP_READY;
	m->rc = tpm_open(t->tcti, t->pcrs, t->npcrs, &tpm, m->err, sizeof(m->err));
	if (m->rc == 0) {
		size_t len = 0;

		memcpy(m->ak, tpm_ak(tpm), SMIG_AK_LEN);
		memcpy(m->ek, tpm_ek(tpm), SMIG_EK_LEN);
		/* the certificate is the maker's word on the EK: without it the TPM still serves */
		if (tpm_ek_cert(tpm, m->cert, sizeof(m->cert), &len, m->err, sizeof(m->err)) < 0) {
			smig_warn("event=tpm_ek_cert_unreadable reason=\"%s\"", m->err);
			len = 0;
			m->err[0] = '\0';
		}
		m->cert_len = (uint32_t)len;
	}
	tp_answer(fd, m);
	if (m->rc < 0)
		_exit(1);
	for (;;) {
		ssize_t n = recv(fd, m, sizeof(*m), 0);

		if (n == 0 || (n < 0 && errno != EINTR))
			break;
		if (n != (ssize_t)sizeof(*m))
			continue;
		tp_do(tpm, m);
		tp_answer(fd, m);
		OPENSSL_cleanse(m->cred, sizeof(m->cred));
	}
	tpm_close(tpm);
	_exit(0);
}

/* --- the warden's side --------------------------------------------------------------- */

static void on_msg(void *arg, uint32_t events);

static int spawn(struct wd_tpm *t, char *err, size_t errlen)
{
	pid_t parent = getpid();
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		return SMIG_EIO;
	}
	t->pid = fork();
	if (t->pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return SMIG_EIO;
	}
	if (t->pid == 0) {
		close(sv[0]);
		tp_main(t, sv[1], parent);
	}
	close(sv[1]);
	t->fd = sv[0];
	return 0;
}

/* The waiting requests, failed with why (their callbacks may ask again). */
static void fail_all(struct wd_tpm *t, const char *why)
{
	struct tp_wait *list = t->head;

	t->head = t->tail = NULL;
	t->nwait = 0;
	t->in_flight = false;
	while (list) {
		struct tp_wait *x = list;

		list = x->next;
		x->fn(x->arg, SMIG_EIO, why, NULL, NULL);
		free(x);
	}
}

static void on_respawn(void *arg);
static void lost(struct wd_tpm *t, const char *why);

/* The process is gone or hung: it ends, and a new one starts after a pause. */
static void lost(struct wd_tpm *t, const char *why)
{
	smig_err("event=tpm_process_lost pid=%d reason=\"%s\" action=restart_in_%us", (int)t->pid,
		 why, t->backoff_s);
	snprintf(t->why, sizeof(t->why), "%s", why);
	loop_watch_del(t->loop, t->w);
	t->w = NULL;
	loop_timer_cancel(t->loop, t->watchdog);
	t->watchdog = NULL;
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	if (t->pid > 0) { /* reaped here, or by the warden's SIGCHLD handler */
		kill(t->pid, SIGKILL);
		(void)waitpid(t->pid, NULL, WNOHANG);
	}
	t->pid = 0;
	if (t->respawn == NULL)
		(void)loop_timer_add(t->loop, (uint64_t)t->backoff_s * 1000, on_respawn, t,
				     &t->respawn);
	t->backoff_s = t->backoff_s * 2 > TP_BACKOFF_MAX_S ? TP_BACKOFF_MAX_S : t->backoff_s * 2;
	fail_all(t, t->why);
}

static void on_respawn(void *arg)
{
	struct wd_tpm *t = arg;
	char err[256] = "";

	t->respawn = NULL;
	if (spawn(t, err, sizeof(err)) < 0 ||
	    loop_watch_add(t->loop, t->fd, EPOLLIN, on_msg, t, &t->w) < 0) {
		lost(t, err[0] ? err : "cannot watch the TPM process");
		return;
	}
	smig_info("event=tpm_process_started pid=%d tcti=%s", (int)t->pid, t->tcti);
}

static void on_watchdog(void *arg)
{
	struct wd_tpm *t = arg;
	char why[256];

	t->watchdog = NULL;
	snprintf(why, sizeof(why),
		 "the TPM (%s) answered nothing in %u s (attestation.tpm.timeout_s)", t->tcti,
		 t->timeout_s);
	lost(t, why);
}

static void arm(struct wd_tpm *t)
{
	loop_timer_cancel(t->loop, t->watchdog);
	t->watchdog = NULL;
	if (t->in_flight)
		(void)loop_timer_add(t->loop, (uint64_t)t->timeout_s * 1000, on_watchdog, t,
				     &t->watchdog);
}

/* A process holds the TPM: its keys and certificate (a new process's compared with the last). */
static void took_keys(struct wd_tpm *t, const struct tp_msg *m)
{
	if (t->keys_known && (memcmp(t->ak, m->ak, SMIG_AK_LEN) != 0 ||
			 memcmp(t->ek, m->ek, SMIG_EK_LEN) != 0))
		smig_warn("event=tpm_keys_changed tcti=%s reason=\"the TPM answers with other "
			  "keys than at start: another TPM, or its seeds were cleared\"",
			  t->tcti);
	memcpy(t->ak, m->ak, SMIG_AK_LEN);
	memcpy(t->ek, m->ek, SMIG_EK_LEN);
	t->cert_len = m->cert_len <= sizeof(t->cert) ? m->cert_len : 0;
	memcpy(t->cert, m->cert, t->cert_len);
	t->keys_known = true;
	smig_info("event=tpm_ready pid=%d tcti=%s ek_cert=%s", (int)t->pid, t->tcti,
		  t->cert_len ? "yes" : "no");
}

/* The head of the queue goes to the process, unless one is there already. */
static void pump(struct wd_tpm *t)
{
	struct tp_wait *x = t->head;
	char why[128];

	if (x == NULL || t->in_flight || t->fd < 0)
		return;
	x->m.id = ++t->next_id;
	if (send(t->fd, &x->m, sizeof(x->m), MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof(x->m)) {
		snprintf(why, sizeof(why), "to the TPM process: %s", strerror(errno));
		lost(t, why);
		return;
	}
	t->in_flight = true;
	arm(t);
}

/* e with src's PCR components and quote: of a reply, only what the TPM said. */
static void tpm_part(struct smig_evidence *e, const struct smig_evidence *src)
{
	size_t n = 0;
	unsigned k;

	for (size_t i = 0; i < e->ncomp; i++)
		if (!smig_pcr_name(e->comp[i].name, &k))
			e->comp[n++] = e->comp[i];
	e->ncomp = n;
	for (size_t i = 0; i < src->ncomp && i < SMIG_COMPONENTS_MAX; i++) {
		struct smig_component c = src->comp[i];

		c.name[sizeof(c.name) - 1] = '\0';
		if (smig_pcr_name(c.name, &k) && e->ncomp < SMIG_COMPONENTS_MAX)
			e->comp[e->ncomp++] = c;
	}
	e->has_quote = src->has_quote && src->quote.attest_len <= SMIG_QUOTE_MAX;
	if (e->has_quote) {
		memcpy(e->quote.attest, src->quote.attest, src->quote.attest_len);
		e->quote.attest_len = src->quote.attest_len;
		memcpy(e->quote.sig, src->quote.sig, sizeof(e->quote.sig));
	}
}

static void on_msg(void *arg, uint32_t events)
{
	struct wd_tpm *t = arg;
	struct tp_msg *m = &t->msg;
	ssize_t n;

	(void)events;
	while ((n = recv(t->fd, m, sizeof(*m), MSG_DONTWAIT)) == (ssize_t)sizeof(*m)) {
		struct tp_wait *x = t->head;

		m->err[sizeof(m->err) - 1] = '\0';
		if (m->op == TP_READY) {
			if (m->rc < 0) {
				lost(t, m->err);
				return;
			}
			took_keys(t, m);
			t->backoff_s = 1;
			if (t->back)
				t->back(t->back_arg);
			if (t->fd < 0)
				return;
			pump(t);
			continue;
		}
		if (x == NULL || !t->in_flight || x->m.id != m->id || x->m.op != m->op) {
			lost(t, "the TPM process answered a request it was not asked");
			return;
		}
		t->head = x->next;
		if (t->head == NULL)
			t->tail = NULL;
		t->nwait--;
		t->in_flight = false;
		arm(t);
		if (m->op != TP_ACTIVATE)
			tpm_part(&x->m.e, &m->e);
		x->fn(x->arg, m->rc, m->err, &x->m.e, m->cred);
		OPENSSL_cleanse(m->cred, sizeof(m->cred));
		OPENSSL_cleanse(&x->m, sizeof(x->m));
		free(x);
		if (t->fd < 0) /* the callback's next request found it gone */
			return;
		pump(t);
	}
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		lost(t, n == 0 ? "the TPM process ended" : strerror(errno));
	else if (n > 0)
		lost(t, "the TPM process sent a message of the wrong size");
}

/* A new request, at the end of the queue; x is taken over (freed on an error). */
static int ask(struct wd_tpm *t, struct tp_wait *x, char *err, size_t errlen)
{
	if (t->fd < 0) {
		snprintf(err, errlen, "the TPM process is restarting: %s", t->why);
		free(x);
		return SMIG_EAGAIN;
	}
	if (t->nwait >= TP_WAITING_MAX) {
		snprintf(err, errlen, "the TPM is busy: %d requests wait", TP_WAITING_MAX);
		free(x);
		return SMIG_EBUSY;
	}
	if (t->tail)
		t->tail->next = x;
	else
		t->head = x;
	t->tail = x;
	t->nwait++;
	pump(t);
	return 0;
}

int wd_tpm_pcrs(struct wd_tpm *t, const struct smig_evidence *e, const uint8_t *extra,
		wd_tpm_fn fn, void *arg, char *err, size_t errlen)
{
	struct tp_wait *x = calloc(1, sizeof(*x));

	SMIG_ENSURE(x != NULL, SMIG_ENOMEM);
	x->fn = fn;
	x->arg = arg;
	x->m.op = extra ? TP_QUOTE : TP_PCRS;
	if (extra)
		memcpy(x->m.extra, extra, sizeof(x->m.extra));
	x->m.e = *e;
	return ask(t, x, err, errlen);
}

int wd_tpm_activate_cred(struct wd_tpm *t, const uint8_t *blob, size_t blob_len,
			 const uint8_t *secret, size_t secret_len, wd_tpm_fn fn, void *arg,
			 char *err, size_t errlen)
{
	struct tp_wait *x;

	if (blob_len > SMIG_CRED_MAX || secret_len > SMIG_CRED_MAX) {
		snprintf(err, errlen, "the credential is larger than %d bytes", SMIG_CRED_MAX);
		return SMIG_EPROTO;
	}
	x = calloc(1, sizeof(*x));
	SMIG_ENSURE(x != NULL, SMIG_ENOMEM);
	x->fn = fn;
	x->arg = arg;
	x->m.op = TP_ACTIVATE;
	memcpy(x->m.blob, blob, blob_len);
	memcpy(x->m.secret, secret, secret_len);
	x->m.blob_len = (uint32_t)blob_len;
	x->m.secret_len = (uint32_t)secret_len;
	return ask(t, x, err, errlen);
}

const uint8_t *wd_tpm_ak(const struct wd_tpm *t)
{
	return t->ak;
}

const uint8_t *wd_tpm_ek(const struct wd_tpm *t)
{
	return t->ek;
}

const uint8_t *wd_tpm_ek_cert(const struct wd_tpm *t, size_t *len)
{
	*len = t->cert_len;
	return t->cert_len ? t->cert : NULL;
}

/* At start the warden waits for the keys: without them it has nothing to measure with. */
static int wait_ready(struct wd_tpm *t, char *err, size_t errlen)
{
	struct pollfd p = { .fd = t->fd, .events = POLLIN };
	int r = poll(&p, 1, (int)t->timeout_s * 1000);
	ssize_t n;

	if (r == 0) {
		snprintf(err, errlen, "the TPM (%s) answered nothing in %u s "
			 "(attestation.tpm.timeout_s)", t->tcti, t->timeout_s);
		return SMIG_ETIMEDOUT;
	}
	n = r > 0 ? recv(t->fd, &t->msg, sizeof(t->msg), 0) : -1;
	if (n != (ssize_t)sizeof(t->msg) || t->msg.op != TP_READY) {
		snprintf(err, errlen, "the TPM process ended before it opened the TPM");
		return SMIG_EIO;
	}
	if (t->msg.rc < 0) {
		snprintf(err, errlen, "%s", t->msg.err);
		return t->msg.rc;
	}
	took_keys(t, &t->msg);
	return 0;
}

int wd_tpm_start(struct loop *loop, const struct smig_config *cfg, void (*back)(void *arg),
		 void *arg, struct wd_tpm **out, char *err, size_t errlen)
{
	struct wd_tpm *t = calloc(1, sizeof(*t));
	int rc;

	SMIG_ENSURE(t != NULL, SMIG_ENOMEM);
	t->loop = loop;
	t->back = back;
	t->back_arg = arg;
	t->fd = -1;
	t->backoff_s = 1;
	t->timeout_s = cfg->tpm_timeout_s ? cfg->tpm_timeout_s : 10;
	snprintf(t->tcti, sizeof(t->tcti), "%s", cfg->tpm_tcti);
	t->npcrs = cfg->ntpm_pcrs < 24 ? cfg->ntpm_pcrs : 24;
	memcpy(t->pcrs, cfg->tpm_pcrs, t->npcrs * sizeof(t->pcrs[0]));
	rc = spawn(t, err, errlen);
	if (rc == 0)
		rc = wait_ready(t, err, errlen);
	if (rc == 0)
		rc = loop_watch_add(loop, t->fd, EPOLLIN, on_msg, t, &t->w);
	if (rc < 0) {
		wd_tpm_stop(t);
		return rc;
	}
	*out = t;
	return 0;
}

void wd_tpm_stop(struct wd_tpm *t)
{
	if (t == NULL)
		return;
	loop_watch_del(t->loop, t->w);
	loop_timer_cancel(t->loop, t->watchdog);
	loop_timer_cancel(t->loop, t->respawn);
	if (t->fd >= 0)
		close(t->fd);
	if (t->pid > 0) { /* a child stuck in the TPM driver must not hold up the stop */
		kill(t->pid, SIGKILL);
		(void)waitpid(t->pid, NULL, WNOHANG);
	}
	while (t->head) {
		struct tp_wait *x = t->head;

		t->head = x->next;
		free(x);
	}
	free(t);
}
