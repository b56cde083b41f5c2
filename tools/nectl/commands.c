// SPDX-License-Identifier: GPL-2.0
/* describe-enclaves, terminate-enclave and console. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "cli.h"
#include "commands.h"
#include "enclaves.h"
#include "errors.h"
#include "launch.h"

#define TERMINATE_WAIT_MS	15000
#define CONSOLE_CONNECT_TIMEOUT	20
#define CONSOLE_PORT_BASE	10000

static const char describe_help[] =
	"Usage: nectl describe-enclaves [--metadata]\n\n"
	"Prints a JSON array with one object per enclave on this machine: EnclaveName,\n"
	"EnclaveID, ProcessID, EnclaveCID, NumberOfCPUs, CPUIDs, MemoryMiB, State\n"
	"(RUNNING, TERMINATING or EMPTY = created but not started) and Flags (NONE or\n"
	"DEBUG_MODE), plus Measurements for enclaves started by nectl.  Enclaves created\n"
	"by other programs through the raw ioctls are listed too, without EnclaveName (as\n"
	"nitro-cli omits a name it does not have) and with Launcher = the command name of\n"
	"the process holding them.  --metadata adds ImageName, ImageVersion and Metadata\n"
	"from the EIF of nectl's enclaves, when it has a metadata section.\n";

static const char terminate_help[] =
	"Usage: nectl terminate-enclave (--enclave-id ID | --enclave-name NAME | --all)\n\n"
	"Asks the holder of each matching nectl enclave to close it, waits until its\n"
	"CPUs and memory are free, and prints {EnclaveName, EnclaveID, Terminated} per\n"
	"enclave.  ID may be the full EnclaveID or its enc<hex> part.  Enclaves held by\n"
	"other programs cannot be terminated by nectl (E71): stop that program.\n";

static const char console_help[] =
	"Usage: nectl console (--enclave-id ID | --enclave-name NAME) [--disconnect-timeout S]\n\n"
	"Streams the serial console of a debug-mode enclave (vsock CID 0, port\n"
	"enclave CID + 10000) to stdout, after nitro-cli's two lines \"Connecting to the\n"
	"console for enclave CID...\" and \"Successfully connected to the console.\", until the enclave closes it (E45: it stopped or\n"
	"rebooted, as nitro-cli reports it), or for at most S seconds (then exit 0; S = 0\n"
	"connects and leaves).  Output only.  An unknown NAME is E58, an unknown ID E70.\n";

static int describe_usage_error(const char *help, const char *what)
{
	fputs(help, stderr);
	return nectl_error(E_INVALID_ARG, "%s", what);
}

/* nitro-cli's E07: the list of enclaves could not be read. */
static int scan_failed(void)
{
	return nectl_error(E_READ_FROM_DISK, "cannot read /proc to find the enclaves: %s",
			   strerror(errno));
}

/* 0, a nectl error code, or -1 when the help was printed. */
static int parse_describe_enclaves(int argc, char **argv, bool *with_metadata)
{
	static const struct option options[] = {
		{ "metadata", no_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	*with_metadata = false;
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
		if (opt == 'h') {
			fputs(describe_help, stdout);
			return -1;
		}
		if (opt != 'm')
			return describe_usage_error(describe_help, "describe-enclaves takes only --metadata");
		*with_metadata = true;
	}
	if (optind < argc)
		return describe_usage_error(describe_help, "describe-enclaves takes only --metadata");
	return 0;
}

int cmd_describe_enclaves(int argc, char **argv)
{
	struct json_writer w;
	struct enclave *list;
	bool with_metadata;
	size_t count, i;
	int code = parse_describe_enclaves(argc, argv, &with_metadata);

	if (code)
		return code < 0 ? 0 : code;
	if (enclaves_scan(&list, &count))
		return scan_failed();
	json_init(&w, stdout);
	json_begin_array(&w);
	for (i = 0; i < count; i++)
		enclave_describe(&w, &list[i], with_metadata);
	json_end_array(&w);
	json_finish(&w);
	enclaves_free(list, count);
	return 0;
}

struct selector {
	const char *id;
	const char *name;
	bool all;
	int64_t disconnect_timeout;	/* seconds, or -1: none */
};

static int parse_selector(int argc, char **argv, struct selector *sel, bool allow_all,
			  bool allow_timeout, const char *help, bool *want_help)
{
	static const struct option options[] = {
		{ "enclave-id", required_argument, NULL, 'i' },
		{ "enclave-name", required_argument, NULL, 'n' },
		{ "all", no_argument, NULL, 'a' },
		{ "disconnect-timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int opt, chosen;

	memset(sel, 0, sizeof(*sel));
	sel->disconnect_timeout = -1;
	*want_help = false;
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+", options, NULL)) != -1) {
		switch (opt) {
		case 'i':
			sel->id = optarg;
			break;
		case 'n':
			sel->name = optarg;
			break;
		case 'a':
			if (!allow_all)
				return describe_usage_error(help, "--all is not an option of this command");
			sel->all = true;
			break;
		case 't':
			if (!allow_timeout)
				return describe_usage_error(help, "--disconnect-timeout is not an option of this command");
			/* 0 is taken, as nitro-cli takes it: connect, then leave at once. */
			if (parse_u64(optarg, 86400 * 365, false, &v))
				return nectl_error(E_INVALID_ARG,
						   "--disconnect-timeout '%s' must be a number of seconds (at most a year)",
						   optarg);
			sel->disconnect_timeout = v;
			break;
		case 'h':
			fputs(help, stdout);
			*want_help = true;
			return 0;
		default:
			return describe_usage_error(help, "unknown option or missing value");
		}
	}
	if (optind < argc)
		return describe_usage_error(help, "unexpected argument");
	chosen = !!sel->id + !!sel->name + sel->all;
	if (chosen == 0)
		return nectl_error(E_MISSING_ARG, "give --enclave-id or --enclave-name%s",
				   allow_all ? " or --all" : "");
	if (chosen > 1)
		return nectl_error(E_CONFLICTING_ARGS, "give only one of --enclave-id, --enclave-name%s",
				   allow_all ? ", --all" : "");
	return 0;
}

static bool selected(const struct enclave *e, const struct selector *sel)
{
	if (sel->all)
		return true;
	if (sel->name)
		return e->name && !strcmp(e->name, sel->name);
	return enclave_id_matches(e->slot_uid, sel->id);
}

/* nitro-cli: a name that matches no enclave is a naming error (E58); an id has no code. */
static int no_such_enclave(const struct selector *sel)
{
	if (sel->name)
		return nectl_error(E_NAMING, "no enclave is named '%s': see nectl describe-enclaves",
				   sel->name);
	return nectl_error(E_NO_SUCH_ENCLAVE, "no enclave has the id '%s': see nectl describe-enclaves",
			   sel->id);
}

/* The holder releases everything before it exits, so its exit is the end. */
static bool wait_for_exit(pid_t pid)
{
	int64_t deadline = nectl_now_ms() + TERMINATE_WAIT_MS;

	while (nectl_now_ms() < deadline) {
		if (kill(pid, 0) && errno == ESRCH)
			return true;
		usleep(20000);
	}
	return false;
}

static int terminate_one(const struct enclave *e, struct json_writer *w)
{
	char id[200];

	enclave_id(e->slot_uid, id, sizeof(id));
	if (!e->registry)
		return nectl_error(E_NOT_OURS, "enclave %s is held by process %d (%s), not by nectl: stop that process to terminate it",
				   id, (int)e->pid, e->comm);
	if (kill(e->pid, SIGTERM) && errno != ESRCH)
		return nectl_error(E_TERMINATE, "cannot signal the holder %d of %s: %s",
				   (int)e->pid, id, strerror(errno));
	if (!wait_for_exit(e->pid))
		return nectl_error(E_TERMINATE, "the holder %d of %s did not exit within %d s",
				   (int)e->pid, id, TERMINATE_WAIT_MS / 1000);
	fprintf(stderr, "Successfully terminated enclave %s.\n", id);
	json_init(w, stdout);
	enclave_write_terminated(w, e->name, id);
	json_finish(w);
	return 0;
}

int cmd_terminate_enclave(int argc, char **argv)
{
	struct json_writer w;
	struct selector sel;
	struct enclave *list;
	size_t count, i, matched = 0;
	bool want_help;
	int code, first_error = 0;

	code = parse_selector(argc, argv, &sel, true, false, terminate_help, &want_help);
	if (code || want_help)
		return code;
	if (enclaves_scan(&list, &count))
		return scan_failed();
	for (i = 0; i < count; i++) {
		if (!selected(&list[i], &sel))
			continue;
		matched++;
		code = terminate_one(&list[i], &w);
		if (code && !first_error)
			first_error = code;
	}
	enclaves_free(list, count);
	if (!matched && !sel.all)
		return no_such_enclave(&sel);
	return first_error;
}

int console_attach(uint64_t cid, int64_t disconnect_timeout)
{
	struct sockaddr_vm addr = {
		.svm_family = AF_VSOCK,
		.svm_cid = VMADDR_CID_HYPERVISOR,
	};
	struct timeval tv = { .tv_sec = CONSOLE_CONNECT_TIMEOUT };
	int64_t deadline = 0;
	char buf[1024];
	int fd;

	/* On stdout, before the stream, as nitro-cli prints them (println!). */
	printf("Connecting to the console for enclave %llu...\n", (unsigned long long)cid);
	fflush(stdout);
	/* nitro-cli's E47: the CID must give a 32-bit port. */
	if (cid > UINT32_MAX - CONSOLE_PORT_BASE)
		return nectl_error(E_INTEGER_PARSE, "enclave CID %llu gives no console port (CID + %d > %u)",
				   (unsigned long long)cid, CONSOLE_PORT_BASE, UINT32_MAX);
	addr.svm_port = (unsigned int)(cid + CONSOLE_PORT_BASE);

	fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return nectl_error(E_CONSOLE_CONNECT, "vsock is not available (%s): is the vsock device loaded?",
				   strerror(errno));
	setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		close(fd);
		return nectl_error(E_CONSOLE_CONNECT, "cannot connect to vsock CID 0 port %u: %s",
				   addr.svm_port, strerror(errno));
	}
	printf("Successfully connected to the console.\n");
	fflush(stdout);
	if (disconnect_timeout >= 0)
		deadline = nectl_now_ms() + disconnect_timeout * 1000;
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		int64_t left = deadline ? deadline - nectl_now_ms() : -1;
		ssize_t n;
		int r;

		if (deadline && left <= 0)
			break;
		r = poll(&p, 1, deadline ? (int)(left > 60000 ? 60000 : left) : -1);
		if (r < 0 && errno != EINTR) {
			close(fd);
			return nectl_error(E_CONSOLE_READ, "poll: %s", strerror(errno));
		}
		if (r <= 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n == 0) {
			/*
			 * nitro-cli's own read loop ends quietly on EOF, but on Nitro the
			 * enclave's end arrives as a failed read: its users get E45 when the
			 * enclave stops (issue #405), and so do nectl's.
			 */
			close(fd);
			return nectl_error(E_CONSOLE_READ,
					   "the enclave closed its console: it stopped or rebooted");
		}
		if (n < 0) {
			close(fd);
			return nectl_error(E_CONSOLE_READ, "console read: %s", strerror(errno));
		}
		if (fwrite(buf, 1, n, stdout) != (size_t)n || fflush(stdout)) {
			close(fd);
			return nectl_error(E_CONSOLE_WRITE, "writing the console to stdout: %s",
					   strerror(errno));
		}
	}
	close(fd);
	return 0;
}

int cmd_console(int argc, char **argv)
{
	struct selector sel;
	struct enclave *list;
	size_t count, i;
	uint64_t cid = 0, flags = 0;
	bool want_help, found = false;
	int code;

	code = parse_selector(argc, argv, &sel, false, true, console_help, &want_help);
	if (code || want_help)
		return code;
	if (enclaves_scan(&list, &count))
		return scan_failed();
	for (i = 0; i < count && !found; i++) {
		if (selected(&list[i], &sel)) {
			found = true;
			cid = list[i].cid;
			flags = list[i].flags;
		}
	}
	enclaves_free(list, count);
	if (!found)
		return no_such_enclave(&sel);
	if (!(flags & 1))
		return nectl_error(E_CONSOLE_CONNECT, "the enclave was not started in debug mode: restart it with --debug-mode");
	if (!cid)
		return nectl_error(E_CONSOLE_CONNECT, "the enclave has not been started yet");
	return console_attach(cid, sel.disconnect_timeout);
}
