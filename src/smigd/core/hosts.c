/*
 * hosts.c - the cluster's host table as this worker holds it, and what is
 * known of each host between contacts (smigd.h, "hosts.c"): the last
 * successful and failed exchange, the round trip, and the last verdict on
 * it with its evidence. A new table (start, reload) is taken only when it
 * names this host with its own certificate (as its fingerprint, or its
 * next_fingerprint during a rotation); what was known of each host
 * carries over while the certificates it was learnt with are still its.
 */
#include "core/smigd.h"
#include "error.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hosts {
	struct smig_hosts table;
	struct host_state *state; /* parallel to table.v */
};

static const struct smig_hosts empty;

const struct smig_hosts *smigd_hosts(const struct smigd *d)
{
	return d->hosts ? &d->hosts->table : &empty;
}

struct host_state *smigd_host_state(struct smigd *d, const char *name)
{
	struct hosts *h = d->hosts;

	for (size_t i = 0; h && i < h->table.n; i++)
		if (strcmp(h->state[i].name, name) == 0)
			return &h->state[i];
	return NULL;
}

struct host_state *smigd_host_state_at(struct smigd *d, size_t i)
{
	return d->hosts && i < d->hosts->table.n ? &d->hosts->state[i] : NULL;
}

static int check_self(const struct smigd *d, const struct smig_hosts *h, char *err,
		      size_t errlen)
{
	const struct smig_host *self = smig_hosts_by_name(h, d->cfg.host);

	if (self == NULL) {
		snprintf(err, errlen, "%s: this host (%s) is not in the host table",
			 d->cfg.hosts_file, d->cfg.host);
		return SMIG_ECONFIG;
	}
	if (!smig_host_has_fp(self, smig_tls_ctx_fp(d->tls))) {
		char fp[SMIG_FP_STR_LEN];

		smig_fp_format(smig_tls_ctx_fp(d->tls), fp);
		snprintf(err, errlen, "%s: the fingerprint of %s does not match %s (%s): list it "
			 "as %s's fingerprint, or as its next_fingerprint while it rotates",
			 d->cfg.hosts_file, d->cfg.host, d->cfg.tls_cert, fp, d->cfg.host);
		return SMIG_ECONFIG;
	}
	return 0;
}

/*
 * The table's certificates of was are all still nh's: what was learnt
 * about the host (its verdict was made on one of them) still holds.
 */
static bool same_certs(const struct smig_host *was, const struct smig_host *now)
{
	return smig_host_has_fp(now, was->fp) && (!was->has_next || smig_host_has_fp(now, was->next_fp));
}

/* A certificate the table lists for a host and revokes: the revocation wins; say so. */
static void note_revoked(const struct smig_hosts *nh)
{
	char fp[SMIG_FP_STR_LEN];

	for (size_t i = 0; i < nh->n; i++) {
		const struct smig_host *h = &nh->v[i];
		const uint8_t *both[2] = { h->fp, h->has_next ? h->next_fp : NULL };

		for (size_t k = 0; k < 2; k++) {
			const struct smig_revoked *r = both[k] ? smig_hosts_revoked(nh, both[k]) : NULL;

			if (r == NULL)
				continue;
			smig_fp_format(both[k], fp);
			smig_warn("event=host_certificate_revoked host=%s fingerprint=%s reason=\"%s\" "
				  "action=\"refused; the host's other certificate serves\"",
				  h->name, fp, r->reason);
		}
	}
}

int hosts_install(struct smigd *d, struct smig_hosts *nh, char *err, size_t errlen)
{
	struct host_state *ns;

	SMIG_GUARD(check_self(d, nh, err, errlen));
	note_revoked(nh);
	if (d->hosts == NULL && (d->hosts = calloc(1, sizeof(*d->hosts))) == NULL)
		return SMIG_ENOMEM;
	ns = calloc(nh->n ? nh->n : 1, sizeof(*ns));
	SMIG_ENSURE(ns != NULL, SMIG_ENOMEM);
	for (size_t i = 0; i < nh->n; i++) {
		struct host_state *old = smigd_host_state(d, nh->v[i].name);
		const struct smig_host *was = smig_hosts_by_name(&d->hosts->table, nh->v[i].name);

		/* a host with another certificate now is known afresh: no verdict carries over */
		if (old && was && same_certs(was, &nh->v[i]))
			ns[i] = *old;
		snprintf(ns[i].name, sizeof(ns[i].name), "%s", nh->v[i].name);
	}
	smig_hosts_clear(&d->hosts->table);
	free(d->hosts->state);
	d->hosts->table = *nh;
	d->hosts->state = ns;
	memset(nh, 0, sizeof(*nh));
	return 0;
}

void hosts_free(struct smigd *d)
{
	if (d->hosts == NULL)
		return;
	smig_hosts_clear(&d->hosts->table);
	free(d->hosts->state);
	free(d->hosts);
	d->hosts = NULL;
}
