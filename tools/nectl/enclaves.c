// SPDX-License-Identifier: GPL-2.0
/*
 * Listing the enclaves of the machine.  The driver gives every VM fd an
 * fdinfo with the enclave's state, so scanning /proc/PID/fd for "ne-vm"
 * anon inodes finds enclaves made by any program, nectl or not.  Names and
 * measurements of nectl's own enclaves come from its registry, a JSON file
 * per enclave that the holder process writes and removes.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "enclaves.h"
#include "metadata.h"

const char *nectl_run_dir(void)
{
	const char *dir = getenv("NECTL_RUN_DIR");

	return dir && *dir ? dir : "/run/nectl";
}

/*
 * The state directory of a machine's enclaves may be writable by a whole
 * group (the package makes /run/nectl root:ne 3770): any member can put
 * anything there under any name (the sticky bit only keeps members from
 * removing or replacing each other's files).  So its files are opened
 * without following a symbolic link or blocking on a FIFO, and used only
 * when they are regular files with one name (EPERM otherwise); registry
 * entries count only when their owner is root or their holder's user.
 */
static int open_state_file(const char *path, int flags, mode_t mode, struct stat *st)
{
	int fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);

	if (fd < 0)
		return -1;
	if (fstat(fd, st) || !S_ISREG(st->st_mode) || st->st_nlink != 1) {
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

/*
 * Whether the state directory is shared by its group: group-writable and
 * setgid, so that what is created there belongs to that group (without
 * setgid, to the creator's own group, which the directory does not name).
 */
static bool run_dir_shared(void)
{
	struct stat st;

	return !stat(nectl_run_dir(), &st) &&
	       (st.st_mode & (S_ISGID | S_IWGRP)) == (S_ISGID | S_IWGRP);
}

/*
 * Opens @file of the state directory, creating it if need be.  In a shared
 * directory what one member's nectl creates (a lock file, the log) another
 * member's must be able to use, whatever the creator's umask: a file
 * created here is made group-readable and -writable there, and only a file
 * created here (fchmod on one found there could be anybody's).
 */
static int open_shared(const char *file, int flags)
{
	char path[512];
	struct stat st;
	int fd, tries;

	snprintf(path, sizeof(path), "%s/%s", nectl_run_dir(), file);
	for (tries = 0; tries < 3; tries++) {
		fd = open_state_file(path, flags | O_CREAT | O_EXCL, 0660, &st);
		if (fd >= 0) {
			if (run_dir_shared())
				fchmod(fd, 0660);
			return fd;
		}
		if (errno != EEXIST)
			return -1;
		fd = open_state_file(path, flags, 0, &st);
		if (fd >= 0 || errno != ENOENT)
			return fd;
		/* removed in between: create it again */
	}
	return -1;
}

/* The process holding the flock on the file open as @fd (/proc/locks), or 0. */
static pid_t flock_holder(int fd)
{
	unsigned int maj, min;
	unsigned long ino;
	char line[256];
	struct stat st;
	pid_t pid = 0;
	FILE *f;
	int p;

	if (fstat(fd, &st))
		return 0;
	f = fopen("/proc/locks", "re");
	if (!f)
		return 0;
	/* "1: FLOCK  ADVISORY  WRITE 1234 00:1a:5678 0 EOF"; waiters read "1: -> FLOCK" */
	while (!pid && fgets(line, sizeof(line), f))
		if (sscanf(line, "%*d: FLOCK %*s %*s %d %x:%x:%lu", &p, &maj, &min, &ino) == 4 &&
		    ino == st.st_ino && maj == major(st.st_dev) && min == minor(st.st_dev))
			pid = p;
	fclose(f);
	return pid;
}

int64_t nectl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How long to sleep between tries: short at first, jittered (no kernel queue). */
static unsigned int lock_pause_ms(int64_t waited_ms, unsigned int *seed)
{
	return (waited_ms < 1000 ? 10 : 50) + rand_r(seed) % 20;
}

int nectl_lock(const char *file, struct nectl_lock_wait *w)
{
	unsigned int seed = getpid();
	int64_t start = nectl_now_ms();
	struct pollfd cancel;
	bool said = false;
	int fd, err;

	if (w)
		w->holder = 0;
	if (mkdir(nectl_run_dir(), 0755) && errno != EEXIST)
		return -1;
	fd = open_shared(file, O_RDWR);
	/* another's lock file that the group may only read: flock needs no more */
	if (fd < 0 && errno == EACCES)
		fd = open_shared(file, O_RDONLY);
	if (fd < 0)
		return -1;
	/* polled, not blocking: a member may hold it for good */
	for (;;) {
		if (!flock(fd, LOCK_EX | LOCK_NB))
			return fd;
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK)
			break;
		if (w && !said && w->waiting && nectl_now_ms() - start >= 1000) {
			w->waiting(w->ctx, file, flock_holder(fd));
			said = true;
		}
		if (w && w->limit_s && nectl_now_ms() - start >= w->limit_s * 1000LL) {
			w->holder = flock_holder(fd);
			errno = ETIMEDOUT;
			break;
		}
		cancel = (struct pollfd){ .fd = w ? w->cancel_fd : -1, .events = POLLIN };
		if (poll(&cancel, 1, lock_pause_ms(nectl_now_ms() - start, &seed)) > 0 &&
		    (cancel.revents & POLLIN)) {
			errno = EINTR;	/* (the signal stays queued for the caller) */
			break;
		}
	}
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

void nectl_unlock(int fd)
{
	if (fd >= 0)
		close(fd);	/* drops the flock */
}

void nectl_log(const char *fmt, ...)
{
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	va_list ap;
	FILE *f;
	int fd;

	fd = open_shared("nectl.log", O_WRONLY | O_APPEND);
	if (fd < 0)
		return;
	f = fdopen(fd, "a");
	if (!f) {
		close(fd);
		return;
	}
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(f, "%s nectl[%d]: ", stamp, (int)getpid());
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fclose(f);
}

int fdinfo_read(pid_t pid, int fd, const char *key, char *value, size_t len)
{
	size_t keylen = strlen(key);
	char path[64], line[512];
	int found = -1;
	FILE *f;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, fd);
	else
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *v;

		if (strncmp(line, key, keylen) || line[keylen] != ':')
			continue;
		v = line + keylen + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		v[strcspn(v, "\n")] = '\0';
		snprintf(value, len, "%s", v);
		found = 0;
		break;
	}
	fclose(f);
	return found;
}

int parse_cpu_list(const char *text, unsigned int *ids, unsigned int max)
{
	unsigned int count = 0;
	const char *p = text;

	while (*p && *p != '\n') {
		unsigned long lo, hi;
		char *end;

		if (!isdigit((unsigned char)*p))
			return -1;
		lo = strtoul(p, &end, 10);
		hi = lo;
		if (*end == '-') {
			if (!isdigit((unsigned char)end[1]))
				return -1;
			hi = strtoul(end + 1, &end, 10);
		}
		if (hi < lo || hi - lo > 4096)
			return -1;
		for (; lo <= hi; lo++) {
			if (count == max)
				return -1;
			ids[count++] = lo;
		}
		p = end;
		if (*p == ',')
			p++;
		else if (*p && *p != '\n')
			return -1;
	}
	return count;
}

static uint64_t fdinfo_u64(pid_t pid, int fd, const char *key)
{
	char v[64];

	if (fdinfo_read(pid, fd, key, v, sizeof(v)))
		return 0;
	return strtoull(v, NULL, 0);
}

static void enclave_load(struct enclave *e, pid_t pid, int fd)
{
	char v[512], path[64];
	FILE *f;
	int n;

	memset(e, 0, sizeof(*e));
	e->pid = pid;
	e->fd = fd;
	e->slot_uid = fdinfo_u64(pid, fd, "ne_slot_uid");
	e->cid = fdinfo_u64(pid, fd, "ne_enclave_cid");
	e->flags = fdinfo_u64(pid, fd, "ne_flags");
	e->mem_bytes = fdinfo_u64(pid, fd, "ne_mem_bytes");
	e->vcpus = fdinfo_u64(pid, fd, "ne_vcpus");
	if (fdinfo_read(pid, fd, "ne_state", e->state, sizeof(e->state)))
		strcpy(e->state, "unknown");
	fdinfo_read(pid, fd, "ne_last_error", e->last_error, sizeof(e->last_error));
	if (!fdinfo_read(pid, fd, "ne_parent_cpus", v, sizeof(v))) {
		n = parse_cpu_list(v, e->cpu_ids, NECTL_MAX_CPU_IDS);
		e->nr_cpu_ids = n > 0 ? n : 0;
	}
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "re");
	if (f) {
		if (fgets(e->comm, sizeof(e->comm), f))
			e->comm[strcspn(e->comm, "\n")] = '\0';
		fclose(f);
		enclave_printable(e->comm);
	}
}

void enclave_printable(char *s)
{
	for (; *s; s++)
		if (*s < ' ' || *s > '~')
			*s = '?';
}

static bool holder_alive(pid_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

static void registry_path(uint64_t slot_uid, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%llx.json", nectl_run_dir(), (unsigned long long)slot_uid);
}

/* The holder writes at most the 1 MiB metadata plus a few fields. */
#define REGISTRY_MAX_SIZE	(2u << 20)

struct json_value *registry_parse(const char *text, size_t len)
{
	char err[128];

	return json_parse_depth(text, len, JSON_MAX_DEPTH + 1, err, sizeof(err));
}

char *registry_render(const struct registry_entry *e, size_t *len)
{
	struct json_writer w;
	char slot[32], *text = NULL;
	FILE *f = open_memstream(&text, len);

	if (!f)
		return NULL;
	snprintf(slot, sizeof(slot), "%#llx", (unsigned long long)e->slot_uid);
	json_init(&w, f);
	json_begin_object(&w);
	json_key(&w, "EnclaveName");
	json_string(&w, e->name);
	json_key(&w, "SlotUid");
	json_string(&w, slot);
	json_key(&w, "HolderPID");
	json_u64(&w, e->holder);
	json_key(&w, "State");
	json_string(&w, e->state);
	json_key(&w, "EifPath");
	json_string(&w, e->eif_path);
	if (e->measured)
		metadata_write_measurements(&w, e->measured);
	if (e->metadata) {
		json_key(&w, "EifMetadata");
		json_tree(&w, e->metadata);
	}
	if (e->no_heartbeat) {
		json_key(&w, "Heartbeat");
		json_string(&w, "SKIPPED (--no-heartbeat)");
	}
	json_end_object(&w);
	json_finish(&w);
	if (fclose(f)) {
		free(text);
		return NULL;
	}
	return text;
}

/*
 * A registry entry, and in @owner the user that wrote it; NULL with errno
 * when there is none to read: EINVAL for a file that is no entry (empty,
 * too large, not JSON), ENOENT, EPERM or EACCES for one that went or is
 * not a file nectl uses or may read, anything else when it could not be
 * read (no fd, no memory, an I/O error).
 */
static struct json_value *registry_load_path(const char *path, uid_t *owner)
{
	struct json_value *v = NULL;
	int fd, err = EINVAL;
	char *text = NULL;
	struct stat st;
	size_t n;
	FILE *f;

	fd = open_state_file(path, O_RDONLY, 0, &st);
	if (fd < 0)
		return NULL;
	f = fdopen(fd, "r");
	if (!f) {
		err = errno;
		close(fd);
		errno = err;
		return NULL;
	}
	*owner = st.st_uid;
	if (st.st_size > 0 && st.st_size <= REGISTRY_MAX_SIZE) {
		text = malloc(st.st_size);
		n = text ? fread(text, 1, st.st_size, f) : 0;
		if (!text)
			err = ENOMEM;
		else if (n == (size_t)st.st_size)
			v = registry_parse(text, n);
		else if (ferror(f))
			err = EIO;
		free(text);
	}
	fclose(f);
	if (!v)
		errno = err;
	return v;
}

/* registry_load_path() found no entry because it could not read one. */
static bool registry_unreadable(int err)
{
	return err != EINVAL && err != ENOENT && err != EPERM && err != ELOOP && err != EACCES;
}

static pid_t registry_holder(const struct json_value *reg)
{
	uint64_t pid;

	return json_to_u64(json_get(reg, "HolderPID"), &pid) ? (pid_t)pid : 0;
}

/*
 * Whether an entry written by @owner can speak for holder @pid: root's, or
 * the holder's own user's (/proc/PID belongs to the process's user).
 * Another member's entry naming someone else's holder is a forgery.
 */
static bool registry_owner_ok(uid_t owner, pid_t pid)
{
	char path[32];
	struct stat st;

	if (owner == 0)
		return true;
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	return pid > 0 && !stat(path, &st) && st.st_uid == owner;
}

/* Attaches the registry entry when its holder is alive and holds this enclave. */
static void enclave_join_registry(struct enclave *e)
{
	const struct json_value *v;
	char path[512];
	uid_t owner;

	registry_path(e->slot_uid, path, sizeof(path));
	e->entry_tried = e->pid;
	e->registry = registry_load_path(path, &owner);
	e->entry_holder = e->registry ? registry_holder(e->registry) : -1;
	if (!e->registry)
		return;
	if (e->entry_holder != e->pid || !registry_owner_ok(owner, e->pid)) {
		json_free(e->registry);
		e->registry = NULL;
		return;
	}
	v = json_get(e->registry, "EnclaveName");
	if (v && v->type == JSON_STRING)
		e->name = v->text;
	v = json_get(e->registry, "State");
	e->terminating = v && v->type == JSON_STRING && !strcmp(v->text, "TERMINATING");
}

int registry_write(uint64_t slot_uid, const char *text, size_t len)
{
	char path[512], tmp[600];
	FILE *f;
	int fd;

	registry_path(slot_uid, path, sizeof(path));
	/* a name of its own (O_EXCL): nobody can have planted it */
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -1;
	/* readable by the group's nectl in a shared directory (registry_taken_names()) */
	if (fchmod(fd, run_dir_shared() ? 0640 : 0644)) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (fwrite(text, 1, len, f) != len) {
		fclose(f);
		unlink(tmp);
		return -1;
	}
	if (fclose(f) || rename(tmp, path)) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

void registry_remove(uint64_t slot_uid)
{
	char path[512];

	registry_path(slot_uid, path, sizeof(path));
	unlink(path);
}

static bool is_vm_fd(pid_t pid, const char *fdname)
{
	char path[300], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/fd/%s", (int)pid, fdname);
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return false;
	target[n] = '\0';
	return !strcmp(target, "anon_inode:ne-vm");
}

/*
 * A nectl holder has a few fds (its VM's, its vCPUs', its sockets): a
 * process with more, beyond this many, holds no enclave nectl launched.
 */
#define HOLDER_FDS_MAX	4096

/* The slots one process holds VM fds of, read once per registry pass. */
struct holder_slots {
	pid_t pid;
	int known;		/* 1: @slots read; -1: its fds cannot be read */
	uint64_t *slots;
	size_t n;
};

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Reads the slots @h->pid holds a VM fd of (among its first HOLDER_FDS_MAX entries). */
static void holder_slots_read(struct holder_slots *h)
{
	struct dirent *de;
	char path[64];
	uint64_t *grown;
	size_t cap = 0;
	int seen = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)h->pid);
	dir = opendir(path);
	/* another user's process (only root reads its fds), or no memory */
	h->known = dir ? 1 : -1;
	while (dir && seen++ < HOLDER_FDS_MAX && (de = readdir(dir))) {
		if (de->d_name[0] == '.' || !is_vm_fd(h->pid, de->d_name))
			continue;
		if (h->n == cap) {
			cap = cap ? 2 * cap : 4;
			grown = realloc(h->slots, cap * sizeof(*h->slots));
			if (!grown) {
				h->known = -1;
				break;
			}
			h->slots = grown;
		}
		h->slots[h->n++] = fdinfo_u64(h->pid, atoi(de->d_name), "ne_slot_uid");
	}
	if (dir)
		closedir(dir);
	if (h->n)
		qsort(h->slots, h->n, sizeof(*h->slots), compare_u64);
}

/*
 * Whether @pid holds a VM fd of slot @slot_uid: 1 yes, 0 no, -1 cannot tell.
 * Each holder's fds are read once per pass (@cache, @ncache).
 */
static int holder_holds_slot(struct holder_slots **cache, size_t *ncache, pid_t pid,
			     uint64_t slot_uid)
{
	struct holder_slots *h = NULL, *grown;
	size_t i;

	for (i = 0; i < *ncache && !h; i++)
		if ((*cache)[i].pid == pid)
			h = &(*cache)[i];
	if (!h) {
		grown = realloc(*cache, (*ncache + 1) * sizeof(**cache));
		if (!grown)
			return -1;
		*cache = grown;
		h = &grown[(*ncache)++];
		*h = (struct holder_slots){ .pid = pid };
		holder_slots_read(h);
	}
	if (h->known < 0)
		return -1;
	return h->n && bsearch(&slot_uid, h->slots, h->n, sizeof(*h->slots), compare_u64);
}

static void holder_slots_free(struct holder_slots *cache, size_t n)
{
	while (n)
		free(cache[--n].slots);
	free(cache);
}

/*
 * The slot a registry file is named after, or 0: only the name a holder
 * writes ("%llx.json") counts, not another spelling of the same number.
 */
static uint64_t registry_file_slot(const char *name)
{
	char canonical[32], *end;
	uint64_t slot;

	if (!isxdigit((unsigned char)name[0]))
		return 0;
	slot = strtoull(name, &end, 16);
	snprintf(canonical, sizeof(canonical), "%llx.json", (unsigned long long)slot);
	return strcmp(canonical, name) ? 0 : slot;
}

/*
 * The name of the running enclave @path (named after @slot_uid) speaks
 * for, in @name (NULL: none): its holder is alive, the entry is root's or
 * the holder's user's, and the holder holds a VM fd of the slot where this
 * process can see (a member's entry naming a process of theirs without a
 * VM claims nothing, for root).  An entry whose holder is gone is removed.
 * Returns 0, or -1 when out of memory.
 */
static int registry_running_name(const char *path, uint64_t slot_uid,
				 struct holder_slots **cache, size_t *ncache, char **name)
{
	const struct json_value *v;
	struct json_value *reg;
	uid_t owner;
	pid_t holder;

	*name = NULL;
	reg = registry_load_path(path, &owner);
	if (!reg)
		return registry_unreadable(errno) ? -1 : 0;
	holder = registry_holder(reg);
	v = json_get(reg, "EnclaveName");
	if (!holder_alive(holder)) {
		unlink(path);
	} else if (v && v->type == JSON_STRING && registry_owner_ok(owner, holder) &&
		   holder_holds_slot(cache, ncache, holder, slot_uid)) {
		*name = strdup(v->text);
		if (!*name) {
			json_free(reg);
			errno = ENOMEM;
			return -1;
		}
	}
	json_free(reg);
	return 0;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds @name to @names (@n of them, room for @cap); -1 when out of memory. */
static int names_add(char ***names, size_t *n, size_t *cap, char *name)
{
	char **grown;

	if (*n == *cap) {
		grown = realloc(*names, (*cap ? 2 * *cap : 16) * sizeof(**names));
		if (!grown)
			return -1;
		*names = grown;
		*cap = *cap ? 2 * *cap : 16;
	}
	(*names)[(*n)++] = name;
	return 0;
}

int registry_taken_names(char ***names, size_t *n)
{
	struct holder_slots *cache = NULL;
	size_t cap = 0, ncache = 0;
	char *name, path[1024];
	struct dirent *de;
	uint64_t slot;
	int rc = 0, err;
	DIR *dir = opendir(nectl_run_dir());

	*names = NULL;
	*n = 0;
	if (!dir)
		return errno == ENOENT ? 0 : -1;	/* (no entry yet) */
	while (!rc) {
		errno = 0;
		de = readdir(dir);
		if (!de) {
			rc = errno ? -1 : 0;	/* (the end, or an error) */
			break;
		}
		slot = registry_file_slot(de->d_name);
		if (!slot)
			continue;
		snprintf(path, sizeof(path), "%s/%s", nectl_run_dir(), de->d_name);
		rc = registry_running_name(path, slot, &cache, &ncache, &name);
		if (!rc && name && names_add(names, n, &cap, name)) {
			free(name);
			errno = ENOMEM;
			rc = -1;
		}
	}
	err = errno;
	closedir(dir);
	holder_slots_free(cache, ncache);
	if (rc) {
		names_free(*names, *n);
		*names = NULL;
		*n = 0;
		errno = err;
		return -1;
	}
	if (*n)
		qsort(*names, *n, sizeof(**names), compare_names);
	return 0;
}

bool names_contain(char *const *names, size_t n, const char *name)
{
	return n && bsearch(&name, names, n, sizeof(*names), compare_names);
}

void names_free(char **names, size_t n)
{
	while (n)
		free(names[--n]);
	free(names);
}

/*
 * Another VM fd of an enclave already listed as @known (a copy, forked or
 * passed): keep the copy a live holder owns.  The slot's registry entry is
 * read again only for a process it names and was not tried for: a process
 * holding many copies costs one read of it, not one each.  (An entry
 * written after the slot's first fd was seen waits for the next scan; a
 * nectl holder is the only process with its VM fd.)
 */
static void add_copy(struct enclave *known, pid_t pid, int fd)
{
	struct enclave e;

	if (known->registry || known->entry_holder != pid || known->entry_tried == pid)
		return;
	enclave_load(&e, pid, fd);
	enclave_join_registry(&e);
	if (e.registry) {
		*known = e;
		return;
	}
	known->entry_holder = e.entry_holder;	/* (rewritten meanwhile?) */
	known->entry_tried = pid;
}

static int add_enclave(struct enclave **list, size_t *count, size_t *cap, pid_t pid, int fd)
{
	struct enclave e;
	size_t i;
	uint64_t slot_uid = fdinfo_u64(pid, fd, "ne_slot_uid");

	for (i = 0; i < *count; i++) {
		if ((*list)[i].slot_uid == slot_uid) {
			add_copy(&(*list)[i], pid, fd);
			return 0;
		}
	}
	enclave_load(&e, pid, fd);
	if (*count == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		struct enclave *n = realloc(*list, ncap * sizeof(*n));

		if (!n)
			return -1;
		*list = n;
		*cap = ncap;
	}
	enclave_join_registry(&e);
	(*list)[(*count)++] = e;
	return 0;
}

static int scan_process(struct enclave **list, size_t *count, size_t *cap, pid_t pid)
{
	struct dirent *de;
	char path[64];
	DIR *dir;
	int ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	if (!dir)
		return 0;	/* gone, or not ours to look at */
	while (!ret && (de = readdir(dir)))
		if (de->d_name[0] != '.' && is_vm_fd(pid, de->d_name))
			ret = add_enclave(list, count, cap, pid, atoi(de->d_name));
	closedir(dir);
	return ret;
}

static int compare_slots(const void *a, const void *b)
{
	const struct enclave *x = a, *y = b;

	return x->slot_uid < y->slot_uid ? -1 : x->slot_uid > y->slot_uid;
}

int enclaves_scan(struct enclave **list, size_t *count)
{
	struct dirent *de;
	size_t cap = 0;
	DIR *proc = opendir("/proc");

	*list = NULL;
	*count = 0;
	if (!proc)
		return -1;
	while ((de = readdir(proc))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		if (scan_process(list, count, &cap, atoi(de->d_name))) {
			closedir(proc);
			enclaves_free(*list, *count);
			return -1;
		}
	}
	closedir(proc);
	if (*count)
		qsort(*list, *count, sizeof(**list), compare_slots);
	return 0;
}

void enclaves_free(struct enclave *list, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++)
		json_free(list[i].registry);
	free(list);
}

void enclave_id(uint64_t slot_uid, char *buf, size_t len)
{
	char tag[128] = "";
	FILE *f = fopen("/sys/devices/virtual/dmi/id/board_asset_tag", "re");

	if (f) {
		if (!fgets(tag, sizeof(tag), f))
			tag[0] = '\0';
		fclose(f);
		tag[strcspn(tag, "\n ")] = '\0';
	}
	/* Only an EC2 instance id is a useful prefix; anything else is replaced. */
	if (strncmp(tag, "i-", 2))
		strcpy(tag, "i-0000000000000000");
	snprintf(buf, len, "%s-enc%llx", tag, (unsigned long long)slot_uid);
}

bool enclave_id_matches(uint64_t slot_uid, const char *id)
{
	char full[200], hex[32];
	const char *enc;

	enclave_id(slot_uid, full, sizeof(full));
	snprintf(hex, sizeof(hex), "%llx", (unsigned long long)slot_uid);
	if (!strcasecmp(id, full) || !strcasecmp(id, hex))
		return true;
	enc = strstr(id, "enc");
	/* Any instance prefix: the slot uid is what identifies the enclave. */
	return enc && !strcasecmp(enc + 3, hex) && (enc == id || enc[-1] == '-');
}

static const char *describe_state(const struct enclave *e)
{
	if (e->terminating || !strcmp(e->state, "stopped"))
		return "TERMINATING";
	if (!strcmp(e->state, "running"))
		return "RUNNING";
	return "EMPTY";		/* a slot that has not been started yet */
}

/* nitro-cli's EnclaveDescribeInfo, then nectl's own keys (Launcher, Heartbeat). */
void enclave_describe(struct json_writer *w, const struct enclave *e, bool with_metadata)
{
	const struct json_value *v;
	char id[200];
	unsigned int i;

	enclave_id(e->slot_uid, id, sizeof(id));
	json_begin_object(w);
	if (e->name) {		/* nitro-cli omits a name it does not have */
		json_key(w, "EnclaveName");
		json_string(w, e->name);
	}
	json_key(w, "EnclaveID");
	json_string(w, id);
	json_key(w, "ProcessID");
	json_u64(w, e->pid);
	json_key(w, "EnclaveCID");
	json_u64(w, e->cid);
	json_key(w, "NumberOfCPUs");
	json_u64(w, e->vcpus);
	json_key(w, "CPUIDs");
	json_begin_array(w);
	for (i = 0; i < e->nr_cpu_ids; i++)
		json_u64(w, e->cpu_ids[i]);
	json_end_array(w);
	json_key(w, "MemoryMiB");
	json_u64(w, e->mem_bytes >> 20);
	json_key(w, "State");
	json_string(w, describe_state(e));
	json_key(w, "Flags");
	json_string(w, (e->flags & 1) ? "DEBUG_MODE" : "NONE");
	v = json_get(e->registry, "Measurements");
	if (v) {
		json_key(w, "Measurements");
		json_tree(w, v);
	}
	if (with_metadata)
		metadata_write_identity(w, json_get(e->registry, "EifMetadata"));
	if (!e->registry) {
		/* Made through the raw ioctls by another program: say which. */
		json_key(w, "Launcher");
		json_string(w, e->comm);
	}
	v = json_get(e->registry, "Heartbeat");
	if (v) {
		json_key(w, "Heartbeat");
		json_tree(w, v);
	}
	json_end_object(w);
}

void enclave_write_terminated(struct json_writer *w, const char *name, const char *id)
{
	json_begin_object(w);
	if (name) {
		json_key(w, "EnclaveName");
		json_string(w, name);
	}
	json_key(w, "EnclaveID");
	json_string(w, id);
	json_key(w, "Terminated");
	json_bool(w, true);
	json_end_object(w);
}
