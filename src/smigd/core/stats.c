/*
 * stats.c - what smigd counts for its metrics (smigd.h): migrations by
 * direction and outcome, their bytes and passes, and histograms of the
 * total time and the guest's pause of the completed outgoing ones. The
 * parts count; control/metrics.c reads and serves.
 */
#include "core/smigd.h"

/* seconds: a TCG test guest takes 0.2 s, a busy 16 GiB VM minutes */
const double stats_duration_bounds[] = { 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300 };
const size_t stats_duration_nbounds = sizeof(stats_duration_bounds) / sizeof(double);
/* seconds: what a guest notices starts around 0.1 s */
const double stats_downtime_bounds[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5 };
const size_t stats_downtime_nbounds = sizeof(stats_downtime_bounds) / sizeof(double);

static void observe(struct stats_hist *h, const double *bounds, size_t n, double v)
{
	size_t i = 0;

	while (i < n && v > bounds[i])
		i++;
	h->bucket[i]++; /* i == n: above every bound, counted only in +Inf */
	h->count++;
	h->sum += v;
}

void stats_migration_end(struct smigd *d, bool out, enum stats_outcome o, uint64_t bytes,
			 uint64_t passes, double total_s, double downtime_s)
{
	struct smigd_stats *s = &d->stats;

	s->gen++;
	s->migrations[out ? 0 : 1][o]++;
	s->bytes[out ? 0 : 1] += bytes;
	if (!out)
		return;
	s->passes += passes;
	if (o != STATS_COMPLETED)
		return;
	observe(&s->duration, stats_duration_bounds, stats_duration_nbounds, total_s);
	if (downtime_s >= 0)
		observe(&s->downtime, stats_downtime_bounds, stats_downtime_nbounds, downtime_s);
}
