/*
 * smig-etcd-try - one call of smig's etcd client (src/lib/etcd.h) against
 * a real etcd, its result printed as one JSON line (with the endpoint that
 * answered), for the fleet store's tests.
 *
 *   smig-etcd-try --endpoints URL[,URL...] --ca F --cert F --key F
 *                 [--timeout-ms N] [--lease ID] [--prefix] CMD ARGS...
 *   CMD: get KEY | put KEY VALUE | cas KEY EXPECT VALUE | delif KEY EXPECT
 *        | del KEY | grant TTL | keepalive ID | revoke ID
 *
 * Exit 0 on success, 1 when the call failed (its message on stderr), 2 on
 * bad usage.
 */
#include "etcd.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
	fprintf(stderr, "usage: smig-etcd-try --endpoints URL[,URL...] --ca F --cert F --key F "
			"[--timeout-ms N] [--lease ID] [--prefix] get|put|cas|delif|del|grant|"
			"keepalive|revoke ARGS...\n");
	return 2;
}

static int64_t num(const char *s)
{
	return strtoll(s, NULL, 10);
}

static void print(json_t *o, const struct smig_etcd *e)
{
	char *s;

	(void)json_object_set_new(o, "endpoint", json_string(smig_etcd_endpoint(e)));
	s = json_dumps(o, JSON_COMPACT);
	if (s)
		puts(s);
	free(s);
	json_decref(o);
}

/* a lease id as text: jq would round a number past 2^53 */
static const char *idstr(int64_t id, char *buf)
{
	snprintf(buf, 24, "%" PRId64, id);
	return buf;
}

static json_t *kvs_json(const struct smig_etcd_kvs *k)
{
	json_t *a = json_array();
	char buf[24];

	for (size_t i = 0; i < k->n; i++)
		json_array_append_new(
			a, json_pack("{s:s,s:s,s:I,s:I,s:s}", "key", k->v[i].key, "value",
				     (const char *)k->v[i].value, "mod_revision",
				     (json_int_t)k->v[i].mod_revision, "version",
				     (json_int_t)k->v[i].version, "lease", idstr(k->v[i].lease, buf)));
	return json_pack("{s:I,s:I,s:o}", "revision", (json_int_t)k->revision, "count",
			 (json_int_t)k->count, "kvs", a);
}

static int run(struct smig_etcd *e, int argc, char **argv, int64_t lease, bool prefix)
{
	char err[512] = "";
	const char *cmd = argv[0];
	int64_t rev = 0, id = 0, ttl = 0, n = 0;
	char buf[24];
	bool done = false;
	int rc;

	if (strcmp(cmd, "get") == 0 && argc == 2) {
		struct smig_etcd_kvs k;

		rc = smig_etcd_get(e, argv[1], prefix, 0, &k, err, sizeof(err));
		if (rc == 0)
			print(kvs_json(&k), e);
		smig_etcd_kvs_free(&k);
	} else if (strcmp(cmd, "put") == 0 && argc == 3) {
		rc = smig_etcd_put(e, argv[1], argv[2], strlen(argv[2]), lease, &rev, err,
				   sizeof(err));
		if (rc == 0)
			print(json_pack("{s:I}", "revision", (json_int_t)rev), e);
	} else if (strcmp(cmd, "cas") == 0 && argc == 4) {
		rc = smig_etcd_cas(e, argv[1], num(argv[2]), argv[3], strlen(argv[3]), lease, &done,
				   &rev, err, sizeof(err));
		if (rc == 0)
			print(json_pack("{s:b,s:I}", "done", done, "revision", (json_int_t)rev), e);
	} else if (strcmp(cmd, "delif") == 0 && argc == 3) {
		rc = smig_etcd_delete_if(e, argv[1], num(argv[2]), &done, err, sizeof(err));
		if (rc == 0)
			print(json_pack("{s:b}", "done", done), e);
	} else if (strcmp(cmd, "del") == 0 && argc == 2) {
		rc = smig_etcd_delete(e, argv[1], prefix, &n, err, sizeof(err));
		if (rc == 0)
			print(json_pack("{s:I}", "deleted", (json_int_t)n), e);
	} else if (strcmp(cmd, "grant") == 0 && argc == 2) {
		rc = smig_etcd_lease_grant(e, num(argv[1]), &id, &ttl, err, sizeof(err));
		if (rc == 0)
			print(json_pack("{s:s,s:I}", "id", idstr(id, buf), "ttl", (json_int_t)ttl), e);
	} else if (strcmp(cmd, "keepalive") == 0 && argc == 2) {
		rc = smig_etcd_lease_keepalive(e, num(argv[1]), &ttl, err, sizeof(err));
		if (rc == 0)
			print(json_pack("{s:I}", "ttl", (json_int_t)ttl), e);
	} else if (strcmp(cmd, "revoke") == 0 && argc == 2) {
		rc = smig_etcd_lease_revoke(e, num(argv[1]), err, sizeof(err));
		if (rc == 0)
			print(json_object(), e);
	} else {
		return usage();
	}
	if (rc < 0) {
		fprintf(stderr, "smig-etcd-try: %s\n", err);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct smig_etcd_cfg cfg = { 0 };
	char err[512], *eps = NULL;
	int64_t lease = 0;
	bool prefix = false;
	struct smig_etcd *e;
	int i, rc;

	for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		const char *o = argv[i];

		if (strcmp(o, "--prefix") == 0) {
			prefix = true;
			continue;
		}
		if (i + 1 >= argc)
			return usage();
		if (strcmp(o, "--endpoints") == 0)
			eps = argv[++i];
		else if (strcmp(o, "--ca") == 0)
			cfg.ca = argv[++i];
		else if (strcmp(o, "--cert") == 0)
			cfg.cert = argv[++i];
		else if (strcmp(o, "--key") == 0)
			cfg.key = argv[++i];
		else if (strcmp(o, "--timeout-ms") == 0)
			cfg.timeout_ms = strtol(argv[++i], NULL, 10);
		else if (strcmp(o, "--lease") == 0)
			lease = num(argv[++i]);
		else
			return usage();
	}
	if (eps == NULL || i >= argc)
		return usage();
	for (char *t = strtok(eps, ","); t && cfg.nendpoints < SMIG_ETCD_ENDPOINTS_MAX;
	     t = strtok(NULL, ","))
		cfg.endpoints[cfg.nendpoints++] = t;
	e = smig_etcd_open(&cfg, err, sizeof(err));
	if (e == NULL) {
		fprintf(stderr, "smig-etcd-try: %s\n", err);
		return 1;
	}
	rc = run(e, argc - i, argv + i, lease, prefix);
	smig_etcd_close(e);
	return rc;
}
