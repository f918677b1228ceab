/*
 * certs.c - how near the certificates this worker deals with are to their
 * end (smigd.h, "certs.c"): this host's and the cluster CA's, looked at
 * when the worker starts, after each reload and once a day; a peer's, when
 * its handshake succeeds, said at most once a day per host and
 * certificate. Within tls.warn_days of its notAfter a certificate is
 * logged as event=cert_expiring (a warning), past it as event=cert_expired
 * (an error); each line says what to do. The decision is the library's
 * (smig_cert_expiry); this file only says it.
 */
#include "core/smigd.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

#define CERTS_DAY_MS (24ULL * 3600 * 1000)
#define CERTS_PEER_EVERY_S ((time_t)24 * 3600)

static const char *fix_for(const char *which)
{
	if (strcmp(which, "ca") == 0)
		return "every host's certificate fails with the CA: make a new cluster CA (smig "
		       "pki init), re-issue the hosts' certificates with it and put it in tls.ca";
	if (strcmp(which, "host") == 0)
		return "renew it: smig pki csr DIR/next HOST on this host, smig pki sign on the "
		       "CA's host, the new fingerprint as next_fingerprint in the host table, "
		       "then the new files in place and systemctl reload smigd";
	return "the peer's certificate: renew it on that host";
}

/* Logs ci if it is near its end or past it; returns what smig_cert_expiry says. */
static enum smig_cert_expiry say(const struct smigd *d, const char *which, const char *host,
				 const struct smig_cert_info *ci, time_t now)
{
	char fp[SMIG_FP_STR_LEN], until[32];
	long days;
	enum smig_cert_expiry x = smig_cert_expiry(ci, now, d->cfg.tls_warn_days, &days);

	if (x == SMIG_CERT_OK)
		return x;
	smig_fp_format(ci->fp, fp);
	smig_cert_time(ci->not_after, until);
	if (x == SMIG_CERT_EXPIRED)
		smig_err("event=cert_expired cert=%s host=%s subject=\"%s\" fingerprint=%s "
			 "not_after=%s days_left=%ld fix=\"%s\"",
			 which, host, ci->subject, fp, until, days, fix_for(which));
	else
		smig_warn("event=cert_expiring cert=%s host=%s subject=\"%s\" fingerprint=%s "
			  "not_after=%s days_left=%ld warn_days=%d fix=\"%s\"",
			  which, host, ci->subject, fp, until, days, d->cfg.tls_warn_days,
			  fix_for(which));
	return x;
}

void certs_check(struct smigd *d)
{
	time_t now = time(NULL);

	if (d->tls == NULL)
		return;
	(void)say(d, "host", d->cfg.host, smig_tls_ctx_cert(d->tls), now);
	(void)say(d, "ca", d->cfg.host, smig_tls_ctx_ca(d->tls), now);
}

static void on_day(void *arg)
{
	struct smigd *d = arg;

	d->certs_t = NULL;
	certs_check(d);
	(void)loop_timer_add(d->loop, CERTS_DAY_MS, on_day, d, &d->certs_t);
}

int certs_start(struct smigd *d)
{
	certs_check(d);
	return loop_timer_add(d->loop, CERTS_DAY_MS, on_day, d, &d->certs_t);
}

void certs_stop(struct smigd *d)
{
	if (d->loop)
		loop_timer_cancel(d->loop, d->certs_t);
	d->certs_t = NULL;
}

void certs_peer(struct smigd *d, const char *host, const struct smig_cert_info *ci)
{
	struct host_state *hs = smigd_host_state(d, host);
	time_t now = time(NULL);
	long days;

	if (hs == NULL || smig_cert_expiry(ci, now, d->cfg.tls_warn_days, &days) == SMIG_CERT_OK)
		return;
	/* once a day per host and certificate: a busy peer is not a flood of lines */
	if (hs->cert_warned && now - hs->cert_warned < CERTS_PEER_EVERY_S &&
	    memcmp(hs->cert_warned_fp, ci->fp, SMIG_FP_LEN) == 0)
		return;
	hs->cert_warned = now;
	memcpy(hs->cert_warned_fp, ci->fp, SMIG_FP_LEN);
	(void)say(d, "peer", host, ci, now);
}
