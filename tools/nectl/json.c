// SPDX-License-Identifier: GPL-2.0
/* A small JSON reader (RFC 8259, depth-limited) and a pretty-printing writer. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

struct parser {
	const char *base, *p, *end;
	char *err;
	size_t errlen;
	int depth, max_depth;
};

static struct json_value *parse_value(struct parser *ps);

static void fail(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct parser *ps, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ps->err[0])
		return;	/* keep the first, innermost message */
	n = snprintf(ps->err, ps->errlen, "at byte %zu: ", (size_t)(ps->p - ps->base));
	if (n < 0 || (size_t)n >= ps->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(ps->err + n, ps->errlen - n, fmt, ap);
	va_end(ap);
}

static void skip_space(struct parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' ||
				   *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static struct json_value *new_value(enum json_type type)
{
	struct json_value *v = calloc(1, sizeof(*v));

	if (v)
		v->type = type;
	return v;
}

static bool append_byte(char **buf, size_t *len, size_t *cap, char c)
{
	if (*len + 1 >= *cap) {
		size_t ncap = *cap ? *cap * 2 : 32;
		char *n = realloc(*buf, ncap);

		if (!n)
			return false;
		*buf = n;
		*cap = ncap;
	}
	(*buf)[(*len)++] = c;
	(*buf)[*len] = '\0';
	return true;
}

static bool append_utf8(char **buf, size_t *len, size_t *cap, unsigned long cp)
{
	bool ok = true;

	if (cp < 0x80)
		return append_byte(buf, len, cap, cp);
	if (cp < 0x800) {
		ok &= append_byte(buf, len, cap, 0xC0 | (cp >> 6));
	} else if (cp < 0x10000) {
		ok &= append_byte(buf, len, cap, 0xE0 | (cp >> 12));
		ok &= append_byte(buf, len, cap, 0x80 | ((cp >> 6) & 0x3F));
	} else {
		ok &= append_byte(buf, len, cap, 0xF0 | (cp >> 18));
		ok &= append_byte(buf, len, cap, 0x80 | ((cp >> 12) & 0x3F));
		ok &= append_byte(buf, len, cap, 0x80 | ((cp >> 6) & 0x3F));
	}
	return ok && append_byte(buf, len, cap, 0x80 | (cp & 0x3F));
}

static int parse_hex4(struct parser *ps, unsigned long *out)
{
	unsigned long v = 0;
	int i;

	if (ps->end - ps->p < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		char c = *ps->p++;

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	*out = v;
	return 0;
}

/*
 * The length of the UTF-8 sequence at @p (before @end), or 0 when it is not
 * well-formed UTF-8: a stray continuation byte, a truncated sequence, an
 * overlong form, a surrogate or a code point above U+10FFFF.  JSON text is
 * UTF-8 (RFC 8259), and serde_json, nitro-cli's reader, refuses anything
 * else: so does nectl, which would otherwise write the bytes back out.
 */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char lo = 0x80, hi = 0xBF;
	size_t n, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xC2 && p[0] <= 0xDF)
		n = 2;
	else if (p[0] >= 0xE0 && p[0] <= 0xEF)
		n = 3;
	else if (p[0] >= 0xF0 && p[0] <= 0xF4)
		n = 4;
	else
		return 0;
	if (p[0] == 0xE0)
		lo = 0xA0;	/* overlong */
	else if (p[0] == 0xED)
		hi = 0x9F;	/* surrogates */
	else if (p[0] == 0xF0)
		lo = 0x90;	/* overlong */
	else if (p[0] == 0xF4)
		hi = 0x8F;	/* above U+10FFFF */
	if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	return n;
}

/* Parses a string literal (ps->p at the opening quote) into a new buffer. */
static char *parse_string_raw(struct parser *ps)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;

	ps->p++;
	/* Start with an empty string, so that "" gives a buffer too. */
	if (!append_byte(&buf, &len, &cap, 'x'))
		goto oom;
	len = 0;
	buf[0] = '\0';
	while (ps->p < ps->end && *ps->p != '"') {
		unsigned char c = *ps->p++;
		unsigned long cp, lo;

		if (c < 0x20) {
			fail(ps, "control character in a string");
			goto bad;
		}
		if (c >= 0x80) {
			const char *seq = ps->p - 1;
			size_t n = utf8_len((const unsigned char *)seq,
					    (const unsigned char *)ps->end), i;

			if (!n) {
				ps->p = seq;
				fail(ps, "a string that is not UTF-8");
				goto bad;
			}
			for (i = 0; i < n; i++)
				if (!append_byte(&buf, &len, &cap, (unsigned char)seq[i]))
					goto oom;
			ps->p = seq + n;
			continue;
		}
		if (c != '\\') {
			if (!append_byte(&buf, &len, &cap, c))
				goto oom;
			continue;
		}
		if (ps->p >= ps->end)
			break;
		c = *ps->p++;
		switch (c) {
		case '"': case '\\': case '/':
			break;
		case 'b': c = '\b'; break;
		case 'f': c = '\f'; break;
		case 'n': c = '\n'; break;
		case 'r': c = '\r'; break;
		case 't': c = '\t'; break;
		case 'u':
			if (parse_hex4(ps, &cp)) {
				fail(ps, "bad \\u escape");
				goto bad;
			}
			if (cp >= 0xD800 && cp < 0xDC00) {
				if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u') {
					fail(ps, "unpaired surrogate");
					goto bad;
				}
				ps->p += 2;
				if (parse_hex4(ps, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
					fail(ps, "unpaired surrogate");
					goto bad;
				}
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			} else if (cp >= 0xDC00 && cp < 0xE000) {
				fail(ps, "unpaired surrogate");
				goto bad;
			}
			if (cp == 0) {
				fail(ps, "\\u0000 is not allowed here");
				goto bad;
			}
			if (!append_utf8(&buf, &len, &cap, cp))
				goto oom;
			continue;
		default:
			fail(ps, "bad escape \\%c", c);
			goto bad;
		}
		if (!append_byte(&buf, &len, &cap, c))
			goto oom;
	}
	if (ps->p >= ps->end) {
		fail(ps, "unterminated string");
		goto bad;
	}
	ps->p++;
	return buf;
oom:
	fail(ps, "out of memory");
bad:
	free(buf);
	return NULL;
}

static struct json_value *parse_number(struct parser *ps)
{
	const char *start = ps->p;
	struct json_value *v;

	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
		goto bad;
	if (*ps->p == '0')
		ps->p++;
	else
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	if (ps->p < ps->end && *ps->p == '.') {
		ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
			goto bad;
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
			goto bad;
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	v = new_value(JSON_NUMBER);
	if (v)
		v->text = strndup(start, ps->p - start);
	if (!v || !v->text) {
		free(v);
		fail(ps, "out of memory");
		return NULL;
	}
	return v;
bad:
	fail(ps, "malformed number");
	return NULL;
}

/* Appends a member, the arrays grown by doubling: linear in the members. */
static bool add_member(struct json_value *v, char *key, struct json_value *item)
{
	size_t cap = v->cap ? v->cap * 2 : 8;
	struct json_value **items;
	char **keys;

	if (v->count == v->cap) {
		items = realloc(v->items, cap * sizeof(*items));
		if (!items)
			return false;
		v->items = items;
		if (v->type == JSON_OBJECT) {
			keys = realloc(v->keys, cap * sizeof(*keys));
			if (!keys)
				return false;
			v->keys = keys;
		}
		v->cap = cap;
	}
	if (v->type == JSON_OBJECT)
		v->keys[v->count] = key;
	v->items[v->count++] = item;
	return true;
}

static int compare_keys(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * A key that the object has twice, or NULL: its keys sorted, then each
 * beside the next (n log n; a check of each key against every earlier
 * one made a 2 MiB registry entry minutes of work).
 */
static const char *duplicate_key(const struct json_value *obj, bool *oom)
{
	const char *dup = NULL;
	char **sorted;
	size_t i;

	*oom = false;
	if (obj->count < 2)
		return NULL;
	sorted = malloc(obj->count * sizeof(*sorted));
	if (!sorted) {
		*oom = true;
		return NULL;
	}
	memcpy(sorted, obj->keys, obj->count * sizeof(*sorted));
	qsort(sorted, obj->count, sizeof(*sorted), compare_keys);
	for (i = 1; i < obj->count && !dup; i++)
		if (!strcmp(sorted[i - 1], sorted[i]))
			dup = sorted[i];
	free(sorted);
	return dup;
}

static struct json_value *parse_container(struct parser *ps, bool is_object)
{
	char close = is_object ? '}' : ']';
	struct json_value *v = new_value(is_object ? JSON_OBJECT : JSON_ARRAY);
	char *key = NULL;
	struct json_value *item;

	if (!v)
		goto oom;
	if (++ps->depth > ps->max_depth) {
		fail(ps, "nested deeper than %d levels", ps->max_depth);
		goto bad;
	}
	ps->p++;
	skip_space(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		ps->depth--;
		return v;
	}
	for (;;) {
		skip_space(ps);
		if (is_object) {
			if (ps->p >= ps->end || *ps->p != '"') {
				fail(ps, "expected a \"key\"");
				goto bad;
			}
			key = parse_string_raw(ps);
			if (!key)
				goto bad;
			skip_space(ps);
			if (ps->p >= ps->end || *ps->p != ':') {
				fail(ps, "expected ':'");
				goto bad;
			}
			ps->p++;
		}
		item = parse_value(ps);
		if (!item)
			goto bad;
		if (!add_member(v, key, item)) {
			json_free(item);
			goto oom;
		}
		key = NULL;
		skip_space(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			break;
		}
		fail(ps, "expected ',' or '%c'", close);
		goto bad;
	}
	if (is_object) {
		bool oom;
		const char *dup = duplicate_key(v, &oom);

		if (oom)
			goto oom;
		if (dup) {
			fail(ps, "duplicate key \"%s\" in the object that ends here", dup);
			goto bad;
		}
	}
	ps->depth--;
	return v;
oom:
	fail(ps, "out of memory");
bad:
	free(key);
	json_free(v);
	return NULL;
}

static struct json_value *parse_literal(struct parser *ps, const char *word,
					enum json_type type, bool value)
{
	size_t n = strlen(word);
	struct json_value *v;

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n)) {
		fail(ps, "unexpected character '%c'", *ps->p);
		return NULL;
	}
	ps->p += n;
	v = new_value(type);
	if (!v) {
		fail(ps, "out of memory");
		return NULL;
	}
	v->boolean = value;
	return v;
}

static struct json_value *parse_value(struct parser *ps)
{
	struct json_value *v;

	skip_space(ps);
	if (ps->p >= ps->end) {
		fail(ps, "unexpected end of input");
		return NULL;
	}
	switch (*ps->p) {
	case '{':
		return parse_container(ps, true);
	case '[':
		return parse_container(ps, false);
	case '"':
		v = new_value(JSON_STRING);
		if (!v) {
			fail(ps, "out of memory");
			return NULL;
		}
		v->text = parse_string_raw(ps);
		if (!v->text) {
			free(v);
			return NULL;
		}
		return v;
	case 't':
		return parse_literal(ps, "true", JSON_BOOL, true);
	case 'f':
		return parse_literal(ps, "false", JSON_BOOL, false);
	case 'n':
		return parse_literal(ps, "null", JSON_NULL, false);
	default:
		return parse_number(ps);
	}
}

struct json_value *json_parse(const char *text, size_t len, char *err, size_t errlen)
{
	return json_parse_depth(text, len, JSON_MAX_DEPTH, err, errlen);
}

struct json_value *json_parse_depth(const char *text, size_t len, int max_depth,
				    char *err, size_t errlen)
{
	struct parser ps = { text, text, text + len, err, errlen, 0, max_depth };
	struct json_value *v;

	err[0] = '\0';
	if (memchr(text, '\0', len)) {
		snprintf(err, errlen, "contains a NUL byte");
		return NULL;
	}
	v = parse_value(&ps);
	if (!v)
		return NULL;
	skip_space(&ps);
	if (ps.p != ps.end) {
		fail(&ps, "trailing characters after the value");
		json_free(v);
		return NULL;
	}
	return v;
}

void json_free(struct json_value *v)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; i < v->count; i++) {
		if (v->keys)
			free(v->keys[i]);
		json_free(v->items[i]);
	}
	free(v->keys);
	free(v->items);
	free(v->text);
	free(v);
}

const struct json_value *json_get(const struct json_value *obj, const char *key)
{
	size_t i;

	if (!obj || obj->type != JSON_OBJECT)
		return NULL;
	for (i = 0; i < obj->count; i++)
		if (!strcmp(obj->keys[i], key))
			return obj->items[i];
	return NULL;
}

const char *json_kind(const struct json_value *v)
{
	static const char *const kinds[] = {
		"null", "a boolean", "a number", "a string", "an array", "an object",
	};

	return kinds[v->type];
}

bool json_to_u64(const struct json_value *v, uint64_t *out)
{
	unsigned long long n;
	char *end;

	if (!v || v->type != JSON_NUMBER || v->text[0] == '-')
		return false;
	errno = 0;
	n = strtoull(v->text, &end, 10);
	if (errno || *end)
		return false;
	*out = n;
	return true;
}

/* ---------------------------------------------------------------- writer */

void json_init(struct json_writer *w, FILE *out)
{
	memset(w, 0, sizeof(*w));
	w->out = out;
	w->first = true;
}

static void indent(struct json_writer *w)
{
	int i;

	fputc('\n', w->out);
	for (i = 0; i < w->depth; i++)
		fputs("  ", w->out);
}

/* Separator and indentation before a new value or key. */
static void begin_item(struct json_writer *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (w->depth == 0)
		return;
	if (!w->first)
		fputc(',', w->out);
	w->first = false;
	indent(w);
}

static void open_container(struct json_writer *w, char c)
{
	begin_item(w);
	fputc(c, w->out);
	w->depth++;
	w->first = true;
}

static void close_container(struct json_writer *w, char c)
{
	bool empty = w->first;

	if (w->depth > 0)
		w->depth--;
	if (!empty)
		indent(w);
	fputc(c, w->out);
	w->first = false;	/* the container just closed is an item of its parent */
}

void json_begin_object(struct json_writer *w) { open_container(w, '{'); }
void json_end_object(struct json_writer *w) { close_container(w, '}'); }
void json_begin_array(struct json_writer *w) { open_container(w, '['); }
void json_end_array(struct json_writer *w) { close_container(w, ']'); }

/* serde_json's escapes: the short forms it has, \u00xx for other controls, DEL as is. */
static void write_escaped(FILE *out, const char *s, size_t len)
{
	static const char shorts[] = "btn\0fr";	/* for 0x08..0x0d; 0x0b has none */
	size_t i;

	fputc('"', out);
	for (i = 0; i < len; i++) {
		unsigned char c = s[i];

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c >= 0x08 && c <= 0x0d && shorts[c - 0x08])
			fprintf(out, "\\%c", shorts[c - 0x08]);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

void json_key(struct json_writer *w, const char *key)
{
	begin_item(w);
	write_escaped(w->out, key, strlen(key));
	fputs(": ", w->out);
	w->after_key = true;
}

void json_string_len(struct json_writer *w, const char *s, size_t len)
{
	begin_item(w);
	write_escaped(w->out, s, len);
}

void json_string(struct json_writer *w, const char *s)
{
	json_string_len(w, s, strlen(s));
}

void json_u64(struct json_writer *w, uint64_t v)
{
	begin_item(w);
	fprintf(w->out, "%llu", (unsigned long long)v);
}

void json_bool(struct json_writer *w, bool v)
{
	begin_item(w);
	fputs(v ? "true" : "false", w->out);
}

void json_null(struct json_writer *w)
{
	begin_item(w);
	fputs("null", w->out);
}

void json_tree(struct json_writer *w, const struct json_value *v)
{
	size_t i;

	switch (v->type) {
	case JSON_NULL:
		json_null(w);
		break;
	case JSON_BOOL:
		json_bool(w, v->boolean);
		break;
	case JSON_NUMBER:
		begin_item(w);
		fputs(v->text, w->out);
		break;
	case JSON_STRING:
		json_string(w, v->text);
		break;
	case JSON_ARRAY:
	case JSON_OBJECT:
		open_container(w, v->type == JSON_OBJECT ? '{' : '[');
		for (i = 0; i < v->count; i++) {
			if (v->type == JSON_OBJECT)
				json_key(w, v->keys[i]);
			json_tree(w, v->items[i]);
		}
		close_container(w, v->type == JSON_OBJECT ? '}' : ']');
		break;
	}
}

void json_finish(struct json_writer *w)
{
	fputc('\n', w->out);
	fflush(w->out);
}
