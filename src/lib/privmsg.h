/*
 * privmsg.h - the typed messages between smigd's two processes: the warden
 * (root: starts and confines VMs, opens their volumes and taps, applies
 * nftables, keeps the host key, the host TPM and the audit log) and the
 * worker (unprivileged: peers, control clients, migrations, the relay).
 * docs/architecture.md, "Process model", says who asks what and why.
 *
 * One message per SOCK_SEQPACKET datagram: u16 type, u32 id (a request's,
 * echoed by its reply; 0 in notifications), then the fields the type's
 * schema lists, in order, and exactly as many descriptors (SCM_RIGHTS) as
 * the schema says, or none in a reply whose status (its first field, u)
 * reports a failure. A field kind is one letter:
 *
 *   n  a name: 1-63 of A-Z a-z 0-9 . _ -, not starting with . or - (VMs, hosts)
 *   a  an address or short word: up to 63 printable bytes
 *   t  text: up to 4095 bytes, no NUL (reasons, log lines, audit fields)
 *   s  a document: up to 1 MiB, no NUL (specs, evidence, config files)
 *   k  32 bytes (keys, nonces, digests)
 *   u  u32      q  u64      b  a bool (one byte, 0 or 1)
 *
 * Strings travel as u32 length, bytes, NUL; decoding checks the length
 * against the kind's maximum, the NUL at its end and none inside, so a
 * decoded string is a C string pointing into the datagram. Nothing may
 * follow the last field. Neither side trusts the other's bytes: the
 * warden checks every request against what it knows on top of this.
 */
#ifndef SMIG_PRIVMSG_H
#define SMIG_PRIVMSG_H

#include "buf.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMIG_PM_FIELDS_MAX 8
#define SMIG_PM_FDS_MAX 2
#define SMIG_PM_TEXT_MAX 4095u
#define SMIG_PM_DOC_MAX ((size_t)1 << 20)
/* the largest datagram: five documents (EV_RELOAD) and their framing */
#define SMIG_PM_MAX ((size_t)5 * (SMIG_PM_DOC_MAX + 8) + 1024)

enum smig_pm_type {
	/* worker -> warden: requests, each answered by the type + 1 */
	SMIG_PM_VM_LIST = 2,        /* -> s: JSON array of what the warden knows of each VM */
	SMIG_PM_VM_DEFINE = 4,      /* s spec -> u status, t error, s pinned spec */
	SMIG_PM_VM_UNDEFINE = 6,    /* n vm -> u status, t error */
	SMIG_PM_VM_STAGE = 8,       /* s spec, n source, k tpm key, b has key, k fw sha256, q fw size
				       -> u status, t error, b hostile */
	SMIG_PM_VM_COMMIT = 10,     /* n vm -> u status, t error */
	SMIG_PM_VM_DISCARD = 12,    /* n vm -> u status, t error */
	SMIG_PM_VM_RETIRE = 14,     /* n vm -> u status, t error */
	SMIG_PM_VM_START = 16,      /* n vm, b incoming -> u status, t error, u qemu pid,
				       u swtpm pid, b filtered; descriptors: QMP, serial console */
	SMIG_PM_VM_KILL = 18,       /* n vm -> u status, t error */
	SMIG_PM_VM_CONNECT = 20,    /* n vm, u which (SMIG_PM_SOCK_*) -> u status, t error; one descriptor */
	SMIG_PM_TPM_KEY = 22,       /* n vm -> u status, t error, k key */
	SMIG_PM_FW_BUILD = 24,      /* n vm -> u status, t error, k sha256, q size */
	SMIG_PM_BAN = 26,           /* a address, q milliseconds -> u status */
	SMIG_PM_UNBAN = 28,         /* a address -> u status */
	SMIG_PM_AUDIT = 30,         /* t actor, t action, t target, t decision, t rule, t outcome,
				       t detail -> b written, t the record */
	SMIG_PM_AUDIT_WRITABLE = 32, /* -> b writable */
	SMIG_PM_EVIDENCE = 34,      /* k nonce, k binding, q free MiB, k the fingerprint of the
				       certificate this end showed on the session, b in
				       maintenance -> u status, t error, s evidence (signed by
				       that certificate's key), q boot log bytes, q IMA list
				       bytes; descriptor: a memory file with both logs */
	SMIG_PM_IVT_WRITE = 36,     /* s the new IVT -> u status, t error */
	SMIG_PM_FW_HOST = 38,       /* n firmware -> u status, t error, k sha256, q size */
	SMIG_PM_READY = 40,         /* the worker serves (control socket, peers) -> u status */
	SMIG_PM_TPM_ACTIVATE = 42,  /* t credential blob, t encrypted secret (hex, tpmcred.h)
				       -> u status, t error, k the credential */
	/* warden -> worker: notifications (id 0) */
	SMIG_PM_EV_VM_EXIT = 64,    /* n vm, u which (SMIG_PM_PROC_*), u wait status, t the last
				       line it wrote, u 1: the kernel killed it, out of memory
				       in the VM's cgroup (then q the limit in bytes) */
	SMIG_PM_EV_MEASURED = 66,   /* s signed measurement, n bad component ("-": none), t reason,
				       q microseconds it took */
	SMIG_PM_EV_RELOAD = 68,     /* s config, s host table, s policy ("" none), s IVT ("" none) */
	SMIG_PM_EV_IVT = 70,        /* s the IVT, changed on disk */
	SMIG_PM_EV_LOG = 72,        /* fd: the log file, rotated: the worker's stderr from now */
	SMIG_PM_EV_TLS = 74,        /* s CA, s certificate, s key (PEM): this host's pair, checked
				       by the warden, for the next connections; b part of a
				       reload (EV_RELOAD follows) */
	SMIG_PM_TYPE_MAX = 76,
};

/* Which of a VM's sockets VM_CONNECT asks for. */
enum { SMIG_PM_SOCK_QMP = 0, SMIG_PM_SOCK_SERIAL = 1, SMIG_PM_SOCK_AGENT = 2 };
/* Which of a VM's processes EV_VM_EXIT is about. */
enum { SMIG_PM_PROC_QEMU = 0, SMIG_PM_PROC_SWTPM = 1 };

struct smig_pm_field {
	char kind;
	uint64_t u;     /* u, q, b */
	const char *s;  /* n, a, t, s: NUL-terminated, inside the datagram */
	size_t len;     /* n, a, t, s */
	const uint8_t *k; /* k: 32 bytes inside the datagram */
};

struct smig_pm {
	uint16_t type;
	uint32_t id;
	size_t nf;
	struct smig_pm_field f[SMIG_PM_FIELDS_MAX];
	int fds[SMIG_PM_FDS_MAX];
	size_t nfds;
};

/* The type's name for logs ("vm.start"), "?" when unknown. */
const char *smig_pm_name(uint16_t type);
/* The type's field schema and descriptor count; SMIG_ETYPE when unknown. */
int smig_pm_schema(uint16_t type, const char **fields, size_t *nfds);

/*
 * Encodes a message of type with id into b (reset first): one argument per
 * schema letter, in order: const char * for n a t s, const uint8_t * (32
 * bytes) for k, unsigned for u, uint64_t for q, int for b. SMIG_EINVAL if
 * a value breaks its kind's rules.
 */
int smig_pm_build(struct smig_buf *b, uint16_t type, uint32_t id, ...);
int smig_pm_vbuild(struct smig_buf *b, uint16_t type, uint32_t id, va_list ap);

/* Encodes m's fields (as smig_pm_parse left them) into b: the same bytes again. */
int smig_pm_encode(struct smig_buf *b, const struct smig_pm *m);

/*
 * Decodes one datagram of len bytes that came with nfds descriptors into
 * m (whose strings point into data). Strict: unknown type, a field out of
 * its rules, bytes left over or a descriptor count other than the
 * schema's is an error. The descriptors are only recorded, never closed.
 */
int smig_pm_parse(const uint8_t *data, size_t len, const int *fds, size_t nfds,
		  struct smig_pm *m);

/* Field i of m (the schema guarantees its kind). */
const char *smig_pm_str(const struct smig_pm *m, size_t i);
uint64_t smig_pm_int(const struct smig_pm *m, size_t i);
const uint8_t *smig_pm_key(const struct smig_pm *m, size_t i);

/*
 * Sends b's bytes and nfds descriptors as one datagram on a SOCK_SEQPACKET
 * socket (blocking writes); receives one (at most max bytes, descriptors
 * beyond SMIG_PM_FDS_MAX closed and the datagram refused) into buf.
 * smig_pm_recv: SMIG_EAGAIN on a non-blocking socket with nothing to read,
 * SMIG_ECLOSED at the other end's exit.
 */
int smig_pm_send(int fd, const struct smig_buf *b, const int *fds, size_t nfds);
int smig_pm_recv(int fd, uint8_t *buf, size_t max, size_t *len, int fds[SMIG_PM_FDS_MAX],
		 size_t *nfds);

#endif
