/*
 * test_vmspec.c - VM specs: valid specs round-trip, every invalid field is
 * named with its position, and no value can inject a QEMU option.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "vmspec.h"

static const char good[] =
	"{\"name\": \"web1\", \"memory_mib\": 128, \"vcpus\": 2,\n"
	" \"kernel\": \"/var/lib/smig/guest.elf\", \"cmdline\": \"mem=64 dirty=100\",\n"
	" \"vtpm\": true, \"security\": {\"min_trust\": \"trusted\", \"requires\": [\"vtpm\"]},\n"
	" \"labels\": {\"tier\": \"web\"}}";

static void bad(const char *text, const char *want)
{
	struct smig_vmspec s;
	char err[512] = "";

	assert_true(smig_vmspec_parse("vm.json", text, strlen(text), &s, err, sizeof(err)) < 0);
	if (strstr(err, want) == NULL)
		fail_msg("got \"%s\", want \"%s\"", err, want);
}

static void test_good_spec(void **state)
{
	struct smig_vmspec s;
	struct smig_vmspec s2;
	char err[256];
	char *dump;

	(void)state;
	assert_int_equal(smig_vmspec_parse("vm.json", good, strlen(good), &s, err, sizeof(err)), 0);
	assert_string_equal(s.name, "web1");
	assert_int_equal(s.memory_mib, 128);
	assert_int_equal(s.vcpus, 2);
	assert_true(s.vtpm);
	assert_int_equal(s.min_trust, SMIG_TRUST_TRUSTED);
	assert_int_equal(s.nrequires, 1);
	assert_string_equal(s.labels[0].key, "tier");
	/* what a source sends is what the destination parses, unchanged */
	assert_int_equal(smig_vmspec_dump(&s, &dump), 0);
	assert_int_equal(smig_vmspec_parse("peer", dump, strlen(dump), &s2, err, sizeof(err)), 0);
	assert_memory_equal(&s, &s2, sizeof(s));
	free(dump);
}

static void test_bad_specs(void **state)
{
	(void)state;
	bad("{\"name\": \"a b\", \"memory_mib\": 64, \"kernel\": \"/k\"}", "vm.json:1:10: name must be");
	bad("{\"name\": \"a\", \"memory_mib\": 8, \"kernel\": \"/k\"}",
	    "vm.json:1:29: spec.memory_mib must be between 16 and 1048576");
	bad("{\"name\": \"a\", \"memory_mib\": 64}", "exactly one of kernel or firmware");
	bad("{\"name\": \"a\", \"memory_mib\": 64, \"kernel\": \"/k\", \"firmware\": \"/f\"}",
	    "exactly one of kernel or firmware");
	bad("{\"name\": \"a\", \"memory_mib\": 64, \"kernel\": \"relative/k\"}",
	    "vm.json:1:43: kernel must be an absolute path");
	bad("{\"name\": \"a\", \"memory_mib\": 64, \"kernel\": \"/k\", \"qemu_args\": \"-x\"}",
	    "unknown key \"qemu_args\"");
	bad("{\"name\": \"a\", \"memory_mib\": 64, \"kernel\": \"/k\", \"cmdline\": \"a\\nb\"}",
	    "cmdline must be printable ASCII");
	bad("{\"name\": \"a\", \"memory_mib\": 64, \"kernel\": \"/k\", \"security\": {\"min_trust\": \"high\"}}",
	    "min_trust must be none, attested or trusted");
	bad("{\"name\": \"a\", \"memory_mib\": 64, \"kernel\": \"/k\", \"security\": {\"requires\": [\"vtpm\"]}}",
	    "requires vtpm but the spec has no vtpm");
	bad("{\"name\": \"a\", \"memory_mib\": 64, \"kernel\": \"/k\", \"labels\": {\"x\": 1}}",
	    "label x: keys and values are names");
	bad("{\"name\": \"a\", \"memory_mib\": 64, \"firmware\": \"/f\", \"cmdline\": \"x\"}",
	    "initrd and cmdline go with kernel");
	bad("{\"name\": \"a\", \"memory_mib\": 64, \"kernel\": \"/k\", \"disks\": [{\"path\": \"/d\", \"format\": \"vmdk\"}]}",
	    "format must be raw or qcow2");
}

static void test_no_option_injection(void **state)
{
	(void)state;
	/* a comma would start a new QEMU sub-option */
	bad("{\"name\": \"a\", \"memory_mib\": 64, \"kernel\": \"/k,readonly=off\"}",
	    "without commas");
	bad("{\"name\": \"a\", \"memory_mib\": 64, \"kernel\": \"/k\", \"disks\": [{\"path\": \"/d,file.driver=ssh\"}]}",
	    "without commas");
	bad("{\"name\": \"a\", \"memory_mib\": 64, \"kernel\": \"/boot/../etc/shadow\"}", "\"..\"");
	bad("{\"name\": \"a,b\", \"memory_mib\": 64, \"kernel\": \"/k\"}", "name must be");
}

/* The arguments, each followed by one space, into out. */
static void join_argv(const struct smig_argv *a, char *out, size_t outlen)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < a->n; i++)
		used += (size_t)snprintf(out + used, outlen - used, "%s ", a->v[i]);
}

static void test_qemu_argv(void **state)
{
	struct smig_vm_paths p = { .qmp = "/run/s/qmp.sock", .serial = "/run/s/serial.sock",
				   .tpm = "/run/s/tpm.sock", .pidfile = "/run/s/qemu.pid" };
	struct smig_vmspec s;
	struct smig_argv a;
	char err[256];
	char joined[4096] = "";

	(void)state;
	assert_int_equal(smig_vmspec_parse("vm.json", good, strlen(good), &s, err, sizeof(err)), 0);
	assert_int_equal(smig_qemu_argv(&s, &p, "qemu-system-x86_64", "kvm:tcg", true, &a), 0);
	join_argv(&a, joined, sizeof(joined));
	assert_null(a.v[a.n]);
	assert_non_null(strstr(joined, "-accel kvm -accel tcg,thread=single "));
	/* without /dev/kvm kvm:tcg is TCG: 8 KiB less, off QEMU's lossy sync path */
	assert_non_null(strstr(joined, access("/dev/kvm", R_OK | W_OK) == 0 ? "-m 128 -smp 2 "
									     : "-m 131064k -smp 2 "));
	assert_non_null(strstr(joined, "-device pvpanic -action panic=pause "));
	assert_non_null(strstr(joined, "-sandbox on,"));
	assert_non_null(strstr(joined, " -S "));
	assert_non_null(strstr(joined, "-kernel /var/lib/smig/guest.elf -append mem=64 dirty=100 "));
	assert_non_null(strstr(joined, "-tpmdev emulator,id=tpm0,chardev=tpmchr"));
	assert_non_null(strstr(joined, "-incoming defer"));
	smig_argv_clear(&a);

	assert_int_equal(smig_qemu_argv(&s, &p, "qemu", "tcg", false, &a), 0);
	join_argv(&a, joined, sizeof(joined));
	assert_non_null(strstr(joined, "-accel tcg,thread=single "));
	assert_non_null(strstr(joined, "-m 131064k -smp 2 "));
	smig_argv_clear(&a);
	assert_int_equal(smig_qemu_argv(&s, &p, "qemu", "kvm", false, &a), 0);
	join_argv(&a, joined, sizeof(joined));
	assert_non_null(strstr(joined, "-m 128 -smp 2 "));
	smig_argv_clear(&a);

	p.qmp = "/run/x,server=off"; /* smigd's own paths are checked as well */
	assert_int_equal(smig_qemu_argv(&s, &p, "qemu", "tcg", false, &a), SMIG_EINVAL);
	p.qmp = "/run/s/qmp.sock";
	assert_int_equal(smig_qemu_argv(&s, &p, "qemu", "hvf", false, &a), SMIG_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_spec),
		cmocka_unit_test(test_bad_specs),
		cmocka_unit_test(test_no_option_injection),
		cmocka_unit_test(test_qemu_argv),
	};
	return cmocka_run_group_tests_name("vmspec", tests, NULL, NULL);
}
