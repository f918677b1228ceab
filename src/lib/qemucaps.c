/*
 * qemucaps.c - the machine types and CPU models of this host's QEMU
 * (qemucaps.h), read from its own help output.
 */
#include "qemucaps.h"
#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define HELP_MAX ((size_t)256 * 1024)

/* The first word of line (up to the first space), if it fits. */
static bool first_word(const char *line, size_t len, char *out, size_t outlen)
{
	size_t n = 0;

	while (n < len && line[n] != ' ' && line[n] != '\t')
		n++;
	if (n == 0 || n >= outlen)
		return false;
	memcpy(out, line, n);
	out[n] = '\0';
	return true;
}

static void parse_machine_line(const char *line, size_t len, struct smig_qemu_caps *c)
{
	static const char alias[] = "(alias of ";
	char name[SMIG_VM_MODEL_MAX];
	const char *a;

	if (c->nmachines >= SMIG_CAPS_MACHINES_MAX || !first_word(line, len, name, sizeof(name)) ||
	    strcmp(name, "Supported") == 0)
		return;
	snprintf(c->machines[c->nmachines].name, SMIG_VM_MODEL_MAX, "%s", name);
	c->machines[c->nmachines].alias_of[0] = '\0';
	a = memmem(line, len, alias, sizeof(alias) - 1);
	if (a) {
		const char *p = a + sizeof(alias) - 1;
		const char *end = memchr(p, ')', len - (size_t)(p - line));

		if (end && (size_t)(end - p) < SMIG_VM_MODEL_MAX)
			snprintf(c->machines[c->nmachines].alias_of, SMIG_VM_MODEL_MAX, "%.*s",
				 (int)(end - p), p);
	}
	if (memmem(line, len, "(default)", 9))
		snprintf(c->default_machine, sizeof(c->default_machine), "%s", name);
	c->nmachines++;
}

static void parse_cpu_line(const char *line, size_t len, struct smig_qemu_caps *c)
{
	if (c->ncpus >= SMIG_CAPS_CPUS_MAX || len < 5 || memcmp(line, "x86 ", 4) != 0)
		return;
	line += 4;
	len -= 4;
	while (len > 0 && *line == ' ') {
		line++;
		len--;
	}
	if (first_word(line, len, c->cpus[c->ncpus], SMIG_VM_MODEL_MAX))
		c->ncpus++;
}

static void each_line(const char *text, void (*fn)(const char *, size_t, struct smig_qemu_caps *),
		      struct smig_qemu_caps *c)
{
	while (text && *text) {
		const char *nl = strchr(text, '\n');
		size_t len = nl ? (size_t)(nl - text) : strlen(text);

		fn(text, len, c);
		text += len + (nl ? 1 : 0);
	}
}

int smig_qemu_caps_parse(const char *machine_help, const char *cpu_help,
			 struct smig_qemu_caps *caps)
{
	memset(caps, 0, sizeof(*caps));
	each_line(machine_help, parse_machine_line, caps);
	each_line(cpu_help, parse_cpu_line, caps);
	return caps->nmachines > 0 && caps->ncpus > 0 ? 0 : SMIG_EPROTO;
}

/* Runs qemu with one option and "help"; *out is malloc'd, NUL-terminated. */
static int run_help(const char *qemu, const char *opt, char **out)
{
	char *argv[] = { (char *)qemu, (char *)opt, "help", NULL };
	size_t len = 0;
	int pfd[2], status;
	char *buf;
	pid_t pid;

	SMIG_ENSURE(pipe2(pfd, O_CLOEXEC) == 0, SMIG_EIO);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(pfd[1], 1);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 2);
		}
		execvp(qemu, argv);
		_exit(127);
	}
	close(pfd[1]);
	buf = malloc(HELP_MAX + 1);
	if (pid < 0 || buf == NULL) {
		close(pfd[0]);
		free(buf);
		if (pid > 0)
			waitpid(pid, NULL, 0);
		return pid < 0 ? SMIG_EIO : SMIG_ENOMEM;
	}
	for (;;) {
		ssize_t r = read(pfd[0], buf + len, HELP_MAX - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || (len += (size_t)r) == HELP_MAX)
			break;
	}
	close(pfd[0]);
	buf[len] = '\0';
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		free(buf);
		return SMIG_EIO;
	}
	*out = buf;
	return 0;
}

int smig_qemu_caps_probe(const char *qemu_binary, struct smig_qemu_caps *caps, char *err,
			 size_t errlen)
{
	char *machines = NULL, *cpus = NULL;
	int rc = run_help(qemu_binary, "-machine", &machines);

	if (rc == 0)
		rc = run_help(qemu_binary, "-cpu", &cpus);
	if (rc == 0)
		rc = smig_qemu_caps_parse(machines, cpus, caps);
	free(machines);
	free(cpus);
	if (rc < 0)
		snprintf(err, errlen,
			 "cannot learn the machine types and CPU models of %s (ran \"%s -machine "
			 "help\" and \"-cpu help\"): is qemu.binary right?",
			 qemu_binary, qemu_binary);
	return rc;
}

const char *smig_qemu_caps_machine(const struct smig_qemu_caps *caps, const char *name)
{
	for (size_t i = 0; i < caps->nmachines; i++)
		if (strcmp(caps->machines[i].name, name) == 0)
			return caps->machines[i].alias_of[0] ? caps->machines[i].alias_of
							     : caps->machines[i].name;
	return NULL;
}

bool smig_qemu_caps_cpu(const struct smig_qemu_caps *caps, const char *name)
{
	for (size_t i = 0; i < caps->ncpus; i++)
		if (strcmp(caps->cpus[i], name) == 0)
			return true;
	return false;
}
