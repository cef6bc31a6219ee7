/* tfctl trace join (federation-v1, section 6): who received one message on
 * every broker it went through, from the brokers' exports, each broker's
 * part checked against its own signed checkpoints (broker/trace/trace_join.h). */
#include "config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "broker/trace/trace_join.h"
#include "broker/tfctl/tfctl.h"

static const char join_usage[] =
	"usage: tfctl trace join [--key-of BROKER PEM]... [--checkpoints FILE]... ID EXPORT...\n"
	"\n"
	"Joins the exports of several brokers' traces by message id: for each broker the\n"
	"message went through, in path order (its origin first, then each broker it was\n"
	"forwarded to), the message event (status, the peer it came from, its hops),\n"
	"every recipient and every forward, and whether that broker's part checked out.\n"
	"\n"
	"EXPORT      one broker's `tfctl trace --db DIR export --checkpoints` (- : stdin);\n"
	"            the broker it is of is the one its checkpoints name\n"
	"--key-of    binds a broker id to its public key (PEM; tfctl key public prints\n"
	"            it); a broker's checkpoints count only under a key bound to it\n"
	"--checkpoints  checkpoints kept outside the brokers, one a line, as published on\n"
	"            $trustflow/checkpoints (text before the first '{' is ignored): each\n"
	"            must match the export of its broker\n"
	"\n"
	"A part checks out when its export's hash chain is intact, every checkpoint\n"
	"verifies under the key bound to its broker and matches the chain, and one covers\n"
	"the part's last event. Prints one JSON object; exit status 0 when every part\n"
	"checked out and the parts agree, 1 when not or when no export holds the\n"
	"message, 2 on bad usage or an unreadable file.\n";

static int usage_error(const char *what)
{
	fprintf(stderr, "tfctl trace join: %s\n%s", what, join_usage);
	return TFCTL_USAGE;
}

static int failed(const struct tf_err *err)
{
	fprintf(stderr, "tfctl trace join: %s\n", err->msg);
	return TFCTL_USAGE;
}

/* Hands each line of path (- : stdin), without its newline, to add.
 * Errors: TF_ERR_IO (unreadable; err says so), or add's. */
static int each_line(const char *path, int (*add)(struct tf_join *j, const char *line,
		size_t len, struct tf_err *err), struct tf_join *j, unsigned long *line_no,
		struct tf_err *err)
{
	bool stdin_ = strcmp(path, "-") == 0;
	FILE *f = stdin_ ? stdin : fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int rc = TF_OK;

	*line_no = 0;
	if (f == NULL)
		return tf_err_set(err, TF_ERR_IO, "%s: cannot be read", path);
	while (rc == TF_OK && (len = getline(&line, &cap, f)) >= 0) {
		(*line_no)++;
		if (len > 0 && line[len - 1] == '\n')
			len--;
		rc = add(j, line, (size_t)len, err);
	}
	if (rc == TF_OK && ferror(f))
		rc = tf_err_set(err, TF_ERR_IO, "%s: cannot be read", path);
	free(line);
	if (!stdin_)
		fclose(f);
	return rc;
}

int tfctl_trace_join(int argc, char **argv)
{
	const char *id = NULL, *exports[256];
	int n_exports = 0;
	struct tf_err err = { "" };
	struct tf_join *j = NULL;
	unsigned long line_no;
	bool ok = false;
	cJSON *answer;
	char *text;

	if (argc == 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
		fputs(join_usage, stdout);
		return TFCTL_OK;
	}
	/* The id and the exports first: the keys and kept checkpoints are
	 * bound to the join. */
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--key-of") == 0) {
			i += 2;
		} else if (strcmp(argv[i], "--checkpoints") == 0) {
			i += 1;
		} else if (strncmp(argv[i], "--", 2) == 0) {
			return usage_error("unknown option");
		} else if (id == NULL) {
			id = argv[i];
		} else if (n_exports == (int)(sizeof(exports) / sizeof(exports[0]))) {
			return usage_error("too many exports");
		} else {
			exports[n_exports++] = argv[i];
		}
		if (i >= argc)
			return usage_error("an option is missing its value");
	}
	if (id == NULL || n_exports == 0)
		return usage_error("a message ID and at least one EXPORT are required");
	if (tf_join_new(id, &j, &err) != TF_OK)
		return usage_error(err.msg);
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--key-of") == 0) {
			if (tf_join_bind_key_file(j, argv[i + 1], argv[i + 2], &err) != TF_OK)
				goto out;
			i += 2;
		} else if (strcmp(argv[i], "--checkpoints") == 0) {
			if (each_line(argv[i + 1], tf_join_keep_checkpoint, j, &line_no, &err) != TF_OK) {
				struct tf_err inner = err;

				if (strncmp(inner.msg, argv[i + 1], strlen(argv[i + 1])) != 0)
					tf_err_set(&err, TF_ERR_INVALID, "%s line %lu: %s", argv[i + 1],
						line_no, inner.msg);
				goto out;
			}
			i += 1;
		}
	}
	for (int i = 0; i < n_exports; i++) {
		if (tf_join_begin_export(j, exports[i], &err) != TF_OK
				|| each_line(exports[i], tf_join_export_line, j, &line_no, &err) != TF_OK)
			goto out;
		tf_join_end_export(j);
	}
	if ((answer = tf_join_result(j, &ok, &err)) == NULL)
		goto out;
	text = cJSON_PrintUnformatted(answer);
	cJSON_Delete(answer);
	if (text == NULL) {
		tf_err_set(&err, TF_ERR_NOMEM, "out of memory");
		goto out;
	}
	printf("%s\n", text);
	free(text);
	tf_join_free(j);
	if (fflush(stdout) != 0)
		return TFCTL_USAGE;
	return ok ? TFCTL_OK : TFCTL_NO;
out:
	tf_join_free(j);
	return failed(&err);
}
