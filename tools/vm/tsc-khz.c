// SPDX-License-Identifier: GPL-2.0
/*
 * tools/vm/tsc-khz: prints the host's TSC rate in kHz, measured with
 * tools/qemu/hw/ne/ne-tsc.c as the device's launcher measures it for its
 * enclave VMs (tsc_early_khz=): for tools/ne-vm's TCG guests, and with
 * --enclave for the bench's bare boot of an enclave image.  Exit status 1,
 * saying why, when the TSC is no clock a guest can keep or the host is too
 * loaded to measure it: the guest then calibrates for itself.  2: usage.
 */
#include <stdio.h>
#include <string.h>

#include "ne-tsc.h"

static const char usage[] =
	"usage: tsc-khz [--enclave]\n"
	"Prints the host's TSC rate in kHz, for a TCG guest's tsc_early_khz=.\n"
	"  (default)   the rule of tools/ne-vm, whose guests are told tsc=reliable:\n"
	"              a constant TSC that is also the host kernel's clocksource\n"
	"  --enclave   the launcher's rule for enclave VMs: any constant TSC\n"
	"Exit status: 0 printed; 1 no usable TSC or the host too loaded (why on\n"
	"stderr); 2 usage.\n";

int main(int argc, char **argv)
{
	bool host_clock = true;
	const char *why;
	uint64_t khz;

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "--enclave")) {
		host_clock = false;
	} else if (argc != 1) {
		fputs(usage, stderr);
		return 2;
	}
	if (ne_tsc_khz(host_clock, &khz, &why)) {
		fprintf(stderr, "tsc-khz: %s\n", why);
		return 1;
	}
	printf("%llu\n", (unsigned long long)khz);
	return 0;
}
