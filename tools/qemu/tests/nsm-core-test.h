/*
 * What nsm-core-test.c takes from outside any header it can include: the
 * allocators it wraps (glibc) and ASan's allocation hooks (the plain
 * build replaces malloc(), the ASan build watches ASan's).
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef NSM_CORE_TEST_H
#define NSM_CORE_TEST_H

#include <stddef.h>

#ifdef NSM_TEST_ASAN
int __sanitizer_install_malloc_and_free_hooks(
    void (*malloc_hook)(const volatile void *, size_t), /* ASan's types */
    void (*free_hook)(const volatile void *));          /* ASan's types */
#else
void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);
#endif

#endif /* NSM_CORE_TEST_H */
