// SPDX-License-Identifier: GPL-2.0
/*
 * ne_uapi_headers_test: <linux/ne_kvm.h> and the upstream
 * <linux/nitro_enclaves.h> in one program.  The build is the first test
 * (selftests are built with -Werror: a redefined name fails it); the run
 * checks that what the two headers share means the same.
 */
#include <stddef.h>

#include <linux/nitro_enclaves.h>
#include <linux/ne_kvm.h>

#include "kselftest_harness.h"

TEST(debug_flag_is_upstreams)
{
	EXPECT_EQ(1, NE_ENCLAVE_DEBUG_MODE);
	EXPECT_EQ((__u64)NE_ENCLAVE_DEBUG_MODE, NE_ENCLAVE_START_FLAGS);
	EXPECT_EQ(0, NE_ENCLAVE_START_FLAGS & NE_ENCLAVE_START_MAX_FLAG_VAL);
}

/*
 * NE_ENCLAVE_DEBUG_MODE is an int; the mask of known flags is a __u64, so
 * that flags & ~NE_ENCLAVE_START_FLAGS sees bits 32-63 whatever the
 * upstream constant's type (as 1U, ~ would clear them).
 */
TEST(start_flags_mask_is_u64)
{
	EXPECT_EQ(sizeof(__u64), sizeof(NE_ENCLAVE_START_FLAGS));
	EXPECT_EQ(0xfffffffffffffffeULL, (__u64)~NE_ENCLAVE_START_FLAGS);
	EXPECT_NE(0, (1ULL << 32) & ~NE_ENCLAVE_START_FLAGS);
}

TEST(start_is_upstreams_byte_for_byte)
{
	EXPECT_EQ(sizeof(struct ne_enclave_start_info),
		  sizeof(struct ne_enclave_start));
	EXPECT_EQ(offsetof(struct ne_enclave_start_info, flags),
		  offsetof(struct ne_enclave_start, flags));
	EXPECT_EQ(offsetof(struct ne_enclave_start_info, enclave_cid),
		  offsetof(struct ne_enclave_start, enclave_cid));
	EXPECT_EQ((unsigned long)NE_START_ENCLAVE,
		  (unsigned long)NE_ENCLAVE_START);
}

TEST_HARNESS_MAIN
