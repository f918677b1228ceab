/*
 * le.h - little-endian integers over struct smig_buf.
 *
 * smig's own wire format is big-endian (buf.h), but the logs a host's
 * firmware and kernel keep (the TCG measured-boot event log, the IMA
 * measurement list) store integers little-endian. These wrappers keep
 * the parsers of those logs on the bounds-checked buffer all the same.
 */
#ifndef SMIG_LE_H
#define SMIG_LE_H

#include "buf.h"
#include "error.h"

#include <stdint.h>

static inline int smig_buf_get_le16(struct smig_buf *b, uint16_t *v)
{
	const uint8_t *p;

	SMIG_GUARD(smig_buf_get_ptr(b, &p, 2));
	*v = (uint16_t)(p[0] | (p[1] << 8));
	return 0;
}

static inline int smig_buf_get_le32(struct smig_buf *b, uint32_t *v)
{
	const uint8_t *p;

	SMIG_GUARD(smig_buf_get_ptr(b, &p, 4));
	*v = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	     ((uint32_t)p[3] << 24);
	return 0;
}

static inline int smig_buf_put_le16(struct smig_buf *b, uint16_t v)
{
	const uint8_t p[2] = { (uint8_t)v, (uint8_t)(v >> 8) };

	return smig_buf_put_bytes(b, p, sizeof(p));
}

static inline int smig_buf_put_le32(struct smig_buf *b, uint32_t v)
{
	const uint8_t p[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
			       (uint8_t)(v >> 24) };

	return smig_buf_put_bytes(b, p, sizeof(p));
}

#endif
