#include "broker/control/control.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "broker/guard/alerts.h"
#include "broker/guard/quarantine.h"
#include "broker/trace/trace_query.h"
#include "broker/trace/trace_store.h"
#include "policy/decide.h"
#include "policy/govern.h"
#include "policy/jsonfile.h"
#include "policy/set.h"

#define STR(x) #x
#define XSTR(x) STR(x)

/* A command runs only with this much room left for its answer, so that
 * one that changes something (releaseFlow) can always say what it did. */
#define MIN_ROOM 128

#define TOO_LARGE "response too large (over " XSTR(TF_CONTROL_MAX_RESPONSE_KIB) " KiB); " \
	"send this command in a request of its own, or with a smaller limit"

/* Who is asking, and what that allows. */
struct caller {
	struct tf_engine *e;
	const char *username;
	const struct tf_policy_set *set;   /* in force: set anew before each command */
	const struct tf_client *who;
	bool admin, steward;
	size_t room;   /* bytes a command's data may take: set before each command */
};

static bool has_role(const struct tf_client *who, uint32_t role)
{
	for (uint32_t i = 0; who != NULL && role != TF_NONE && i < who->n_roles; i++)
		if (who->roles[i] == role)
			return true;
	return false;
}

/* Looks the caller up in the set in force (a reload replaces it). */
static void identify(struct caller *c)
{
	c->set = tf_engine_policies(c->e);
	c->who = c->username ? tf_identities_client(c->set->ids, c->username) : NULL;
	c->admin = has_role(c->who, c->set->role_admin);
	c->steward = has_role(c->who, c->set->role_steward);
}

/* Whether the caller may act on data of policy p (NULL: of no policy,
 * which only administrators may). */
static bool may_manage(const struct caller *c, const struct tf_policy *p)
{
	return c->admin || (c->steward && p != NULL && p->owner == c->who->org);
}

/* The policy of a label "id@version" in the set in force, or NULL. */
static const struct tf_policy *policy_of_label(const struct tf_policy_set *set,
		const char *label)
{
	char id[TF_TRACE_KEY_TEXT_MAX + 1];

	tf_trace_policy_id(label, id, sizeof(id));
	return id[0] ? tf_policy_set_find(set, id) : NULL;
}

/* A string argument of a command, or NULL. */
static const char *arg(const cJSON *cmd, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cmd, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* An optional integer argument in [min, max] into *out, which keeps its
 * default when the argument is absent. False when it is present and is
 * not such an integer (1e30, -1, 1.5, "1"). */
static bool int_arg(const cJSON *cmd, const char *name, int64_t min, int64_t max, int64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cmd, name);

	return v == NULL || tf_json_integer(v, min, max, out);
}

/* --- pages of long lists ------------------------------------------------------------ */

/* A page of listAlerts or listQuarantine. Items go in by position (an
 * alert's, a flow's: broker/guard/alerts.h, broker/guard/quarantine.h) from the
 * request's cursor on, while the page has fewer than limit and their JSON
 * fits in the room left; the first that does not is the answer's "next",
 * which the following request passes as its cursor. */
struct page {
	cJSON *array;     /* borrowed from data, valid until the response is freed */
	uint64_t from;    /* the request's cursor */
	int64_t limit;
	size_t room;      /* bytes still allowed */
	int64_t taken;
	bool full, too_large, failed;
	uint64_t next;    /* when full: the position of the first item left out */
};

/* Reads limit and cursor and adds the list, named name, to data. Returns
 * an error text or NULL. */
static const char *page_begin(const struct caller *c, const cJSON *cmd, cJSON *data,
		const char *name, struct page *p)
{
	int64_t cursor = 0;

	*p = (struct page){ .limit = TF_CONTROL_PAGE_DEFAULT, .room = c->room };
	if (!int_arg(cmd, "limit", 1, TF_CONTROL_PAGE_MAX, &p->limit))
		return "limit: must be an integer from 1 to " XSTR(TF_CONTROL_PAGE_MAX);
	if (!int_arg(cmd, "cursor", 0, TF_CONTROL_INTEGER_MAX, &cursor))
		return "cursor: must be an integer from 0 to 2^53 - 1 "
			"(the \"next\" of the last page)";
	p->from = (uint64_t)cursor;
	p->array = cJSON_AddArrayToObject(data, name);
	return p->array == NULL ? "out of memory" : NULL;
}

/* Whether an item at position may still go in; if the page is full, the
 * item starts the next one. */
static bool page_open(struct page *p, uint64_t position)
{
	if (p->full)
		return false;
	if (p->taken == p->limit) {
		p->full = true;
		p->next = position;
		return false;
	}
	return true;
}

/* Adds item (ownership passes; NULL: out of memory) at position, or ends
 * the page there when its JSON does not fit in the room left. */
static void page_add(struct page *p, cJSON *item, uint64_t position)
{
	char *text = item != NULL ? cJSON_PrintUnformatted(item) : NULL;
	size_t len;

	if (text == NULL) {
		cJSON_Delete(item);
		p->failed = true;
		return;
	}
	len = strlen(text) + 1;   /* and a comma */
	free(text);
	if (len > p->room) {
		cJSON_Delete(item);
		p->full = true;
		p->next = position;
		/* A page with no item would be answered again and again. */
		p->too_large = p->taken == 0;
		return;
	}
	if (!cJSON_AddItemToArray(p->array, item)) {
		cJSON_Delete(item);
		p->failed = true;
		return;
	}
	p->room -= len;
	p->taken++;
}

/* Adds "next" to data when the list goes on. Returns an error text or
 * NULL. */
static const char *page_end(const struct page *p, cJSON *data)
{
	if (p->failed)
		return "out of memory";
	if (p->too_large)
		return TOO_LARGE;
	if (p->full && !cJSON_AddNumberToObject(data, "next", (double)p->next))
		return "out of memory";
	return NULL;
}

/* --- commands: each fills data, or returns an error text ---------------------- */

struct alert_list {
	const struct caller *c;
	struct page *page;
};

static void add_alert(void *ctx, const struct tf_alert *alert, uint64_t position)
{
	struct alert_list *l = ctx;

	if (!may_manage(l->c, alert->policy[0] ? policy_of_label(l->c->set, alert->policy) : NULL)
			|| !page_open(l->page, position))
		return;
	page_add(l->page, tf_alert_json(alert), position);
}

static const char *list_alerts(const struct caller *c, const cJSON *cmd, cJSON *data)
{
	struct page page;
	struct alert_list l = { c, &page };
	int64_t since = 0;
	const char *error;

	if (!int_arg(cmd, "since", 0, TF_CONTROL_INTEGER_MAX, &since))
		return "since: must be an integer from 0 to 2^53 - 1 (ms since the epoch)";
	if ((error = page_begin(c, cmd, data, "alerts", &page)) != NULL)
		return error;
	tf_alerts_each(tf_engine_alerts(c->e), since, page.from, add_alert, &l);
	return page_end(&page, data);
}

/* Moves the members of result into data and frees result: a query's
 * object is the response data itself. */
static void become_data(cJSON *result, cJSON *data)
{
	for (cJSON *item = result->child; item != NULL; item = result->child) {
		cJSON_DetachItemViaPointer(result, item);
		cJSON_AddItemToObject(data, item->string, item);
	}
	cJSON_Delete(result);
}

/* A query's result, as the answer's data when the caller may manage the
 * policy its label names (a string "id@version"; else: of no policy,
 * which only administrators may); freed and refused otherwise. */
static const char *hand_over(const struct caller *c, cJSON *result, const cJSON *label,
		cJSON *data)
{
	if (!may_manage(c, cJSON_IsString(label) ? policy_of_label(c->set, label->valuestring)
			: NULL)) {
		cJSON_Delete(result);
		return "not authorized";
	}
	become_data(result, data);
	return NULL;
}

static const char *get_message(const struct caller *c, const cJSON *cmd, cJSON *data)
{
	struct tf_trace_store *s = tf_engine_trace_store(c->e);
	const char *id = arg(cmd, "id");
	struct tf_err err = { "" };
	cJSON *m;

	if (id == NULL)
		return "id: a message id is required";
	if (s == NULL)
		return "this broker has no trace store";
	if (tf_trace_read_begin(s, &err) != TF_OK)
		return "the trace store cannot be read";
	m = tf_query_message(s, id, &err);
	tf_trace_read_end(s);
	if (m == NULL)
		return strstr(err.msg, "memory") ? "out of memory" : "no such message";
	return hand_over(c, m, cJSON_GetObjectItemCaseSensitive(m, "policy"), data);
}

/* tfctl report impact, asked of the running broker: for the console,
 * which draws it as the report's page does. */
static const char *impact_report(const struct caller *c, const cJSON *cmd, cJSON *data)
{
	struct tf_trace_store *s = tf_engine_trace_store(c->e);
	const char *id = arg(cmd, "alert");
	int64_t window_s = TF_IMPACT_WINDOW_DEFAULT_S;
	struct tf_err err = { "" };
	cJSON *impact;

	if (id == NULL)
		return "alert: an alert id is required";
	if (!int_arg(cmd, "window", 1, TF_IMPACT_WINDOW_MAX_S, &window_s))
		return "window: must be an integer from 1 to 31622400 (seconds)";
	if (s == NULL)
		return "this broker has no trace store";
	if (tf_trace_read_begin(s, &err) != TF_OK)
		return "the trace store cannot be read";
	impact = tf_query_impact(s, id, window_s * 1000, &err);
	tf_trace_read_end(s);
	if (impact == NULL)
		return strstr(err.msg, "memory") ? "out of memory" : "no such alert";
	/* An alert about no policy (or one no longer in force) is the
	 * administrators'. */
	return hand_over(c, impact, cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(impact, "alert"), "policy"), data);
}

static const char *explain(const struct caller *c, const cJSON *cmd, cJSON *data)
{
	const char *client = arg(cmd, "client"), *topic = arg(cmd, "topic");
	const char *action = arg(cmd, "action");
	const struct tf_client *who;
	struct tf_decision d;
	cJSON *out;

	if (client == NULL || topic == NULL || action == NULL)
		return "client, topic and action are required";
	who = tf_identities_client(c->set->ids, client);
	if (strcmp(action, "publish") == 0)
		tf_decide_publish(c->set, who, topic, &d);
	else if (strcmp(action, "receive") == 0)
		tf_decide_receive(c->set, who, topic, tf_engine_now(c->e), tf_engine_now(c->e), &d);
	else
		return "action: publish or receive";
	/* A steward asks about its own org's policies only. */
	if (!may_manage(c, d.policy))
		return "not authorized";
	out = tf_decision_json(c->set, who, &d);
	if (out == NULL)
		return "out of memory";
	become_data(out, data);
	return NULL;
}

/* The error of the last failed reload, for its response. */
static char reload_error[sizeof(((struct tf_err *)0)->msg)];

static const char *reload_policies(const struct caller *c, const cJSON *cmd, cJSON *data)
{
	struct tf_err err = { "" };

	(void)cmd;
	/* The set is everyone's: reloading it is the administrators'. */
	if (!c->admin)
		return "not authorized";
	if (tf_engine_reload(c->e, &err) != TF_OK) {
		memcpy(reload_error, err.msg, sizeof(reload_error));
		return reload_error;
	}
	if (!cJSON_AddNumberToObject(data, "policies", tf_engine_policies(c->e)->n_policies))
		return "out of memory";
	return NULL;
}

/* A quarantined flow's object, or NULL when out of memory. */
static cJSON *flow_json(const struct tf_held_flow *f)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL || !cJSON_AddStringToObject(o, "flow", f->flow)
			|| !cJSON_AddStringToObject(o, "policy", f->policy)
			|| !cJSON_AddStringToObject(o, "client", f->client)
			|| !cJSON_AddNumberToObject(o, "held", (double)f->held)
			|| !cJSON_AddNumberToObject(o, "since", (double)f->since_ms)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static const char *list_quarantine(const struct caller *c, const cJSON *cmd, cJSON *data)
{
	const struct tf_quarantine *q = tf_engine_quarantine(c->e);
	const char *only = arg(cmd, "policy");
	struct page page;
	const char *error = page_begin(c, cmd, data, "flows", &page);

	for (uint32_t i = 0; error == NULL && i < tf_quarantine_count(q); i++) {
		const struct tf_held_flow *f = tf_quarantine_at(q, i);
		char id[TF_TRACE_KEY_TEXT_MAX + 1];

		tf_trace_policy_id(f->policy, id, sizeof(id));
		if (f->position < page.from || (only != NULL && strcmp(only, id) != 0)
				|| !may_manage(c, tf_policy_set_find(c->set, id)))
			continue;
		if (!page_open(&page, f->position))
			break;
		page_add(&page, flow_json(f), f->position);
	}
	return error != NULL ? error : page_end(&page, data);
}

/* The error of the last failed release or discard, for its response. */
static char flow_error[sizeof(((struct tf_err *)0)->msg)];

/* What a release did (broker/engine/engine.h), as its response data. */
static const char *release_counts(const struct tf_release_counts *n, cJSON *data)
{
	if (!cJSON_AddNumberToObject(data, "released", (double)n->released)
			|| !cJSON_AddNumberToObject(data, "expired", (double)n->expired)
			|| !cJSON_AddNumberToObject(data, "kept", (double)n->kept)
			|| !cJSON_AddNumberToObject(data, "overridden", (double)n->overridden))
		return "out of memory";
	return NULL;
}

/* releaseFlow (with "override": true, what breaks the rules in force is
 * released too) and discardFlow. */
static const char *end_flow(const struct caller *c, const cJSON *cmd, cJSON *data, bool release)
{
	const char *flow = arg(cmd, "flow");
	const cJSON *override = cJSON_GetObjectItemCaseSensitive(cmd, "override");
	const struct tf_held_flow *f;
	char id[TF_TRACE_KEY_TEXT_MAX + 1];
	struct tf_release_counts counts;
	struct tf_err err = { "" };
	uint64_t n = 0;
	int rc;

	if (flow == NULL)
		return "flow: <policy id>/<publisher> is required";
	if (release && override != NULL && !cJSON_IsBool(override))
		return "override: true or false";
	f = tf_quarantine_find(tf_engine_quarantine(c->e), flow);
	if (f == NULL)
		return "no such quarantined flow";
	tf_trace_policy_id(f->policy, id, sizeof(id));
	if (!may_manage(c, tf_policy_set_find(c->set, id)))
		return "not authorized";
	rc = release ? tf_engine_release_flow(c->e, flow, c->username, cJSON_IsTrue(override),
			&counts, &err)
		: tf_engine_discard_flow(c->e, flow, c->username, &n, &err);
	if (rc != TF_OK) {
		memcpy(flow_error, err.msg, sizeof(flow_error));
		return flow_error;
	}
	if (release)
		return release_counts(&counts, data);
	if (!cJSON_AddNumberToObject(data, "discarded", (double)n))
		return "out of memory";
	return NULL;
}

static const char *release_flow(const struct caller *c, const cJSON *cmd, cJSON *data)
{
	return end_flow(c, cmd, data, true);
}

static const char *discard_flow(const struct caller *c, const cJSON *cmd, cJSON *data)
{
	return end_flow(c, cmd, data, false);
}

static const struct {
	const char *name;
	const char *(*run)(const struct caller *c, const cJSON *cmd, cJSON *data);
} commands[] = {
	{ "listAlerts", list_alerts },
	{ "listQuarantine", list_quarantine },
	{ "releaseFlow", release_flow },
	{ "discardFlow", discard_flow },
	{ "getMessage", get_message },
	{ "impactReport", impact_report },
	{ "explain", explain },
	{ "reloadPolicies", reload_policies },
};

/* --- requests ---------------------------------------------------------------------- */

/* One command's response: {"command", "data"} or {"command", "error"}. */
static cJSON *run_command(struct caller *c, const cJSON *cmd)
{
	const char *name = arg(cmd, "command");
	cJSON *response = cJSON_CreateObject(), *data = cJSON_CreateObject();
	const char *error = "unknown command";

	if (response == NULL || data == NULL
			|| !cJSON_AddStringToObject(response, "command", name ? name : "")) {
		cJSON_Delete(response);
		cJSON_Delete(data);
		return NULL;
	}
	identify(c);
	if (!c->admin && !c->steward) {
		error = "not authorized";
	} else {
		for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
			if (name != NULL && strcmp(name, commands[i].name) == 0) {
				error = commands[i].run(c, cmd, data);
				break;
			}
		}
	}
	if (error != NULL) {
		cJSON_Delete(data);
		if (!cJSON_AddStringToObject(response, "error", error)) {
			cJSON_Delete(response);
			return NULL;
		}
	} else {
		cJSON_AddItemToObject(response, "data", data);
	}
	return response;
}

/* {"command": name, "error": why}, or NULL when out of memory. */
static cJSON *error_response(const char *name, const char *why)
{
	cJSON *r = cJSON_CreateObject();

	if (r == NULL || !cJSON_AddStringToObject(r, "command", name)
			|| !cJSON_AddStringToObject(r, "error", why)) {
		cJSON_Delete(r);
		return NULL;
	}
	return r;
}

/* The length of o's JSON and a comma, or 0 when out of memory. */
static size_t json_size(const cJSON *o)
{
	char *text = cJSON_PrintUnformatted(o);
	size_t n = text != NULL ? strlen(text) + 1 : 0;

	free(text);
	return n;
}

static char *print(cJSON *o)
{
	char *text = o ? cJSON_PrintUnformatted(o) : NULL;

	cJSON_Delete(o);
	return text;
}

/* The answer to a request that is not one: a single error. */
static char *malformed(const char *why)
{
	cJSON *o = cJSON_CreateObject(), *list, *r = error_response("", why);

	list = o ? cJSON_AddArrayToObject(o, "responses") : NULL;
	if (list == NULL || r == NULL || !cJSON_AddItemToArray(list, r)) {
		cJSON_Delete(r);
		cJSON_Delete(o);
		return NULL;
	}
	return print(o);
}

/* An answer being built within TF_CONTROL_MAX_RESPONSE bytes: those it
 * takes, and those kept back so that each command not yet run can at
 * least answer TOO_LARGE (its fallback). */
struct answer {
	cJSON *out, *list;                               /* caller owns out */
	cJSON *fallback[TF_CONTROL_MAX_COMMANDS];        /* owned until used */
	size_t fallback_size[TF_CONTROL_MAX_COMMANDS];
	size_t used, reserved;
};

static void answer_free(struct answer *a)
{
	for (size_t i = 0; i < TF_CONTROL_MAX_COMMANDS; i++)
		cJSON_Delete(a->fallback[i]);
	cJSON_Delete(a->out);
}

/* Starts the answer to cmds (at most TF_CONTROL_MAX_COMMANDS) with corr
 * (NULL: none). False when out of memory (free a with answer_free). */
static bool answer_begin(struct answer *a, const cJSON *cmds, const cJSON *corr)
{
	const cJSON *cmd;
	size_t i = 0;

	*a = (struct answer){ .out = cJSON_CreateObject() };
	a->list = a->out ? cJSON_AddArrayToObject(a->out, "responses") : NULL;
	if (a->list == NULL || (corr != NULL
			&& !cJSON_AddStringToObject(a->out, "correlationData", corr->valuestring)))
		return false;
	a->used = json_size(a->out);
	cJSON_ArrayForEach(cmd, cmds) {
		const char *name = cJSON_IsObject(cmd) ? arg(cmd, "command") : NULL;

		a->fallback[i] = error_response(name ? name : "", TOO_LARGE);
		a->fallback_size[i] = json_size(a->fallback[i]);
		if (a->fallback[i] == NULL || a->fallback_size[i] == 0)
			return false;
		a->reserved += a->fallback_size[i++];
	}
	return a->used > 0;
}

/* Runs command i, cmd, if its answer may still fit, and adds its response
 * (or its fallback) to the answer. False when out of memory. */
static bool answer_add(struct answer *a, struct caller *c, const cJSON *cmd, size_t i)
{
	size_t taken = a->used + a->reserved;
	size_t room = taken < TF_CONTROL_MAX_RESPONSE ? TF_CONTROL_MAX_RESPONSE - taken : 0;
	cJSON *r = NULL;
	size_t size = 0;

	if (!cJSON_IsObject(cmd)) {
		/* Smaller than the fallback, so it always fits. */
		if ((r = error_response("", "a command is an object")) == NULL)
			return false;
	} else if (room >= MIN_ROOM) {
		/* A list fills room with items: what its response adds around
		 * them ({"command", "data", "next"}) is less than the fallback
		 * that is kept back for it. */
		c->room = room;
		if ((r = run_command(c, cmd)) == NULL)
			return false;
	}
	if (r != NULL && (size = json_size(r)) == 0) {
		cJSON_Delete(r);
		return false;
	}
	if (r == NULL || size > room + a->fallback_size[i]) {
		cJSON_Delete(r);
		r = a->fallback[i];
		size = a->fallback_size[i];
		a->fallback[i] = NULL;
	}
	a->reserved -= a->fallback_size[i];
	a->used += size;
	if (!cJSON_AddItemToArray(a->list, r)) {
		cJSON_Delete(r);
		return false;
	}
	return true;
}

char *tf_control_handle(struct tf_engine *e, const char *username, const void *payload,
		size_t len)
{
	struct caller c = { e, username, NULL, NULL, false, false, 0 };
	const cJSON *cmds, *cmd, *corr;
	struct answer a;
	cJSON *request, *out;
	struct tf_err err = { "" };
	size_t i = 0;

	if (len > TF_CONTROL_MAX_REQUEST)
		return malformed("request too large");
	/* The policy loader's strict parser: besides JSON, it refuses a NUL
	 * (cJSON would cut "explain\u0000x" to "explain"), text that is not
	 * UTF-8 and a member given twice, in every string the commands read. */
	if (tf_json_parse(len > 0 ? payload : "", len, "not a request", &request, &err) != TF_OK)
		return malformed(err.msg);
	cmds = cJSON_GetObjectItemCaseSensitive(request, "commands");
	corr = cJSON_GetObjectItemCaseSensitive(request, "correlationData");
	if (!cJSON_IsObject(request) || !cJSON_IsArray(cmds)
			|| (corr != NULL && !cJSON_IsString(corr))) {
		cJSON_Delete(request);
		return malformed("not a request: {\"commands\": [...], \"correlationData\": \"...\"}");
	}
	/* Each command may answer up to a page: the first bound of the
	 * answer, refused as a whole so that no command half runs. */
	if (cJSON_GetArraySize(cmds) > TF_CONTROL_MAX_COMMANDS) {
		cJSON_Delete(request);
		return malformed("more than " XSTR(TF_CONTROL_MAX_COMMANDS)
			" commands in one request");
	}
	if (!answer_begin(&a, cmds, corr)) {
		answer_free(&a);
		cJSON_Delete(request);
		return NULL;
	}
	cJSON_ArrayForEach(cmd, cmds) {
		if (!answer_add(&a, &c, cmd, i++)) {
			answer_free(&a);
			cJSON_Delete(request);
			return NULL;
		}
	}
	cJSON_Delete(request);
	out = a.out;
	a.out = NULL;
	answer_free(&a);
	return print(out);
}
