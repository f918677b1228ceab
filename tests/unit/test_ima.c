/*
 * test_ima.c - the IMA measurement list and allowlists: an ima-ng entry
 * written out here byte by byte parses with the template and extend
 * digests computed outside smig; the ASCII and binary forms of one list
 * (ima-ng, ima-sig with and without a signature, a violation, another
 * PCR, the original ima template) parse to the same entries and the same
 * PCR 10; violations extend 0xff; every cut of a list fails cleanly or is
 * a shorter list; malformed entries are refused naming the entry. The
 * allowlist accepts what it lists, names an unknown file, a wrong digest,
 * another algorithm or a violation (excluded or not), passes excluded paths, and its parser
 * is strict.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "error.h"
#include "ima.h"
#include "sign.h"

#define LE32(x)                                                                              \
	(uint8_t)((x) & 0xff), (uint8_t)(((x) >> 8) & 0xff), (uint8_t)(((x) >> 16) & 0xff),  \
		(uint8_t)(((x) >> 24) & 0xff)

/* An ima-ng entry in PCR 10 for /usr/bin/true (the empty file), as the kernel writes it. */
static const uint8_t real_entry[] = {
	LE32(10),
	/* the template digest: SHA-1 of the 62 bytes of template data below */
	0xc2, 0xa8, 0x6c, 0x2d, 0x5d, 0x68, 0x76, 0x7d, 0x97, 0xb7, 0x64, 0x1c, 0x8c, 0xc7,
	0x3d, 0xff, 0x5f, 0x45, 0xbd, 0x76,
	LE32(6), 'i', 'm', 'a', '-', 'n', 'g',
	LE32(62),
	LE32(40), 's', 'h', 'a', '2', '5', '6', ':', 0,
	0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f,
	0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b,
	0x78, 0x52, 0xb8, 0x55,
	LE32(14), '/', 'u', 's', 'r', '/', 'b', 'i', 'n', '/', 't', 'r', 'u', 'e', 0,
};
/* SHA-256 of that template data: what the sha256 bank is extended with */
#define REAL_EXTEND "63a6f4911f3be978c7aa27b18edb32db3b35132be46da5511e72ba821e0fb0cc"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/*
 * A list in the ASCII form: boot_aggregate, an ima-ng file, ima-sig with
 * and without a signature (the line then ends in a space), a violation,
 * and an entry in PCR 9 (printed " 9"), with the PCR 10 it leads to.
 */
static const char ascii_list[] =
	"10 f03024c5d9e874ec2e90b3e23373990a1faa9974 ima-ng sha256:000102030405060708090a0b0c0"
	"d0e0f101112131415161718191a1b1c1d1e1f boot_aggregate\n"
	"10 c2a86c2d5d68767d97b7641c8cc73dff5f45bd76 ima-ng sha256:" EMPTY_SHA256 " /usr/bin/true\n"
	"10 48faeed3b3850ee7b299ecaa98a51acfb5200867 ima-sig sha256:2d711642b726b04401627ca9fbac3"
	"2f5c8530fb1903cc4db02258717921a4881 /usr/sbin/smigd 0302112233\n"
	"10 795060ec3175f7388b7a7f272fb8c33ef01cf234 ima-sig sha256:a1fce4363854ff888cff4b8e7875d"
	"600c2682390412a8cf79b37d0b11148b0fa /usr/lib/libc.so.6 \n"
	"10 0000000000000000000000000000000000000000 ima-ng sha1:0000000000000000000000000000000000"
	"000000 /var/log/syslog\n"
	" 9 2ab9fbf4e7d92b253a33893f90327fe0bb718e46 ima-ng sha256:594e519ae499312b29433b7dd8a97f"
	"f068defcba9755b6d5d00e84c524d67b06 /etc/hosts\n";
#define ASCII_PCR10 "102dca6e7b045d816b9f446e3deb2e3663771aa68303aa84fd93af3eb785d22e"

/* A growable byte string, the test's own writer of the binary form. */
struct vec {
	uint8_t *p;
	size_t n;
};

static void put(struct vec *v, const void *p, size_t n)
{
	v->p = realloc(v->p, v->n + n + 1);
	assert_non_null(v->p);
	if (n)
		memcpy(v->p + v->n, p, n);
	v->n += n;
}

static void put32(struct vec *v, uint32_t x)
{
	const uint8_t b[4] = { LE32(x) };

	put(v, b, 4);
}

static void digest(const EVP_MD *md, const uint8_t *p, size_t n, uint8_t *out)
{
	assert_int_equal(EVP_Digest(p, n, out, NULL, md, NULL), 1);
}

static void unhex(const char *s, uint8_t *out, size_t n)
{
	assert_int_equal(smig_unhex(s, out, n), 0);
}

/* ima-ng's template data (ima-sig's with sig, siglen >= 0). */
static void td_ng(struct vec *td, const char *algo, const uint8_t *d, size_t dlen,
		  const char *path, const uint8_t *sig, long siglen)
{
	put32(td, (uint32_t)(strlen(algo) + 2 + dlen));
	put(td, algo, strlen(algo));
	put(td, ":", 2);
	put(td, d, dlen);
	put32(td, (uint32_t)strlen(path) + 1);
	put(td, path, strlen(path) + 1);
	if (siglen >= 0) {
		put32(td, (uint32_t)siglen);
		put(td, sig, (size_t)siglen);
	}
}

/* A binary entry around template data td; a violation has a zero template digest. */
static void bin_entry(struct vec *list, uint32_t pcr, const char *tmpl, const struct vec *td,
		      int violation)
{
	uint8_t sha1[20] = { 0 };

	if (!violation)
		digest(EVP_sha1(), td->p, td->n, sha1);
	put32(list, pcr);
	put(list, sha1, 20);
	put32(list, (uint32_t)strlen(tmpl));
	put(list, tmpl, strlen(tmpl));
	put32(list, (uint32_t)td->n);
	put(list, td->p, td->n);
}

/* The binary form of ascii_list, made by the test's own writer. */
static void binary_list(struct vec *list)
{
	static const uint8_t sig[] = { 3, 2, 0x11, 0x22, 0x33 };
	static const uint8_t zero[20];
	uint8_t agg[32], d[32];
	struct vec td = { 0 };

	for (int i = 0; i < 32; i++)
		agg[i] = (uint8_t)i;
	td_ng(&td, "sha256", agg, 32, "boot_aggregate", NULL, -1);
	bin_entry(list, 10, "ima-ng", &td, 0);
	td.n = 0;
	unhex(EMPTY_SHA256, d, 32);
	td_ng(&td, "sha256", d, 32, "/usr/bin/true", NULL, -1);
	bin_entry(list, 10, "ima-ng", &td, 0);
	td.n = 0;
	digest(EVP_sha256(), (const uint8_t *)"x", 1, d);
	td_ng(&td, "sha256", d, 32, "/usr/sbin/smigd", sig, sizeof(sig));
	bin_entry(list, 10, "ima-sig", &td, 0);
	td.n = 0;
	digest(EVP_sha256(), (const uint8_t *)"y", 1, d);
	td_ng(&td, "sha256", d, 32, "/usr/lib/libc.so.6", NULL, 0);
	bin_entry(list, 10, "ima-sig", &td, 0);
	td.n = 0;
	td_ng(&td, "sha1", zero, 20, "/var/log/syslog", NULL, -1);
	bin_entry(list, 10, "ima-ng", &td, 1);
	td.n = 0;
	digest(EVP_sha256(), (const uint8_t *)"z", 1, d);
	td_ng(&td, "sha256", d, 32, "/etc/hosts", NULL, -1);
	bin_entry(list, 9, "ima-ng", &td, 0);
	free(td.p);
}

static void parse_ok(const void *buf, size_t len, bool ascii, struct smig_ima *l)
{
	char err[256] = "";

	if (smig_ima_parse(buf, len, ascii, l, err, sizeof(err)) != 0)
		fail_msg("refused: %s", err);
}

static void parse_bad(const void *buf, size_t len, bool ascii, int code, const char *want)
{
	struct smig_ima l;
	char err[256] = "";
	int rc = smig_ima_parse(buf, len, ascii, &l, err, sizeof(err));

	if (rc != code || strstr(err, want) == NULL)
		fail_msg("got %d \"%s\", want %d \"%s\"", rc, err, code, want);
	assert_null(l.e);
	assert_int_equal(l.n, 0);
}

static void same_entries(const struct smig_ima *a, const struct smig_ima *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		const struct smig_ima_entry *x = &a->e[i], *y = &b->e[i];

		assert_int_equal(x->pcr, y->pcr);
		assert_string_equal(x->tmpl, y->tmpl);
		assert_string_equal(x->algo, y->algo);
		assert_int_equal(x->digest_len, y->digest_len);
		assert_memory_equal(x->digest, y->digest, x->digest_len);
		assert_string_equal(x->path, y->path);
		assert_memory_equal(x->extend, y->extend, 32);
		assert_int_equal(x->violation, y->violation);
	}
}

/* PCR 10 by the test's own chain over the extend values. */
static void chain(const struct smig_ima *l, uint8_t pcr[32])
{
	uint8_t both[64];

	memset(pcr, 0, 32);
	for (size_t i = 0; i < l->n; i++) {
		if (l->e[i].pcr != 10)
			continue;
		memcpy(both, pcr, 32);
		memcpy(both + 32, l->e[i].extend, 32);
		digest(EVP_sha256(), both, 64, pcr);
	}
}

static const uint8_t zero32[32];

static void test_real_entry(void **state)
{
	static const char line[] = "10 c2a86c2d5d68767d97b7641c8cc73dff5f45bd76 ima-ng sha256:"
				   EMPTY_SHA256 " /usr/bin/true\n";
	struct smig_ima l, a;
	uint8_t want[32];

	(void)state;
	parse_ok(real_entry, sizeof(real_entry), false, &l);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.e[0].pcr, 10);
	assert_string_equal(l.e[0].tmpl, "ima-ng");
	assert_string_equal(l.e[0].algo, "sha256");
	assert_int_equal(l.e[0].digest_len, 32);
	unhex(EMPTY_SHA256, want, 32);
	assert_memory_equal(l.e[0].digest, want, 32);
	assert_string_equal(l.e[0].path, "/usr/bin/true");
	assert_false(l.e[0].violation);
	unhex(REAL_EXTEND, want, 32);
	assert_memory_equal(l.e[0].extend, want, 32);
	parse_ok(line, strlen(line), true, &a);
	same_entries(&l, &a);
	smig_ima_free(&a);
	smig_ima_free(&l);
}

static void test_ascii_binary_same(void **state)
{
	struct smig_ima a, b;
	struct vec bin = { 0 };
	uint8_t pcr[32], want[32], ff[32];

	(void)state;
	binary_list(&bin);
	parse_ok(ascii_list, strlen(ascii_list), true, &a);
	parse_ok(bin.p, bin.n, false, &b);
	assert_int_equal(a.n, 6);
	same_entries(&a, &b);
	assert_string_equal(a.e[2].tmpl, "ima-sig");
	assert_string_equal(a.e[3].path, "/usr/lib/libc.so.6");
	assert_int_equal(a.e[5].pcr, 9);
	/* the violation: flagged, and it extended 0xff bytes */
	memset(ff, 0xff, sizeof(ff));
	assert_true(a.e[4].violation);
	assert_memory_equal(a.e[4].extend, ff, 32);
	for (size_t i = 0; i < a.n; i++)
		assert_int_equal(a.e[i].violation, i == 4);
	unhex(ASCII_PCR10, want, 32);
	smig_ima_replay(&a, 0, a.n, zero32, pcr);
	assert_memory_equal(pcr, want, 32);
	smig_ima_replay(&b, 0, b.n, zero32, pcr);
	assert_memory_equal(pcr, want, 32);
	chain(&a, pcr);
	assert_memory_equal(pcr, want, 32);
	smig_ima_free(&a);
	smig_ima_free(&b);
	free(bin.p);
}

static void test_ima_template(void **state)
{
	static const char path[] = "/sbin/init";
	struct vec bin = { 0 }, hashed = { 0 };
	uint8_t d[20], sha1[20], ext[32], pad[256] = { 0 };
	char line[256], hex[41], dhex[41];
	struct smig_ima a, b;

	(void)state;
	memset(d, 0x5a, sizeof(d));
	/* the kernel hashes the digest and the name padded to 256 bytes */
	put(&hashed, d, 20);
	snprintf((char *)pad, sizeof(pad), "%s", path); /* and zeros after */
	put(&hashed, pad, sizeof(pad));
	digest(EVP_sha1(), hashed.p, hashed.n, sha1);
	/* and lists no data length, and the name without its NUL */
	put32(&bin, 10);
	put(&bin, sha1, 20);
	put32(&bin, 3);
	put(&bin, "ima", 3);
	put(&bin, d, 20);
	put32(&bin, (uint32_t)strlen(path));
	put(&bin, path, strlen(path));
	smig_hex(sha1, 20, hex);
	smig_hex(d, 20, dhex);
	snprintf(line, sizeof(line), "10 %s ima %s %s\n", hex, dhex, path);
	parse_ok(bin.p, bin.n, false, &b);
	parse_ok(line, strlen(line), true, &a);
	same_entries(&a, &b);
	assert_string_equal(a.e[0].algo, "sha1");
	digest(EVP_sha256(), hashed.p, hashed.n, ext);
	assert_memory_equal(a.e[0].extend, ext, 32);
	smig_ima_free(&a);
	smig_ima_free(&b);
	free(bin.p);
	free(hashed.p);
}

/* Lists from the builder: n files, with digests made from their index. */
static void build(size_t n, uint8_t **buf, size_t *len, char (*paths)[64], uint8_t (*d)[32])
{
	const char **pp = calloc(n + 1, sizeof(*pp));
	uint8_t agg[32];

	assert_non_null(pp);
	memset(agg, 0xa9, sizeof(agg));
	for (size_t i = 0; i < n; i++) {
		snprintf(paths[i], 64, "/usr/lib/smig/f%zu", i);
		pp[i] = paths[i];
		digest(EVP_sha256(), (const uint8_t *)paths[i], strlen(paths[i]), d[i]);
	}
	assert_int_equal(smig_ima_build(pp, (const uint8_t(*)[32])d, n, agg, buf, len), 0);
	free(pp);
}

static void test_build_replay(void **state)
{
	enum { N = 300 };
	static char paths[N][64];
	static uint8_t d[N][32];
	struct smig_ima l;
	uint8_t *buf, pcr[32], mid[32], want[32];
	size_t len;
	const char *bad[1] = { "relative/path" };

	(void)state;
	build(N, &buf, &len, paths, d);
	parse_ok(buf, len, false, &l);
	assert_int_equal(l.n, N + 1);
	assert_string_equal(l.e[0].path, "boot_aggregate");
	for (size_t i = 0; i < N; i++) {
		assert_string_equal(l.e[i + 1].path, paths[i]);
		assert_memory_equal(l.e[i + 1].digest, d[i], 32);
		assert_string_equal(l.e[i + 1].algo, "sha256");
	}
	chain(&l, want);
	smig_ima_replay(&l, 0, l.n, zero32, pcr);
	assert_memory_equal(pcr, want, 32);
	/* in two steps: the first entries, then the rest from there */
	smig_ima_replay(&l, 0, 120, zero32, mid);
	smig_ima_replay(&l, 120, l.n, mid, pcr);
	assert_memory_equal(pcr, want, 32);
	smig_ima_replay(&l, 0, l.n + 5, zero32, pcr); /* n past the list: the whole list */
	assert_memory_equal(pcr, want, 32);
	/* a changed byte in a file digest is refused: the template digest no longer fits */
	buf[len - 30] ^= 1; /* the last file's digest: before 4 + 19 bytes of its name */
	smig_ima_free(&l);
	parse_bad(buf, len, false, SMIG_EPROTO, "not the SHA-1 of its template data");
	free(buf);
	assert_int_equal(smig_ima_build(bad, (const uint8_t(*)[32])d, 1, zero32, &buf, &len),
			 SMIG_EINVAL);
	bad[0] = "/a file";
	assert_int_equal(smig_ima_build(bad, (const uint8_t(*)[32])d, 1, zero32, &buf, &len),
			 SMIG_EINVAL);
}

/* Each cut of list: refused, or at an entry's start a list of the entries before. */
static void every_cut(const uint8_t *list, size_t len, bool ascii)
{
	struct smig_ima full, l;
	size_t *starts, k = 0, off = 0;
	char err[256];

	parse_ok(list, len, ascii, &full);
	starts = calloc(full.n + 1, sizeof(*starts));
	assert_non_null(starts);
	/* where entries start: after each newline, or by re-parsing prefixes for binary */
	for (size_t i = 0; i < full.n; i++) {
		starts[i] = off;
		if (ascii) {
			off = (size_t)((const uint8_t *)memchr(list + off, '\n', len - off) - list) + 1;
		} else {
			while (smig_ima_parse(list, ++off, false, &l, err, sizeof(err)) != 0 ||
			       l.n != i + 1)
				if (l.e)
					smig_ima_free(&l);
			smig_ima_free(&l);
		}
	}
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *copy = malloc(cut + 1); /* its own block: ASan sees any overread */
		int rc;

		assert_non_null(copy);
		memcpy(copy, list, cut);
		rc = smig_ima_parse(copy, cut, ascii, &l, err, sizeof(err));
		while (k < full.n && starts[k] < cut)
			k++;
		if (k < full.n && starts[k] == cut) {
			assert_int_equal(rc, 0);
			assert_int_equal(l.n, k);
			smig_ima_free(&l);
		} else {
			assert_true(rc < 0);
			assert_non_null(strstr(err, "IMA list: entry "));
		}
		free(copy);
	}
	free(starts);
	smig_ima_free(&full);
}

static void test_every_cut(void **state)
{
	struct vec bin = { 0 };

	(void)state;
	binary_list(&bin);
	every_cut(bin.p, bin.n, false);
	every_cut((const uint8_t *)ascii_list, strlen(ascii_list), true);
	free(bin.p);
}

/* The real entry with byte off set to v. */
static void real_with(uint8_t *b, size_t off, uint8_t v)
{
	memcpy(b, real_entry, sizeof(real_entry));
	b[off] = v;
}

static void test_binary_refused(void **state)
{
	uint8_t b[sizeof(real_entry) * 2];
	struct vec v = { 0 }, td = { 0 };
	uint8_t d[32] = { 0 }, sig[4100] = { 0 };

	(void)state;
	real_with(b, 0, 24);
	parse_bad(b, sizeof(real_entry), false, SMIG_EPROTO, "entry 1 at byte 0: PCR 24");
	real_with(b, 28 + 5, 'x'); /* ima-nx */
	parse_bad(b, sizeof(real_entry), false, SMIG_EPROTO, "template ima-nx is not read");
	real_with(b, 28, 0x1b);
	parse_bad(b, sizeof(real_entry), false, SMIG_EPROTO, "a template name that is not one");
	real_with(b, 10, 0);
	parse_bad(b, sizeof(real_entry), false, SMIG_EPROTO, "template digest is not the SHA-1");
	real_with(b, 38 + 4 + 7, '-'); /* "sha256:-" */
	parse_bad(b, sizeof(real_entry), false, SMIG_EPROTO, "is not ALGO, a colon, a NUL");
	real_with(b, sizeof(real_entry) - 1, '!'); /* the name's NUL */
	parse_bad(b, sizeof(real_entry), false, SMIG_EPROTO, "lacks its NUL");
	real_with(b, 34, 61); /* the template data length, one byte short */
	parse_bad(b, sizeof(real_entry), false, SMIG_EPROTO, "template data ends inside its file name");
	real_with(b, 34, 70);
	parse_bad(b, sizeof(real_entry), false, SMIG_ESHORT, "data length is 70, the list has 62");
	/* a second entry: the message names it and its offset */
	memcpy(b, real_entry, sizeof(real_entry));
	memcpy(b + sizeof(real_entry), real_entry, sizeof(real_entry));
	b[sizeof(real_entry) + 4] ^= 1;
	parse_bad(b, sizeof(b), false, SMIG_EPROTO, "entry 2 at byte 100: its template digest");
	/* ima-ng data with a field more, and ima-sig with too long a signature */
	td_ng(&td, "sha256", d, 32, "/x", NULL, 0);
	bin_entry(&v, 10, "ima-ng", &td, 0);
	parse_bad(v.p, v.n, false, SMIG_EPROTO, "4 bytes after its template's fields");
	v.n = td.n = 0;
	td_ng(&td, "sha256", d, 31, "/x", NULL, -1);
	bin_entry(&v, 10, "ima-ng", &td, 0);
	parse_bad(v.p, v.n, false, SMIG_EPROTO, "a sha256 file digest of 31 bytes");
	v.n = td.n = 0;
	td_ng(&td, "sha256", d, 32, "/x", sig, sizeof(sig));
	bin_entry(&v, 10, "ima-sig", &td, 0);
	parse_bad(v.p, v.n, false, SMIG_EPROTO, "a signature of 4100 bytes");
	free(v.p);
	free(td.p);
}

static void ascii_bad(const char *text, int code, const char *want)
{
	parse_bad(text, strlen(text), true, code, want);
}

static void test_ascii_refused(void **state)
{
	char line[512];
	const char *tail = "c2a86c2d5d68767d97b7641c8cc73dff5f45bd76 ima-ng sha256:" EMPTY_SHA256
			   " /usr/bin/true";

	(void)state;
	snprintf(line, sizeof(line), "10 %s", tail);
	ascii_bad(line, SMIG_ESHORT, "entry 1 (line 1): the list ends inside the line");
	snprintf(line, sizeof(line), "10 %s\n10 %s \n", tail, tail);
	ascii_bad(line, SMIG_EPROTO, "entry 2 (line 2): 6 fields; ima-ng has 5");
	snprintf(line, sizeof(line), "9 %s\n", tail);
	ascii_bad(line, SMIG_EPROTO, "its PCR is not printed as the kernel prints it");
	snprintf(line, sizeof(line), " 10 %s\n", tail);
	ascii_bad(line, SMIG_EPROTO, "its PCR is not printed");
	snprintf(line, sizeof(line), "24 %s\n", tail);
	ascii_bad(line, SMIG_EPROTO, "PCR 24");
	snprintf(line, sizeof(line), "11 %s\n", tail);
	parse_bad(line, strlen(line) + 1, true, SMIG_ESHORT, "entry 2 (line 2)"); /* a NUL after */
	snprintf(line, sizeof(line), "10 %s\n", tail);
	line[5] = 'g';
	ascii_bad(line, SMIG_EPROTO, "its template digest is not hex digits");
	line[5] = '0';
	ascii_bad(line, SMIG_EPROTO, "its template digest is not the SHA-1");
	snprintf(line, sizeof(line), "10 %s\n", tail);
	*strstr(line, ":e3b0") = '-';
	ascii_bad(line, SMIG_EPROTO, "its file digest is not ALGO:HEX");
	snprintf(line, sizeof(line), "10 %s\n", tail);
	strstr(line, ":e3b0")[1] = 'x';
	ascii_bad(line, SMIG_EPROTO, "its file digest is not hex digits");
	ascii_bad("10 0000000000000000000000000000000000000000 ima-buf x:00 /y\n", SMIG_EPROTO,
		  "template ima-buf is not read");
	ascii_bad("10 0000000000000000000000000000000000000000 ima-ng x:00\n", SMIG_EPROTO,
		  "4 fields");
	ascii_bad("\n", SMIG_EPROTO, "entry 1 (line 1): 1 fields");
	ascii_bad("10 00 ima-ng a\0b\n", SMIG_ESHORT, "entry 1");
	{
		static const char with_nul[] = "10 0000000000000000000000000000000000000000 ima-ng "
					       "sha1:0000000000000000000000000000000000000000 /a\0b\n";

		parse_bad(with_nul, sizeof(with_nul) - 1, true, SMIG_EPROTO, "a NUL byte");
	}
}

static const char allow_json[] =
	"{\"files\": {\n"
	"  \"/usr/bin/true\": [\"" EMPTY_SHA256 "\"],\n"
	"  \"/usr/sbin/smigd\": [\"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881\",\n"
	"                      \"" EMPTY_SHA256 "\"],\n"
	"  \"/usr/lib/libc.so.6\": [\"1111111111111111111111111111111111111111111111111111111111111111\",\n"
	"                         \"2222222222222222222222222222222222222222222222222222222222222222\"]\n"
	" },\n"
	" \"exclude\": [\"/tmp/\", \"/var/log/\"]}\n";

static void allow_parse(const char *text, struct smig_allowlist *al)
{
	char err[256] = "";

	if (smig_allowlist_parse("allow.json", text, strlen(text), al, err, sizeof(err)) != 0)
		fail_msg("refused: %s", err);
}

static void allow_bad(const char *text, const char *want)
{
	struct smig_allowlist al;
	char err[256] = "";
	int rc = smig_allowlist_parse("allow.json", text, strlen(text), &al, err, sizeof(err));

	if (rc != SMIG_ECONFIG || strstr(err, want) == NULL)
		fail_msg("got %d \"%s\", want \"%s\"", rc, err, want);
	assert_null(al.v);
}

static void checked(const struct smig_allowlist *al, const struct smig_ima *l,
			 size_t from, const char *want)
{
	char why[512] = "";
	int rc = smig_allowlist_check(al, l, from, why, sizeof(why));

	if (want == NULL) {
		if (rc != 0)
			fail_msg("refused: %s", why);
		return;
	}
	if (rc != SMIG_EAUTH || strstr(why, want) == NULL)
		fail_msg("got %d \"%s\", want \"%s\"", rc, why, want);
}

static void test_allowlist(void **state)
{
	struct smig_allowlist al;
	struct smig_ima l;

	(void)state;
	allow_parse(allow_json, &al);
	assert_int_equal(al.n, 5);
	assert_int_equal(al.nexclude, 2);
	parse_ok(ascii_list, strlen(ascii_list), true, &l);
	/* entry 4, /usr/lib/libc.so.6, has a digest the allowlist lacks */
	checked(&al, &l, 0, "IMA entry 4: /usr/lib/libc.so.6: sha256 a1fce436");
	checked(&al, &l, 0, ", the allowlist has 1111111111111111111111111111111111111111111"
		     "111111111111111111111 and 1 others");
	/* entry 5 is a violation: under /var/log/, but a violation fails all the same */
	checked(&al, &l, 4, "IMA entry 5: a measurement violation (file opened for write "
		     "while measured): /var/log/syslog");
	/* from entry 6 on: /etc/hosts in PCR 9, not judged */
	checked(&al, &l, 5, NULL);
	/* boot_aggregate passes as the first entry; smigd matches its second digest */
	l.n = 3;
	checked(&al, &l, 0, NULL);
	l.e[1].path = "/usr/bin/false";
	checked(&al, &l, 0, "IMA entry 2: /usr/bin/false (sha256 " EMPTY_SHA256 ") is not "
		     "in the allowlist");
	l.e[1].path = "/usr/bin/true";
	l.e[2].digest[0] ^= 1;
	checked(&al, &l, 0, "IMA entry 3: /usr/sbin/smigd: sha256 2c71");
	checked(&al, &l, 0, "the allowlist has 2d711642");
	l.e[2].digest[0] ^= 1;
	snprintf(l.e[2].algo, sizeof(l.e[2].algo), "sha1");
	checked(&al, &l, 0, "IMA entry 3: /usr/sbin/smigd is measured with sha1");
	snprintf(l.e[2].algo, sizeof(l.e[2].algo), "sha256");
	l.e[1].violation = true;
	checked(&al, &l, 0, "IMA entry 2: a measurement violation (file opened for write "
		     "while measured): /usr/bin/true");
	l.e[1].path = "/tmp/x";
	/* a violation's path is not bound by the replay: excluded or not, it fails */
	checked(&al, &l, 0, "IMA entry 2: a measurement violation (file opened for write "
		     "while measured): /tmp/x");
	l.e[1].violation = false;
	checked(&al, &l, 0, NULL); /* excluded */
	l.e[1].path = "/tmpfile";
	checked(&al, &l, 0, "IMA entry 2: /tmpfile (sha256");
	l.e[1].path = "/usr/bin/tr\nue";
	checked(&al, &l, 0, "IMA entry 2: /usr/bin/tr?ue (sha256");
	l.e[0].path = "/boot_aggregate"; /* only the name boot_aggregate passes */
	checked(&al, &l, 0, "IMA entry 1: /boot_aggregate");
	l.e[0].path = "boot_aggregate";
	l.e[0].pcr = 11; /* but nothing in another PCR is judged */
	l.e[1].pcr = 11;
	checked(&al, &l, 0, NULL);
	smig_ima_free(&l);
	smig_allowlist_free(&al);
}

static void test_allowlist_refused(void **state)
{
	(void)state;
	allow_bad("{\"files\": {}, \"exclud\": []}", "allow.json:1:15: ");
	allow_bad("{\"files\": {}, \"exclud\": []}", "exclud");
	allow_bad("{\"exclude\": []}", "files");
	allow_bad("{\"files\": {\"/a\": [\"00\"]}}", "allow.json:1:19: files: /a: a SHA-256 "
		  "digest is 64 hex digits");
	allow_bad("{\"files\": {\"/a\": [\"" EMPTY_SHA256 "\", \"" EMPTY_SHA256 "\"]}}",
		  "a digest listed twice");
	allow_bad("{\"files\": {\"/a\": [\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991"
		  "b7852b85g\"]}}", "64 hex digits");
	allow_bad("{\"files\": {\"usr/bin/a\": [\"" EMPTY_SHA256 "\"]}}",
		  "allow.json:1:25: files: \"usr/bin/a\" is not an absolute path");
	allow_bad("{\"files\": {\"/a b\": [\"" EMPTY_SHA256 "\"]}}", "holds a space");
	allow_bad("{\"files\": {\"/a\": []}}", "files: /a: an array of 1 to 256");
	allow_bad("{\"files\": {\"/a\": \"" EMPTY_SHA256 "\"}}", "an array");
	allow_bad("{\"files\": {}, \"exclude\": [\"tmp/\"]}", "allow.json:1:27: exclude: \"tmp/\" "
		  "is not an absolute path");
	allow_bad("{\"files\": {}, \"exclude\": [\"/\"]}", "would exclude every file");
	allow_bad("{\"files\": {}, \"exclude\": [7]}", "is not a string");
	allow_bad("{\"files\": {}, \"files\": {}}", "allow.json:1:");
	allow_bad("[]", "the top level must be an object");
}

/* 10^4 files in the allowlist, a list of 5 * 10^4 entries: fast, and all found. */
static void test_allowlist_scale(void **state)
{
	enum { FILES = 10000, ENTRIES = 50000 };
	static char paths[ENTRIES][64];
	static uint8_t d[ENTRIES][32];
	struct smig_allowlist al;
	struct smig_ima l;
	uint8_t *buf;
	size_t len, at = 0;
	char *json = malloc((size_t)FILES * 120 + 64), hex[65], why[256];

	(void)state;
	assert_non_null(json);
	build(ENTRIES, &buf, &len, paths, d);
	at += (size_t)sprintf(json, "{\"files\": {");
	for (size_t i = 0; i < FILES; i++) {
		smig_hex(d[i], 32, hex);
		at += (size_t)sprintf(json + at, "%s\"%s\": [\"%s\"]", i ? "," : "", paths[i], hex);
	}
	sprintf(json + at, "}, \"exclude\": [\"/usr/lib/smig/f1\"]}");
	allow_parse(json, &al);
	parse_ok(buf, len, false, &l);
	/* f1, f1x.. are excluded, f0..f9999 listed: f20000 is the first in neither */
	assert_int_equal(smig_allowlist_check(&al, &l, 0, why, sizeof(why)), SMIG_EAUTH);
	assert_non_null(strstr(why, "IMA entry 20002: /usr/lib/smig/f20000 (sha256"));
	l.n = FILES + 1;
	checked(&al, &l, 0, NULL);
	smig_ima_free(&l);
	smig_allowlist_free(&al);
	free(json);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_entry),
		cmocka_unit_test(test_ascii_binary_same),
		cmocka_unit_test(test_ima_template),
		cmocka_unit_test(test_build_replay),
		cmocka_unit_test(test_every_cut),
		cmocka_unit_test(test_binary_refused),
		cmocka_unit_test(test_ascii_refused),
		cmocka_unit_test(test_allowlist),
		cmocka_unit_test(test_allowlist_scale),
		cmocka_unit_test(test_allowlist_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
