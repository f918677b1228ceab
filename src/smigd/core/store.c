/*
 * store.c - the fleet store (store.backend): with "files" there is none
 * beyond this host's own files; with "etcd" this host is a member of the
 * fleet's view in etcd (docs/architecture.md, "The fleet store").
 *
 * Membership: a record at PREFIX/hosts/NAME (name, address, certificate
 * fingerprint, version, start) bound to a lease of store.lease_ttl_s that
 * this host renews every third of it. Should smigd stop without a word,
 * the lease runs out and etcd drops the record; a clean stop revokes the
 * lease, and the record goes at once. A lease that expired all the same
 * (etcd unreachable longer than its TTL) is granted anew and the record
 * written again. The fleet's members are read back at every renewal.
 *
 * etcd's calls block, so they run on a thread of their own. It shares
 * with the loop only what sits under the mutex: the members last read and
 * how the store answered; the loop looks once a second and logs the
 * changes (the thread logs nothing).
 */
#include "core/smigd.h"
#include "error.h"
#include "etcd.h"
#include "file.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STORE_RETRY_MS 500
#define STORE_TICK_MS 1000

struct store {
	struct smigd *d;
	struct smig_etcd *etcd;
	pthread_t th;
	bool started;
	char key[SMIG_STORE_PREFIX_MAX + 16 + SMIG_NAME_MAX];
	char prefix[SMIG_STORE_PREFIX_MAX + 16]; /* PREFIX/hosts/ */
	char *record;
	int ttl_s;
	struct loop_timer *tick;
	/* shared with the thread, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	bool up;             /* the last call was answered */
	bool registered;     /* our record is there under a live lease */
	int64_t lease;       /* 0: none */
	int64_t lease_ttl;   /* what etcd said was left of it at the last renewal */
	uint64_t renewed_ms; /* loop_now_ms() of the last renewal (or grant) */
	uint64_t read_ms;    /* ... of the last read of the members */
	uint64_t since_ms;   /* ... since when up or down */
	char endpoint[SMIG_STORE_URL_MAX + 1];
	char error[512];
	json_t *members;     /* the records read, each with its "lease" */
	unsigned grants;     /* leases granted: more than one means one was lost */
	bool revoked;        /* set by the thread as it ends, read after the join */
	/* the loop's own: what it last logged */
	bool was_up, was_registered, logged_once;
	unsigned was_grants;
};

static void set_error(struct store *s, const char *err)
{
	pthread_mutex_lock(&s->mu);
	if (s->up)
		s->since_ms = loop_now_ms();
	s->up = false;
	snprintf(s->error, sizeof(s->error), "%s", err);
	pthread_mutex_unlock(&s->mu);
}

/* The members under PREFIX/hosts/: each record as written, with its lease. */
static json_t *read_members(struct store *s, char *err, size_t errlen)
{
	struct smig_etcd_kvs k;
	json_t *arr;

	if (smig_etcd_get(s->etcd, s->prefix, true, 0, &k, err, errlen) < 0)
		return NULL;
	arr = json_array();
	for (size_t i = 0; arr && i < k.n; i++) {
		json_t *rec = json_loadb((const char *)k.v[i].value, k.v[i].value_len, 0, NULL);

		if (!json_is_object(rec)) { /* somebody else's: shown as such, never trusted */
			json_decref(rec);
			rec = json_pack("{s:s}", "invalid", "not a JSON object");
		}
		(void)json_object_set_new(rec, "key", json_string(k.v[i].key));
		(void)json_object_set_new(rec, "lease", json_integer(k.v[i].lease));
		(void)json_object_set_new(rec, "mod_revision", json_integer(k.v[i].mod_revision));
		(void)json_array_append_new(arr, rec);
	}
	smig_etcd_kvs_free(&k);
	return arr;
}

/* One round: a lease and our record if we have none, else a renewal; then the members. */
static void round_once(struct store *s, bool *ok)
{
	char err[512];
	int64_t lease, ttl = 0;
	bool fresh = false;
	json_t *members;

	pthread_mutex_lock(&s->mu);
	lease = s->lease;
	pthread_mutex_unlock(&s->mu);
	*ok = false;
	if (lease) {
		if (smig_etcd_lease_keepalive(s->etcd, lease, &ttl, err, sizeof(err)) < 0) {
			set_error(s, err);
			return;
		}
		if (ttl == 0) { /* it ran out while we could not renew it: start again */
			pthread_mutex_lock(&s->mu);
			s->lease = 0;
			s->registered = false;
			pthread_mutex_unlock(&s->mu);
			lease = 0;
		}
	}
	if (lease == 0) {
		if (smig_etcd_lease_grant(s->etcd, s->ttl_s, &lease, &ttl, err, sizeof(err)) < 0 ||
		    smig_etcd_put(s->etcd, s->key, s->record, strlen(s->record), lease, NULL, err,
				  sizeof(err)) < 0) {
			set_error(s, err);
			return;
		}
		fresh = true;
	}
	pthread_mutex_lock(&s->mu);
	if (!s->up)
		s->since_ms = loop_now_ms();
	s->up = true;
	s->lease = lease;
	s->lease_ttl = ttl;
	s->renewed_ms = loop_now_ms();
	s->registered = true;
	s->grants += fresh;
	snprintf(s->endpoint, sizeof(s->endpoint), "%s", smig_etcd_endpoint(s->etcd));
	pthread_mutex_unlock(&s->mu);
	members = read_members(s, err, sizeof(err));
	if (members == NULL) {
		set_error(s, err);
		return;
	}
	pthread_mutex_lock(&s->mu);
	json_decref(s->members);
	s->members = members;
	s->read_ms = loop_now_ms();
	s->error[0] = '\0';
	pthread_mutex_unlock(&s->mu);
	*ok = true;
}

static void *store_thread(void *arg)
{
	struct store *s = arg;
	char err[256];

	pthread_mutex_lock(&s->mu);
	while (!s->stop) {
		struct timespec until;
		uint64_t wait_ms;
		bool ok;

		pthread_mutex_unlock(&s->mu);
		round_once(s, &ok);
		/* renew at a third of the lease; after a failure, again soon */
		wait_ms = ok ? (uint64_t)s->ttl_s * 1000 / 3 : STORE_RETRY_MS;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += (time_t)(wait_ms / 1000);
		until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&s->mu);
		while (!s->stop && pthread_cond_timedwait(&s->cv, &s->mu, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&s->mu);
	/* a clean stop: our record goes now, not when the lease would run out */
	if (s->lease && smig_etcd_lease_revoke(s->etcd, s->lease, err, sizeof(err)) == 0)
		s->revoked = true;
	return NULL;
}

/* Once a second: what changed since the last look goes to the log. */
static void store_tick(void *arg)
{
	struct store *s = arg;
	bool up, reg;
	unsigned grants;
	char ep[sizeof(s->endpoint)], err[sizeof(s->error)];
	int64_t lease;

	s->tick = NULL;
	pthread_mutex_lock(&s->mu);
	up = s->up;
	reg = s->registered;
	grants = s->grants;
	lease = s->lease;
	memcpy(ep, s->endpoint, sizeof(ep));
	memcpy(err, s->error, sizeof(err));
	pthread_mutex_unlock(&s->mu);
	if (reg && grants != s->was_grants)
		smig_info("event=store_registered key=%s lease=%" PRId64 " ttl_s=%d endpoint=%s%s",
			  s->key, lease, s->ttl_s, ep,
			  s->was_grants ? " again=yes reason=\"the lease had run out\"" : "");
	if (!up && err[0] && (s->was_up || !s->logged_once))
		smig_warn("event=store_unreachable backend=etcd reason=\"%s\" action=retry_every_%dms",
			  err, STORE_RETRY_MS);
	else if (up && !s->was_up && s->logged_once)
		smig_info("event=store_reachable backend=etcd endpoint=%s", ep);
	s->logged_once = s->logged_once || up || err[0];
	s->was_up = up;
	s->was_registered = reg;
	s->was_grants = grants;
	(void)loop_timer_add(s->d->loop, STORE_TICK_MS, store_tick, s, &s->tick);
}

/* The record this host keeps in the store. */
static char *host_record(struct smigd *d)
{
	char fp[SMIG_FP_STR_LEN];
	json_t *o;
	char *text;

	smig_fp_format(smig_tls_ctx_fp(d->tls), fp);
	o = json_pack("{s:s,s:s,s:i,s:s,s:s,s:I}", "name", d->cfg.host, "address",
		      d->cfg.listen_addr, "port", (int)d->cfg.listen_port, "fingerprint", fp,
		      "version", SMIG_VERSION, "started", (json_int_t)d->started);
	text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	return text;
}

int store_init(struct smigd *d)
{
	const struct smig_config *c = &d->cfg;
	struct smig_etcd_cfg ec = { 0 };
	struct store *s;
	char err[512];
	char *ca = NULL, *cert = NULL, *key = NULL;
	size_t n;
	int rc;

	if (!c->store_etcd)
		return 0;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return SMIG_ENOMEM;
	s->d = d;
	s->ttl_s = c->store_lease_ttl_s;
	snprintf(s->prefix, sizeof(s->prefix), "%s/hosts/", c->store_prefix);
	snprintf(s->key, sizeof(s->key), "%s/hosts/%s", c->store_prefix, c->host);
	pthread_mutex_init(&s->mu, NULL);
	{
		pthread_condattr_t ca_attr;

		pthread_condattr_init(&ca_attr);
		pthread_condattr_setclock(&ca_attr, CLOCK_MONOTONIC);
		pthread_cond_init(&s->cv, &ca_attr);
		pthread_condattr_destroy(&ca_attr);
	}
	d->store = s;
	/* read now, while smigd may: the sandbox to come lets it read none of them */
	rc = smig_file_read(c->store_ca[0] ? c->store_ca : c->tls_ca, 1 << 20, &ca, &n, err,
			    sizeof(err));
	if (rc == 0)
		rc = smig_file_read(c->tls_cert, 1 << 20, &cert, &n, err, sizeof(err));
	if (rc == 0)
		rc = smig_file_read_private(c->tls_key, 1 << 20, &key, &n, err, sizeof(err));
	for (size_t i = 0; i < c->nstore_endpoints; i++)
		ec.endpoints[i] = c->store_endpoints[i];
	ec.nendpoints = c->nstore_endpoints;
	ec.ca_pem = ca;
	ec.cert_pem = cert;
	ec.key_pem = key;
	ec.timeout_ms = c->store_timeout_ms;
	if (rc == 0) {
		s->etcd = smig_etcd_open(&ec, err, sizeof(err));
		rc = s->etcd ? 0 : SMIG_ECONFIG;
	}
	free(ca);
	free(cert);
	if (key)
		OPENSSL_cleanse(key, strlen(key));
	free(key);
	s->record = rc == 0 ? host_record(d) : NULL;
	if (rc == 0 && s->record == NULL)
		rc = SMIG_ENOMEM;
	if (rc == 0) {
		/* every signal is the loop's (signalfd): none may land on this thread */
		sigset_t all, was;

		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &was);
		if (pthread_create(&s->th, NULL, store_thread, s) != 0)
			rc = SMIG_EIO;
		pthread_sigmask(SIG_SETMASK, &was, NULL);
	}
	if (rc < 0) {
		smig_err("event=store_failed backend=etcd reason=\"%s\"",
			 rc == SMIG_EIO ? "cannot start its thread" : err);
		return rc;
	}
	s->started = true;
	smig_info("event=store_started backend=etcd endpoints=%zu key=%s lease_ttl_s=%d",
		  c->nstore_endpoints, s->key, s->ttl_s);
	return loop_timer_add(d->loop, STORE_TICK_MS, store_tick, s, &s->tick);
}

void store_free(struct smigd *d)
{
	struct store *s = d->store;

	if (s == NULL)
		return;
	if (s->tick)
		loop_timer_cancel(d->loop, s->tick);
	if (s->started) {
		pthread_mutex_lock(&s->mu);
		s->stop = true;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->th, NULL);
		smig_info("event=store_left key=%s lease_revoked=%s", s->key,
			  s->revoked ? "yes" : "no (the record goes when the lease runs out)");
	}
	smig_etcd_close(s->etcd);
	json_decref(s->members);
	free(s->record);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
	d->store = NULL;
}

/*
 * Whether our record can still be there: registered, and the lease etcd
 * granted at the last renewal not yet run out by our clock (which starts
 * counting after etcd's did: the lease never outlives this answer). Under mu.
 */
static bool lease_alive(const struct store *s, uint64_t now)
{
	return s->registered && s->lease_ttl > 0 &&
	       now < s->renewed_ms + (uint64_t)s->lease_ttl * 1000;
}

json_t *store_status_json(struct smigd *d)
{
	struct store *s = d->store;
	uint64_t now = loop_now_ms();
	json_t *o;

	if (s == NULL)
		return json_pack("{s:s}", "backend", "files");
	pthread_mutex_lock(&s->mu);
	o = json_pack("{s:s,s:s,s:b,s:b,s:s,s:I,s:I,s:s?,s:i,s:I,s:I}", "backend", "etcd", "key",
		      s->key, "reachable", s->up, "registered", lease_alive(s, now), "lease",
		      "", /* set below: a number past 2^53 is text */
		      "lease_ttl_s", (json_int_t)s->lease_ttl, "renewed_ms_ago",
		      (json_int_t)(s->renewed_ms ? now - s->renewed_ms : 0), "endpoint",
		      s->endpoint[0] ? s->endpoint : NULL, "members", (int)json_array_size(s->members),
		      "state_since_ms_ago", (json_int_t)(s->since_ms ? now - s->since_ms : 0),
		      "grants", (json_int_t)s->grants);
	if (o) {
		char id[24];

		snprintf(id, sizeof(id), "%" PRId64, s->lease);
		(void)json_object_set_new(o, "lease", json_string(id));
		if (s->error[0])
			(void)json_object_set_new(o, "last_error", json_string(s->error));
	}
	pthread_mutex_unlock(&s->mu);
	return o;
}

json_t *store_members_json(struct smigd *d)
{
	struct store *s = d->store;
	json_t *o;

	if (s == NULL)
		return NULL;
	pthread_mutex_lock(&s->mu);
	o = json_pack("{s:o?,s:I,s:b}", "members", json_deep_copy(s->members),
		      "read_ms_ago",
		      s->read_ms ? (json_int_t)(loop_now_ms() - s->read_ms) : (json_int_t)-1,
		      "reachable", s->up);
	pthread_mutex_unlock(&s->mu);
	return o;
}
