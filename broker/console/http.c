#include "config.h"

#include "broker/console/http.h"

#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "broker/console/assets.h"
#include "broker/console/prometheus.h"
#include "broker/console/sessions.h"
#include "broker/console/throttle.h"
#include "broker/util/number.h"

/* A request body (sign-in, release, discard) is small: larger ones are
 * refused (413) before they are read. */
#define MAX_BODY (64 * 1024)
#define COOKIE "tf_session"
#define CSRF_HEADER "X-CSRF-Token"
#define REALM "trustflow console"
/* Pages of listQuarantine read for one answer (500 flows a page). */
#define QUARANTINE_PAGES 20
#define SCRAPE_IDLE_MS (10 * 60 * 1000)

struct tf_console {
	struct MHD_Daemon *daemon;
	struct tf_console_config cfg;
	char *listen;
	char *cafile;
	char *host;
	bool tls;
	struct tf_console_sessions *sessions;   /* signed in through the page */
	struct tf_console_sessions *scrapers;   /* /metrics by HTTP Basic */
	struct tf_console_throttle throttle;
	bool throttle_ready;
	/* Keys the scrapers' sessions by an HMAC of their credentials, so that
	 * no plain hash of a password sits in memory. */
	unsigned char scrape_key[32];
};

/* What a connection's request has sent so far (MHD's con_cls). */
struct request {
	char *body;
	size_t len;
	bool refused;       /* a 413 is queued */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* --- Responses. ------------------------------------------------------------ */

enum cache { CACHE_NONE, CACHE_REVALIDATE };

/* Sends status with body (copied) and the headers every answer carries:
 * a policy that lets the page run only its own scripts and be framed by
 * no one, no MIME sniffing, no referrer; API answers are never cached. */
static enum MHD_Result send_response(struct MHD_Connection *conn, unsigned status,
		const char *type, const void *body, size_t len, enum cache cache, const char *cookie,
		bool basic_auth_challenge)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body,
		MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ok;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, "Content-Security-Policy",
		"default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
		cache == CACHE_NONE ? "no-store" : "no-cache");
	if (cookie != NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_SET_COOKIE, cookie);
	if (status == MHD_HTTP_TOO_MANY_REQUESTS)
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "60");
	if (basic_auth_challenge)
		ok = MHD_queue_basic_auth_fail_response(conn, REALM, r);
	else
		ok = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ok;
}

/* Sends o as JSON (ownership passes; NULL: out of memory, a 500). */
static enum MHD_Result send_json_cookie(struct MHD_Connection *conn, unsigned status, cJSON *o,
		const char *cookie)
{
	char *text = o != NULL ? cJSON_PrintUnformatted(o) : NULL;
	enum MHD_Result ok;

	cJSON_Delete(o);
	if (text == NULL) {
		static const char oom[] = "{\"error\":\"out of memory\"}";

		return send_response(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json", oom,
			sizeof(oom) - 1, CACHE_NONE, NULL, false);
	}
	ok = send_response(conn, status, "application/json", text, strlen(text), CACHE_NONE,
		cookie, false);
	free(text);
	return ok;
}

static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status, cJSON *o)
{
	return send_json_cookie(conn, status, o, NULL);
}

/* {"error": what}, with status. */
static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned status, const char *what)
{
	cJSON *o = cJSON_CreateObject();

	if (o != NULL && cJSON_AddStringToObject(o, "error", what) == NULL) {
		cJSON_Delete(o);
		o = NULL;
	}
	return send_json(conn, status, o);
}

/* The cookie that holds session id (NULL: the one that clears it). */
static void session_cookie(const struct tf_console *c, const char *id, char *out, size_t len)
{
	if (id != NULL)
		snprintf(out, len, COOKIE "=%s; HttpOnly; SameSite=Strict; Path=/%s", id,
			c->tls ? "; Secure" : "");
	else
		snprintf(out, len, COOKIE "=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0%s",
			c->tls ? "; Secure" : "");
}

/* --- Sessions of a request. ------------------------------------------------ */

/* The live session the request's cookie names, with a reference; NULL
 * when none (a session whose broker connection dropped ends here). */
static struct tf_console_session *session_of(struct tf_console *c, struct MHD_Connection *conn)
{
	const char *id = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, COOKIE);
	struct tf_console_session *s = tf_console_sessions_find(c->sessions, id, false, now_ms());

	if (s != NULL && !tf_console_link_alive(tf_console_session_link(s))) {
		tf_console_sessions_end(c->sessions, s);
		tf_console_sessions_release(c->sessions, s);
		return NULL;
	}
	return s;
}

static enum MHD_Result send_signed_out(struct MHD_Connection *conn)
{
	return send_error(conn, MHD_HTTP_UNAUTHORIZED, "not signed in (or the session ended)");
}

/* What a failed broker connection answers: nothing that tells which of
 * the user name and password was wrong. */
static enum MHD_Result send_link_error(struct tf_console *c, struct MHD_Connection *conn,
		enum tf_console_link_rc rc, bool basic)
{
	switch (rc) {
	case TF_LINK_DENIED:
		tf_console_throttle_failed(&c->throttle, now_ms());
		sleep_ms(c->cfg.failure_delay_ms);
		if (basic) {
			static const char text[] = "wrong user name or password\n";

			return send_response(conn, MHD_HTTP_UNAUTHORIZED, "text/plain; charset=utf-8",
				text, sizeof(text) - 1, CACHE_NONE, NULL, true);
		}
		return send_error(conn, MHD_HTTP_UNAUTHORIZED, "wrong user name or password");
	case TF_LINK_NOT_OPERATOR:
		return send_error(conn, MHD_HTTP_FORBIDDEN, "this user may not use the console: it "
			"needs the role trustflow-admin or data-steward");
	case TF_LINK_NOMEM:
		return send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	default:
		return send_error(conn, MHD_HTTP_BAD_GATEWAY, "the broker cannot be reached");
	}
}

/* --- Sign-in and sign-out. ------------------------------------------------- */

static bool is_json(struct MHD_Connection *conn)
{
	const char *type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		MHD_HTTP_HEADER_CONTENT_TYPE);
	size_t n = strlen("application/json");

	return type != NULL && strncasecmp(type, "application/json", n) == 0
		&& (type[n] == '\0' || type[n] == ';' || type[n] == ' ');
}

/* The request's JSON object body; NULL when it is none (an answer is sent). */
static cJSON *json_body(struct MHD_Connection *conn, const struct request *r,
		enum MHD_Result *sent)
{
	cJSON *o;

	if (!is_json(conn)) {
		*sent = send_error(conn, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
			"the body must be JSON (Content-Type: application/json)");
		return NULL;
	}
	o = cJSON_ParseWithLength(r->body != NULL ? r->body : "", r->len);
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		*sent = send_error(conn, MHD_HTTP_BAD_REQUEST, "the body is not a JSON object");
		return NULL;
	}
	return o;
}

static const char *string_member(const cJSON *o, const char *name, size_t max)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	if (!cJSON_IsString(v) || v->valuestring[0] == '\0' || strlen(v->valuestring) > max)
		return NULL;
	return v->valuestring;
}

static enum MHD_Result do_login(struct tf_console *c, struct MHD_Connection *conn,
		struct request *r)
{
	enum MHD_Result sent = MHD_NO;
	cJSON *body = json_body(conn, r, &sent), *password_item, *answer;
	struct tf_console_session *s, *old;
	struct tf_console_link *link;
	enum tf_console_link_rc rc;
	const char *username;
	char *password, cookie[160];

	if (body == NULL)
		return sent;
	username = string_member(body, "username", 256);
	password_item = cJSON_GetObjectItemCaseSensitive(body, "password");
	if (username == NULL || !cJSON_IsString(password_item)
			|| strlen(password_item->valuestring) > 1024) {
		if (cJSON_IsString(password_item))
			OPENSSL_cleanse(password_item->valuestring, strlen(password_item->valuestring));
		cJSON_Delete(body);
		return send_error(conn, MHD_HTTP_BAD_REQUEST,
			"a JSON object with \"username\" and \"password\" is required");
	}
	if (!tf_console_throttle_allows(&c->throttle, now_ms())) {
		OPENSSL_cleanse(password_item->valuestring, strlen(password_item->valuestring));
		cJSON_Delete(body);
		return send_error(conn, MHD_HTTP_TOO_MANY_REQUESTS,
			"too many failed sign-ins: try again in a minute");
	}
	/* The password goes to the broker and is wiped (the link wipes it). */
	password = password_item->valuestring;
	rc = tf_console_link_open(&c->cfg.broker, username, password, &link);
	if (rc != TF_LINK_OK) {
		cJSON_Delete(body);
		return send_link_error(c, conn, rc, false);
	}
	switch (tf_console_sessions_add(c->sessions, username, NULL, link, now_ms(), &s)) {
	case TF_CONSOLE_SESSIONS_OK:
		break;
	case TF_CONSOLE_SESSIONS_FULL:
		tf_console_link_close(link);
		cJSON_Delete(body);
		return send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
			"too many people are signed in: try again later");
	default:
		tf_console_link_close(link);
		cJSON_Delete(body);
		return send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	}
	cJSON_Delete(body);
	/* A sign-in always starts a new session: the old one (if any) ends,
	 * so that no id set before the sign-in survives it. */
	old = session_of(c, conn);
	if (old != NULL) {
		tf_console_sessions_end(c->sessions, old);
		tf_console_sessions_release(c->sessions, old);
	}
	session_cookie(c, tf_console_session_id(s), cookie, sizeof(cookie));
	answer = cJSON_CreateObject();
	if (answer != NULL && (!cJSON_AddStringToObject(answer, "user", tf_console_session_user(s))
			|| !cJSON_AddStringToObject(answer, "csrf", tf_console_session_csrf(s)))) {
		cJSON_Delete(answer);
		answer = NULL;
	}
	tf_console_sessions_release(c->sessions, s);
	sent = send_json_cookie(conn, MHD_HTTP_OK, answer, cookie);
	OPENSSL_cleanse(cookie, sizeof(cookie));
	return sent;
}

static enum MHD_Result do_logout(struct tf_console *c, struct MHD_Connection *conn,
		struct tf_console_session *s)
{
	char cookie[160];

	tf_console_sessions_end(c->sessions, s);
	session_cookie(c, NULL, cookie, sizeof(cookie));
	return send_json_cookie(conn, MHD_HTTP_OK, cJSON_CreateObject(), cookie);
}

/* GET /api/session: who is signed in and the session's CSRF token, so
 * that a page loaded again goes on without a new sign-in. The browser
 * shows the answer to pages of this origin only. */
static enum MHD_Result do_session(struct MHD_Connection *conn, struct tf_console_session *s)
{
	cJSON *o = cJSON_CreateObject();

	if (o != NULL && (!cJSON_AddStringToObject(o, "user", tf_console_session_user(s))
			|| !cJSON_AddStringToObject(o, "csrf", tf_console_session_csrf(s)))) {
		cJSON_Delete(o);
		o = NULL;
	}
	return send_json(conn, MHD_HTTP_OK, o);
}

/* --- The control API through the session's link. -------------------------- */

/* The HTTP status of a control-API error. */
static unsigned error_status(const char *error)
{
	if (strcmp(error, "not authorized") == 0)
		return MHD_HTTP_FORBIDDEN;
	if (strncmp(error, "no such", 7) == 0)
		return MHD_HTTP_NOT_FOUND;
	if (strncmp(error, "unknown command", 15) == 0)
		return MHD_HTTP_NOT_IMPLEMENTED;
	return MHD_HTTP_UNPROCESSABLE_CONTENT;
}

/* Asks one command (ownership passes) and sends its data, or its error,
 * or why there was no answer. */
static enum MHD_Result ask_and_send(struct MHD_Connection *conn, struct tf_console_session *s,
		cJSON *command)
{
	enum tf_console_link_rc rc;
	cJSON *response, *data;
	const cJSON *error;
	enum MHD_Result sent;

	if (command == NULL)
		return send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	response = tf_console_link_ask(tf_console_session_link(s), command, &rc);
	if (response == NULL)
		return send_error(conn, rc == TF_LINK_NOMEM ? MHD_HTTP_INTERNAL_SERVER_ERROR
			: MHD_HTTP_GATEWAY_TIMEOUT, rc == TF_LINK_NOMEM ? "out of memory"
			: "the broker did not answer");
	error = cJSON_GetObjectItemCaseSensitive(response, "error");
	data = cJSON_DetachItemFromObjectCaseSensitive(response, "data");
	if (data != NULL)
		sent = send_json(conn, MHD_HTTP_OK, data);
	else
		sent = send_error(conn, cJSON_IsString(error) ? error_status(error->valuestring)
			: MHD_HTTP_BAD_GATEWAY, cJSON_IsString(error) ? error->valuestring
			: "the broker's answer has no data");
	cJSON_Delete(response);
	return sent;
}

/* {"command": name, key: value} with value a string; NULL when out of memory. */
static cJSON *command_with(const char *name, const char *key, const char *value)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL || !cJSON_AddStringToObject(o, "command", name)
			|| (key != NULL && !cJSON_AddStringToObject(o, key, value))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static const char *query(struct MHD_Connection *conn, const char *name)
{
	return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
}

/* GET /api/quarantine: every page of listQuarantine, as one list. */
static enum MHD_Result do_quarantine(struct MHD_Connection *conn, struct tf_console_session *s)
{
	cJSON *all = cJSON_CreateObject(), *flows = cJSON_AddArrayToObject(all, "flows");
	double cursor = 0;

	if (flows == NULL) {
		cJSON_Delete(all);
		return send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	}
	for (int page = 0; page < QUARANTINE_PAGES; page++) {
		cJSON *command = command_with("listQuarantine", NULL, NULL), *response, *flow;
		const cJSON *data, *list, *next, *error;
		enum tf_console_link_rc rc;

		if (command == NULL || !cJSON_AddNumberToObject(command, "limit", 500)
				|| (cursor > 0 && !cJSON_AddNumberToObject(command, "cursor", cursor))) {
			cJSON_Delete(command);
			cJSON_Delete(all);
			return send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
		}
		response = tf_console_link_ask(tf_console_session_link(s), command, &rc);
		data = cJSON_GetObjectItemCaseSensitive(response, "data");
		list = cJSON_GetObjectItemCaseSensitive(data, "flows");
		next = cJSON_GetObjectItemCaseSensitive(data, "next");
		error = cJSON_GetObjectItemCaseSensitive(response, "error");
		if (!cJSON_IsArray(list)) {
			enum MHD_Result sent = response == NULL
				? send_error(conn, MHD_HTTP_GATEWAY_TIMEOUT, "the broker did not answer")
				: send_error(conn, cJSON_IsString(error) ? error_status(error->valuestring)
					: MHD_HTTP_BAD_GATEWAY, cJSON_IsString(error) ? error->valuestring
					: "the broker's answer has no flows");

			cJSON_Delete(response);
			cJSON_Delete(all);
			return sent;
		}
		while ((flow = cJSON_DetachItemFromArray((cJSON *)(uintptr_t)list, 0)) != NULL)
			cJSON_AddItemToArray(flows, flow);
		/* A cursor that does not go forward would ask for ever. */
		if (!cJSON_IsNumber(next) || next->valuedouble <= cursor) {
			cJSON_Delete(response);
			break;
		}
		cursor = next->valuedouble;
		cJSON_Delete(response);
	}
	return send_json(conn, MHD_HTTP_OK, all);
}

/* POST /api/release and /api/discard: {"flow", "override" (release only)}. */
static enum MHD_Result do_flow(struct MHD_Connection *conn, struct tf_console_session *s,
		const struct request *r, bool release)
{
	enum MHD_Result sent = MHD_NO;
	cJSON *body = json_body(conn, r, &sent), *command;
	const cJSON *override;
	const char *flow;

	if (body == NULL)
		return sent;
	flow = string_member(body, "flow", 1024);
	override = cJSON_GetObjectItemCaseSensitive(body, "override");
	if (flow == NULL || (override != NULL && !cJSON_IsBool(override))) {
		cJSON_Delete(body);
		return send_error(conn, MHD_HTTP_BAD_REQUEST,
			"a JSON object with \"flow\" (and, to release, \"override\": true or false) "
			"is required");
	}
	command = command_with(release ? "releaseFlow" : "discardFlow", "flow", flow);
	if (command != NULL && release && cJSON_IsTrue(override)
			&& !cJSON_AddTrueToObject(command, "override")) {
		cJSON_Delete(command);
		command = NULL;
	}
	cJSON_Delete(body);
	return ask_and_send(conn, s, command);
}

/* GET /api/message?id=ID: getMessage. */
static enum MHD_Result do_message(struct MHD_Connection *conn, struct tf_console_session *s)
{
	const char *id = query(conn, "id");

	if (id == NULL || id[0] == '\0' || strlen(id) > 64)
		return send_error(conn, MHD_HTTP_BAD_REQUEST, "?id= names a message (its tf-id)");
	return ask_and_send(conn, s, command_with("getMessage", "id", id));
}

/* GET /api/impact?alert=ID[&window=S]: impactReport. */
static enum MHD_Result do_impact(struct MHD_Connection *conn, struct tf_console_session *s)
{
	const char *alert = query(conn, "alert"), *window = query(conn, "window");
	long window_s = 3600;
	cJSON *command;

	if (alert == NULL || alert[0] == '\0' || strlen(alert) > 64)
		return send_error(conn, MHD_HTTP_BAD_REQUEST, "?alert= names an alert (its id)");
	if (window != NULL && !tf_parse_long(window, 1, 366L * 86400, &window_s))
		return send_error(conn, MHD_HTTP_BAD_REQUEST,
			"?window= is a number of seconds, 1 to 31622400");
	command = command_with("impactReport", "alert", alert);
	if (command != NULL && !cJSON_AddNumberToObject(command, "window", (double)window_s)) {
		cJSON_Delete(command);
		command = NULL;
	}
	return ask_and_send(conn, s, command);
}

/* GET /api/state[?since=N]: the latest metrics the user may read, and the
 * alerts after position N (the "alerts_next" of the previous answer). */
static enum MHD_Result do_state(struct MHD_Connection *conn, struct tf_console_session *s)
{
	struct tf_console_link *link = tf_console_session_link(s);
	const char *since_text = query(conn, "since");
	cJSON *o = cJSON_CreateObject(), *metrics, *policies, *alerts, *m;
	long since = 0;
	uint64_t next;

	if (since_text != NULL && !tf_parse_long(since_text, 0, 9007199254740991L, &since)) {
		cJSON_Delete(o);
		return send_error(conn, MHD_HTTP_BAD_REQUEST, "?since= is a whole number");
	}
	metrics = tf_console_link_metrics(link);
	alerts = tf_console_link_alerts(link, (uint64_t)since, &next);
	policies = cJSON_CreateArray();
	if (o == NULL || metrics == NULL || alerts == NULL || policies == NULL
			|| !cJSON_AddStringToObject(o, "user", tf_console_session_user(s))) {
		cJSON_Delete(metrics);
		cJSON_Delete(alerts);
		cJSON_Delete(policies);
		cJSON_Delete(o);
		return send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	}
	/* The broker's own metrics come first when this user may read them. */
	m = cJSON_GetArrayItem(metrics, 0);
	if (m != NULL && cJSON_GetObjectItemCaseSensitive(m, "policy") == NULL)
		cJSON_AddItemToObject(o, "broker", cJSON_DetachItemFromArray(metrics, 0));
	else
		cJSON_AddNullToObject(o, "broker");
	while ((m = cJSON_DetachItemFromArray(metrics, 0)) != NULL)
		cJSON_AddItemToArray(policies, m);
	cJSON_Delete(metrics);
	cJSON_AddItemToObject(o, "policies", policies);
	cJSON_AddItemToObject(o, "alerts", alerts);
	cJSON_AddNumberToObject(o, "alerts_next", (double)next);
	return send_json(conn, MHD_HTTP_OK, o);
}

/* --- /metrics. ------------------------------------------------------------- */

static enum MHD_Result send_metrics(struct MHD_Connection *conn, struct tf_console_link *link)
{
	cJSON *list = tf_console_link_metrics(link);
	char *text = list != NULL ? tf_prometheus_render(list) : NULL;
	enum MHD_Result sent;

	cJSON_Delete(list);
	if (text == NULL)
		return send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	sent = send_response(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text,
		strlen(text), CACHE_NONE, NULL, false);
	free(text);
	return sent;
}

/* The scrape session's key: HMAC-SHA-256, under the console's own random
 * key, of the user name, a NUL and the password, in hex. */
static bool scrape_key(const struct tf_console *c, const char *user, const char *password,
		char *hex)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	size_t ulen = strlen(user), plen = strlen(password);
	unsigned char *msg = malloc(ulen + plen + 1);

	if (msg == NULL)
		return false;
	memcpy(msg, user, ulen + 1);
	memcpy(msg + ulen + 1, password, plen);
	if (HMAC(EVP_sha256(), c->scrape_key, sizeof(c->scrape_key), msg, ulen + plen + 1, mac,
			&mac_len) == NULL || mac_len != 32) {
		OPENSSL_cleanse(msg, ulen + plen + 1);
		free(msg);
		return false;
	}
	OPENSSL_cleanse(msg, ulen + plen + 1);
	free(msg);
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	return true;
}

/* GET /metrics: for a signed-in session (its cookie), or for HTTP Basic
 * credentials, which get a scrape session of their own so that each
 * scrape does not connect again. */
static enum MHD_Result do_metrics(struct tf_console *c, struct MHD_Connection *conn)
{
	struct tf_console_session *s = session_of(c, conn);
	char *password = NULL, *user, key[TF_CONSOLE_TOKEN_HEX + 1];
	struct tf_console_link *link;
	enum tf_console_link_rc rc;
	enum MHD_Result sent;

	if (s != NULL) {
		sent = send_metrics(conn, tf_console_session_link(s));
		tf_console_sessions_release(c->sessions, s);
		return sent;
	}
	user = MHD_basic_auth_get_username_password(conn, &password);
	if (user == NULL || password == NULL || user[0] == '\0') {
		static const char text[] = "sign in: HTTP Basic with a broker user name and "
			"password, or the console's session\n";

		if (password != NULL) {
			OPENSSL_cleanse(password, strlen(password));
			MHD_free(password);
		}
		MHD_free(user);
		return send_response(conn, MHD_HTTP_UNAUTHORIZED, "text/plain; charset=utf-8", text,
			sizeof(text) - 1, CACHE_NONE, NULL, true);
	}
	if (!scrape_key(c, user, password, key)) {
		OPENSSL_cleanse(password, strlen(password));
		MHD_free(password);
		MHD_free(user);
		return send_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
	}
	s = tf_console_sessions_find(c->scrapers, key, true, now_ms());
	if (s != NULL && !tf_console_link_alive(tf_console_session_link(s))) {
		tf_console_sessions_end(c->scrapers, s);
		tf_console_sessions_release(c->scrapers, s);
		s = NULL;
	}
	if (s == NULL) {
		if (!tf_console_throttle_allows(&c->throttle, now_ms())) {
			OPENSSL_cleanse(password, strlen(password));
			MHD_free(password);
			MHD_free(user);
			return send_error(conn, MHD_HTTP_TOO_MANY_REQUESTS,
				"too many failed sign-ins: try again in a minute");
		}
		rc = tf_console_link_open(&c->cfg.broker, user, password, &link);
		if (rc != TF_LINK_OK) {
			MHD_free(password);
			MHD_free(user);
			return send_link_error(c, conn, rc, true);
		}
		if (tf_console_sessions_add(c->scrapers, user, key, link, now_ms(), &s)
				!= TF_CONSOLE_SESSIONS_OK) {
			/* Full: this scrape is answered, its link not kept. */
			sent = send_metrics(conn, link);
			tf_console_link_close(link);
			MHD_free(password);
			MHD_free(user);
			return sent;
		}
	}
	OPENSSL_cleanse(password, strlen(password));
	MHD_free(password);
	MHD_free(user);
	OPENSSL_cleanse(key, sizeof(key));
	sent = send_metrics(conn, tf_console_session_link(s));
	tf_console_sessions_release(c->scrapers, s);
	return sent;
}

/* --- Routing. -------------------------------------------------------------- */

static enum MHD_Result send_asset(struct MHD_Connection *conn, const char *name)
{
	const struct tf_console_asset *a = tf_console_asset_find(name);

	if (a == NULL)
		return send_error(conn, MHD_HTTP_NOT_FOUND, "no such page");
	return send_response(conn, MHD_HTTP_OK, tf_console_asset_type(name), a->data, a->len,
		CACHE_REVALIDATE, NULL, false);
}

struct route {
	const char *path;
	bool post;           /* POST (an action: CSRF token required); else GET */
	enum { R_LOGIN, R_LOGOUT, R_SESSION, R_STATE, R_QUARANTINE, R_RELEASE, R_DISCARD,
		R_MESSAGE, R_IMPACT, R_METRICS } what;
};

static const struct route routes[] = {
	{ "/api/login", true, R_LOGIN },
	{ "/api/logout", true, R_LOGOUT },
	{ "/api/session", false, R_SESSION },
	{ "/api/state", false, R_STATE },
	{ "/api/quarantine", false, R_QUARANTINE },
	{ "/api/release", true, R_RELEASE },
	{ "/api/discard", true, R_DISCARD },
	{ "/api/message", false, R_MESSAGE },
	{ "/api/impact", false, R_IMPACT },
	{ "/metrics", false, R_METRICS },
};

static enum MHD_Result route(struct tf_console *c, struct MHD_Connection *conn, const char *url,
		const char *method, struct request *r)
{
	bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	bool post = strcmp(method, "POST") == 0;
	const struct route *rt = NULL;
	struct tf_console_session *s;
	enum MHD_Result sent;

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(url, routes[i].path) == 0)
			rt = &routes[i];
	if (rt == NULL) {
		if (!get)
			return send_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET here");
		if (strcmp(url, "/") == 0)
			return send_asset(conn, "index.html");
		/* Only the assets' own names: no paths, nothing of the disk. */
		if (url[0] == '/' && strchr(url + 1, '/') == NULL)
			return send_asset(conn, url + 1);
		return send_error(conn, MHD_HTTP_NOT_FOUND, "no such page");
	}
	if (rt->post ? !post : !get)
		return send_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
			rt->post ? "only POST here" : "only GET here");
	if (rt->what == R_LOGIN)
		return do_login(c, conn, r);
	if (rt->what == R_METRICS)
		return do_metrics(c, conn);
	s = session_of(c, conn);
	if (s == NULL)
		return send_signed_out(conn);
	/* Every action carries the token only the page of this session knows;
	 * a request another site makes the browser send does not. */
	if (rt->post && !tf_console_session_csrf_ok(s, MHD_lookup_connection_value(conn,
			MHD_HEADER_KIND, CSRF_HEADER))) {
		tf_console_sessions_release(c->sessions, s);
		return send_error(conn, MHD_HTTP_FORBIDDEN, "missing or wrong CSRF token");
	}
	switch (rt->what) {
	case R_LOGOUT: sent = do_logout(c, conn, s); break;
	case R_SESSION: sent = do_session(conn, s); break;
	case R_STATE: sent = do_state(conn, s); break;
	case R_QUARANTINE: sent = do_quarantine(conn, s); break;
	case R_RELEASE: sent = do_flow(conn, s, r, true); break;
	case R_DISCARD: sent = do_flow(conn, s, r, false); break;
	case R_MESSAGE: sent = do_message(conn, s); break;
	case R_IMPACT: sent = do_impact(conn, s); break;
	default: sent = send_error(conn, MHD_HTTP_NOT_FOUND, "no such page"); break;
	}
	tf_console_sessions_release(c->sessions, s);
	return sent;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
		const char *method, const char *version, const char *upload_data,
		size_t *upload_data_size, void **con_cls)
{
	struct tf_console *c = cls;
	struct request *r = *con_cls;

	(void)version;
	if (r == NULL) {
		const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
			MHD_HTTP_HEADER_CONTENT_LENGTH);
		long n;

		r = calloc(1, sizeof(*r));
		if (r == NULL)
			return MHD_NO;
		*con_cls = r;
		/* Refused before it is read when it says it is too large. */
		if (length != NULL && (!tf_parse_long(length, 0, MAX_BODY, &n))) {
			r->refused = true;
			return send_error(conn, MHD_HTTP_CONTENT_TOO_LARGE,
				"the request body is larger than 64 KiB");
		}
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (r->refused)
			return MHD_YES;
		/* A body without a length that grows too large: the connection
		 * is closed. */
		if (r->len + n > MAX_BODY)
			return MHD_NO;
		if (r->body == NULL && (r->body = malloc(MAX_BODY)) == NULL)
			return MHD_NO;
		memcpy(r->body + r->len, upload_data, n);
		r->len += n;
		return MHD_YES;
	}
	if (r->refused)
		return MHD_YES;
	return route(c, conn, url, method, r);
}

/* The request's body may hold a password: wiped before it is freed. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		enum MHD_RequestTerminationCode toe)
{
	struct request *r = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (r == NULL)
		return;
	if (r->body != NULL) {
		OPENSSL_cleanse(r->body, MAX_BODY);
		free(r->body);
	}
	free(r);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	fputs("tfctl console: ", stderr);
	vfprintf(stderr, fmt, ap);
}

/* --- Life cycle. ----------------------------------------------------------- */

static void destroy_link(void *link)
{
	tf_console_link_close(link);
}

int tf_console_port(const struct tf_console *c)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(c->daemon,
		MHD_DAEMON_INFO_BIND_PORT);

	return info != NULL ? (int)info->port : c->cfg.http_port;
}

void tf_console_sweep(struct tf_console *c)
{
	tf_console_sessions_expire(c->sessions, now_ms());
	tf_console_sessions_expire(c->scrapers, now_ms());
}

void tf_console_stop(struct tf_console *c)
{
	if (c == NULL)
		return;
	if (c->daemon != NULL)
		MHD_stop_daemon(c->daemon);
	tf_console_sessions_free(c->sessions);
	tf_console_sessions_free(c->scrapers);
	if (c->throttle_ready)
		tf_console_throttle_destroy(&c->throttle);
	OPENSSL_cleanse(c->scrape_key, sizeof(c->scrape_key));
	free(c->listen);
	free(c->cafile);
	free(c->host);
	free(c);
}

struct tf_console *tf_console_start(const struct tf_console_config *cfg, char *err,
		size_t errlen)
{
	struct tf_console *c = calloc(1, sizeof(*c));
	struct addrinfo hints = { .ai_flags = AI_PASSIVE, .ai_socktype = SOCK_STREAM }, *ai = NULL;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION
		| MHD_USE_ERROR_LOG;
	struct MHD_OptionItem tls_options[3];
	char port[16];
	int gai;

	if (c == NULL || (c->listen = strdup(cfg->listen ? cfg->listen : "127.0.0.1")) == NULL
			|| (c->host = strdup(cfg->broker.host)) == NULL
			|| (cfg->broker.cafile != NULL && (c->cafile = strdup(cfg->broker.cafile)) == NULL)
			|| !(c->throttle_ready = tf_console_throttle_init(&c->throttle,
				cfg->max_failures, 60 * 1000))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	c->cfg = *cfg;
	c->cfg.listen = c->listen;
	c->cfg.broker.host = c->host;
	c->cfg.broker.cafile = c->cafile;
	c->cfg.tls_cert_pem = c->cfg.tls_key_pem = NULL;
	c->tls = cfg->tls_cert_pem != NULL;
	c->sessions = tf_console_sessions_new(cfg->max_sessions, cfg->idle_ms, destroy_link);
	c->scrapers = tf_console_sessions_new(cfg->max_scrapers, SCRAPE_IDLE_MS, destroy_link);
	if (c->sessions == NULL || c->scrapers == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (RAND_bytes(c->scrape_key, (int)sizeof(c->scrape_key)) != 1) {
		snprintf(err, errlen, "no random bytes");
		goto fail;
	}
	snprintf(port, sizeof(port), "%d", cfg->http_port);
	gai = getaddrinfo(c->listen, port, &hints, &ai);
	if (gai != 0 || ai == NULL) {
		snprintf(err, errlen, "cannot listen on %s: %s", c->listen,
			gai != 0 ? gai_strerror(gai) : "no address");
		goto fail;
	}
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (c->tls)
		flags |= MHD_USE_TLS;
	/* The certificate and key only when serving TLS: an empty list else. */
	tls_options[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0,
		(void *)(uintptr_t)cfg->tls_cert_pem };
	tls_options[1] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0,
		(void *)(uintptr_t)cfg->tls_key_pem };
	tls_options[2] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	c->daemon = MHD_start_daemon(flags, (uint16_t)cfg->http_port, NULL, NULL, on_request, c,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, c,
		MHD_OPTION_SOCK_ADDR, ai->ai_addr,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)128,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)64,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, c,
		MHD_OPTION_ARRAY, c->tls ? tls_options : tls_options + 2,
		MHD_OPTION_END);
	freeaddrinfo(ai);
	if (c->daemon == NULL) {
		snprintf(err, errlen, "cannot serve on %s port %d (taken, or a bad TLS certificate "
			"or key)", c->listen, cfg->http_port);
		goto fail;
	}
	return c;
fail:
	tf_console_stop(c);
	return NULL;
}
