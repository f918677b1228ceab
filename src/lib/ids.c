/*
 * ids.c - threshold rules, timed bans and connection rate limits (see
 * ids.h).
 */
#include "ids.h"
#include "error.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RULES_MAX 8
#define HIST 16 /* the largest count a rule may have */

struct source {
	bool used;
	char addr[SMIG_IDS_ADDR_MAX];
	int64_t last_seen;
	int64_t ban_until;
	int strikes;
	double tokens;
	int64_t tokens_at;
	int64_t hist[RULES_MAX][HIST]; /* event times per rule, a ring */
	uint8_t head[RULES_MAX];
};

struct smig_ids {
	struct smig_ids_rule rule[RULES_MAX];
	size_t nrules;
	struct smig_ids_limits lim;
	struct source *src; /* SMIG_IDS_SOURCES slots */
	size_t nused;
};

static const char *const kind_names[SMIG_SEC_KINDS] = {
	"conn_accepted", "conn_refused", "tls_failure", "unknown_peer",
	"attestation_failure", "policy_denial", "protocol_violation", "record_auth_failure",
	"stream_anomaly", "ban", "unban", "hostile_spec", "path_alarm",
};

static const struct smig_ids_rule default_rules[] = {
	{ SMIG_SEC_TLS_FAILURE, 5, 60, 60 },
	{ SMIG_SEC_UNKNOWN_PEER, 3, 60, 300 },
	{ SMIG_SEC_PROTOCOL_VIOLATION, 3, 60, 300 },
	{ SMIG_SEC_ATTEST_FAILURE, 3, 300, 600 },
};

const char *smig_sec_kind_name(enum smig_sec_kind k)
{
	return (unsigned)k < SMIG_SEC_KINDS ? kind_names[k] : "unknown";
}

int smig_sec_kind_parse(const char *s, enum smig_sec_kind *out)
{
	for (size_t i = 0; i < SMIG_SEC_KINDS; i++) {
		if (strcmp(s, kind_names[i]) == 0) {
			*out = (enum smig_sec_kind)i;
			return 0;
		}
	}
	return SMIG_EINVAL;
}

bool smig_sec_kind_bannable(enum smig_sec_kind k)
{
	switch (k) {
	case SMIG_SEC_TLS_FAILURE:
	case SMIG_SEC_UNKNOWN_PEER:
	case SMIG_SEC_ATTEST_FAILURE:
	case SMIG_SEC_POLICY_DENIAL:
	case SMIG_SEC_PROTOCOL_VIOLATION:
	case SMIG_SEC_STREAM_ANOMALY:
	case SMIG_SEC_HOSTILE_SPEC:
		return true;
	default:
		return false;
	}
}

const struct smig_ids_rule *smig_ids_default_rules(size_t *n)
{
	*n = ARRAY_LEN(default_rules);
	return default_rules;
}

int smig_ids_new(const struct smig_ids_rule *rules, size_t n,
		 const struct smig_ids_limits *lim, struct smig_ids **out)
{
	struct smig_ids *ids;

	SMIG_ENSURE(n <= RULES_MAX, SMIG_ETOOBIG);
	for (size_t i = 0; i < n; i++)
		SMIG_ENSURE((unsigned)rules[i].kind < SMIG_SEC_KINDS &&
				    smig_sec_kind_bannable(rules[i].kind) && rules[i].count >= 1 &&
				    rules[i].count <= HIST && rules[i].window_s >= 1 &&
				    rules[i].ban_s >= 1 && rules[i].ban_s <= SMIG_IDS_BAN_MAX_S,
			    SMIG_EINVAL);
	ids = calloc(1, sizeof(*ids));
	SMIG_ENSURE(ids != NULL, SMIG_ENOMEM);
	ids->src = calloc(SMIG_IDS_SOURCES, sizeof(*ids->src));
	if (ids->src == NULL) {
		free(ids);
		return SMIG_ENOMEM;
	}
	memcpy(ids->rule, rules, n * sizeof(*rules));
	ids->nrules = n;
	if (lim)
		ids->lim = *lim;
	*out = ids;
	return 0;
}

void smig_ids_free(struct smig_ids *ids)
{
	if (ids == NULL)
		return;
	free(ids->src);
	free(ids);
}

static struct source *find(const struct smig_ids *ids, const char *addr)
{
	for (size_t i = 0; i < SMIG_IDS_SOURCES; i++)
		if (ids->src[i].used && strcmp(ids->src[i].addr, addr) == 0)
			return &ids->src[i];
	return NULL;
}

/* The source's slot, made if need be (forgetting the stalest unbanned one). */
static struct source *get(struct smig_ids *ids, const char *addr, int64_t now)
{
	struct source *s = find(ids, addr), *victim = NULL;

	if (s == NULL) {
		for (size_t i = 0; i < SMIG_IDS_SOURCES && s == NULL; i++)
			if (!ids->src[i].used)
				s = &ids->src[i];
		for (size_t i = 0; s == NULL && i < SMIG_IDS_SOURCES; i++) {
			struct source *c = &ids->src[i];

			if (c->ban_until <= now && (victim == NULL || c->last_seen < victim->last_seen))
				victim = c;
		}
		if (s == NULL)
			s = victim;
		if (s == NULL)
			return NULL; /* every slot holds a ban in force */
		if (!s->used)
			ids->nused++;
		memset(s, 0, sizeof(*s));
		s->used = true;
		snprintf(s->addr, sizeof(s->addr), "%s", addr);
		s->tokens = ids->lim.burst;
		s->tokens_at = now;
	}
	s->last_seen = now;
	return s;
}

static int64_t ban_length(const struct smig_ids_rule *r, int strikes)
{
	int64_t ms = (int64_t)r->ban_s * 1000;

	for (int i = 0; i < strikes && ms < (int64_t)SMIG_IDS_BAN_MAX_S * 1000; i++)
		ms *= 2;
	return ms < (int64_t)SMIG_IDS_BAN_MAX_S * 1000 ? ms : (int64_t)SMIG_IDS_BAN_MAX_S * 1000;
}

bool smig_ids_event(struct smig_ids *ids, const char *addr, enum smig_sec_kind kind,
		    int64_t now_ms, int64_t *ban_ms, size_t *rule)
{
	struct source *s = get(ids, addr, now_ms);

	if (s == NULL)
		return false;
	for (size_t r = 0; r < ids->nrules; r++) {
		const struct smig_ids_rule *ru = &ids->rule[r];
		int within = 0;

		if (ru->kind != kind)
			continue;
		s->hist[r][s->head[r]] = now_ms;
		s->head[r] = (uint8_t)((s->head[r] + 1) % HIST);
		for (size_t i = 0; i < HIST; i++)
			within += s->hist[r][i] > 0 && s->hist[r][i] > now_ms - (int64_t)ru->window_s * 1000;
		if (within < ru->count || s->ban_until > now_ms)
			continue;
		memset(s->hist[r], 0, sizeof(s->hist[r]));
		if (ban_ms)
			*ban_ms = ban_length(ru, s->strikes);
		s->ban_until = now_ms + ban_length(ru, s->strikes);
		s->strikes++;
		if (rule)
			*rule = r;
		return true;
	}
	return false;
}

enum smig_ids_admit smig_ids_admit(struct smig_ids *ids, const char *addr, int64_t now_ms)
{
	struct source *s = find(ids, addr);

	if (s && s->ban_until > now_ms)
		return SMIG_ADMIT_BANNED;
	if (ids->lim.burst <= 0)
		return SMIG_ADMIT_OK;
	s = s ? s : get(ids, addr, now_ms);
	if (s == NULL)
		return SMIG_ADMIT_RATE;
	s->last_seen = now_ms;
	if (now_ms > s->tokens_at)
		s->tokens += (double)(now_ms - s->tokens_at) * ids->lim.rate_per_s / 1000.0;
	if (s->tokens > ids->lim.burst)
		s->tokens = ids->lim.burst;
	s->tokens_at = now_ms;
	if (s->tokens < 1.0)
		return SMIG_ADMIT_RATE;
	s->tokens -= 1.0;
	return SMIG_ADMIT_OK;
}

int smig_ids_ban(struct smig_ids *ids, const char *addr, int64_t now_ms, int64_t until_ms,
		 int strikes)
{
	struct source *s = get(ids, addr, now_ms);

	SMIG_ENSURE(s != NULL, SMIG_ENOMEM);
	s->ban_until = until_ms;
	s->strikes = strikes;
	return 0;
}

int smig_ids_unban(struct smig_ids *ids, const char *addr, int64_t now_ms)
{
	struct source *s = find(ids, addr);

	SMIG_ENSURE(s != NULL && s->ban_until > now_ms, SMIG_ENOENT);
	s->ban_until = 0;
	s->strikes = 0;
	memset(s->hist, 0, sizeof(s->hist));
	return 0;
}

size_t smig_ids_bans(const struct smig_ids *ids, int64_t now_ms, struct smig_ids_ban_info *out,
		     size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < SMIG_IDS_SOURCES && n < max; i++) {
		const struct source *s = &ids->src[i];

		if (!s->used || s->ban_until <= now_ms)
			continue;
		snprintf(out[n].addr, sizeof(out[n].addr), "%s", s->addr);
		out[n].until_ms = s->ban_until;
		out[n].strikes = s->strikes;
		n++;
	}
	return n;
}

size_t smig_ids_sources(const struct smig_ids *ids)
{
	return ids->nused;
}

int smig_ids_bans_dump(const struct smig_ids *ids, int64_t now_ms, char **text)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < SMIG_IDS_SOURCES; i++) {
		const struct source *s = &ids->src[i];

		if (s->used && s->ban_until > now_ms)
			json_array_append_new(arr, json_pack("{s:s,s:I,s:i}", "addr", s->addr,
							     "until_ms", (json_int_t)s->ban_until,
							     "strikes", s->strikes));
	}
	*text = arr ? json_dumps(arr, JSON_INDENT(1)) : NULL;
	json_decref(arr);
	return *text ? 0 : SMIG_ENOMEM;
}

int smig_ids_bans_load(struct smig_ids *ids, const char *text, size_t len, int64_t now_ms)
{
	json_t *arr = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL), *b;
	int n = 0;
	size_t i;

	if (!json_is_array(arr)) {
		json_decref(arr);
		return SMIG_EPROTO;
	}
	json_array_foreach(arr, i, b) {
		const char *addr = json_string_value(json_object_get(b, "addr"));
		const json_t *until = json_object_get(b, "until_ms");
		const json_t *strikes = json_object_get(b, "strikes");

		if (addr == NULL || addr[0] == '\0' || strlen(addr) >= SMIG_IDS_ADDR_MAX ||
		    !json_is_integer(until) || json_integer_value(until) <= now_ms ||
		    json_integer_value(until) > now_ms + (json_int_t)SMIG_IDS_BAN_MAX_S * 1000 ||
		    !json_is_integer(strikes) || json_integer_value(strikes) < 0 ||
		    json_integer_value(strikes) > 64)
			continue;
		if (smig_ids_ban(ids, addr, now_ms, (int64_t)json_integer_value(until),
				 (int)json_integer_value(strikes)) == 0)
			n++;
	}
	json_decref(arr);
	return n;
}
