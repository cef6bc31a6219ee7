/* Unit tests for broker/trace/trace_join.c (tfctl trace join) and the
 * checkpoint lines of tf_query_export_checkpoints: three real trace stores
 * in temporary directories, one per broker of a path A -> B -> C, each
 * with its own signing key and checkpoint, exported as tfctl prints them
 * and joined; then exports edited as an operator would edit its own, keys
 * bound to the wrong broker, checkpoints missing or kept outside. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "broker/stamp/provenance.h"
#include "broker/trace/checkpoint.h"
#include "broker/trace/trace_join.h"
#include "broker/trace/trace_query.h"
#include "broker/trace/trace_store.h"

#define ID "019ac008e6005f1e2d3c4b5a69780123"
#define OTHER "019ac008e6015f1e2d3c4b5a69780456"
#define VIEW "019ac008e6025f1e2d3c4b5a69780789"
#define SHA "fa9a08d761793b6ff6fe10b881cc97ad17d51c2e6c77adb8e841d854491cccf6"
#define TOPIC "city/meters/m1"
#define POLICY "meter-data@1"
#define T0 1764158400000LL

/* The stamps as their hop records: A's (format 1), B's (format 2). */
#define SIG_A "c2lnLWE="
#define SIG_B "c2lnLWI="
#define SIG_C "c2lnLWM="
#define HOP_A "1|" ID "|broker-a|aaaaaaaaaaaaaaaa|1764158400000|city|meter-1|" POLICY "|" \
	TOPIC "|1||" SIG_A
#define HOP_B "2|" ID "|broker-b|bbbbbbbbbbbbbbbb|1764158400010|city|bridge-broker-a|" POLICY \
	"|" TOPIC "|7|AAAAAAAAAAAAAAAAAAAAAA==|" SIG_B

enum { A, B, C, N_BROKERS };
static const char *const names[N_BROKERS] = { "broker-a", "broker-b", "broker-c" };

struct broker {
	char dir[64];
	char key[96];
	struct tf_trace_store *s;
	struct tf_signer *signer;
	char *export;   /* what tfctl trace export --checkpoints prints */
};

struct fixture {
	struct broker b[N_BROKERS];
	struct tf_signer *stranger;
	char stranger_key[96];
};

static int open_broker(struct broker *b)
{
	struct tf_err err;

	strcpy(b->dir, "/tmp/tf-join-XXXXXX");
	if (mkdtemp(b->dir) == NULL)
		return -1;
	snprintf(b->key, sizeof(b->key), "%s-key.pem", b->dir);
	return tf_signer_generate(b->key, &b->signer, &err) == TF_OK
		&& tf_trace_open(b->dir, true, 0, &b->s, &err) == TF_OK ? 0 : -1;
}

static void close_broker(struct broker *b)
{
	char cmd[200];

	tf_trace_close(b->s);
	tf_signer_free(b->signer);
	free(b->export);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", b->dir, b->key);
	assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct tf_err err;

	if (f == NULL)
		return -1;
	for (int i = 0; i < N_BROKERS; i++)
		if (open_broker(&f->b[i]) != 0)
			return -1;
	strcpy(f->stranger_key, "/tmp/tf-join-stranger-XXXXXX");
	if (mkstemp(f->stranger_key) < 0 || unlink(f->stranger_key) != 0
			|| tf_signer_generate(f->stranger_key, &f->stranger, &err) != TF_OK)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < N_BROKERS; i++)
		close_broker(&f->b[i]);
	tf_signer_free(f->stranger);
	unlink(f->stranger_key);
	free(f);
	return 0;
}

/* --- the brokers' traces ------------------------------------------------------- */

/* A message event: at the origin (peer NULL) or relayed from peer with
 * hops (a JSON array). */
static struct tf_trace_input message(const char *id, const char *org, const char *client,
		const char *sig, const char *peer, const char *hops, int64_t ts)
{
	struct tf_trace_input in = { .kind = TF_EVENT_MESSAGE, .ts_ms = ts,
		.values = { id, TOPIC, org, client, POLICY, SHA, "13", "delivered", "", "7",
		"0123456789abcdef", sig, "", peer, hops } };

	return in;
}

static struct tf_trace_input delivery(const char *id, const char *client, const char *org,
		const char *outcome, const char *client_id, int64_t ts)
{
	struct tf_trace_input in = { .kind = TF_EVENT_DELIVERY, .ts_ms = ts,
		.values = { id, POLICY, client, org, outcome,
		strcmp(outcome, "withheld") == 0 ? "no consumer rule matches" : "", client_id } };

	return in;
}

static void append(struct broker *b, const struct tf_trace_input *in, size_t n)
{
	struct tf_err err;

	assert_int_equal(tf_trace_append(b->s, in, n, &err), TF_OK);
}

static void checkpoint(struct broker *b, const char *name, struct tf_signer *signer)
{
	struct tf_checkpoint cp;
	struct tf_err err;

	assert_int_equal(tf_checkpoint_sign(&cp, signer, name, tf_trace_last_seq(b->s),
		tf_trace_last_hash(b->s), T0 + 5000, &err), TF_OK);
	assert_int_equal(tf_trace_put_checkpoint(b->s, &cp, &err), TF_OK);
}

/* Something else the broker recorded before, so that the message is not
 * at seq 1. */
static void before(struct broker *b)
{
	struct tf_trace_input in[] = {
		message(OTHER, "city", "meter-2", "c2ln", NULL, NULL, T0 - 1000),
		delivery(OTHER, "lab-bot", "uni-lab", "delivered", "lab-bot-1", T0 - 999),
	};

	append(b, in, 2);
}

/* A publishes and forwards to B; B relays and forwards to C; C relays. */
static void fill_a(struct broker *b)
{
	struct tf_trace_input in[] = {
		message(ID, "city", "meter-1", SIG_A, NULL, NULL, T0),
		delivery(ID, "city-dashboard", "city", "delivered", "dash-1", T0 + 1),
		delivery(ID, "broker-b", "utility", "forwarded", "bridge-broker-b", T0 + 1),
	};

	before(b);
	append(b, in, 1);
	append(b, in + 1, 2);
}

static void fill_b(struct broker *b, bool with_recipient)
{
	struct tf_trace_input in[] = {
		message(ID, "city", "bridge-broker-a", SIG_B, "broker-a", "[\"" HOP_A "\"]", T0 + 10),
		delivery(ID, "utility-app", "utility", "delivered", "utility-app-7", T0 + 11),
		delivery(ID, "broker-c", "contractor", "forwarded", "bridge-broker-c", T0 + 11),
	};

	before(b);
	append(b, in, 1);
	if (with_recipient)
		append(b, in + 1, 1);
	append(b, in + 2, 1);
}

static void fill_c(struct broker *b, const char *hops)
{
	struct tf_trace_input in[] = {
		message(ID, "utility", "bridge-broker-b", SIG_C, "broker-b", hops, T0 + 20),
		delivery(ID, "contractor-app", "contractor", "delivered", "contractor-app-1", T0 + 21),
		delivery(ID, "stranger-app", "stranger", "withheld", "stranger-1", T0 + 21),
	};

	append(b, in, 3);
}

#define HOPS_C "[\"" HOP_A "\",\"" HOP_B "\"]"

static char *export_of(struct broker *b, bool checkpoints)
{
	struct tf_err err;
	char *text = NULL;
	size_t len = 0, n;
	FILE *out = open_memstream(&text, &len);

	assert_non_null(out);
	assert_int_equal(tf_trace_read_begin(b->s, &err), TF_OK);
	assert_int_equal(tf_query_export(b->s, 0, out, &n, &err), TF_OK);
	if (checkpoints)
		assert_int_equal(tf_query_export_checkpoints(b->s, 0, out, &n, &err), TF_OK);
	tf_trace_read_end(b->s);
	assert_int_equal(fclose(out), 0);
	return text;
}

/* The three brokers' traces, each with a checkpoint over all of it; C's
 * hop records hops. */
static void fill_all_with(struct fixture *f, const char *hops)
{
	fill_a(&f->b[A]);
	fill_b(&f->b[B], true);
	fill_c(&f->b[C], hops);
	for (int i = 0; i < N_BROKERS; i++) {
		checkpoint(&f->b[i], names[i], f->b[i].signer);
		f->b[i].export = export_of(&f->b[i], true);
	}
}

static void fill_all(struct fixture *f)
{
	fill_all_with(f, HOPS_C);
}

/* --- editing an export's text ----------------------------------------------------- */

/* text without its line that holds needle (which must be there). */
static char *without_line(const char *text, const char *needle)
{
	const char *at = strstr(text, needle), *start, *end;
	char *out;

	assert_non_null(at);
	for (start = at; start > text && start[-1] != '\n'; start--)
		;
	end = strchr(at, '\n');
	end = end ? end + 1 : at + strlen(at);
	out = malloc(strlen(text) + 1);
	assert_non_null(out);
	memcpy(out, text, (size_t)(start - text));
	strcpy(out + (start - text), end);
	return out;
}

/* text with the first `from` replaced by `to`. */
static char *replaced(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	char *out;

	assert_non_null(at);
	out = malloc(strlen(text) + strlen(to) + 1);
	assert_non_null(out);
	memcpy(out, text, (size_t)(at - text));
	strcpy(out + (at - text), to);
	strcat(out, at + strlen(from));
	return out;
}

static char *concat(const char *a, const char *b)
{
	char *out = malloc(strlen(a) + strlen(b) + 1);

	assert_non_null(out);
	strcpy(out, a);
	strcat(out, b);
	return out;
}

/* --- joining ---------------------------------------------------------------------- */

static void bind(struct tf_join *j, const char *broker, struct tf_signer *signer)
{
	struct tf_err err;
	const char *pem = tf_signer_public_pem(signer);

	assert_int_equal(tf_join_bind_key(j, broker, pem, strlen(pem), &err), TF_OK);
}

static void feed(struct tf_join *j, const char *name, const char *text)
{
	struct tf_err err;
	const char *line = text;

	assert_int_equal(tf_join_begin_export(j, name, &err), TF_OK);
	while (*line != '\0') {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);

		assert_int_equal(tf_join_export_line(j, line, len, &err), TF_OK);
		line += len + (nl != NULL);
	}
	tf_join_end_export(j);
}

/* A join with each broker's own key bound to it. */
static struct tf_join *join_with_keys(struct fixture *f)
{
	struct tf_join *j;
	struct tf_err err;

	assert_int_equal(tf_join_new(ID, &j, &err), TF_OK);
	for (int i = 0; i < N_BROKERS; i++)
		bind(j, names[i], f->b[i].signer);
	return j;
}

/* Joins the exports (NULL: left out) and returns the answer. */
static cJSON *join3(struct fixture *f, const char *a, const char *b, const char *c, bool *ok)
{
	struct tf_join *j = join_with_keys(f);
	struct tf_err err;
	cJSON *out;

	if (c != NULL)
		feed(j, "c.jsonl", c);
	if (a != NULL)
		feed(j, "a.jsonl", a);
	if (b != NULL)
		feed(j, "b.jsonl", b);
	out = tf_join_result(j, ok, &err);
	assert_non_null(out);
	tf_join_free(j);
	return out;
}

static const char *str(const cJSON *o, const char *name)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, name);

	assert_true(cJSON_IsString(m));
	return m->valuestring;
}

static const cJSON *member(const cJSON *o, const char *name)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, name);

	assert_non_null(m);
	return m;
}

static const cJSON *part(const cJSON *answer, const char *broker)
{
	const cJSON *p;

	cJSON_ArrayForEach(p, member(answer, "brokers"))
		if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(p, "broker"))
				&& strcmp(str(p, "broker"), broker) == 0)
			return p;
	fail_msg("no part of %s", broker);
	return NULL;
}

/* The part read from export name, whether or not it names its broker. */
static const cJSON *part_from(const cJSON *answer, const char *name)
{
	const cJSON *p;

	cJSON_ArrayForEach(p, member(answer, "brokers"))
		if (strcmp(str(p, "export"), name) == 0)
			return p;
	fail_msg("no part from %s", name);
	return NULL;
}

static bool part_ok(const cJSON *answer, const char *broker)
{
	return cJSON_IsTrue(member(part(answer, broker), "ok"));
}

static const char *part_reason(const cJSON *answer, const char *broker)
{
	return str(part(answer, broker), "reason");
}

/* The clients of a part's recipients, joined by spaces. */
static void recipients(const cJSON *p, char *out, size_t cap)
{
	const cJSON *r;

	out[0] = '\0';
	cJSON_ArrayForEach(r, member(p, "recipients"))
		snprintf(out + strlen(out), cap - strlen(out), "%s%s:%s:%s", out[0] ? " " : "",
			str(r, "client"), str(r, "org"), str(r, "outcome"));
}

static void path_is(const cJSON *answer, const char *expected)
{
	char got[200] = "";
	const cJSON *b;

	cJSON_ArrayForEach(b, member(answer, "path"))
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", got[0] ? " " : "",
			cJSON_IsString(b) ? b->valuestring : "null");
	assert_string_equal(got, expected);
}

/* --- tests ---------------------------------------------------------------------------- */

static void export_checkpoints_prints_each_in_its_published_form(void **state)
{
	struct fixture *f = *state;
	struct broker *b = &f->b[A];
	struct tf_checkpoint cp, back;
	struct tf_err err;
	char *plain, *json, *line;
	cJSON *o;

	fill_a(b);
	checkpoint(b, "broker-a", b->signer);
	plain = export_of(b, false);
	b->export = export_of(b, true);
	/* The events as without --checkpoints, then one line per checkpoint. */
	assert_int_equal(strncmp(b->export, plain, strlen(plain)), 0);
	assert_null(strstr(plain, "checkpoint"));
	line = b->export + strlen(plain);
	assert_int_equal(strncmp(line, "{\"checkpoint\":{", 15), 0);
	assert_string_equal(strchr(line, '\n'), "\n");
	o = cJSON_Parse(line);
	assert_int_equal(cJSON_GetArraySize(o), 1);
	assert_int_equal(tf_checkpoint_from_object(member(o, "checkpoint"), &cp, &err), TF_OK);
	assert_int_equal(cp.seq, 5);
	assert_string_equal(cp.broker, "broker-a");
	/* The same bytes as published. */
	json = tf_checkpoint_to_json(&cp);
	assert_int_equal(tf_checkpoint_from_json(json, strlen(json), &back, &err), TF_OK);
	assert_memory_equal(&cp, &back, sizeof(cp));
	assert_non_null(strstr(line, json));
	free(json);
	cJSON_Delete(o);
	free(plain);
}

static char *export_since(struct broker *b, int64_t since)
{
	struct tf_err err;
	char *text = NULL;
	size_t len = 0, n;
	FILE *out = open_memstream(&text, &len);

	assert_non_null(out);
	assert_int_equal(tf_trace_read_begin(b->s, &err), TF_OK);
	assert_int_equal(tf_query_export(b->s, since, out, &n, &err), TF_OK);
	assert_int_equal(tf_query_export_checkpoints(b->s, since, out, &n, &err), TF_OK);
	tf_trace_read_end(b->s);
	assert_int_equal(fclose(out), 0);
	return text;
}

static int count(const char *text, const char *needle)
{
	int n = 0;

	for (const char *at = strstr(text, needle); at != NULL; at = strstr(at + 1, needle))
		n++;
	return n;
}

/* An export from a time on carries the checkpoints from the event before
 * its first on, and joins from there: its first line's prev is proven by
 * a checkpoint at that event. */
static void an_export_since_a_time_carries_the_checkpoints_that_bear_on_it(void **state)
{
	struct fixture *f = *state;
	struct broker *b = &f->b[A];
	struct tf_trace_input in[] = {
		message(ID, "city", "meter-1", SIG_A, NULL, NULL, T0),
		delivery(ID, "city-dashboard", "city", "delivered", "dash-1", T0 + 1),
	};
	struct tf_trace_input odd = delivery(OTHER, "lab-cat", "uni-lab", "delivered", "cat-1",
		T0 - 999);
	struct broker other = { 0 };
	char *since_t0, *since_later, *events;
	bool ok;
	cJSON *answer;

	before(b);                              /* events 1 and 2 */
	checkpoint(b, "broker-a", b->signer);   /* at 2 */
	append(b, in, 1);
	append(b, in + 1, 1);                   /* events 3 and 4 */
	checkpoint(b, "broker-a", b->signer);   /* at 4 */
	since_t0 = export_since(b, T0);
	since_later = export_since(b, T0 + 1);
	assert_int_equal(count(since_t0, "\"kind\""), 2);
	assert_int_equal(count(since_t0, "{\"checkpoint\":"), 2);
	assert_int_equal(count(since_later, "\"kind\""), 1);
	assert_int_equal(count(since_later, "{\"checkpoint\":"), 1);
	answer = join3(f, since_t0, NULL, NULL, &ok);
	assert_true(ok);
	assert_int_equal(member(member(part(answer, "broker-a"), "checkpoint"), "seq")->valuedouble,
		4);
	cJSON_Delete(answer);
	/* The same events after others: their prev is not the chain's at
	 * event 2, which the checkpoint there signed. */
	assert_int_equal(open_broker(&other), 0);
	append(&other, &odd, 1);
	append(&other, &odd, 1);
	append(&other, in, 1);
	append(&other, in + 1, 1);
	events = export_since(&other, T0);
	assert_int_equal(count(events, "{\"checkpoint\":"), 0);
	b->export = concat(events, strstr(since_t0, "{\"checkpoint\":"));
	answer = join3(f, b->export, NULL, NULL, &ok);
	assert_false(ok);
	assert_string_equal(part_reason(answer, "broker-a"), "the chain at event 2 is not the one "
		"its checkpoint at seq 2 signed: events were changed, removed or inserted");
	cJSON_Delete(answer);
	free(events);
	close_broker(&other);
	free(since_t0);
	free(since_later);
}

static void three_brokers_join_in_path_order_with_every_recipient(void **state)
{
	struct fixture *f = *state;
	const cJSON *p, *m, *fw;
	char got[300], *text;
	bool ok;
	cJSON *answer;

	fill_all(f);
	/* Given in any order, the path is A, B, C. */
	answer = join3(f, f->b[A].export, f->b[B].export, f->b[C].export, &ok);
	assert_true(ok);
	assert_true(cJSON_IsTrue(member(answer, "ok")));
	assert_string_equal(str(answer, "id"), ID);
	path_is(answer, "broker-a broker-b broker-c");
	assert_int_equal(cJSON_GetArraySize(member(answer, "gaps")), 0);
	assert_int_equal(cJSON_GetArraySize(member(answer, "without")), 0);
	for (int i = 0; i < N_BROKERS; i++) {
		p = part(answer, names[i]);
		assert_true(part_ok(answer, names[i]));
		assert_null(cJSON_GetObjectItemCaseSensitive(p, "reason"));
		assert_int_equal(member(member(p, "checkpoint"), "seq")->valuedouble,
			i == C ? 3 : 5);
		assert_false(cJSON_IsTrue(member(member(p, "checkpoint"), "kept")));
	}
	/* A: the origin, its recipient and its forward to B. */
	p = part(answer, "broker-a");
	assert_string_equal(str(p, "export"), "a.jsonl");
	m = member(p, "message");
	assert_string_equal(str(m, "status"), "delivered");
	assert_string_equal(str(m, "client"), "meter-1");
	assert_int_equal(member(m, "seq")->valuedouble, 3);
	assert_null(cJSON_GetObjectItemCaseSensitive(m, "peer"));
	assert_null(cJSON_GetObjectItemCaseSensitive(m, "hops"));
	recipients(p, got, sizeof(got));
	assert_string_equal(got, "city-dashboard:city:delivered");
	assert_string_equal(str(cJSON_GetArrayItem(member(p, "recipients"), 0), "client_id"),
		"dash-1");
	assert_int_equal(cJSON_GetArraySize(member(p, "forwards")), 1);
	fw = cJSON_GetArrayItem(member(p, "forwards"), 0);
	assert_string_equal(str(fw, "broker"), "broker-b");
	assert_string_equal(str(fw, "org"), "utility");
	assert_string_equal(str(fw, "link"), "bridge-broker-b");
	/* B: relayed from A, with A's stamp as its hop. */
	p = part(answer, "broker-b");
	m = member(p, "message");
	assert_string_equal(str(m, "peer"), "broker-a");
	assert_int_equal(cJSON_GetArraySize(member(m, "hops")), 1);
	assert_string_equal(cJSON_GetArrayItem(member(m, "hops"), 0)->valuestring, HOP_A);
	assert_int_equal(strlen(str(m, "prev")), 24);
	recipients(p, got, sizeof(got));
	assert_string_equal(got, "utility-app:utility:delivered");
	assert_string_equal(str(cJSON_GetArrayItem(member(p, "forwards"), 0), "broker"), "broker-c");
	/* C: its recipient and whom it withheld from; no forwards. */
	p = part(answer, "broker-c");
	assert_string_equal(str(member(p, "message"), "peer"), "broker-b");
	recipients(p, got, sizeof(got));
	assert_string_equal(got, "contractor-app:contractor:delivered "
		"stranger-app:stranger:withheld");
	assert_string_equal(str(cJSON_GetArrayItem(member(p, "recipients"), 1), "reason"),
		"no consumer rule matches");
	assert_int_equal(cJSON_GetArraySize(member(p, "forwards")), 0);
	/* The other message is in no part. */
	text = cJSON_PrintUnformatted(answer);
	assert_null(strstr(text, "lab-bot"));
	free(text);
	cJSON_Delete(answer);
}

static void a_delivery_removed_from_an_export_fails_that_part(void **state)
{
	struct fixture *f = *state;
	char *edited;
	bool ok;
	cJSON *answer;

	fill_all(f);
	edited = without_line(f->b[B].export, "\"utility-app\"");
	answer = join3(f, f->b[A].export, edited, f->b[C].export, &ok);
	assert_false(ok);
	assert_false(part_ok(answer, "broker-b"));
	assert_string_equal(part_reason(answer, "broker-b"), "event 4 is missing");
	assert_true(part_ok(answer, "broker-a"));
	assert_true(part_ok(answer, "broker-c"));
	cJSON_Delete(answer);
	free(edited);
}

static void a_recipient_changed_in_an_export_fails_that_part(void **state)
{
	struct fixture *f = *state;
	char *edited, got[200];
	bool ok;
	cJSON *answer;

	fill_all(f);
	edited = replaced(f->b[C].export, "\"stranger-app\"", "\"contractor-ops\"");
	answer = join3(f, f->b[A].export, f->b[B].export, edited, &ok);
	assert_false(ok);
	assert_false(part_ok(answer, "broker-c"));
	assert_string_equal(part_reason(answer, "broker-c"),
		"event 3: its fields do not give its hash (chain hash mismatch)");
	/* What the export claims is shown, as not proven. */
	recipients(part(answer, "broker-c"), got, sizeof(got));
	assert_string_equal(got, "contractor-app:contractor:delivered "
		"contractor-ops:stranger:withheld");
	cJSON_Delete(answer);
	free(edited);
}

/* An operator who rewrites its trace without a delivery, every hash
 * recomputed, cannot make the checkpoint it signed then fit; one who also
 * signs a new checkpoint over the rewritten chain (it holds the key) is
 * caught by a checkpoint kept outside the broker. */
static void a_rewritten_trace_fails_its_checkpoint_or_the_one_kept(void **state)
{
	struct fixture *f = *state;
	struct broker forged = { 0 };
	struct tf_trace_input filler = delivery(OTHER, "lab-bot", "uni-lab", "delivered",
		"lab-bot-1", T0 + 12);
	char *signed_then, *events, *text, *published, bare[600];
	struct tf_join *j;
	struct tf_err err;
	bool ok;
	cJSON *answer, *o;

	fill_all(f);
	signed_then = strstr(f->b[B].export, "{\"checkpoint\":");
	assert_non_null(signed_then);
	/* B's trace again without the delivery to utility-app, as long as
	 * before. */
	assert_int_equal(open_broker(&forged), 0);
	fill_b(&forged, false);
	append(&forged, &filler, 1);
	events = export_of(&forged, false);
	text = concat(events, signed_then);
	answer = join3(f, f->b[A].export, text, f->b[C].export, &ok);
	assert_false(ok);
	assert_string_equal(part_reason(answer, "broker-b"), "the chain at event 5 is not the one "
		"its checkpoint at seq 5 signed: events were changed, removed or inserted");
	cJSON_Delete(answer);
	free(text);

	/* Signed anew with B's key, the rewritten export passes on its own... */
	checkpoint(&forged, "broker-b", f->b[B].signer);
	text = export_of(&forged, true);
	answer = join3(f, f->b[A].export, text, f->b[C].export, &ok);
	assert_true(ok);
	cJSON_Delete(answer);
	/* ... but not against the checkpoint published then and kept, in the
	 * form mosquitto_sub -F '%I %p' keeps it. */
	o = cJSON_Parse(signed_then);
	assert_non_null(o);
	published = cJSON_PrintUnformatted(member(o, "checkpoint"));
	snprintf(bare, sizeof(bare), "2025-11-26T12:00:05+0000 %s", published);
	free(published);
	cJSON_Delete(o);
	j = join_with_keys(f);
	assert_int_equal(tf_join_keep_checkpoint(j, bare, strlen(bare), &err), TF_OK);
	assert_int_equal(tf_join_keep_checkpoint(j, "", 0, &err), TF_OK);
	assert_int_equal(tf_join_keep_checkpoint(j, "nonsense", 8, &err), TF_ERR_INVALID);
	feed(j, "a.jsonl", f->b[A].export);
	feed(j, "b.jsonl", text);
	feed(j, "c.jsonl", f->b[C].export);
	answer = tf_join_result(j, &ok, &err);
	assert_non_null(answer);
	assert_false(ok);
	assert_string_equal(part_reason(answer, "broker-b"), "the chain at event 5 is not the one "
		"the checkpoint you kept at seq 5 signed: events were changed, removed or inserted");
	assert_true(part_ok(answer, "broker-a"));
	cJSON_Delete(answer);
	tf_join_free(j);
	free(text);
	free(events);
	close_broker(&forged);
}

static void a_key_bound_to_another_broker_does_not_pass(void **state)
{
	struct fixture *f = *state;
	const char *pem_a = tf_signer_public_pem(f->b[A].signer);
	char expected[200];
	struct tf_join *j;
	struct tf_err err;
	bool ok;
	cJSON *answer;

	fill_all(f);
	/* broker-b bound to a key that is not B's. */
	assert_int_equal(tf_join_new(ID, &j, &err), TF_OK);
	bind(j, "broker-a", f->b[A].signer);
	bind(j, "broker-b", f->stranger);
	bind(j, "broker-c", f->b[C].signer);
	/* One key for two brokers is refused. */
	assert_int_equal(tf_join_bind_key(j, "broker-c", pem_a, strlen(pem_a), &err),
		TF_ERR_INVALID);
	assert_non_null(strstr(err.msg, "bound to broker-a and to broker-c"));
	feed(j, "a.jsonl", f->b[A].export);
	feed(j, "b.jsonl", f->b[B].export);
	feed(j, "c.jsonl", f->b[C].export);
	answer = tf_join_result(j, &ok, &err);
	assert_false(ok);
	snprintf(expected, sizeof(expected), "its checkpoint at seq 5 is signed with key %s, which "
		"is not bound to broker-b", tf_signer_kid(f->b[B].signer));
	assert_string_equal(part_reason(answer, "broker-b"), expected);
	assert_true(part_ok(answer, "broker-a"));
	assert_true(part_ok(answer, "broker-c"));
	cJSON_Delete(answer);
	tf_join_free(j);
}

static void an_export_passed_off_as_another_brokers_does_not_pass(void **state)
{
	struct fixture *f = *state;
	char *edited, expected[200];
	struct tf_join *j;
	struct tf_err err;
	bool ok;
	cJSON *answer;

	fill_all(f);
	/* B's export whose checkpoint says it is A's. */
	edited = replaced(f->b[B].export, "{\"checkpoint\":{\"broker\":\"broker-b\"",
		"{\"checkpoint\":{\"broker\":\"broker-a\"");
	answer = join3(f, NULL, edited, f->b[C].export, &ok);
	assert_false(ok);
	snprintf(expected, sizeof(expected), "its checkpoint at seq 5 is signed with key %s, which "
		"is not bound to broker-a", tf_signer_kid(f->b[B].signer));
	assert_string_equal(part_reason(answer, "broker-a"), expected);
	cJSON_Delete(answer);
	/* Beside A's own export: two exports of one broker. */
	j = join_with_keys(f);
	feed(j, "a.jsonl", f->b[A].export);
	feed(j, "b.jsonl", edited);
	assert_null(tf_join_result(j, &ok, &err));
	assert_false(ok);
	assert_string_equal(err.msg, "a.jsonl and b.jsonl are both exports of broker-a: give one "
		"export per broker");
	tf_join_free(j);
	free(edited);
}

static void a_truncated_export_misses_what_its_checkpoint_covers(void **state)
{
	struct fixture *f = *state;
	char *edited;
	bool ok;
	cJSON *answer;

	fill_all(f);
	/* The last event, B's forward to C, left out. */
	edited = without_line(f->b[B].export, "\"bridge-broker-c\"");
	answer = join3(f, f->b[A].export, edited, f->b[C].export, &ok);
	assert_false(ok);
	assert_string_equal(part_reason(answer, "broker-b"), "it ends at event 4, but its "
		"checkpoint at seq 5 covers more: events are missing at its end");
	cJSON_Delete(answer);
	free(edited);
}

static void events_after_the_last_checkpoint_are_not_checked(void **state)
{
	struct fixture *f = *state;
	struct tf_trace_input later = delivery(ID, "utility-app", "utility", "delivered",
		"utility-app-8", T0 + 30);
	bool ok;
	cJSON *answer;

	fill_all(f);
	append(&f->b[B], &later, 1);
	free(f->b[B].export);
	f->b[B].export = export_of(&f->b[B], true);
	answer = join3(f, f->b[A].export, f->b[B].export, f->b[C].export, &ok);
	assert_false(ok);
	assert_string_equal(part_reason(answer, "broker-b"), "no checkpoint covers its last event, "
		"6: export again after the broker's next checkpoint");
	cJSON_Delete(answer);
	/* After the next checkpoint it is. */
	checkpoint(&f->b[B], "broker-b", f->b[B].signer);
	free(f->b[B].export);
	f->b[B].export = export_of(&f->b[B], true);
	answer = join3(f, f->b[A].export, f->b[B].export, f->b[C].export, &ok);
	assert_true(ok);
	assert_int_equal(member(member(part(answer, "broker-b"), "checkpoint"), "seq")->valuedouble,
		6);
	assert_int_equal(cJSON_GetArraySize(member(part(answer, "broker-b"), "recipients")), 2);
	cJSON_Delete(answer);
}

static void lines_that_are_not_events_fail_the_export(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *from, *to, *reason;
	} cases[] = {
		{ "{\"seq\":4,", "{\"note\":\"x\",\"seq\":4,",
			"line 4: a delivery event has no member \"note\"" },
		{ "{\"seq\":4,", "{\"seq\":4,\"seq\":4,", "line 4: \"seq\" appears twice" },
		{ "{\"seq\":4,", "{\"seq\":4.5,",
			"line 4: \"seq\" or \"ts\" is missing or not a whole number" },
		{ "{\"seq\":4,", "[{\"seq\":4,", "line 4: not a JSON object" },
		{ "{\"seq\":4,", "{\"prev\":\"" SHA "\",\"seq\":4,",
			"line 4: \"prev\" after the first event" },
		{ "\"kind\":\"delivery\"", "\"kind\":\"parcel\"",
			"line 2: neither an event of a known kind nor a checkpoint" },
		{ "\"policy\":\"meter-data@1\",\"client\":\"utility-app\"",
			"\"client\":\"utility-app\"", "line 4: \"policy\" is missing" },
		{ "{\"checkpoint\":{", "{\"extra\":1,\"checkpoint\":{",
			"line 6: a checkpoint line has members besides \"checkpoint\"" },
	};

	fill_all(f);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *edited = replaced(f->b[B].export, cases[i].from, cases[i].to);
		bool ok;
		cJSON *answer = join3(f, f->b[A].export, edited, f->b[C].export, &ok);

		const cJSON *reason = cJSON_GetObjectItemCaseSensitive(part_from(answer, "b.jsonl"),
			"reason");

		assert_false(ok);
		if (!cJSON_IsString(reason))
			fail_msg("case %zu passed", i);
		assert_string_equal(reason->valuestring, cases[i].reason);
		cJSON_Delete(answer);
		free(edited);
	}
}

static void gaps_between_the_parts_are_named(void **state)
{
	struct fixture *f = *state;
	const cJSON *gap;
	bool ok;
	cJSON *answer;

	/* C's last hop record is not B's stamp as B recorded it. */
	fill_all_with(f, "[\"" HOP_A "\",\"2|" ID "|broker-b|bbbbbbbbbbbbbbbb|1764158400010|city|"
		"bridge-broker-a|" POLICY "|" TOPIC "|7|AAAAAAAAAAAAAAAAAAAAAA==|" SIG_A "\"]");
	answer = join3(f, f->b[A].export, f->b[B].export, f->b[C].export, &ok);
	assert_false(ok);
	for (int i = 0; i < N_BROKERS; i++)
		assert_true(part_ok(answer, names[i]));
	assert_int_equal(cJSON_GetArraySize(member(answer, "gaps")), 1);
	gap = cJSON_GetArrayItem(member(answer, "gaps"), 0);
	assert_string_equal(str(gap, "broker"), "broker-c");
	assert_string_equal(str(gap, "reason"), "the hop records of broker-c's message event do not "
		"end with broker-b's stamp as broker-b's export records it");
	cJSON_Delete(answer);
	/* Without C's export: B forwarded it where no export tells. */
	answer = join3(f, f->b[A].export, f->b[B].export, NULL, &ok);
	assert_false(ok);
	path_is(answer, "broker-a broker-b");
	gap = cJSON_GetArrayItem(member(answer, "gaps"), 0);
	assert_string_equal(str(gap, "broker"), "broker-c");
	assert_string_equal(str(gap, "reason"), "broker-b forwarded it to broker-c; no export of "
		"broker-c was given");
	cJSON_Delete(answer);
	/* Without A's: where B got it from is not told either. */
	answer = join3(f, NULL, f->b[B].export, f->b[C].export, &ok);
	assert_false(ok);
	path_is(answer, "broker-b broker-c");
	assert_string_equal(str(cJSON_GetArrayItem(member(answer, "gaps"), 0), "reason"),
		"broker-b received it from broker-a; no export of broker-a was given");
	cJSON_Delete(answer);
}

static void a_message_no_export_holds_is_a_no(void **state)
{
	struct fixture *f = *state;
	const cJSON *w;
	struct tf_join *j;
	struct tf_err err;
	bool ok = true;
	cJSON *answer;

	fill_all(f);
	assert_int_equal(tf_join_new("0123456789abcdef0123456789abcdef", &j, &err), TF_OK);
	for (int i = 0; i < N_BROKERS; i++)
		bind(j, names[i], f->b[i].signer);
	feed(j, "a.jsonl", f->b[A].export);
	feed(j, "b.jsonl", f->b[B].export);
	answer = tf_join_result(j, &ok, &err);
	assert_false(ok);
	assert_int_equal(cJSON_GetArraySize(member(answer, "brokers")), 0);
	assert_string_equal(str(answer, "reason"), "no export holds an event of the message");
	/* The exports are checked all the same. */
	assert_int_equal(cJSON_GetArraySize(member(answer, "without")), 2);
	cJSON_ArrayForEach(w, member(answer, "without"))
		assert_true(cJSON_IsTrue(member(w, "ok")));
	cJSON_Delete(answer);
	tf_join_free(j);
	assert_int_equal(tf_join_new("0123456789ABCDEF0123456789ABCDEF", &j, &err), TF_ERR_INVALID);
	assert_int_equal(tf_join_new(ID "0", &j, &err), TF_ERR_INVALID);
}

static void an_export_without_checkpoints_proves_nothing(void **state)
{
	struct fixture *f = *state;
	char *plain;
	bool ok;
	cJSON *answer;
	const cJSON *p;

	fill_all(f);
	plain = export_of(&f->b[B], false);
	answer = join3(f, f->b[A].export, plain, f->b[C].export, &ok);
	assert_false(ok);
	/* Placed by the peer its message event names. */
	path_is(answer, "broker-a null broker-c");
	p = cJSON_GetArrayItem(member(answer, "brokers"), 1);
	assert_true(cJSON_IsNull(member(p, "broker")));
	assert_string_equal(str(p, "reason"), "the export holds no checkpoint (tfctl trace export "
		"--checkpoints)");
	assert_string_equal(str(member(p, "message"), "peer"), "broker-a");
	cJSON_Delete(answer);
	free(plain);
}

/* A view copy made of the message, and its release from quarantine, are
 * part of what became of it. */
static void views_and_releases_belong_to_the_message(void **state)
{
	struct fixture *f = *state;
	struct broker *b = &f->b[A];
	struct tf_trace_input in[] = {
		message(ID, "city", "meter-1", SIG_A, NULL, NULL, T0),
		{ .kind = TF_EVENT_RELEASE, .ts_ms = T0 + 5,
			.values = { ID, "meter-data/meter-1", "ops", "" } },
		delivery(ID, "city-dashboard", "city", "delivered", "dash-1", T0 + 5),
		{ .kind = TF_EVENT_MESSAGE, .ts_ms = T0 + 6, .values = { VIEW, "city/meters/m1/summary",
			"city", "meter-1", POLICY, SHA, "5", "delivered", "", "8", "0123456789abcdef",
			"c2ln", ID } },
		delivery(VIEW, "press-app", "press", "delivered", "press-1", T0 + 7),
	};
	const cJSON *p, *v;
	char got[200];
	bool ok;
	cJSON *answer;

	in[0].values[7] = "quarantined";
	in[0].values[8] = "rate anomaly";
	append(b, in, 5);
	checkpoint(b, "broker-a", b->signer);
	b->export = export_of(b, true);
	answer = join3(f, b->export, NULL, NULL, &ok);
	assert_true(ok);
	p = part(answer, "broker-a");
	assert_string_equal(str(member(p, "message"), "status"), "released");
	assert_string_equal(str(member(p, "message"), "by"), "ops");
	assert_string_equal(str(member(p, "message"), "reason"), "rate anomaly");
	recipients(p, got, sizeof(got));
	assert_string_equal(got, "city-dashboard:city:delivered");
	assert_int_equal(cJSON_GetArraySize(member(p, "views")), 1);
	v = cJSON_GetArrayItem(member(p, "views"), 0);
	assert_string_equal(str(v, "id"), VIEW);
	recipients(v, got, sizeof(got));
	assert_string_equal(got, "press-app:press:delivered");
	assert_int_equal(member(member(p, "checkpoint"), "seq")->valuedouble, 5);
	cJSON_Delete(answer);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(export_checkpoints_prints_each_in_its_published_form),
		T(an_export_since_a_time_carries_the_checkpoints_that_bear_on_it),
		T(three_brokers_join_in_path_order_with_every_recipient),
		T(a_delivery_removed_from_an_export_fails_that_part),
		T(a_recipient_changed_in_an_export_fails_that_part),
		T(a_rewritten_trace_fails_its_checkpoint_or_the_one_kept),
		T(a_key_bound_to_another_broker_does_not_pass),
		T(an_export_passed_off_as_another_brokers_does_not_pass),
		T(a_truncated_export_misses_what_its_checkpoint_covers),
		T(events_after_the_last_checkpoint_are_not_checked),
		T(lines_that_are_not_events_fail_the_export),
		T(gaps_between_the_parts_are_named),
		T(a_message_no_export_holds_is_a_no),
		T(an_export_without_checkpoints_proves_nothing),
		T(views_and_releases_belong_to_the_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
