// SPDX-License-Identifier: GPL-2.0
/*
 * ne_sample: launch an enclave the way a KVM VMM launches a VM.
 *
 *   open /dev/nitro_enclaves, KVM_GET_API_VERSION, KVM_CREATE_VM,
 *   mmap hugepages, write the image at guest-physical 8 MiB,
 *   KVM_SET_USER_MEMORY_REGION, KVM_CREATE_VCPU (one per vCPU),
 *   NE_ENCLAVE_START.
 *
 * The enclave lives as long as the VM fd: without --wait the sample exits
 * right after the start, which terminates the enclave.  The CPU pool must
 * hold a whole core (e.g. echo 2-3 > /sys/module/ne_kvm/parameters/ne_cpus).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/mman.h>
#include <linux/ne_kvm.h>

#define MIB			(1ULL << 20)

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: ne_sample [--image FILE] [--mem MIB] [--vcpus N] [--cid CID]\n"
		"                 [--debug] [--wait]\n"
		"Launch one enclave through the KVM-shaped API of /dev/nitro_enclaves.\n"
		"  --image FILE  the enclave image (EIF) to load at guest-physical 8 MiB\n"
		"                (default: a small placeholder)\n"
		"  --mem MIB     memory to donate, in MiB, a multiple of 2 (default 128)\n"
		"  --vcpus N     vCPUs to donate (default 2, one whole core)\n"
		"  --cid CID     the enclave's vsock CID (default 0: the hypervisor picks)\n"
		"  --debug       start in debug mode (console available)\n"
		"  --wait        keep the enclave until it stops on its own (poll HUP)\n"
		"Exit status: 0 when the enclave started, 1 on error, 2 on bad usage.\n");
}

static void die(const char *what)
{
	fprintf(stderr, "ne_sample: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Copies the image (or a placeholder) into the memory behind GPA 8 MiB. */
static void write_image(const char *path, char *mem, uint64_t mem_size)
{
	static const char placeholder[] = "ne_sample placeholder image\n";
	char *dst = mem + NE_IMAGE_LOAD_GPA;
	uint64_t room = mem_size - NE_IMAGE_LOAD_GPA;
	ssize_t n, total = 0;
	int fd;

	if (!path) {
		memcpy(dst, placeholder, sizeof(placeholder));
		return;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(path);
	while ((n = read(fd, dst + total, room - total)) > 0)
		total += n;
	if (n < 0)
		die(path);
	if ((uint64_t)total == room && read(fd, dst, 1) > 0) {
		fprintf(stderr, "ne_sample: %s does not fit in %llu MiB\n",
			path, (unsigned long long)(room / MIB));
		exit(1);
	}
	close(fd);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "image", required_argument, NULL, 'i' },
		{ "mem", required_argument, NULL, 'm' },
		{ "vcpus", required_argument, NULL, 'v' },
		{ "cid", required_argument, NULL, 'c' },
		{ "debug", no_argument, NULL, 'd' },
		{ "wait", no_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	struct kvm_userspace_memory_region region = { 0 };
	struct ne_enclave_start start = { 0 };
	const char *image = NULL;
	uint64_t mem_size = 128 * MIB;
	int vcpus = 2, wait = 0, opt, sys_fd, vm_fd, i;
	char *mem;

	while ((opt = getopt_long(argc, argv, "i:m:v:c:dwh", opts, NULL)) != -1) {
		switch (opt) {
		case 'i': image = optarg; break;
		case 'm': mem_size = strtoull(optarg, NULL, 0) * MIB; break;
		case 'v': vcpus = atoi(optarg); break;
		case 'c': start.enclave_cid = strtoull(optarg, NULL, 0); break;
		case 'd': start.flags |= NE_ENCLAVE_DEBUG_MODE; break;
		case 'w': wait = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || vcpus < 1 || mem_size % NE_MEM_ALIGN ||
	    mem_size <= NE_IMAGE_LOAD_GPA) {
		usage(stderr);
		return 2;
	}

	/* The system fd, exactly as /dev/kvm. */
	sys_fd = open("/dev/nitro_enclaves", O_RDWR | O_CLOEXEC);
	if (sys_fd < 0)
		die("/dev/nitro_enclaves");
	if (ioctl(sys_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		die("KVM_GET_API_VERSION");

	/* One VM fd = one enclave = one slot of the device. */
	vm_fd = ioctl(sys_fd, KVM_CREATE_VM, 0);
	if (vm_fd < 0)
		die("KVM_CREATE_VM");
	close(sys_fd);

	/* Guest memory: hugepages, written before they are donated. */
	mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB |
		   MAP_POPULATE, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap of 2 MiB hugepages");
	write_image(image, mem, mem_size);

	region.slot = 0;
	region.flags = 0;
	region.guest_phys_addr = 0;
	region.memory_size = mem_size;
	region.userspace_addr = (uintptr_t)mem;
	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region))
		die("KVM_SET_USER_MEMORY_REGION");

	/* Each vCPU fd stands for one parent CPU taken from the pool. */
	for (i = 0; i < vcpus; i++)
		if (ioctl(vm_fd, KVM_CREATE_VCPU, i) < 0)
			die("KVM_CREATE_VCPU (is ne_cpus set?)");

	if (ioctl(vm_fd, NE_ENCLAVE_START, &start))
		die("NE_ENCLAVE_START");
	printf("enclave started: cid %llu, %llu MiB, %d vCPUs\n",
	       (unsigned long long)start.enclave_cid,
	       (unsigned long long)(mem_size / MIB), vcpus);
	fflush(stdout);

	if (wait) {
		struct pollfd pfd = { .fd = vm_fd, .events = POLLIN };

		while (poll(&pfd, 1, -1) < 0 && errno == EINTR)
			;
		printf("enclave stopped\n");
	}
	/* Closing the VM fd (here, by exiting) terminates the enclave. */
	return 0;
}
