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
 * written again; our own record is read back at every renewal.
 *
 * The fleet's members are a view kept by a watch: read whole, then
 * changed by each event etcd streams (PREFIX/hosts/ from the revision
 * read on), and read whole again when the stream breaks.
 *
 * etcd's calls block, so they run on threads of their own (the lease and
 * the requests on one, the watch on another, each with its own client).
 * They share with the loop only what sits under the mutex: the members'
 * view and how the store answered; the loop looks once a second and logs
 * the changes (the threads log nothing).
 */
#include "core/smigd.h"
#include "error.h"
#include "etcd.h"
#include "file.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define STORE_RETRY_MS 500
#define STORE_TICK_MS 1000
#define STORE_MEMBERS_MAX 10000 /* host records read back; a fleet is smaller */
#define STORE_RECORD_MAX 4096   /* a host record's bytes; smig writes about 250 */
#define STORE_VMS_MAX 50000     /* owner records read for a list */
#define STORE_LIST_PAGE 1000    /* ... a page at a time, between which the lease comes first */

struct view_entry {
	char *key;
	json_t *member;
};

struct store {
	struct smigd *d;
	struct smig_etcd *etcd;
	pthread_t th;
	bool started;
	/* the members' view: a range read, then a watch, on a thread and client of its own */
	struct smig_etcd *wetcd;
	pthread_t wth;
	bool wstarted;
	struct view_entry *view; /* the watch thread's: the members, sorted by key */
	size_t nview, view_cap;
	int64_t view_rev; /* ... the store's revision it is current to */
	char key[SMIG_STORE_PREFIX_MAX + 16 + SMIG_NAME_MAX];
	char prefix[SMIG_STORE_PREFIX_MAX + 16]; /* PREFIX/hosts/ */
	char tickets[SMIG_STORE_PREFIX_MAX + 16 + SMIG_NAME_MAX]; /* PREFIX/queue/NAME/ */
	char places[SMIG_STORE_PREFIX_MAX + 24];                  /* PREFIX/queue-slots/ */
	char nonce[17];             /* this smigd's, in its tickets' keys: never a namesake's */
	struct store_op *undropped; /* the thread's: tickets whose delete is to be tried again */
	char *record; /* the thread's: this host's record as it writes it */
	bool record_new; /* the thread's: record not written yet (no rewrite when found otherwise) */
	char host[SMIG_NAME_MAX + 1]; /* this host's name, the thread's copy */
	struct store_capacity cap;    /* the loop's: what the record says of the capacity */
	char fp[SMIG_FP_STR_LEN];     /* the certificate smigd started with (and presents to etcd) */
	int ttl_s;
	struct loop_timer *tick;
	/* shared with the thread, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	char *next_record;   /* the loop's newer record (capacity changed), for the thread */
	bool up;             /* the last call was answered */
	bool registered;     /* our record is there under a live lease */
	int64_t lease;       /* 0: none */
	int64_t lease_ttl;   /* what etcd said was left of it at the last renewal */
	uint64_t renewed_ms; /* loop_now_ms() of the last renewal (or grant) */
	uint64_t read_ms;    /* ... of the last read of the members */
	uint64_t since_ms;   /* ... since when up or down */
	uint64_t started_ms; /* store_init */
	char endpoint[SMIG_STORE_URL_MAX + 1];
	char error[512];
	json_t *members;     /* the records read, each with its "lease" (published by the watch) */
	bool watching;       /* the watch is set up and its stream open */
	uint64_t watch_events; /* member changes the watch brought */
	unsigned resyncs;    /* the view read anew (the stream broke, or was compacted away) */
	char watch_error[256];
	unsigned grants;     /* leases granted: more than one means one was lost */
	unsigned rewrites;   /* our record written again, found gone or changed */
	bool revoked;        /* set by the thread as it ends, read after the join */
	bool keep_lease;     /* at stop: VMs run on, their records must outlive this smigd */
	/* ownership requests (store_claim, store_release): queued by the loop, done by the thread */
	struct store_op *ops, *done;
	int efd;                  /* the thread's word that ops are done */
	struct loop_watch *ew;
	/* the loop's own: what it last logged */
	bool was_up, was_registered, logged_once;
	unsigned was_grants, was_rewrites;
};

enum store_op_kind { OP_CLAIM, OP_RELEASE, OP_HANDOVER, OP_TICKET, OP_TICKET_DROP, OP_LIST };

struct store_op {
	struct store_op *next;
	enum store_op_kind kind;
	char name[SMIG_NAME_MAX + 1]; /* the VM */
	/* claim: a host it may be taken from ("" none); handover: the host it goes to */
	char from[SMIG_NAME_MAX + 1];
	/* claim: taken from `from` only if handed there by this migration; handover: the migration */
	char mig[SMIG_MIG_ID_STR_LEN];
	/* handover: the certificate pinned for `from`, and the one it rotates to ("" none) */
	char fp[SMIG_FP_STR_LEN], fp_next[SMIG_FP_STR_LEN];
	char key[SMIG_STORE_PREFIX_MAX + 2 * SMIG_NAME_MAX + 16];
	store_owner_fn fn;
	struct store_owner r;
	/* a ticket of the fleet's migration queue: key above, its prefix here */
	char queue[SMIG_STORE_PREFIX_MAX + 16];
	char places[SMIG_STORE_PREFIX_MAX + 24]; /* PREFIX/queue-slots/ */
	char value[320]; /* the ticket: its host, VM, destination, whether an evacuation */
	int cap;
	void *arg;
	store_ticket_fn tfn;
	struct store_ticket t;
	/* a list of the fleet's VMs: what was read, or why not; where the next page begins */
	store_list_fn lfn;
	json_t *list;
	char page[SMIG_STORE_PREFIX_MAX + SMIG_NAME_MAX + 32];
	bool more;
	uint64_t renew_at; /* run_ops': when the lease comes first */
};

static void set_error(struct store *s, const char *err)
{
	pthread_mutex_lock(&s->mu);
	if (s->up)
		s->since_ms = loop_now_ms();
	s->up = false;
	snprintf(s->error, sizeof(s->error), "%s", err);
	for (char *c = s->error; *c; c++) /* etcd's words among them: shown, so printable */
		if (*c < 0x20 || *c == 0x7f)
			*c = '?';
	pthread_mutex_unlock(&s->mu);
}

/* Text from the store, as shown: printable ASCII only, at most 200 bytes. */
static json_t *clean_string(const json_t *v)
{
	const char *t = json_string_value(v);
	char out[201];
	size_t n = 0;

	if (t == NULL)
		return NULL;
	for (; *t && n < sizeof(out) - 1; t++)
		out[n++] = (*t >= 0x20 && *t < 0x7f) ? *t : '?';
	out[n] = '\0';
	return json_string(out);
}

/* A record's capacity, its known fields only, each a count from 0 to 2^40. */
static void capacity_copy(json_t *rec, const json_t *raw)
{
	static const char *const fields[] = { "memory_mib", "memory_free_mib", "vcpus", "vcpus_free",
					      "vms" };
	json_t *c;

	if (!json_is_object(raw))
		return;
	c = json_object();
	for (size_t f = 0; c && f < sizeof(fields) / sizeof(fields[0]); f++) {
		const json_t *v = json_object_get(raw, fields[f]);

		if (json_is_integer(v) && json_integer_value(v) >= 0 &&
		    json_integer_value(v) < ((json_int_t)1 << 40))
			(void)json_object_set_new(c, fields[f], json_integer(json_integer_value(v)));
	}
	(void)json_object_set_new(rec, "capacity", c);
}

/*
 * A member as the view keeps it (at most STORE_MEMBERS_MAX of them): of
 * its record the fields smig writes (text made printable), with its key,
 * lease and revision. What another host wrote is shown, never trusted:
 * the loop holds each record against the host table (store_members_json).
 */
static json_t *member_json(const struct smig_etcd_kv *kv)
{
	static const char *const fields[] = { "name", "address", "fingerprint", "version" };
	json_t *raw = NULL, *rec = json_object(), *key;

	if (rec == NULL)
		return NULL;
	if (kv->value_len <= STORE_RECORD_MAX)
		raw = json_loadb((const char *)kv->value, kv->value_len, 0, NULL);
	if (json_is_object(raw)) {
		for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
			(void)json_object_set_new(rec, fields[f],
						  clean_string(json_object_get(raw, fields[f])));
		if (json_is_integer(json_object_get(raw, "port")))
			(void)json_object_set(rec, "port", json_object_get(raw, "port"));
		if (json_is_integer(json_object_get(raw, "started")))
			(void)json_object_set(rec, "started", json_object_get(raw, "started"));
		capacity_copy(rec, json_object_get(raw, "capacity"));
	} else {
		(void)json_object_set_new(rec, "invalid",
					  json_string(kv->value_len > STORE_RECORD_MAX
							      ? "longer than a record"
							      : "not a JSON object"));
	}
	json_decref(raw);
	key = json_string(kv->key);
	(void)json_object_set_new(rec, "key", clean_string(key));
	json_decref(key);
	(void)json_object_set_new(rec, "lease", json_integer(kv->lease));
	(void)json_object_set_new(rec, "mod_revision", json_integer(kv->mod_revision));
	return rec;
}

/* Whether our record is there, as we wrote it, under our lease. */
static int record_is_ours(struct store *s, int64_t lease, bool *ours, char *err, size_t errlen)
{
	struct smig_etcd_kvs k;

	*ours = false;
	if (smig_etcd_get(s->etcd, s->key, false, 0, &k, err, errlen) < 0)
		return -1;
	*ours = k.n == 1 && strcmp(k.v[0].key, s->key) == 0 && k.v[0].lease == lease &&
		k.v[0].value_len == strlen(s->record) &&
		memcmp(k.v[0].value, s->record, k.v[0].value_len) == 0;
	smig_etcd_kvs_free(&k);
	return 0;
}

/* Where key is in the view, or would go: *found says which. */
static size_t view_find(const struct store *s, const char *key, bool *found)
{
	size_t lo = 0, hi = s->nview;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->view[mid].key, key);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* key's member is m (taken) now; false (m dropped) when the view is full or memory short. */
static bool view_put(struct store *s, const char *key, json_t *m)
{
	bool found;
	size_t i = view_find(s, key, &found);
	char *k;

	if (m == NULL)
		return false;
	if (found) {
		json_decref(s->view[i].member);
		s->view[i].member = m;
		return true;
	}
	if (s->nview >= STORE_MEMBERS_MAX) {
		json_decref(m);
		return false;
	}
	if (s->nview == s->view_cap) {
		size_t cap = s->view_cap ? s->view_cap * 2 : 64;
		struct view_entry *v = realloc(s->view, cap * sizeof(*v));

		if (v == NULL) {
			json_decref(m);
			return false;
		}
		s->view = v;
		s->view_cap = cap;
	}
	k = strdup(key);
	if (k == NULL) {
		json_decref(m);
		return false;
	}
	memmove(&s->view[i + 1], &s->view[i], (s->nview - i) * sizeof(*s->view));
	s->view[i] = (struct view_entry){ .key = k, .member = m };
	s->nview++;
	return true;
}

static void view_del(struct store *s, const char *key)
{
	bool found;
	size_t i = view_find(s, key, &found);

	if (!found)
		return;
	free(s->view[i].key);
	json_decref(s->view[i].member);
	memmove(&s->view[i], &s->view[i + 1], (s->nview - i - 1) * sizeof(*s->view));
	s->nview--;
}

static void view_clear(struct store *s)
{
	for (size_t i = 0; i < s->nview; i++) {
		free(s->view[i].key);
		json_decref(s->view[i].member);
	}
	s->nview = 0;
}

/* The view as an array in key order for the loop: one pass, no sort (then under mu). */
static void publish_view(struct store *s, uint64_t events)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < s->nview; i++)
		(void)json_array_append(arr, s->view[i].member);
	if (arr == NULL)
		return; /* out of memory: the view published before stays */
	pthread_mutex_lock(&s->mu);
	json_decref(s->members);
	s->members = arr;
	s->read_ms = loop_now_ms();
	s->watch_events += events;
	pthread_mutex_unlock(&s->mu);
}

/* The members read anew, all at once: the view and the revision to watch from. */
static int view_sync(struct store *s, char *err, size_t errlen)
{
	struct smig_etcd_kvs k;

	if (smig_etcd_get(s->wetcd, s->prefix, true, STORE_MEMBERS_MAX, &k, err, errlen) < 0)
		return -1;
	view_clear(s);
	for (size_t i = 0; i < k.n; i++)
		if (strncmp(k.v[i].key, s->prefix, strlen(s->prefix)) == 0) /* what was asked */
			(void)view_put(s, k.v[i].key, member_json(&k.v[i]));
	s->view_rev = k.revision;
	smig_etcd_kvs_free(&k);
	publish_view(s, 0);
	return 0;
}

/* A message of the watch: its events applied to the view, which is published. */
static int on_watch(void *arg, const struct smig_etcd_watch_msg *m)
{
	struct store *s = arg;
	uint64_t changed = 0;

	if (m->created) {
		pthread_mutex_lock(&s->mu);
		s->watching = true;
		s->watch_error[0] = '\0';
		pthread_mutex_unlock(&s->mu);
	}
	for (size_t i = 0; i < m->events.n; i++) {
		const struct smig_etcd_kv *kv = &m->events.v[i];

		/* the view is current up to the events seen, never to the header's revision */
		if (kv->mod_revision > s->view_rev)
			s->view_rev = kv->mod_revision;
		if (strncmp(kv->key, s->prefix, strlen(s->prefix)) != 0)
			continue;
		if (m->deleted[i])
			view_del(s, kv->key);
		else
			(void)view_put(s, kv->key, member_json(kv));
		changed++;
	}
	if (changed)
		publish_view(s, changed);
	pthread_mutex_lock(&s->mu);
	changed = s->stop; /* a stop ends the watch */
	pthread_mutex_unlock(&s->mu);
	return changed != 0;
}

/* Sleeps ms, less if smigd stops (under mu on return: false when it stops). */
static bool watch_pause(struct store *s, uint64_t ms)
{
	struct timespec until;
	bool stop;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)(ms / 1000);
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->mu);
	while (!s->stop && pthread_cond_timedwait(&s->cv, &s->mu, &until) != ETIMEDOUT)
		;
	stop = s->stop;
	pthread_mutex_unlock(&s->mu);
	return !stop;
}

/*
 * The members' view: read whole, then kept by a watch from the revision
 * read; watched again from the last event's revision when the stream
 * breaks (after a pause), read whole again on any other failure (the
 * revisions it missed compacted away, a message it could not take).
 */
static void *watch_thread(void *arg)
{
	struct store *s = arg;
	char err[256];
	bool synced = false;

	do {
		int rc;

		if (!synced && view_sync(s, err, sizeof(err)) < 0) {
			pthread_mutex_lock(&s->mu);
			snprintf(s->watch_error, sizeof(s->watch_error), "%s", err);
			pthread_mutex_unlock(&s->mu);
			continue;
		}
		synced = true;
		rc = smig_etcd_watch(s->wetcd, s->prefix, s->view_rev + 1, on_watch, s, err,
				     sizeof(err));
		pthread_mutex_lock(&s->mu);
		s->watching = false;
		if (rc < 0)
			snprintf(s->watch_error, sizeof(s->watch_error), "%s", err);
		if (rc < 0 && rc != SMIG_ECLOSED) {
			/* compacted, unreadable, unreachable: what it missed may be gone from
			 * etcd's history, or the same message would fail again */
			synced = false;
			s->resyncs++;
		}
		pthread_mutex_unlock(&s->mu);
	} while (watch_pause(s, STORE_RETRY_MS));
	view_clear(s);
	return NULL;
}

/* One round: a lease and our record if we have none, else a renewal; then our record read back. */
static void round_once(struct store *s, bool *ok)
{
	char err[512];
	int64_t lease, ttl = 0;
	bool fresh = false, ours;
	uint64_t asked = loop_now_ms(); /* etcd counts the lease from after this */

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
	s->renewed_ms = asked;
	s->registered = true;
	s->grants += fresh;
	snprintf(s->endpoint, sizeof(s->endpoint), "%s", smig_etcd_endpoint(s->etcd));
	pthread_mutex_unlock(&s->mu);
	if (record_is_ours(s, lease, &ours, err, sizeof(err)) < 0) {
		set_error(s, err);
		return;
	}
	if (!ours) { /* deleted or overwritten behind our back: ours again, under our lease */
		if (smig_etcd_put(s->etcd, s->key, s->record, strlen(s->record), lease, NULL, err,
				  sizeof(err)) < 0) {
			set_error(s, err);
			return;
		}
		pthread_mutex_lock(&s->mu);
		s->rewrites += !s->record_new; /* a newer record is written, not rewritten */
		pthread_mutex_unlock(&s->mu);
	}
	s->record_new = false;
	pthread_mutex_lock(&s->mu);
	s->error[0] = '\0';
	pthread_mutex_unlock(&s->mu);
	*ok = true;
}

/*
 * The host a VM's owner record names ("" when it names none), and the
 * migration that handed it there (mig may be NULL; "" when none did).
 */
static void owner_of(const struct smig_etcd_kv *kv, char *host, size_t len, char *mig)
{
	json_t *o = json_loadb((const char *)kv->value, kv->value_len, 0, NULL);
	const char *h = json_string_value(json_object_get(o, "host"));
	const char *g = json_string_value(json_object_get(o, "migration"));

	snprintf(host, len, "%s", h ? h : "");
	if (mig)
		snprintf(mig, SMIG_MIG_ID_STR_LEN, "%s", g ? g : "");
	json_decref(o);
}

/* The owner record at key: *rev 0 when there is none. */
static int read_owner(struct store *s, const char *key, char *host, size_t len, char *mig,
		      int64_t *rev, char *err, size_t errlen)
{
	struct smig_etcd_kvs k;

	if (smig_etcd_get(s->etcd, key, false, 0, &k, err, errlen) < 0)
		return -1;
	host[0] = '\0';
	if (mig)
		mig[0] = '\0';
	*rev = 0;
	if (k.n) {
		owner_of(&k.v[0], host, len, mig);
		*rev = k.v[0].mod_revision;
	}
	smig_etcd_kvs_free(&k);
	return 0;
}

/*
 * The lease of host's record, if it is there at its own key with the
 * certificate this host pins for it; 0 otherwise (or unread: -1).
 */
static int64_t member_lease(struct store *s, const struct store_op *op, char *err, size_t errlen)
{
	struct smig_etcd_kvs k;
	char key[sizeof(s->prefix) + SMIG_NAME_MAX];
	int64_t lease = 0;

	snprintf(key, sizeof(key), "%s%s", s->prefix, op->from);
	if (smig_etcd_get(s->etcd, key, false, 0, &k, err, errlen) < 0)
		return -1;
	if (k.n && k.v[0].value_len <= STORE_RECORD_MAX) {
		json_t *o = json_loadb((const char *)k.v[0].value, k.v[0].value_len, 0, NULL);
		const char *n = json_string_value(json_object_get(o, "name"));
		const char *f = json_string_value(json_object_get(o, "fingerprint"));

		if (n && f && strcmp(n, op->from) == 0 &&
		    (strcmp(f, op->fp) == 0 || (op->fp_next[0] && strcmp(f, op->fp_next) == 0)))
			lease = k.v[0].lease;
		json_decref(o);
	}
	smig_etcd_kvs_free(&k);
	return lease;
}

/*
 * A migration's switch-over: the VM's record, ours, goes to op->from under
 * that host's lease, in one swap on its revision, before COMMIT is sent.
 * A swap whose outcome is unknown (etcd's leader changed under it) is
 * settled by reading the record: it names the destination and this
 * migration, or it is still ours as it was. r->unknown when even that read
 * failed: the caller cannot tell, and must not commit nor resume.
 */
static void do_handover(struct store *s, struct store_op *op)
{
	struct store_owner *r = &op->r;
	char value[384], owner[SMIG_NAME_MAX + 1], mig[SMIG_MIG_ID_STR_LEN];
	int64_t rev, to_lease, now_rev;
	int rc;

	snprintf(r->mig, sizeof(r->mig), "%s", op->mig);
	to_lease = member_lease(s, op, r->error, sizeof(r->error));
	if (to_lease < 0)
		return;
	if (to_lease == 0) {
		snprintf(r->error, sizeof(r->error),
			 "%s has no record in the fleet store under a lease (with the certificate "
			 "pinned for it): it cannot own the VM",
			 op->from);
		r->answered = true;
		return;
	}
	if (read_owner(s, op->key, owner, sizeof(owner), NULL, &rev, r->error, sizeof(r->error)) < 0)
		return;
	snprintf(r->owner, sizeof(r->owner), "%s", owner);
	if (rev == 0 || strcmp(owner, s->host) != 0) {
		snprintf(r->error, sizeof(r->error), "its owner record names %s, not this host",
			 rev ? owner : "nobody");
		r->answered = true;
		return;
	}
	snprintf(value, sizeof(value),
		 "{\"host\":\"%s\",\"vm\":\"%s\",\"since\":%lld,\"from\":\"%s\",\"migration\":\"%s\"}",
		 op->from, op->name, (long long)loop_wall_ms() / 1000, s->host, op->mig);
	rc = smig_etcd_cas(s->etcd, op->key, rev, value, strlen(value), to_lease, &r->ok, NULL,
			   r->error, sizeof(r->error));
	if (rc == SMIG_ETIMEDOUT) { /* applied or not: the record says */
		if (read_owner(s, op->key, owner, sizeof(owner), mig, &now_rev, r->error,
			       sizeof(r->error)) < 0) {
			r->unknown = true;
			return;
		}
		r->ok = strcmp(owner, op->from) == 0 && strcmp(mig, op->mig) == 0;
		if (!r->ok && !(now_rev == rev && strcmp(owner, s->host) == 0))
			snprintf(r->owner, sizeof(r->owner), "%s", owner);
	} else if (rc < 0) {
		return; /* refused as asked (not applied) */
	}
	r->answered = true;
	if (r->ok) {
		snprintf(r->owner, sizeof(r->owner), "%s", op->from);
		r->lease = to_lease;
	} else if (r->error[0] == '\0' || rc == SMIG_ETIMEDOUT) {
		snprintf(r->error, sizeof(r->error), "its owner record changed meanwhile (it names %s)",
			 r->owner[0] ? r->owner : "nobody");
	}
}

struct ticket_rank {
	bool evacuation, ours;
	int64_t create;
};

/* The fleet's queue order: evacuations first, then the first come (create_revision). */
static int ticket_cmp(const void *a, const void *b)
{
	const struct ticket_rank *x = a, *y = b;

	if (x->evacuation != y->evacuation)
		return x->evacuation ? -1 : 1;
	return (x->create > y->create) - (x->create < y->create);
}

/*
 * The places: PREFIX/queue-slots/0 .. cap-1, each held by the key of the
 * ticket it admitted (under that host's lease). *ours: the place op's
 * ticket holds (-1 none); held[i] whether place i is taken; *taken the
 * tickets that hold one. -1 when etcd did not answer.
 */
static int read_places(struct store *s, struct store_op *op, bool *held, char taken[][160],
		       size_t *ntaken, int *ours)
{
	struct smig_etcd_kvs k;
	size_t plen = strlen(op->places);

	*ours = -1;
	*ntaken = 0;
	if (smig_etcd_get(s->etcd, op->places, true, 0, &k, op->t.error, sizeof(op->t.error)) < 0)
		return -1;
	for (size_t i = 0; i < k.n; i++) {
		char *end;
		long n;

		if (strncmp(k.v[i].key, op->places, plen) != 0)
			continue;
		n = strtol(k.v[i].key + plen, &end, 10);
		if (*end != '\0' || n < 0 || n >= op->cap || k.v[i].value_len >= 160)
			continue; /* not a place under this cap */
		held[n] = true;
		snprintf(taken[*ntaken], 160, "%s", (const char *)k.v[i].value);
		if (strcmp(taken[*ntaken], op->key) == 0)
			*ours = (int)n;
		(*ntaken)++;
	}
	smig_etcd_kvs_free(&k);
	return 0;
}

/*
 * A migration's ticket in the fleet's queue (policy limits.max_cluster_migrations):
 * written under this host's lease the first time (again should it be gone
 * with its lease). It is admitted once it holds one of cap places, taken
 * by a create-if-absent on the place's key: so no more than cap hold one,
 * whatever the order. A ticket that holds none takes a free place when as
 * many free places come before it in the queue's order (evacuations first,
 * then the first come) as it needs: the one ahead of it take the others.
 * A host that dies takes its tickets and places with its lease.
 */
static void do_ticket(struct store *s, struct store_op *op, int64_t lease)
{
	struct store_ticket *t = &op->t;
	bool *held = calloc((size_t)op->cap, sizeof(*held));
	char (*taken)[160] = calloc((size_t)op->cap, sizeof(*taken));

	if (held == NULL || taken == NULL) {
		snprintf(t->error, sizeof(t->error), "out of memory");
		goto out;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		struct smig_etcd_kvs k;
		struct ticket_rank *rank;
		size_t n = 0, ours = SIZE_MAX, ntaken;
		int place, free_before = 0, want = -1;

		memset(held, 0, (size_t)op->cap * sizeof(*held));
		if (read_places(s, op, held, taken, &ntaken, &place) < 0)
			goto out;
		if (place >= 0) { /* admitted already */
			t->answered = t->admitted = true;
			t->position = 0;
			goto out;
		}
		if (smig_etcd_get(s->etcd, op->queue, true, (int64_t)SMIG_ETCD_RANGE_MAX, &k,
				  t->error, sizeof(t->error)) < 0)
			goto out;
		rank = calloc(k.n ? k.n : 1, sizeof(*rank));
		if (rank == NULL) {
			smig_etcd_kvs_free(&k);
			snprintf(t->error, sizeof(t->error), "out of memory");
			goto out;
		}
		for (size_t i = 0; i < k.n; i++) {
			json_t *v = NULL;
			bool holds = false;

			if (strncmp(k.v[i].key, op->queue, strlen(op->queue)) != 0)
				continue;
			for (size_t j = 0; j < ntaken && !holds; j++)
				holds = strcmp(taken[j], k.v[i].key) == 0;
			if (holds)
				continue; /* admitted: not waiting */
			if (k.v[i].value_len <= STORE_RECORD_MAX)
				v = json_loadb((const char *)k.v[i].value, k.v[i].value_len, 0, NULL);
			rank[n].evacuation = json_is_true(json_object_get(v, "evacuation"));
			rank[n].create = k.v[i].create_revision;
			rank[n].ours = strcmp(k.v[i].key, op->key) == 0;
			json_decref(v);
			n++;
		}
		smig_etcd_kvs_free(&k);
		qsort(rank, n, sizeof(*rank), ticket_cmp);
		for (size_t i = 0; i < n && ours == SIZE_MAX; i++)
			if (rank[i].ours)
				ours = i;
		free(rank);
		if (ours == SIZE_MAX) { /* not written yet, or gone with a lease */
			if (attempt > 0 || lease == 0) {
				snprintf(t->error, sizeof(t->error), "%s",
					 lease ? "the ticket was gone again as soon as it was written"
					       : "this host holds no lease in the fleet store yet");
				goto out;
			}
			if (smig_etcd_put(s->etcd, op->key, op->value, strlen(op->value), lease,
					  NULL, t->error, sizeof(t->error)) < 0)
				goto out;
			continue;
		}
		t->answered = true;
		t->position = (int)ours + 1;
		t->total = (int)(n + ntaken);
		/* the (ours+1)-th free place is this ticket's; those before it, the ones ahead */
		for (int i = 0; i < op->cap && want < 0; i++)
			if (!held[i] && free_before++ == (int)ours)
				want = i;
		if (want >= 0 && lease) {
			char key[sizeof(op->places) + 16];
			bool done = false;

			snprintf(key, sizeof(key), "%s%d", op->places, want);
			if (smig_etcd_cas(s->etcd, key, 0, op->key, strlen(op->key), lease, &done,
					  NULL, t->error, sizeof(t->error)) == 0 && done)
				t->admitted = true;
			/* taken meanwhile, or no answer: asked again */
		}
		goto out;
	}
out:
	free(held);
	free(taken);
}

/*
 * A ticket goes, and the place it held: whether both are gone. The place
 * is deleted only while it still names this ticket (a swap on its revision).
 */
static bool drop_ticket(struct store *s, struct store_op *op)
{
	struct smig_etcd_kvs k;
	int64_t n;
	bool ok = true;

	if (smig_etcd_get(s->etcd, op->places, true, 0, &k, op->t.error, sizeof(op->t.error)) < 0)
		return false;
	for (size_t i = 0; i < k.n; i++) {
		bool done;

		if (k.v[i].value_len == strlen(op->key) &&
		    memcmp(k.v[i].value, op->key, k.v[i].value_len) == 0 &&
		    smig_etcd_delete_if(s->etcd, k.v[i].key, k.v[i].mod_revision, &done,
					op->t.error, sizeof(op->t.error)) < 0)
			ok = false;
	}
	smig_etcd_kvs_free(&k);
	return ok && smig_etcd_delete(s->etcd, op->key, false, &n, op->t.error,
				      sizeof(op->t.error)) == 0;
}

/*
 * A VM's owner record at PREFIX/vms/NAME/owner, bound to our lease. Claim:
 * created if there is none; taken over (a swap on its revision) if it is
 * ours from an earlier lease or names op->from; else refused, naming the
 * owner. Release: deleted if it is ours (a swap on its revision), else
 * left alone.
 */
/* A migration's id as the owner record carries it: hex of its length, else none. */
static bool mig_id_ok(const char *mig)
{
	return strlen(mig) == SMIG_MIG_ID_STR_LEN - 1 &&
	       strspn(mig, "0123456789abcdef") == SMIG_MIG_ID_STR_LEN - 1;
}

/* One owner record for the list (NULL: no record of smig's). */
static json_t *listed_vm(const struct smig_etcd_kv *kv, const char *prefix)
{
	size_t plen = strlen(prefix);
	const char *name, *end;
	char vm[SMIG_NAME_MAX + 1], host[SMIG_NAME_MAX + 1], mig[SMIG_MIG_ID_STR_LEN];
	json_t *o, *raw;

	/* PREFIX/vms/NAME/owner with a valid NAME: anything else here is no record of smig's */
	if (strncmp(kv->key, prefix, plen) != 0)
		return NULL;
	name = kv->key + plen;
	end = strchr(name, '/');
	if (end == NULL || strcmp(end, "/owner") != 0 || (size_t)(end - name) > SMIG_NAME_MAX)
		return NULL;
	snprintf(vm, sizeof(vm), "%.*s", (int)(end - name), name);
	if (!smig_name_valid(vm))
		return NULL;
	owner_of(kv, host, sizeof(host), mig);
	o = json_pack("{s:s,s:s?,s:I,s:s?}", "vm", vm, "host", smig_name_valid(host) ? host : NULL,
		      "since", (json_int_t)0, "migration", mig_id_ok(mig) ? mig : NULL);
	raw = o && kv->value_len <= STORE_RECORD_MAX
		      ? json_loadb((const char *)kv->value, kv->value_len, 0, NULL)
		      : NULL;
	if (json_is_integer(json_object_get(raw, "since")))
		(void)json_object_set(o, "since", json_object_get(raw, "since"));
	json_decref(raw);
	return o;
}

/*
 * Every VM's owner record (PREFIX/vms/NAME/owner): [{"vm", "host",
 * "since", "migration"}], a page at a time until renew_at: op->more when
 * the lease's renewal falls due first (the list goes on after it).
 */
static void do_list(struct store *s, struct store_op *op, uint64_t renew_at)
{
	op->more = false;
	if (op->list == NULL && (op->list = json_array()) == NULL) {
		snprintf(op->r.error, sizeof(op->r.error), "out of memory");
		return;
	}
	do {
		struct smig_etcd_kvs k;
		bool cut;

		if (smig_etcd_get_from(s->etcd, op->page[0] ? op->page : op->key, op->key,
				       STORE_LIST_PAGE, &k, op->r.error, sizeof(op->r.error)) < 0)
			return;
		for (size_t i = 0; i < k.n; i++) {
			json_t *o;

			if (op->page[0] && strcmp(k.v[i].key, op->page) == 0)
				continue; /* the last page's last key: a page begins with it */
			o = listed_vm(&k.v[i], op->key);
			if (o)
				(void)json_array_append_new(op->list, o);
		}
		cut = json_array_size(op->list) >= STORE_VMS_MAX;
		op->more = k.count > (int64_t)k.n && k.n > 0 && !cut;
		if (k.n)
			snprintf(op->page, sizeof(op->page), "%s", k.v[k.n - 1].key);
		if (cut && k.count > (int64_t)k.n)
			snprintf(op->r.error, sizeof(op->r.error),
				 "only the first %d owner records were read", STORE_VMS_MAX);
		smig_etcd_kvs_free(&k);
	} while (op->more && loop_now_ms() < renew_at);
	op->r.answered = !op->more;
}

static void do_op(struct store *s, struct store_op *op, int64_t lease)
{
	char value[256], owner[SMIG_NAME_MAX + 1] = "", mig[SMIG_MIG_ID_STR_LEN];
	struct store_owner *r = &op->r;
	int64_t rev = 0;

	if (op->kind == OP_HANDOVER) {
		do_handover(s, op);
		return;
	}
	if (op->kind == OP_TICKET) {
		do_ticket(s, op, lease);
		return;
	}
	if (op->kind == OP_TICKET_DROP) {
		op->t.answered = drop_ticket(s, op);
		return;
	}
	if (op->kind == OP_LIST) {
		do_list(s, op, op->renew_at);
		return;
	}
	snprintf(value, sizeof(value), "{\"host\":\"%s\",\"vm\":\"%s\",\"since\":%lld}",
		 s->host, op->name, (long long)loop_wall_ms() / 1000);
	for (int attempt = 0; attempt < 3; attempt++) {
		bool from_ok;

		if (read_owner(s, op->key, owner, sizeof(owner), mig, &rev, r->error,
			       sizeof(r->error)) < 0)
			return;
		snprintf(r->owner, sizeof(r->owner), "%s", owner);
		if (op->kind == OP_RELEASE) {
			/* ours, or handed by a migration of ours that failed before COMMIT */
			from_ok = op->from[0] && op->mig[0] && strcmp(owner, op->from) == 0 &&
				  strcmp(mig, op->mig) == 0;
			if (rev == 0 || (strcmp(owner, s->host) != 0 && !from_ok)) {
				r->ok = true; /* not ours (any more): nothing to give up */
				return;
			}
			if (smig_etcd_delete_if(s->etcd, op->key, rev, &r->ok, r->error,
						sizeof(r->error)) < 0)
				return;
		} else {
			from_ok = op->from[0] && strcmp(owner, op->from) == 0 &&
				  (op->mig[0] == '\0' || strcmp(mig, op->mig) == 0);
			if (rev && strcmp(owner, s->host) != 0 && !from_ok) {
				r->ok = false; /* another host's */
				r->answered = true;
				return;
			}
			if (lease == 0) {
				snprintf(r->error, sizeof(r->error),
					 "this host holds no lease in the fleet store yet");
				return;
			}
			if (smig_etcd_cas(s->etcd, op->key, rev, value, strlen(value), lease, &r->ok,
					  NULL, r->error, sizeof(r->error)) < 0)
				return;
			if (r->ok) {
				snprintf(r->owner, sizeof(r->owner), "%s", s->host);
				r->lease = lease;
			}
		}
		if (r->ok) {
			r->answered = true;
			return;
		}
		/* it changed between the read and the swap: read it again */
	}
	snprintf(r->error, sizeof(r->error), "the owner record kept changing under three swaps");
}

/* The ownership requests queued since the last look, done, and the loop told. */
/*
 * The requests queued since the last look, done in the order asked, and
 * the loop told; those left when the renewal falls due wait for the next
 * look (the lease comes first). A ticket whose delete failed is tried
 * again at each look (else it would hold a place while the lease lives).
 */
static void run_ops(struct store *s, uint64_t renew_at)
{
	struct store_op *ops, *done = NULL, *retry = s->undropped;
	int64_t lease;
	uint64_t one = 1;

	s->undropped = NULL;
	for (struct store_op *op = retry, *next; op; op = next) {
		next = op->next;
		op->next = s->undropped;
		if (drop_ticket(s, op))
			free(op);
		else
			s->undropped = op;
	}
	pthread_mutex_lock(&s->mu);
	ops = s->ops;
	s->ops = NULL;
	lease = s->registered ? s->lease : 0;
	pthread_mutex_unlock(&s->mu);
	while (ops && loop_now_ms() < renew_at) {
		struct store_op *op = ops;

		ops = op->next;
		op->t.error[0] = '\0';
		op->renew_at = renew_at;
		do_op(s, op, lease);
		if (op->kind == OP_LIST && op->more) { /* the lease first: its next page after */
			op->next = ops;
			ops = op;
			break;
		}
		if (op->kind == OP_TICKET_DROP && !op->t.answered) {
			op->next = s->undropped;
			s->undropped = op;
			continue;
		}
		op->next = done;
		done = op;
	}
	if (ops) { /* the renewal first: these go back to the head of the queue */
		struct store_op *tail = ops;

		while (tail->next)
			tail = tail->next;
		pthread_mutex_lock(&s->mu);
		tail->next = s->ops;
		s->ops = ops;
		pthread_mutex_unlock(&s->mu);
	}
	if (done == NULL)
		return;
	/* s->done is newest first (ops_done turns it round): this batch, newest first, before it */
	pthread_mutex_lock(&s->mu);
	{
		struct store_op *tail = done;

		while (tail->next)
			tail = tail->next;
		tail->next = s->done;
	}
	s->done = done;
	pthread_mutex_unlock(&s->mu);
	if (write(s->efd, &one, sizeof(one)) < 0) {
		/* the counter is full only if the loop stopped reading: it reads at stop */
	}
}

/* At a stop that keeps the lease: this smigd's tickets and the places they hold go. */
static void drop_mine(struct store *s)
{
	struct smig_etcd_kvs k;
	char err[256];
	int64_t n;

	if (smig_etcd_get(s->etcd, s->places, true, 0, &k, err, sizeof(err)) == 0) {
		for (size_t i = 0; i < k.n; i++)
			if (k.v[i].value_len > strlen(s->tickets) &&
			    memcmp(k.v[i].value, s->tickets, strlen(s->tickets)) == 0)
				(void)smig_etcd_delete(s->etcd, k.v[i].key, false, &n, err,
						       sizeof(err));
		smig_etcd_kvs_free(&k);
	}
	(void)smig_etcd_delete(s->etcd, s->tickets, true, &n, err, sizeof(err));
}

static void *store_thread(void *arg)
{
	struct store *s = arg;
	char err[256];
	uint64_t next_round = 0;
	bool last_ok = false;

	pthread_mutex_lock(&s->mu);
	while (!s->stop) {
		struct timespec until;
		uint64_t wait_ms;
		bool ok = true;

		if (s->next_record) { /* the capacity changed: written at once, by a round */
			free(s->record);
			s->record = s->next_record;
			s->next_record = NULL;
			s->record_new = true;
			if (last_ok) /* else at the next retry, as it was */
				next_round = 0;
		}
		pthread_mutex_unlock(&s->mu);
		/* renew when due (woken for ownership requests and a newer record, not before) */
		if (loop_now_ms() >= next_round) {
			round_once(s, &ok);
			last_ok = ok;
			next_round = loop_now_ms() + (ok ? (uint64_t)s->ttl_s * 1000 / 3 : STORE_RETRY_MS);
		}
		run_ops(s, next_round);
		wait_ms = next_round > loop_now_ms() ? next_round - loop_now_ms() : 0;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += (time_t)(wait_ms / 1000);
		until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&s->mu);
		while (!s->stop && s->ops == NULL && s->next_record == NULL &&
		       pthread_cond_timedwait(&s->cv, &s->mu, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&s->mu);
	/*
	 * A clean stop: our record goes now, not when the lease would run
	 * out; one try on each member at most (timeout_ms each), so that a
	 * stop with etcd away takes no longer than half a lease.
	 */
	smig_etcd_abort(s->etcd, false);
	smig_etcd_set_rounds(s->etcd, 1);
	if (s->keep_lease) {
		/*
		 * QEMUs outlive this smigd (a restart, an upgrade): their owner
		 * records stay under the lease for the next smigd to take over
		 * within the TTL; only this host's record goes.
		 */
		int64_t n;

		(void)smig_etcd_delete(s->etcd, s->key, false, &n, err, sizeof(err));
		/* and its migrations' tickets and places: those migrations ended with it */
		drop_mine(s);
	} else if (s->lease && smig_etcd_lease_revoke(s->etcd, s->lease, err, sizeof(err)) == 0) {
		s->revoked = true;
	}
	while (s->undropped) { /* gone with the lease or drop_mine, or at the lease's end */
		struct store_op *next = s->undropped->next;

		free(s->undropped);
		s->undropped = next;
	}
	return NULL;
}

/* Once a second: what changed since the last look goes to the log. */
static void store_tick(void *arg)
{
	struct store *s = arg;
	bool up, reg;
	unsigned grants, rewrites;
	char ep[sizeof(s->endpoint)], err[sizeof(s->error)];
	int64_t lease;

	s->tick = NULL;
	pthread_mutex_lock(&s->mu);
	up = s->up;
	reg = s->registered;
	grants = s->grants;
	rewrites = s->rewrites;
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
	if (rewrites != s->was_rewrites)
		smig_warn("event=store_record_rewritten key=%s reason=\"it was gone or not as this host "
			  "wrote it\"",
			  s->key);
	s->was_rewrites = rewrites;
	(void)loop_timer_add(s->d->loop, STORE_TICK_MS, store_tick, s, &s->tick);
}

/* The thread's word: run the callbacks of the ownership requests it did. */
static void ops_done(void *arg, uint32_t events)
{
	struct store *s = arg;
	struct store_op *done, *rev = NULL;
	uint64_t n;

	(void)events;
	if (read(s->efd, &n, sizeof(n)) < 0) {
		/* EAGAIN: nothing new; the list says what is done */
	}
	pthread_mutex_lock(&s->mu);
	done = s->done;
	s->done = NULL;
	pthread_mutex_unlock(&s->mu);
	while (done) { /* oldest first */
		struct store_op *next = done->next;

		done->next = rev;
		rev = done;
		done = next;
	}
	while (rev) {
		struct store_op *next = rev->next;

		if (rev->kind == OP_TICKET) {
			if (rev->tfn)
				rev->tfn(s->d, rev->arg, &rev->t);
		} else if (rev->kind == OP_LIST) {
			rev->lfn(s->d, rev->arg, rev->r.answered ? rev->list : NULL, rev->r.error);
		} else if (rev->fn) {
			rev->fn(s->d, rev->name, &rev->r);
		}
		json_decref(rev->list);
		free(rev);
		rev = next;
	}
}

/* Hands op to the thread, after those asked before it. */
static void op_push(struct store *s, struct store_op *op)
{
	struct store_op **pp;

	pthread_mutex_lock(&s->mu);
	for (pp = &s->ops; *pp; pp = &(*pp)->next) /* in the order asked */
		;
	*pp = op;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static int queue_op(struct smigd *d, enum store_op_kind kind, const char *vm, const char *host,
		    const char *mig, const struct smig_host *pinned, store_owner_fn fn)
{
	struct store *s = d->store;
	struct store_op *op;

	if (s == NULL)
		return SMIG_ENOENT;
	op = calloc(1, sizeof(*op));
	if (op == NULL)
		return SMIG_ENOMEM;
	op->kind = kind;
	op->fn = fn;
	snprintf(op->name, sizeof(op->name), "%s", vm);
	snprintf(op->from, sizeof(op->from), "%s", host ? host : "");
	snprintf(op->mig, sizeof(op->mig), "%s", mig ? mig : "");
	if (pinned) {
		smig_fp_format(pinned->fp, op->fp);
		if (pinned->has_next)
			smig_fp_format(pinned->next_fp, op->fp_next);
	}
	snprintf(op->key, sizeof(op->key), "%s/vms/%s/owner", d->cfg.store_prefix, vm);
	op_push(s, op);
	return 0;
}

/* A ticket's key: this host's, this smigd's (its start), this migration's. */
static struct store_op *ticket_op(struct smigd *d, enum store_op_kind kind, uint64_t serial)
{
	struct store_op *op = calloc(1, sizeof(*op));

	if (op == NULL)
		return NULL;
	op->kind = kind;
	snprintf(op->queue, sizeof(op->queue), "%s/queue/", d->cfg.store_prefix);
	snprintf(op->places, sizeof(op->places), "%s", d->store->places);
	snprintf(op->key, sizeof(op->key), "%s%s/%lld-%s-%llu", op->queue, d->cfg.host,
		 (long long)d->started, d->store->nonce, (unsigned long long)serial);
	return op;
}

int store_ticket(struct smigd *d, uint64_t serial, const char *vm, const char *to,
		 bool evacuation, int cap, store_ticket_fn fn, void *arg)
{
	struct store_op *op;

	if (d->store == NULL)
		return SMIG_ENOENT;
	op = ticket_op(d, OP_TICKET, serial);
	if (op == NULL)
		return SMIG_ENOMEM;
	snprintf(op->value, sizeof(op->value),
		 "{\"host\":\"%s\",\"vm\":\"%s\",\"to\":\"%s\",\"evacuation\":%s,\"since\":%lld}",
		 d->cfg.host, vm, to, evacuation ? "true" : "false",
		 (long long)loop_wall_ms() / 1000);
	op->cap = cap;
	op->tfn = fn;
	op->arg = arg;
	op_push(d->store, op);
	return 0;
}

int store_ticket_drop(struct smigd *d, uint64_t serial)
{
	struct store_op *op;

	if (d->store == NULL)
		return SMIG_ENOENT;
	op = ticket_op(d, OP_TICKET_DROP, serial);
	if (op == NULL)
		return SMIG_ENOMEM;
	op_push(d->store, op);
	return 0;
}

int store_list_vms(struct smigd *d, store_list_fn fn, void *arg)
{
	struct store *s = d->store;
	struct store_op *op;

	if (s == NULL)
		return SMIG_ENOENT;
	op = calloc(1, sizeof(*op));
	if (op == NULL)
		return SMIG_ENOMEM;
	op->kind = OP_LIST;
	op->lfn = fn;
	op->arg = arg;
	snprintf(op->key, sizeof(op->key), "%s/vms/", d->cfg.store_prefix);
	op_push(s, op);
	return 0;
}

bool store_active(const struct smigd *d)
{
	return d->store != NULL;
}

int store_claim(struct smigd *d, const char *vm, const char *from, const char *mig,
		store_owner_fn fn)
{
	return queue_op(d, OP_CLAIM, vm, from, mig, NULL, fn);
}

int store_release(struct smigd *d, const char *vm, const char *from, const char *mig,
		  store_owner_fn fn)
{
	return queue_op(d, OP_RELEASE, vm, from, mig, NULL, fn);
}

int store_handover(struct smigd *d, const char *vm, const char *to, const char *mig,
		   store_owner_fn fn)
{
	const struct smig_host *h = smig_hosts_by_name(smigd_hosts(d), to);

	if (h == NULL)
		return SMIG_ENOENT;
	return queue_op(d, OP_HANDOVER, vm, to, mig, h, fn);
}

/* The record this host keeps in the store. */
static char *host_record(struct smigd *d, const struct store_capacity *c)
{
	const char *fp = d->store->fp;
	json_t *o;
	char *text;

	o = json_pack("{s:s,s:s,s:i,s:s,s:s,s:I,s:{s:I,s:I,s:I,s:I,s:I}}", "name", d->cfg.host,
		      "address", d->cfg.listen_addr, "port", (int)d->cfg.listen_port, "fingerprint",
		      fp, "version", SMIG_VERSION, "started", (json_int_t)d->started, "capacity",
		      "memory_mib", (json_int_t)c->memory_mib, "memory_free_mib",
		      (json_int_t)c->memory_free_mib, "vcpus", (json_int_t)c->vcpus, "vcpus_free",
		      (json_int_t)c->vcpus_free, "vms", (json_int_t)c->vms);
	text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	return text;
}

void store_set_capacity(struct smigd *d, const struct store_capacity *c)
{
	struct store *s = d->store;
	char *text;

	if (s == NULL || memcmp(&s->cap, c, sizeof(*c)) == 0)
		return;
	text = host_record(d, c);
	if (text == NULL)
		return; /* out of memory: the record says the old figures until the next change */
	s->cap = *c;
	pthread_mutex_lock(&s->mu);
	free(s->next_record);
	s->next_record = text;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
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
	snprintf(s->host, sizeof(s->host), "%s", c->host);
	s->started_ms = loop_now_ms();
	snprintf(s->prefix, sizeof(s->prefix), "%s/hosts/", c->store_prefix);
	snprintf(s->key, sizeof(s->key), "%s/hosts/%s", c->store_prefix, c->host);
	snprintf(s->tickets, sizeof(s->tickets), "%s/queue/%s/", c->store_prefix, c->host);
	snprintf(s->places, sizeof(s->places), "%s/queue-slots/", c->store_prefix);
	{
		unsigned char r[8];

		if (RAND_bytes(r, sizeof(r)) != 1)
			memset(r, 0, sizeof(r)); /* then the start time alone tells smigds apart */
		for (size_t i = 0; i < sizeof(r); i++)
			snprintf(s->nonce + 2 * i, 3, "%02x", r[i]);
	}
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
		/* the watch's: its call blocks for as long as it runs */
		s->wetcd = s->etcd ? smig_etcd_open(&ec, err, sizeof(err)) : NULL;
		rc = s->etcd && s->wetcd ? 0 : SMIG_ECONFIG;
	}
	free(ca);
	free(cert);
	if (key)
		OPENSSL_cleanse(key, strlen(key));
	free(key);
	smig_fp_format(smig_tls_ctx_fp(d->tls), s->fp);
	s->record = rc == 0 ? host_record(d, &s->cap) : NULL;
	if (rc == 0 && s->record == NULL)
		rc = SMIG_ENOMEM;
	s->efd = -1;
	if (rc == 0) {
		s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (s->efd < 0 || loop_watch_add(d->loop, s->efd, EPOLLIN, ops_done, s, &s->ew) < 0) {
			snprintf(err, sizeof(err), "cannot watch an eventfd: %s", strerror(errno));
			rc = SMIG_ECONFIG;
		}
	}
	if (rc < 0) {
		smig_err("event=store_failed backend=etcd reason=\"%s\"", err);
		return rc;
	}
	return 0;
}

int store_start(struct smigd *d)
{
	struct store *s = d->store;
	sigset_t all, was;
	int rc = 0;

	if (s == NULL)
		return 0;
	/*
	 * After the sandbox: Landlock, seccomp and no_new_privs hold for the
	 * thread that set them and the threads it starts after, not before.
	 * And every signal is the loop's (signalfd): none may land here.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &was);
	if (pthread_create(&s->th, NULL, store_thread, s) != 0)
		rc = SMIG_EIO;
	else
		s->started = true;
	if (rc == 0 && pthread_create(&s->wth, NULL, watch_thread, s) != 0)
		rc = SMIG_EIO;
	else if (rc == 0)
		s->wstarted = true;
	pthread_sigmask(SIG_SETMASK, &was, NULL);
	if (rc < 0) {
		smig_err("event=store_failed backend=etcd reason=\"cannot start its threads\"");
		return rc;
	}
	smig_info("event=store_started backend=etcd endpoints=%zu key=%s lease_ttl_s=%d",
		  d->cfg.nstore_endpoints, s->key, s->ttl_s);
	return loop_timer_add(d->loop, STORE_TICK_MS, store_tick, s, &s->tick);
}

void store_free(struct smigd *d)
{
	struct store *s = d->store;

	if (s == NULL)
		return;
	if (s->tick)
		loop_timer_cancel(d->loop, s->tick);
	if (s->started || s->wstarted) {
		/* the calls under way give up at once (before stop: the thread clears it after) */
		smig_etcd_abort(s->etcd, true);
		smig_etcd_abort(s->wetcd, true); /* and the watch ends with its stream */
		pthread_mutex_lock(&s->mu);
		s->stop = true;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
	}
	if (s->wstarted)
		pthread_join(s->wth, NULL);
	if (s->started) {
		pthread_join(s->th, NULL);
		smig_info("event=store_left key=%s lease_revoked=%s", s->key,
			  s->revoked      ? "yes"
			  : s->keep_lease ? "no (VMs run on: their records wait for the next smigd)"
					  : "no (the record goes when the lease runs out)");
	}
	if (s->ew)
		loop_watch_del(d->loop, s->ew);
	if (s->efd >= 0)
		close(s->efd);
	for (struct store_op *l[2] = { s->ops, s->done }, *op; l[0] || l[1];) {
		int i = l[0] ? 0 : 1;

		op = l[i];
		l[i] = op->next;
		if (op->kind == OP_LIST) /* its caller holds a request open: it ends */
			op->lfn(d, op->arg, NULL, "smigd stopped before etcd answered");
		json_decref(op->list);
		free(op); /* smigd stops: nobody else waits for these answers any more */
	}
	smig_etcd_close(s->etcd);
	smig_etcd_close(s->wetcd);
	view_clear(s);
	free(s->view);
	json_decref(s->members);
	free(s->record);
	free(s->next_record);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
	d->store = NULL;
}

/*
 * What is left of our lease by our clock, in ms (0: none, or run out): the
 * lease etcd granted at the last renewal, counted from before it was asked
 * (so it never outlives etcd's). Under mu.
 */
static uint64_t lease_left(const struct store *s, uint64_t now)
{
	uint64_t until;

	if (!s->registered || s->lease_ttl <= 0)
		return 0;
	until = s->renewed_ms + (uint64_t)s->lease_ttl * 1000;
	return until > now ? until - now : 0;
}

enum store_lease_state store_lease(struct smigd *d, uint64_t *left_ms, int64_t *lease)
{
	struct store *s = d->store;
	uint64_t now, third;
	enum store_lease_state st;

	*left_ms = 0;
	*lease = 0;
	if (s == NULL)
		return STORE_LEASE_SOUND;
	third = (uint64_t)s->ttl_s * 1000 / 3;
	pthread_mutex_lock(&s->mu);
	now = loop_now_ms();
	if (s->registered && s->lease_ttl > 0) {
		*left_ms = lease_left(s, now);
		*lease = s->lease;
		st = *left_ms > third ? STORE_LEASE_SOUND : STORE_LEASE_UNSOUND;
	} else {
		/* not registered since smigd started: a grace of a third of the TTL */
		st = s->grants == 0 && now < s->started_ms + third ? STORE_LEASE_GRACE
								     : STORE_LEASE_UNSOUND;
	}
	pthread_mutex_unlock(&s->mu);
	return st;
}

void store_keep_lease(struct smigd *d, bool keep)
{
	if (d->store)
		d->store->keep_lease = keep;
}

json_t *store_status_json(struct smigd *d)
{
	struct store *s = d->store;
	uint64_t now;
	json_t *o;

	if (s == NULL)
		return json_pack("{s:s}", "backend", "files");
	pthread_mutex_lock(&s->mu);
	now = loop_now_ms();
	o = json_pack("{s:s,s:s,s:b,s:b,s:s,s:I,s:I,s:s?,s:i,s:I,s:I}", "backend", "etcd", "key",
		      s->key, "reachable", s->up, "registered", lease_left(s, now) > 0, "lease",
		      "", /* set below: a number past 2^53 is text */
		      "lease_ttl_s", (json_int_t)s->lease_ttl, "renewed_ms_ago",
		      (json_int_t)(s->renewed_ms ? now - s->renewed_ms : 0), "endpoint",
		      s->endpoint[0] ? s->endpoint : NULL, "members", (int)json_array_size(s->members),
		      "state_since_ms_ago", (json_int_t)(s->since_ms ? now - s->since_ms : 0),
		      "grants", (json_int_t)s->grants);
	(void)json_object_set_new(o, "watching", json_boolean(s->watching));
	(void)json_object_set_new(o, "watch_events", json_integer((json_int_t)s->watch_events));
	(void)json_object_set_new(o, "view_resyncs", json_integer((json_int_t)s->resyncs));
	if (s->watch_error[0] && !s->watching)
		(void)json_object_set_new(o, "watch_error", json_string(s->watch_error));
	/* sound: more than a third of the TTL left (the fencing rule's test) */
	(void)json_object_set_new(o, "lease_sound",
				  json_boolean(lease_left(s, now) > (uint64_t)s->ttl_s * 1000 / 3));
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

/*
 * Whether a record is the one the host table's host would write: read at
 * its own key, a valid name in the table, and the fingerprint the table
 * pins (or the one it rotates to).
 */
static bool record_verified(struct smigd *d, const json_t *rec)
{
	const char *name = json_string_value(json_object_get(rec, "name"));
	const char *key = json_string_value(json_object_get(rec, "key"));
	const char *fp = json_string_value(json_object_get(rec, "fingerprint"));
	const struct smig_host *h;
	char want[SMIG_STORE_PREFIX_MAX + SMIG_NAME_MAX + 16], fps[SMIG_FP_STR_LEN];

	if (name == NULL || key == NULL || fp == NULL || !smig_name_valid(name))
		return false;
	snprintf(want, sizeof(want), "%s/hosts/%s", d->cfg.store_prefix, name);
	h = smig_hosts_by_name(smigd_hosts(d), name);
	if (strcmp(key, want) != 0 || h == NULL)
		return false;
	smig_fp_format(h->fp, fps);
	if (strcmp(fp, fps) == 0)
		return true;
	if (h->has_next) {
		smig_fp_format(h->next_fp, fps);
		return strcmp(fp, fps) == 0;
	}
	return false;
}

json_t *store_members_json(struct smigd *d)
{
	struct store *s = d->store;
	json_t *members, *out, *rec;
	uint64_t now;
	size_t i;
	json_t *o;
	bool up;
	uint64_t read_ms;

	if (s == NULL)
		return NULL;
	pthread_mutex_lock(&s->mu);
	members = json_incref(s->members); /* never changed once published: shared, not copied */
	up = s->up;
	read_ms = s->read_ms;
	now = loop_now_ms();
	pthread_mutex_unlock(&s->mu);
	out = json_array();
	json_array_foreach(members, i, rec) {
		json_t *r = json_copy(rec); /* shallow: only "verified" is added */

		if (r) {
			(void)json_object_set_new(r, "verified", json_boolean(record_verified(d, rec)));
			(void)json_array_append_new(out, r);
		}
	}
	json_decref(members);
	o = json_pack("{s:o,s:I,s:b}", "members", out, "read_ms_ago",
		      read_ms ? (json_int_t)(now - read_ms) : (json_int_t)-1, "reachable", up);
	return o;
}

size_t store_members(struct smigd *d, struct store_member **out)
{
	struct store *s = d->store;
	json_t *members, *rec;
	size_t i, n = 0;

	*out = NULL;
	if (s == NULL)
		return 0;
	pthread_mutex_lock(&s->mu);
	members = json_incref(s->members); /* never changed once published */
	pthread_mutex_unlock(&s->mu);
	*out = calloc(json_array_size(members) + 1, sizeof(**out));
	json_array_foreach(*out ? members : NULL, i, rec) {
		struct store_member *m = &(*out)[n];
		const json_t *c = json_object_get(rec, "capacity");

		if (!record_verified(d, rec))
			continue; /* another host could have written it in that name: no member */
		snprintf(m->name, sizeof(m->name), "%s",
			 json_string_value(json_object_get(rec, "name")));
		m->cap.memory_mib = (uint64_t)json_integer_value(json_object_get(c, "memory_mib"));
		m->cap.memory_free_mib =
			(uint64_t)json_integer_value(json_object_get(c, "memory_free_mib"));
		m->cap.vcpus = (uint64_t)json_integer_value(json_object_get(c, "vcpus"));
		m->cap.vcpus_free = (uint64_t)json_integer_value(json_object_get(c, "vcpus_free"));
		m->cap.vms = (uint64_t)json_integer_value(json_object_get(c, "vms"));
		n++;
	}
	json_decref(members);
	return n;
}
