/*
 * fakepeer.c - smig-fakepeer: a peer that holds a real host key but does
 * not play fair, for attestation tests.
 *
 *   smig-fakepeer capture OPTS            ask the target for evidence and
 *                                         print what it sends
 *   smig-fakepeer present OPTS --evidence FILE [--rebind yes]
 *                                         answer the target's attestation
 *                                         request with FILE (e.g. evidence
 *                                         captured in another session);
 *                                         --rebind puts this request's nonce
 *                                         and this session's exporter value
 *                                         into it, keeping its signature;
 *                                         --resign also signs it again with
 *                                         KEY, as a host whose key (but not
 *                                         whose TPM) is stolen could;
 *                                         --verdict ABOUT[,N] then sends N
 *                                         signed VERDICTs that ABOUT is
 *                                         untrusted
 *   smig-fakepeer serve OPTS --listen ADDR:PORT --ivt IVT
 *                                         stand in for HOST as a destination:
 *                                         answer attestation with HOST's golden
 *                                         values from IVT (signed with KEY; the
 *                                         free memory it claims: --free-mib, else
 *                                         100000 MiB), say it holds whatever
 *                                         capacity a RESERVE asks, then
 *                                         answer PREPARE out of order (READY);
 *                                         with --after-commit abort, play the
 *                                         destination through to COMMIT (PREPARED,
 *                                         the stream read and dropped, READY), answer
 *                                         COMMIT with ABORT, and answer the source's
 *                                         QUERY after 3 s with DISCARDED; with
 *                                         --after-commit swap-id, answer COMMIT_REQ
 *                                         with READY for an id other than PREPARED's
 *   smig-fakepeer prepare OPTS --ivt IVT --spec FILE [--vtpm yes]
 *                                         act as source HOST: attest with HOST's
 *                                         golden values, then send FILE as the
 *                                         PREPARE's spec, unchecked; prints
 *                                         "refused: REASON" (exit 0) or
 *                                         "prepared" (exit 3); with --ids wrong,
 *                                         once PREPARED came send COMMIT_REQ with
 *                                         another id and print the answer
 *   smig-fakepeer reserve OPTS --free-mib MIB
 *                                         right after HELLO, before any evidence,
 *                                         ask the target to hold MIB MiB for an
 *                                         hour; print "held", "not held: WHY" or
 *                                         "refused: WHY" (the target's ERROR)
 *   smig-fakepeer hold OPTS --count N [--hold-s S]
 *                                         open N connections as HOST, one after
 *                                         another, each through TLS and HELLO; print
 *                                         "held K of N" (K: those the target answered
 *                                         with its HELLO), keep them S s (default 10)
 *   smig-fakepeer quote-flood OPTS --count N
 *                                         N sessions one after another, each
 *                                         HELLO and an ATTEST_REQ, closed at
 *                                         once (each is a TPM quote for the
 *                                         target); print "sent K of N"
 *   smig-fakepeer attest-flood OPTS --count N
 *                                         after HELLO send N ATTEST_REQs at once; print
 *                                         "answered K of N" once the target closes
 * OPTS: --ca CA --cert CERT --key KEY --name HOST [--to ADDR:PORT]
 *
 * It speaks the real protocol through libsmig (TLS 1.3, HELLO, frames)
 * over a blocking socket, so the target sees an authenticated peer.
 */
#include "buf.h"
#include "config.h"
#include "error.h"
#include "evidence.h"
#include "file.h"
#include "frame.h"
#include "ivt.h"
#include "msg.h"
#include "report.h"
#include "sign.h"
#include "tls.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct opts {
	const char *mode, *ca, *cert, *key, *name, *to, *evidence, *rebind, *resign, *listen, *ivt;
	const char *spec, *vtpm, *after_commit, *count, *hold_s, *ids, *free_mib, *verdict;
};

static int usage(void)
{
	fprintf(stderr, "usage: smig-fakepeer capture|present --ca CA --cert CERT --key KEY "
			"--name HOST --to ADDR:PORT [--evidence FILE]\n");
	return 2;
}

static int dial(const char *to)
{
	char addr[SMIG_ADDR_MAX];
	struct sockaddr_in sa = { .sin_family = AF_INET };
	uint16_t port;
	int fd;

	if (smig_addr_parse(to, addr, sizeof(addr), &port) < 0 ||
	    inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
		return -1;
	sa.sin_port = htons(port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int send_buf(struct smig_tls_conn *c, struct smig_buf *b)
{
	while (smig_buf_remaining(b) > 0) {
		size_t n;

		if (smig_tls_write(c, smig_buf_peek(b), smig_buf_remaining(b), &n) < 0)
			return -1;
		(void)smig_buf_consume(b, n);
	}
	return 0;
}

/* The next frame from the peer (blocking, at most 5 s); 0 or -1. */
static int next_frame(int fd, struct smig_tls_conn *c, struct smig_buf *rx,
		      struct smig_frame *f)
{
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint8_t *dst;
		size_t n;

		if (smig_frame_next(rx, f) == 0)
			return 0;
		if (smig_buf_reserve(rx, 16384, &dst) < 0 || poll(&pfd, 1, 5000) <= 0 ||
		    smig_tls_read(c, dst, 16384, &n) < 0)
			return -1;
		smig_buf_commit(rx, n);
	}
}

/* Swaps the evidence's nonce and binding for this request's and session's. */
static int rebind(struct smig_tls_conn *c, const uint8_t *nonce, char **ev)
{
	uint8_t binding[SMIG_BINDING_LEN];
	char hex[2 * SMIG_BINDING_LEN + 1];
	json_t *o = json_loads(*ev, 0, NULL);
	char *text;

	if (o == NULL ||
	    smig_tls_export(c, SMIG_EXPORTER_LABEL, NULL, 0, binding, sizeof(binding)) < 0)
		return -1;
	smig_hex(nonce, SMIG_NONCE_LEN, hex);
	json_object_set_new(o, "nonce", json_string(hex));
	smig_hex(binding, sizeof(binding), hex);
	json_object_set_new(o, "binding", json_string(hex));
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (text == NULL)
		return -1;
	free(*ev);
	*ev = text;
	return 0;
}

/*
 * --verdict ABOUT[,N]: N (default 1) signed VERDICTs by o->name, that
 * ABOUT is untrusted, right after the evidence.
 */
static int send_verdicts(const struct opts *o, struct smig_tls_conn *c, struct smig_buf *tx)
{
	struct smig_report r = { .time_ms = 1795000000000 };
	const char *comma = strchr(o->verdict, ',');
	int n = comma ? (int)strtol(comma + 1, NULL, 10) : 1;
	EVP_PKEY *key = NULL;
	char err[256], *text = NULL;
	int rc = smig_sign_load_key(o->key, &key, err, sizeof(err));

	snprintf(r.by, sizeof(r.by), "%s", o->name);
	snprintf(r.about, sizeof(r.about), "%.*s",
		 (int)(comma ? (size_t)(comma - o->verdict) : strlen(o->verdict)), o->verdict);
	snprintf(r.verdict, sizeof(r.verdict), "untrusted");
	snprintf(r.reason, sizeof(r.reason), "said by smig-fakepeer");
	if (rc == 0)
		rc = smig_report_sign(&r, key, &text);
	for (int i = 0; rc == 0 && i < n; i++)
		rc = smig_msg_put_verdict(tx, text, strlen(text));
	if (rc == 0)
		rc = send_buf(c, tx);
	free(text);
	EVP_PKEY_free(key);
	return rc;
}

/* Signs the (re-bound) evidence again with the host key at path. */
static int resign(const char *path, char **ev)
{
	struct smig_evidence e;
	EVP_PKEY *key = NULL;
	char err[256], *text = NULL;
	int rc = smig_evidence_parse(*ev, strlen(*ev), &e, err, sizeof(err));

	if (rc == 0)
		rc = smig_sign_load_key(path, &key, err, sizeof(err));
	if (rc == 0)
		rc = smig_evidence_sign(&e, key, &text);
	EVP_PKEY_free(key);
	if (rc < 0)
		return -1;
	free(*ev);
	*ev = text;
	return 0;
}

static int forge(const struct opts *o, struct smig_tls_conn *c, const uint8_t *nonce,
		 char **text);

/* PREPARE with o->spec as it is, once the target has our (forged) evidence. */
static int reserve(const struct opts *o, int fd, struct smig_tls_conn *c)
{
	struct smig_reserve r = { .vm = "grab", .vcpus = 1, .ttl_s = 3600 };
	struct smig_hello h = { 0 };
	struct smig_buf tx, rx;
	struct smig_frame f;
	int rc = 1;

	r.memory_mib = (uint32_t)strtoul(o->free_mib ? o->free_mib : "1024", NULL, 10);
	smig_buf_init(&tx, 1 << 16);
	smig_buf_init(&rx, 1 << 21);
	snprintf(h.host, sizeof(h.host), "%s", o->name);
	snprintf(h.version, sizeof(h.version), "fake");
	if (smig_msg_put_hello(&tx, &h) < 0 || smig_msg_put_reserve(&tx, &r) < 0 ||
	    send_buf(c, &tx) < 0)
		goto out;
	while (next_frame(fd, c, &rx, &f) == 0) {
		struct smig_reserved a;
		struct smig_error_msg em;

		if (f.type == SMIG_MSG_RESERVED && smig_msg_get_reserved(&f, &a) == 0) {
			printf(a.held ? "held\n" : "not held: %s\n", a.reason);
			rc = 0;
			break;
		}
		if (f.type == SMIG_MSG_ERROR && smig_msg_get_error(&f, &em) == 0) {
			printf("refused: %s\n", em.reason);
			rc = 0;
			break;
		}
	}
out:
	smig_buf_clear(&tx);
	smig_buf_clear(&rx);
	return rc;
}

static int prepare(const struct opts *o, int fd, struct smig_tls_conn *c)
{
	struct smig_mig_prepare mp = { 0 };
	struct smig_hello h = { 0 };
	struct smig_mig_abort ab;
	struct smig_buf tx, rx;
	struct smig_frame f;
	uint8_t nonce[SMIG_ATTEST_NONCE_LEN];
	char *ev = NULL, *spec = NULL, err[256];
	bool sent = false;
	int rc = 1;

	smig_buf_init(&tx, 1 << 20);
	smig_buf_init(&rx, 1 << 21);
	snprintf(h.host, sizeof(h.host), "%s", o->name);
	snprintf(h.version, sizeof(h.version), "fake");
	if (smig_file_read(o->spec, 65536, &spec, &mp.spec_len, err, sizeof(err)) < 0) {
		fprintf(stderr, "smig-fakepeer: %s\n", err);
		goto out;
	}
	mp.spec = spec;
	mp.has_key = o->vtpm != NULL;
	(void)RAND_bytes(mp.key, sizeof(mp.key));
	if (smig_msg_put_hello(&tx, &h) < 0 || send_buf(c, &tx) < 0)
		goto out;
	while (next_frame(fd, c, &rx, &f) == 0) {
		if (f.type == SMIG_MSG_ATTEST_REQ && !sent) {
			free(ev);
			ev = NULL;
			if (smig_msg_get_attest_req(&f, nonce) < 0 || forge(o, c, nonce, &ev) < 0 ||
			    smig_msg_put_attest(&tx, ev, strlen(ev)) < 0 ||
			    smig_msg_put_mig_prepare(&tx, &mp) < 0 || send_buf(c, &tx) < 0)
				goto out;
			sent = true;
		} else if (f.type == SMIG_MSG_MIG_ABORT && sent) {
			if (smig_msg_get_mig_abort(&f, &ab) < 0)
				goto out;
			printf("refused: %s\n", ab.reason);
			rc = 0;
			goto out;
		} else if (f.type == SMIG_MSG_MIG_PREPARED && sent && o->ids &&
			   strcmp(o->ids, "wrong") == 0) {
			/* a COMMIT_REQ for a migration this session does not have */
			struct smig_mig_commit_req cr = { .bytes = 0 };

			if (smig_mig_id_new(&cr.id) < 0 || smig_msg_put_mig_commit_req(&tx, &cr) < 0 ||
			    send_buf(c, &tx) < 0)
				goto out;
			printf("prepared; sent COMMIT_REQ with another id\n");
			fflush(stdout);
			sent = true;
		} else if (f.type == SMIG_MSG_MIG_PREPARED && sent) {
			printf("prepared\n");
			rc = 3;
			goto out;
		}
	}
	fprintf(stderr, "smig-fakepeer: no answer to PREPARE\n");
out:
	free(ev);
	free(spec);
	smig_buf_clear(&tx);
	smig_buf_clear(&rx);
	return rc;
}

static int run(const struct opts *o, int fd, struct smig_tls_conn *c)
{
	struct smig_hello h = { 0 };
	struct smig_buf tx, rx;
	struct smig_frame f;
	uint8_t nonce[SMIG_ATTEST_NONCE_LEN];
	char *ev = NULL, err[256];
	size_t evlen = 0;
	int rc = -1;

	smig_buf_init(&tx, 1 << 20);
	smig_buf_init(&rx, 1 << 21);
	snprintf(h.host, sizeof(h.host), "%s", o->name);
	snprintf(h.version, sizeof(h.version), "fake");
	if (o->evidence && smig_file_read(o->evidence, 65536, &ev, &evlen, err, sizeof(err)) < 0) {
		fprintf(stderr, "smig-fakepeer: %s\n", err);
		goto out;
	}
	if (smig_msg_put_hello(&tx, &h) < 0 || send_buf(c, &tx) < 0)
		goto out;
	while (next_frame(fd, c, &rx, &f) == 0) {
		if (f.type == SMIG_MSG_HELLO && strcmp(o->mode, "capture") == 0) {
			(void)RAND_bytes(nonce, sizeof(nonce));
			if (smig_msg_put_attest_req(&tx, nonce) < 0 || send_buf(c, &tx) < 0)
				goto out;
		} else if (f.type == SMIG_MSG_ATTEST && strcmp(o->mode, "capture") == 0) {
			printf("%.*s\n", (int)f.len, (const char *)f.payload);
			rc = 0;
			goto out;
		} else if (f.type == SMIG_MSG_ATTEST_REQ && ev) {
			if ((o->rebind || o->resign) &&
			    (smig_msg_get_attest_req(&f, nonce) < 0 || rebind(c, nonce, &ev) < 0))
				goto out;
			if (o->resign && resign(o->key, &ev) < 0)
				goto out;
			if (smig_msg_put_attest(&tx, ev, strcspn(ev, "\n")) < 0 ||
			    send_buf(c, &tx) < 0)
				goto out;
			if (o->verdict && send_verdicts(o, c, &tx) < 0)
				goto out;
			rc = 0;
			/* let the target judge it before the connection goes */
			(void)next_frame(fd, c, &rx, &f);
			goto out;
		}
	}
out:
	free(ev);
	smig_buf_clear(&tx);
	smig_buf_clear(&rx);
	return rc;
}

/* Evidence of o->name made from its first golden set in the IVT. */
static int forge(const struct opts *o, struct smig_tls_conn *c, const uint8_t *nonce,
		 char **text)
{
	struct smig_evidence e = { .free_mib = o->free_mib ? strtoull(o->free_mib, NULL, 10)
							    : 100000,
				   .ncaps = 2, .caps = { "tcg", "vtpm" } };
	const struct smig_ivt_host *h;
	struct smig_ivt ivt;
	EVP_PKEY *key = NULL;
	char err[512];
	int rc = smig_ivt_load(o->ivt, &ivt, err, sizeof(err));

	if (rc < 0)
		return rc;
	h = smig_ivt_find(&ivt, o->name);
	rc = h && h->ngolden ? 0 : SMIG_ENOENT;
	if (rc == 0) {
		snprintf(e.host, sizeof(e.host), "%s", o->name);
		memcpy(e.comp, h->golden[0].comp, sizeof(e.comp));
		e.ncomp = h->golden[0].ncomp;
		memcpy(e.nonce, nonce, SMIG_NONCE_LEN);
		rc = smig_tls_export(c, SMIG_EXPORTER_LABEL, NULL, 0, e.binding, SMIG_BINDING_LEN);
	}
	if (rc == 0)
		rc = smig_sign_load_key(o->key, &key, err, sizeof(err));
	if (rc == 0)
		rc = smig_evidence_sign(&e, key, text);
	EVP_PKEY_free(key);
	smig_ivt_clear(&ivt);
	return rc;
}

/* The destination's part: 1 once a source gave up on its migration, else 0. */
static int serve_conn(const struct opts *o, int fd, struct smig_tls_conn *c)
{
	struct smig_hello h = { 0 };
	struct smig_buf tx, rx;
	struct smig_frame f;
	struct smig_mig_prepare mp = { 0 };
	struct smig_mig_id id;
	uint8_t nonce[SMIG_ATTEST_NONCE_LEN];
	bool prepared = false;
	char *ev = NULL;
	int rc = 0;

	smig_buf_init(&tx, 1 << 20);
	smig_buf_init(&rx, 1 << 21);
	snprintf(h.host, sizeof(h.host), "%s", o->name);
	snprintf(h.version, sizeof(h.version), "fake");
	while (next_frame(fd, c, &rx, &f) == 0) {
		if (f.type == SMIG_MSG_HELLO) {
			if (smig_msg_put_hello(&tx, &h) < 0 || send_buf(c, &tx) < 0)
				break;
		} else if (f.type == SMIG_MSG_ATTEST_REQ) {
			free(ev);
			ev = NULL;
			if (smig_msg_get_attest_req(&f, nonce) < 0 || forge(o, c, nonce, &ev) < 0 ||
			    ev == NULL || smig_msg_put_attest(&tx, ev, strlen(ev)) < 0 ||
			    send_buf(c, &tx) < 0)
				break;
		} else if (f.type == SMIG_MSG_RESERVE) {
			/* it says it holds whatever it is asked for: its word only */
			struct smig_reserved a = { .held = true };

			if (smig_msg_put_reserved(&tx, &a) < 0 || send_buf(c, &tx) < 0)
				break;
		} else if (f.type == SMIG_MSG_MIG_PREPARE && o->after_commit) {
			if (smig_msg_get_mig_prepare(&f, &mp) < 0 || smig_mig_id_new(&id) < 0 ||
			    smig_msg_put_mig_id(&tx, SMIG_MSG_MIG_PREPARED, &id) < 0 ||
			    send_buf(c, &tx) < 0)
				break;
			prepared = true;
		} else if (f.type == SMIG_MSG_MIG_COMMIT_REQ && prepared) {
			struct smig_mig_id other;
			bool swap = o->after_commit && strcmp(o->after_commit, "swap-id") == 0;

			if (smig_mig_id_new(&other) < 0 ||
			    smig_msg_put_mig_ready(&tx, swap ? &other : &id, SMIG_PROT_ALL) < 0 ||
			    send_buf(c, &tx) < 0)
				break;
			if (swap)
				fprintf(stderr, "smig-fakepeer: answered COMMIT_REQ with READY for "
						"another id\n");
		} else if (f.type == SMIG_MSG_MIG_COMMIT && prepared) {
			/* after COMMIT a word of ours proves nothing: the source must ask */
			struct smig_mig_abort ab = { .id = id, .code = (uint16_t)-SMIG_EIO };

			snprintf(ab.reason, sizeof(ab.reason), "cannot resume the VM here");
			if (smig_msg_put_mig_abort(&tx, &ab) < 0 || send_buf(c, &tx) < 0)
				break;
			fprintf(stderr, "smig-fakepeer: answered COMMIT with ABORT\n");
		} else if (f.type == SMIG_MSG_MIG_QUERY && o->after_commit) {
			sleep(3);
			if (smig_msg_get_mig_id(&f, SMIG_MSG_MIG_QUERY, &id) < 0 ||
			    smig_msg_put_mig_outcome(&tx, &id, SMIG_OUTCOME_DISCARDED) < 0 ||
			    send_buf(c, &tx) < 0)
				break;
			fprintf(stderr, "smig-fakepeer: answered QUERY with DISCARDED\n");
			rc = 1;
			break;
		} else if (f.type == SMIG_MSG_MIG_PREPARE) {
			/* READY before the stream: out of the protocol's order */
			if (smig_msg_get_mig_prepare(&f, &mp) < 0 || smig_mig_id_new(&id) < 0 ||
			    smig_msg_put_mig_ready(&tx, &id, SMIG_PROT_ALL) < 0 ||
			    send_buf(c, &tx) < 0)
				break;
			prepared = true;
		} else if ((f.type == SMIG_MSG_MIG_ABORT || f.type == SMIG_MSG_ERROR ||
			    f.type == SMIG_MSG_BYE) &&
			   !o->after_commit) {
			rc = prepared; /* a source that saw through it, or a mere neighbour */
			break;
		}
	}
	free(ev);
	smig_buf_clear(&tx);
	smig_buf_clear(&rx);
	return rc;
}

/* One connection as o->name through TLS; its fd, or -1. */
static int connect_tls(const struct opts *o, struct smig_tls_ctx *ctx, struct smig_tls_conn **c)
{
	int fd = dial(o->to);

	if (fd < 0)
		return -1;
	if (smig_tls_conn_new(ctx, fd, false, c) < 0) {
		close(fd);
		return -1;
	}
	if (smig_tls_handshake(*c) < 0) {
		smig_tls_conn_free(*c);
		close(fd);
		return -1;
	}
	return fd;
}

/* HELLO out; 0 once the target's HELLO came back. */
static int hello(const struct opts *o, int fd, struct smig_tls_conn *c, struct smig_buf *rx)
{
	struct smig_hello h = { 0 };
	struct smig_buf tx;
	struct smig_frame f;
	int rc = -1;

	smig_buf_init(&tx, 1 << 16);
	snprintf(h.host, sizeof(h.host), "%s", o->name);
	snprintf(h.version, sizeof(h.version), "fake");
	if (smig_msg_put_hello(&tx, &h) == 0 && send_buf(c, &tx) == 0)
		while (next_frame(fd, c, rx, &f) == 0)
			if (f.type == SMIG_MSG_HELLO) {
				rc = 0;
				break;
			}
	smig_buf_clear(&tx);
	return rc;
}

static long count_arg(const char *s, long max)
{
	char *end;
	long n = s ? strtol(s, &end, 10) : -1;

	return s && *s && *end == '\0' && n >= 1 && n <= max ? n : -1;
}

/* Holds as many connections as the target lets HOST have. */
static int hold(const struct opts *o, struct smig_tls_ctx *ctx)
{
	long n = count_arg(o->count, 1000), secs = o->hold_s ? count_arg(o->hold_s, 3600) : 10;
	struct smig_tls_conn **cs;
	int *fds;
	long held = 0;

	if (n < 0 || secs < 0)
		return usage();
	cs = calloc((size_t)n, sizeof(struct smig_tls_conn *));
	fds = calloc((size_t)n, sizeof(*fds));
	if (cs == NULL || fds == NULL) {
		free(cs);
		free(fds);
		return 1;
	}
	for (long i = 0; i < n; i++) {
		struct smig_buf rx;

		smig_buf_init(&rx, 1 << 16);
		fds[i] = connect_tls(o, ctx, &cs[i]);
		if (fds[i] >= 0 && hello(o, fds[i], cs[i], &rx) == 0)
			held++;
		smig_buf_clear(&rx);
	}
	printf("held %ld of %ld\n", held, n);
	fflush(stdout);
	sleep((unsigned)secs);
	for (long i = 0; i < n; i++) {
		if (fds[i] < 0)
			continue;
		smig_tls_conn_free(cs[i]);
		close(fds[i]);
	}
	free(cs);
	free(fds);
	return 0;
}

/* Asks for evidence count times in one session; counts the answers. */
static int attest_flood(const struct opts *o, struct smig_tls_ctx *ctx)
{
	long n = count_arg(o->count, 100000), answered = 0;
	uint8_t nonce[SMIG_ATTEST_NONCE_LEN];
	struct smig_tls_conn *c;
	struct smig_buf tx, rx;
	struct smig_frame f;
	int fd;

	if (n < 0)
		return usage();
	fd = connect_tls(o, ctx, &c);
	if (fd < 0) {
		fprintf(stderr, "smig-fakepeer: cannot reach %s\n", o->to);
		return 1;
	}
	smig_buf_init(&tx, 1 << 24);
	smig_buf_init(&rx, 1 << 21);
	if (hello(o, fd, c, &rx) == 0) {
		for (long i = 0; i < n; i++) {
			(void)RAND_bytes(nonce, sizeof(nonce));
			if (smig_msg_put_attest_req(&tx, nonce) < 0)
				break;
		}
		if (send_buf(c, &tx) == 0)
			while (next_frame(fd, c, &rx, &f) == 0)
				answered += f.type == SMIG_MSG_ATTEST;
	}
	printf("answered %ld of %ld\n", answered, n);
	smig_buf_clear(&tx);
	smig_buf_clear(&rx);
	smig_tls_conn_free(c);
	close(fd);
	return 0;
}

/* Asks for evidence in count sessions, each closed without waiting for it. */
static int quote_flood(const struct opts *o, struct smig_tls_ctx *ctx)
{
	long n = count_arg(o->count, 10000), sent = 0;
	uint8_t nonce[SMIG_ATTEST_NONCE_LEN];

	if (n < 0)
		return usage();
	for (long i = 0; i < n; i++) {
		struct smig_tls_conn *c = NULL;
		struct smig_buf tx, rx;
		int fd = connect_tls(o, ctx, &c);

		if (fd < 0)
			continue;
		smig_buf_init(&tx, 1 << 12);
		smig_buf_init(&rx, 1 << 16);
		(void)RAND_bytes(nonce, sizeof(nonce));
		if (hello(o, fd, c, &rx) == 0 && smig_msg_put_attest_req(&tx, nonce) == 0 &&
		    send_buf(c, &tx) == 0)
			sent++;
		smig_buf_clear(&tx);
		smig_buf_clear(&rx);
		smig_tls_conn_free(c);
		close(fd);
	}
	printf("sent %ld of %ld\n", sent, n);
	return 0;
}

static int serve(const struct opts *o)
{
	char addr[SMIG_ADDR_MAX], err[512];
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct smig_tls_ctx *ctx;
	struct smig_tls_conn *c;
	uint16_t port;
	int one = 1, lfd, fd, rc = 1;

	if (smig_addr_parse(o->listen, addr, sizeof(addr), &port) < 0 ||
	    inet_pton(AF_INET, addr, &sa.sin_addr) != 1 ||
	    smig_tls_ctx_new(&ctx, o->ca, o->cert, o->key, err, sizeof(err)) < 0)
		return usage();
	sa.sin_port = htons(port);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	(void)setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4) < 0) {
		fprintf(stderr, "smig-fakepeer: cannot listen on %s\n", o->listen);
		return 1;
	}
	/* neighbours come and go; stop once a migration was tried and given up */
	while (rc != 0 && (fd = accept(lfd, NULL, NULL)) >= 0) {
		if (smig_tls_conn_new(ctx, fd, true, &c) == 0) {
			if (smig_tls_handshake(c) == 0 && serve_conn(o, fd, c) == 1)
				rc = 0;
			smig_tls_close(c);
			smig_tls_conn_free(c);
		}
		close(fd);
	}
	close(lfd);
	smig_tls_ctx_free(ctx);
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	struct smig_tls_ctx *ctx;
	struct smig_tls_conn *c;
	char err[512];
	int fd, rc;

	if (argc < 2)
		return usage();
	/* a target that closes on us is an answer, not a reason to die */
	signal(SIGPIPE, SIG_IGN);
	o.mode = argv[1];
	for (int i = 2; i + 1 < argc; i += 2) {
		const char **slot = strcmp(argv[i], "--ca") == 0	 ? &o.ca
				    : strcmp(argv[i], "--cert") == 0	 ? &o.cert
				    : strcmp(argv[i], "--key") == 0	 ? &o.key
				    : strcmp(argv[i], "--name") == 0	 ? &o.name
				    : strcmp(argv[i], "--to") == 0	 ? &o.to
				    : strcmp(argv[i], "--evidence") == 0 ? &o.evidence
				    : strcmp(argv[i], "--rebind") == 0	 ? &o.rebind
				    : strcmp(argv[i], "--resign") == 0	 ? &o.resign
				    : strcmp(argv[i], "--listen") == 0	 ? &o.listen
				    : strcmp(argv[i], "--ivt") == 0	 ? &o.ivt
				    : strcmp(argv[i], "--spec") == 0	 ? &o.spec
				    : strcmp(argv[i], "--vtpm") == 0	 ? &o.vtpm
				    : strcmp(argv[i], "--after-commit") == 0 ? &o.after_commit
				    : strcmp(argv[i], "--count") == 0	 ? &o.count
				    : strcmp(argv[i], "--free-mib") == 0 ? &o.free_mib
				    : strcmp(argv[i], "--verdict") == 0	 ? &o.verdict
				    : strcmp(argv[i], "--hold-s") == 0	 ? &o.hold_s
				    : strcmp(argv[i], "--ids") == 0	 ? &o.ids
									 : NULL;
		if (slot == NULL)
			return usage();
		*slot = argv[i + 1];
	}
	if (strcmp(o.mode, "serve") == 0)
		return o.ca && o.cert && o.key && o.name && o.listen && o.ivt ? serve(&o) : usage();
	if ((strcmp(o.mode, "hold") == 0 || strcmp(o.mode, "attest-flood") == 0 ||
	     strcmp(o.mode, "quote-flood") == 0) && o.ca &&
	    o.cert && o.key && o.name && o.to) {
		if (smig_tls_ctx_new(&ctx, o.ca, o.cert, o.key, err, sizeof(err)) < 0) {
			fprintf(stderr, "smig-fakepeer: %s\n", err);
			return 1;
		}
		rc = strcmp(o.mode, "hold") == 0	  ? hold(&o, ctx)
		     : strcmp(o.mode, "quote-flood") == 0 ? quote_flood(&o, ctx)
							  : attest_flood(&o, ctx);
		smig_tls_ctx_free(ctx);
		return rc;
	}
	if (!o.ca || !o.cert || !o.key || !o.name || !o.to ||
	    (strcmp(o.mode, "capture") != 0 && (strcmp(o.mode, "present") != 0 || !o.evidence) &&
	     strcmp(o.mode, "reserve") != 0 && (strcmp(o.mode, "prepare") != 0 || !o.ivt || !o.spec)))
		return usage();
	if (smig_tls_ctx_new(&ctx, o.ca, o.cert, o.key, err, sizeof(err)) < 0) {
		fprintf(stderr, "smig-fakepeer: %s\n", err);
		return 1;
	}
	fd = dial(o.to);
	if (fd < 0 || smig_tls_conn_new(ctx, fd, false, &c) < 0 || smig_tls_handshake(c) < 0) {
		fprintf(stderr, "smig-fakepeer: cannot reach %s\n", o.to);
		return 1;
	}
	rc = strcmp(o.mode, "prepare") == 0   ? prepare(&o, fd, c)
	     : strcmp(o.mode, "reserve") == 0 ? reserve(&o, fd, c)
	     : run(&o, fd, c) == 0	      ? 0
						      : 1;
	smig_tls_close(c);
	smig_tls_conn_free(c);
	close(fd);
	smig_tls_ctx_free(ctx);
	return rc;
}
