/*
 * landlock.c - Landlock rulesets for both of smigd's processes
 * (landlock.h). Plain system calls only: the warden builds a VM's ruleset
 * in the child between fork and exec.
 */
#include "common/landlock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The ruleset attribute as ABI 6 defines it; older ABIs read a prefix of it. */
struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

struct ll_net_port_attr {
	uint64_t allowed_access;
	uint64_t port;
} __attribute__((packed));

#define LL_RULE_NET_PORT 2

static uint64_t fs_rights(int abi)
{
	uint64_t r = (1ULL << 13) - 1; /* ABI 1: execute .. make_sym */

	if (abi >= 2)
		r |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		r |= LL_FS_TRUNCATE;
	if (abi >= 5)
		r |= LL_FS_IOCTL_DEV;
	return r;
}

int ll_abi(void)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);

	return abi > 0 ? (int)abi : 0;
}

int ll_open(struct ll_set *s, int abi, uint64_t net, uint64_t scoped)
{
	struct ll_ruleset_attr attr = { 0 };
	size_t size = sizeof(attr.handled_access_fs);

	s->abi = abi > 6 ? 6 : abi;
	s->fs = fs_rights(s->abi);
	attr.handled_access_fs = s->fs;
	if (s->abi >= 4) {
		attr.handled_access_net = net;
		size += sizeof(attr.handled_access_net);
	}
	if (s->abi >= 6) {
		attr.scoped = scoped;
		size += sizeof(attr.scoped);
	}
	s->fd = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
	return s->fd < 0 ? -1 : 0;
}

int ll_allow_fd(const struct ll_set *s, int fd, uint64_t access)
{
	struct landlock_path_beneath_attr a = { .parent_fd = fd };
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode))
		access &= LL_FILE_RIGHTS;
	a.allowed_access = access & s->fs;
	if (a.allowed_access == 0)
		return 0;
	return (int)syscall(SYS_landlock_add_rule, s->fd, LANDLOCK_RULE_PATH_BENEATH, &a, 0) == 0
		       ? 0
		       : -1;
}

int ll_allow_path(const struct ll_set *s, const char *path, uint64_t access)
{
	int fd = open(path, O_PATH | O_CLOEXEC);
	int rc, saved;

	if (fd < 0)
		return errno == ENOENT ? 0 : -1; /* not on this host: nothing to allow */
	rc = ll_allow_fd(s, fd, access);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

int ll_allow_port(const struct ll_set *s, uint64_t access, uint16_t port)
{
	struct ll_net_port_attr np = { .allowed_access = access, .port = port };

	if (s->abi < 4)
		return 0;
	return (int)syscall(SYS_landlock_add_rule, s->fd, LL_RULE_NET_PORT, &np, 0) == 0 ? 0 : -1;
}
