/* SPDX-License-Identifier: GPL-2.0 */
#ifndef NECTL_CRC32_H
#define NECTL_CRC32_H

#include <stddef.h>
#include <stdint.h>

/*
 * CRC-32/ISO-HDLC (zlib's crc32): start with crc = 0, feed the pieces in
 * order, each call returns the running value.
 */
uint32_t crc32_update(uint32_t crc, const void *data, size_t len);

#endif
