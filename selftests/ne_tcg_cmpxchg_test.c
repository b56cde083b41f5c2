// SPDX-License-Identifier: GPL-2.0
/*
 * ne_tcg_cmpxchg_test: CMPXCHG8B and CMPXCHG16B change ZF and nothing else
 * of the arithmetic flags, as the SDM says.
 *
 * QEMU 7.2's translator tracks the flags' producer (cc_op) lazily and
 * called the cmpxchg8b/16b helpers without writing it back first, so the
 * helpers computed the flags with a stale cc_op.  After a CMP in the same
 * translation block that followed a POPF, they took the CMP's source
 * operand for the flags, and then for the whole EFLAGS image that PUSHF
 * saves: with a pointer there, a later POPF set TF (a #DB in the kernel)
 * or DF (string operations run backwards).  SLUB's this_cpu_cmpxchg16b
 * is on every allocation's fast path; both the parent VM and the enclaves
 * run under this TCG.  tools/qemu/patches/tcg-cmpxchg-flags.patch writes
 * cc_op back before the helpers are called.
 *
 * Each case runs POPF (which ends the block, so that the stale cc_op is
 * EFLAGS), a CMP whose source operand has CF, SF and OF set while its
 * result has none of them, then the exchange, and reads the flags with
 * PUSHF.  The expected value is the CMP's own flags with ZF replaced by
 * the exchange's outcome, as the same CPU computes them.  On real
 * hardware every case passes too.
 */
#include <stdint.h>
#include <stdio.h>

#include "kselftest_harness.h"

#define FL_CF	0x001UL
#define FL_PF	0x004UL
#define FL_AF	0x010UL
#define FL_ZF	0x040UL
#define FL_SF	0x080UL
#define FL_TF	0x100UL
#define FL_DF	0x400UL
#define FL_OF	0x800UL
#define FL_ARITH (FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF | FL_OF)

/* CMP's operands: the source has CF|SF|OF, dst - src has none of them. */
#define CMP_SRC	(FL_CF | FL_SF | FL_OF)
#define CMP_DST	0x1000UL

/* The flags of "cmp CMP_SRC, CMP_DST" alone, after the same POPF. */
static unsigned long cmp_flags(void)
{
	unsigned long flags;

	asm volatile("pushfq\n\t"
		     "popfq\n\t"
		     "cmp %[src], %[dst]\n\t"
		     "pushfq\n\t"
		     "pop %[flags]"
		     : [flags] "=r" (flags)
		     : [src] "r" (CMP_SRC), [dst] "r" (CMP_DST)
		     : "cc");
	return flags;
}

struct pair16 {
	uint64_t lo, hi;
} __attribute__((aligned(16)));

/* POPF, CMP, LOCK CMPXCHG16B: the flags PUSHF then saves. */
static unsigned long cmpxchg16b_flags(struct pair16 *mem, uint64_t expect_lo,
				      uint64_t expect_hi, uint64_t lo, uint64_t hi)
{
	unsigned long flags;

	asm volatile("pushfq\n\t"
		     "popfq\n\t"
		     "cmp %[src], %[dst]\n\t"
		     "lock cmpxchg16b %[mem]\n\t"
		     "pushfq\n\t"
		     "pop %[flags]"
		     : [flags] "=r" (flags), [mem] "+m" (*mem),
		       "+a" (expect_lo), "+d" (expect_hi)
		     : [src] "r" (CMP_SRC), [dst] "r" (CMP_DST),
		       "b" (lo), "c" (hi)
		     : "cc");
	return flags;
}

/* POPF, CMP, LOCK CMPXCHG8B: the flags PUSHF then saves. */
static unsigned long cmpxchg8b_flags(uint64_t *mem, uint32_t expect_lo,
				     uint32_t expect_hi, uint32_t lo, uint32_t hi)
{
	unsigned long flags;

	asm volatile("pushfq\n\t"
		     "popfq\n\t"
		     "cmp %[src], %[dst]\n\t"
		     "lock cmpxchg8b %[mem]\n\t"
		     "pushfq\n\t"
		     "pop %[flags]"
		     : [flags] "=r" (flags), [mem] "+m" (*mem),
		       "+a" (expect_lo), "+d" (expect_hi)
		     : [src] "r" (CMP_SRC), [dst] "r" (CMP_DST),
		       "b" (lo), "c" (hi)
		     : "cc");
	return flags;
}

/* What the flags must be: the CMP's, with ZF the exchange's outcome. */
static unsigned long expected(int exchanged)
{
	return (cmp_flags() & FL_ARITH & ~FL_ZF) | (exchanged ? FL_ZF : 0);
}

TEST(cmp_alone_leaves_cf_sf_of_clear)
{
	/* The premise of the cases below: CMP's result differs from its source. */
	unsigned long flags = cmp_flags();

	EXPECT_EQ(0, flags & (FL_CF | FL_SF | FL_OF))
		TH_LOG("cmp set %#lx", flags & FL_ARITH);
}

TEST(cmpxchg16b_that_exchanges_sets_zf_only)
{
	struct pair16 mem = { 1, 2 };
	unsigned long flags = cmpxchg16b_flags(&mem, 1, 2, 3, 4);

	EXPECT_EQ(3, mem.lo);
	EXPECT_EQ(4, mem.hi);
	EXPECT_EQ(expected(1), flags & FL_ARITH)
		TH_LOG("flags %#lx, want %#lx", flags & FL_ARITH, expected(1));
	EXPECT_EQ(0, flags & (FL_TF | FL_DF));
}

TEST(cmpxchg16b_that_fails_clears_zf_only)
{
	struct pair16 mem = { 1, 2 };
	unsigned long flags = cmpxchg16b_flags(&mem, 1, 5, 3, 4);

	EXPECT_EQ(1, mem.lo);
	EXPECT_EQ(2, mem.hi);
	EXPECT_EQ(expected(0), flags & FL_ARITH)
		TH_LOG("flags %#lx, want %#lx", flags & FL_ARITH, expected(0));
	EXPECT_EQ(0, flags & (FL_TF | FL_DF));
}

TEST(cmpxchg8b_that_exchanges_sets_zf_only)
{
	uint64_t mem = 0x200000001ULL;
	unsigned long flags = cmpxchg8b_flags(&mem, 1, 2, 3, 4);

	EXPECT_EQ(0x400000003ULL, mem);
	EXPECT_EQ(expected(1), flags & FL_ARITH)
		TH_LOG("flags %#lx, want %#lx", flags & FL_ARITH, expected(1));
	EXPECT_EQ(0, flags & (FL_TF | FL_DF));
}

TEST(cmpxchg8b_that_fails_clears_zf_only)
{
	uint64_t mem = 0x200000001ULL;
	unsigned long flags = cmpxchg8b_flags(&mem, 1, 5, 3, 4);

	EXPECT_EQ(0x200000001ULL, mem);
	EXPECT_EQ(expected(0), flags & FL_ARITH)
		TH_LOG("flags %#lx, want %#lx", flags & FL_ARITH, expected(0));
	EXPECT_EQ(0, flags & (FL_TF | FL_DF));
}

TEST_HARNESS_MAIN
