// SPDX-License-Identifier: GPL-2.0
/*
 * nsm-fuzz: a seeded fuzz of malformed requests to the NSM through the
 * upstream driver's /dev/nsm, run inside an enclave (static, /nsm-fuzz in
 * the sample image; the app runs it for a client of vsock port 5012), or
 * on the host against the device's core (tools/qemu/tests/enclave-nsm).
 *
 * Input: one line "SEED COUNT [LIMIT]" on standard input within 10 s:
 * decimal numbers, SEED any 64-bit value, COUNT 1 to 100000 requests,
 * LIMIT the seconds one answer may take, 1 to 10 (default 10; the host
 * harness's hang check gives 2).  A bad line gets one line "error REASON"
 * (exit status 2).  The requests are those of
 * fuzz.h: every request of the catalogue, valid or mutated (bits, bytes,
 * truncation, major types, huge and indefinite lengths, deep nesting,
 * duplicate keys, field types, random bytes, sizes around and over the
 * driver's 4096 bytes); the same SEED gives the same requests.
 *
 * Each answer must be one of:
 *   - EMSGSIZE from the driver, for a request over 4096 bytes, and only
 *     then (it must refuse those: the device never sees them).  No other
 *     errno is accepted: the driver's others mean the device broke the
 *     protocol (ENODATA: buffers back out of order), did not answer
 *     (ETIMEDOUT), or the driver could not post or kick (ENOMEM, ENOSPC,
 *     EIO); EFAULT and EINVAL cannot happen with this caller's arguments.
 *   - {"Error": "<an ErrorCode name>"}; an Error is required for a
 *     request that is not one CBOR item (a strict prefix of one, or bytes
 *     after one).
 *   - a success of the catalogue, in its shape (DescribePCR's lock and 48
 *     bytes, an Attestation's COSE_Sign1, ...), whose variant the request
 *     names: never an answer to a request that was not asked.
 * Before the fuzz, after every 100 requests and at the end, a liveness
 * probe: DescribeNSM answers with the same module_id and PCR0-15 among
 * its locked PCRs, and DescribePCR 0 to 15 are locked with the values
 * they had before the fuzz.  The platform's PCRs must never change,
 * whatever an enclave sends: an isolation check, not only a liveness one.
 *
 * State: the fuzz may extend and lock PCR16-31 (valid ExtendPCR, LockPCR
 * and LockPCRs are among its requests), for good.  Run it in an enclave of
 * its own, or after nsm-check, which expects them zero and unlocked.
 *
 * The empty request (0 bytes) is not in the random stream: it is the
 * last check, on its own, so that what it does cannot hide the rest.  The
 * driver passes it on as a zero-length virtio buffer, which QEMU's virtio
 * core (virtqueue_map_desc) refuses by marking the device broken: the
 * device must answer it like any other malformed request.
 *
 * A request that gets no answer: the driver waits up to 120 s, and in an
 * uninterruptible sleep, so no alarm can end the ioctl.  The requests are
 * therefore made by a child process, watched by this one through shared
 * memory; a request unanswered for LIMIT s ends the run with a failing
 * result naming it (and "Bail out!").  Only this process writes to the
 * output, so that it closes at once even while the child is still stuck.
 *
 * Output: TAP ("# seed S" right after the version line, a plan, one result
 * per 100 requests, outcome counts, "# N passed, N failed").
 * Exit status: 0 when every check passed, 1 otherwise, 2 on a bad line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "cbor.h"
#include "fuzz.h"
#include "io.h"
#include "nsm.h"

#define COUNT_MAX	100000
#define BATCH		100	/* requests between two liveness probes */
#define LINE_TIMEOUT	10	/* s, for the request line */
#define ANSWER_LIMIT	10	/* s, for one answer at most: far below 120 */
#define LINE_MAX_LEN	64
#define PCR_SIZE	48
#define LOCKED_PCRS	16
#define SHOWN_PER_BATCH	3	/* failures shown in full in each batch */
#define HEX_SHOWN	48	/* bytes of a request or answer shown */
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/* What the child is doing, for the watching parent. */
struct watch {
	int busy;		/* in an ioctl since @since_ns */
	uint64_t since_ns;
	int result;		/* the TAP result being made */
	char what[192];		/* the request, in words */
};

static struct watch *watch;
static int nsm_fd = -1;
static uint8_t resp[NSM_RESPONSE_MAX];
static size_t resp_len;
static char why[512];

static const char *const error_codes[] = {
	"InvalidArgument", "InvalidIndex", "InvalidResponse", "ReadOnlyIndex",
	"InvalidOperation", "BufferTooSmall", "InputTooLarge", "InternalError",
};

/* The probe's reference: what DescribeNSM and DescribePCR said first. */
static struct {
	bool taken;
	char module_id[128];
	uint8_t pcr[LOCKED_PCRS][PCR_SIZE];
} before;

static int results, failed;

/* @fmt may take an earlier fail()'s reason: formatted apart, then kept. */
static const char *fail(const char *fmt, ...)
{
	char text[sizeof(why)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	memcpy(why, text, sizeof(why));
	return why;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The first @max bytes of @p in hex, "..." after them if there are more. */
static void hex(char *out, size_t size, const uint8_t *p, size_t len,
		size_t max)
{
	size_t i, n = len < max ? len : max;

	out[0] = 0;
	for (i = 0; i < n && 2 * i + 3 < size; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
	if (n < len)
		snprintf(out + 2 * i, size - 2 * i, "...");
}

/* ---- one request, watched ------------------------------------------------ */

/*
 * NSM_IOCTL_RAW with @req, the answer in resp/resp_len; the parent sees
 * @what meanwhile.  Returns 0 or -errno.
 */
static int ask(const void *req, size_t len)
{
	int rc;

	__atomic_store_n(&watch->since_ns, now_ns(), __ATOMIC_RELEASE);
	__atomic_store_n(&watch->busy, 1, __ATOMIC_RELEASE);
	resp_len = sizeof(resp);
	rc = nsm_raw(nsm_fd, req, len, resp, &resp_len);
	__atomic_store_n(&watch->busy, 0, __ATOMIC_RELEASE);
	return rc;
}

static void describe(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(watch->what, sizeof(watch->what), fmt, ap);
	va_end(ap);
}

/* ---- the shapes of the answers ------------------------------------------ */

static bool get_field(struct cb_reader body, const char *key,
		      struct cb_reader *v)
{
	*v = body;
	return cb_map_find(v, key, v);
}

static const char *check_pcr_data(struct cb_reader body)
{
	struct cb_reader v;
	const uint8_t *data;
	size_t len;

	if (!get_field(body, "data", &v) || !cb_get_bytes(&v, &data, &len) ||
	    len != PCR_SIZE)
		return "no 48-byte data";
	return NULL;
}

static const char *check_describe_pcr(struct cb_reader body)
{
	struct cb_reader v;
	bool lock;

	if (!get_field(body, "lock", &v) || !cb_get_bool(&v, &lock))
		return "no boolean lock";
	return check_pcr_data(body);
}

/* locked_pcrs: PCR indices, 0..15 among them (they stay locked). */
static const char *check_locked_pcrs(struct cb_reader body)
{
	struct cb_reader v;
	uint64_t count, n, i, seen = 0;

	if (!get_field(body, "locked_pcrs", &v) || !cb_get_array(&v, &count))
		return "no locked_pcrs array";
	for (i = 0; count == CB_INDEFINITE ? !cb_at_break(&v) : i < count; i++) {
		if (!cb_get_uint(&v, &n) || n >= NSM_PCR_COUNT)
			return "locked_pcrs holds something other than a PCR index";
		seen |= 1ULL << n;
	}
	if ((seen & 0xffff) != 0xffff)
		return fail("PCR0-15 are not all in locked_pcrs (bits %#" PRIx64 ")",
			    seen);
	return NULL;
}

static const char *check_describe_nsm(struct cb_reader body)
{
	struct cb_reader v;
	const char *text;
	uint64_t max;
	size_t len;

	if (!get_field(body, "module_id", &v) || !cb_get_text(&v, &text, &len) ||
	    !len || len >= sizeof(before.module_id))
		return "no module_id";
	if (before.taken && !cb_text_is(text, len, before.module_id))
		return fail("module_id is \"%.*s\", it was \"%s\"", (int)len,
			    text, before.module_id);
	if (!before.taken)
		snprintf(before.module_id, sizeof(before.module_id), "%.*s",
			 (int)len, text);
	if (!get_field(body, "max_pcrs", &v) || !cb_get_uint(&v, &max) ||
	    max != NSM_PCR_COUNT)
		return "max_pcrs is not 32";
	if (!get_field(body, "digest", &v) || !cb_get_text(&v, &text, &len) ||
	    !cb_text_is(text, len, "SHA384"))
		return "digest is not \"SHA384\"";
	return check_locked_pcrs(body);
}

static const char *check_random(struct cb_reader body)
{
	struct cb_reader v;
	const uint8_t *data;
	size_t len;

	if (!get_field(body, "random", &v) || !cb_get_bytes(&v, &data, &len) ||
	    !len)
		return "no random bytes";
	return NULL;
}

/* A COSE_Sign1, tagged (18) or not: nsm-check checks the rest. */
static const char *check_document(struct cb_reader body)
{
	struct cb_reader v;
	const uint8_t *doc;
	size_t len;

	if (!get_field(body, "document", &v) || !cb_get_bytes(&v, &doc, &len) ||
	    !len)
		return "no document bytes";
	if (doc[0] != 0x84 && !(len > 1 && doc[0] == 0xd2 && doc[1] == 0x84))
		return "the document is not a COSE_Sign1 (an array of 4)";
	return NULL;
}

static const struct {
	const char *name;
	bool body;
	const char *(*check)(struct cb_reader body);
} variants[] = {
	{ "DescribeNSM", true, check_describe_nsm },
	{ "DescribePCR", true, check_describe_pcr },
	{ "ExtendPCR", true, check_pcr_data },
	{ "LockPCR", false, NULL },
	{ "LockPCRs", false, NULL },
	{ "GetRandom", true, check_random },
	{ "Attestation", true, check_document },
};

/* How the requests were answered, for the summary. */
static struct {
	unsigned long emsgsize, bad, requests;
	unsigned long errors[ARRAY_SIZE(error_codes)];
	unsigned long successes[ARRAY_SIZE(variants)];
} tally;

/* Whether @req holds @name as a CBOR text string (the request it answers). */
static bool names(const uint8_t *req, size_t len, const char *name)
{
	uint8_t text[32];
	size_t n = strlen(name);

	text[0] = CB_TEXT << 5 | n;	/* every name is under 24 bytes */
	memcpy(text + 1, name, n);
	return memmem(req, len, text, n + 1) != NULL;
}

/* ---- judging one answer -------------------------------------------------- */

static const char *judge_error(const struct nsm_resp *r)
{
	struct cb_reader body = r->body;
	const char *code;
	size_t len, i;

	if (!r->has_body || !cb_get_text(&body, &code, &len))
		return "an Error without an ErrorCode name";
	for (i = 0; i < ARRAY_SIZE(error_codes); i++) {
		if (cb_text_is(code, len, error_codes[i])) {
			tally.errors[i]++;
			return NULL;
		}
	}
	return fail("an Error with \"%.*s\", not an ErrorCode name", (int)len,
		    code);
}

static const char *judge_success(const struct nsm_resp *r, const uint8_t *req,
				 size_t len)
{
	const char *err;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(variants); i++)
		if (nsm_is(r, variants[i].name))
			break;
	if (i == ARRAY_SIZE(variants))
		return fail("answered \"%.*s\", no variant of the catalogue",
			    (int)r->name_len, r->name);
	if (r->has_body != variants[i].body)
		return fail("answered %s %s a body", variants[i].name,
			    r->has_body ? "with" : "without");
	if (!names(req, len, variants[i].name))
		return fail("answered %s, which the request does not name",
			    variants[i].name);
	err = variants[i].check ? variants[i].check(r->body) : NULL;
	if (err)
		return fail("answered %s: %s", variants[i].name, err);
	tally.successes[i]++;
	return NULL;
}

/* The verdict on the answer (rc, resp) to @q: NULL when it is acceptable. */
static const char *judge(const struct fuzz_req *q, int rc)
{
	struct nsm_resp r;
	const char *bad;

	if (rc == -EMSGSIZE && q->len > NSM_REQUEST_MAX) {
		tally.emsgsize++;
		return NULL;
	}
	if (rc)
		return fail("NSM_IOCTL_RAW: %s; only EMSGSIZE, for over %d bytes, is acceptable",
			    strerror(-rc), NSM_REQUEST_MAX);
	if (q->expect == FE_EMSGSIZE)
		return fail("answered: the driver refuses over %d bytes (EMSGSIZE)",
			    NSM_REQUEST_MAX);
	if (!nsm_parse(resp, resp_len, &r, &bad))
		return fail("the answer (%zu bytes) is not a well-formed response: %s",
			    resp_len, bad);
	if (nsm_is(&r, "Error"))
		return judge_error(&r);
	if (q->expect == FE_ERROR)
		return fail("answered %.*s to bytes that are not one CBOR item",
			    (int)r.name_len, r.name);
	return judge_success(&r, q->buf, q->len);
}

/* ---- TAP ----------------------------------------------------------------- */

static void result(bool ok, const char *fmt, ...)
{
	va_list ap;

	results++;
	failed += !ok;
	printf("%sok %d - ", ok ? "" : "not ", results);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	watch->result = results + 1;
}

static void show_failure(unsigned long n, const struct fuzz_req *q, int rc,
			 const char *err)
{
	char h[2 * HEX_SHOWN + 4];

	printf("#   request %lu (%s of %s, %zu bytes): %s\n", n,
	       fuzz_mutation_name(q->mutation), fuzz_base_name(q->base), q->len,
	       err);
	hex(h, sizeof(h), q->buf, q->len, HEX_SHOWN);
	printf("#     sent    %s\n", h);
	if (!rc) {
		hex(h, sizeof(h), resp, resp_len, HEX_SHOWN);
		printf("#     answer  %s (%zu bytes)\n", h, resp_len);
	}
}

/* ---- the liveness probe -------------------------------------------------- */

/* A request that must succeed as @name: the verdict, NULL when it did. */
static const char *probe_one(const uint8_t *req, size_t len, const char *name,
			     struct nsm_resp *r)
{
	const char *bad;
	int rc = ask(req, len);

	if (rc)
		return fail("NSM_IOCTL_RAW: %s", strerror(-rc));
	if (!nsm_parse(resp, resp_len, r, &bad))
		return fail("the answer is not well formed: %s", bad);
	if (!nsm_is(r, name) || !r->has_body)
		return fail("answered %.*s, not %s", (int)r->name_len, r->name,
			    name);
	return NULL;
}

static const char *probe_pcr(unsigned int i)
{
	uint8_t req[64];
	struct nsm_resp r;
	struct cb_reader v;
	const uint8_t *data;
	const char *err;
	size_t len;
	bool lock;

	describe("the liveness probe's DescribePCR %u", i);
	err = probe_one(req, nsm_req_u16(req, sizeof(req), "DescribePCR",
					 "index", i), "DescribePCR", &r);
	if (err)
		return fail("DescribePCR %u: %s", i, err);
	if (!get_field(r.body, "lock", &v) || !cb_get_bool(&v, &lock) || !lock)
		return fail("DescribePCR %u: not locked", i);
	if (!get_field(r.body, "data", &v) || !cb_get_bytes(&v, &data, &len) ||
	    len != PCR_SIZE)
		return fail("DescribePCR %u: no 48-byte data", i);
	if (!before.taken)
		memcpy(before.pcr[i], data, PCR_SIZE);
	else if (memcmp(before.pcr[i], data, PCR_SIZE))
		return fail("PCR%u changed: the fuzz must never reach a locked PCR",
			    i);
	return NULL;
}

/* DescribeNSM and PCR0-15 as they were: NULL, or what is wrong. */
static const char *probe(void)
{
	uint8_t req[32];
	struct nsm_resp r;
	const char *err;
	unsigned int i;

	describe("the liveness probe's DescribeNSM");
	err = probe_one(req, nsm_req_plain(req, sizeof(req), "DescribeNSM"),
			"DescribeNSM", &r);
	if (!err)
		err = check_describe_nsm(r.body);
	if (err)
		return fail("DescribeNSM: %s", err);
	for (i = 0; i < LOCKED_PCRS; i++) {
		err = probe_pcr(i);
		if (err)
			return err;
	}
	before.taken = true;
	return NULL;
}

/* ---- the fuzz ------------------------------------------------------------ */

/* Requests @first to @first + @n - 1 of the stream: how many failed. */
static unsigned long fuzz_batch(struct fuzz_rng *rng, unsigned long first,
				unsigned long n)
{
	static struct fuzz_req q;
	unsigned long i, bad = 0;
	const char *err;
	char h[2 * 16 + 4];
	int rc;

	for (i = first; i < first + n; i++) {
		fuzz_make(rng, &q);
		hex(h, sizeof(h), q.buf, q.len, 16);
		describe("request %lu (%s of %s, %zu bytes: %s)", i,
			 fuzz_mutation_name(q.mutation), fuzz_base_name(q.base),
			 q.len, h);
		rc = ask(q.buf, q.len);
		tally.requests++;
		err = judge(&q, rc);
		if (!err)
			continue;
		tally.bad++;
		if (bad++ < SHOWN_PER_BATCH)
			show_failure(i, &q, rc, err);
	}
	return bad;
}

/* The empty request: an Error, and the NSM still answers after it. */
static void check_empty(void)
{
	static const struct fuzz_req empty = { .expect = FE_ERROR };
	const char *err;
	int rc;

	describe("the empty request (0 bytes)");
	rc = ask(empty.buf, 0);
	err = judge(&empty, rc);
	if (!err)
		err = probe();
	result(!err, "an empty request (0 bytes) is answered with an Error; DescribeNSM and PCR0-15 unchanged after it");
	if (err)
		printf("#   %s\n", err);
}

static void print_outcomes(void)
{
	size_t i;

	printf("# outcomes of %lu requests: EMSGSIZE %lu, not acceptable %lu\n",
	       tally.requests, tally.emsgsize, tally.bad);
	printf("# Error:");
	for (i = 0; i < ARRAY_SIZE(error_codes); i++)
		if (tally.errors[i])
			printf(" %s %lu", error_codes[i], tally.errors[i]);
	printf("\n# success:");
	for (i = 0; i < ARRAY_SIZE(variants); i++)
		if (tally.successes[i])
			printf(" %s %lu", variants[i].name, tally.successes[i]);
	printf("\n");
}

static int run(uint64_t seed, unsigned long count)
{
	unsigned long first, n, bad, batches = (count + BATCH - 1) / BATCH;
	struct fuzz_rng rng;
	const char *err;
	double seconds;
	uint64_t t0;

	printf("TAP version 13\n# seed %" PRIu64 ", %lu requests (replay: echo '%" PRIu64 " %lu' | nsm-fuzz)\n1..%lu\n",
	       seed, count, seed, count, batches + 2);
	watch->result = 1;
	nsm_fd = nsm_open();
	if (nsm_fd < 0) {
		printf("not ok 1 - open %s: %s\nBail out! no usable %s\n",
		       NSM_DEV, strerror(-nsm_fd), NSM_DEV);
		return 1;
	}
	err = probe();
	result(!err, "before the fuzz: DescribeNSM answers, PCR0-15 are locked (their values kept)");
	if (err) {
		printf("#   %s\nBail out! the NSM does not answer as the probe needs\n",
		       err);
		return 1;
	}
	fuzz_seed(&rng, seed);
	t0 = now_ns();
	for (first = 0; first < count; first += n) {
		n = count - first < BATCH ? count - first : BATCH;
		bad = fuzz_batch(&rng, first, n);
		err = probe();
		result(!bad && !err, "requests %lu-%lu: %lu of %lu answered acceptably; then DescribeNSM answers, PCR0-15 unchanged",
		       first, first + n - 1, n - bad, n);
		if (err)
			printf("#   the probe: %s\n", err);
	}
	seconds = (now_ns() - t0) / 1e9;
	printf("# %lu requests in %.2f s (%.0f/s, the probes' %d requests per %d included)\n",
	       count, seconds, count / seconds, 1 + LOCKED_PCRS, BATCH);
	print_outcomes();
	check_empty();
	printf("# %d passed, %d failed\n", results - failed, failed);
	return failed ? 1 : 0;
}

/* ---- the request line ---------------------------------------------------- */

/* One line from standard input within LINE_TIMEOUT s: NULL, or why not. */
static const char *read_line(char *line, size_t size)
{
	uint64_t end = now_ns() + LINE_TIMEOUT * 1000000000ULL, t;
	struct pollfd p = { .fd = 0, .events = POLLIN };
	size_t len = 0;
	ssize_t n;

	for (;;) {
		t = now_ns();
		if (t >= end || poll(&p, 1, (end - t) / 1000000 + 1) == 0)
			return "no complete request line in time";
		n = read(0, line + len, size - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return "cannot read the request line";
		line[len + n] = 0;
		len += n;
		if (n == 0 || strchr(line, '\n'))
			break;	/* the end of writing ends the line too */
		if (len == size - 1)
			return "the request line is too long";
	}
	line[strcspn(line, "\r\n")] = 0;
	return NULL;
}

/* A decimal number, all of @word: false when it is not one or too big. */
static bool decimal(const char *word, uint64_t *v)
{
	char *end;

	if (!word || word[0] < '0' || word[0] > '9')
		return false;
	errno = 0;
	*v = strtoull(word, &end, 10);
	return !errno && !*end;
}

static const char *parse_line(char *line, uint64_t *seed, unsigned long *count,
			      unsigned int *limit)
{
	char *save, *words[4];
	uint64_t n, seconds = ANSWER_LIMIT;
	int i;

	words[0] = strtok_r(line, " \t", &save);
	for (i = 1; i < 4; i++)
		words[i] = strtok_r(NULL, " \t", &save);
	if (!decimal(words[0], seed) || !decimal(words[1], &n) ||
	    (words[2] && !decimal(words[2], &seconds)) || words[3])
		return "the request is not \"SEED COUNT [LIMIT]\" (decimal numbers, SEED below 2^64)";
	if (n < 1 || n > COUNT_MAX)
		return "COUNT is not 1 to 100000";
	if (seconds < 1 || seconds > ANSWER_LIMIT)
		return "LIMIT is not 1 to 10 seconds";
	*count = n;
	*limit = seconds;
	return NULL;
}

/* ---- the watch ----------------------------------------------------------- */

/*
 * Whether the child is in one ioctl for over @limit s.  The start is
 * read before the clock: the other way round, a request that starts in
 * between is "older" than now, and the unsigned difference wraps (a false
 * alarm the host harness caught).
 */
static bool stuck(unsigned int limit)
{
	uint64_t since;

	if (!__atomic_load_n(&watch->busy, __ATOMIC_ACQUIRE))
		return false;
	since = __atomic_load_n(&watch->since_ns, __ATOMIC_ACQUIRE);
	return (int64_t)(now_ns() - since) > limit * 1000000000LL;
}

/* How the child ended: its exit status, or 1 with a line saying why. */
static int reap(pid_t child)
{
	int status;

	if (waitpid(child, &status, 0) != child)
		return 1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	printf("Bail out! the fuzzing process died of signal %d (%s) at %s\n",
	       WTERMSIG(status), strsignal(WTERMSIG(status)), watch->what);
	return 1;
}

/* Copies the child's output until its end, or until a request hangs. */
static int supervise(pid_t child, int from, unsigned int limit)
{
	struct pollfd p = { .fd = from, .events = POLLIN };
	char buf[4096];
	ssize_t n;

	for (;;) {
		if (poll(&p, 1, 250) > 0) {
			n = read(from, buf, sizeof(buf));
			if (n == 0)
				return reap(child);
			if (n > 0 && write_all(1, buf, n))
				break;	/* the reader went away */
			if (n < 0 && errno != EINTR)
				break;
		}
		if (stuck(limit)) {
			printf("not ok %d - %s: no answer in %u s (the driver waits 120 s): the NSM stopped answering\n"
			       "Bail out! the NSM stopped answering\n",
			       watch->result, watch->what, limit);
			break;
		}
	}
	/* still in the ioctl: it dies once that returns */
	kill(child, SIGKILL);
	return 1;
}

/* The child: the requests, with its output into @to. */
static void __attribute__((noreturn)) child(int to, uint64_t seed,
					    unsigned long count)
{
	int null = open("/dev/null", O_RDONLY);

	/* nothing of the client's connection: only the parent holds it */
	if (null < 0 || dup2(null, 0) < 0 || dup2(to, 1) < 0 || dup2(to, 2) < 0)
		_exit(1);
	close(null);
	close(to);
	setvbuf(stdout, NULL, _IOLBF, 0);
	exit(run(seed, count));
}

int main(void)
{
	char line[LINE_MAX_LEN];
	unsigned long count;
	unsigned int limit;
	const char *err;
	uint64_t seed;
	int out[2];
	pid_t pid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	err = read_line(line, sizeof(line));
	if (!err)
		err = parse_line(line, &seed, &count, &limit);
	if (err) {
		printf("error %s\n", err);
		return 2;
	}
	watch = mmap(NULL, sizeof(*watch), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (watch == MAP_FAILED || pipe2(out, O_CLOEXEC)) {
		printf("error cannot set up the watch: %s\n", strerror(errno));
		return 2;
	}
	pid = fork();
	if (pid == 0) {
		close(out[0]);
		child(out[1], seed, count);
	}
	close(out[1]);
	if (pid < 0) {
		printf("error cannot fork: %s\n", strerror(errno));
		return 2;
	}
	return supervise(pid, out[0], limit);
}
