/*
 * cmd_daemon.c - subcommands answered by smigd: status, hosts, ping.
 */
#include "client.h"
#include "commands.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void cli_print_json(const json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT);

	if (s) {
		puts(s);
		free(s);
	}
}

int cli_request(struct cli *cli, const char *cmd, json_t *args, json_t **result)
{
	json_t *reply = NULL;
	json_t *err;
	int rc = client_call(cli->socket, cmd, args, cli->timeout_ms, &reply);

	if (rc != 0)
		return rc;
	if (json_is_true(json_object_get(reply, "ok"))) {
		*result = json_incref(json_object_get(reply, "result"));
		json_decref(reply);
		return *result ? 0 : EXIT_ERROR;
	}
	err = json_object_get(reply, "error");
	rc = client_exit_code(json_string_value(json_object_get(err, "code")));
	if (cli->json)
		cli_print_json(reply);
	else
		fprintf(stderr, "smig %s: %s\n", cmd,
			json_string_value(json_object_get(err, "message"))
				? json_string_value(json_object_get(err, "message"))
				: "failed");
	json_decref(reply);
	return rc;
}

int cli_stream(struct cli *cli, const char *cmd, const char *key, int argc, char **argv,
	       const char *usage, void (*print)(void *arg, const json_t *item))
{
	json_t *args = json_object(), *reply = NULL;
	const json_t *err, *items;
	bool follow = false;
	char *end;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--follow") == 0) {
			follow = true;
		} else if (strcmp(argv[i], "--last") == 0 && i + 1 < argc && argv[i + 1][0] &&
			   strtol(argv[i + 1], &end, 10) >= 0 && *end == '\0') {
			json_object_set_new(args, "last", json_integer(strtol(argv[++i], NULL, 10)));
		} else {
			json_decref(args);
			fprintf(stderr, "usage: %s\n", usage);
			return EXIT_USAGE;
		}
	}
	json_object_set_new(args, "follow", json_boolean(follow));
	rc = client_call_progress(cli->socket, cmd, args, follow ? -1 : cli->timeout_ms, print,
				  cli, &reply);
	if (rc)
		return rc;
	err = json_object_get(reply, "error");
	if (!json_is_true(json_object_get(reply, "ok"))) {
		fprintf(stderr, "smig %s: %s\n", cmd,
			json_string_value(json_object_get(err, "message"))
				? json_string_value(json_object_get(err, "message"))
				: "failed");
		rc = client_exit_code(json_string_value(json_object_get(err, "code")));
	}
	items = json_object_get(json_object_get(reply, "result"), key);
	for (size_t i = 0; i < json_array_size(items); i++)
		print(cli, json_array_get(items, i));
	json_decref(reply);
	return rc;
}

static int no_args(const char *name, int argc)
{
	if (argc == 1)
		return 0;
	fprintf(stderr, "smig %s: takes no arguments\n", name);
	return EXIT_USAGE;
}

static const char *ago(json_int_t t, char *buf, size_t len)
{
	long d = (long)(time(NULL) - (time_t)t);

	if (t <= 0)
		return "never";
	snprintf(buf, len, "%lds ago", d < 0 ? 0 : d);
	return buf;
}

static void print_capacity(const json_t *c)
{
	const json_t *used = json_object_get(c, "used"), *res = json_object_get(c, "reserved"),
		     *fr = json_object_get(c, "free");

	if (c == NULL)
		return;
	printf("capacity     %lld MiB, %lld vCPUs (overcommit memory %.2g, cpu %.2g)\n",
	       json_integer_value(json_object_get(c, "memory_mib")),
	       json_integer_value(json_object_get(c, "vcpus")),
	       json_number_value(json_object_get(c, "memory_overcommit")),
	       json_number_value(json_object_get(c, "cpu_overcommit")));
	printf("  used       %lld MiB, %lld vCPUs; reserved by incoming %lld MiB, %lld vCPUs; "
	       "free %lld MiB, %lld vCPUs\n",
	       json_integer_value(json_object_get(used, "memory_mib")),
	       json_integer_value(json_object_get(used, "vcpus")),
	       json_integer_value(json_object_get(res, "memory_mib")),
	       json_integer_value(json_object_get(res, "vcpus")),
	       json_integer_value(json_object_get(fr, "memory_mib")),
	       json_integer_value(json_object_get(fr, "vcpus")));
}

/* "CN=h2,O=smig cluster, until 2027-03-01T10:00:00Z (84 days left)" and its state */
static void print_cert(const char *label, const json_t *c)
{
	const char *state = json_string_value(json_object_get(c, "state"));

	if (c == NULL)
		return;
	printf("%-12s %s, until %s (%lld days left)%s\n", label,
	       json_string_value(json_object_get(c, "subject")),
	       json_string_value(json_object_get(c, "not_after")),
	       json_integer_value(json_object_get(c, "days_left")),
	       state && strcmp(state, "expired") == 0	 ? ": EXPIRED, renew it"
	       : state && strcmp(state, "expiring") == 0 ? ": expiring soon, renew it"
							 : "");
}

/* "store        etcd at URL: registered, lease L (4 s), renewed 1.2 s ago; 3 members" */
static void print_store(const json_t *st)
{
	const char *err = json_string_value(json_object_get(st, "last_error"));

	if (st == NULL || strcmp(json_string_value(json_object_get(st, "backend")), "etcd") != 0) {
		printf("store        files (this host's own; no fleet store)\n");
		return;
	}
	printf("store        etcd%s%s: %s, lease %s (%lld s), renewed %.1f s ago; %lld members%s%s\n",
	       json_string_value(json_object_get(st, "endpoint")) ? " at " : "",
	       json_string_value(json_object_get(st, "endpoint")) ?: "",
	       json_is_true(json_object_get(st, "registered")) ? "registered" : "NOT registered",
	       json_string_value(json_object_get(st, "lease")),
	       json_integer_value(json_object_get(st, "lease_ttl_s")),
	       (double)json_integer_value(json_object_get(st, "renewed_ms_ago")) / 1000.0,
	       json_integer_value(json_object_get(st, "members")),
	       !json_is_true(json_object_get(st, "reachable")) ? "; UNREACHABLE: " : "",
	       !json_is_true(json_object_get(st, "reachable")) && err ? err : "");
	if (json_is_true(json_object_get(st, "watching")))
		printf("  view       kept by a watch: %lld changes, read whole %lld times since the "
		       "first\n",
		       json_integer_value(json_object_get(st, "watch_events")),
		       json_integer_value(json_object_get(st, "view_resyncs")));
	else
		printf("  view       NOT watched (members as last read): %s\n",
		       json_string_value(json_object_get(st, "watch_error")) ?: "starting");
}

/* "512M", "3.5G": a MiB count for a column. */
static const char *mib_str(json_int_t mib, char *out, size_t len)
{
	if (mib >= 10240)
		snprintf(out, len, "%lldG", (long long)(mib / 1024));
	else if (mib >= 1024)
		snprintf(out, len, "%.1fG", (double)mib / 1024.0);
	else
		snprintf(out, len, "%lldM", (long long)mib);
	return out;
}

/* The store's record of host name (NULL: none). */
static const json_t *store_member(const json_t *store, const char *name)
{
	const json_t *m;
	size_t i;

	json_array_foreach(json_object_get(store, "members"), i, m) {
		const char *n = json_string_value(json_object_get(m, "name"));

		/* a record another host could have written in its name is no proof */
		if (n && strcmp(n, name) == 0 && json_is_true(json_object_get(m, "verified")))
			return m;
	}
	return NULL;
}

int cmd_status(struct cli *cli, int argc, char **argv)
{
	json_t *r;
	int rc;

	(void)argv;
	if ((rc = no_args("status", argc)) || (rc = cli_request(cli, "status", NULL, &r)))
		return rc;
	if (cli->json) {
		cli_print_json(r);
	} else {
		printf("host         %s (smig %s, pid %lld, up %llds)\n",
		       json_string_value(json_object_get(r, "host")),
		       json_string_value(json_object_get(r, "version")),
		       json_integer_value(json_object_get(r, "pid")),
		       json_integer_value(json_object_get(r, "uptime_s")));
		printf("listen       %s port %lld\n", json_string_value(json_object_get(r, "listen")),
		       json_integer_value(json_object_get(r, "port")));
		printf("fingerprint  %s\n", json_string_value(json_object_get(r, "fingerprint")));
		print_cert("certificate", json_object_get(r, "certificate"));
		print_cert("ca", json_object_get(r, "ca"));
		printf("hosts        %lld in table, %lld peer connections open\n",
		       json_integer_value(json_object_get(r, "hosts")),
		       json_integer_value(json_object_get(r, "peers_connected")));
		printf("integrity    %s (%s)\n",
		       json_string_value(json_object_get(json_object_get(r, "attestation"), "verdict")),
		       json_string_value(json_object_get(json_object_get(r, "attestation"), "reason")));
		if (json_is_true(json_object_get(json_object_get(r, "maintenance"), "on")))
			printf("maintenance  on since %s by %s: %s\n",
			       json_string_value(json_object_get(json_object_get(r, "maintenance"),
								 "since")),
			       json_string_value(json_object_get(json_object_get(r, "maintenance"),
								 "by")),
			       json_string_value(json_object_get(json_object_get(r, "maintenance"),
								 "reason")));
		print_capacity(json_object_get(r, "capacity"));
		print_store(json_object_get(r, "store"));
	}
	json_decref(r);
	return EXIT_OK;
}

int cmd_hosts(struct cli *cli, int argc, char **argv)
{
	json_t *r;
	const json_t *store;
	json_t *h;
	size_t i;
	int rc;

	(void)argv;
	if ((rc = no_args("hosts", argc)) || (rc = cli_request(cli, "hosts", NULL, &r)))
		return rc;
	if (cli->json) {
		cli_print_json(r);
		json_decref(r);
		return EXIT_OK;
	}
	store = json_is_object(json_object_get(r, "store")) ? json_object_get(r, "store") : NULL;
	printf("%-12s %-22s %-4s %-10s %-10s %-9s %s%s\n", "NAME", "ADDRESS", "SELF", "VERDICT",
	       "ATTESTED", "LAST-OK", store ? "FLEET    MEM-FREE " : "", "REASON / LAST-ERROR");
	json_array_foreach(json_object_get(r, "hosts"), i, h) {
		const json_t *att = json_object_get(h, "attestation"), *rep;
		const char *err = json_string_value(json_object_get(h, "last_error"));
		char addr[80], when[32], at[32], addr_free[24];
		size_t k;

		snprintf(addr, sizeof(addr), "%s:%lld",
			 json_string_value(json_object_get(h, "address")),
			 json_integer_value(json_object_get(h, "port")));
		const json_t *mem = store_member(store, json_string_value(json_object_get(h, "name")));
		const json_t *free_mib =
			json_object_get(json_object_get(mem, "capacity"), "memory_free_mib");
		char fleet[40] = "";

		if (store && mem && json_is_integer(free_mib))
			snprintf(fleet, sizeof(fleet), "member   %-8s ",
				 mib_str(json_integer_value(free_mib), addr_free, sizeof(addr_free)));
		else if (store)
			snprintf(fleet, sizeof(fleet), "%-9s%-9s", mem ? "member" : "absent", "-");
		printf("%-12s %-22s %-4s %-10s %-10s %-9s %s%s%s%s%s\n",
		       json_string_value(json_object_get(h, "name")), addr,
		       json_is_true(json_object_get(h, "self")) ? "yes" : "",
		       att ? json_string_value(json_object_get(att, "verdict")) : "-",
		       ago(json_integer_value(json_object_get(att, "attested_at")), at, sizeof(at)),
		       ago(json_integer_value(json_object_get(h, "last_ok")), when, sizeof(when)),
		       fleet,
		       json_is_true(json_object_get(h, "maintenance")) ? "[maintenance] " : "",
		       att ? json_string_value(json_object_get(att, "reason")) : "",
		       err && err[0] ? " / " : "", err ? err : "");
		json_array_foreach(json_object_get(h, "reports"), k, rep)
			printf("%-12s   said %s by %s at %s: %s\n", "",
			       json_string_value(json_object_get(rep, "verdict")),
			       json_string_value(json_object_get(rep, "by")),
			       json_string_value(json_object_get(rep, "at")),
			       json_string_value(json_object_get(rep, "reason")));
	}
	/* the store's members the table does not list: seen, never trusted */
	json_array_foreach(json_object_get(store, "members"), i, h) {
		const char *n = json_string_value(json_object_get(h, "name"));
		bool listed = false;
		const json_t *t;
		size_t k;

		json_array_foreach(json_object_get(r, "hosts"), k, t)
			listed = listed || (n && strcmp(n, json_string_value(json_object_get(t, "name"))) == 0);
		if (!listed)
			printf("%-12s in the fleet store (%s) but not in the host table: not trusted\n",
			       n && strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == strlen(n) ? n : "?",
			       json_string_value(json_object_get(h, "key")));
		else if (!json_is_true(json_object_get(h, "verified")))
			printf("%-12s its record in the fleet store (%s) is not what the host table "
			       "says of it (key or certificate fingerprint): not trusted\n",
			       n, json_string_value(json_object_get(h, "key")));
	}
	if (store && !json_is_true(json_object_get(store, "reachable")))
		printf("(the fleet store is unreachable: members as read %.1f s ago)\n",
		       (double)json_integer_value(json_object_get(store, "read_ms_ago")) / 1000.0);
	json_decref(r);
	return EXIT_OK;
}

int cmd_ping(struct cli *cli, int argc, char **argv)
{
	json_t *r;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: smig ping HOST\n");
		return EXIT_USAGE;
	}
	rc = cli_request(cli, "ping", json_pack("{s:s}", "host", argv[1]), &r);
	if (rc)
		return rc;
	if (cli->json)
		cli_print_json(r);
	else
		printf("%s (%s): authenticated, %s, rtt %.3f ms (connect %.3f ms, handshake %.3f "
		       "ms), %s %s\n",
		       json_string_value(json_object_get(r, "host")),
		       json_string_value(json_object_get(r, "address")),
		       json_string_value(
			       json_object_get(json_object_get(r, "attestation"), "verdict")),
		       json_real_value(json_object_get(r, "rtt_ms")),
		       json_real_value(json_object_get(r, "connect_ms")),
		       json_real_value(json_object_get(r, "handshake_ms")),
		       json_string_value(json_object_get(r, "tls_version")),
		       json_string_value(json_object_get(r, "cipher")));
	json_decref(r);
	return EXIT_OK;
}

int cmd_version(struct cli *cli, int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return EXIT_USAGE;
	if (cli->json)
		printf("{\"version\":\"%s\"}\n", SMIG_VERSION);
	else
		printf("smig %s\n", SMIG_VERSION);
	return EXIT_OK;
}
