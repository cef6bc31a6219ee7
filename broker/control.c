#include "broker/control.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "broker/alerts.h"
#include "broker/quarantine.h"
#include "broker/trace_query.h"
#include "broker/trace_store.h"
#include "policy/decide.h"
#include "policy/govern.h"
#include "policy/set.h"

/* Who is asking, and what that allows. */
struct caller {
	struct tf_engine *e;
	const char *username;
	const struct tf_policy_set *set;   /* in force: set anew before each command */
	const struct tf_client *who;
	bool admin, steward;
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

/* --- commands: each fills data, or returns an error text ---------------------- */

struct alert_list {
	const struct caller *c;
	cJSON *array;
	bool failed;
};

static void add_alert(void *ctx, const struct tf_alert *alert)
{
	struct alert_list *l = ctx;
	cJSON *o;

	if (!may_manage(l->c, alert->policy[0] ? policy_of_label(l->c->set, alert->policy) : NULL))
		return;
	o = tf_alert_json(alert);
	if (o == NULL || !cJSON_AddItemToArray(l->array, o)) {
		cJSON_Delete(o);
		l->failed = true;
	}
}

static const char *list_alerts(const struct caller *c, const cJSON *cmd, cJSON *data)
{
	const cJSON *since = cJSON_GetObjectItemCaseSensitive(cmd, "since");
	struct alert_list l = { c, cJSON_AddArrayToObject(data, "alerts"), false };

	if (since != NULL && !cJSON_IsNumber(since))
		return "since: not a number (ms since the epoch)";
	if (l.array == NULL)
		return "out of memory";
	tf_alerts_each(tf_engine_alerts(c->e), since ? (int64_t)since->valuedouble : 0, add_alert,
		&l);
	return l.failed ? "out of memory" : NULL;
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

static const char *get_message(const struct caller *c, const cJSON *cmd, cJSON *data)
{
	struct tf_trace_store *s = tf_engine_trace_store(c->e);
	const char *id = arg(cmd, "id");
	struct tf_err err = { "" };
	const cJSON *policy;
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
	policy = cJSON_GetObjectItemCaseSensitive(m, "policy");
	if (!may_manage(c, cJSON_IsString(policy) ? policy_of_label(c->set, policy->valuestring)
			: NULL)) {
		cJSON_Delete(m);
		return "not authorized";
	}
	become_data(m, data);
	return NULL;
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
	out = tf_decision_json(&d);
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

static const char *list_quarantine(const struct caller *c, const cJSON *cmd, cJSON *data)
{
	const struct tf_quarantine *q = tf_engine_quarantine(c->e);
	const char *only = arg(cmd, "policy");
	cJSON *flows = cJSON_AddArrayToObject(data, "flows");

	if (flows == NULL)
		return "out of memory";
	for (uint32_t i = 0; i < tf_quarantine_count(q); i++) {
		const struct tf_held_flow *f = tf_quarantine_at(q, i);
		char id[TF_TRACE_KEY_TEXT_MAX + 1];
		cJSON *o;

		tf_trace_policy_id(f->policy, id, sizeof(id));
		if ((only != NULL && strcmp(only, id) != 0)
				|| !may_manage(c, tf_policy_set_find(c->set, id)))
			continue;
		o = cJSON_CreateObject();
		if (o == NULL || !cJSON_AddStringToObject(o, "flow", f->flow)
				|| !cJSON_AddStringToObject(o, "policy", f->policy)
				|| !cJSON_AddStringToObject(o, "client", f->client)
				|| !cJSON_AddNumberToObject(o, "held", (double)f->held)
				|| !cJSON_AddNumberToObject(o, "since", (double)f->since_ms)
				|| !cJSON_AddItemToArray(flows, o)) {
			cJSON_Delete(o);
			return "out of memory";
		}
	}
	return NULL;
}

/* The error of the last failed release or discard, for its response. */
static char flow_error[sizeof(((struct tf_err *)0)->msg)];

/* What a release did (broker/engine.h), as its response data. */
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

static char *print(cJSON *o)
{
	char *text = o ? cJSON_PrintUnformatted(o) : NULL;

	cJSON_Delete(o);
	return text;
}

/* The answer to a request that is not one: a single error. */
static char *malformed(const char *why)
{
	cJSON *o = cJSON_CreateObject(), *list, *r;

	list = o ? cJSON_AddArrayToObject(o, "responses") : NULL;
	r = cJSON_CreateObject();
	if (list == NULL || r == NULL || !cJSON_AddStringToObject(r, "command", "")
			|| !cJSON_AddStringToObject(r, "error", why) || !cJSON_AddItemToArray(list, r)) {
		cJSON_Delete(r);
		cJSON_Delete(o);
		return NULL;
	}
	return print(o);
}

char *tf_control_handle(struct tf_engine *e, const char *username, const void *payload,
		size_t len)
{
	struct caller c = { e, username, NULL, NULL, false, false };
	const cJSON *cmds, *cmd, *corr;
	cJSON *request, *out, *list;

	if (len > TF_CONTROL_MAX_REQUEST)
		return malformed("request too large");
	request = cJSON_ParseWithLength(payload, len);
	cmds = cJSON_GetObjectItemCaseSensitive(request, "commands");
	corr = cJSON_GetObjectItemCaseSensitive(request, "correlationData");
	if (!cJSON_IsObject(request) || !cJSON_IsArray(cmds)
			|| (corr != NULL && !cJSON_IsString(corr))) {
		cJSON_Delete(request);
		return malformed("not a request: {\"commands\": [...], \"correlationData\": \"...\"}");
	}
	if (cJSON_GetArraySize(cmds) > (int)TF_CONTROL_MAX_COMMANDS) {
		cJSON_Delete(request);
		return malformed("more than 100 commands");
	}
	out = cJSON_CreateObject();
	list = out ? cJSON_AddArrayToObject(out, "responses") : NULL;
	if (list == NULL || (corr != NULL
			&& !cJSON_AddStringToObject(out, "correlationData", corr->valuestring))) {
		cJSON_Delete(request);
		cJSON_Delete(out);
		return NULL;
	}
	cJSON_ArrayForEach(cmd, cmds) {
		cJSON *r = cJSON_IsObject(cmd) ? run_command(&c, cmd) : NULL;

		if (r == NULL && cJSON_IsObject(cmd)) {
			cJSON_Delete(request);
			cJSON_Delete(out);
			return NULL;
		}
		if (r == NULL) {
			r = cJSON_CreateObject();
			if (r == NULL || !cJSON_AddStringToObject(r, "command", "")
					|| !cJSON_AddStringToObject(r, "error", "a command is an object")) {
				cJSON_Delete(r);
				cJSON_Delete(request);
				cJSON_Delete(out);
				return NULL;
			}
		}
		cJSON_AddItemToArray(list, r);
	}
	cJSON_Delete(request);
	return print(out);
}
