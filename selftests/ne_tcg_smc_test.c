// SPDX-License-Identifier: GPL-2.0
/*
 * ne_tcg_smc_test: an instruction rewritten through a breakpoint, as the
 * kernel's text_poke_bp() rewrites a static branch while other CPUs run
 * it, is executed as rewritten once the breakpoint is gone.
 *
 * The kernel writes INT3 over the first byte, then the rest, then the new
 * first byte, through a second mapping of the page (text_poke()).  A CPU
 * that hits the INT3 meanwhile backs up over it once memory no longer
 * holds it (kprobe_int3_handler()) and runs the instruction again.  QEMU
 * 7.2's MTTCG kept translation blocks that outlived such writes:
 *   - a store invalidates the page's blocks before it writes, so another
 *     vCPU translating in between links a block of the old bytes after
 *     the invalidation: with an INT3 in it, every CPU hit that INT3
 *     forever (the parent VM hung at boot so, all vCPUs in exc_int3() at
 *     sched_clock_cpu()); tools/qemu/patches/tcg-int3-stale-block.patch
 *     makes a one-byte INT3 check memory and translate again when the
 *     byte there is no INT3;
 *   - the writer's TLB entry could lose TLB_NOTDIRTY while the page had
 *     blocks (the dirty bitmap was sampled outside the TLB lock), and its
 *     later writes invalidated nothing: the threads ran a value tens of
 *     thousands of rewrites old; tools/qemu/patches/
 *     tcg-notdirty-under-tlb-lock.patch samples it under the lock.
 *
 * Here, a page of code is mapped twice (executable, and writable as
 * text_poke()'s alias); threads call "mov $imm, %eax; ret" there while
 * the main thread rewrites imm through an INT3, as the kernel does, and
 * their SIGTRAP handler backs up as the kernel's does.  A thread that
 * traps NE_STUCK_TRAPS times in a row where memory holds no INT3 is
 * stuck on a stale block; once they are gone, a last rewrite must make
 * the code return its value.  Without the patches, 9 of 28 runs in a
 * parent VM with 6 CPUs failed.  On real hardware every run passes.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdlib.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "kselftest_harness.h"

#define NE_ROUNDS	60000
#define NE_STUCK_TRAPS	100000
#define NE_SYNC_SPINS	2000
#define NE_POKE_SECONDS	10
#define NE_LAST_VALUE	(-1)	/* never written before the last rewrite */
/* Where sched_clock_tick() was in its page: a block not at a page start */
#define NE_CODE_OFFSET	0x5f0
#define NE_MAX_THREADS	8

#define OP_MOV_EAX	0xb8
#define OP_INT3		0xcc
#define OP_RET		0xc3

static volatile uint8_t *alias;		/* the writable mapping */
static int (*code)(void);		/* the executable one */
static atomic_int stop;
static atomic_long stuck, traps;
static __thread sigjmp_buf escape;
static __thread long in_a_row;

/* As kprobe_int3_handler(): the INT3 is gone, so run the instruction again. */
static void on_trap(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;
	greg_t *rip = &uc->uc_mcontext.gregs[REG_RIP];
	uintptr_t at = (uintptr_t)*rip - 1;

	(void)sig;
	(void)si;
	if (at != (uintptr_t)code)
		abort();	/* not this test's breakpoint */
	atomic_fetch_add(&traps, 1);
	if (alias[at - (uintptr_t)code] == OP_INT3) {
		in_a_row = 0;		/* the rewrite is under way: wait */
	} else if (++in_a_row == NE_STUCK_TRAPS) {
		atomic_fetch_add(&stuck, 1);
		siglongjmp(escape, 1);
	}
	*rip = at;
}

/* Runs the code until told to stop; false when stuck on a stale block. */
static bool run_code_until_stop(int *last)
{
	if (sigsetjmp(escape, 1))
		return false;
	in_a_row = 0;
	do {
		*last = code();
		in_a_row = 0;
	} while (!atomic_load(&stop));
	return true;
}

static void *run_code(void *arg)
{
	int last;

	(void)arg;
	run_code_until_stop(&last);
	return NULL;
}

/* As text_poke_sync(): give the other CPUs time to run the new bytes. */
static void sync_cores(void)
{
	volatile int i;

	__sync_synchronize();
	for (i = 0; i < NE_SYNC_SPINS; i++)
		;
}

/* One text_poke_bp() of the immediate: INT3, the tail, the first byte. */
static void poke(int32_t imm)
{
	alias[0] = OP_INT3;
	sync_cores();
	memcpy((void *)(alias + 1), &imm, sizeof(imm));
	sync_cores();
	alias[0] = OP_MOV_EAX;
	sync_cores();
}

TEST(int3_rewrite_is_executed_as_rewritten)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int nr = cpus - 1 < NE_MAX_THREADS ? cpus - 1 : NE_MAX_THREADS;
	struct sigaction sa = { .sa_sigaction = on_trap,
				.sa_flags = SA_SIGINFO | SA_NODEFER };
	pthread_t threads[NE_MAX_THREADS];
	int fd, i, round, rounds, last = 0;
	void *alias_page, *code_page;
	time_t deadline;

	if (nr < 1)
		SKIP(return, "needs 2 CPUs, has %ld", cpus);
	fd = memfd_create("ne_tcg_smc", MFD_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, getpagesize()));
	alias_page = mmap(NULL, getpagesize(), PROT_READ | PROT_WRITE,
			  MAP_SHARED, fd, 0);
	code_page = mmap(NULL, getpagesize(), PROT_READ | PROT_EXEC, MAP_SHARED,
			 fd, 0);
	ASSERT_NE(MAP_FAILED, alias_page);
	ASSERT_NE(MAP_FAILED, code_page);
	alias = (uint8_t *)alias_page + NE_CODE_OFFSET;
	code = (int (*)(void))((uint8_t *)code_page + NE_CODE_OFFSET);
	alias[0] = OP_MOV_EAX;
	alias[5] = OP_RET;
	ASSERT_EQ(0, sigaction(SIGTRAP, &sa, NULL));

	for (i = 0; i < nr; i++)
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, run_code, NULL));
	/* (within NE_POKE_SECONDS: the harness gives a test 30 s) */
	deadline = time(NULL) + NE_POKE_SECONDS;
	for (round = 1; round <= NE_ROUNDS && !atomic_load(&stuck); round++) {
		poke(round);
		if (time(NULL) > deadline)
			break;
	}
	rounds = round > NE_ROUNDS ? NE_ROUNDS : round;
	atomic_store(&stop, 1);
	for (i = 0; i < nr; i++)
		pthread_join(threads[i], NULL);
	TH_LOG("%d rounds, %d threads, %ld breakpoints hit", rounds, nr,
	       atomic_load(&traps));
	EXPECT_EQ(0, atomic_load(&stuck)) {
		TH_LOG("stuck on an INT3 no longer in memory (a stale translation block)");
	}
	/*
	 * Nothing runs or translates the code now: one more rewrite must
	 * invalidate whatever block of it the threads left, so that the
	 * last value is what runs.  (While threads run it, a vCPU that
	 * translates old bytes can still link its block after the last
	 * write when its host thread is descheduled in between: TCG
	 * invalidates before it stores.  Only a block with an INT3 in it
	 * is recovered then, which is all that the kernel's rewrites need.)
	 */
	poke(NE_LAST_VALUE);
	ASSERT_TRUE(run_code_until_stop(&last));
	EXPECT_EQ(NE_LAST_VALUE, last);
	munmap(alias_page, getpagesize());
	munmap(code_page, getpagesize());
	close(fd);
}

TEST_HARNESS_MAIN
