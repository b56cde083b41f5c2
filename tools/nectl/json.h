/* SPDX-License-Identifier: GPL-2.0 */
#ifndef NECTL_JSON_H
#define NECTL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- parser: a small tree for --config files, EIF metadata and the registry */
enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json_value {
	enum json_type type;
	bool boolean;
	char *text;		/* string contents (NUL-terminated) or number literal */
	size_t count;		/* array/object members */
	size_t cap;		/* their room (the parser's) */
	char **keys;		/* object keys */
	struct json_value **items;
};

/*
 * serde_json's limit, so nectl reads what nitro-cli reads: at most 127
 * arrays and objects nested (its 128th is refused).
 */
#define JSON_MAX_DEPTH	127

/* Returns NULL and writes a message into err on malformed input. */
struct json_value *json_parse(const char *text, size_t len, char *err, size_t errlen);
/* The same with another nesting limit (nectl's own files wrap nitro-cli's JSON). */
struct json_value *json_parse_depth(const char *text, size_t len, int max_depth,
				    char *err, size_t errlen);
void json_free(struct json_value *v);
const struct json_value *json_get(const struct json_value *obj, const char *key);
/* "a string", "null"...: the type of v, for messages. */
const char *json_kind(const struct json_value *v);
/* A non-negative integer without fraction or exponent; false otherwise. */
bool json_to_u64(const struct json_value *v, uint64_t *out);

/*
 * ---- writer: pretty printed the way nitro-cli (serde_json) prints, at any
 * depth: a closed container is always an item of its parent, so the parent
 * is never "empty" again and one flag for the innermost level suffices.
 */
struct json_writer {
	FILE *out;
	int depth;
	bool first;		/* nothing written yet in the innermost container */
	bool after_key;
};

void json_init(struct json_writer *w, FILE *out);
void json_begin_object(struct json_writer *w);
void json_end_object(struct json_writer *w);
void json_begin_array(struct json_writer *w);
void json_end_array(struct json_writer *w);
void json_key(struct json_writer *w, const char *key);
void json_string(struct json_writer *w, const char *s);
void json_string_len(struct json_writer *w, const char *s, size_t len);
void json_u64(struct json_writer *w, uint64_t v);
void json_bool(struct json_writer *w, bool v);
void json_null(struct json_writer *w);
void json_tree(struct json_writer *w, const struct json_value *v);
/* Ends the top-level value with a newline. */
void json_finish(struct json_writer *w);

#endif
