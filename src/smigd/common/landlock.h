/*
 * landlock.h - Landlock rulesets, as both of smigd's processes build them:
 * the warden for each VM's QEMU and swtpm (warden/confine.c), the worker
 * for itself (worker/sandbox.c). The rights a ruleset handles follow the
 * ABI the kernel reports (capped at 6, the newest these rules know), so an
 * older kernel gets the subset it can enforce.
 */
#ifndef SMIGD_LANDLOCK_H
#define SMIGD_LANDLOCK_H

#include <linux/landlock.h>
#include <stdint.h>

/* Rights newer than the kernel headers of Debian 12 */
#define LL_FS_TRUNCATE (1ULL << 14)
#define LL_FS_IOCTL_DEV (1ULL << 15)
#define LL_NET_BIND_TCP (1ULL << 0)
#define LL_NET_CONNECT_TCP (1ULL << 1)
#define LL_SCOPE_ABSTRACT_UNIX (1ULL << 0)
#define LL_SCOPE_SIGNAL (1ULL << 1)

#define LL_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
/* What a rule on a file (not a directory) may grant. */
#define LL_FILE_RIGHTS                                                                    \
	(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |                     \
	 LANDLOCK_ACCESS_FS_READ_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV)

struct ll_set {
	int fd;      /* the ruleset */
	int abi;     /* the ABI it was made for */
	uint64_t fs; /* the file-system rights it handles */
};

/* The kernel's Landlock ABI, 0 without Landlock. */
int ll_abi(void);
/*
 * A ruleset for abi handling every file-system right the ABI has, the
 * network rights net (from ABI 4) and the scopes scoped (from ABI 6);
 * -1 with errno on failure.
 */
int ll_open(struct ll_set *s, int abi, uint64_t net, uint64_t scoped);
/* Allows access beneath fd (a file: only its file rights); -1 with errno. */
int ll_allow_fd(const struct ll_set *s, int fd, uint64_t access);
/* The same by path; a path this host lacks allows nothing and is no error. */
int ll_allow_path(const struct ll_set *s, const char *path, uint64_t access);
/* Allows a network right on a TCP port (nothing before ABI 4); -1 with errno. */
int ll_allow_port(const struct ll_set *s, uint64_t access, uint16_t port);

#endif
