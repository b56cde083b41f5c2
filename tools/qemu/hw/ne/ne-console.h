/*
 * The enclave debug console: a vsock stream server at CID 0
 * (VMADDR_CID_HYPERVISOR), port enclave CID + 10000, as the Nitro
 * hypervisor offers it to `nitro-cli console` (shared/spec/enclave-launch.md,
 * section 2.7).
 *
 * One NEConsole per ne-pci device is a local service of the parent's vsock
 * relay router; it speaks virtio-vsock to the parent guest's driver itself.
 * Each enclave's serial output is an NEConsoleSource: it keeps the last
 * NE_CONSOLE_HISTORY bytes, so a client that connects late still gets the
 * boot log, then live output.  The console is output-only: whatever a client
 * writes is discarded.
 *
 * Everything runs under the BQL.  ne_console_free() must run before the
 * router is freed.
 *
 * Copyright (c) 2026 The ne-kvm authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef HW_NE_NE_CONSOLE_H
#define HW_NE_NE_CONSOLE_H

#include "hw/ne/vsock-relay.h"

#define NE_CONSOLE_CID          0       /* VMADDR_CID_HYPERVISOR */
#define NE_CONSOLE_PORT_BASE    10000   /* port = enclave CID + this */
#define NE_CONSOLE_HISTORY      (1024 * 1024)

typedef struct NEConsole NEConsole;
typedef struct NEConsoleSource NEConsoleSource;

/* The console server of one ne-pci device, at CID 0 in @router. */
NEConsole *ne_console_new(VsockRelayRouter *router);
/*
 * Closes every connection (RST) and unregisters the service.  Sources must
 * be closed first; any still draining are freed here.
 */
void ne_console_free(NEConsole *c);

/*
 * The serial console of the enclave with @cid.  Its output is served at
 * port cid + 10000 only when @served (debug mode); otherwise a REQUEST to
 * that port gets RST like any unknown port.
 */
NEConsoleSource *ne_console_source_new(NEConsole *c, uint64_t cid,
                                       bool served);
/* New console output from the enclave. */
void ne_console_source_write(NEConsoleSource *src, const void *data,
                             size_t len);
/*
 * The enclave is gone: each open connection still gets the output it has
 * not received yet (as far as its credit allows, later as credit comes
 * back), then a SHUTDOWN (both directions); the source is freed once that
 * is done (or at once if there are no connections).  @src must not be used
 * after this call.
 */
void ne_console_source_close(NEConsoleSource *src);

#endif
