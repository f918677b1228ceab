/*
 * privmsg.c - the warden/worker messages (privmsg.h): one schema per type,
 * a strict encoder and decoder driven by it, and datagram I/O with
 * descriptors.
 */
#include "privmsg.h"
#include "error.h"
#include "msg.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const struct {
	uint16_t type;
	const char *name;
	const char *fields;
	size_t nfds;
} schemas[] = {
	{ SMIG_PM_VM_LIST, "vm.list", "", 0 },
	{ SMIG_PM_VM_LIST + 1, "vm.list.reply", "uts", 0 },
	{ SMIG_PM_VM_DEFINE, "vm.define", "s", 0 },
	{ SMIG_PM_VM_DEFINE + 1, "vm.define.reply", "uts", 0 },
	{ SMIG_PM_VM_UNDEFINE, "vm.undefine", "n", 0 },
	{ SMIG_PM_VM_UNDEFINE + 1, "vm.undefine.reply", "ut", 0 },
	{ SMIG_PM_VM_STAGE, "vm.stage", "snkbkq", 0 },
	{ SMIG_PM_VM_STAGE + 1, "vm.stage.reply", "utb", 0 },
	{ SMIG_PM_VM_COMMIT, "vm.commit", "n", 0 },
	{ SMIG_PM_VM_COMMIT + 1, "vm.commit.reply", "ut", 0 },
	{ SMIG_PM_VM_DISCARD, "vm.discard", "n", 0 },
	{ SMIG_PM_VM_DISCARD + 1, "vm.discard.reply", "ut", 0 },
	{ SMIG_PM_VM_RETIRE, "vm.retire", "n", 0 },
	{ SMIG_PM_VM_RETIRE + 1, "vm.retire.reply", "ut", 0 },
	{ SMIG_PM_VM_START, "vm.start", "nb", 0 },
	{ SMIG_PM_VM_START + 1, "vm.start.reply", "utuub", 2 },
	{ SMIG_PM_VM_KILL, "vm.kill", "n", 0 },
	{ SMIG_PM_VM_KILL + 1, "vm.kill.reply", "ut", 0 },
	{ SMIG_PM_VM_CONNECT, "vm.connect", "nu", 0 },
	{ SMIG_PM_VM_CONNECT + 1, "vm.connect.reply", "ut", 1 },
	{ SMIG_PM_TPM_KEY, "vm.tpm_key", "n", 0 },
	{ SMIG_PM_TPM_KEY + 1, "vm.tpm_key.reply", "utk", 0 },
	{ SMIG_PM_FW_BUILD, "vm.fw_build", "n", 0 },
	{ SMIG_PM_FW_BUILD + 1, "vm.fw_build.reply", "utkq", 0 },
	{ SMIG_PM_BAN, "ban", "aq", 0 },
	{ SMIG_PM_BAN + 1, "ban.reply", "u", 0 },
	{ SMIG_PM_UNBAN, "unban", "a", 0 },
	{ SMIG_PM_UNBAN + 1, "unban.reply", "u", 0 },
	{ SMIG_PM_AUDIT, "audit", "ttttttt", 0 },
	{ SMIG_PM_AUDIT + 1, "audit.reply", "bt", 0 },
	{ SMIG_PM_AUDIT_WRITABLE, "audit.writable", "", 0 },
	{ SMIG_PM_AUDIT_WRITABLE + 1, "audit.writable.reply", "b", 0 },
	{ SMIG_PM_EVIDENCE, "evidence", "kkqkb", 0 },
	{ SMIG_PM_EVIDENCE + 1, "evidence.reply", "utsqq", 1 },
	{ SMIG_PM_IVT_WRITE, "ivt.write", "s", 0 },
	{ SMIG_PM_IVT_WRITE + 1, "ivt.write.reply", "ut", 0 },
	{ SMIG_PM_FW_HOST, "fw.host", "n", 0 },
	{ SMIG_PM_FW_HOST + 1, "fw.host.reply", "utkq", 0 },
	{ SMIG_PM_READY, "ready", "", 0 },
	{ SMIG_PM_READY + 1, "ready.reply", "u", 0 },
	{ SMIG_PM_TPM_ACTIVATE, "tpm.activate", "tt", 0 },
	{ SMIG_PM_TPM_ACTIVATE + 1, "tpm.activate.reply", "utk", 0 },
	{ SMIG_PM_EV_VM_EXIT, "ev.vm_exit", "nuutuq", 0 },
	{ SMIG_PM_EV_MEASURED, "ev.measured", "satq", 0 },
	{ SMIG_PM_EV_RELOAD, "ev.reload", "sssss", 0 },
	{ SMIG_PM_EV_IVT, "ev.ivt", "s", 0 },
	{ SMIG_PM_EV_LOG, "ev.log", "", 1 },
	{ SMIG_PM_EV_TLS, "ev.tls", "sssb", 0 },
};

static int find(uint16_t type)
{
	for (size_t i = 0; i < ARRAY_LEN(schemas); i++)
		if (schemas[i].type == type)
			return (int)i;
	return -1;
}

const char *smig_pm_name(uint16_t type)
{
	int i = find(type);

	return i < 0 ? "?" : schemas[i].name;
}

int smig_pm_schema(uint16_t type, const char **fields, size_t *nfds)
{
	int i = find(type);

	SMIG_ENSURE(i >= 0, SMIG_ETYPE);
	*fields = schemas[i].fields;
	*nfds = schemas[i].nfds;
	return 0;
}

static size_t kind_max(char kind)
{
	switch (kind) {
	case 'n':
	case 'a': return SMIG_NAME_MAX; /* addresses are no longer than names */
	case 't': return SMIG_PM_TEXT_MAX;
	default: return SMIG_PM_DOC_MAX;
	}
}

/* A string of kind holds s[0..len): within the maximum, no NUL, its alphabet. */
static bool str_ok(char kind, const char *s, size_t len)
{
	if (len > kind_max(kind) || memchr(s, '\0', len) != NULL)
		return false;
	if (kind == 'n')
		return smig_name_valid(s) == 1;
	if (kind == 'a')
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
				return false;
	return true;
}

static int put_str(struct smig_buf *b, char kind, const char *s)
{
	size_t len;

	SMIG_ENSURE(s != NULL, SMIG_EINVAL);
	len = strlen(s);
	SMIG_ENSURE(str_ok(kind, s, len), SMIG_EINVAL);
	SMIG_GUARD(smig_buf_put_u32(b, (uint32_t)len));
	SMIG_GUARD(smig_buf_put_bytes(b, s, len));
	return smig_buf_put_u8(b, 0);
}

int smig_pm_vbuild(struct smig_buf *b, uint16_t type, uint32_t id, va_list ap)
{
	const char *fields;
	size_t nfds;
	int rc = 0;

	SMIG_GUARD(smig_pm_schema(type, &fields, &nfds));
	smig_buf_reset(b);
	SMIG_GUARD(smig_buf_put_u16(b, type));
	SMIG_GUARD(smig_buf_put_u32(b, id));
	for (const char *k = fields; *k && rc == 0; k++) {
		switch (*k) {
		case 'n':
		case 'a':
		case 't':
		case 's':
			rc = put_str(b, *k, va_arg(ap, const char *));
			break;
		case 'k': {
			const uint8_t *p = va_arg(ap, const uint8_t *);

			rc = p ? smig_buf_put_bytes(b, p, 32) : SMIG_EINVAL;
			break;
		}
		case 'u':
			rc = smig_buf_put_u32(b, va_arg(ap, unsigned));
			break;
		case 'q':
			rc = smig_buf_put_u64(b, va_arg(ap, uint64_t));
			break;
		default: /* 'b' */
			rc = smig_buf_put_u8(b, va_arg(ap, int) ? 1 : 0);
			break;
		}
	}
	return rc;
}

int smig_pm_build(struct smig_buf *b, uint16_t type, uint32_t id, ...)
{
	va_list ap;
	int rc;

	va_start(ap, id);
	rc = smig_pm_vbuild(b, type, id, ap);
	va_end(ap);
	return rc;
}

int smig_pm_encode(struct smig_buf *b, const struct smig_pm *m)
{
	const char *fields;
	size_t nfds;

	SMIG_GUARD(smig_pm_schema(m->type, &fields, &nfds));
	SMIG_ENSURE(strlen(fields) == m->nf, SMIG_EINVAL);
	smig_buf_reset(b);
	SMIG_GUARD(smig_buf_put_u16(b, m->type));
	SMIG_GUARD(smig_buf_put_u32(b, m->id));
	for (size_t i = 0; i < m->nf; i++) {
		const struct smig_pm_field *f = &m->f[i];

		SMIG_ENSURE(f->kind == fields[i], SMIG_EINVAL);
		if (strchr("nats", f->kind))
			SMIG_GUARD(put_str(b, f->kind, f->s));
		else if (f->kind == 'k')
			SMIG_GUARD(f->k ? smig_buf_put_bytes(b, f->k, 32) : SMIG_EINVAL);
		else if (f->kind == 'u')
			SMIG_GUARD(f->u <= UINT32_MAX ? smig_buf_put_u32(b, (uint32_t)f->u) : SMIG_EINVAL);
		else if (f->kind == 'q')
			SMIG_GUARD(smig_buf_put_u64(b, f->u));
		else
			SMIG_GUARD(f->u <= 1 ? smig_buf_put_u8(b, (uint8_t)f->u) : SMIG_EINVAL);
	}
	return 0;
}

static int get_str(struct smig_buf *in, char kind, struct smig_pm_field *f)
{
	const uint8_t *p;
	uint32_t len;
	uint8_t nul;

	SMIG_GUARD(smig_buf_get_u32(in, &len));
	SMIG_ENSURE(len <= kind_max(kind), SMIG_ETOOBIG);
	SMIG_GUARD(smig_buf_get_ptr(in, &p, len));
	SMIG_GUARD(smig_buf_get_u8(in, &nul));
	SMIG_ENSURE(nul == 0, SMIG_EPROTO);
	f->s = (const char *)p;
	f->len = len;
	/* the NUL after the bytes makes p a C string: only now may str_ok look at it */
	SMIG_ENSURE(str_ok(kind, f->s, len), SMIG_EPROTO);
	return 0;
}

static int get_field(struct smig_buf *in, char kind, struct smig_pm_field *f)
{
	uint32_t u32;
	uint8_t u8;

	memset(f, 0, sizeof(*f));
	f->kind = kind;
	switch (kind) {
	case 'n':
	case 'a':
	case 't':
	case 's':
		return get_str(in, kind, f);
	case 'k':
		return smig_buf_get_ptr(in, &f->k, 32);
	case 'u':
		SMIG_GUARD(smig_buf_get_u32(in, &u32));
		f->u = u32;
		return 0;
	case 'q':
		return smig_buf_get_u64(in, &f->u);
	default: /* 'b' */
		SMIG_GUARD(smig_buf_get_u8(in, &u8));
		SMIG_ENSURE(u8 <= 1, SMIG_EPROTO);
		f->u = u8;
		return 0;
	}
}

int smig_pm_parse(const uint8_t *data, size_t len, const int *fds, size_t nfds,
		  struct smig_pm *m)
{
	struct smig_buf in;
	const char *fields;
	size_t want;

	memset(m, 0, sizeof(*m));
	SMIG_ENSURE(len <= SMIG_PM_MAX, SMIG_ETOOBIG);
	smig_buf_view(&in, data, len);
	SMIG_GUARD(smig_buf_get_u16(&in, &m->type));
	SMIG_GUARD(smig_buf_get_u32(&in, &m->id));
	SMIG_GUARD(smig_pm_schema(m->type, &fields, &want));
	SMIG_ENSURE(nfds <= SMIG_PM_FDS_MAX, SMIG_EPROTO);
	for (const char *k = fields; *k; k++)
		SMIG_GUARD(get_field(&in, *k, &m->f[m->nf++]));
	SMIG_GUARD(smig_buf_expect_end(&in));
	/* a reply that reports a failure (its status, first, not 0) carries none */
	if (want > 0 && fields[0] == 'u' && m->f[0].u != 0)
		want = 0;
	SMIG_ENSURE(nfds == want, SMIG_EPROTO);
	for (size_t i = 0; i < nfds; i++)
		m->fds[i] = fds[i];
	m->nfds = nfds;
	return 0;
}

const char *smig_pm_str(const struct smig_pm *m, size_t i)
{
	return i < m->nf && m->f[i].s ? m->f[i].s : "";
}

uint64_t smig_pm_int(const struct smig_pm *m, size_t i)
{
	return i < m->nf ? m->f[i].u : 0;
}

const uint8_t *smig_pm_key(const struct smig_pm *m, size_t i)
{
	static const uint8_t zero[32];

	return i < m->nf && m->f[i].k ? m->f[i].k : zero;
}

int smig_pm_send(int fd, const struct smig_buf *b, const int *fds, size_t nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * SMIG_PM_FDS_MAX)];
	struct iovec iov = { .iov_base = (void *)smig_buf_peek(b),
			     .iov_len = smig_buf_remaining(b) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	SMIG_ENSURE(nfds <= SMIG_PM_FDS_MAX, SMIG_EINVAL);
	if (nfds > 0) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EPIPE || errno == ECONNRESET ? SMIG_ECLOSED : SMIG_EIO;
	return (size_t)n == iov.iov_len ? 0 : SMIG_EIO;
}

int smig_pm_recv(int fd, uint8_t *buf, size_t max, size_t *len, int fds[SMIG_PM_FDS_MAX],
		 size_t *nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 8)];
	struct iovec iov = { .iov_base = buf, .iov_len = max };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	bool bad = false;
	ssize_t n;

	*nfds = 0;
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? SMIG_EAGAIN
		       : errno == ECONNRESET			  ? SMIG_ECLOSED
								  : SMIG_EIO;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*nfds < SMIG_PM_FDS_MAX)
				fds[(*nfds)++] = f;
			else {
				close(f);
				bad = true;
			}
		}
	}
	if (n == 0 && *nfds == 0)
		return SMIG_ECLOSED;
	if (bad || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		for (size_t i = 0; i < *nfds; i++)
			close(fds[i]);
		*nfds = 0;
		return SMIG_EPROTO;
	}
	*len = (size_t)n;
	return 0;
}
