// SPDX-License-Identifier: GPL-2.0
/*
 * The sample app's attest service: see attest.h for its protocol.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include "attest.h"
#include "io.h"
#include "nsm.h"

struct attest_req {
	uint8_t nonce[ATTEST_FIELD_MAX];
	uint8_t user_data[ATTEST_FIELD_MAX];
	struct nsm_blob nonce_blob, user_data_blob;
	bool public_key;
};

static void __attribute__((format(printf, 2, 3)))
answer_error(int conn, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	n = snprintf(line, sizeof(line), "error ");
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	strcat(line, "\n");
	write_all(conn, line, strlen(line));
}

/*
 * Reads the request line into @line (NUL-terminated, without its "\n").
 * Returns its length, or -1 with a reason in @why.
 */
static int read_line(int conn, char *line, size_t size, const char **why)
{
	struct timeval tv = { .tv_sec = ATTEST_READ_TIMEOUT };
	size_t len = 0;

	setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (;;) {
		char *nl;
		ssize_t n = read(conn, line + len, size - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*why = errno == EAGAIN || errno == EWOULDBLOCK ?
			       "no complete request line in time" :
			       "cannot read the request";
			return -1;
		}
		line[len + n] = 0;
		nl = memchr(line + len, '\n', n);
		len += n;
		if (nl) {
			*nl = 0;
			len = nl - line;
			break;
		}
		if (n == 0)	/* the client's end of writing ends the line */
			break;
		if (len == size - 1) {
			*why = "the request line is too long";
			return -1;
		}
	}
	if (len && line[len - 1] == '\r')
		line[--len] = 0;
	return len;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes @hex into @out (at most ATTEST_FIELD_MAX bytes); -1 if invalid. */
static int unhex(const char *hex, uint8_t *out, size_t *len)
{
	size_t n = strlen(hex), i;

	if (n % 2 || n / 2 > ATTEST_FIELD_MAX)
		return -1;
	for (i = 0; i < n / 2; i++) {
		int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = hi << 4 | lo;
	}
	*len = n / 2;
	return 0;
}

/* Parses the words of @line; returns NULL or why the request is refused. */
static const char *parse(char *line, struct attest_req *req)
{
	static char why[96];
	char *save, *word;

	memset(req, 0, sizeof(*req));
	for (word = strtok_r(line, " ", &save); word;
	     word = strtok_r(NULL, " ", &save)) {
		struct nsm_blob *blob = NULL;
		uint8_t *buf = NULL;
		const char *hex = NULL;

		if (!strncmp(word, "nonce=", 6)) {
			blob = &req->nonce_blob;
			buf = req->nonce;
			hex = word + 6;
		} else if (!strncmp(word, "user-data=", 10)) {
			blob = &req->user_data_blob;
			buf = req->user_data;
			hex = word + 10;
		} else if (!strcmp(word, "public-key")) {
			if (req->public_key)
				return "public-key given twice";
			req->public_key = true;
			continue;
		} else {
			snprintf(why, sizeof(why), "unknown word \"%.40s\"", word);
			return why;
		}
		if (blob->data) {
			snprintf(why, sizeof(why), "%.*s given twice",
				 (int)(hex - word - 1), word);
			return why;
		}
		if (unhex(hex, buf, &blob->len)) {
			snprintf(why, sizeof(why),
				 "%.*s is not an even number of hex digits, at most %d bytes",
				 (int)(hex - word - 1), word, ATTEST_FIELD_MAX);
			return why;
		}
		blob->data = buf;
	}
	return NULL;
}

void serve_attest(int conn, const uint8_t *public_key, size_t public_key_len)
{
	static char line[ATTEST_LINE_MAX + 1];
	static struct attest_req req;
	static uint8_t doc[NSM_RESPONSE_MAX];
	struct nsm_blob key = { public_key, public_key_len };
	size_t doc_len = sizeof(doc);
	const char *why;
	char msg[160], head[32];
	int fd, rc;

	if (read_line(conn, line, sizeof(line), &why) < 0) {
		answer_error(conn, "%s", why);
		return;
	}
	why = parse(line, &req);
	if (why) {
		answer_error(conn, "%s", why);
		return;
	}
	if (req.public_key && !public_key) {
		answer_error(conn, "public-key: the app has no key pair (see its console)");
		return;
	}
	fd = nsm_open();
	if (fd == -ENOENT) {
		answer_error(conn, "no %s: this enclave has no NSM device", NSM_DEV);
		return;
	}
	if (fd < 0) {
		answer_error(conn, "cannot open %s: %s", NSM_DEV, strerror(-fd));
		return;
	}
	rc = nsm_attest(fd, &req.user_data_blob, &req.nonce_blob,
			req.public_key ? &key : NULL, doc, &doc_len,
			msg, sizeof(msg));
	close(fd);
	if (rc) {
		answer_error(conn, "%s", msg);
		return;
	}
	snprintf(head, sizeof(head), "ok %zu\n", doc_len);
	if (!write_all(conn, head, strlen(head)))
		write_all(conn, doc, doc_len);
}
