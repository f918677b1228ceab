/*
 * cmd_migrate.c - smig migrate VM --to HOST [--downtime-ms N]
 * [--max-bandwidth MiB/s] [--channels N], smig migrate --cancel VM, and
 * the history:
 * smig migrate list [--last N] [--vm VM], smig migrate show ID.
 *
 * On a terminal a live progress bar; with --json one object per progress
 * event and the final result object.
 */
#include "client.h"
#include "commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct progress_ctx {
	bool json;
	bool tty;
	bool drawn;
};

static void show_progress(void *arg, const json_t *p)
{
	struct progress_ctx *c = arg;
	const char *phase = json_string_value(json_object_get(p, "phase"));
	double pct = json_number_value(json_object_get(p, "percent"));
	char bar[31];
	int fill;

	if (c->json) {
		json_t *o = json_pack("{s:O}", "progress", p);
		cli_print_json(o);
		json_decref(o);
		fflush(stdout);
		return;
	}
	if (!c->tty)
		return;
	fill = (int)(pct * 30 / 100);
	for (int i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = '\0';
	if (phase && strcmp(phase, "streaming") == 0)
		fprintf(stderr, "\r[%s] %5.1f%%  %7.1f MiB/s  dirty %6lld p/s  pass %lld  ETA %4.0fs ",
			bar, pct, json_number_value(json_object_get(p, "mbps")) / 8.388608,
			json_integer_value(json_object_get(p, "dirty_pages_rate")),
			json_integer_value(json_object_get(p, "pass")),
			json_number_value(json_object_get(p, "eta_s")));
	else
		fprintf(stderr, "\r[%s] %5.1f%%  %-50s", bar, pct, phase ? phase : "");
	c->drawn = true;
}

static int usage(void)
{
	fprintf(stderr, "usage: smig migrate VM --to HOST [--downtime-ms N] [--max-bandwidth MiB/s]\n"
			"                         [--channels N]\n"
			"       smig migrate --cancel VM\n"
			"       smig migrate list [--last N] [--vm VM]\n"
			"       smig migrate show ID\n");
	return EXIT_USAGE;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

static void print_row(const json_t *o)
{
	const json_t *dt = json_object_get(o, "downtime_ms");
	char down[16] = "-";

	if (dt)
		snprintf(down, sizeof(down), "%.1f", json_number_value(dt));
	printf("%-16.16s %-16s %-3s %-12s %-9s %-24s %9.0f %8s %s\n",
	       json_string_value(json_object_get(o, "id")),
	       json_string_value(json_object_get(o, "vm")),
	       json_string_value(json_object_get(o, "direction")),
	       json_string_value(json_object_get(o, "peer")),
	       json_string_value(json_object_get(o, "outcome")),
	       json_string_value(json_object_get(o, "started")),
	       json_number_value(json_object_get(o, "total_ms")), down,
	       json_string_value(json_object_get(o, "reason")) ?: "");
}

/* smig migrate list [--last N] [--vm VM] */
static int migrate_list(struct cli *cli, int argc, char **argv)
{
	json_t *args = json_object(), *r, *o;
	int last = 20;
	size_t i;
	int rc;

	for (int k = 2; k < argc; k++) {
		if (strcmp(argv[k], "--last") == 0 && k + 1 < argc) {
			if (parse_int(argv[++k], 0, 500, &last) < 0) {
				json_decref(args);
				fprintf(stderr, "smig migrate list: --last takes 0 to 500 (0: all)\n");
				return EXIT_USAGE;
			}
		} else if (strcmp(argv[k], "--vm") == 0 && k + 1 < argc) {
			json_object_set_new(args, "filter_vm", json_string(argv[++k]));
		} else {
			json_decref(args);
			fprintf(stderr, "usage: smig migrate list [--last N] [--vm VM]\n");
			return EXIT_USAGE;
		}
	}
	json_object_set_new(args, "last", json_integer(last));
	rc = cli_request(cli, "migrate.list", args, &r);
	if (rc)
		return rc;
	if (cli->json) {
		cli_print_json(r);
	} else {
		printf("%-16s %-16s %-3s %-12s %-9s %-24s %9s %8s %s\n", "ID", "VM", "DIR", "PEER",
		       "OUTCOME", "STARTED", "TOTAL-MS", "DOWN-MS", "REASON");
		json_array_foreach(json_object_get(r, "migrations"), i, o)
			print_row(o);
	}
	json_decref(r);
	return EXIT_OK;
}

/* smig migrate show ID */
static int migrate_show(struct cli *cli, const char *id)
{
	json_t *r, *p;
	size_t i;
	int rc = cli_request(cli, "migrate.show", json_pack("{s:s}", "id", id), &r);

	if (rc)
		return rc;
	if (cli->json) {
		cli_print_json(r);
		json_decref(r);
		return EXIT_OK;
	}
	printf("migration %s\n", json_string_value(json_object_get(r, "id")));
	printf("  %s %s %s, %s\n", json_string_value(json_object_get(r, "vm")),
	       strcmp(json_string_value(json_object_get(r, "direction")), "out") == 0 ? "to" : "from",
	       json_string_value(json_object_get(r, "peer")),
	       json_string_value(json_object_get(r, "outcome")));
	if (json_object_get(r, "reason"))
		printf("  reason: %s\n", json_string_value(json_object_get(r, "reason")));
	printf("  started %s, ended %s, %.1f ms in all\n",
	       json_string_value(json_object_get(r, "started")),
	       json_string_value(json_object_get(r, "ended")),
	       json_number_value(json_object_get(r, "total_ms")));
	json_array_foreach(json_object_get(r, "phases"), i, p)
		printf("  %-26s at %9.1f ms  took %9.1f ms\n",
		       json_string_value(json_object_get(p, "name")),
		       json_number_value(json_object_get(p, "at_ms")),
		       json_number_value(json_object_get(p, "ms")));
	if (json_object_get(r, "downtime_ms"))
		printf("  the guest's pause: %.1f ms (QEMU's own figure %lld ms)\n",
		       json_number_value(json_object_get(r, "downtime_ms")),
		       json_integer_value(json_object_get(r, "qemu_downtime_ms")));
	printf("  %lld bytes in %lld passes at %.0f Mbit/s%s%s\n",
	       json_integer_value(json_object_get(r, "bytes")),
	       json_integer_value(json_object_get(r, "passes")),
	       json_number_value(json_object_get(r, "mbps")),
	       json_string_length(json_object_get(r, "cipher")) ? ", " : "",
	       json_string_value(json_object_get(r, "cipher")) ?: "");
	if (json_string_length(json_object_get(r, "trust")))
		printf("  %s's verdict: %s\n", json_string_value(json_object_get(r, "peer")),
		       json_string_value(json_object_get(r, "trust")));
	if (json_string_length(json_object_get(r, "rule")))
		printf("  let in by the rule %s\n", json_string_value(json_object_get(r, "rule")));
	json_decref(r);
	return EXIT_OK;
}

static bool has_to(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--to") == 0)
			return true;
	return false;
}

int cmd_migrate(struct cli *cli, int argc, char **argv)
{
	struct progress_ctx pc = { .json = cli->json, .tty = isatty(2) != 0 };
	const char *vm = NULL;
	const char *to = NULL;
	bool cancel = false;
	int downtime = 0;
	int bw = 0;
	int channels = 0;
	json_t *args;
	json_t *reply = NULL;
	json_t *err;
	int rc;

	/* the history; a VM named list or show still moves with --to */
	if (argc >= 2 && strcmp(argv[1], "list") == 0 && !has_to(argc, argv))
		return migrate_list(cli, argc, argv);
	if (argc >= 2 && strcmp(argv[1], "show") == 0 && !has_to(argc, argv)) {
		if (argc != 3) {
			fprintf(stderr, "usage: smig migrate show ID\n");
			return EXIT_USAGE;
		}
		return migrate_show(cli, argv[2]);
	}
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--to") == 0 && i + 1 < argc)
			to = argv[++i];
		else if (strcmp(argv[i], "--cancel") == 0)
			cancel = true;
		else if (strcmp(argv[i], "--downtime-ms") == 0 && i + 1 < argc) {
			if (parse_int(argv[++i], 1, 60000, &downtime) < 0)
				return usage();
		} else if (strcmp(argv[i], "--max-bandwidth") == 0 && i + 1 < argc) {
			if (parse_int(argv[++i], 1, 1000000, &bw) < 0)
				return usage();
		} else if (strcmp(argv[i], "--channels") == 0 && i + 1 < argc) {
			if (parse_int(argv[++i], 1, 16, &channels) < 0)
				return usage();
		} else if (argv[i][0] != '-' && vm == NULL)
			vm = argv[i];
		else
			return usage();
	}
	if (vm == NULL || (!cancel && to == NULL))
		return usage();
	args = json_pack("{s:s}", "vm", vm);
	if (cancel)
		json_object_set_new(args, "cancel", json_true());
	else
		json_object_set_new(args, "to", json_string(to));
	if (downtime)
		json_object_set_new(args, "downtime_ms", json_integer(downtime));
	if (bw)
		json_object_set_new(args, "max_bandwidth", json_integer(bw));
	if (channels)
		json_object_set_new(args, "channels", json_integer(channels));
	rc = client_call_progress(cli->socket, "migrate", args, cli->timeout_ms, show_progress, &pc,
				  &reply);
	if (pc.drawn)
		fputc('\n', stderr);
	if (rc)
		return rc;
	if (!json_is_true(json_object_get(reply, "ok"))) {
		err = json_object_get(reply, "error");
		rc = client_exit_code(json_string_value(json_object_get(err, "code")));
		if (cli->json)
			cli_print_json(reply);
		else
			fprintf(stderr, "smig migrate: %s\n",
				json_string_value(json_object_get(err, "message")));
		json_decref(reply);
		return rc;
	}
	if (cli->json) {
		cli_print_json(json_object_get(reply, "result"));
	} else {
		const json_t *r = json_object_get(reply, "result");
		if (cancel)
			printf("%s: migration cancelled, the VM runs here\n", vm);
		else
			printf("%s: %s -> %s in %.0f ms (setup %.1f ms, downtime %.1f ms, QEMU "
			       "downtime %lld ms), %.1f MiB in %lld passes at %.0f Mbit/s, %s\n",
			       vm, json_string_value(json_object_get(r, "from")),
			       json_string_value(json_object_get(r, "to")),
			       json_number_value(json_object_get(r, "total_ms")),
			       json_number_value(json_object_get(r, "setup_ms")),
			       json_number_value(json_object_get(r, "downtime_ms")),
			       json_integer_value(json_object_get(r, "qemu_downtime_ms")),
			       (double)json_integer_value(json_object_get(r, "bytes")) / 1048576.0,
			       json_integer_value(json_object_get(r, "passes")),
			       json_number_value(json_object_get(r, "mbps")),
			       json_string_value(json_object_get(r, "cipher")));
		if (!cancel && json_is_string(json_object_get(r, "guest_detail")))
			printf("%s: the guest is %s after the switch-over: %s\n", vm,
			       json_string_value(json_object_get(r, "guest")),
			       json_string_value(json_object_get(r, "guest_detail")));
		if (!cancel && json_is_string(json_object_get(r, "id")))
			printf("%s: migration %s (smig migrate show %.16s has its phases)\n", vm,
			       json_string_value(json_object_get(r, "id")),
			       json_string_value(json_object_get(r, "id")));
		if (!cancel && json_is_string(json_object_get(r, "accel")) &&
		    strcmp(json_string_value(json_object_get(r, "accel")), "tcg") == 0)
			fprintf(stderr, "smig migrate: note: %s ran under QEMU's TCG (software "
					"emulation, no KVM): far slower than KVM, and its guest RAM is "
					"8 KiB short of the spec to keep QEMU's dirty tracking whole "
					"(docs/threat-model.md)\n",
				vm);
	}
	json_decref(reply);
	return EXIT_OK;
}
