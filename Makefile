# SPDX-License-Identifier: GPL-2.0
#
# ne-kvm top-level targets.  The module's kbuild part is in Kbuild.
#
#   make           the module and the tools
#   make deps      install what is missing (Debian packages, guest kernel)
#   make check     every check, ending with "N passed, N failed"
#   make run       boot the parent VM, launch the sample enclave, talk to it
#   make lint      W=1, sparse and checkpatch
#   make bench     benchmarks that print numbers
#   make qemu      the project's qemu-system-x86_64
#   make fuzz      the ioctl fuzzer in the parent VM: SECONDS=N (default 300),
#                  FUZZ_ARGS='--seed N ...' (see ne_fuzz --help), NE_KERNEL=
#   make debug-kernel  the parent VM's debug kernel (cached once per machine)
#                  and ne_kvm.ko built against it
#   make deb       the Debian packages ne-kvm-dkms and nectl in build/deb
#                  (and lintian on them)

BUILD ?= $(CURDIR)/build
export NE_BUILD := $(BUILD)

ABI := $(shell cat $(BUILD)/kernel/abi 2>/dev/null)
ifeq ($(ABI),)
ABI := $(shell ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | \
	       tail -1 | sed 's|.*/linux-headers-||')
endif
KDIR ?= /usr/src/linux-headers-$(ABI)

.PHONY: all module tools selftests deps qemu debug-kernel deb lint check run bench fuzz fuzz-selftest clean help

all: module tools selftests

module:
	@test -d "$(KDIR)" || { echo "No kernel headers at '$(KDIR)': run 'make deps' or pass KDIR=" >&2; exit 1; }
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

tools:
	$(MAKE) -C tools

selftests:
	$(MAKE) -C selftests
	$(MAKE) -C selftests/relay

deps:
	tools/setup

qemu:
	tools/qemu/build

debug-kernel:
	tools/debug-kernel module

deb:
	tools/deb

lint: module
	tools/lint

check:
	tools/check

run:
	tools/run

bench:
	tools/bench

# The ioctl fuzzer (selftests/ne_fuzz.c) in a parent VM with the device's
# test controls.  NE_KERNEL is the guest kernel: 'debug' (KASAN, lockdep,
# kmemleak) when tools/ne-vm offers --kernel debug, else Debian's.
SECONDS ?= 300
NE_KERNEL ?= $(shell tools/ne-vm --help 2>/dev/null | grep -q -- '--kernel.*debug' && echo debug || echo debian)
FUZZ_VM = tools/ne-vm $(if $(filter-out debian,$(NE_KERNEL)),--kernel $(NE_KERNEL)) \
	  --ne-pci test-controls=on,boot-enclaves=off
FUZZ := $(BUILD)/selftests/ne_fuzz

fuzz: module selftests
	$(FUZZ_VM) --timeout $$(($(SECONDS) + 900)) -- $(FUZZ) --seconds $(SECONDS) $(FUZZ_ARGS)

# The fuzzer's own test: its checks must catch a kept fd and kept pins.
fuzz-selftest: module selftests
	$(FUZZ_VM) --timeout 900 -- sh -c '$(FUZZ) --self-test fd --seconds 10 && \
		$(FUZZ) --self-test pin --seconds 10'

# The module's products, in this directory only: kbuild's own clean (make
# -C KDIR M=. clean) deletes every *.ko and *.o under the tree, the guest
# kernel's modules in build/kernel included (tools/make-tests).
# (6.12's kbuild adds .module-common.o)
MODULE_PRODUCTS = *.o .*.o *.ko *.mod *.mod.c .*.cmd Module.symvers modules.order

clean:
	rm -f $(wildcard $(MODULE_PRODUCTS))
	$(MAKE) -C tools clean
	$(MAKE) -C selftests clean

help:
	@sed -n '3,17p' Makefile | sed 's/^# \{0,1\}//'
