// SPDX-License-Identifier: GPL-2.0
/* CRC-32/ISO-HDLC, table driven, reflected polynomial 0xEDB88320. */
#include "crc32.h"

static uint32_t crc_table[256];

static void crc32_build_table(void)
{
	uint32_t i, bit, c;

	for (i = 0; i < 256; i++) {
		c = i;
		for (bit = 0; bit < 8; bit++)
			c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t crc32_update(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;

	/* Entry 1 is never zero once built: a cheap "already built" flag. */
	if (!crc_table[1])
		crc32_build_table();
	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}
