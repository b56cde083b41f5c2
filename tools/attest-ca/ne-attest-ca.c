// SPDX-License-Identifier: GPL-2.0
/*
 * ne-attest-ca: the installation's local attestation CA (root, regional,
 * zonal and instance), whose instance CA the emulated hypervisor issues
 * every enclave's leaf under.  See usage() and README.md.
 *
 * The shape of every certificate comes from tools/qemu/hw/ne/ne-nsm-ca.c,
 * which the hypervisor issues leaves with, so there is one definition of
 * the chain.  This file only keeps the files: where they are, who may
 * read them, and when a level has to be reissued.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include "ne-nsm-ca.h"

#define DEFAULT_DIR	"/var/lib/ne-kvm/attestation"

enum {
	EXIT_OK,
	EXIT_ERROR,		/* OpenSSL or I/O failed */
	EXIT_USAGE,
	EXIT_REFUSED,		/* would overwrite, or the CA cannot be kept */
	EXIT_DIR,		/* a directory cannot be made, written or trusted */
	EXIT_CHECK,		/* check: the CA is missing or not usable */
};

#define LEVELS	NE_NSM_CA_BUNDLE_LEN

static const char *const level_name[LEVELS] = {
	"root", "regional", "zonal", "instance"
};

/*
 * A level is reissued when it expires within this margin: the lifetime of
 * the level below it plus a day (the instance: the leaf's 3 h plus 9 h),
 * so that every certificate, once issued, lies within its issuer's
 * validity, which verifiers check at one time for the whole chain.  The
 * root is never reissued: when it gets this close (the regional's 20 days
 * and a day), ensure refuses and says so.
 */
static const long renew_margin[LEVELS] = {
	21 * 86400L, 7 * 86400L, 2 * 86400L, 12 * 3600L
};

struct level {
	EVP_PKEY *key;
	X509 *cert;
	bool changed;		/* made by this run, to be written */
	const char *why;	/* why it was reissued */
};

struct ca {
	const char *dir;	/* public: root.pem, chain.pem */
	const char *priv;	/* private: keys, 0700 */
	time_t now;
	bool quiet;
	struct level lv[LEVELS];
};

static const char *prog = "ne-attest-ca";

static void __attribute__((noreturn, format(printf, 2, 3)))
die(int status, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: error: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

/* A failed file operation: the directory's fault, or an I/O error. */
static int errno_status(int err)
{
	switch (err) {
	case EACCES: case EPERM: case EROFS: case ENOTDIR: case ENOENT:
	case ENOSPC: case EDQUOT: case ELOOP:
		return EXIT_DIR;
	}
	return EXIT_ERROR;
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: %s [OPTIONS] COMMAND\n"
"\n"
"The installation's local attestation CA for ne-kvm's emulated NSM: a root,\n"
"regional, zonal and instance CA chained and shaped like AWS's Nitro Enclaves\n"
"chain (P-384, ecdsa-with-SHA384, AWS's path lengths, key usages, lifetimes\n"
"and subject attributes).  The emulated hypervisor issues each enclave a\n"
"3-hour leaf under the instance CA; verifiers pin the root (DIR/root.pem).\n"
"\n"
"Commands:\n"
"  init     create a new CA; refuses (status 3) when any of its files exists\n"
"  ensure   create the CA when there is none (what tools/setup runs);\n"
"           otherwise keep it usable: reissue, with new keys, the regional,\n"
"           zonal and instance certificates that expire within 7 days, 2 days\n"
"           and 12 hours, or no longer chain (and the levels below them).\n"
"           The root is never replaced: a root that expires within 21 days,\n"
"           or a CA present only in part, is refused (status 3).  A CA that\n"
"           needs nothing is not touched\n"
"  check    change nothing; verify the files, their modes, the chain to the\n"
"           root at this time, and that the instance CA can issue a leaf now\n"
"\n"
"Options:\n"
"  --dir DIR          public certificates (default " DEFAULT_DIR ")\n"
"  --private-dir DIR  private keys (default DIR/private); must be a directory\n"
"                     of this user with mode 0700, or absent (created so)\n"
"  --now SECONDS      act as if it were SECONDS since the epoch (for tests)\n"
"  -q, --quiet        print errors only\n"
"  -h, --help         this text\n"
"\n"
"Files (PEM):\n"
"  DIR/root.pem            the root certificate, mode 0644\n"
"  DIR/chain.pem           root, regional, zonal, instance certificates, 0644\n"
"  PRIVATE/root.pem, regional.pem, zonal.pem\n"
"                          each level's key (PKCS#8) and certificate, 0600\n"
"  PRIVATE/instance.pem    the instance key, then the instance, zonal,\n"
"                          regional and root certificates, 0600: the bundle\n"
"                          the hypervisor loads (tools/ne-vm hands it to\n"
"                          QEMU as an open descriptor)\n"
"  PRIVATE/lock            serialises concurrent runs\n"
"\n"
"Exit status: 0 done (check: usable); 1 an OpenSSL or I/O error; 2 usage;\n"
"3 refused (init: a CA exists; ensure: a partial CA, or its root is unusable);\n"
"4 a directory cannot be created or written, or the private one is not this\n"
"user's with mode 0700; 5 check found the CA missing or unusable.\n",
		prog);
}

/* Paths ------------------------------------------------------------------- */

static void path_of(char *buf, const char *dir, const char *name)
{
	if (snprintf(buf, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX)
		die(EXIT_USAGE, "path too long: %s/%s", dir, name);
}

static void priv_path(const struct ca *ca, char *buf, int level)
{
	char name[32];

	snprintf(name, sizeof(name), "%s.pem", level_name[level]);
	path_of(buf, ca->priv, name);
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 || errno != ENOENT;
}

/* mkdir -p, each new directory with @mode */
static void make_dirs(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	char *p, c;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		die(EXIT_USAGE, "path too long: %s", path);
	for (p = buf + 1; ; p++) {
		if (*p != '/' && *p)
			continue;
		c = *p;
		*p = 0;
		if (mkdir(buf, c ? 0755 : mode) == 0) {
			/* the mode asked for, whatever the umask */
			if (chmod(buf, c ? 0755 : mode) < 0)
				die(errno_status(errno), "cannot chmod %s: %s",
				    buf, strerror(errno));
		} else if (errno != EEXIST) {
			die(errno_status(errno), "cannot create %s: %s", buf,
			    strerror(errno));
		}
		*p = c;
		if (!c)
			break;
	}
}

/*
 * The private directory: this user's, not a symbolic link, and closed to
 * everyone else (0700), or keys are not written into it.
 */
static void check_private_dir(const char *dir)
{
	struct stat st;

	if (lstat(dir, &st) < 0)
		die(errno_status(errno), "cannot use %s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		die(EXIT_DIR, "%s is not a directory", dir);
	if (st.st_uid != geteuid() || (st.st_mode & 07777) != 0700)
		die(EXIT_DIR, "%s has owner %u and mode %04o: the private key "
		    "directory must be owned by uid %u with mode 0700", dir,
		    (unsigned int)st.st_uid, (unsigned int)(st.st_mode & 07777),
		    (unsigned int)geteuid());
}

static void prepare_dirs(const struct ca *ca)
{
	char lock[PATH_MAX];
	int fd;

	make_dirs(ca->dir, 0755);
	if (access(ca->dir, W_OK) < 0)
		die(errno_status(errno), "cannot write %s: %s", ca->dir,
		    strerror(errno));
	if (!exists(ca->priv))
		make_dirs(ca->priv, 0700);
	check_private_dir(ca->priv);
	/* held until exit: setup and ne-vm may run at the same time */
	path_of(lock, ca->priv, "lock");
	fd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) < 0)
		die(errno_status(errno), "cannot lock %s: %s", lock,
		    strerror(errno));
}

/* Files ------------------------------------------------------------------- */

static void write_all(int fd, const char *path, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(errno_status(errno), "cannot write %s: %s", path,
			    strerror(errno));
		p += n;
		len -= n;
	}
}

static void sync_dir(const char *path)
{
	char dir[PATH_MAX];
	char *slash;
	int fd;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/*
 * Writes @path whole or not at all: a temporary file with @mode, synced,
 * then renamed over @path, or, with @no_replace, linked to it (which fails
 * when @path exists: init never overwrites, even racing another writer).
 */
static void put_file(const char *path, const void *data, size_t len,
		     mode_t mode, bool no_replace)
{
	char tmp[PATH_MAX + 32];
	int fd, err;

	snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid());
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0)
		die(errno_status(errno), "cannot create %s: %s", tmp,
		    strerror(errno));
	if (fchmod(fd, mode) < 0)
		die(errno_status(errno), "cannot chmod %s: %s", tmp,
		    strerror(errno));
	write_all(fd, tmp, data, len);
	if (fsync(fd) < 0 || close(fd) < 0)
		die(errno_status(errno), "cannot write %s: %s", tmp,
		    strerror(errno));
	if (no_replace) {
		err = link(tmp, path) < 0 ? errno : 0;
		unlink(tmp);
		if (err == EEXIST)
			die(EXIT_REFUSED, "%s exists: not overwriting it", path);
	} else {
		err = rename(tmp, path) < 0 ? errno : 0;
	}
	if (err) {
		unlink(tmp);
		die(errno_status(err), "cannot write %s: %s", path,
		    strerror(err));
	}
	sync_dir(path);
}

/* The PEM of @key (or none) and @certs, in a buffer wiped when freed */
static BIO *pem_of(EVP_PKEY *key, X509 *const *certs, int n)
{
	BIO *bio = BIO_new(BIO_s_secmem());
	int i;

	if (!bio || (key && !PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0,
						      NULL, NULL)))
		die(EXIT_ERROR, "cannot encode a key");
	for (i = 0; i < n; i++)
		if (!PEM_write_bio_X509(bio, certs[i]))
			die(EXIT_ERROR, "cannot encode a certificate");
	return bio;
}

static void put_pem(const char *path, BIO *bio, mode_t mode, bool no_replace)
{
	char *data;
	long len = BIO_get_mem_data(bio, &data);

	put_file(path, data, len, mode, no_replace);
	BIO_free(bio);
}

/* Whether @path holds exactly the bytes of @bio */
static bool same_content(const char *path, BIO *bio)
{
	char *data, *old;
	long len = BIO_get_mem_data(bio, &data);
	BIO *file = BIO_new_file(path, "rb");
	bool same = false;

	if (file) {
		old = malloc(len + 1);
		same = old && BIO_read(file, old, len + 1) == len &&
		       memcmp(old, data, len) == 0;
		free(old);
		BIO_free(file);
	}
	ERR_clear_error();
	return same;
}

/* Loading ----------------------------------------------------------------- */

/* A level's key and its own certificate, the first one of its file */
static bool load_level(const struct ca *ca, int level, struct level *lv)
{
	char path[PATH_MAX];
	BIO *bio;

	priv_path(ca, path, level);
	bio = BIO_new_file(path, "rb");
	if (bio) {
		lv->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
		lv->cert = lv->key ? PEM_read_bio_X509(bio, NULL, NULL, NULL)
				   : NULL;
		BIO_free(bio);
	}
	ERR_clear_error();
	return lv->key && lv->cert;
}

static void free_level(struct level *lv)
{
	EVP_PKEY_free(lv->key);
	X509_free(lv->cert);
	memset(lv, 0, sizeof(*lv));
}

static time_t cert_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (!ASN1_TIME_to_tm(t, &tm))
		return 0;
	return timegm(&tm);
}

/*
 * Why the level must be (re)issued under @parent, or NULL when it is
 * fine: its own key, issued and signed by the parent, valid now and for
 * its margin.
 */
static const char *level_problem(const struct ca *ca, int level,
				 const struct level *lv,
				 const struct level *parent)
{
	X509 *cert = lv->cert;

	if (!cert)
		return "missing or unreadable";
	if (parent->changed)
		return "its issuer was reissued";
	if (X509_check_private_key(cert, lv->key) != 1)
		return "its key does not match its certificate";
	if (X509_NAME_cmp(X509_get_issuer_name(cert),
			  X509_get_subject_name(parent->cert)) ||
	    X509_verify(cert, X509_get0_pubkey(parent->cert)) != 1)
		return "not issued by the current issuer";
	if (cert_time(X509_get0_notBefore(cert)) > ca->now)
		return "not valid yet";
	if (cert_time(X509_get0_notAfter(cert)) - ca->now < renew_margin[level])
		return "expires within its margin";
	return NULL;
}

/* Issuing ----------------------------------------------------------------- */

/* "i-<17 hex>" of an instance certificate, kept when it is reissued */
static bool instance_id_of(X509 *cert, char *id)
{
	char cn[256];
	char *dot;

	if (!cert || X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
					       NID_commonName, cn,
					       sizeof(cn)) <= 0)
		return false;
	dot = strchr(cn, '.');
	if (!dot || dot - cn != NE_NSM_CA_INSTANCE_ID_LEN ||
	    strncmp(cn, "i-", 2) ||
	    strspn(cn + 2, "0123456789abcdef") != NE_NSM_CA_INSTANCE_ID_LEN - 2)
		return false;
	memcpy(id, cn, NE_NSM_CA_INSTANCE_ID_LEN);
	id[NE_NSM_CA_INSTANCE_ID_LEN] = 0;
	return true;
}

/*
 * A new key and certificate for @level, issued by the level above (the
 * root: by itself).  The instance keeps its ID: it names this machine in
 * every module_id and in PCR4.
 */
static void issue_level(struct ca *ca, int level, const char *why)
{
	struct level *lv = &ca->lv[level];
	struct level *parent = level ? &ca->lv[level - 1] : NULL;
	char err[512], cn[128], id_buf[NE_NSM_CA_INSTANCE_ID_LEN + 1];
	const char *id = NULL;
	EVP_PKEY *key;
	X509 *cert;

	if (level == NE_NSM_CA_INSTANCE && instance_id_of(lv->cert, id_buf))
		id = id_buf;
	key = ne_nsm_ca_new_key(err, sizeof(err));
	if (!key)
		die(EXIT_ERROR, "%s", err);
	if (ne_nsm_ca_new_cn(level, id, cn, sizeof(cn)) < 0)
		die(EXIT_ERROR, "cannot make the %s CN", level_name[level]);
	cert = ne_nsm_ca_make_cert(level, cn, key, parent ? parent->cert : NULL,
				   parent ? parent->key : NULL, ca->now,
				   err, sizeof(err));
	if (!cert)
		die(EXIT_ERROR, "%s", err);
	free_level(lv);
	lv->key = key;
	lv->cert = cert;
	lv->changed = true;
	lv->why = why;
}

/* Root first: each level's file, then the public ones */
static void write_ca(const struct ca *ca, bool no_replace)
{
	X509 *chain[LEVELS];
	char path[PATH_MAX];
	BIO *bio;
	int i;

	for (i = 0; i < LEVELS; i++)
		chain[i] = ca->lv[i].cert;
	for (i = 0; i < LEVELS; i++) {
		X509 *mine[LEVELS];
		int n = 1, j;

		if (!ca->lv[i].changed)
			continue;
		/* the instance's file is the bundle: then its issuers */
		mine[0] = chain[i];
		for (j = i - 1; i == NE_NSM_CA_INSTANCE && j >= 0; j--)
			mine[n++] = chain[j];
		priv_path(ca, path, i);
		put_pem(path, pem_of(ca->lv[i].key, mine, n), 0600, no_replace);
	}
	path_of(path, ca->dir, "chain.pem");
	bio = pem_of(NULL, chain, LEVELS);
	if (!same_content(path, bio))
		put_pem(path, bio, 0644, no_replace);
	else
		BIO_free(bio);
	path_of(path, ca->dir, "root.pem");
	bio = pem_of(NULL, chain, 1);
	if (!same_content(path, bio))
		put_pem(path, bio, 0644, no_replace);
	else
		BIO_free(bio);
}

/* Commands ---------------------------------------------------------------- */

/* The CA files that exist, as "a, b" into @buf; false when none does */
static bool any_ca_file(const struct ca *ca, char *buf, size_t size)
{
	char path[PATH_MAX];
	size_t len = 0;
	int i;

	buf[0] = 0;
	for (i = 0; i < LEVELS + 2; i++) {
		if (i < LEVELS)
			priv_path(ca, path, i);
		else
			path_of(path, ca->dir, i == LEVELS ? "root.pem"
							    : "chain.pem");
		if (exists(path))
			len += snprintf(buf + len, len < size ? size - len : 0,
					"%s%s", len ? ", " : "", path);
	}
	return len > 0;
}

static void report(const struct ca *ca, const char *what)
{
	char cn[256];
	int i;

	if (ca->quiet)
		return;
	printf("%s: %s the attestation CA in %s (keys in %s)\n", prog, what,
	       ca->dir, ca->priv);
	for (i = 0; i < LEVELS; i++) {
		if (!ca->lv[i].changed)
			continue;
		X509_NAME_get_text_by_NID(X509_get_subject_name(ca->lv[i].cert),
					  NID_commonName, cn, sizeof(cn));
		printf("%s:   %-8s %s, until %lld%s%s\n", prog, level_name[i],
		       cn, (long long)cert_time(X509_get0_notAfter(ca->lv[i].cert)),
		       ca->lv[i].why ? ": " : "",
		       ca->lv[i].why ? ca->lv[i].why : "");
	}
}

/* A new CA, in directories prepared and locked */
static int create_ca(struct ca *ca)
{
	int i;

	for (i = 0; i < LEVELS; i++)
		issue_level(ca, i, NULL);
	write_ca(ca, true);
	report(ca, "created");
	return EXIT_OK;
}

static int cmd_init(struct ca *ca)
{
	char found[4 * PATH_MAX];

	prepare_dirs(ca);
	if (any_ca_file(ca, found, sizeof(found)))
		die(EXIT_REFUSED, "a CA exists already (%s): not overwriting "
		    "it; 'ensure' keeps it usable", found);
	return create_ca(ca);
}

/* The root is the CA: kept as it is, or the whole CA is refused. */
static void load_root(struct ca *ca)
{
	struct level *root = &ca->lv[NE_NSM_CA_ROOT];
	char path[PATH_MAX];
	time_t end;

	priv_path(ca, path, NE_NSM_CA_ROOT);
	if (!load_level(ca, NE_NSM_CA_ROOT, root))
		die(EXIT_REFUSED, "%s has no readable root key and certificate: "
		    "move the CA (%s, %s) away and run init", path, ca->dir,
		    ca->priv);
	if (X509_check_private_key(root->cert, root->key) != 1 ||
	    X509_verify(root->cert, root->key) != 1)
		die(EXIT_REFUSED, "%s: the root key and certificate do not "
		    "belong together", path);
	end = cert_time(X509_get0_notAfter(root->cert));
	if (end - ca->now < renew_margin[NE_NSM_CA_ROOT])
		die(EXIT_REFUSED, "the root in %s expires at %lld: a new CA is "
		    "needed (move %s and %s away, run init, and pin the new "
		    "root)", path, (long long)end, ca->dir, ca->priv);
}

static int cmd_ensure(struct ca *ca)
{
	char found[4 * PATH_MAX], root[PATH_MAX];
	bool changed = false;
	int i;

	prepare_dirs(ca);
	priv_path(ca, root, NE_NSM_CA_ROOT);
	if (!exists(root)) {
		if (any_ca_file(ca, found, sizeof(found)))
			die(EXIT_REFUSED, "a CA exists in part (%s) without "
			    "its root key %s: not replacing it; move it away "
			    "to create a new one", found, root);
		return create_ca(ca);
	}
	load_root(ca);
	for (i = 1; i < LEVELS; i++) {
		const char *why;

		load_level(ca, i, &ca->lv[i]);
		why = level_problem(ca, i, &ca->lv[i], &ca->lv[i - 1]);
		if (why) {
			issue_level(ca, i, why);
			changed = true;
		}
	}
	write_ca(ca, false);
	if (changed)
		report(ca, "renewed");
	return EXIT_OK;
}

/* check: one line per finding on stderr; the number of failures */
static int check_fail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static int check_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: check: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static int check_mode(const char *path, mode_t want, bool dir)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return check_fail("%s: %s", path, strerror(errno));
	if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
		return check_fail("%s is not a %s", path,
				  dir ? "directory" : "regular file");
	if ((st.st_mode & 07777) != want || st.st_uid != geteuid())
		return check_fail("%s has mode %04o and owner %u, not %04o "
				  "and %u", path,
				  (unsigned int)(st.st_mode & 07777),
				  (unsigned int)st.st_uid, (unsigned int)want,
				  (unsigned int)geteuid());
	return 0;
}

static int check_modes(const struct ca *ca)
{
	char path[PATH_MAX];
	int i, bad = check_mode(ca->priv, 0700, true);

	for (i = 0; i < LEVELS; i++) {
		priv_path(ca, path, i);
		bad += check_mode(path, 0600, false);
	}
	path_of(path, ca->dir, "root.pem");
	bad += check_mode(path, 0644, false);
	path_of(path, ca->dir, "chain.pem");
	return bad + check_mode(path, 0644, false);
}

/* The chain, now, with OpenSSL's path validation (no CRLs) */
static int check_chain(const struct ca *ca)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *mid = sk_X509_new_null();
	int ok = 0, bad = 0;

	if (store && ctx && mid &&
	    X509_STORE_add_cert(store, ca->lv[NE_NSM_CA_ROOT].cert) &&
	    sk_X509_push(mid, ca->lv[NE_NSM_CA_ZONAL].cert) &&
	    sk_X509_push(mid, ca->lv[NE_NSM_CA_REGIONAL].cert) &&
	    X509_STORE_CTX_init(ctx, store, ca->lv[NE_NSM_CA_INSTANCE].cert,
				mid)) {
		X509_STORE_CTX_set_time(ctx, 0, ca->now);
		X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_X509_STRICT);
		ok = X509_verify_cert(ctx) == 1;
		if (!ok)
			bad = check_fail("the chain does not verify: %s",
					 X509_verify_cert_error_string(
						X509_STORE_CTX_get_error(ctx)));
	} else {
		bad = check_fail("cannot set up the chain's verification");
	}
	sk_X509_free(mid);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	ERR_clear_error();
	return bad;
}

/* What the hypervisor does: load the bundle, issue a leaf now */
static int check_issue(const struct ca *ca)
{
	char path[PATH_MAX], err[512];
	NeNsmLeaf leaf;
	NeNsmCa *nsm;
	int bad = 0;

	priv_path(ca, path, NE_NSM_CA_INSTANCE);
	nsm = ne_nsm_ca_load_file(path, err, sizeof(err));
	if (!nsm)
		return check_fail("%s", err);
	if (ne_nsm_ca_issue(nsm, NULL, ca->now, &leaf, err, sizeof(err)) < 0)
		bad = check_fail("%s", err);
	else if (!ca->quiet)
		printf("%s: a leaf issued now: %s, instance CA valid until "
		       "%lld\n", prog, leaf.module_id,
		       (long long)ne_nsm_ca_expires(nsm));
	ne_nsm_leaf_clear(&leaf);
	ne_nsm_ca_free(nsm);
	return bad;
}

/* The public files say what the private ones hold */
static int check_public(const struct ca *ca)
{
	X509 *chain[LEVELS];
	char path[PATH_MAX];
	int i, bad = 0;
	BIO *bio;

	for (i = 0; i < LEVELS; i++)
		chain[i] = ca->lv[i].cert;
	path_of(path, ca->dir, "root.pem");
	bio = pem_of(NULL, chain, 1);
	if (!same_content(path, bio))
		bad += check_fail("%s is not the root of %s", path, ca->priv);
	BIO_free(bio);
	path_of(path, ca->dir, "chain.pem");
	bio = pem_of(NULL, chain, LEVELS);
	if (!same_content(path, bio))
		bad += check_fail("%s is not the chain of %s", path, ca->priv);
	BIO_free(bio);
	return bad;
}

static int cmd_check(struct ca *ca)
{
	char path[PATH_MAX];
	int i, bad = 0;

	for (i = 0; i < LEVELS; i++) {
		priv_path(ca, path, i);
		if (!load_level(ca, i, &ca->lv[i]))
			bad += check_fail("%s: no readable key and certificate",
					  path);
	}
	if (bad)
		return EXIT_CHECK;
	bad = check_modes(ca) + check_public(ca) + check_chain(ca) +
	      check_issue(ca);
	for (i = 0; i < LEVELS; i++) {
		const char *why = i ? level_problem(ca, i, &ca->lv[i],
						    &ca->lv[i - 1]) : NULL;

		if (why && !ca->quiet)
			printf("%s: note: ensure would reissue the %s "
			       "certificate: %s\n", prog, level_name[i], why);
	}
	return bad ? EXIT_CHECK : EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "private-dir", required_argument, NULL, 'p' },
		{ "now", required_argument, NULL, 'n' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct ca ca = { .dir = DEFAULT_DIR };
	char priv[PATH_MAX], *end;
	const char *cmd;
	int c;

	ca.now = time(NULL);
	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			ca.dir = optarg;
			break;
		case 'p':
			ca.priv = optarg;
			break;
		case 'n':
			errno = 0;
			ca.now = strtoll(optarg, &end, 10);
			if (errno || *end || end == optarg || ca.now <= 0)
				die(EXIT_USAGE, "--now takes seconds since the "
				    "epoch, not '%s'", optarg);
			break;
		case 'q':
			ca.quiet = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			fprintf(stderr, "Try '%s --help'.\n", prog);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "%s: %s command (init, ensure or check); try "
			"'%s --help'\n", prog, optind < argc ? "exactly one"
							      : "missing", prog);
		return EXIT_USAGE;
	}
	if (!ca.priv) {
		path_of(priv, ca.dir, "private");
		ca.priv = priv;
	}
	/* files get their modes by fchmod, directories by chmod */
	umask(077);
	cmd = argv[optind];
	if (!strcmp(cmd, "init"))
		return cmd_init(&ca);
	if (!strcmp(cmd, "ensure"))
		return cmd_ensure(&ca);
	if (!strcmp(cmd, "check"))
		return cmd_check(&ca);
	fprintf(stderr, "%s: unknown command '%s' (init, ensure or check)\n",
		prog, cmd);
	return EXIT_USAGE;
}
