// SPDX-License-Identifier: GPL-2.0
/*
 * tools/vm/tsc-khz: prints the host's TSC rate in kHz, for tools/ne-vm to
 * give its TCG guests (tsc_early_khz=), as the device's launcher gives its
 * enclave VMs: both measure it with tools/qemu/hw/ne/ne-tsc.c.  Exit
 * status 1, saying why, when the TSC is no clock a guest can keep or the
 * host is too loaded to measure it: the guest then calibrates for itself.
 */
#include <stdio.h>

#include "ne-tsc.h"

int main(void)
{
	const char *why;
	uint64_t khz;

	/* (ne-vm's guests are told tsc=reliable: the host's own clock only) */
	if (ne_tsc_khz(true, &khz, &why)) {
		fprintf(stderr, "tsc-khz: %s\n", why);
		return 1;
	}
	printf("%llu\n", (unsigned long long)khz);
	return 0;
}
