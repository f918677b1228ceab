/*
 * buf.c - bounds-checked byte buffer (see buf.h).
 */
#include "buf.h"
#include "error.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

void smig_buf_init(struct smig_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
	b->owned = true;
}

void smig_buf_clear(struct smig_buf *b)
{
	if (b->owned && b->data) {
		OPENSSL_cleanse(b->data, b->cap);
		free(b->data);
	}
	memset(b, 0, sizeof(*b));
}

void smig_buf_view(struct smig_buf *b, const uint8_t *data, size_t len)
{
	memset(b, 0, sizeof(*b));
	/*
	 * The view never writes (puts refuse a buffer that is not owned), so
	 * dropping const here is safe; one data pointer keeps every get simple.
	 */
	b->data = (uint8_t *)(uintptr_t)data; // NOLINT(performance-no-int-to-ptr)
	b->len = len;
	b->cap = len;
}

size_t smig_buf_remaining(const struct smig_buf *b)
{
	return b->len - b->off;
}

const uint8_t *smig_buf_peek(const struct smig_buf *b)
{
	return b->data ? b->data + b->off : NULL;
}

int smig_buf_consume(struct smig_buf *b, size_t n)
{
	SMIG_ENSURE(n <= smig_buf_remaining(b), SMIG_ESHORT);
	b->off += n;
	if (b->off == b->len && b->owned)
		b->off = b->len = 0;
	return 0;
}

void smig_buf_compact(struct smig_buf *b)
{
	if (!b->owned || b->off == 0)
		return;
	memmove(b->data, b->data + b->off, b->len - b->off);
	b->len -= b->off;
	b->off = 0;
}

void smig_buf_reset(struct smig_buf *b)
{
	if (b->owned) {
		b->len = 0;
		b->off = 0;
	} else {
		b->off = b->len;
	}
}

int smig_buf_expect_end(const struct smig_buf *b)
{
	return smig_buf_remaining(b) == 0 ? 0 : SMIG_ETRAILING;
}

int smig_buf_reserve(struct smig_buf *b, size_t n, uint8_t **out)
{
	size_t need;
	size_t ncap;
	uint8_t *p;

	SMIG_ENSURE(b->owned, SMIG_EINVAL);
	SMIG_ENSURE(n <= b->max && b->len - b->off <= b->max - n, SMIG_ETOOBIG);
	need = b->len + n;
	if (need > b->cap) {
		smig_buf_compact(b);
		need = b->len + n;
	}
	if (need > b->cap) {
		ncap = b->cap ? b->cap : 256;
		while (ncap < need)
			ncap = ncap > b->max / 2 ? b->max : ncap * 2;
		p = malloc(ncap);
		SMIG_ENSURE(p != NULL, SMIG_ENOMEM);
		if (b->data) {
			memcpy(p, b->data, b->len);
			OPENSSL_cleanse(b->data, b->cap);
			free(b->data);
		}
		b->data = p;
		b->cap = ncap;
	}
	*out = b->data + b->len;
	return 0;
}

void smig_buf_commit(struct smig_buf *b, size_t n)
{
	b->len += n;
}

int smig_buf_put_bytes(struct smig_buf *b, const void *p, size_t n)
{
	uint8_t *dst;

	if (n == 0)
		return 0;
	SMIG_GUARD(smig_buf_reserve(b, n, &dst));
	memcpy(dst, p, n);
	smig_buf_commit(b, n);
	return 0;
}

int smig_buf_put_u8(struct smig_buf *b, uint8_t v)
{
	return smig_buf_put_bytes(b, &v, 1);
}

int smig_buf_put_u16(struct smig_buf *b, uint16_t v)
{
	uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	return smig_buf_put_bytes(b, x, sizeof(x));
}

int smig_buf_put_u32(struct smig_buf *b, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
			 (uint8_t)v };

	return smig_buf_put_bytes(b, x, sizeof(x));
}

int smig_buf_put_u64(struct smig_buf *b, uint64_t v)
{
	SMIG_GUARD(smig_buf_put_u32(b, (uint32_t)(v >> 32)));
	return smig_buf_put_u32(b, (uint32_t)v);
}

int smig_buf_put_string(struct smig_buf *b, const char *s, size_t maxlen)
{
	size_t n = strlen(s);

	SMIG_ENSURE(n <= maxlen && n <= UINT16_MAX, SMIG_ETOOBIG);
	SMIG_GUARD(smig_buf_put_u16(b, (uint16_t)n));
	return smig_buf_put_bytes(b, s, n);
}

int smig_buf_get_ptr(struct smig_buf *b, const uint8_t **p, size_t n)
{
	SMIG_ENSURE(n <= smig_buf_remaining(b), SMIG_ESHORT);
	*p = b->data + b->off;
	b->off += n;
	return 0;
}

int smig_buf_get_bytes(struct smig_buf *b, void *out, size_t n)
{
	const uint8_t *p;

	SMIG_GUARD(smig_buf_get_ptr(b, &p, n));
	if (n)
		memcpy(out, p, n);
	return 0;
}

int smig_buf_get_u8(struct smig_buf *b, uint8_t *v)
{
	return smig_buf_get_bytes(b, v, 1);
}

int smig_buf_get_u16(struct smig_buf *b, uint16_t *v)
{
	const uint8_t *p;

	SMIG_GUARD(smig_buf_get_ptr(b, &p, 2));
	*v = (uint16_t)((p[0] << 8) | p[1]);
	return 0;
}

int smig_buf_get_u32(struct smig_buf *b, uint32_t *v)
{
	const uint8_t *p;

	SMIG_GUARD(smig_buf_get_ptr(b, &p, 4));
	*v = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
	return 0;
}

int smig_buf_get_u64(struct smig_buf *b, uint64_t *v)
{
	uint32_t hi;
	uint32_t lo;

	if (smig_buf_remaining(b) < 8)
		return SMIG_ESHORT;
	SMIG_GUARD(smig_buf_get_u32(b, &hi));
	SMIG_GUARD(smig_buf_get_u32(b, &lo));
	*v = ((uint64_t)hi << 32) | lo;
	return 0;
}

int smig_buf_get_string(struct smig_buf *b, char *out, size_t outsz, size_t maxlen)
{
	size_t start = b->off;
	uint16_t n;
	const uint8_t *p;

	SMIG_GUARD(smig_buf_get_u16(b, &n));
	if (n > maxlen || (size_t)n >= outsz) {
		b->off = start;
		return SMIG_ETOOBIG;
	}
	if (smig_buf_get_ptr(b, &p, n) < 0) {
		b->off = start;
		return SMIG_ESHORT;
	}
	if (memchr(p, 0, n) != NULL) {
		b->off = start;
		return SMIG_EPROTO;
	}
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}
