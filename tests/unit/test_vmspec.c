/*
 * test_vmspec.c - VM specs: valid specs round-trip, every invalid field is
 * named with its position, no field is a host path (the old ones are
 * refused with what replaced them), and no value can inject a QEMU option.
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
	"{\"name\": \"web1\", \"machine\": \"pc-q35-7.2\", \"cpu\": \"qemu64\",\n"
	" \"memory_mib\": 128, \"vcpus\": 2,\n"
	" \"firmware\": {\"kind\": \"uefi\", \"name\": \"ovmf\",\n"
	"              \"nvram\": {\"pool\": \"local\", \"volume\": \"web1.vars\"}},\n"
	" \"boot\": {\"kernel\": {\"pool\": \"images\", \"volume\": \"vmlinuz\"},\n"
	"          \"initrd\": {\"pool\": \"images\", \"volume\": \"initrd.img\"},\n"
	"          \"cmdline\": \"console=ttyS0\"},\n"
	" \"disks\": [{\"pool\": \"shared\", \"volume\": \"web1.qcow2\", \"format\": \"qcow2\"},\n"
	"           {\"pool\": \"shared\", \"volume\": \"data.raw\", \"bus\": \"virtio-scsi\",\n"
	"            \"cache\": \"writeback\", \"readonly\": true}],\n"
	" \"nics\": [{\"network\": \"lan\", \"mac\": \"52:54:00:12:34:56\", \"model\": \"virtio-net\"}],\n"
	" \"vtpm\": true, \"guest_agent\": true, \"autostart\": true, \"shutdown_timeout_s\": 90,\n"
	" \"security\": {\"min_trust\": \"trusted\", \"requires\": [\"vtpm\"]},\n"
	" \"labels\": {\"tier\": \"web\"}}";

#define BASE "{\"name\": \"a\", \"memory_mib\": 64, "

static void bad(const char *text, const char *want)
{
	struct smig_vmspec s;
	char err[512] = "";

	assert_true(smig_vmspec_parse("vm.json", text, strlen(text), &s, err, sizeof(err)) < 0);
	if (strstr(err, want) == NULL)
		fail_msg("got \"%s\", want \"%s\"", err, want);
}

/* What a redefinition changes, and what may change while the VM runs. */
static void test_diff(void **state)
{
	struct smig_vmspec a, b;
	char err[256], out[256];

	(void)state;
	assert_int_equal(smig_vmspec_parse("vm.json", good, strlen(good), &a, err, sizeof(err)), 0);
	b = a;
	assert_int_equal(smig_vmspec_diff(&a, &b, 0, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	b.autostart = false;
	b.shutdown_timeout_s = 0;
	assert_int_equal(smig_vmspec_diff(&a, &b, 0, out, sizeof(out)), 0);
	assert_string_equal(out, "autostart, shutdown_timeout_s");
	assert_int_equal(smig_vmspec_diff(&a, &b, SMIG_VMSPEC_DIFF_HOST_ONLY, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	b.memory_mib = 256;
	b.vcpus = 4;
	b.nics[0].mac[5] = 0x57;
	assert_int_equal(smig_vmspec_diff(&a, &b, SMIG_VMSPEC_DIFF_HOST_ONLY, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "memory_mib"));
	assert_non_null(strstr(out, "vcpus"));
	assert_non_null(strstr(out, "nics"));
	assert_null(strstr(out, "autostart"));
	/* a key only one of them has */
	b = a;
	b.guest_agent = false;
	assert_int_equal(smig_vmspec_diff(&b, &a, 0, out, sizeof(out)), 0);
	assert_string_equal(out, "guest_agent");
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
	assert_string_equal(s.machine, "pc-q35-7.2");
	assert_int_equal(s.memory_mib, 128);
	assert_int_equal(s.vcpus, 2);
	assert_int_equal(s.firmware.kind, SMIG_FW_UEFI);
	assert_string_equal(s.firmware.nvram.volume, "web1.vars");
	assert_true(s.boot.kernel_set && s.boot.initrd_set);
	assert_string_equal(s.boot.kernel.pool, "images");
	assert_int_equal(s.ndisks, 2);
	assert_true(s.disks[0].qcow2);
	assert_int_equal(s.disks[0].cache, SMIG_CACHE_NONE);
	assert_int_equal(s.disks[1].bus, SMIG_BUS_VIRTIO_SCSI);
	assert_int_equal(s.disks[1].cache, SMIG_CACHE_WRITEBACK);
	assert_int_equal(s.nnics, 1);
	assert_true(s.nics[0].has_mac);
	assert_int_equal(s.nics[0].mac[5], 0x56);
	assert_true(s.vtpm);
	assert_true(s.guest_agent);
	assert_true(s.autostart);
	assert_int_equal(s.shutdown_timeout_s, 90);
	assert_int_equal(s.min_trust, SMIG_TRUST_TRUSTED);
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
	bad("{\"name\": \"a b\", \"memory_mib\": 64}", "vm.json:1:10: name must be");
	bad("{\"name\": \"a\", \"memory_mib\": 8}",
	    "vm.json:1:29: spec.memory_mib must be between 16 and 1048576");
	bad(BASE "\"qemu_args\": \"-x\"}", "unknown key \"qemu_args\"");
	bad(BASE "\"shutdown_timeout_s\": 0}", "shutdown_timeout_s");
	bad(BASE "\"shutdown_timeout_s\": 3601}", "shutdown_timeout_s");
	bad(BASE "\"autostart\": \"yes\"}", "autostart");
	bad(BASE "\"boot\": {\"kernel\": {\"pool\": \"p\", \"volume\": \"k\"}, \"cmdline\": \"a\\nb\"}}",
	    "cmdline must be printable ASCII");
	bad(BASE "\"boot\": {\"cmdline\": \"x\"}}", "boot: missing required key \"kernel\"");
	bad(BASE "\"security\": {\"min_trust\": \"high\"}}",
	    "min_trust must be none, unverified, attested or trusted");
	bad(BASE "\"security\": {\"requires\": [\"vtpm\"]}}", "requires vtpm but the spec has no vtpm");
	bad(BASE "\"labels\": {\"x\": 1}}", "label x: keys and values are names");
	bad(BASE "\"disks\": [{\"pool\": \"p\", \"volume\": \"d\", \"format\": \"vmdk\"}]}",
	    "format must be one of raw, qcow2");
	bad(BASE "\"disks\": [{\"pool\": \"p\", \"volume\": \"d\", \"bus\": \"ide\"}]}",
	    "bus must be one of virtio-blk, virtio-scsi");
	bad(BASE "\"disks\": [{\"pool\": \"p\", \"volume\": \"d\"}, {\"pool\": \"p\", \"volume\": \"d\"}]}",
	    "disks[1] is the same volume as disks[0]");
	bad(BASE "\"nics\": [{\"network\": \"lan\", \"mac\": \"01:00:5e:00:00:01\"}]}",
	    "vm.json:1:68: nics[0].mac must be a unicast MAC");
	bad(BASE "\"nics\": [{\"network\": \"lan\", \"model\": \"e1000\"}]}",
	    "nics[0].model must be virtio-net");
	bad(BASE "\"nics\": [{\"network\": \"lan\", \"mac\": \"52:54:00:00:00:01\"}, "
		 "{\"network\": \"lan\", \"mac\": \"52:54:00:00:00:01\"}]}",
	    "nics[1] has the MAC of nics[0]");
	bad(BASE "\"firmware\": {\"kind\": \"uefi\", \"nvram\": {\"pool\": \"p\", \"volume\": \"v\"}}}",
	    "firmware kind uefi needs name");
	bad(BASE "\"firmware\": {\"kind\": \"uefi\", \"name\": \"ovmf\"}}",
	    "firmware kind uefi needs nvram");
	bad(BASE "\"firmware\": {\"kind\": \"bios\", \"name\": \"ovmf\"}}",
	    "firmware kind bios (QEMU's SeaBIOS) takes no name");
	bad(BASE "\"machine\": \"q35,accel=kvm\"}", "machine must be a QEMU machine type name");
	bad(BASE "\"cpu\": \"host,+vmx\"}", "cpu must be a QEMU CPU model name");
}

/* No field is a host path: the old ones say what replaced them; names stay names. */
static void test_no_host_paths(void **state)
{
	(void)state;
	bad(BASE "\"kernel\": \"/boot/vmlinuz\"}",
	    "vm.json:1:43: kernel (a host path) is no longer accepted: a kernel is a volume");
	bad(BASE "\"initrd\": \"/boot/initrd\"}", "initrd (a host path) is no longer accepted");
	bad(BASE "\"firmware\": \"/usr/share/ovmf.fd\"}",
	    "firmware (a host path) is no longer accepted");
	bad(BASE "\"disks\": [{\"path\": \"/etc/shadow\"}]}",
	    "path (a host path) is no longer accepted: a disk is {\"pool\": NAME, \"volume\": NAME}");
	bad(BASE "\"disks\": [{\"pool\": \"p\", \"volume\": \"/etc/shadow\"}]}",
	    "disks[0].volume must be a plain file name in the pool");
	bad(BASE "\"disks\": [{\"pool\": \"p\", \"volume\": \"../../etc/shadow\"}]}",
	    "disks[0].volume must be a plain file name");
	bad(BASE "\"disks\": [{\"pool\": \"p\", \"volume\": \"..\"}]}", "must be a plain file name");
	bad(BASE "\"disks\": [{\"pool\": \"/srv\", \"volume\": \"d\"}]}",
	    "disks[0].pool must be the name of a pool");
	bad(BASE "\"boot\": {\"kernel\": {\"pool\": \"p\", \"volume\": \"a/b\"}}}",
	    "boot.kernel.volume must be a plain file name");
	bad(BASE "\"firmware\": {\"kind\": \"uefi\", \"name\": \"o\", \"nvram\": "
		 "{\"pool\": \"p\", \"volume\": \"/dev/sda\"}}}",
	    "firmware.nvram.volume must be a plain file name");
	bad(BASE "\"nics\": [{\"network\": \"/sys/class/net/br0\"}]}",
	    "nics[0].network must be the name of a network");
	bad("{\"name\": \"a,b\", \"memory_mib\": 64}", "name must be");
}

static void test_mac(void **state)
{
	uint8_t mac[6];
	char s[18];

	(void)state;
	assert_int_equal(smig_mac_parse("52:54:00:ab:cd:ef", mac), 0);
	smig_mac_format(mac, s);
	assert_string_equal(s, "52:54:00:ab:cd:ef");
	assert_int_equal(smig_mac_parse("52:54:00:ab:cd", mac), SMIG_EINVAL);
	assert_int_equal(smig_mac_parse("52:54:00:ab:cd:ef:", mac), SMIG_EINVAL);
	assert_int_equal(smig_mac_parse("00:00:00:00:00:00", mac), SMIG_EINVAL);
	assert_int_equal(smig_mac_parse("ff:ff:ff:ff:ff:ff", mac), SMIG_EINVAL);
	assert_int_equal(smig_mac_parse("52:54:00:-1:cd:ef", mac), SMIG_EINVAL);
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
	struct smig_vm_fds f = { .kernel = 20, .initrd = 21, .fw_code = 22, .fw_vars = 23,
				 .disk_rw = { 24, -1, -1, -1 }, .disk_ro = { 25, 26, -1, -1 },
				 .tap = { 27, -1, -1, -1 }, .qmp = 28, .serial = 29, .agent = 30 };
	struct smig_vm_paths p = { .tpm = "/run/s/tpm.sock", .pidfile = "/run/s/qemu.pid",
				   .fds = &f };
	struct smig_vmspec s;
	struct smig_argv a;
	char err[256];
	char joined[8192] = "";

	(void)state;
	assert_int_equal(smig_vmspec_parse("vm.json", good, strlen(good), &s, err, sizeof(err)), 0);
	assert_int_equal(smig_qemu_argv(&s, &p, "qemu-system-x86_64", "kvm:tcg", true, &a), 0);
	join_argv(&a, joined, sizeof(joined));
	assert_null(a.v[a.n]);
	assert_non_null(strstr(joined, "-accel kvm -accel tcg,thread=single,tb-size=128 "));
	/* without /dev/kvm kvm:tcg is TCG: 8 KiB less, off QEMU's lossy sync path */
	assert_non_null(strstr(joined, access("/dev/kvm", R_OK | W_OK) == 0 ? "-m 128 -smp 2 "
									     : "-m 131064k -smp 2 "));
	assert_non_null(strstr(joined, "-machine pc-q35-7.2,pflash0=fw-code,pflash1=fw-vars -cpu qemu64 "));
	assert_non_null(strstr(joined, "-device pvpanic -action panic=pause "));
	assert_non_null(strstr(joined, "-sandbox on,"));
	assert_non_null(strstr(joined, " -S "));
	/* QEMU gets descriptors smigd opened, never a path from the spec */
	assert_non_null(strstr(joined, "-kernel /proc/self/fd/20 -initrd /proc/self/fd/21 "
				       "-append console=ttyS0 "));
	assert_non_null(strstr(joined, "-add-fd fd=22,set=1,opaque=fw-code -add-fd fd=23,set=2,"));
	assert_non_null(strstr(joined, "-add-fd fd=24,set=10,opaque=disk0-rw -add-fd fd=25,set=10,"));
	assert_non_null(strstr(joined, "\"filename\":\"/dev/fdset/10\""));
	assert_non_null(strstr(joined, "\"driver\":\"qcow2\",\"file\":\"disk0-file\""));
	assert_non_null(strstr(joined, "\"backing\":null"));
	assert_non_null(strstr(joined, "-add-fd fd=26,set=11,opaque=disk1-ro -blockdev"));
	assert_null(strstr(joined, "disk1-rw"));
	assert_non_null(strstr(joined, "-device virtio-scsi-pci,id=scsi0 -device scsi-hd,drive=disk1,"));
	assert_non_null(strstr(joined, "-netdev tap,id=net0,fd=27 -device virtio-net-pci,netdev=net0,"
				       "id=nic0,mac=52:54:00:12:34:56 "));
	assert_null(strstr(joined, "web1.qcow2"));
	assert_null(strstr(joined, "vmlinuz"));
	assert_non_null(strstr(joined, "-tpmdev emulator,id=tpm0,chardev=tpmchr"));
	assert_non_null(strstr(joined, "-incoming defer"));
	/* QMP and the console on smigd's listening sockets, never a path QEMU binds */
	assert_non_null(strstr(joined, "-chardev socket,id=qmp,fd=28,server=on,wait=off -mon "
				       "chardev=qmp,mode=control -chardev socket,id=ser0,fd=29,"
				       "server=on,wait=off "));
	assert_null(strstr(joined, "unix:"));
	/* the guest agent's port, by the name qemu-ga opens, on smigd's socket */
	assert_non_null(strstr(joined, "-chardev socket,id=qga0,fd=30,server=on,"
				       "wait=off -device virtio-serial-pci,id=vser0 -device "
				       "virtserialport,bus=vser0.0,nr=1,chardev=qga0,"
				       "name=org.qemu.guest_agent.0"));
	smig_argv_clear(&a);
	s.guest_agent = false;
	assert_int_equal(smig_qemu_argv(&s, &p, "qemu", "tcg", false, &a), 0);
	join_argv(&a, joined, sizeof(joined));
	assert_null(strstr(joined, "virtio-serial"));
	smig_argv_clear(&a);
	s.guest_agent = true;
	f.agent = -1; /* a port without smigd's end of it is refused */
	assert_int_equal(smig_qemu_argv(&s, &p, "qemu", "tcg", false, &a), SMIG_EINVAL);
	f.agent = 30;

	assert_int_equal(smig_qemu_argv(&s, &p, "qemu", "tcg", false, &a), 0);
	join_argv(&a, joined, sizeof(joined));
	assert_non_null(strstr(joined, "-accel tcg,thread=single,tb-size=128 "));
	assert_non_null(strstr(joined, "-m 131064k -smp 2 "));
	smig_argv_clear(&a);
	assert_int_equal(smig_qemu_argv(&s, &p, "qemu", "kvm", false, &a), 0);
	join_argv(&a, joined, sizeof(joined));
	assert_non_null(strstr(joined, "-m 128 -smp 2 "));
	/* a guest with a kernel boots that kernel: no disk is a boot device */
	assert_null(strstr(joined, "bootindex"));
	smig_argv_clear(&a);
	/* without one the firmware boots the first disk, ahead of network boot */
	s.boot.kernel_set = s.boot.initrd_set = false;
	assert_int_equal(smig_qemu_argv(&s, &p, "qemu", "kvm", false, &a), 0);
	join_argv(&a, joined, sizeof(joined));
	assert_null(strstr(joined, "-kernel"));
	assert_non_null(strstr(joined, "id=disk0-dev,write-cache=on,bootindex=0 "));
	assert_null(strstr(joined, "disk1-dev,bus=scsi0.0,write-cache=on,bootindex"));
	smig_argv_clear(&a);
	s.boot.kernel_set = s.boot.initrd_set = true;

	f.disk_rw[0] = -1; /* a writable disk without its read-write descriptor */
	assert_int_equal(smig_qemu_argv(&s, &p, "qemu", "tcg", false, &a), SMIG_EINVAL);
	f.disk_rw[0] = 24;
	s.machine[0] = '\0'; /* never an unpinned machine type */
	assert_int_equal(smig_qemu_argv(&s, &p, "qemu", "tcg", false, &a), SMIG_EINVAL);
	snprintf(s.machine, sizeof(s.machine), "pc-q35-7.2");
	p.pidfile = "/run/x,server=off"; /* smigd's own paths are checked as well */
	assert_int_equal(smig_qemu_argv(&s, &p, "qemu", "tcg", false, &a), SMIG_EINVAL);
	p.pidfile = "/run/s/qemu.pid";
	f.qmp = -1; /* no QMP socket, no QEMU */
	assert_int_equal(smig_qemu_argv(&s, &p, "qemu", "tcg", false, &a), SMIG_EINVAL);
	f.qmp = 28;
	assert_int_equal(smig_qemu_argv(&s, &p, "qemu", "hvf", false, &a), SMIG_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_spec),
		cmocka_unit_test(test_diff),
		cmocka_unit_test(test_bad_specs),
		cmocka_unit_test(test_no_host_paths),
		cmocka_unit_test(test_mac),
		cmocka_unit_test(test_qemu_argv),
	};
	return cmocka_run_group_tests_name("vmspec", tests, NULL, NULL);
}
