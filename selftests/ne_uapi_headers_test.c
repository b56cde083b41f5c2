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
