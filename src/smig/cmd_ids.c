/*
 * cmd_ids.c - smig events [--follow] [--last N], smig ids status | unban
 * ADDR: the security monitor's commands (docs/ids.md).
 */
#include "client.h"
#include "commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s && s[0] ? s : "-";
}

static void when(json_int_t ms, char *out, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	strftime(out, len, "%H:%M:%S", gmtime_r(&t, &tm));
}

static void print_event(void *arg, const json_t *e)
{
	const struct cli *cli = arg;
	char at[16];

	if (cli->json) {
		cli_print_json(e);
	} else {
		when(json_integer_value(json_object_get(e, "time_ms")), at, sizeof(at));
		printf("%6lld %s %-20s %-16s %-8s %s\n", json_integer_value(json_object_get(e, "seq")),
		       at, str(e, "kind"), str(e, "addr"), str(e, "host"), str(e, "detail"));
	}
	fflush(stdout);
}

int cmd_events(struct cli *cli, int argc, char **argv)
{
	return cli_stream(cli, "events", "events", argc, argv,
			  "smig events [--follow] [--last N]", print_event);
}

static int ids_status(struct cli *cli)
{
	const json_t *b, *n;
	const char *kind;
	json_t *r;
	size_t i;
	int rc;

	if ((rc = cli_request(cli, "ids.status", NULL, &r)))
		return rc;
	if (cli->json) {
		cli_print_json(r);
		json_decref(r);
		return EXIT_OK;
	}
	printf("firewall: %s; %g new connections/s a source (burst %g); %lld sources tracked\n",
	       json_is_true(json_object_get(r, "hosts_only")) ? "host-table addresses only"
							      : "any address",
	       json_number_value(json_object_get(r, "conn_per_s")),
	       json_number_value(json_object_get(r, "conn_burst")),
	       json_integer_value(json_object_get(r, "sources_tracked")));
	printf("bans:\n");
	json_array_foreach(json_object_get(r, "bans"), i, b) {
		long left = (long)((json_integer_value(json_object_get(b, "until_ms")) -
				    (json_int_t)time(NULL) * 1000) / 1000);

		printf("  %-20s %lds left, ban #%lld\n", str(b, "addr"), left < 0 ? 0 : left,
		       json_integer_value(json_object_get(b, "strikes")));
	}
	if (json_array_size(json_object_get(r, "path_alarms"))) {
		printf("path alarms (records that failed authentication, by host; never a ban):\n");
		json_array_foreach(json_object_get(r, "path_alarms"), i, b)
			printf("  %-12s %-20s %lld in the last %lld s, %lld in all%s\n", str(b, "host"),
			       str(b, "addr"), json_integer_value(json_object_get(b, "failures")),
			       json_integer_value(json_object_get(b, "window_s")),
			       json_integer_value(json_object_get(b, "total")),
			       json_is_true(json_object_get(b, "alarm")) ? ", ALARM" : "");
	}
	printf("events since start:\n");
	json_object_foreach(json_object_get(r, "events"), kind, n)
		if (json_integer_value(n))
			printf("  %-20s %lld\n", kind, json_integer_value(n));
	json_decref(r);
	return EXIT_OK;
}

int cmd_ids(struct cli *cli, int argc, char **argv)
{
	json_t *r;
	int rc;

	if (argc == 2 && strcmp(argv[1], "status") == 0)
		return ids_status(cli);
	if (argc != 3 || strcmp(argv[1], "unban") != 0) {
		fprintf(stderr, "usage: smig ids status | unban ADDR\n");
		return EXIT_USAGE;
	}
	if ((rc = cli_request(cli, "ids.unban", json_pack("{s:s}", "addr", argv[2]), &r)))
		return rc;
	if (cli->json)
		cli_print_json(r);
	else
		printf("%s unbanned\n", argv[2]);
	json_decref(r);
	return EXIT_OK;
}
