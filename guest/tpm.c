/*
 * tpm.c - TPM 2.0 commands over the TIS (TPM Interface Specification)
 * FIFO interface, locality 0, by polling.
 */
#include "tpm.h"
#include "io.h"

#define TIS_BASE 0xFED40000u
#define TIS_ACCESS (TIS_BASE + 0x00)
#define TIS_STS (TIS_BASE + 0x18)
#define TIS_FIFO (TIS_BASE + 0x24)
#define TIS_DID_VID (TIS_BASE + 0xF00)

#define ACCESS_VALID 0x80
#define ACCESS_ACTIVE 0x20
#define ACCESS_REQUEST 0x02
#define STS_VALID 0x80
#define STS_READY 0x40
#define STS_GO 0x20
#define STS_AVAIL 0x10

#define TPM_TIMEOUT_MS 5000

static uint8_t cmdbuf[256];
static uint8_t rspbuf[512];

static int wait_sts(uint32_t mask, uint32_t want)
{
	uint64_t deadline = now_ms() + TPM_TIMEOUT_MS;

	while ((mmio_read32(TIS_STS) & mask) != want)
		if (now_ms() > deadline)
			return -1;
	return 0;
}

static uint32_t burst(void)
{
	return (mmio_read32(TIS_STS) >> 8) & 0xFFFF;
}

int tpm_present(void)
{
	uint32_t id = mmio_read32(TIS_DID_VID);

	return id != 0 && id != 0xFFFFFFFFu;
}

static int locality(void)
{
	uint64_t deadline = now_ms() + TPM_TIMEOUT_MS;

	if ((mmio_read8(TIS_ACCESS) & (ACCESS_VALID | ACCESS_ACTIVE)) ==
	    (ACCESS_VALID | ACCESS_ACTIVE))
		return 0;
	mmio_write8(TIS_ACCESS, ACCESS_REQUEST);
	while ((mmio_read8(TIS_ACCESS) & (ACCESS_VALID | ACCESS_ACTIVE)) !=
	       (ACCESS_VALID | ACCESS_ACTIVE))
		if (now_ms() > deadline)
			return -1;
	return 0;
}

static int fifo_read(uint8_t *p, uint32_t n)
{
	uint32_t got = 0;
	uint64_t deadline = now_ms() + TPM_TIMEOUT_MS;

	while (got < n) {
		uint32_t b = burst();
		if (b == 0) {
			if (now_ms() > deadline)
				return -1;
			continue;
		}
		while (b-- && got < n)
			p[got++] = mmio_read8(TIS_FIFO);
	}
	return 0;
}

/* Sends cmd[0..len), leaves the response in rspbuf; returns the TPM rc or -1. */
static int64_t tpm_transact(uint32_t len, uint32_t *rsplen)
{
	uint32_t sent = 0;
	uint32_t size;
	uint64_t deadline = now_ms() + TPM_TIMEOUT_MS;

	if (locality() < 0)
		return -1;
	mmio_write32(TIS_STS, STS_READY);
	if (wait_sts(STS_READY, STS_READY) < 0)
		return -1;
	while (sent < len) {
		uint32_t b = burst();
		if (b == 0) {
			if (now_ms() > deadline)
				return -1;
			continue;
		}
		while (b-- && sent < len)
			mmio_write8(TIS_FIFO, cmdbuf[sent++]);
	}
	mmio_write32(TIS_STS, STS_GO);
	if (wait_sts(STS_VALID | STS_AVAIL, STS_VALID | STS_AVAIL) < 0)
		return -1;
	if (fifo_read(rspbuf, 10) < 0)
		return -1;
	size = (uint32_t)rspbuf[2] << 24 | (uint32_t)rspbuf[3] << 16 | (uint32_t)rspbuf[4] << 8 |
	       rspbuf[5];
	if (size < 10 || size > sizeof(rspbuf) || fifo_read(rspbuf + 10, size - 10) < 0)
		return -1;
	mmio_write32(TIS_STS, STS_READY);
	*rsplen = size;
	return (int64_t)((uint32_t)rspbuf[6] << 24 | (uint32_t)rspbuf[7] << 16 |
			 (uint32_t)rspbuf[8] << 8 | rspbuf[9]);
}

static uint32_t put16(uint32_t at, uint16_t v)
{
	cmdbuf[at] = (uint8_t)(v >> 8);
	cmdbuf[at + 1] = (uint8_t)v;
	return at + 2;
}

static uint32_t put32(uint32_t at, uint32_t v)
{
	at = put16(at, (uint16_t)(v >> 16));
	return put16(at, (uint16_t)v);
}

/* Writes tag and command code; the size is patched by finish(). */
static uint32_t begin(uint16_t tag, uint32_t cc)
{
	uint32_t at = put16(0, tag);

	at = put32(at, 0);
	return put32(at, cc);
}

static uint32_t finish(uint32_t len)
{
	put32(2, len);
	return len;
}

int tpm_startup(void)
{
	uint32_t at = begin(0x8001, 0x144); /* TPM2_Startup */
	uint32_t rl;
	int64_t rc;

	at = put16(at, 0x0000); /* TPM_SU_CLEAR */
	rc = tpm_transact(finish(at), &rl);
	return rc == 0 || rc == 0x100 ? 0 : -1; /* 0x100: TPM_RC_INITIALIZE */
}

int tpm_extend(uint32_t pcr, const uint8_t digest[32])
{
	uint32_t at = begin(0x8002, 0x182); /* TPM_ST_SESSIONS, TPM2_PCR_Extend */
	uint32_t rl;

	at = put32(at, pcr);
	at = put32(at, 9);          /* authorization area size */
	at = put32(at, 0x40000009); /* TPM_RS_PW */
	at = put16(at, 0);          /* nonce */
	cmdbuf[at++] = 0;           /* session attributes */
	at = put16(at, 0);          /* empty password */
	at = put32(at, 1);          /* TPML_DIGEST_VALUES.count */
	at = put16(at, 0x000B);     /* TPM_ALG_SHA256 */
	memcpy(cmdbuf + at, digest, 32);
	at += 32;
	return tpm_transact(finish(at), &rl) == 0 ? 0 : -1;
}

int tpm_read(uint32_t pcr, uint8_t out[32])
{
	uint32_t at = begin(0x8001, 0x17E); /* TPM2_PCR_Read */
	uint32_t rl;
	uint32_t off;

	at = put32(at, 1);      /* TPML_PCR_SELECTION.count */
	at = put16(at, 0x000B); /* SHA-256 bank */
	cmdbuf[at++] = 3;       /* sizeofSelect */
	cmdbuf[at++] = (uint8_t)(pcr < 8 ? 1u << pcr : 0);
	cmdbuf[at++] = (uint8_t)(pcr >= 8 && pcr < 16 ? 1u << (pcr - 8) : 0);
	cmdbuf[at++] = (uint8_t)(pcr >= 16 && pcr < 24 ? 1u << (pcr - 16) : 0);
	if (tpm_transact(finish(at), &rl) != 0)
		return -1;
	/* header 10, updateCounter 4, selection count 4 + (2 + 1 + 3), digest count 4 */
	off = 10 + 4 + 4 + 6 + 4;
	if (rl < off + 2 + 32 || rspbuf[off] != 0 || rspbuf[off + 1] != 32)
		return -1;
	memcpy(out, rspbuf + off + 2, 32);
	return 0;
}
