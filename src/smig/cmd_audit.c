/*
 * cmd_audit.c - smig audit show [--follow] [--last N] | verify [FILE].
 *
 * show reads smigd's audit log through the daemon (--follow keeps
 * printing new records); verify has the daemon check its own log, or with
 * FILE checks a copy locally against the host's certificate (--cert).
 */
#include "audit.h"
#include "client.h"
#include "commands.h"
#include "error.h"
#include "file.h"
#include "sign.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VERIFY_FILE_MAX ((size_t)256 * 1024 * 1024)

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "-";
}

static void print_record(void *arg, const json_t *rec)
{
	const struct cli *cli = arg;
	const json_t *detail = json_object_get(rec, "detail");

	if (cli->json) {
		cli_print_json(rec);
	} else {
		printf("%5lld %s %-20s %-16s %-24s %-5s %-24s %s%s%s\n",
		       json_integer_value(json_object_get(rec, "seq")), str(rec, "time"),
		       str(rec, "actor"), str(rec, "action"), str(rec, "target"),
		       str(rec, "decision"), str(rec, "rule"), str(rec, "outcome"),
		       detail ? ": " : "", detail ? json_string_value(detail) : "");
	}
	fflush(stdout);
}

static int audit_show(struct cli *cli, int argc, char **argv)
{
	return cli_stream(cli, "audit.show", "records", argc, argv,
			  "smig audit show [--follow] [--last N (0: all)]", print_record);
}

/* Prints a verification report; returns the exit code it calls for. */
static int print_report(const struct cli *cli, const char *file, const json_t *r)
{
	const json_t *damage = json_object_get(r, "damage");
	bool ok = json_is_true(json_object_get(r, "ok"));

	if (cli->json) {
		cli_print_json(r);
		return ok ? EXIT_OK : EXIT_ERROR;
	}
	printf("%s: %s: %lld records up to seq %lld in %lld file%s, %lld signed checkpoints, "
	       "head %s\n",
	       file, ok ? "intact" : "DAMAGED", json_integer_value(json_object_get(r, "records")),
	       json_integer_value(json_object_get(r, "last_seq")),
	       json_integer_value(json_object_get(r, "files")),
	       json_integer_value(json_object_get(r, "files")) == 1 ? "" : "s",
	       json_integer_value(json_object_get(r, "checkpoints")),
	       json_is_true(json_object_get(r, "head_checked")) ? "verified" : "not checked");
	if (json_integer_value(json_object_get(r, "first_seq")) > 1)
		printf("  note: the chain begins at seq %lld, where rotation began the oldest file "
		       "kept; older files were rotated away (audit.keep)\n",
		       json_integer_value(json_object_get(r, "first_seq")));
	if (json_integer_value(json_object_get(r, "unsigned_tail")) > 0)
		printf("  note: %lld records after the last checkpoint are covered by no "
		       "signature (no head file)\n",
		       json_integer_value(json_object_get(r, "unsigned_tail")));
	for (size_t i = 0; i < json_array_size(damage); i++) {
		const json_t *f = json_array_get(damage, i);

		printf("  %-9s %s\n", str(f, "kind"), str(f, "message"));
	}
	return ok ? EXIT_OK : EXIT_ERROR;
}

static int verify_local(const struct cli *cli, const char *file, const char *cert,
			const char *head_path)
{
	struct smig_audit_report rep;
	struct smig_audit_file *files = NULL;
	char *head = NULL, err[512], defhead[4096];
	size_t nfiles = 0, hlen = 0;
	EVP_PKEY *pub = NULL;
	json_t *r;
	int rc;

	if (head_path == NULL) {
		snprintf(defhead, sizeof(defhead), "%s.head", file);
		head_path = access(defhead, F_OK) == 0 ? defhead : NULL;
	}
	if (access(file, F_OK) != 0) {
		snprintf(err, sizeof(err), "%s: %s", file, strerror(errno));
		fprintf(stderr, "smig audit verify: %s\n", err);
		return EXIT_ERROR;
	}
	if (smig_sign_load_cert_pub(cert, &pub, err, sizeof(err)) < 0 ||
	    smig_audit_files_read(file, VERIFY_FILE_MAX, &files, &nfiles, err, sizeof(err)) < 0 ||
	    (head_path && smig_file_read(head_path, 4096, &head, &hlen, err, sizeof(err)) < 0)) {
		fprintf(stderr, "smig audit verify: %s\n", err);
		rc = EXIT_ERROR;
		goto out;
	}
	if (smig_audit_verify_files(files, nfiles, head, hlen, pub, &rep) < 0) {
		fprintf(stderr, "smig audit verify: %s: cannot be examined\n", file);
		rc = EXIT_ERROR;
		goto out;
	}
	r = smig_audit_report_json(&rep);
	rc = print_report(cli, file, r);
	json_decref(r);
out:
	EVP_PKEY_free(pub);
	smig_audit_files_free(files, nfiles);
	free(head);
	return rc;
}

static int audit_verify(struct cli *cli, int argc, char **argv)
{
	const char *file = NULL, *cert = NULL, *head = NULL;
	json_t *r;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--cert") == 0 && i + 1 < argc) {
			cert = argv[++i];
		} else if (strcmp(argv[i], "--head") == 0 && i + 1 < argc) {
			head = argv[++i];
		} else if (argv[i][0] != '-' && file == NULL) {
			file = argv[i];
		} else {
			file = NULL;
			cert = "";
			break;
		}
	}
	if ((file == NULL) != (cert == NULL)) {
		fprintf(stderr, "usage: smig audit verify             (this host's log, by smigd)\n"
				"       smig audit verify FILE --cert HOST.crt [--head FILE.head]\n");
		return EXIT_USAGE;
	}
	if (file)
		return verify_local(cli, file, cert, head);
	if ((rc = cli_request(cli, "audit.verify", NULL, &r)))
		return rc;
	rc = print_report(cli, str(r, "file"), r);
	json_decref(r);
	return rc;
}

int cmd_audit(struct cli *cli, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "show") == 0)
		return audit_show(cli, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "verify") == 0)
		return audit_verify(cli, argc - 1, argv + 1);
	fprintf(stderr, "usage: smig audit show|verify ...\n");
	return EXIT_USAGE;
}
