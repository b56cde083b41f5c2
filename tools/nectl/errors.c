// SPDX-License-Identifier: GPL-2.0
/* The error table, its one-line printing and `nectl explain`. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

struct error_doc {
	int code;
	const char *title;
	const char *text;
};

static const struct error_doc error_docs[] = {
	{ E_MISSING_ARG, "Missing argument",
	  "A required option was not given. Run the command with --help to see its options." },
	{ E_CONFLICTING_ARGS, "Conflicting arguments",
	  "Two options that exclude each other were given (for example --enclave-id and --all,\n"
	  "or --config together with launch options). Give only one of them." },
	{ E_INVALID_ARG, "Invalid argument",
	  "An option has a value nectl cannot use (unknown option, value out of range,\n"
	  "reserved CID 0-3 or 4294967295, name too long...). The message names the option." },
	{ E_PROCESS_SPAWN, "Process spawn failure",
	  "nectl could not fork the holder process that keeps the enclave alive. The system\n"
	  "is probably out of processes or memory." },
	{ E_READ_FROM_DISK, "Read from disk failure",
	  "describe-enclaves, terminate-enclave or console could not read /proc, where\n"
	  "nectl finds the enclaves of the machine (nitro-cli: its sockets directory)." },
	{ E_EPOLL, "Event wait failure", "epoll or signalfd could not be set up." },
	{ E_LOCK, "Lock failure",
	  "nectl could not lock a file of its state directory (/run/nectl by default, or\n"
	  "$NECTL_RUN_DIR), with which launches take turns. Check that it is writable:\n"
	  "nectl run usually needs root." },
	{ E_CONFIG_PARSE, "JSON (de)serialization failure",
	  "The run --config file is not what nitro-cli's JSON reader takes: not valid JSON,\n"
	  "not an object, a required key missing (eif_path, memory_mib), or a key of the\n"
	  "wrong type: eif_path and enclave_name strings, memory_mib (MiB, no unit),\n"
	  "cpu_count and enclave_cid integers, debug_mode and attach_console true or false.\n"
	  "null is taken for cpu_count, cpu_ids, enclave_cid and enclave_name; unknown keys\n"
	  "are ignored. The message names the key.\n"
	  "describe-eif: the image's CustomMetadata is neither an object nor null, and its\n"
	  "keys cannot be shown flattened into Metadata (nitro-cli fails the same way)." },
	{ E_FILE_OPERATION, "File operation failure",
	  "A file nectl needs is missing or cannot be opened, read or written: the EIF of\n"
	  "run, its --config file, the input of pcr, the document of verify-attestation,\n"
	  "the state directory (/run/nectl, $NECTL_RUN_DIR) or /dev/nitro_enclaves. For the\n"
	  "device: load the driver (insmod ne_kvm.ko) and check that you are root or in its\n"
	  "group." },
	{ E_INSUFFICIENT_CPUS, "Insufficient CPUs available",
	  "The CPU pool has fewer free CPUs than requested, or is empty. Terminate other\n"
	  "enclaves, ask for fewer CPUs, or give the pool whole cores, never CPU 0 or its\n"
	  "siblings, while no enclave exists: echo 2-3 > /sys/module/ne_kvm/parameters/ne_cpus\n"
	  "The count must use whole cores (a multiple of the threads per core)." },
	{ E_MEMORY_REQUEST_TOO_SMALL, "Insufficient memory requested",
	  "The enclave needs memory: at least 64 MiB and at least 4 times the EIF file size,\n"
	  "so that its ramdisks can be unpacked. --memory 0 is refused too. Increase --memory." },
	{ E_INSUFFICIENT_MEMORY, "Insufficient hugepage memory available",
	  "Not enough free hugepages for the requested memory. The message lists what is\n"
	  "free and how many pages of which size are missing. Reserve more, for example\n"
	  "echo N > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages, or terminate an enclave." },
	{ E_IOCTL, "ioctl failure",
	  "The driver refused a request, as nitro-cli reports every refused ioctl. The message\n"
	  "names the call, the errno and the driver's reason (ne_last_error in the enclave\n"
	  "fd's fdinfo): KVM_CREATE_VM (no free enclave slot, driver not ready),\n"
	  "KVM_SET_USER_MEMORY_REGION (not hugetlb memory, wrong NUMA node, too many memory\n"
	  "ranges, memory already used), KVM_CREATE_VCPU, or NE_ENCLAVE_START (CID in use or\n"
	  "reserved, less than 64 MiB, or a core only partly given: use an even --cpu-count\n"
	  "on hosts with 2 threads per core)." },
	{ E_EIF, "EIF parsing failure",
	  "The EIF file is not valid: bad magic, unsupported version, sections outside the\n"
	  "file, overlapping or oversized sections, missing kernel/cmdline/ramdisk, or a CRC\n"
	  "mismatch. Rebuild it with nectl build-eif. describe-eif also reports a file it\n"
	  "cannot open this way, as nitro-cli does." },
	{ E_BOOT, "Enclave boot failure",
	  "The enclave did not send its heartbeat (one byte 0xB7 to vsock CID 3 port 9000) in\n"
	  "time, or the heartbeat listener could not be bound because the parent has no vsock\n"
	  "device with CID 3. The enclave was terminated. Check the kernel and init of the\n"
	  "image (run with --debug-mode and `nectl console`), or give it more memory." },
	{ E_HOLDER, "Enclave process connection failure",
	  "The holder process that owns the enclave (nitro-cli's enclave process) died or\n"
	  "did not answer. Its log is $NECTL_RUN_DIR/nectl.log (default /run/nectl/nectl.log)." },
	{ E_CONSOLE_CONNECT, "Console connection failure",
	  "The console is only available for enclaves started with --debug-mode or\n"
	  "--attach-console, and needs vsock in the parent (CID 0, port enclave CID + 10000)." },
	{ E_CONSOLE_READ, "Console read failure",
	  "The console stream ended before --disconnect-timeout: the enclave stopped or\n"
	  "rebooted (as nitro-cli reports it, issue #405), or reading failed." },
	{ E_CONSOLE_WRITE, "Console output failure", "Writing the console stream to stdout failed." },
	{ E_INTEGER_PARSE, "Integer parsing failure",
	  "The enclave's CID gives no console port: CID + 10000 is above 2^32 - 1. (An option\n"
	  "that is not a number is E03.)" },
	{ E_EIF_BUILD, "EIF build failure",
	  "nectl build-eif could not write the image: an input missing or empty, too many\n"
	  "ramdisks, a --metadata file that cannot be read or is not a JSON object, or an\n"
	  "output that cannot be written." },
	{ E_HASHER, "Hasher failure",
	  "pcr could not compute the PCR: SHA-384 failed, or the --signing-certificate file\n"
	  "is not a PEM certificate (nitro-cli reports both as hasher errors)." },
	{ E_NAMING, "Enclave naming failure",
	  "No running enclave has the --enclave-name given to terminate-enclave or console,\n"
	  "or run was given a name a running enclave already has, or that is not usable\n"
	  "(1-127 characters, no '/' or control characters)." },
	{ E_EIF_SIGNATURE, "EIF signature check failure",
	  "The EIF is signed and its signature does not hold: the signature section cannot be\n"
	  "read, its COSE_Sign1 does not verify with the key of the certificate stored with\n"
	  "it, it signs another PCR0 than the image's (the image changed after signing), or\n"
	  "(nectl run) the signing certificate is expired or not yet valid. nectl run refuses\n"
	  "such an image; nectl describe-eif shows it with SignatureCheck false. Rebuild and\n"
	  "sign it again with nectl build-eif --signing-certificate --private-key." },
	{ E_EIF_SIGNING, "EIF signing failure",
	  "nectl build-eif could not sign the image: the --signing-certificate is not a PEM\n"
	  "certificate, the --private-key is not an unencrypted PEM private key, the key is\n"
	  "not an EC key on P-256, P-384 or P-521 (what nitro-cli signs with), the key does\n"
	  "not belong to the certificate, or the signature of the written image does not\n"
	  "verify (an input changed while building). Nothing is written then." },
	{ E_NO_SUCH_ENCLAVE, "No such enclave",
	  "No running enclave has the given --enclave-id. Run `nectl describe-enclaves` to\n"
	  "list them. (nitro-cli fails to connect to a socket then: E11.)" },
	{ E_NOT_OURS, "Enclave not owned by nectl",
	  "The enclave was created by another program through the raw ioctls; only the\n"
	  "process holding its fd can terminate it (by closing the fd). The message names it." },
	{ E_TERMINATE, "Termination failure",
	  "The holder did not exit after being asked to terminate the enclave." },
	{ E_ATTESTATION_MALFORMED, "Malformed attestation document",
	  "The --document file is not an NSM attestation document (verification steps 1-2):\n"
	  "not CBOR, not a COSE_Sign1 (an array of 4, untagged or tag 18), a protected\n"
	  "header other than {1: -35} (ES384), a signature other than 96 bytes, or a payload\n"
	  "map with a missing, repeated, unknown or ill-typed key or a value out of its limits.\n"
	  "The message names the field. The file must hold the raw COSE bytes, not base64 or\n"
	  "another wrapping." },
	{ E_ATTESTATION_ROOT, "Attestation root unavailable",
	  "The root certificate to verify against could not be loaded. --root-cert must be a\n"
	  "PEM certificate (AWS's is AWS_NitroEnclaves_Root-G1.pem). Without --root-cert,\n"
	  "nectl uses ne-kvm's local attestation root, /var/lib/ne-kvm/attestation/root.pem\n"
	  "($NECTL_ATTESTATION_ROOT overrides the path); it is created once per installation,\n"
	  "and until it exists documents can only be verified with --root-cert." },
	{ E_ATTESTATION_CHAIN, "Certificate chain rejected",
	  "The document's certificates do not chain to the pinned root (steps 3 and 6): a\n"
	  "certificate is not DER, is not issued by the next one in\n"
	  "[certificate, cabundle[n-1] ... cabundle[1], pinned root], or a signature in the\n"
	  "chain does not verify. cabundle[0] is never trusted: the pinned root replaces it.\n"
	  "A document from another installation or from AWS needs that root's --root-cert." },
	{ E_ATTESTATION_VALIDITY, "Certificate not valid at the check time",
	  "A certificate of the chain is expired or not yet valid at the check time (step 4).\n"
	  "The check time is now unless --at gives one. The enclave's certificate lasts about\n"
	  "3 hours, so a stored document expires quickly: --at SECONDS or --at document checks\n"
	  "it at another time (only for tests and audits: it does not prove freshness)." },
	{ E_ATTESTATION_USAGE, "Certificate usage not allowed",
	  "A certificate of the chain may not be used where it is (step 5): a CA without\n"
	  "basic constraints CA:TRUE or key usage keyCertSign, a path length constraint that\n"
	  "the chain exceeds, or a leaf that is a CA, has a path length or lacks key usage\n"
	  "digitalSignature." },
	{ E_ATTESTATION_SIGNATURE, "Attestation signature invalid",
	  "The document's ES384 signature over the COSE Sig_structure\n"
	  "[\"Signature1\", protected, h'', payload] does not verify with the leaf\n"
	  "certificate's P-384 key (step 7): the document was changed after signing, or the\n"
	  "certificate is not the one that signed it." },
	{ E_ATTESTATION_PCR, "PCR mismatch",
	  "A PCR of the document differs from its --pcr N=HEX value, or the document has no\n"
	  "such PCR. PCR0-2 of an image: nectl describe-eif; all-zero PCR0-2 mean a\n"
	  "debug-mode enclave." },
	{ E_ATTESTATION_NONCE, "Nonce mismatch",
	  "The document's nonce is absent or differs from --nonce: it does not answer this\n"
	  "challenge (possibly a replay)." },
	{ E_ATTESTATION_USER_DATA, "User data mismatch",
	  "The document's user_data is absent or differs from --user-data." },
};

#define NR_ERROR_DOCS (sizeof(error_docs) / sizeof(error_docs[0]))

static const struct error_doc *find_doc(int code)
{
	size_t i;

	for (i = 0; i < NR_ERROR_DOCS; i++)
		if (error_docs[i].code == code)
			return &error_docs[i];
	return NULL;
}

const char *nectl_error_title(int code)
{
	const struct error_doc *d = find_doc(code);

	return d ? d->title : "Unspecified error";
}

int nectl_error(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "[ E%02d ] %s: ", code, nectl_error_title(code));
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (nectl explain E%02d)\n", code);
	return code;
}

void nectl_list_errors(void)
{
	size_t i;

	for (i = 0; i < NR_ERROR_DOCS; i++)
		printf("E%02d  %s\n", error_docs[i].code, error_docs[i].title);
}

int nectl_explain(const char *arg)
{
	const struct error_doc *d;
	char *end;
	long code;

	if (arg[0] == 'E' || arg[0] == 'e')
		arg++;
	code = strtol(arg, &end, 10);
	if (!arg[0] || *end || code < 0 || !(d = find_doc(code)))
		return -1;
	printf("E%02d  %s\n\n%s\n\nExit status: %d.\n", d->code, d->title, d->text, d->code);
	return 0;
}
