/*
 * qga.h - the QEMU guest agent's sync exchange, which smigd uses as a ping:
 * the request it writes to the agent's virtio-serial port, and finding the
 * agent's answer in the bytes that come back. Those bytes come from the
 * guest: they are untrusted, may hold stale answers to earlier requests,
 * partial lines or anything at all.
 */
#ifndef SMIG_QGA_H
#define SMIG_QGA_H

#include <stddef.h>
#include <stdint.h>

/* The longest answer line looked at; longer ones are skipped. */
#define SMIG_QGA_LINE_MAX ((size_t)512)
#define SMIG_QGA_REQUEST_MAX ((size_t)96)

/*
 * A 0xff (which resets the agent's parser) then guest-sync-delimited with
 * id (1 .. 2^31-1) and a newline, in out (>= SMIG_QGA_REQUEST_MAX bytes).
 * The length, or a negative code.
 */
int smig_qga_sync_request(uint32_t id, char *out, size_t outlen);

/*
 * Looks in buf[0, len) for the agent's answer to the sync with id: a 0xff,
 * then the line {"return": id}. 1 when found; 0 when not (yet). *drop is
 * how many leading bytes can never be part of the answer and may go.
 */
int smig_qga_sync_answer(const uint8_t *buf, size_t len, uint32_t id, size_t *drop);

#endif
