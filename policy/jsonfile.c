#include "policy/jsonfile.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/id.h"

/* Objects with more members than this are checked for repeated names by
 * sorting; smaller ones by comparing every pair. */
#define DUP_SORT_THRESHOLD 16

/* Returns the offset of the first byte that is not part of well-formed
 * UTF-8 (no overlongs, no surrogates, at most U+10FFFF), or len. */
static size_t utf8_invalid_at(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return i;
		}
		if (len - i <= n)
			return i;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff
				|| (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += n + 1;
	}
	return len;
}

/* Offset of the first \\u0000 escape in text, or len. cJSON would decode
 * it as a NUL that silently ends the string ("city\\u0000junk" would read
 * as "city"), so it is refused. Outside strings a backslash is a syntax
 * error anyway, so every backslash not itself escaped starts an escape. */
static size_t nul_escape_at(const char *text, size_t len)
{
	for (size_t i = 0; i + 5 < len; i++) {
		if (text[i] != '\\')
			continue;
		if (memcmp(text + i + 1, "u0000", 5) == 0)
			return i;
		i++;  /* skip the escaped character, which may be a backslash */
	}
	return len;
}

static void line_col(const char *text, size_t offset, unsigned *line, unsigned *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < offset; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Finds a member name given twice in obj; returns it (borrowed) or NULL.
 * *nomem is set when the sort buffer cannot be allocated. */
static const char *repeated_member(const cJSON *obj, bool *nomem)
{
	const cJSON *a, *b;
	const char **names;
	const char *found = NULL;
	size_t n = 0, i = 0;

	for (a = obj->child; a != NULL; a = a->next)
		n++;
	if (n <= DUP_SORT_THRESHOLD) {
		for (a = obj->child; a != NULL; a = a->next)
			for (b = a->next; b != NULL; b = b->next)
				if (strcmp(a->string, b->string) == 0)
					return a->string;
		return NULL;
	}
	names = malloc(n * sizeof(*names));
	if (names == NULL) {
		*nomem = true;
		return NULL;
	}
	for (a = obj->child; a != NULL; a = a->next)
		names[i++] = a->string;
	qsort(names, n, sizeof(*names), name_cmp);
	for (i = 1; i < n && found == NULL; i++)
		if (strcmp(names[i - 1], names[i]) == 0)
			found = names[i];
	free(names);
	return found;
}

/* Walks the whole tree; fails at the first object that repeats a name. */
static int check_repeats(struct tf_jctx *c, const cJSON *node)
{
	const cJSON *child;
	int index = 0;

	if (!cJSON_IsObject(node) && !cJSON_IsArray(node))
		return TF_OK;
	if (cJSON_IsObject(node)) {
		bool nomem = false;
		const char *name = repeated_member(node, &nomem);

		if (nomem)
			return tf_err_set(c->err, TF_ERR_NOMEM, "%s: out of memory", c->file);
		if (name != NULL)
			return tf_jfail(c, "member \"%s\" is given more than once", name);
	}
	for (child = node->child; child != NULL; child = child->next, index++) {
		size_t mark = cJSON_IsObject(node) ? tf_jctx_member(c, child->string)
						   : tf_jctx_index(c, index);
		int rc = check_repeats(c, child);

		tf_jctx_pop(c, mark);
		if (rc != TF_OK)
			return rc;
	}
	return TF_OK;
}

int tf_json_parse(const char *text, size_t len, const char *display_name, cJSON **out,
		struct tf_err *err)
{
	struct tf_jctx c;
	const char *end = NULL;
	size_t bad;
	unsigned line, col;
	cJSON *root;
	int rc;

	*out = NULL;
	bad = utf8_invalid_at((const unsigned char *)text, len);
	if (bad < len) {
		line_col(text, bad, &line, &col);
		return tf_err_set(err, TF_ERR_INVALID, "%s: line %u, column %u: not valid UTF-8",
			display_name, line, col);
	}
	bad = nul_escape_at(text, len);
	if (bad < len) {
		line_col(text, bad, &line, &col);
		return tf_err_set(err, TF_ERR_INVALID,
			"%s: line %u, column %u: the escape \\u0000 (a NUL character) is not allowed",
			display_name, line, col);
	}
	if (memchr(text, '\0', len) != NULL) {
		line_col(text, (size_t)((const char *)memchr(text, '\0', len) - text), &line, &col);
		return tf_err_set(err, TF_ERR_INVALID, "%s: line %u, column %u: NUL byte in file",
			display_name, line, col);
	}
	/* Not require_null_terminated: cJSON then insists on a NUL inside the
	 * len bytes, which text need not have. Trailing garbage is checked
	 * here instead. */
	root = cJSON_ParseWithLengthOpts(text, len, &end, false);
	if (root != NULL) {
		while (end < text + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
			end++;
		if (end != text + len) {
			cJSON_Delete(root);
			root = NULL;
		}
	}
	if (root == NULL) {
		/* Only return_parse_end: cJSON's own error pointer is one global,
		 * and the reload thread parses while the broker's thread does. */
		const char *at = end;
		size_t offset = (at != NULL && at >= text && at <= text + len) ? (size_t)(at - text) : 0;

		line_col(text, offset, &line, &col);
		return tf_err_set(err, TF_ERR_INVALID, "%s: line %u, column %u: not valid JSON",
			display_name, line, col);
	}
	tf_jctx_init(&c, display_name, err);
	rc = check_repeats(&c, root);
	if (rc != TF_OK) {
		cJSON_Delete(root);
		return rc;
	}
	*out = root;
	return TF_OK;
}

int tf_file_read(const char *path, const char *display_name, size_t max_bytes, char **out,
		size_t *len, struct tf_err *err)
{
	struct stat st;
	char *text = NULL;
	size_t got = 0;
	int fd, rc = TF_OK;

	*out = NULL;
	*len = 0;
	if (display_name == NULL)
		display_name = path;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return tf_err_set(err, TF_ERR_IO, "%s: cannot open: %s", display_name, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return tf_err_set(err, TF_ERR_IO, "%s: not a regular file", display_name);
	}
	if ((uint64_t)st.st_size > max_bytes) {
		close(fd);
		return tf_err_set(err, TF_ERR_INVALID, "%s: file is %lld bytes, more than the %zu allowed",
			display_name, (long long)st.st_size, max_bytes);
	}
	text = malloc((size_t)st.st_size + 1);
	if (text == NULL) {
		close(fd);
		return tf_err_set(err, TF_ERR_NOMEM, "%s: out of memory", display_name);
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, text + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = tf_err_set(err, TF_ERR_IO, "%s: cannot read: %s", display_name,
				n < 0 ? strerror(errno) : "file shrank while reading");
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	if (rc != TF_OK) {
		free(text);
		return rc;
	}
	text[got] = '\0';
	*out = text;
	*len = got;
	return TF_OK;
}

int tf_json_load_file(const char *path, const char *display_name, size_t max_bytes,
		cJSON **out, struct tf_err *err)
{
	char *text;
	size_t len;
	int rc;

	*out = NULL;
	if (display_name == NULL)
		display_name = path;
	rc = tf_file_read(path, display_name, max_bytes, &text, &len, err);
	if (rc != TF_OK)
		return rc;
	rc = tf_json_parse(text, len, display_name, out, err);
	free(text);
	return rc;
}

/* Length of the well-formed UTF-8 sequence at p (1 to 4), or 0. */
static size_t utf8_seq_len(const unsigned char *p)
{
	size_t n;

	if (p[0] < 0x80)
		return 1;
	else if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	/* The NUL terminator is no continuation byte, so this stops at it. */
	for (size_t i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

void tf_json_escape_name(char *dst, size_t room, const char *name)
{
	const unsigned char *p = (const unsigned char *)name;
	size_t o = 0;

	while (*p != '\0') {
		char piece[8];
		size_t used = utf8_seq_len(p), n;

		if (*p == '"' || *p == '\\') {
			piece[0] = '\\';
			piece[1] = (char)*p;
			n = 2;
		} else if (used == 0 || *p < 0x20 || *p == 0x7f) {
			used = 1;
			n = (size_t)snprintf(piece, sizeof(piece), "\\x%02x", (unsigned)*p);
		} else {
			memcpy(piece, p, used);
			n = used;
		}
		if (o + n > room - 4) {
			memcpy(dst + o, "...", 4);
			return;
		}
		memcpy(dst + o, piece, n);
		o += n;
		p += used;
	}
	dst[o] = '\0';
}

void tf_jctx_init(struct tf_jctx *c, const char *file, struct tf_err *err)
{
	c->file = file;
	c->err = err;
	c->path[0] = '$';
	c->path[1] = '\0';
	c->len = 1;
	c->dropped = 0;
	c->report = NULL;
	c->report_ctx = NULL;
	c->failures = 0;
}

void tf_jctx_collect(struct tf_jctx *c, void (*report)(void *ctx, const char *msg), void *ctx)
{
	c->report = report;
	c->report_ctx = ctx;
}

bool tf_jctx_goes_on(const struct tf_jctx *c, int rc)
{
	return rc == TF_OK || (rc == TF_ERR_INVALID && c->report != NULL);
}

void tf_jctx_keep(int *rc, int step)
{
	if (*rc == TF_OK || step == TF_ERR_NOMEM)
		*rc = step;
}

static bool plain_name(const char *name)
{
	if (*name == '\0')
		return false;
	for (; *name; name++) {
		char ch = *name;

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
				|| ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

/* Appends to the path. A step that does not fit is left out and counted,
 * so that the path stays a true prefix and the message ends in "...". */
static size_t path_append(struct tf_jctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static size_t path_append(struct tf_jctx *c, const char *fmt, ...)
{
	size_t mark = c->len;
	size_t room = sizeof(c->path) - c->len;
	va_list ap;
	int n;

	/* Below a step that was left out, every step is left out. */
	if (c->dropped > 0) {
		c->dropped++;
		return mark;
	}
	va_start(ap, fmt);
	n = vsnprintf(c->path + c->len, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room) {
		c->path[c->len] = '\0';
		c->dropped++;
	} else {
		c->len += (size_t)n;
	}
	return mark;
}

size_t tf_jctx_member(struct tf_jctx *c, const char *name)
{
	char quoted[200];

	if (plain_name(name))
		return path_append(c, ".%s", name);
	tf_json_escape_name(quoted, sizeof(quoted), name);
	return path_append(c, "[\"%s\"]", quoted);
}

size_t tf_jctx_index(struct tf_jctx *c, int index)
{
	return path_append(c, "[%d]", index);
}

void tf_jctx_pop(struct tf_jctx *c, size_t len)
{
	/* A step that was left out returned the length it found: popping it
	 * changes nothing but the count. */
	if (len == c->len && c->dropped > 0)
		c->dropped--;
	c->len = len;
	c->path[len] = '\0';
}

int tf_jfail(struct tf_jctx *c, const char *fmt, ...)
{
	char msg[320];
	va_list ap;

	char full[sizeof(c->path) + 640];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(full, sizeof(full), "%s: %s%s: %s", c->file, c->path, c->dropped ? "..." : "",
		msg);
	if (c->report != NULL)
		c->report(c->report_ctx, full);
	if (c->failures++ == 0 || c->report == NULL)
		tf_err_set(c->err, TF_ERR_INVALID, "%s", full);
	return TF_ERR_INVALID;
}

int tf_jfail_at(struct tf_jctx *c, const char *member, const char *fmt, ...)
{
	size_t mark = tf_jctx_member(c, member);
	char msg[320];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rc = tf_jfail(c, "%s", msg);
	tf_jctx_pop(c, mark);
	return rc;
}

int tf_jcheck_object(struct tf_jctx *c, const cJSON *node, const char *const *names)
{
	const cJSON *m;
	int rc = TF_OK;

	if (!cJSON_IsObject(node))
		return tf_jfail(c, "must be an object");
	for (m = node->child; m != NULL; m = m->next) {
		const char *const *n;

		for (n = names; *n != NULL; n++)
			if (strcmp(*n, m->string) == 0)
				break;
		if (*n == NULL)
			tf_jctx_keep(&rc, tf_jfail_at(c, m->string, "unknown member"));
		if (!tf_jctx_goes_on(c, rc))
			return rc;
	}
	return rc;
}

/* Fetches member name of obj; pushes its path. Returns NULL when absent
 * (and fails when required). */
static const cJSON *member(struct tf_jctx *c, const cJSON *obj, const char *name, bool required,
		size_t *mark, int *rc)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, name);

	*rc = TF_OK;
	*mark = tf_jctx_member(c, name);
	if (m == NULL && required)
		*rc = tf_jfail(c, "is required");
	return m;
}

int tf_jstring(struct tf_jctx *c, const cJSON *obj, const char *name, bool required,
		size_t max_len, const char **out)
{
	size_t mark;
	int rc;
	const cJSON *m = member(c, obj, name, required, &mark, &rc);

	*out = NULL;
	if (m != NULL) {
		if (!cJSON_IsString(m))
			rc = tf_jfail(c, "must be a string");
		else if (strlen(m->valuestring) > max_len)
			rc = tf_jfail(c, "longer than %zu bytes", max_len);
		else
			*out = m->valuestring;
	}
	tf_jctx_pop(c, mark);
	return rc;
}

int tf_jid(struct tf_jctx *c, const cJSON *obj, const char *name, bool required,
		const char **out)
{
	size_t mark;
	int rc;
	const cJSON *m = member(c, obj, name, required, &mark, &rc);

	*out = NULL;
	if (m != NULL) {
		if (!cJSON_IsString(m) || !tf_id_is_valid(m->valuestring))
			rc = tf_jfail(c, "not a valid id (1 to 128 of A-Z a-z 0-9 . _ : @ -, "
				"starting with a letter or digit)");
		else
			*out = m->valuestring;
	}
	tf_jctx_pop(c, mark);
	return rc;
}

bool tf_json_integer(const cJSON *node, int64_t min, int64_t max, int64_t *out)
{
	double v;

	if (!cJSON_IsNumber(node))
		return false;
	v = node->valuedouble;
	/* Doubles hold every integer up to 2^53 exactly, and callers' bounds
	 * stay within it (the control API's reach 2^53 - 1): the cast below
	 * is exact. */
	if (!isfinite(v) || v != floor(v) || v < (double)min || v > (double)max)
		return false;
	*out = (int64_t)v;
	return true;
}

int tf_jint(struct tf_jctx *c, const cJSON *obj, const char *name, bool required,
		int64_t min, int64_t max, int64_t *out, bool *present)
{
	size_t mark;
	int rc;
	const cJSON *m = member(c, obj, name, required, &mark, &rc);

	if (present != NULL)
		*present = false;
	if (m != NULL) {
		if (!tf_json_integer(m, min, max, out))
			rc = tf_jfail(c, "must be an integer from %lld to %lld", (long long)min,
				(long long)max);
		else if (present != NULL)
			*present = true;
	}
	tf_jctx_pop(c, mark);
	return rc;
}

int tf_jbool(struct tf_jctx *c, const cJSON *obj, const char *name, bool required,
		bool *out, bool *present)
{
	size_t mark;
	int rc;
	const cJSON *m = member(c, obj, name, required, &mark, &rc);

	if (present != NULL)
		*present = false;
	if (m != NULL) {
		if (!cJSON_IsBool(m)) {
			rc = tf_jfail(c, "must be true or false");
		} else {
			*out = cJSON_IsTrue(m);
			if (present != NULL)
				*present = true;
		}
	}
	tf_jctx_pop(c, mark);
	return rc;
}

int tf_jarray(struct tf_jctx *c, const cJSON *obj, const char *name, bool required,
		int min_items, int max_items, const cJSON **out)
{
	size_t mark;
	int rc;
	const cJSON *m = member(c, obj, name, required, &mark, &rc);

	*out = NULL;
	if (m != NULL) {
		int n = cJSON_IsArray(m) ? cJSON_GetArraySize(m) : -1;

		if (n < 0)
			rc = tf_jfail(c, "must be a list");
		else if (n < min_items && min_items == 1)
			rc = tf_jfail(c, "must not be empty");
		else if (n < min_items)
			rc = tf_jfail(c, "must have at least %d items", min_items);
		else if (n > max_items)
			rc = tf_jfail(c, "has %d items, more than the %d allowed", n, max_items);
		else
			*out = m;
	}
	tf_jctx_pop(c, mark);
	return rc;
}
