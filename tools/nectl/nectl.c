// SPDX-License-Identifier: GPL-2.0
/*
 * nectl: launcher for ne-kvm enclaves and EIF tool, speaking nitro-cli's JSON.
 * This file: command dispatch, help, build-eif, describe-eif, explain.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "allocator.h"
#include "cli.h"
#include "commands.h"
#include "eif.h"
#include "eif_sig.h"
#include "errors.h"
#include "json.h"
#include "launch.h"
#include "metadata.h"

#ifndef NECTL_VERSION
#error "NECTL_VERSION comes from debian/changelog (tools/nectl/Makefile)"
#endif
#define MAX_CMDLINE		(64 * 1024)

static const char main_help[] =
	"Usage: nectl COMMAND [OPTIONS]\n\n"
	"Launch and manage Nitro Enclaves through the ne-kvm driver (/dev/nitro_enclaves),\n"
	"and build or inspect enclave images (EIF v4).  JSON goes to stdout, progress and\n"
	"errors to stderr; the exit status is the error code (see `nectl explain`).\n\n"
	"Commands:\n"
	"  build-eif           build an EIF from a kernel, a command line and ramdisks,\n"
	"                      signed with --signing-certificate and --private-key\n"
	"  describe-eif        show an EIF's version, CRC and signature checks, PCRs, metadata\n"
	"  run                 launch an enclave (alias: run-enclave)\n"
	"  describe-enclaves   list every enclave on this machine\n"
	"  terminate-enclave   terminate enclaves started by nectl\n"
	"  console             stream a debug-mode enclave's console\n"
	"  verify-attestation  verify an NSM attestation document against a pinned root\n"
	"  pcr                 the PCR of a file, or PCR8 of a signing certificate\n"
	"  explain CODE        explain an error code (E27 or 27); without CODE, list them\n"
	"  allocate            reserve the hugepages and the CPU pool that\n"
	"                      /etc/nitro_enclaves/allocator.yaml asks for (as root)\n"
	"  help, --help        this text; `nectl COMMAND --help` for a command\n"
	"  --version           print the version\n\n"
	"Environment: NECTL_RUN_DIR (state and log directory, default /run/nectl),\n"
	"SOURCE_DATE_EPOCH (BuildTime of build-eif), NECTL_ATTESTATION_ROOT (the local\n"
	"attestation root of verify-attestation).\n";

static const char build_help[] =
	"Usage: nectl build-eif --kernel BZIMAGE --cmdline TEXT --ramdisk CPIO [--ramdisk CPIO...]\n"
	"                       [--name NAME] [--version VERSION] [--metadata FILE.json]\n"
	"                       [--signing-certificate CERT.pem --private-key KEY.pem] -o OUT.eif\n\n"
	"Writes an EIF version 4 (big-endian; sections kernel, cmdline, metadata, ramdisks\n"
	"and, when signed, signature; CRC-32 over everything but the CRC field) and prints\n"
	"its measurements as nitro-cli build-enclave does.  NAME defaults to OUT without\n"
	"\".eif\", VERSION to 1.0.  --metadata adds a JSON object as CustomMetadata.  At\n"
	"most 29 ramdisks (28 when signed).\n\n"
	"--signing-certificate and --private-key sign the image as nitro-cli does: a\n"
	"signature section holding the certificate file and a COSE_Sign1 over PCR0, and\n"
	"PCR8 (the certificate's measurement) among the measurements.  The key must be an\n"
	"unencrypted PEM EC key on P-256, P-384 or P-521 (ES256/ES384/ES512) that belongs\n"
	"to the certificate; otherwise E60, and nothing is written.\n";

static const char describe_eif_help[] =
	"Usage: nectl describe-eif --eif-path FILE   (or: nectl describe-eif FILE)\n\n"
	"Checks FILE and prints {EifVersion, Measurements{PCR0,PCR1,PCR2[,PCR8]}, IsSigned,\n"
	"[SigningCertificate], CheckCRC, [SignatureCheck], ImageName, ImageVersion,\n"
	"Metadata}, as nitro-cli does.  For a signed image, PCR8 measures the signing\n"
	"certificate, SigningCertificate shows its issuer, algorithm, dates and signature,\n"
	"and SignatureCheck tells whether the signature verifies with the certificate's key\n"
	"and signs this image's PCR0.  The sections are read in file order, as nitro-cli\n"
	"reads them, and must follow one another from the header to the end of the file.\n"
	"The metadata is typed as nitro-cli types it: ImageName, ImageVersion and the five\n"
	"BuildMetadata fields strings, DockerInfo and CustomMetadata present (null for no\n"
	"metadata at all).  A malformed file (trailing bytes, signature section and\n"
	"metadata included) is refused with E35, a CustomMetadata that is neither an\n"
	"object nor null with E17 (nitro-cli cannot show it either); a CRC mismatch\n"
	"prints the JSON and exits with E35, a failed signature check with E59.\n";

static const char run_help[] =
	"Usage: nectl run --eif-path FILE --memory SIZE --cpu-count N [--enclave-cid CID]\n"
	"                 [--debug-mode] [--attach-console] [--enclave-name NAME] [--no-heartbeat]\n"
	"       nectl run --config FILE.json [--attach-console] [--no-heartbeat]\n\n"
	"Launches an enclave and leaves it running under a small holder process, then\n"
	"prints {EnclaveName, EnclaveID, ProcessID, EnclaveCID, NumberOfCPUs, CPUIDs,\n"
	"MemoryMiB}.  Memory comes from hugepages, exactly the amount asked (rounded up\n"
	"to 2 MiB) whenever the free pages allow it.  The enclave must send its 0xB7\n"
	"heartbeat to vsock CID 3 port 9000 within nitro-cli's timeout (at least 180 s);\n"
	"otherwise it is terminated (E36).  A signed image is refused (E59) unless its\n"
	"signature verifies with the certificate stored in it, signs the image's PCR0,\n"
	"and the certificate is valid now.\n\n"
	"  --memory SIZE         MiB (512 or 512M), GiB (2G) or TiB (1T), as nitro-cli takes it;\n"
	"                        at least 64 MiB and at least 4 x the EIF size (E26)\n"
	"  --cpu-count N         vCPUs; the driver uses whole cores (N even with 2 threads/core)\n"
	"  --enclave-cid CID     0 or absent: chosen by the hypervisor; 1-3 are reserved\n"
	"  --debug-mode          make the console available (nectl console)\n"
	"  --attach-console      debug mode, and stream the console after the start\n"
	"  --enclave-name NAME   default: the EIF file name, with _1, _2... if taken\n"
	"  --config FILE.json    the launch options as nitro-cli reads them: eif_path and\n"
	"                        memory_mib (MiB) required; cpu_count, enclave_cid,\n"
	"                        enclave_name (or null); debug_mode, attach_console\n"
	"                        (true/false); unknown keys ignored (E17 for a wrong type)\n"
	"  --no-heartbeat        TESTING ONLY: do not bind vsock nor wait for the heartbeat;\n"
	"                        the run JSON then says \"Heartbeat\": \"SKIPPED (--no-heartbeat)\"\n\n"
	"Environment: NECTL_HEARTBEAT_TIMEOUT=S overrides the heartbeat timeout (tests);\n"
	"NECTL_LOCK_TIMEOUT=S how long to wait for the registry lock (default 30 s; tests).\n";

static int read_file_text(const char *path, size_t max, char **out, size_t *len)
{
	FILE *f = fopen(path, "re");
	size_t n;
	char *buf;

	if (!f)
		return -1;
	buf = malloc(max + 1);
	if (!buf) {
		fclose(f);
		return -1;
	}
	n = fread(buf, 1, max + 1, f);
	fclose(f);
	if (n > max) {
		free(buf);
		errno = EFBIG;
		return -1;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

/* The "Linux version" string a bzImage carries (setup header kernel_version). */
static void bzimage_version(const char *path, char *out, size_t len)
{
	unsigned char hdr[0x210];
	char ver[128];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	snprintf(out, len, "unknown");
	if (fd < 0)
		return;
	if (pread(fd, hdr, sizeof(hdr), 0) == (ssize_t)sizeof(hdr) && !memcmp(hdr + 0x202, "HdrS", 4)) {
		unsigned int off = (hdr[0x20E] | hdr[0x20F] << 8) + 0x200;

		n = pread(fd, ver, sizeof(ver) - 1, off);
		if (n > 0) {
			ver[n] = '\0';
			ver[strcspn(ver, " ")] = '\0';
			if (ver[0])
				snprintf(out, len, "%s", ver);
		}
	}
	close(fd);
}

static char *build_metadata(const char *name, const char *version, const char *kernel,
			    const struct json_value *custom)
{
	char stamp[32], kver[128], *text = NULL;
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	time_t when = sde ? (time_t)strtoll(sde, NULL, 10) : time(NULL);
	struct json_writer w;
	struct utsname uts;
	struct tm tm;
	size_t len;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	gmtime_r(&when, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S+00:00", &tm);
	bzimage_version(kernel, kver, sizeof(kver));
	if (uname(&uts))
		strcpy(uts.sysname, "Linux");
	json_init(&w, f);
	json_begin_object(&w);
	json_key(&w, "ImageName");
	json_string(&w, name);
	json_key(&w, "ImageVersion");
	json_string(&w, version);
	json_key(&w, "BuildMetadata");
	json_begin_object(&w);
	json_key(&w, "BuildTime");
	json_string(&w, stamp);
	json_key(&w, "BuildTool");
	json_string(&w, "nectl");
	json_key(&w, "BuildToolVersion");
	json_string(&w, NECTL_VERSION);
	json_key(&w, "OperatingSystem");
	json_string(&w, uts.sysname);
	json_key(&w, "KernelVersion");
	json_string(&w, kver);
	json_end_object(&w);
	json_key(&w, "DockerInfo");
	json_null(&w);
	json_key(&w, "CustomMetadata");
	if (custom)
		json_tree(&w, custom);
	else
		json_null(&w);
	json_end_object(&w);
	fclose(f);
	return text;
}

struct build_args {
	const char *kernel, *cmdline, *name, *version, *metadata, *output;
	const char *signing_cert, *private_key;
	const char *ramdisks[EIF_MAX_RAMDISKS];
	unsigned int nr_ramdisks;
};

static int parse_build_args(int argc, char **argv, struct build_args *a, bool *help)
{
	static const struct option options[] = {
		{ "kernel", required_argument, NULL, 'k' },
		{ "cmdline", required_argument, NULL, 'c' },
		{ "ramdisk", required_argument, NULL, 'r' },
		{ "name", required_argument, NULL, 'n' },
		{ "version", required_argument, NULL, 'v' },
		{ "metadata", required_argument, NULL, 'm' },
		{ "output", required_argument, NULL, 'o' },
		{ "output-file", required_argument, NULL, 'o' },
		{ "signing-certificate", required_argument, NULL, 'S' },
		{ "private-key", required_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	memset(a, 0, sizeof(*a));
	*help = false;
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+o:h", options, NULL)) != -1) {
		switch (opt) {
		case 'k': a->kernel = optarg; break;
		case 'c': a->cmdline = optarg; break;
		case 'n': a->name = optarg; break;
		case 'v': a->version = optarg; break;
		case 'm': a->metadata = optarg; break;
		case 'o': a->output = optarg; break;
		case 'S': a->signing_cert = optarg; break;
		case 'K': a->private_key = optarg; break;
		case 'r':
			if (a->nr_ramdisks == EIF_MAX_RAMDISKS)
				return nectl_error(E_EIF_BUILD, "more than %d ramdisks: an EIF has at most %d sections",
						   EIF_MAX_RAMDISKS, EIF_MAX_SECTIONS);
			a->ramdisks[a->nr_ramdisks++] = optarg;
			break;
		case 'h':
			*help = true;
			return 0;
		default:
			fputs(build_help, stderr);
			return nectl_error(E_INVALID_ARG, "unknown option or missing value: '%s'",
					   argv[optind - 1]);
		}
	}
	if (optind < argc)
		return nectl_error(E_INVALID_ARG, "unexpected argument '%s'", argv[optind]);
	if (!a->kernel || !a->cmdline || !a->nr_ramdisks || !a->output)
		return nectl_error(E_MISSING_ARG, "build-eif needs --kernel, --cmdline, at least one --ramdisk and -o (missing: %s%s%s%s)",
				   a->kernel ? "" : "--kernel ", a->cmdline ? "" : "--cmdline ",
				   a->nr_ramdisks ? "" : "--ramdisk ", a->output ? "" : "-o");
	if (strlen(a->cmdline) > MAX_CMDLINE)
		return nectl_error(E_INVALID_ARG, "--cmdline is longer than %d bytes", MAX_CMDLINE);
	if (!a->signing_cert != !a->private_key)
		return nectl_error(E_MISSING_ARG, "--signing-certificate and --private-key go together (missing: %s)",
				   a->signing_cert ? "--private-key" : "--signing-certificate");
	if (a->signing_cert && a->nr_ramdisks > EIF_MAX_RAMDISKS - 1)
		return nectl_error(E_EIF_BUILD, "%u ramdisks: a signed EIF holds at most %d (its signature is a section too)",
				   a->nr_ramdisks, EIF_MAX_RAMDISKS - 1);
	return 0;
}

static int load_custom_metadata(const char *path, struct json_value **out)
{
	char *text, err[160];
	size_t len;

	*out = NULL;
	if (!path)
		return 0;
	if (read_file_text(path, 256 * 1024, &text, &len))
		return nectl_error(E_EIF_BUILD, "cannot read --metadata %s: %s", path, strerror(errno));
	/* The metadata section nests it one level deeper: keep that readable by nitro-cli. */
	*out = json_parse_depth(text, len, JSON_MAX_DEPTH - 1, err, sizeof(err));
	free(text);
	if (!*out)
		return nectl_error(E_EIF_BUILD, "--metadata %s is not valid JSON: %s%s", path, err,
				   strstr(err, "nested deeper") ?
				   " (the image's metadata section adds a level, and nitro-cli reads at most 127)" : "");
	if ((*out)->type != JSON_OBJECT) {
		json_free(*out);
		return nectl_error(E_EIF_BUILD, "--metadata %s must hold a JSON object", path);
	}
	return 0;
}

/* The signature section over the PCR0 that the inputs give. */
static int sign_inputs(const struct build_args *a, const struct eif_build_input *in,
		       struct eif_signer *signer, struct eif_sig_bytes *section)
{
	uint8_t pcr0[SHA384_DIGEST_LENGTH];
	char err[512];

	if (eif_signer_load(a->signing_cert, a->private_key, signer, err, sizeof(err)))
		return nectl_error(E_EIF_SIGNING, "%s", err);
	if (eif_measure_pcr0(in, pcr0, err, sizeof(err)))
		return nectl_error(E_EIF_BUILD, "%s", err);
	if (eif_sign_section(signer, pcr0, section, err, sizeof(err)))
		return nectl_error(E_EIF_SIGNING, "%s", err);
	return 0;
}

/*
 * The written image's signature is checked like describe-eif checks it:
 * an input that changed between measuring and writing would otherwise go
 * unnoticed until run.  A certificate outside its dates only warns: the
 * image is right, and run will say E59 while the date is wrong.
 */
static int check_signed_output(const char *path, struct eif_info *info)
{
	struct eif_sig_check c;
	char when[160];
	int code = 0;

	eif_sig_check(info, time(NULL), &c);
	if (!eif_sig_verified(&c)) {
		unlink(path);
		code = nectl_error(E_EIF_SIGNING, "the signature of the written image does not verify (%s): did an input change while building? %s removed",
				   c.reason, path);
	} else if (c.validity) {
		eif_sig_validity_reason(&c, when, sizeof(when));
		fprintf(stderr, "Warning: %s: nectl run refuses the image while it is so (E59).\n",
			when);
	}
	eif_sig_check_release(&c);
	return code;
}

/* Measure what was written, through the reader: one source of truth. */
static int read_back(const char *path, bool is_signed, struct eif_info *info)
{
	char err[512];
	int fd, code;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || eif_read(fd, info, true, err, sizeof(err))) {
		if (fd >= 0)
			close(fd);
		return nectl_error(E_EIF_BUILD, "cannot read back %s: %s", path,
				   fd < 0 ? strerror(errno) : err);
	}
	close(fd);
	code = is_signed ? check_signed_output(path, info) : 0;
	if (code)
		eif_info_release(info);
	return code;
}

static void default_name(const char *output, char *name, size_t len)
{
	const char *base = strrchr(output, '/');
	size_t n;

	base = base ? base + 1 : output;
	n = strlen(base);
	if (n > 4 && !strcmp(base + n - 4, ".eif"))
		n -= 4;
	snprintf(name, len, "%.*s", (int)n, base);
}

static int cmd_build_eif(int argc, char **argv)
{
	struct eif_sig_bytes section = { NULL, 0 };
	struct eif_signer signer = { 0 };
	struct eif_build_input in;
	struct build_args a;
	struct json_value *custom;
	struct eif_info info;
	struct json_writer w;
	char err[512], name[NECTL_NAME_MAX + 1];
	char *meta = NULL;
	bool help;
	int code;

	code = parse_build_args(argc, argv, &a, &help);
	if (help)
		fputs(build_help, stdout);
	if (code || help)
		return code;
	code = load_custom_metadata(a.metadata, &custom);
	if (code)
		return code;
	default_name(a.output, name, sizeof(name));
	fprintf(stderr, "Start building the Enclave Image...\n");
	meta = build_metadata(a.name ? a.name : name, a.version ? a.version : "1.0", a.kernel, custom);
	json_free(custom);
	if (!meta)
		return nectl_error(E_EIF_BUILD, "out of memory");
	in = (struct eif_build_input){ a.kernel, a.cmdline, a.ramdisks, a.nr_ramdisks, meta, NULL, 0 };
	if (a.signing_cert) {
		code = sign_inputs(&a, &in, &signer, &section);
		in.signature = section.data;
		in.signature_len = section.len;
	}
	if (!code && eif_write(&in, a.output, err, sizeof(err)))
		code = nectl_error(E_EIF_BUILD, "%s", err);
	if (!code)
		code = read_back(a.output, a.signing_cert != NULL, &info);
	free(meta);
	free(section.data);
	eif_signer_release(&signer);
	if (code)
		return code;
	fprintf(stderr, "Enclave Image successfully created.\n");
	json_init(&w, stdout);
	json_begin_object(&w);
	metadata_write_measurements(&w, &info);
	json_end_object(&w);
	json_finish(&w);
	eif_info_release(&info);
	return 0;
}

/* 0 with *path set, a nectl error code, or -1 when the help was printed. */
static int parse_describe_args(int argc, char **argv, const char **path)
{
	static const struct option options[] = {
		{ "eif-path", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	*path = NULL;
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
		if (opt == 'h') {
			fputs(describe_eif_help, stdout);
			return -1;
		}
		if (opt != 'e' || *path)
			return nectl_error(E_INVALID_ARG, "%s: '%s' (see describe-eif --help)",
					   opt == 'e' ? "the EIF is given twice" : "unknown option or missing value",
					   argv[optind - 1]);
		*path = optarg;
	}
	/* nitro-cli takes only --eif-path; the bare file is nectl's shorthand. */
	if (optind < argc && !*path)
		*path = argv[optind++];
	if (optind < argc)
		return nectl_error(E_INVALID_ARG, "unexpected argument '%s' (see describe-eif --help)",
				   argv[optind]);
	if (!*path)
		return nectl_error(E_MISSING_ARG, "describe-eif needs the EIF: --eif-path FILE");
	return 0;
}

struct described {
	struct eif_info info;
	struct json_value *meta;
	struct eif_sig_check sig;
};

static void described_release(struct described *d)
{
	json_free(d->meta);
	eif_sig_check_release(&d->sig);
	eif_info_release(&d->info);
}

/*
 * Reads and checks path.  A signature section whose certificate cannot be
 * read is a malformed image (E35), as for nitro-cli: there is no PCR8 to
 * show.  A signature that does not hold is shown, then reported.
 */
static int describe_read(const char *path, struct described *d)
{
	char err[512];
	int fd, code;

	memset(d, 0, sizeof(*d));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return nectl_error(E_EIF, "cannot open %s: %s", path, strerror(errno));
	if (eif_read(fd, &d->info, true, err, sizeof(err))) {
		close(fd);
		return nectl_error(E_EIF, "%s: %s", path, err);
	}
	close(fd);
	if (d->info.metadata) {
		code = metadata_parse(d->info.metadata, d->info.metadata_len, &d->meta, err,
				      sizeof(err));
		if (code)
			return nectl_error(code, "%s: %s", path, err);
	}
	if (d->info.is_signed) {
		eif_sig_check(&d->info, time(NULL), &d->sig);
		if (!d->sig.decoded)
			return nectl_error(E_EIF, "%s: %s", path, d->sig.reason);
	}
	return 0;
}

static void describe_print(const struct described *d)
{
	struct json_writer w;

	json_init(&w, stdout);
	json_begin_object(&w);
	json_key(&w, "EifVersion");
	json_u64(&w, d->info.version);
	metadata_write_measurements(&w, &d->info);
	json_key(&w, "IsSigned");
	json_bool(&w, d->info.is_signed);
	if (d->info.is_signed)
		eif_sig_write_certificate(&w, d->sig.cert);
	json_key(&w, "CheckCRC");
	json_bool(&w, d->info.crc_ok);
	if (d->info.is_signed) {
		json_key(&w, "SignatureCheck");
		json_bool(&w, eif_sig_verified(&d->sig));
	}
	metadata_write_identity(&w, d->meta);
	json_end_object(&w);
	json_finish(&w);
}

/* The exit status: the CRC first (the file is corrupt), then the signature. */
static int describe_verdict(const char *path, const struct described *d)
{
	bool signed_ok = !d->info.is_signed || eif_sig_verified(&d->sig);
	char when[160];

	if (d->info.is_signed && signed_ok && d->sig.validity) {
		eif_sig_validity_reason(&d->sig, when, sizeof(when));
		fprintf(stderr, "Note: %s: nectl run refuses the image while it is so (E59).\n", when);
	}
	if (!d->info.crc_ok) {
		if (!signed_ok)
			fprintf(stderr, "The signature check failed too: %s.\n", d->sig.reason);
		return nectl_error(E_EIF, "%s: CRC mismatch (stored %08x, computed %08x): the file is corrupt",
				   path, d->info.stored_crc, d->info.computed_crc);
	}
	if (!signed_ok)
		return nectl_error(E_EIF_SIGNATURE, "%s: %s", path, d->sig.reason);
	return 0;
}

static int cmd_describe_eif(int argc, char **argv)
{
	struct described d;
	const char *path;
	int code;

	code = parse_describe_args(argc, argv, &path);
	if (code)
		return code < 0 ? 0 : code;
	code = describe_read(path, &d);
	if (!code) {
		describe_print(&d);
		code = describe_verdict(path, &d);
	}
	described_release(&d);
	return code;
}

static int cmd_run(int argc, char **argv)
{
	struct run_options opt;
	char err[512];
	bool help;
	int code = run_options_parse(argc, argv, &opt, &help, err, sizeof(err));

	if (help) {
		fputs(run_help, stdout);
		return 0;
	}
	if (code)
		return nectl_error(code, "%s", err);
	return nectl_run(&opt);
}

static const char explain_help[] =
	"Usage: nectl explain [CODE | --error-code CODE]\n\n"
	"Explains an error code (E27 or 27), as nitro-cli explain --error-code does;\n"
	"without CODE, lists them all.\n";

static int cmd_explain(int argc, char **argv)
{
	static const struct option options[] = {
		{ "error-code", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *code = NULL;
	int opt;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
		if (opt == 'h') {
			fputs(explain_help, stdout);
			return 0;
		}
		if (opt != 'e' || code)
			return nectl_error(E_INVALID_ARG, "explain takes one error code (see explain --help)");
		code = optarg;
	}
	if (optind < argc && !code)
		code = argv[optind++];
	if (optind < argc)
		return nectl_error(E_INVALID_ARG, "explain takes one error code (see explain --help)");
	if (!code) {
		nectl_list_errors();
		return 0;
	}
	if (nectl_explain(code))
		return nectl_error(E_INVALID_ARG, "unknown error code '%s': `nectl explain` lists them",
				   code);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int argc, char **argv);
	} commands[] = {
		{ "build-eif", cmd_build_eif },
		{ "describe-eif", cmd_describe_eif },
		{ "run", cmd_run },
		{ "run-enclave", cmd_run },
		{ "describe-enclaves", cmd_describe_enclaves },
		{ "terminate-enclave", cmd_terminate_enclave },
		{ "console", cmd_console },
		{ "verify-attestation", cmd_verify_attestation },
		{ "pcr", cmd_pcr },
		{ "explain", cmd_explain },
		{ "allocate", cmd_allocate },
	};
	size_t i;

	if (argc < 2) {
		fputs(main_help, stderr);
		return nectl_error(E_MISSING_ARG, "no command given");
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		fputs(main_help, stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("nectl %s\n", NECTL_VERSION);
		return 0;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	return nectl_error(E_INVALID_ARG, "unknown command '%s' (see nectl --help)", argv[1]);
}
