/*
 * cmd_vm.c - smig vm define FILE | undefine | start | show | console |
 * ping NAME | stop|reboot NAME [--force] [--timeout S] | resume NAME
 * [--force] | list | check FILE [--config CONF] [--incoming].
 */
#include "client.h"
#include "commands.h"
#include "config.h"
#include "vmcheck.h"
#include "vmspec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void print_vm_row(const json_t *v)
{
	const json_t *mig = json_object_get(v, "migration");
	char state[SMIG_NAME_MAX + 16];

	/* a VM in a migration says so, and where to or from */
	if (json_is_object(mig) && json_is_string(json_object_get(mig, "to")))
		snprintf(state, sizeof(state), "migrating>%s",
			 json_string_value(json_object_get(mig, "to")));
	else if (json_is_object(mig) && json_is_string(json_object_get(mig, "from")))
		snprintf(state, sizeof(state), "arriving<%s",
			 json_string_value(json_object_get(mig, "from")));
	else
		snprintf(state, sizeof(state), "%s", json_string_value(json_object_get(v, "state")));
	printf("%-20s %-9s %6lld %5lld %-5s %-9s %s\n", json_string_value(json_object_get(v, "name")),
	       state,
	       json_integer_value(json_object_get(v, "memory_mib")),
	       json_integer_value(json_object_get(v, "vcpus")),
	       json_is_true(json_object_get(v, "vtpm")) ? "yes" : "no",
	       json_string_value(json_object_get(v, "min_trust")),
	       json_string_value(json_object_get(v, "last_error")));
}

static void print_vm_header(void)
{
	printf("%-20s %-9s %6s %5s %-5s %-9s %s\n", "NAME", "STATE", "MEM", "CPUS", "VTPM", "TRUST",
	       "LAST-ERROR");
}

static int vm_define_file(struct cli *cli, const char *path)
{
	struct smig_vmspec spec;
	char err[512];
	char *text;
	json_t *r;
	int rc;

	/* validate locally first: the error names this file, line and column */
	if (smig_vmspec_load(path, &spec, err, sizeof(err)) < 0) {
		fprintf(stderr, "smig vm define: %s\n", err);
		return EXIT_ERROR;
	}
	if (smig_vmspec_dump(&spec, &text) < 0)
		return EXIT_ERROR;
	rc = cli_request(cli, "vm.define",
			 json_pack("{s:o}", "spec", json_loads(text, 0, NULL)), &r);
	free(text);
	if (rc)
		return rc;
	if (cli->json)
		cli_print_json(r);
	else if (!json_is_string(json_object_get(r, "changed")))
		printf("%s defined\n", json_string_value(json_object_get(r, "name")));
	else if (json_string_length(json_object_get(r, "changed")) == 0)
		printf("%s: the spec is the one it has; nothing changed\n",
		       json_string_value(json_object_get(r, "name")));
	else
		printf("%s redefined: %s changed%s\n", json_string_value(json_object_get(r, "name")),
		       json_string_value(json_object_get(r, "changed")),
		       strcmp(json_string_value(json_object_get(r, "state")), "shutoff") != 0 &&
				       strcmp(json_string_value(json_object_get(r, "state")),
					      "defined") != 0
			       ? " (it runs on)"
			       : "");
	json_decref(r);
	return EXIT_OK;
}

static void print_history(const json_t *r)
{
	const json_t *e;
	size_t i;

	printf("autostart: %s, shutdown timeout %lld s%s%s\n",
	       json_is_true(json_object_get(r, "autostart")) ? "yes" : "no",
	       json_integer_value(json_object_get(r, "shutdown_timeout_s")),
	       json_is_string(json_object_get(r, "operation")) ? ", now " : "",
	       json_string_value(json_object_get(r, "operation")) ?: "");
	if (json_array_size(json_object_get(r, "history")) == 0)
		return;
	printf("history:\n");
	json_array_foreach(json_object_get(r, "history"), i, e)
		printf("  %s  %-9s %s\n", json_string_value(json_object_get(e, "at")),
		       json_string_value(json_object_get(e, "state")),
		       json_string_value(json_object_get(e, "why")));
}

/* How a stop or reboot ended, after the VM's row. */
static void print_power(const char *name, const json_t *r)
{
	const json_t *stop = json_object_get(r, "stop"), *reboot = json_object_get(r, "reboot");
	const char *how;

	if (stop) {
		how = json_string_value(json_object_get(stop, "how"));
		if (strcmp(how, "guest") == 0)
			printf("%s: the guest powered off in %.1f s\n", name,
			       json_real_value(json_object_get(stop, "seconds")));
		else
			printf("%s: stopped by force after %.1f s (the guest had %lld s)\n", name,
			       json_real_value(json_object_get(stop, "seconds")),
			       json_integer_value(json_object_get(stop, "timeout_s")));
	}
	if (reboot) {
		how = json_string_value(json_object_get(reboot, "how"));
		if (strcmp(how, "guest") == 0)
			printf("%s: rebooted: the guest shut down and runs again after %.1f s\n",
			       name, json_real_value(json_object_get(reboot, "seconds")));
		else
			printf("%s: reset\n", name);
	}
}

/* smig vm stop|reboot NAME [--force] [--timeout S] */
static int vm_power(struct cli *cli, int argc, char **argv)
{
	const char *sub = argv[1], *name = NULL;
	char cmd[32], *end;
	bool force = false;
	long t = 0;
	json_t *args, *r;
	int rc;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--force") == 0) {
			force = true;
		} else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			t = strtol(argv[++i], &end, 10);
			if (*end != '\0' || t < 1 || t > SMIG_VM_SHUTDOWN_TIMEOUT_MAX) {
				fprintf(stderr, "smig vm %s: --timeout %s: give seconds, 1 to %d\n",
					sub, argv[i], SMIG_VM_SHUTDOWN_TIMEOUT_MAX);
				return EXIT_USAGE;
			}
		} else if (name == NULL && argv[i][0] != '-') {
			name = argv[i];
		} else {
			name = NULL;
			break;
		}
	}
	if (name == NULL) {
		fprintf(stderr, "usage: smig vm %s NAME [--force] [--timeout S]\n", sub);
		return EXIT_USAGE;
	}
	args = json_pack("{s:s}", "vm", name);
	if (force)
		json_object_set_new(args, "force", json_true());
	if (t)
		json_object_set_new(args, "timeout_s", json_integer(t));
	/* the reply waits for the guest: its time, QEMU's grace, and a reboot's boot */
	cli->timeout_ms = (int)((t ? t : SMIG_VM_SHUTDOWN_TIMEOUT_MAX) + 120) * 1000;
	snprintf(cmd, sizeof(cmd), "vm.%s", sub);
	rc = cli_request(cli, cmd, args, &r);
	if (rc)
		return rc;
	if (cli->json) {
		cli_print_json(r);
	} else {
		print_vm_header();
		print_vm_row(r);
		print_power(name, r);
	}
	json_decref(r);
	return EXIT_OK;
}

/* vm show with a fleet store: where its owner record stands, from this host's side. */
static void print_fleet(const json_t *r)
{
	const json_t *f = json_object_get(r, "fleet");
	const char *to = json_string_value(json_object_get(f, "handed_to"));

	if (!json_is_object(f))
		return;
	printf("owner record: %s%s%s%s\n",
	       json_is_true(json_object_get(f, "owned_elsewhere")) ? "another host's"
	       : json_is_true(json_object_get(f, "claimed"))	     ? "this host's, under its lease"
								     : "not claimed under this host's lease",
	       json_is_true(json_object_get(f, "fenced")) ? "; fenced (paused until it is)" : "",
	       to ? "; handed to " : "", to ? to : "");
}

static int vm_named(struct cli *cli, const char *sub, const char *name, bool force)
{
	char cmd[32];
	json_t *args = json_pack("{s:s}", "vm", name);
	json_t *r;
	size_t i;
	json_t *l;
	int rc;

	snprintf(cmd, sizeof(cmd), "vm.%s", sub);
	if (force)
		json_object_set_new(args, "force", json_true());
	rc = cli_request(cli, cmd, args, &r);
	if (rc)
		return rc;
	if (cli->json) {
		cli_print_json(r);
	} else if (strcmp(sub, "console") == 0) {
		json_array_foreach(json_object_get(r, "lines"), i, l)
			puts(json_string_value(l));
	} else if (strcmp(sub, "undefine") == 0) {
		printf("%s undefined\n", name);
	} else if (json_is_string(json_object_get(r, "detail"))) { /* resume --force, record first */
		printf("%s: %s: %s\n", name, json_string_value(json_object_get(r, "status")),
		       json_string_value(json_object_get(r, "detail")));
	} else if (strcmp(sub, "ping") == 0) {
		printf("%s: the guest agent answered in %.0f ms\n", name,
		       json_real_value(json_object_get(r, "ms")));
	} else {
		print_vm_header();
		print_vm_row(r);
		if (json_is_string(json_object_get(r, "resolve")))
			printf("to resolve: %s\n", json_string_value(json_object_get(r, "resolve")));
		if (strcmp(sub, "show") == 0)
			print_fleet(r);
		if (strcmp(sub, "show") == 0)
			print_history(r);
	}
	json_decref(r);
	return EXIT_OK;
}

/* vm list --all: every VM of the fleet, by its owner record in the fleet store */
static void print_fleet_list(const json_t *r)
{
	const json_t *v;
	size_t i;

	printf("%-20s %-12s %-20s %-10s %s\n", "NAME", "OWNER", "SINCE", "HERE", "HANDED-BY");
	json_array_foreach(json_object_get(r, "vms"), i, v) {
		time_t since = (time_t)json_integer_value(json_object_get(v, "since"));
		const char *mig = json_string_value(json_object_get(v, "migration"));
		char when[32] = "-";
		struct tm tm;

		if (since > 0 && gmtime_r(&since, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		printf("%-20s %-12s %-20s %-10s %s%.16s\n",
		       json_string_value(json_object_get(v, "vm")),
		       json_string_value(json_object_get(v, "host"))
			       ?: "?",
		       when,
		       json_string_value(json_object_get(v, "state_here")) ?: "-",
		       mig ? "migration " : "-", mig ? mig : "");
	}
	if (json_is_string(json_object_get(r, "warning")))
		fprintf(stderr, "smig vm list: %s\n",
			json_string_value(json_object_get(r, "warning")));
}

static int vm_list(struct cli *cli, bool all)
{
	json_t *r;
	json_t *v;
	size_t i;
	int rc = cli_request(cli, "vm.list", all ? json_pack("{s:b}", "all", 1) : NULL, &r);

	if (rc)
		return rc;
	if (cli->json) {
		cli_print_json(r);
	} else if (all) {
		print_fleet_list(r);
	} else {
		print_vm_header();
		json_array_foreach(json_object_get(r, "vms"), i, v)
			print_vm_row(v);
	}
	json_decref(r);
	return EXIT_OK;
}

#define DEFAULT_CONFIG SMIG_CONFDIR "/smigd.json"

/*
 * smig vm check: what the host whose config is CONF would say about the
 * spec FILE, offline (no daemon needed): the same schema, the same
 * catalogue and QEMU checks, and every volume opened as a start would.
 */
static int vm_check_file(int argc, char **argv)
{
	const char *file = NULL, *conf = DEFAULT_CONFIG;
	enum smig_check_mode mode = SMIG_CHECK_DEFINE;
	static struct smig_qemu_caps caps;
	struct smig_problems p = { .n = 0 };
	struct smig_config cfg;
	struct smig_vmspec spec;
	bool hostile = false;
	char err[1024];

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			conf = argv[++i];
		else if (strcmp(argv[i], "--incoming") == 0)
			mode = SMIG_CHECK_INCOMING;
		else if (file == NULL && argv[i][0] != '-')
			file = argv[i];
		else {
			fprintf(stderr, "usage: smig vm check FILE [--config CONF] [--incoming]\n");
			return EXIT_USAGE;
		}
	}
	if (file == NULL) {
		fprintf(stderr, "usage: smig vm check FILE [--config CONF] [--incoming]\n");
		return EXIT_USAGE;
	}
	if (smig_vmspec_load(file, &spec, err, sizeof(err)) < 0) {
		printf("%s: %s\n", file, err);
		return EXIT_ERROR;
	}
	if (smig_config_load(conf, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "smig vm check: %s\n", err);
		return EXIT_ERROR;
	}
	if (smig_qemu_caps_probe(cfg.qemu_binary, &caps, err, sizeof(err)) < 0) {
		fprintf(stderr, "smig vm check: %s\n", err);
		return EXIT_ERROR;
	}
	(void)smig_vmspec_check(&spec, &cfg.catalog, &caps, mode, &p);
	(void)smig_vmspec_probe(&spec, &cfg.catalog, &p, &hostile);
	for (size_t i = 0; i < p.n; i++)
		printf("%s: %s\n", file, p.v[i]);
	if (p.dropped)
		printf("%s: and %zu more problems\n", file, p.dropped);
	if (p.n > 0)
		return EXIT_ERROR;
	printf("%s: %s can %s %s (machine %s, cpu %s)\n", file, cfg.host,
	       mode == SMIG_CHECK_INCOMING ? "take in" : "run", spec.name,
	       spec.machine[0] ? spec.machine : caps.default_machine,
	       spec.cpu[0] ? spec.cpu : "qemu64");
	return EXIT_OK;
}

int cmd_vm(struct cli *cli, int argc, char **argv)
{
	static const char *const named[] = { "start", "show", "console", "ping", "resume",
					     "undefine" };

	if (argc >= 2 && strcmp(argv[1], "check") == 0)
		return vm_check_file(argc, argv);
	if (argc == 2 && strcmp(argv[1], "list") == 0)
		return vm_list(cli, false);
	if (argc == 3 && strcmp(argv[1], "list") == 0 && strcmp(argv[2], "--all") == 0)
		return vm_list(cli, true);
	if (argc == 3 && strcmp(argv[1], "define") == 0)
		return vm_define_file(cli, argv[2]);
	if (argc >= 3 && (strcmp(argv[1], "stop") == 0 || strcmp(argv[1], "reboot") == 0))
		return vm_power(cli, argc, argv);
	if (argc == 4 && strcmp(argv[1], "resume") == 0 && strcmp(argv[3], "--force") == 0)
		return vm_named(cli, "resume", argv[2], true);
	for (size_t i = 0; argc == 3 && i < sizeof(named) / sizeof(named[0]); i++)
		if (strcmp(argv[1], named[i]) == 0)
			return vm_named(cli, named[i], argv[2], false);
	fprintf(stderr, "usage: smig vm define FILE | check FILE [--config CONF] [--incoming] | list [--all] | "
			"start|show|console|ping|resume|undefine NAME | stop|reboot NAME [--force] "
			"[--timeout S] | resume NAME --force\n");
	return EXIT_USAGE;
}
