// SPDX-License-Identifier: GPL-2.0
/*
 * Malformed NSM requests from a seed: see fuzz.h.
 *
 * A request starts as a shape (the variant's name and its fields), which
 * the structural mutations change (a field twice, of another type, a pad
 * up to the size limit) before it is encoded; the byte-level mutations
 * then change the encoding.  Every random choice comes from one splitmix64
 * stream, in a fixed order, so that a seed replays its requests exactly.
 */
#include <stdbool.h>
#include <string.h>
#include "cbor.h"
#include "fuzz.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define MAX_FIELDS	5	/* Attestation's 3, one twice, one unknown */
#define MAX_HEADS	64	/* more than any request of the catalogue has */
#define FIELD_MAX	1024	/* Attestation's fields, as AWS's check sends */

/* ---- the random stream ------------------------------------------------- */

void fuzz_seed(struct fuzz_rng *r, uint64_t seed)
{
	r->state = seed;
}

uint64_t fuzz_next(struct fuzz_rng *r)
{
	uint64_t z = (r->state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* (the modulo's bias is below 2^-40 for the small n used here) */
uint64_t fuzz_below(struct fuzz_rng *r, uint64_t n)
{
	return n ? fuzz_next(r) % n : 0;
}

static uint64_t between(struct fuzz_rng *r, uint64_t lo, uint64_t hi)
{
	return lo + fuzz_below(r, hi - lo + 1);
}

static void fill(struct fuzz_rng *r, uint8_t *p, size_t len)
{
	while (len--)
		*p++ = fuzz_next(r);
}

/* ---- shapes: a request before it is encoded ---------------------------- */

enum value_kind { V_UINT, V_BYTES, V_NULL, V_RAW };

struct field {
	const char *key;
	enum value_kind kind;
	uint64_t n;		/* V_UINT: the value; V_BYTES: the length */
	const uint8_t *raw;	/* V_RAW: encoded already (or not CBOR) */
	size_t raw_len;
};

struct shape {
	const char *name;
	bool has_fields;	/* {name: {fields}}, else the name alone */
	int nr;
	struct field f[MAX_FIELDS];
	const uint8_t *body;	/* instead of the fields' map: {name: body} */
	size_t body_len;
	bool twice;		/* {name: ..., name: ...} */
};

static const char *const base_names[FUZZ_NR_BASES] = {
	[FB_DESCRIBE_NSM] = "DescribeNSM",
	[FB_GET_RANDOM] = "GetRandom",
	[FB_DESCRIBE_PCR] = "DescribePCR",
	[FB_EXTEND_PCR] = "ExtendPCR",
	[FB_LOCK_PCR] = "LockPCR",
	[FB_LOCK_PCRS] = "LockPCRs",
	[FB_ATTESTATION] = "Attestation",
};

static void set_uint(struct field *f, const char *key, uint64_t n)
{
	*f = (struct field){ .key = key, .kind = V_UINT, .n = n };
}

static void set_bytes(struct field *f, const char *key, uint64_t len)
{
	*f = (struct field){ .key = key, .kind = V_BYTES, .n = len };
}

/*
 * An index: mostly the free PCRs (which may extend and lock), often the
 * locked ones (which must refuse), sometimes none at all.
 */
static uint64_t pcr_index(struct fuzz_rng *r)
{
	static const uint64_t odd[] = {
		32, 33, 255, 256, 65535, 65536, 0xffffffffULL, UINT64_MAX,
	};

	switch (fuzz_below(r, 4)) {
	case 0:
		return odd[fuzz_below(r, ARRAY_SIZE(odd))];
	case 1:
		return fuzz_below(r, 16);
	default:
		return between(r, 16, 31);
	}
}

/* An Attestation field: null, empty, small, or at and over the limit. */
static void blob_field(struct fuzz_rng *r, struct field *f, const char *key)
{
	switch (fuzz_below(r, 8)) {
	case 0:
		*f = (struct field){ .key = key, .kind = V_NULL };
		break;
	case 1:
		set_bytes(f, key, 0);
		break;
	case 2:
		set_bytes(f, key, FIELD_MAX + fuzz_below(r, 2));
		break;
	default:
		set_bytes(f, key, between(r, 1, 64));
		break;
	}
}

static void make_base(struct fuzz_rng *r, enum fuzz_base base, struct shape *s)
{
	memset(s, 0, sizeof(*s));
	s->name = base_names[base];
	s->has_fields = base != FB_DESCRIBE_NSM && base != FB_GET_RANDOM;
	/*
	 * The locks mostly aim at PCRs locked already: one that locks the
	 * free PCRs ends every ExtendPCR's success for the rest of the run.
	 */
	switch (base) {
	case FB_DESCRIBE_PCR:
		set_uint(&s->f[s->nr++], "index", pcr_index(r));
		break;
	case FB_LOCK_PCR:
		set_uint(&s->f[s->nr++], "index",
			 fuzz_below(r, 8) ? fuzz_below(r, 16) : pcr_index(r));
		break;
	case FB_LOCK_PCRS:
		set_uint(&s->f[s->nr++], "range",
			 fuzz_below(r, 8) ? fuzz_below(r, 17) : pcr_index(r));
		break;
	case FB_EXTEND_PCR:
		set_uint(&s->f[s->nr++], "index", pcr_index(r));
		set_bytes(&s->f[s->nr++], "data",
			  fuzz_below(r, 8) ? fuzz_below(r, 65) : fuzz_below(r, 1001));
		break;
	case FB_ATTESTATION:
		blob_field(r, &s->f[s->nr++], "user_data");
		blob_field(r, &s->f[s->nr++], "nonce");
		blob_field(r, &s->f[s->nr++], "public_key");
		break;
	default:
		break;
	}
}

static void put_value(struct cb_writer *w, const struct field *f,
		      struct fuzz_rng *r)
{
	static uint8_t data[FUZZ_REQ_CAP];

	switch (f->kind) {
	case V_UINT:
		cb_put_uint(w, f->n);
		break;
	case V_BYTES:
		fill(r, data, f->n);
		cb_put_bytes(w, data, f->n);
		break;
	case V_NULL:
		cb_put_null(w);
		break;
	case V_RAW:
		cb_put_raw(w, f->raw, f->raw_len);
		break;
	}
}

static void put_entry(struct cb_writer *w, const struct shape *s,
		      struct fuzz_rng *r)
{
	int i;

	cb_put_text(w, s->name);
	if (s->body) {
		cb_put_raw(w, s->body, s->body_len);
		return;
	}
	cb_put_map(w, s->nr);
	for (i = 0; i < s->nr; i++) {
		cb_put_text(w, s->f[i].key);
		put_value(w, &s->f[i], r);
	}
}

/* The shape's CBOR into @buf: its length, 0 if it does not fit. */
static size_t encode(const struct shape *s, uint8_t *buf, size_t cap,
		     struct fuzz_rng *r)
{
	struct cb_writer w;

	cb_writer_init(&w, buf, cap);
	if (!s->has_fields && !s->body && !s->twice) {
		cb_put_text(&w, s->name);
	} else {
		cb_put_map(&w, s->twice ? 2 : 1);
		put_entry(&w, s, r);
		if (s->twice)
			put_entry(&w, s, r);
	}
	return w.overflow ? 0 : w.len;
}

/* ---- structural mutations (of the shape) -------------------------------- */

/* Values of other types, widths and sizes than the catalogue's. */
static const struct {
	const char *bytes;
	size_t len;
} odd_values[] = {
	{ "\x19\x00\x10", 3 },				/* 16, as a u16 */
	{ "\x1a\x00\x00\x00\x10", 5 },			/* 16, as a u32 */
	{ "\x1b\x00\x00\x00\x00\x00\x00\x00\x10", 9 },	/* 16, as a u64 */
	{ "\x19\xff\xff", 3 },				/* 65535 */
	{ "\x1a\x00\x01\x00\x00", 5 },			/* 65536 */
	{ "\x1b\xff\xff\xff\xff\xff\xff\xff\xff", 9 },	/* 2^64 - 1 */
	{ "\x20", 1 },					/* -1 */
	{ "\x3b\xff\xff\xff\xff\xff\xff\xff\xff", 9 },	/* -2^64 */
	{ "\x61\x30", 2 },				/* "0" */
	{ "\x60", 1 },					/* "" */
	{ "\x41\x10", 2 },				/* h'10' */
	{ "\x40", 1 },					/* h'' */
	{ "\xf9\x3c\x00", 3 },				/* 1.0, half */
	{ "\xf9\x7e\x00", 3 },				/* NaN, half */
	{ "\xfa\x7f\x80\x00\x00", 5 },			/* +inf, single */
	{ "\xfb\x3f\xf0\x00\x00\x00\x00\x00\x00", 9 },	/* 1.0, double */
	{ "\xf4", 1 },					/* false */
	{ "\xf5", 1 },					/* true */
	{ "\xf6", 1 },					/* null */
	{ "\xf7", 1 },					/* undefined */
	{ "\xf0", 1 },					/* simple(16) */
	{ "\xf8\x20", 2 },				/* simple(32) */
	{ "\xf8\x10", 2 },		/* simple(16) in 2 bytes: not well formed */
	{ "\xfc", 1 },			/* reserved additional info 28 */
	{ "\xff", 1 },			/* a break outside any indefinite item */
	{ "\xc0\x74" "2026-01-01T00:00:00Z", 22 },	/* tag 0, a date */
	{ "\xc2\x42\x01\x00", 4 },			/* bignum 256 */
	{ "\xd9\xd9\xf7\x10", 4 },			/* self-described 16 */
	{ "\x80", 1 },					/* [] */
	{ "\xa0", 1 },					/* {} */
	{ "\x9f\xff", 2 },				/* [_ ] */
	{ "\xbf\xff", 2 },				/* {_ } */
	{ "\x82\x01\x02", 3 },				/* [1, 2] */
	{ "\xa1\x01\x02", 3 },				/* {1: 2} */
	{ "\x5f\x41\x00\xff", 4 },			/* (_ h'00') */
	{ "\x7f\x61x\xff", 4 },				/* (_ "x") */
	{ "\x5b\xff\xff\xff\xff\xff\xff\xff\xff", 9 },	/* 2^64-1 bytes: none */
	{ "\x9b\x00\x00\x00\x01\x00\x00\x00\x00", 9 },	/* 2^32 items: none */
	{ "\xbb\xff\xff\xff\xff\xff\xff\xff\xff", 9 },	/* 2^64-1 pairs: none */
};

/* An odd value into @f->raw: one of the table, or nested arrays around 0. */
static void odd_value(struct fuzz_rng *r, struct field *f)
{
	static uint8_t deep[NSM_REQUEST_MAX];
	size_t i, depth;

	f->kind = V_RAW;
	if (fuzz_below(r, 8)) {
		i = fuzz_below(r, ARRAY_SIZE(odd_values));
		f->raw = (const uint8_t *)odd_values[i].bytes;
		f->raw_len = odd_values[i].len;
		return;
	}
	/* around the depth readers stop at (16 here and in the device) */
	depth = fuzz_below(r, 2) ? between(r, 1, 40) : between(r, 41, 2000);
	for (i = 0; i < depth; i++)
		deep[i] = 0x81;
	deep[depth] = 0;
	f->raw = deep;
	f->raw_len = depth + 1;
}

/* One field given twice (the second with another value), or the request. */
static void dup_key(struct fuzz_rng *r, struct shape *s)
{
	struct field *f;

	if (!s->nr || fuzz_below(r, 3) == 0) {
		s->twice = true;
		return;
	}
	f = &s->f[s->nr];
	*f = s->f[fuzz_below(r, s->nr)];
	if (f->kind == V_UINT)
		f->n = pcr_index(r);
	else if (f->kind == V_BYTES)
		f->n = fuzz_below(r, 65);
	s->nr++;
}

/* A field of another type, an unknown field, a missing one, or no map. */
static void field_value(struct fuzz_rng *r, struct shape *s)
{
	static const char *const unknown[] = { "extra", "index", "", "Index" };
	uint64_t how = fuzz_below(r, 5);
	struct field *f;

	if (!s->has_fields && how < 2) {
		s->has_fields = true;	/* {"GetRandom": {...}} */
		how = 2;
	}
	if (how == 0 && s->nr) {
		f = &s->f[fuzz_below(r, s->nr)];	/* one missing */
		*f = s->f[--s->nr];
		return;
	}
	if (how == 1) {
		struct field body;

		odd_value(r, &body);	/* {name: odd}: not a map of fields */
		s->body = body.raw;
		s->body_len = body.raw_len;
		s->has_fields = true;
		return;
	}
	if (how == 2 || !s->nr) {
		f = &s->f[s->nr++];
		f->key = unknown[fuzz_below(r, ARRAY_SIZE(unknown))];
	} else {
		f = &s->f[fuzz_below(r, s->nr)];
	}
	odd_value(r, f);
}

/*
 * An unknown field "pad" sized so that the request is about @target
 * bytes: the limit is 4096, so 4095, 4096, 4097 and around.  Its length's
 * head is 3 bytes from 256 to 65535 bytes, so one correction hits it.
 */
static size_t oversize(struct fuzz_rng *r, struct fuzz_req *q, struct shape *s)
{
	static const size_t near[] = {
		NSM_REQUEST_MAX - 1, NSM_REQUEST_MAX, NSM_REQUEST_MAX + 1,
		NSM_REQUEST_MAX + 2,
	};
	size_t target, len;
	struct field *pad;

	if (fuzz_below(r, 2))
		target = near[fuzz_below(r, ARRAY_SIZE(near))];
	else
		target = between(r, NSM_REQUEST_MAX - 200, FUZZ_REQ_CAP);
	s->has_fields = true;
	pad = &s->f[s->nr++];
	set_bytes(pad, "pad", 256);
	len = encode(s, q->buf, sizeof(q->buf), r);
	/* (every base is under 3.2 KiB: the pad stays over 256 bytes) */
	if (len && len != target) {
		pad->n += target - len;
		len = encode(s, q->buf, sizeof(q->buf), r);
	}
	return len;
}

/* ---- byte-level mutations ---------------------------------------------- */

/* Replaces @old_len bytes at @at with @with (cut at FUZZ_REQ_CAP). */
static void splice(struct fuzz_req *q, size_t at, size_t old_len,
		   const uint8_t *with, size_t len)
{
	size_t rest = q->len - old_len;

	if (len > FUZZ_REQ_CAP - rest)
		len = FUZZ_REQ_CAP - rest;
	memmove(q->buf + at + len, q->buf + at + old_len, q->len - at - old_len);
	if (len)
		memcpy(q->buf + at, with, len);
	q->len = rest + len;
}

static void flip(struct fuzz_rng *r, struct fuzz_req *q)
{
	q->buf[fuzz_below(r, q->len)] ^= 1 << fuzz_below(r, 8);
}

static void insert(struct fuzz_rng *r, struct fuzz_req *q)
{
	uint8_t bytes[8];
	size_t n = between(r, 1, sizeof(bytes));

	fill(r, bytes, n);
	splice(q, fuzz_below(r, q->len + 1), 0, bytes, n);
}

/* Never down to nothing: the empty request is nsm-fuzz's own check. */
static void delete(struct fuzz_rng *r, struct fuzz_req *q)
{
	size_t n;

	if (q->len < 2) {
		flip(r, q);
		return;
	}
	n = between(r, 1, q->len - 1 < 8 ? q->len - 1 : 8);
	splice(q, fuzz_below(r, q->len - n + 1), n, NULL, 0);
}

/* Bytes after a complete item: random ones, or a second request. */
static void append(struct fuzz_rng *r, struct fuzz_req *q)
{
	uint8_t more[FUZZ_REQ_CAP];
	struct shape s;
	size_t n;

	if (fuzz_below(r, 2)) {
		n = between(r, 1, 16);
		fill(r, more, n);
	} else {
		make_base(r, fuzz_below(r, FUZZ_NR_BASES), &s);
		n = encode(&s, more, sizeof(more), r);
	}
	splice(q, q->len, 0, more, n);
}

struct heads {
	size_t at[MAX_HEADS];
	uint8_t size[MAX_HEADS];
	uint8_t major[MAX_HEADS];
	int n;
};

/*
 * Every item's head in a well-formed request: CBOR lays items out in
 * order, so a walk that skips string contents meets all of them.
 */
static void find_heads(const struct fuzz_req *q, struct heads *h)
{
	struct cb_reader r;
	struct cb_head head;
	const uint8_t *start;

	cb_reader_init(&r, q->buf, q->len);
	for (h->n = 0; h->n < MAX_HEADS && !cb_at_end(&r); h->n++) {
		start = r.p;
		if (!cb_get_head(&r, &head))
			break;
		h->at[h->n] = start - q->buf;
		h->size[h->n] = r.p - start;
		h->major[h->n] = head.major;
		if (head.major != CB_BYTES && head.major != CB_TEXT)
			continue;
		if (head.value > (uint64_t)(r.end - r.p))
			break;
		r.p += head.value;
	}
}

static void change_major(struct fuzz_rng *r, struct fuzz_req *q)
{
	struct heads h;
	size_t at;

	find_heads(q, &h);
	if (!h.n) {
		flip(r, q);
		return;
	}
	at = h.at[fuzz_below(r, h.n)];
	q->buf[at] = ((q->buf[at] >> 5) + between(r, 1, 7)) % 8 << 5 |
		     (q->buf[at] & 0x1f);
}

/* A head of @major with argument @v, in @wide (8) bytes or the fewest. */
static size_t make_head(uint8_t *h, unsigned int major, uint64_t v, bool wide)
{
	unsigned int info;
	size_t n, i;

	if (!wide && v < 24) {
		h[0] = major << 5 | v;
		return 1;
	}
	info = wide || v > 0xffffffff ? 27 : v > 0xffff ? 26 : v > 0xff ? 25 : 24;
	n = (size_t)1 << (info - 24);
	h[0] = major << 5 | info;
	for (i = n; i >= 1; i--) {
		h[i] = v & 0xff;
		v >>= 8;
	}
	return n + 1;
}

/* One head's length, count or value: past the end, or huge. */
static void huge_length(struct fuzz_rng *r, struct fuzz_req *q)
{
	struct heads h;
	uint8_t head[9];
	uint64_t left, v;
	size_t n;
	int i;

	find_heads(q, &h);
	if (!h.n) {
		flip(r, q);
		return;
	}
	i = fuzz_below(r, h.n);
	left = q->len - h.at[i] - h.size[i];
	switch (fuzz_below(r, 6)) {
	case 0:
		v = left + 1;
		break;
	case 1:
		v = left + between(r, 2, 64);
		break;
	case 2:
		v = 0xffff;
		break;
	case 3:
		v = 0xffffffff;
		break;
	case 4:
		v = 1ULL << 63;
		break;
	default:
		v = UINT64_MAX;
		break;
	}
	n = make_head(head, h.major[i], v, fuzz_below(r, 4) == 0);
	splice(q, h.at[i], h.size[i], head, n);
}

/* A string, array or map made indefinite, with or without a break after. */
static void indefinite(struct fuzz_rng *r, struct fuzz_req *q)
{
	struct heads h;
	uint8_t head, brk = 0xff;
	int i, k, n = 0, which[MAX_HEADS];

	find_heads(q, &h);
	for (i = 0; i < h.n; i++)
		if (h.major[i] >= CB_BYTES && h.major[i] <= CB_MAP)
			which[n++] = i;
	if (!n) {
		flip(r, q);
		return;
	}
	k = which[fuzz_below(r, n)];
	head = h.major[k] << 5 | 31;
	splice(q, h.at[k], h.size[k], &head, 1);
	if (fuzz_below(r, 2))
		splice(q, q->len, 0, &brk, 1);
}

/* Wrapped in @depth arrays, indefinite arrays, tags or maps {"x": ...}. */
static void nest(struct fuzz_rng *r, struct fuzz_req *q)
{
	static const uint8_t opens[][3] = {
		{ 0x81 }, { 0x9f }, { 0xc6 }, { 0xa1, 0x61, 'x' },
	};
	static const size_t open_len[] = { 1, 1, 1, 3 };
	size_t kind = fuzz_below(r, ARRAY_SIZE(opens)), room, depth, i;
	bool closed = kind == 1 && fuzz_below(r, 4);	/* breaks, mostly */
	size_t w = open_len[kind];

	room = (FUZZ_REQ_CAP - q->len) / (w + closed);
	switch (fuzz_below(r, 5)) {
	case 0:
	case 1:
		depth = between(r, 1, 20);
		break;
	case 2:
	case 3:
		depth = between(r, 21, 300);
		break;
	default:
		depth = room;
		break;
	}
	if (depth > room)
		depth = room;
	/* one move, not one per level: depth reaches thousands */
	memmove(q->buf + depth * w, q->buf, q->len);
	for (i = 0; i < depth; i++)
		memcpy(q->buf + i * w, opens[kind], w);
	q->len += depth * w;
	if (closed) {
		memset(q->buf + q->len, 0xff, depth);
		q->len += depth;
	}
}

static void random_bytes(struct fuzz_rng *r, struct fuzz_req *q)
{
	static const uint8_t firsts[] = { 0xa1, 0xbf, 0x6b, 0x69, 0x7f };
	uint64_t size = fuzz_below(r, 10);

	if (size < 7)
		q->len = between(r, 1, 64);
	else if (size < 9)
		q->len = between(r, 65, 1024);
	else
		q->len = between(r, 1025, FUZZ_REQ_CAP);
	fill(r, q->buf, q->len);
	if (fuzz_below(r, 2))	/* a plausible start: a map, a name */
		q->buf[0] = firsts[fuzz_below(r, ARRAY_SIZE(firsts))];
}

static void havoc(struct fuzz_rng *r, struct fuzz_req *q)
{
	int n = between(r, 2, 8);

	while (n--) {
		switch (fuzz_below(r, 4)) {
		case 0:
			flip(r, q);
			break;
		case 1:
			insert(r, q);
			break;
		case 2:
			delete(r, q);
			break;
		default:
			q->buf[fuzz_below(r, q->len)] = fuzz_next(r);
			break;
		}
	}
}

/* ---- the stream --------------------------------------------------------- */

static const struct {
	const char *name;
	unsigned int weight;	/* in 100 */
} mutations[FUZZ_NR_MUTATIONS] = {
	[FM_NONE] = { "none", 4 },
	[FM_BIT_FLIP] = { "bit-flip", 10 },
	[FM_INSERT] = { "insert", 7 },
	[FM_DELETE] = { "delete", 7 },
	[FM_TRUNCATE] = { "truncate", 8 },
	[FM_APPEND] = { "append", 6 },
	[FM_MAJOR] = { "major-type", 7 },
	[FM_HUGE_LENGTH] = { "huge-length", 8 },
	[FM_INDEFINITE] = { "indefinite", 6 },
	[FM_NEST] = { "nest", 6 },
	[FM_DUP_KEY] = { "duplicate-key", 5 },
	[FM_FIELD_VALUE] = { "field-value", 10 },
	[FM_RANDOM] = { "random", 6 },
	[FM_OVERSIZE] = { "oversize", 4 },
	[FM_HAVOC] = { "havoc", 6 },
};

static enum fuzz_mutation pick_mutation(struct fuzz_rng *r)
{
	uint64_t x = fuzz_below(r, 100);
	int m;

	for (m = 0; m < FUZZ_NR_MUTATIONS - 1; m++) {
		if (x < mutations[m].weight)
			break;
		x -= mutations[m].weight;
	}
	return m;
}

/* The byte-level mutation @m of the request in @q. */
static void mutate_bytes(struct fuzz_rng *r, struct fuzz_req *q,
			 enum fuzz_mutation m)
{
	int n;

	switch (m) {
	case FM_BIT_FLIP:
		for (n = between(r, 1, 4); n; n--)
			flip(r, q);
		break;
	case FM_INSERT:
		insert(r, q);
		break;
	case FM_DELETE:
		delete(r, q);
		break;
	case FM_TRUNCATE:
		/* a strict prefix of one item is never a whole item */
		q->len = between(r, 1, q->len - 1);
		q->expect = FE_ERROR;
		break;
	case FM_APPEND:
		append(r, q);
		q->expect = FE_ERROR;
		break;
	case FM_MAJOR:
		change_major(r, q);
		break;
	case FM_HUGE_LENGTH:
		huge_length(r, q);
		break;
	case FM_INDEFINITE:
		indefinite(r, q);
		break;
	case FM_NEST:
		nest(r, q);
		break;
	case FM_HAVOC:
		havoc(r, q);
		break;
	default:
		break;
	}
}

void fuzz_make(struct fuzz_rng *r, struct fuzz_req *q)
{
	struct shape s;

	q->base = fuzz_below(r, FUZZ_NR_BASES);
	q->mutation = pick_mutation(r);
	q->expect = FE_ANY;
	make_base(r, q->base, &s);
	if (q->mutation == FM_RANDOM) {
		random_bytes(r, q);
	} else if (q->mutation == FM_OVERSIZE) {
		q->len = oversize(r, q, &s);
	} else {
		if (q->mutation == FM_DUP_KEY)
			dup_key(r, &s);
		else if (q->mutation == FM_FIELD_VALUE)
			field_value(r, &s);
		q->len = encode(&s, q->buf, sizeof(q->buf), r);
	}
	if (!q->len) {
		/* no shape here overflows; should one, a plain request */
		q->len = nsm_req_plain(q->buf, sizeof(q->buf), "DescribeNSM");
		q->mutation = FM_NONE;
	}
	mutate_bytes(r, q, q->mutation);
	if (q->len > NSM_REQUEST_MAX)
		q->expect = FE_EMSGSIZE;
}

const char *fuzz_base_name(enum fuzz_base base)
{
	return (unsigned int)base < FUZZ_NR_BASES ? base_names[base] : "?";
}

const char *fuzz_mutation_name(enum fuzz_mutation mutation)
{
	return (unsigned int)mutation < FUZZ_NR_MUTATIONS ?
	       mutations[mutation].name : "?";
}
