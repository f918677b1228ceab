/*
 * cmd_migrate.c - smig migrate VM --to HOST [--downtime-ms N]
 * [--max-bandwidth MiB/s] [--channels N]; the job from any terminal:
 * smig migrate watch VM|ID, smig migrate cancel VM|ID (or --cancel VM);
 * and the history: smig migrate list [--last N] [--vm VM], smig migrate
 * show ID.
 *
 * On a terminal a live progress bar; with --json one object per progress
 * event and the final result object. The migration's id is printed as
 * soon as the destination has given it. Ctrl-C detaches: the migration
 * goes on in smigd, and watch re-attaches.
 */
#include "client.h"
#include "commands.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct progress_ctx {
	bool json;
	bool tty;
	bool drawn;
	bool id_told;
	const char *vm;
};

/*
 * What Ctrl-C prints before the command exits: made ready beforehand (a
 * signal handler may only write), and made again once the id is known;
 * detach_cur says which of the two is whole.
 */
static char detach_msg[2][512];
static volatile sig_atomic_t detach_cur = -1;

static void detach_set(const char *vm, const char *job)
{
	int next = detach_cur == 0 ? 1 : 0;

	snprintf(detach_msg[next], sizeof(detach_msg[next]),
		 "\nsmig migrate: detached; the migration of %s goes on: smig migrate watch %s "
		 "re-attaches, smig migrate cancel %s stops it\n",
		 vm, job, job);
	atomic_signal_fence(memory_order_seq_cst); /* the message whole before the handler may see it */
	detach_cur = next;
}

static void on_interrupt(int sig)
{
	int cur = detach_cur;

	(void)sig;
	if (cur >= 0) {
		ssize_t n = write(STDERR_FILENO, detach_msg[cur], strlen(detach_msg[cur]));
		(void)n;
	}
	_exit(EXIT_DETACHED);
}

static void detach_on_interrupt(const char *vm)
{
	struct sigaction sa = { .sa_handler = on_interrupt };

	detach_set(vm, vm);
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGINT, &sa, NULL);
}

/* The migration's id, once the destination gave it: said once, and what Ctrl-C says. */
static void tell_id(struct progress_ctx *c, const json_t *p)
{
	const char *id = json_string_value(json_object_get(p, "id"));
	char job[24];

	if (c->id_told || id == NULL)
		return;
	c->id_told = true;
	snprintf(job, sizeof(job), "%.16s", id);
	detach_set(c->vm, job);
	if (c->json)
		return;
	fprintf(stderr, "%smigration %s of %s (Ctrl-C detaches, smig migrate watch %s "
			"re-attaches)\n",
		c->drawn ? "\r\033[K" : "", id, c->vm, job);
}

static void show_progress(void *arg, const json_t *p)
{
	struct progress_ctx *c = arg;
	const char *phase = json_string_value(json_object_get(p, "phase"));
	double pct = json_number_value(json_object_get(p, "percent"));
	char bar[31];
	int fill;

	tell_id(c, p);
	if (c->json) {
		json_t *o = json_pack("{s:O}", "progress", p);
		cli_print_json(o);
		json_decref(o);
		fflush(stdout);
		return;
	}
	if (phase && strcmp(phase, "placed") == 0) { /* --to auto: where, and why there */
		fprintf(stderr, "%s%s goes to %s: %s\n", c->drawn ? "\r\033[K" : "", c->vm,
			json_string_value(json_object_get(p, "to")),
			json_string_value(json_object_get(p, "reason")));
		c->drawn = false;
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
	fprintf(stderr, "usage: smig migrate VM --to HOST|auto [--downtime-ms N] [--max-bandwidth MiB/s]\n"
			"                         [--channels N]\n"
			"       smig migrate watch VM|ID\n"
			"       smig migrate cancel VM|ID   (or: smig migrate --cancel VM)\n"
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
		printf("  reason: %s (ended by the %s)\n",
		       json_string_value(json_object_get(r, "reason")),
		       json_string_value(json_object_get(r, "failed_by")) ?: "source");
	if (json_object_get(r, "policy"))
		printf("  migration policy %s\n", json_string_value(json_object_get(r, "policy")));
	if (json_object_get(r, "queued_ms"))
		printf("  waited %lld ms in the queue before it began\n",
		       json_integer_value(json_object_get(r, "queued_ms")));
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
	if (json_object_get(r, "dirty_pages_rate"))
		printf("  the guest dirtied %lld pages/s (QEMU's last figure)\n",
		       json_integer_value(json_object_get(r, "dirty_pages_rate")));
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

/* The end of a migration, as smig migrate and smig migrate watch print it. */
static int print_end(struct cli *cli, const char *vm, json_t *reply, bool cancel)
{
	const json_t *r = json_object_get(reply, "result");
	const json_t *err;
	int rc;

	if (!json_is_true(json_object_get(reply, "ok"))) {
		err = json_object_get(reply, "error");
		rc = client_exit_code(json_string_value(json_object_get(err, "code")));
		if (cli->json)
			cli_print_json(reply);
		else
			fprintf(stderr, "smig migrate: %s\n",
				json_string_value(json_object_get(err, "message")));
		return rc;
	}
	if (cli->json) {
		cli_print_json(r);
		return EXIT_OK;
	}
	if (cancel) {
		printf("%s: migration %s cancelled, the VM runs here\n",
		       json_string_value(json_object_get(r, "vm")) ?: vm,
		       json_string_value(json_object_get(r, "id")) ?: "");
		return EXIT_OK;
	}
	vm = json_string_value(json_object_get(r, "vm")) ?: vm;
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
	if (json_is_string(json_object_get(r, "guest_detail")))
		printf("%s: the guest is %s after the switch-over: %s\n", vm,
		       json_string_value(json_object_get(r, "guest")),
		       json_string_value(json_object_get(r, "guest_detail")));
	if (json_is_string(json_object_get(r, "id")))
		printf("%s: migration %s (smig migrate show %.16s has its phases)\n", vm,
		       json_string_value(json_object_get(r, "id")),
		       json_string_value(json_object_get(r, "id")));
	if (json_is_string(json_object_get(r, "accel")) &&
	    strcmp(json_string_value(json_object_get(r, "accel")), "tcg") == 0)
		fprintf(stderr, "smig migrate: note: %s ran under QEMU's TCG (software "
				"emulation, no KVM): far slower than KVM, and its guest RAM is "
				"8 KiB short of the spec to keep QEMU's dirty tracking whole "
				"(docs/threat-model.md)\n",
			vm);
	return EXIT_OK;
}

/* A request that reports progress until the migration ends: migrate, migrate.watch. */
static int follow(struct cli *cli, const char *cmd, const char *vm, json_t *args, bool cancel)
{
	struct progress_ctx pc = { .json = cli->json, .tty = isatty(2) != 0, .vm = vm };
	json_t *reply = NULL;
	int rc;

	if (!cancel)
		detach_on_interrupt(vm);
	rc = client_call_progress(cli->socket, cmd, args, cli->timeout_ms, show_progress, &pc,
				  &reply);
	(void)signal(SIGINT, SIG_DFL); /* it has ended: nothing left to detach from */
	if (pc.drawn)
		fputc('\n', stderr);
	if (rc)
		return rc;
	rc = print_end(cli, vm, reply, cancel);
	json_decref(reply);
	return rc;
}

int cmd_migrate(struct cli *cli, int argc, char **argv)
{
	const char *vm = NULL;
	const char *to = NULL;
	bool cancel = false;
	int downtime = 0;
	int bw = 0;
	int channels = 0;
	json_t *args;

	/* the job and the history; a VM named list, show, watch or cancel still moves with --to */
	if (argc >= 2 && strcmp(argv[1], "list") == 0 && !has_to(argc, argv))
		return migrate_list(cli, argc, argv);
	if (argc >= 2 && strcmp(argv[1], "show") == 0 && !has_to(argc, argv)) {
		if (argc != 3) {
			fprintf(stderr, "usage: smig migrate show ID\n");
			return EXIT_USAGE;
		}
		return migrate_show(cli, argv[2]);
	}
	if (argc >= 2 && (strcmp(argv[1], "watch") == 0 || strcmp(argv[1], "cancel") == 0) &&
	    !has_to(argc, argv)) {
		if (argc != 3) {
			fprintf(stderr, "usage: smig migrate %s VM|ID\n", argv[1]);
			return EXIT_USAGE;
		}
		if (strcmp(argv[1], "watch") == 0)
			return follow(cli, "migrate.watch", argv[2],
				      json_pack("{s:s}", "vm", argv[2]), false);
		return follow(cli, "migrate", argv[2],
			      json_pack("{s:s,s:b}", "vm", argv[2], "cancel", 1), true);
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
	return follow(cli, "migrate", vm, args, cancel);
}
