/* SPDX-License-Identifier: GPL-2.0 */
#ifndef NECTL_ENCLAVES_H
#define NECTL_ENCLAVES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "eif.h"
#include "json.h"

#define NECTL_MAX_CPU_IDS	256

/* One enclave on the machine, as the driver shows it through fdinfo. */
struct enclave {
	uint64_t slot_uid;
	pid_t pid;			/* a process holding its VM fd */
	int fd;
	char comm[32];
	char state[16];			/* ne_state: init, running, stopped */
	uint64_t cid;
	uint64_t flags;
	uint64_t mem_bytes;
	uint64_t vcpus;
	unsigned int nr_cpu_ids;
	unsigned int cpu_ids[NECTL_MAX_CPU_IDS];
	char last_error[160];
	/* From nectl's registry, when a live nectl holder owns it. */
	struct json_value *registry;
	const char *name;		/* points into registry, or NULL */
	bool terminating;
	/*
	 * The holder the slot's registry entry names (-1: no entry), and the
	 * last process it was tried for: a scan reads an entry once per
	 * process it may belong to, not once per copy of a VM fd.
	 */
	pid_t entry_holder;
	pid_t entry_tried;
};

/* The state directory: $NECTL_RUN_DIR or /run/nectl. */
const char *nectl_run_dir(void);
/* How nectl_lock() waits for a lock that another process holds. */
struct nectl_lock_wait {
	unsigned int limit_s;	/* give up after this long (ETIMEDOUT); 0: no limit */
	int cancel_fd;		/* stop waiting (EINTR) once it is readable; -1: none */
	/* after a second of waiting, told once who holds it (0: unknown) */
	void (*waiting)(void *ctx, const char *file, pid_t holder);
	void *ctx;
	pid_t holder;		/* out, at ETIMEDOUT: who held it (0: unknown) */
};

/*
 * Creates the directory and takes an exclusive flock on one of its files,
 * waiting as @w says (NULL: for ever, quietly).  Returns the fd that holds
 * the lock, or -1 with errno (ETIMEDOUT, EINTR: see struct nectl_lock_wait).
 */
int nectl_lock(const char *file, struct nectl_lock_wait *w);
void nectl_unlock(int fd);
void nectl_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* CLOCK_MONOTONIC in milliseconds. */
int64_t nectl_now_ms(void);

/*
 * Makes a process name read from /proc printable: every byte outside
 * ' '..'~' becomes '?' (the name is its process's to choose).
 */
void enclave_printable(char *s);

/* Every enclave on the machine (deduplicated by slot uid), joined with the registry. */
int enclaves_scan(struct enclave **list, size_t *count);
void enclaves_free(struct enclave *list, size_t count);

/* "<board asset tag or i-0000000000000000>-enc<slot uid hex>" */
void enclave_id(uint64_t slot_uid, char *buf, size_t len);
/* Accepts a full EnclaveID, or its "enc<hex>" tail, or the bare hex slot uid. */
bool enclave_id_matches(uint64_t slot_uid, const char *id);

/* Parses "2-3,5" into ids; returns the count or -1. */
int parse_cpu_list(const char *text, unsigned int *ids, unsigned int max);

/* Reads "key: value" from /proc/PID/fdinfo/FD (pid 0 = self); 0 when found. */
int fdinfo_read(pid_t pid, int fd, const char *key, char *value, size_t len);

/* What a holder records about its enclave in the registry. */
struct registry_entry {
	const char *name;
	uint64_t slot_uid;
	pid_t holder;
	const char *state;		/* STARTING, RUNNING, TERMINATING */
	const char *eif_path;
	const struct eif_info *measured;	/* its PCRs, or NULL until measured */
	const struct json_value *metadata;	/* the EIF's metadata section, or NULL */
	bool no_heartbeat;
};

/*
 * The registry file's text (malloc'ed, *len set), or NULL when out of
 * memory.  It nests the EIF's metadata one level deeper than the image
 * does, so registry_parse() allows one level more than json_parse().
 */
char *registry_render(const struct registry_entry *e, size_t *len);
struct json_value *registry_parse(const char *text, size_t len);

/* Registry: $RUN_DIR/<slot hex>.json, written atomically. */
int registry_write(uint64_t slot_uid, const char *text, size_t len);
void registry_remove(uint64_t slot_uid);
/*
 * The names of the running enclaves the registry speaks for, read in one
 * pass of the directory and sorted into @names (@n of them; NULL when
 * none): an entry named after its slot counts when its holder is alive,
 * the entry is root's or the holder's user's, and the holder holds a VM fd
 * of that slot wherever this process can see its fds (root: always).
 * Returns 0, or -1 with errno (the directory cannot be read, no memory).
 * Free with names_free().
 */
int registry_taken_names(char ***names, size_t *n);
bool names_contain(char *const *names, size_t n, const char *name);
void names_free(char **names, size_t n);

/*
 * Writes the describe-enclaves object for e, with ImageName, ImageVersion
 * and Metadata when asked and known; keys nitro-cli omits when it has no
 * value (EnclaveName, Measurements, the image's) are left out, not null.
 */
void enclave_describe(struct json_writer *w, const struct enclave *e, bool with_metadata);
/* terminate-enclave's {EnclaveName, EnclaveID, Terminated}; no name, no key. */
void enclave_write_terminated(struct json_writer *w, const char *name, const char *id);

#endif
