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
#   make debug-kernel  the parent VM's debug kernel (cached once per machine)
#                  and ne_kvm.ko built against it

BUILD ?= $(CURDIR)/build
export NE_BUILD := $(BUILD)

ABI := $(shell cat $(BUILD)/kernel/abi 2>/dev/null)
ifeq ($(ABI),)
ABI := $(shell ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | \
	       tail -1 | sed 's|.*/linux-headers-||')
endif
KDIR ?= /usr/src/linux-headers-$(ABI)

.PHONY: all module tools selftests deps qemu debug-kernel lint check run bench clean help

all: module tools selftests

module:
	@test -d "$(KDIR)" || { echo "No kernel headers at '$(KDIR)': run 'make deps' or pass KDIR=" >&2; exit 1; }
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

tools:
	$(MAKE) -C tools

selftests:
	$(MAKE) -C selftests

deps:
	tools/setup

qemu:
	tools/qemu/build

debug-kernel:
	tools/debug-kernel module

lint: module
	tools/lint

check:
	tools/check

run:
	tools/run

bench:
	tools/bench

clean:
	-test -d "$(KDIR)" && $(MAKE) -C $(KDIR) M=$(CURDIR) clean
	$(MAKE) -C tools clean
	$(MAKE) -C selftests clean

help:
	@sed -n '3,14p' Makefile | sed 's/^# \{0,1\}//'
