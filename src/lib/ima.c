/*
 * ima.c - the IMA measurement list in its binary and ASCII forms (see
 * ima.h), its replay into PCR 10, and a builder for tests.
 *
 * Both forms come down to the same fields (struct fields). The binary
 * form carries the template data the kernel hashed; the ASCII form has
 * only the fields, so for it the template data is rebuilt (tdata()) in
 * the layout the kernel hashes, and its template digest is checked and
 * its extend value computed from that. Whichever form a host sends, the
 * entries and PCR 10 come out the same.
 */
#include "ima.h"
#include "buf.h"
#include "error.h"
#include "eventlog.h"
#include "le.h"
#include "sign.h"

#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TMPL_NAME_MAX 255 /* the kernel's limit on template names */
#define IMA_NAME_MAX 255  /* the ima template cuts names to this */
#define IMA_NAME_PAD 256  /* and hashes them padded to this */
#define SIG_MAX 4096
/* PCR, template digest, name, file digest, path, signature, the spaces */
#define LINE_MAX_LEN                                                                         \
	(2 + 40 + TMPL_NAME_MAX + 16 + 2 * SMIG_IMA_DIGEST_MAX + SMIG_IMA_PATH_MAX +         \
	 2 * SIG_MAX + 8)

enum tmpl { T_IMA, T_NG, T_SIG };
static const char *const tmpl_names[] = { "ima", "ima-ng", "ima-sig" };

/* One entry's fields, as either form gives them. */
struct fields {
	enum tmpl t;
	char algo[16];
	const uint8_t *digest;
	size_t dlen;
	const char *path; /* not NUL-terminated in the binary form */
	size_t plen;	  /* without a NUL */
	const uint8_t *sig;
	size_t siglen;
};

struct iparse {
	struct smig_ima *out;
	size_t cap;	 /* entries allocated */
	size_t used;	 /* bytes of out->paths taken */
	size_t pathcap;	 /* bytes of out->paths */
	size_t entry;	 /* 1-based */
	size_t where;	 /* byte offset (binary) or line (ASCII) */
	bool ascii;
	struct smig_buf td; /* a rebuilt template data */
	uint8_t dbuf[SMIG_IMA_DIGEST_MAX];
	uint8_t sigbuf[SIG_MAX];
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 3, 4)))
static int bad(struct iparse *p, int code, const char *fmt, ...)
{
	char msg[192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->ascii)
		snprintf(p->err, p->errlen, "IMA list: entry %zu (line %zu): %s", p->entry,
			 p->where, msg);
	else
		snprintf(p->err, p->errlen, "IMA list: entry %zu at byte %zu: %s", p->entry,
			 p->where, msg);
	return code;
}

static int need(struct iparse *p, int rc, const char *what)
{
	return rc < 0 ? bad(p, SMIG_ESHORT, "the list ends inside %s", what) : 0;
}

/* A get from inside the template data: its declared length was wrong. */
static int need_td(struct iparse *p, int rc, const char *what)
{
	return rc < 0 ? bad(p, SMIG_EPROTO, "its template data ends inside %s", what) : 0;
}

static int template_of(struct iparse *p, const char *name, size_t len, enum tmpl *t)
{
	for (size_t i = 0; i < ARRAY_LEN(tmpl_names); i++) {
		if (strlen(tmpl_names[i]) == len && memcmp(tmpl_names[i], name, len) == 0) {
			*t = (enum tmpl)i;
			return 0;
		}
	}
	for (size_t i = 0; i < len; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789-_", name[i]) || name[i] == '\0')
			return bad(p, SMIG_EPROTO, "a template name that is not one");
	return bad(p, SMIG_EPROTO, "template %.*s is not read (ima-ng, ima-sig, ima)",
		   (int)(len > 32 ? 32 : len), name);
}

/* Digest sizes of the kernel's hash names; an unknown name may have any. */
static size_t algo_size(const char *algo)
{
	static const struct {
		const char *name;
		size_t size;
	} known[] = {
		{ "md5", 16 },	    { "sha1", 20 },	{ "sha224", 28 },   { "sha256", 32 },
		{ "sha384", 48 },   { "sha512", 64 },	{ "sm3", 32 },	    { "sha3-256", 32 },
		{ "sha3-384", 48 }, { "sha3-512", 64 }, { "streebog256", 32 },
		{ "streebog512", 64 },
	};

	for (size_t i = 0; i < ARRAY_LEN(known); i++)
		if (strcmp(known[i].name, algo) == 0)
			return known[i].size;
	return 0;
}

/* x->algo and x->digest: a name of [a-z0-9-] and a digest of its size. */
static int check_digest(struct iparse *p, const struct fields *x)
{
	size_t want = algo_size(x->algo);

	if (x->algo[0] == '\0' || strspn(x->algo, "abcdefghijklmnopqrstuvwxyz0123456789-") !=
					  strlen(x->algo))
		return bad(p, SMIG_EPROTO, "its file digest's algorithm is not a hash name");
	if (x->dlen == 0 || x->dlen > SMIG_IMA_DIGEST_MAX || (want && x->dlen != want))
		return bad(p, SMIG_EPROTO, "a %s file digest of %zu bytes", x->algo, x->dlen);
	return 0;
}

/* x->path: a name without NUL bytes, short enough for its template. */
static int check_path(struct iparse *p, const struct fields *x)
{
	size_t max = x->t == T_IMA ? IMA_NAME_MAX : SMIG_IMA_PATH_MAX - 1;

	if (x->plen == 0 || x->plen > max || memchr(x->path, '\0', x->plen) != NULL)
		return bad(p, SMIG_EPROTO, "its file name is empty, longer than %zu bytes or holds "
			   "a NUL", max);
	return 0;
}

/*
 * The template data the kernel hashes, into b: for ima-ng and ima-sig
 * each field with a u32 length before it, for ima the file digest and
 * the name padded with zeros to 256 bytes.
 */
static int tdata(const struct fields *x, struct smig_buf *b)
{
	static const uint8_t zeros[IMA_NAME_PAD];
	size_t alen = strlen(x->algo);

	smig_buf_reset(b);
	if (x->t == T_IMA) {
		SMIG_GUARD(smig_buf_put_bytes(b, x->digest, x->dlen));
		SMIG_GUARD(smig_buf_put_bytes(b, x->path, x->plen));
		return smig_buf_put_bytes(b, zeros, IMA_NAME_PAD - x->plen);
	}
	SMIG_GUARD(smig_buf_put_le32(b, (uint32_t)(alen + 2 + x->dlen)));
	SMIG_GUARD(smig_buf_put_bytes(b, x->algo, alen));
	SMIG_GUARD(smig_buf_put_bytes(b, ":", 2)); /* the colon and a NUL */
	SMIG_GUARD(smig_buf_put_bytes(b, x->digest, x->dlen));
	SMIG_GUARD(smig_buf_put_le32(b, (uint32_t)(x->plen + 1)));
	SMIG_GUARD(smig_buf_put_bytes(b, x->path, x->plen));
	SMIG_GUARD(smig_buf_put_u8(b, 0));
	if (x->t == T_SIG) {
		SMIG_GUARD(smig_buf_put_le32(b, (uint32_t)x->siglen));
		SMIG_GUARD(smig_buf_put_bytes(b, x->sig, x->siglen));
	}
	return 0;
}

static int grow(struct iparse *p)
{
	struct smig_ima_entry *nv;
	size_t ncap;

	if (p->out->n == SMIG_IMA_ENTRIES_MAX)
		return bad(p, SMIG_ETOOBIG, "more than %d entries", SMIG_IMA_ENTRIES_MAX);
	if (p->out->n < p->cap)
		return 0;
	ncap = p->cap ? p->cap * 2 : 256;
	if (ncap > SMIG_IMA_ENTRIES_MAX)
		ncap = SMIG_IMA_ENTRIES_MAX;
	nv = realloc(p->out->e, ncap * sizeof(*nv));
	if (nv == NULL)
		return bad(p, SMIG_ENOMEM, "out of memory");
	p->out->e = nv;
	p->cap = ncap;
	return 0;
}

/*
 * Appends the entry of x. data (len bytes) is the template data the
 * kernel hashed: its SHA-1 must be tdigest unless that is all zeros, the
 * mark of a violation, which extends 0xff bytes instead.
 */
static int add_entry(struct iparse *p, uint32_t pcr, const uint8_t tdigest[20],
		     const struct fields *x, const uint8_t *data, size_t len)
{
	static const uint8_t zero[20];
	struct smig_ima_entry *e;
	uint8_t sha1[20];

	if (pcr >= SMIG_EVLOG_PCRS)
		return bad(p, SMIG_EPROTO, "PCR %u (0 to 23)", pcr);
	SMIG_GUARD(check_digest(p, x));
	SMIG_GUARD(check_path(p, x));
	if (x->plen + 1 > p->pathcap - p->used) /* the list holds every name with a byte more */
		return bad(p, SMIG_EPROTO, "file names longer than the list");
	SMIG_GUARD(grow(p));
	e = &p->out->e[p->out->n];
	memset(e, 0, sizeof(*e));
	e->violation = memcmp(tdigest, zero, sizeof(zero)) == 0;
	if (e->violation) {
		memset(e->extend, 0xff, sizeof(e->extend));
	} else {
		SHA1(data, len, sha1);
		if (memcmp(sha1, tdigest, sizeof(sha1)) != 0)
			return bad(p, SMIG_EPROTO, "its template digest is not the SHA-1 of its "
				   "template data");
		SHA256(data, len, e->extend);
	}
	e->pcr = pcr;
	snprintf(e->tmpl, sizeof(e->tmpl), "%s", tmpl_names[x->t]);
	snprintf(e->algo, sizeof(e->algo), "%s", x->algo);
	memcpy(e->digest, x->digest, x->dlen);
	e->digest_len = x->dlen;
	memcpy(p->out->paths + p->used, x->path, x->plen);
	p->out->paths[p->used + x->plen] = '\0';
	e->path = p->out->paths + p->used;
	p->used += x->plen + 1;
	p->out->n++;
	return 0;
}

/* ima-ng's "ALGO:\0" and digest, from the binary form. */
static int digest_field(struct iparse *p, const uint8_t *f, size_t len, struct fields *x)
{
	const uint8_t *colon = memchr(f, ':', len);
	size_t k = colon ? (size_t)(colon - f) : len;

	if (k == 0 || k >= sizeof(x->algo) || k + 2 > len || f[k + 1] != '\0' ||
	    memchr(f, '\0', k) != NULL)
		return bad(p, SMIG_EPROTO, "its file digest is not ALGO, a colon, a NUL and a digest");
	memcpy(x->algo, f, k);
	x->algo[k] = '\0';
	x->digest = f + k + 2;
	x->dlen = len - k - 2;
	return 0;
}

/* The fields of ima-ng and ima-sig template data d, each with its u32 length. */
static int bin_fields(struct iparse *p, struct smig_buf *d, struct fields *x)
{
	const uint8_t *f = NULL;
	uint32_t n = 0;

	SMIG_GUARD(need_td(p, smig_buf_get_le32(d, &n), "its file digest"));
	SMIG_GUARD(need_td(p, smig_buf_get_ptr(d, &f, n), "its file digest"));
	SMIG_GUARD(digest_field(p, f, n, x));
	SMIG_GUARD(need_td(p, smig_buf_get_le32(d, &n), "its file name"));
	SMIG_GUARD(need_td(p, smig_buf_get_ptr(d, &f, n), "its file name"));
	if (n < 2 || f[n - 1] != '\0')
		return bad(p, SMIG_EPROTO, "its file name is empty or lacks its NUL");
	x->path = (const char *)f;
	x->plen = n - 1;
	if (x->t == T_SIG) {
		SMIG_GUARD(need_td(p, smig_buf_get_le32(d, &n), "its signature"));
		if (n > SIG_MAX)
			return bad(p, SMIG_EPROTO, "a signature of %u bytes (at most %d)", n,
				   SIG_MAX);
		SMIG_GUARD(need_td(p, smig_buf_get_ptr(d, &x->sig, n), "its signature"));
		x->siglen = n;
	}
	if (smig_buf_expect_end(d) < 0)
		return bad(p, SMIG_EPROTO, "%zu bytes after its template's fields",
			   smig_buf_remaining(d));
	return 0;
}

/* The rest of an ima template entry: no data length, the name without its NUL. */
static int bin_ima(struct iparse *p, struct smig_buf *b, uint32_t pcr, const uint8_t *tdigest,
		   struct fields *x)
{
	uint32_t n = 0;
	const uint8_t *name = NULL;

	snprintf(x->algo, sizeof(x->algo), "sha1");
	x->dlen = 20;
	SMIG_GUARD(need(p, smig_buf_get_ptr(b, &x->digest, x->dlen), "its file digest"));
	SMIG_GUARD(need(p, smig_buf_get_le32(b, &n), "its file name"));
	if (n > IMA_NAME_MAX)
		return bad(p, SMIG_EPROTO, "a file name of %u bytes (the ima template has at most %d)",
			   n, IMA_NAME_MAX);
	SMIG_GUARD(need(p, smig_buf_get_ptr(b, &name, n), "its file name"));
	x->path = (const char *)name;
	x->plen = n;
	SMIG_GUARD(check_path(p, x));
	if (tdata(x, &p->td) < 0)
		return bad(p, SMIG_ENOMEM, "out of memory");
	return add_entry(p, pcr, tdigest, x, p->td.data, p->td.len);
}

static int bin_entry(struct iparse *p, struct smig_buf *b)
{
	uint32_t pcr = 0, n = 0;
	const uint8_t *tdigest = NULL, *name = NULL, *data = NULL;
	struct fields x;
	struct smig_buf d;

	memset(&x, 0, sizeof(x));
	SMIG_GUARD(need(p, smig_buf_get_le32(b, &pcr), "its PCR"));
	SMIG_GUARD(need(p, smig_buf_get_ptr(b, &tdigest, 20), "its template digest"));
	SMIG_GUARD(need(p, smig_buf_get_le32(b, &n), "its template name"));
	if (n == 0 || n > TMPL_NAME_MAX)
		return bad(p, SMIG_EPROTO, "a template name of %u bytes", n);
	SMIG_GUARD(need(p, smig_buf_get_ptr(b, &name, n), "its template name"));
	SMIG_GUARD(template_of(p, (const char *)name, n, &x.t));
	if (x.t == T_IMA)
		return bin_ima(p, b, pcr, tdigest, &x);
	SMIG_GUARD(need(p, smig_buf_get_le32(b, &n), "its template data length"));
	if (n > smig_buf_remaining(b))
		return bad(p, SMIG_ESHORT, "its template data length is %u, the list has %zu bytes "
			   "left", n, smig_buf_remaining(b));
	SMIG_GUARD(need(p, smig_buf_get_ptr(b, &data, n), "its template data"));
	smig_buf_view(&d, data, n);
	SMIG_GUARD(bin_fields(p, &d, &x));
	return add_entry(p, pcr, tdigest, &x, data, n);
}

static int bin_list(struct iparse *p, const uint8_t *buf, size_t len)
{
	struct smig_buf b;

	smig_buf_view(&b, buf, len);
	while (smig_buf_remaining(&b) > 0) {
		p->entry++;
		p->where = b.off;
		SMIG_GUARD(bin_entry(p, &b));
	}
	return 0;
}

/* s: hex digits for at most max bytes, into out; *n gets their count. */
static int unhex_field(struct iparse *p, const char *s, uint8_t *out, size_t max, size_t *n,
		       const char *what)
{
	size_t len = strlen(s);

	if (len % 2 != 0 || len / 2 > max || smig_unhex(s, out, len / 2) < 0)
		return bad(p, SMIG_EPROTO, "its %s is not hex digits for at most %zu bytes", what,
			   max);
	*n = len / 2;
	return 0;
}

/* The PCR as the kernel prints it: "%2d", so one digit comes after a space. */
static int ascii_pcr(struct iparse *p, const char *s, bool spaced, uint32_t *pcr)
{
	size_t len = strlen(s);

	if (len == 0 || len > 2 || strspn(s, "0123456789") != len || (len == 2 && s[0] == '0') ||
	    spaced != (len == 1))
		return bad(p, SMIG_EPROTO, "its PCR is not printed as the kernel prints it (%%2d)");
	*pcr = (uint32_t)strtoul(s, NULL, 10);
	return 0;
}

/* ima-ng's "ALGO:HEX", from the ASCII form. */
static int ascii_digest(struct iparse *p, char *s, struct fields *x)
{
	char *colon = strchr(s, ':');

	if (colon == NULL || colon == s || (size_t)(colon - s) >= sizeof(x->algo))
		return bad(p, SMIG_EPROTO, "its file digest is not ALGO:HEX");
	*colon = '\0';
	snprintf(x->algo, sizeof(x->algo), "%s", s);
	x->digest = p->dbuf;
	return unhex_field(p, colon + 1, p->dbuf, sizeof(p->dbuf), &x->dlen, "file digest");
}

/* One line, NUL-terminated, its fields split on single spaces. */
static int ascii_entry(struct iparse *p, char *line)
{
	char *tok[6];
	size_t ntok = 0, want;
	bool spaced = line[0] == ' ';
	uint32_t pcr = 0;
	uint8_t tdigest[20] = { 0 };
	size_t n = 0;
	struct fields x;

	memset(&x, 0, sizeof(x));
	for (char *s = line + spaced; s; ntok++) {
		if (ntok == ARRAY_LEN(tok))
			return bad(p, SMIG_EPROTO, "more than 6 fields");
		tok[ntok] = s;
		s = strchr(s, ' ');
		if (s)
			*s++ = '\0';
	}
	if (ntok < 5)
		return bad(p, SMIG_EPROTO, "%zu fields (5, or 6 for ima-sig)", ntok);
	SMIG_GUARD(ascii_pcr(p, tok[0], spaced, &pcr));
	SMIG_GUARD(unhex_field(p, tok[1], tdigest, sizeof(tdigest), &n, "template digest"));
	if (n != sizeof(tdigest))
		return bad(p, SMIG_EPROTO, "its template digest is not 40 hex digits");
	SMIG_GUARD(template_of(p, tok[2], strlen(tok[2]), &x.t));
	want = x.t == T_SIG ? 6 : 5;
	if (ntok != want)
		return bad(p, SMIG_EPROTO, "%zu fields; %s has %zu (a space in a file name?)", ntok,
			   tmpl_names[x.t], want);
	if (x.t == T_IMA) {
		snprintf(x.algo, sizeof(x.algo), "sha1");
		x.digest = p->dbuf;
		SMIG_GUARD(unhex_field(p, tok[3], p->dbuf, 20, &x.dlen, "file digest"));
	} else {
		SMIG_GUARD(ascii_digest(p, tok[3], &x));
	}
	x.path = tok[4];
	x.plen = strlen(tok[4]);
	if (x.t == T_SIG) {
		x.sig = p->sigbuf;
		SMIG_GUARD(unhex_field(p, tok[5], p->sigbuf, sizeof(p->sigbuf), &x.siglen,
				       "signature"));
	}
	SMIG_GUARD(check_digest(p, &x));
	SMIG_GUARD(check_path(p, &x));
	if (tdata(&x, &p->td) < 0)
		return bad(p, SMIG_ENOMEM, "out of memory");
	return add_entry(p, pcr, tdigest, &x, p->td.data, p->td.len);
}

static int ascii_list(struct iparse *p, const uint8_t *buf, size_t len)
{
	char *line = malloc(LINE_MAX_LEN + 1);
	size_t off = 0;
	int rc = 0;

	if (line == NULL)
		return bad(p, SMIG_ENOMEM, "out of memory");
	while (rc == 0 && off < len) {
		const uint8_t *nl = memchr(buf + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (buf + off)) : len - off;

		p->entry++;
		p->where = p->entry;
		if (n > LINE_MAX_LEN)
			rc = bad(p, SMIG_ETOOBIG, "a line longer than %d bytes", LINE_MAX_LEN);
		else if (nl == NULL)
			rc = bad(p, SMIG_ESHORT, "the list ends inside the line (no newline)");
		else if (memchr(buf + off, '\0', n) != NULL)
			rc = bad(p, SMIG_EPROTO, "a NUL byte");
		if (rc < 0)
			break;
		memcpy(line, buf + off, n);
		line[n] = '\0';
		rc = ascii_entry(p, line);
		off += n + 1;
	}
	free(line);
	return rc;
}

int smig_ima_parse(const uint8_t *buf, size_t len, bool ascii, struct smig_ima *out, char *err,
		   size_t errlen)
{
	struct iparse *p;
	int rc;

	memset(out, 0, sizeof(*out));
	if (len > SMIG_IMA_MAX) {
		snprintf(err, errlen, "IMA list: %zu bytes, more than %zu", len, SMIG_IMA_MAX);
		return SMIG_ETOOBIG;
	}
	p = calloc(1, sizeof(*p));
	/* every name stands in the list with at least one byte more: its NUL or a separator */
	out->paths = malloc(len + 1);
	if (p == NULL || out->paths == NULL) {
		free(p);
		free(out->paths);
		out->paths = NULL;
		snprintf(err, errlen, "IMA list: out of memory");
		return SMIG_ENOMEM;
	}
	p->out = out;
	p->pathcap = len + 1;
	p->ascii = ascii;
	p->err = err;
	p->errlen = errlen;
	smig_buf_init(&p->td, IMA_NAME_PAD + 3 * 4 + 16 + SMIG_IMA_DIGEST_MAX + SMIG_IMA_PATH_MAX +
				      SIG_MAX);
	rc = ascii ? ascii_list(p, buf, len) : bin_list(p, buf, len);
	smig_buf_clear(&p->td);
	free(p);
	if (rc < 0)
		smig_ima_free(out);
	return rc;
}

void smig_ima_free(struct smig_ima *l)
{
	free(l->e);
	free(l->paths);
	memset(l, 0, sizeof(*l));
}

void smig_ima_replay(const struct smig_ima *l, size_t from, size_t n, const uint8_t start[32],
		     uint8_t out[32])
{
	uint8_t pcr[32];

	memcpy(pcr, start, sizeof(pcr));
	if (n > l->n)
		n = l->n;
	for (size_t i = from; i < n; i++)
		if (l->e[i].pcr == SMIG_IMA_PCR)
			smig_pcr_extend(pcr, l->e[i].extend);
	memcpy(out, pcr, sizeof(pcr));
}

/* One binary ima-ng entry in PCR 10 for path and its SHA-256 digest. */
static int put_ng(struct smig_buf *b, struct smig_buf *td, const char *path,
		  const uint8_t digest[32])
{
	struct fields x = { .t = T_NG, .algo = "sha256", .digest = digest, .dlen = 32,
			    .path = path, .plen = strlen(path) };
	uint8_t sha1[20];

	SMIG_GUARD(tdata(&x, td));
	SHA1(td->data, td->len, sha1);
	SMIG_GUARD(smig_buf_put_le32(b, SMIG_IMA_PCR));
	SMIG_GUARD(smig_buf_put_bytes(b, sha1, sizeof(sha1)));
	SMIG_GUARD(smig_buf_put_le32(b, (uint32_t)strlen(tmpl_names[T_NG])));
	SMIG_GUARD(smig_buf_put_bytes(b, tmpl_names[T_NG], strlen(tmpl_names[T_NG])));
	SMIG_GUARD(smig_buf_put_le32(b, (uint32_t)td->len));
	return smig_buf_put_bytes(b, td->data, td->len);
}

int smig_ima_build(const char *const *paths, const uint8_t (*digests)[32], size_t n,
		   const uint8_t aggregate[32], uint8_t **out, size_t *outlen)
{
	struct smig_buf b, td;
	int rc;

	*out = NULL;
	*outlen = 0;
	SMIG_ENSURE(n < SMIG_IMA_ENTRIES_MAX, SMIG_ETOOBIG);
	for (size_t i = 0; i < n; i++)
		SMIG_ENSURE(paths[i][0] == '/' && strlen(paths[i]) < SMIG_IMA_PATH_MAX &&
				    strchr(paths[i], ' ') == NULL,
			    SMIG_EINVAL);
	smig_buf_init(&b, SMIG_IMA_MAX);
	smig_buf_init(&td, 3 * 4 + 16 + SMIG_IMA_DIGEST_MAX + SMIG_IMA_PATH_MAX);
	rc = put_ng(&b, &td, "boot_aggregate", aggregate);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = put_ng(&b, &td, paths[i], digests[i]);
	smig_buf_clear(&td);
	if (rc < 0) {
		smig_buf_clear(&b);
		return rc;
	}
	*out = b.data; /* the caller owns the buffer's memory from here */
	*outlen = b.len;
	return 0;
}
