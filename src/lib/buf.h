/*
 * buf.h - the bounds-checked byte buffer all wire parsing goes through.
 *
 * A struct smig_buf is either owned (growable up to a fixed maximum, wiped
 * before its memory is released) or a read-only view of someone else's
 * bytes. Writers append at the end; readers consume from a read offset.
 * Every get checks the bytes remain and every put checks the maximum, so
 * parsers never do pointer arithmetic of their own. Integers are big-endian.
 */
#ifndef SMIG_BUF_H
#define SMIG_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct smig_buf {
	uint8_t *data;
	size_t len; /* bytes held */
	size_t off; /* read offset, <= len */
	size_t cap; /* allocated bytes (owned buffers) */
	size_t max; /* the buffer never grows past this */
	bool owned;
};

/* An empty owned buffer that may grow to max bytes. */
void smig_buf_init(struct smig_buf *b, size_t max);
/* Wipes and frees an owned buffer; forgets a view. */
void smig_buf_clear(struct smig_buf *b);
/* A read-only view of data[0..len); data must outlive the view. */
void smig_buf_view(struct smig_buf *b, const uint8_t *data, size_t len);

/* Bytes not yet read. */
size_t smig_buf_remaining(const struct smig_buf *b);
/* The unread bytes. */
const uint8_t *smig_buf_peek(const struct smig_buf *b);
/* Drops n read bytes from the front (SMIG_ESHORT if fewer remain). */
int smig_buf_consume(struct smig_buf *b, size_t n);
/* Moves unread bytes to the front so the buffer can take more. */
void smig_buf_compact(struct smig_buf *b);
/* Empties the buffer, keeping its memory. */
void smig_buf_reset(struct smig_buf *b);
/* SMIG_ETRAILING unless every byte has been read. */
int smig_buf_expect_end(const struct smig_buf *b);

/* Makes room for n more bytes and returns where they go (ptr in *out). */
int smig_buf_reserve(struct smig_buf *b, size_t n, uint8_t **out);
/* Records that n bytes were written after smig_buf_reserve(). */
void smig_buf_commit(struct smig_buf *b, size_t n);

int smig_buf_put_u8(struct smig_buf *b, uint8_t v);
int smig_buf_put_u16(struct smig_buf *b, uint16_t v);
int smig_buf_put_u32(struct smig_buf *b, uint32_t v);
int smig_buf_put_u64(struct smig_buf *b, uint64_t v);
int smig_buf_put_bytes(struct smig_buf *b, const void *p, size_t n);
/* A u16 length then the bytes; SMIG_ETOOBIG past maxlen. */
int smig_buf_put_string(struct smig_buf *b, const char *s, size_t maxlen);

int smig_buf_get_u8(struct smig_buf *b, uint8_t *v);
int smig_buf_get_u16(struct smig_buf *b, uint16_t *v);
int smig_buf_get_u32(struct smig_buf *b, uint32_t *v);
int smig_buf_get_u64(struct smig_buf *b, uint64_t *v);
int smig_buf_get_bytes(struct smig_buf *b, void *out, size_t n);
/* Points *p at the next n bytes inside the buffer and consumes them. */
int smig_buf_get_ptr(struct smig_buf *b, const uint8_t **p, size_t n);
/*
 * Reads a u16-length string into out (NUL-terminated). The length must be
 * <= maxlen and < outsz; embedded NUL bytes are refused (SMIG_EPROTO).
 */
int smig_buf_get_string(struct smig_buf *b, char *out, size_t outsz, size_t maxlen);

#endif
