/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The KVM-shaped user API of the Nitro Enclaves driver.
 */
#ifndef _NE_KVM_COMPAT_H
#define _NE_KVM_COMPAT_H

#define NE_MISC_NAME		"nitro_enclaves"

#endif /* _NE_KVM_COMPAT_H */
