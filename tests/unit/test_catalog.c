/*
 * test_catalog.c - the host-local resource catalogue: the config's pools,
 * networks, firmware and capacity; what a host says about a spec
 * (vmcheck.h); volumes opened only beneath their pool (volume.h), never
 * through a symlink, a device or a qcow2 backing file; QEMU's machine
 * types and CPU models from its help output (qemucaps.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "error.h"
#include "qemucaps.h"
#include "testutil.h"
#include "vmcheck.h"
#include "volume.h"

#define HEAD "{\"host\":\"h1\",\"listen\":\"127.0.0.1\",\"control\":{\"socket\":\"s\"}," \
	     "\"state_dir\":\"d\",\"tls\":{\"ca\":\"a\",\"cert\":\"b\",\"key\":\"c\"},"  \
	     "\"hosts_file\":\"h\",\n"

static const char catalog_config[] =
	HEAD "\"pools\": {\"images\": {\"path\": \"img\"}, \"shared\": {\"path\": \"/srv/nfs\", "
	     "\"shared\": true}},\n"
	     "\"networks\": {\"lan\": {\"bridge\": \"br0\"}},\n"
	     "\"firmware\": {\"ovmf\": {\"code\": \"/usr/share/OVMF/OVMF_CODE_4M.fd\", "
	     "\"vars\": \"/usr/share/OVMF/OVMF_VARS_4M.fd\", \"accepts\": [\"sha256:"
	     "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"]}},\n"
	     "\"capacity\": {\"memory_mib\": 4096, \"vcpus\": 4, \"cpu_overcommit\": 2.5}}\n";

static void config_error(const char *text, const char *want)
{
	struct smig_config cfg;
	char err[512] = "";

	assert_int_equal(smig_config_parse("/etc/smig/c.json", text, strlen(text), &cfg, err,
					   sizeof(err)),
			 SMIG_ECONFIG);
	if (strstr(err, want) == NULL)
		fail_msg("got \"%s\", want \"%s\"", err, want);
}

static void test_catalog_config(void **state)
{
	struct smig_config cfg;
	char err[512];

	(void)state;
	assert_int_equal(smig_config_parse("/etc/smig/c.json", catalog_config,
					   strlen(catalog_config), &cfg, err, sizeof(err)),
			 0);
	assert_int_equal(cfg.catalog.npools, 2);
	assert_string_equal(smig_catalog_pool(&cfg.catalog, "images")->path, "/etc/smig/img");
	assert_true(smig_catalog_pool(&cfg.catalog, "shared")->shared);
	assert_false(smig_catalog_pool(&cfg.catalog, "images")->shared);
	assert_null(smig_catalog_pool(&cfg.catalog, "other"));
	assert_string_equal(smig_catalog_network(&cfg.catalog, "lan")->bridge, "br0");
	assert_non_null(smig_catalog_firmware(&cfg.catalog, "ovmf"));
	/* another build this host takes VMs from */
	assert_int_equal(smig_catalog_firmware(&cfg.catalog, "ovmf")->naccepts, 1);
	assert_int_equal(smig_catalog_firmware(&cfg.catalog, "ovmf")->accepts[0][1], 0x11);
	assert_int_equal(smig_capacity_memory(&cfg.catalog.capacity), 4096);
	assert_int_equal(smig_capacity_vcpus(&cfg.catalog.capacity), 10);

	config_error(HEAD "\"pools\": {\"a/b\": {\"path\": \"/x\"}}}",
		     "c.json:2:18: pool name \"a/b\" must be 1-63 characters");
	config_error(HEAD "\"pools\": {\"p\": {\"path\": \"/x\", \"nfs\": true}}}",
		     "unknown key \"nfs\"");
	config_error(HEAD "\"pools\": {\"p\": {}}}", "p: missing required key \"path\"");
	config_error(HEAD "\"networks\": {\"lan\": {\"bridge\": \"a-very-long-bridge-name\"}}}",
		     "bridge must be an interface name of 1-15 characters");
	config_error(HEAD "\"networks\": {\"lan\": {\"bridge\": \"../eth0\"}}}",
		     "bridge must be an interface name");
	config_error(HEAD "\"firmware\": {\"ovmf\": {\"code\": \"/c\"}}}",
		     "ovmf: missing required key \"vars\"");
	config_error(HEAD "\"firmware\": {\"ovmf\": {\"code\": \"/c\", \"vars\": \"/v\", "
			  "\"accepts\": [\"0011\"]}}}",
		     "c.json:2:63: accepts[0]: a firmware build is \"sha256:\" and the 64 hex digits");
	config_error(HEAD "\"capacity\": {\"memory_mib\": 0}}", "capacity.memory_mib must be between");
	config_error(HEAD "\"capacity\": {\"cpu_overcommit\": 0.5}}",
		     "cpu_overcommit must be a number from 1 to 64");
	config_error(HEAD "\"capacity\": {\"cpu_overcommit\": \"2\"}}",
		     "capacity.cpu_overcommit must be a number");
}

static const char machine_help[] =
	"Supported machines are:\n"
	"microvm              microvm (i386)\n"
	"pc                   Standard PC (i440FX + PIIX, 1996) (alias of pc-i440fx-7.2)\n"
	"pc-i440fx-7.2        Standard PC (i440FX + PIIX, 1996) (default)\n"
	"pc-i440fx-7.1        Standard PC (i440FX + PIIX, 1996)\n"
	"q35                  Standard PC (Q35 + ICH9, 2009) (alias of pc-q35-7.2)\n"
	"pc-q35-7.2           Standard PC (Q35 + ICH9, 2009)\n"
	"none                 empty machine\n";

static const char cpu_help[] =
	"Available CPUs:\n"
	"x86 486                   (alias configured by machine type)\n"
	"x86 qemu64                QEMU Virtual CPU version 2.5+\n"
	"x86 Skylake-Server-v4     Intel Xeon Processor (Skylake, IBRS, no TSX)\n"
	"\n"
	"Recognized CPUID flags:\n"
	"  3dnow 3dnowext 3dnowprefetch abm ace2 ace2-en acpi adx aes\n";

static void test_qemu_caps(void **state)
{
	struct smig_qemu_caps c;

	(void)state;
	assert_int_equal(smig_qemu_caps_parse(machine_help, cpu_help, &c), 0);
	assert_string_equal(c.default_machine, "pc-i440fx-7.2");
	assert_string_equal(smig_qemu_caps_machine(&c, "q35"), "pc-q35-7.2");
	assert_string_equal(smig_qemu_caps_machine(&c, "pc-q35-7.2"), "pc-q35-7.2");
	assert_null(smig_qemu_caps_machine(&c, "pc-q35-9.0"));
	assert_true(smig_qemu_caps_cpu(&c, "qemu64"));
	assert_true(smig_qemu_caps_cpu(&c, "Skylake-Server-v4"));
	assert_false(smig_qemu_caps_cpu(&c, "3dnow"));
	assert_int_equal(smig_qemu_caps_parse("", cpu_help, &c), SMIG_EPROTO);
}

static const char spec_text[] =
	"{\"name\": \"web1\", \"machine\": \"pc-q35-7.2\", \"cpu\": \"qemu64\", \"memory_mib\": 64,\n"
	" \"firmware\": {\"kind\": \"uefi\", \"name\": \"ovmf\", \"nvram\": {\"pool\": \"images\", "
	"\"volume\": \"web1.vars\"}},\n"
	" \"boot\": {\"kernel\": {\"pool\": \"images\", \"volume\": \"vmlinuz\"}},\n"
	" \"disks\": [{\"pool\": \"images\", \"volume\": \"root.raw\"},\n"
	"           {\"pool\": \"shared\", \"volume\": \"data.qcow2\", \"format\": \"qcow2\"}],\n"
	" \"nics\": [{\"network\": \"lan\", \"mac\": \"52:54:00:00:00:01\"}]}";

static void test_spec_check(void **state)
{
	struct smig_config cfg;
	struct smig_qemu_caps caps;
	struct smig_problems p = { .n = 0 };
	struct smig_vmspec s;
	char err[2048];

	(void)state;
	assert_int_equal(smig_config_parse("/etc/smig/c.json", catalog_config,
					   strlen(catalog_config), &cfg, err, sizeof(err)),
			 0);
	assert_int_equal(smig_qemu_caps_parse(machine_help, cpu_help, &caps), 0);
	assert_int_equal(smig_vmspec_parse("vm.json", spec_text, strlen(spec_text), &s, err,
					   sizeof(err)),
			 0);
	assert_int_equal(smig_vmspec_check(&s, &cfg.catalog, &caps, SMIG_CHECK_DEFINE, &p), 0);
	/* moving in: the writable disk in the local pool cannot follow */
	assert_int_equal(smig_vmspec_check(&s, &cfg.catalog, &caps, SMIG_CHECK_INCOMING, &p),
			 SMIG_ENOENT);
	assert_int_equal(p.n, 1);
	assert_non_null(strstr(p.v[0], "disks[0]: pool images is not shared on this host"));

	/* every unknown name is listed, with what the host has */
	memset(&p, 0, sizeof(p));
	snprintf(s.disks[1].vol.pool, sizeof(s.disks[1].vol.pool), "nfs2");
	snprintf(s.nics[0].network, sizeof(s.nics[0].network), "dmz");
	snprintf(s.firmware.name, sizeof(s.firmware.name), "ovmf-9");
	snprintf(s.machine, sizeof(s.machine), "pc-q35-9.0");
	snprintf(s.cpu, sizeof(s.cpu), "EPYC-v9");
	assert_int_equal(smig_vmspec_check(&s, &cfg.catalog, &caps, SMIG_CHECK_DEFINE, &p),
			 SMIG_ENOENT);
	smig_problems_join(&p, err, sizeof(err));
	assert_non_null(strstr(err, "machine: this host's QEMU has no machine type pc-q35-9.0"));
	assert_non_null(strstr(err, "cpu: this host's QEMU has no CPU model EPYC-v9"));
	assert_non_null(strstr(err, "firmware: no firmware ovmf-9 on this host"));
	assert_non_null(strstr(err, "disks[1]: no pool nfs2 on this host (pools here: images, shared)"));
	assert_non_null(strstr(err, "nics[0]: no network dmz on this host"));

	/* a peer must send what define pinned */
	memset(&p, 0, sizeof(p));
	snprintf(s.machine, sizeof(s.machine), "q35");
	s.nics[0].has_mac = false;
	(void)smig_vmspec_check(&s, &cfg.catalog, &caps, SMIG_CHECK_INCOMING, &p);
	smig_problems_join(&p, err, sizeof(err));
	assert_non_null(strstr(err, "machine: q35 is an alias (of pc-q35-7.2 here)"));
	assert_non_null(strstr(err, "nics[0]: no MAC address"));
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static void open_fails(const struct smig_pool *pool, const char *vol, bool want_hostile,
		       const char *want)
{
	char err[512] = "";
	bool hostile = !want_hostile;
	int fd = 99;

	assert_true(smig_volume_open(pool, vol, O_RDONLY, &fd, &hostile, err, sizeof(err)) < 0);
	assert_int_equal(fd, -1);
	assert_int_equal(hostile, want_hostile);
	if (strstr(err, want) == NULL)
		fail_msg("%s: got \"%s\", want \"%s\"", vol, err, want);
}

static void test_volume_open(void **state)
{
	struct smig_pool pool = { .name = "images" };
	char dir[256], path[600], err[512];
	uint8_t q[104] = { 'Q', 'F', 'I', 0xfb, 0, 0, 0, 3 };
	bool hostile;
	int fd;

	(void)state;
	assert_int_equal(test_mkdtemp(dir, sizeof(dir), "smig-pool"), 0);
	snprintf(pool.path, sizeof(pool.path), "%s/pool", dir);
	assert_int_equal(mkdir(pool.path, 0700), 0);
	write_file(pool.path, "root.raw", "disk", 4);
	write_file(dir, "secret", "shadow", 6);

	assert_int_equal(smig_volume_open(&pool, "root.raw", O_RDWR, &fd, &hostile, err,
					  sizeof(err)),
			 0);
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);
	close(fd);

	/* a symlink in the pool that points outside it, and one that stays inside */
	char link[600];

	snprintf(path, sizeof(path), "%s/secret", dir);
	snprintf(link, sizeof(link), "%s/escape", pool.path);
	assert_int_equal(symlink(path, link), 0);
	open_fails(&pool, "escape", true, "volume escape: is a symbolic link");
	snprintf(link, sizeof(link), "%s/alias", pool.path);
	assert_int_equal(symlink("root.raw", link), 0);
	open_fails(&pool, "alias", true, "is a symbolic link");
	/* names that are not plain names never reach the file system */
	open_fails(&pool, "../secret", true, "is not a plain volume name");
	open_fails(&pool, "/etc/shadow", true, "is not a plain volume name");
	/* a directory, a FIFO: not a regular file */
	snprintf(path, sizeof(path), "%s/sub", pool.path);
	assert_int_equal(mkdir(path, 0700), 0);
	open_fails(&pool, "sub", true, "is not a regular file");
	snprintf(path, sizeof(path), "%s/fifo", pool.path);
	assert_int_equal(mkfifo(path, 0600), 0);
	open_fails(&pool, "fifo", true, "is not a regular file");
	open_fails(&pool, "missing.raw", false, "volume missing.raw: no such volume in the pool");

	/* qcow2: a backing file or an external data file would be opened by QEMU by path */
	write_file(pool.path, "clean.qcow2", q, sizeof(q));
	q[15] = 104; /* backing_file_offset */
	write_file(pool.path, "backed.qcow2", q, sizeof(q));
	q[15] = 0;
	q[79] = 4; /* incompatible feature: external data file */
	write_file(pool.path, "ext.qcow2", q, sizeof(q));
	struct smig_volref ref = { .pool = "images" };
	struct smig_catalog cat = { .npools = 1 };
	cat.pools[0] = pool;
	snprintf(ref.volume, sizeof(ref.volume), "clean.qcow2");
	assert_int_equal(smig_volume_open_ref(&cat, &ref, O_RDONLY, true, "disks[0]", &fd, &hostile,
					      err, sizeof(err)),
			 0);
	close(fd);
	snprintf(ref.volume, sizeof(ref.volume), "backed.qcow2");
	assert_true(smig_volume_open_ref(&cat, &ref, O_RDONLY, true, "disks[0]", &fd, &hostile, err,
					 sizeof(err)) < 0);
	assert_true(hostile);
	assert_non_null(strstr(err, "disks[0]: backed.qcow2 has a backing file"));
	snprintf(ref.volume, sizeof(ref.volume), "ext.qcow2");
	assert_true(smig_volume_open_ref(&cat, &ref, O_RDONLY, true, "disks[0]", &fd, &hostile, err,
					 sizeof(err)) < 0);
	assert_non_null(strstr(err, "external data file"));
	snprintf(ref.volume, sizeof(ref.volume), "root.raw");
	assert_true(smig_volume_open_ref(&cat, &ref, O_RDONLY, true, "disks[0]", &fd, &hostile, err,
					 sizeof(err)) < 0);
	assert_non_null(strstr(err, "is not a qcow2 image"));

	/* an NVRAM volume is made once from its template, then kept */
	snprintf(path, sizeof(path), "%s/secret", dir);
	assert_int_equal(smig_volume_create_from(&pool, "vm.vars", path, err, sizeof(err)), 0);
	write_file(pool.path, "vm.vars", "guest-set", 9);
	assert_int_equal(smig_volume_create_from(&pool, "vm.vars", path, err, sizeof(err)), 0);
	assert_int_equal(smig_volume_open(&pool, "vm.vars", O_RDONLY, &fd, &hostile, err,
					  sizeof(err)),
			 0);
	assert_int_equal(read(fd, path, sizeof(path)), 9);
	close(fd);
	/* nor does creation follow a symlink out of the pool */
	assert_true(smig_volume_create_from(&pool, "escape", path, err, sizeof(err)) == 0);
	snprintf(path, sizeof(path), "%s/secret", dir);
	fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, err, sizeof(err)), 6);
	close(fd);
	test_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_catalog_config),
		cmocka_unit_test(test_qemu_caps),
		cmocka_unit_test(test_spec_check),
		cmocka_unit_test(test_volume_open),
	};
	return cmocka_run_group_tests_name("catalog", tests, NULL, NULL);
}
