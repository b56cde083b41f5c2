// SPDX-License-Identifier: GPL-2.0
/*
 * ne_basic_test: the driver is loaded, bound to the device, and offers
 * /dev/nitro_enclaves as documented.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/ne_kvm.h>

#include "kselftest_harness.h"
#include "ne_test_util.h"

TEST(module_is_loaded)
{
	struct stat st;

	ASSERT_EQ(0, stat("/sys/module/ne_kvm", &st)) {
		TH_LOG("ne_kvm is not loaded");
	}
	EXPECT_TRUE(S_ISDIR(st.st_mode));
}

TEST(device_is_bound_to_the_driver)
{
	char dev[PATH_MAX], link[PATH_MAX + 16], target[PATH_MAX];
	ssize_t len;

	ASSERT_EQ(0, ne_find_pci_device(dev, sizeof(dev)));
	snprintf(link, sizeof(link), "%s/driver", dev);
	len = readlink(link, target, sizeof(target) - 1);
	ASSERT_LT(0, len) {
		TH_LOG("%s is bound to no driver", dev);
	}
	target[len] = '\0';
	EXPECT_STREQ("nitro_enclaves", strrchr(target, '/') + 1);
}

TEST(dev_node_is_a_0660_char_device)
{
	struct stat st;

	ASSERT_EQ(0, stat(NE_DEV_PATH, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0660, st.st_mode & 07777);
}

TEST(api_version_is_kvm_api_version)
{
	int fd = open(NE_DEV_PATH, O_RDWR | O_CLOEXEC);

	ASSERT_LE(0, fd);
	EXPECT_EQ(KVM_API_VERSION, ioctl(fd, KVM_GET_API_VERSION, 0));
	close(fd);
}

int main(int argc, char **argv)
{
	ne_require_device();
	return test_harness_run(argc, argv);
}
