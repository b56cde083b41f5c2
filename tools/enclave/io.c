// SPDX-License-Identifier: GPL-2.0
/*
 * Writing whole buffers: see io.h.
 */
#include <errno.h>
#include <unistd.h>
#include "io.h"

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}
