#include "broker/engine/engine.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "broker/engine/accepted.h"
#include "broker/guard/alerts.h"
#include "broker/tracking/clientids.h"
#include "broker/tracking/copytrack.h"
#include "broker/util/dirlist.h"
#include "broker/util/growable.h"
#include "broker/engine/engine_internal.h"
#include "broker/engine/metrics.h"
#include "broker/guard/guard.h"
#include "broker/tracking/msgtrack.h"
#include "broker/tracking/qos2track.h"
#include "broker/tracking/queued.h"
#include "broker/guard/quarantine.h"
#include "broker/guard/ratelimit.h"
#include "broker/stamp/signer_pool.h"
#include "broker/tracking/retained.h"
#include "broker/trace/trace_writer.h"
#include "policy/rollback.h"
#include "policy/set.h"

/* A reload running on a thread of its own (tf_engine_reload_in_background). */
struct engine_reload {
	pthread_t thread;
	pthread_mutex_t lock;     /* over done and the result */
	bool loading;             /* a loader thread runs (or awaits its join) */
	bool again;               /* another reload was asked for meanwhile */
	bool done;
	bool overtaken;           /* a reload in place came since it began */
	int rc;
	struct tf_policy_set *fresh;
	struct tf_rollback *rollback;   /* the loader's copy of the versions accepted */
	char *digest;             /* of the files it read */
	struct tf_err err;
	char refused_id[TF_ID_MAX_LEN + 1];   /* the policy refused, if one was */
	struct tf_err keep_err;   /* why the set could not be kept ("": kept) */
};

/* The engine's state: what its parts share (ctx), and what only engine.c
 * uses. */
struct tf_engine {
	struct engine_ctx ctx;
	struct engine_reload reload;
	struct tf_policy_set_options load;  /* what to load on reload */
	struct tf_rollback *rollback;       /* the versions accepted (load.rollback) */
	char refused_id[TF_ID_MAX_LEN + 1]; /* load.refused_id */
	char *identities, *policy_dir;      /* owned copies behind load */
	char *peer_policy_dir;              /* owned, behind load and ctx; NULL: none */
	char *trace_dir;                    /* the trace store's; NULL: none */
	struct tf_msgtrack *track;
	struct tf_qos2track *qos2;          /* QoS 2 messages not yet released */
	uint32_t max_inflight;              /* mosquitto's max_inflight_messages; 0: unlimited */
	uint64_t qos2_forgotten_told;       /* tf_qos2track_forgotten when last logged */
	int64_t qos2_told_ms;               /* when that was */
	struct tf_clientids *clientids;     /* which identity holds each client id */
	struct tf_queued *queued;           /* messages queued for offline sessions */
	/* The client id whose connection mosquitto is accepting: until any
	 * other event, each ACL READ for it is mosquitto checking again what
	 * its session holds (queued, or sent and not acknowledged). NULL:
	 * none. */
	char *accepting;
	struct tf_copytrack *copies;        /* view copies made lately, and their version */
	struct tf_ratelimit *rates;
	struct tf_keyring *earlier_keys;    /* from key_dir */
	bool stamp_all;
	uint32_t metrics_interval_s;        /* 0: no metrics are published */
	int64_t metrics_due;                /* when the next round starts */
	bool metrics_round;                 /* a round of policies' copies goes on */
	uint32_t stale_metrics;             /* the policies whose stale copies are cleared */
	bool stale_cleared;                 /* all of them */
};

/* Retention entries visited per tick. */
#define SWEEP_BUDGET 256
/* How long a message's id is kept for tracing its deliveries. mosquitto
 * delivers most messages at once; the rare later delivery (an offline
 * queue, a retained copy) is traced by the message's topic and payload
 * hash instead. */
#define TRACE_ID_KEEP_MS 60000

static int64_t real_now_ms(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void no_log(void *ctx, enum tf_log_level level, const char *text)
{
	(void)ctx;
	(void)level;
	(void)text;
}

/* At stop: how full the pool was, and how often it was found empty. */
static void log_signing_at_stop(struct tf_engine *e)
{
	struct tf_signer_stats st;

	if (e->ctx.signer == NULL)
		return;
	tf_signer_stats(e->ctx.signer, &st);
	if (!st.pool)
		return;
	engine_log(&e->ctx, TF_LOG_NOTICE, "trustflow: signing pool at %u of %u nonces; %llu "
		"signatures from the pool, %llu the ordinary way because it was empty", st.level,
		st.size, (unsigned long long)st.pool_signatures, (unsigned long long)st.fallbacks);
}

void tf_engine_free(struct tf_engine *e)
{
	if (e == NULL)
		return;
	if (e->reload.loading) {
		pthread_join(e->reload.thread, NULL);
		tf_policy_set_free(e->reload.fresh);
		tf_rollback_free(e->reload.rollback);
		free(e->reload.digest);
	}
	pthread_mutex_destroy(&e->reload.lock);
	/* The writer signs its last checkpoint with the signer: stopped first. */
	tf_trace_writer_stop(e->ctx.trace);
	log_signing_at_stop(e);
	tf_policy_set_free(e->ctx.set);
	tf_rollback_free(e->rollback);
	tf_msgtrack_free(e->track);
	tf_qos2track_free(e->qos2);
	tf_clientids_free(e->clientids);
	tf_queued_free(e->queued);
	free(e->accepting);
	tf_copytrack_free(e->copies);
	tf_alerts_free(e->ctx.alerts);
	tf_quarantine_free(e->ctx.quarantine);
	tf_guard_free(e->ctx.guard);
	tf_ratelimit_free(e->rates);
	tf_retained_free(e->ctx.retained);
	tf_signer_free(e->ctx.signer);
	tf_keyring_free(e->earlier_keys);
	tf_metrics_free(e->ctx.metrics);
	free(e->ctx.broker_id);
	free(e->identities);
	free(e->policy_dir);
	free(e->trace_dir);
	free(e->peer_policy_dir);
	free(e);
}

static void log_loaded(struct tf_engine *e)
{
	engine_log(&e->ctx, TF_LOG_NOTICE, "trustflow: %u policies, %u organizations, %u clients "
		"loaded (default_access %s)", e->ctx.set->n_policies,
		tf_identities_org_count(e->ctx.set->ids), tf_identities_client_count(e->ctx.set->ids),
		e->load.default_allow ? "allow" : "deny");
}

/* Loads the signing key, or creates it when it does not exist and
 * dev_key_autogen allows. */
static int load_signer(struct tf_engine *e, const struct tf_options *opts, struct tf_err *err)
{
	int rc;

	if (access(opts->signing_key, F_OK) != 0 && errno == ENOENT
			&& strcmp(opts->dev_key_autogen, "true") == 0) {
		rc = tf_signer_generate(opts->signing_key, &e->ctx.signer, err);
		if (rc == TF_OK)
			engine_log(&e->ctx, TF_LOG_WARNING, "trustflow: created the development signing key %s "
				"(kid %s); use a key of your own in production",
				opts->signing_key, tf_signer_kid(e->ctx.signer));
		return rc;
	}
	rc = tf_signer_load(opts->signing_key, &e->ctx.signer, err);
	if (rc == TF_ERR_IO) {
		char why[sizeof(err->msg)];

		memcpy(why, err->msg, sizeof(why));
		return tf_err_set(err, rc, "%s (create one with `tfctl key generate --out %s`, "
			"or set plugin_opt_dev_key_autogen true for a demo)", why, opts->signing_key);
	}
	return rc;
}

/* signing_workers: a number, or auto: the cores minus one (the broker's
 * thread keeps one), at least one. */
static unsigned signing_workers(const char *option)
{
	long cores;

	if (strcmp(option, "auto") != 0)
		return (unsigned)engine_option_number(option);
	cores = sysconf(_SC_NPROCESSORS_ONLN);
	if (cores <= 1)
		return 1;
	return cores - 1 > TF_POOL_MAX_WORKERS ? TF_POOL_MAX_WORKERS : (unsigned)(cores - 1);
}

/* Starts the signer's pool (plugin_opt_signing pool, the default) and says
 * in the log how the broker signs. */
static int start_signing(struct tf_engine *e, const struct tf_options *opts, struct tf_err *err)
{
	struct tf_signer_stats st;
	int rc;

	if (strcmp(opts->signing, "pool") != 0) {
		engine_log(&e->ctx, TF_LOG_NOTICE, "trustflow: signing deterministically (RFC 8032) on "
			"the broker's thread");
		return TF_OK;
	}
	rc = tf_signer_use_pool(e->ctx.signer, signing_workers(opts->signing_workers),
		(uint32_t)engine_option_number(opts->signing_pool_size), err);
	if (rc != TF_OK)
		return rc;
	tf_signer_stats(e->ctx.signer, &st);
	engine_log(&e->ctx, TF_LOG_NOTICE, "trustflow: signing with a pool of %u precomputed nonces "
		"filled by %u worker thread%s%s", st.size, st.workers, st.workers == 1 ? "" : "s",
		st.locked ? "" : " (its memory could not be locked: it may be swapped out; "
		"raise the memlock limit)");
	return TF_OK;
}

/* The public keys of earlier signing keys (*.pem in key_dir), published so
 * that stamps they made still verify. */
static int load_earlier_keys(struct tf_engine *e, const char *dir, struct tf_err *err)
{
	char **names;
	uint32_t n;
	int rc;

	if (dir[0] == '\0')
		return TF_OK;
	rc = tf_dir_list(dir, ".pem", 1000, &names, &n, err);
	if (rc != TF_OK)
		return rc;
	for (uint32_t i = 0; rc == TF_OK && i < n; i++) {
		char path[4096];

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		rc = tf_keyring_add_file(e->earlier_keys, path, NULL, err);
	}
	tf_dir_list_free(names, n);
	return rc;
}

/* Keeps a durable client id binding in the trace store, so that it
 * holds across a restart as mosquitto's persistent sessions do. */
static void store_client_id(void *ctx, const char *client_id, const char *username, bool bound)
{
	struct tf_engine *e = ctx;
	struct tf_err err = { "" };

	if (tf_trace_put_client_id(tf_trace_writer_store(e->ctx.trace), client_id, bound, username,
			&err) != TF_OK)
		engine_log(&e->ctx, TF_LOG_WARNING, "trustflow: the binding of client id %.200s is kept in "
			"memory only (%s): after a restart its session is bound to whoever connects "
			"with it first", client_id, err.msg);
}

static void restore_client_id(void *ctx, const char *client_id, const char *username)
{
	struct tf_clientids *ids = ctx;

	/* Bound as a disconnected client's durable binding. */
	if (tf_clientids_bind(ids, client_id, username, NULL, true, true) == TF_CLIENTID_OK)
		tf_clientids_disconnected(ids, client_id, NULL);
}

/* The client id bindings of persistent sessions, from the trace store;
 * from now on kept there. Without a store they live in memory only. */
static int load_client_ids(struct tf_engine *e, struct tf_err *err)
{
	struct tf_trace_store *s;
	int rc;

	if (e->ctx.trace == NULL)
		return TF_OK;
	s = tf_trace_writer_store(e->ctx.trace);
	if ((rc = tf_trace_read_begin(s, err)) != TF_OK)
		return rc;
	tf_trace_scan_client_ids(s, restore_client_id, e->clientids);
	tf_trace_read_end(s);
	tf_clientids_set_notify(e->clientids, store_client_id, e);
	return TF_OK;
}

/* Keeps a copy of the set just put in force (broker/engine/accepted.h), for a
 * start whose files are refused. Needs the trace store's directory. */
static void keep_accepted(struct tf_engine *e)
{
	struct tf_err err = { "" };

	if (e->trace_dir != NULL
			&& tf_accepted_keep(e->trace_dir, e->identities, e->policy_dir, &err) != TF_OK)
		engine_log(&e->ctx, TF_LOG_WARNING, "trustflow: the policy set in force could not be kept "
			"for a later start (%s)", err.msg);
}

/* The directory where the owners' policies that peers hand over are kept:
 * beside the trace store, for it needs the store's rollback table. */
static int make_peer_policy_dir(struct tf_engine *e, struct tf_err *err)
{
	size_t len;

	if (e->trace_dir == NULL)
		return TF_OK;
	len = strlen(e->trace_dir) + sizeof("/peer-policies");
	if ((e->peer_policy_dir = malloc(len)) == NULL)
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory");
	snprintf(e->peer_policy_dir, len, "%s/peer-policies", e->trace_dir);
	if (mkdir(e->trace_dir, 0700) != 0 && errno != EEXIST)
		return tf_err_set(err, TF_ERR_IO, "%s: %s", e->trace_dir, strerror(errno));
	if (mkdir(e->peer_policy_dir, 0700) != 0 && errno != EEXIST)
		return tf_err_set(err, TF_ERR_IO, "%s: %s", e->peer_policy_dir, strerror(errno));
	e->load.peer_policy_dir = e->peer_policy_dir;
	e->ctx.peer_policy_dir = e->peer_policy_dir;
	return TF_OK;
}

/* A set refused because of a policy a peer handed over (its file in the
 * peer policy directory: it overlaps a local owner's topics, or is older
 * than a version accepted before) must not keep every later load from
 * succeeding, nor the broker from starting: the file is removed, with a
 * log line and an alert to the policy's owner. Returns whether it was. */
static bool drop_refused_peer_policy(struct tf_engine *e, const char *refused_id,
		const char *why)
{
	if (refused_id[0] == '\0' || !engine_remove_peer_policy(&e->ctx, refused_id))
		return false;
	engine_log(&e->ctx, TF_LOG_WARNING, "trustflow: policy %s, handed over by a peer, is "
		"refused here (%s); removed", refused_id, why);
	/* At start there is no set yet to address an alert by: the log says it. */
	if (e->ctx.set != NULL)
		engine_raise_alert(&e->ctx, "peer-policy-refused", refused_id, "", "", why, "drop");
	return true;
}

/* The policy set at start: the files the options name, or, when they are
 * refused and a copy of the last accepted set is kept in the trace
 * store's directory, that copy (refused then holds why the files were
 * refused; the caller says so loudly). With neither, the start is
 * refused. */
static int load_at_start(struct tf_engine *e, const struct tf_options *opts, char *refused,
		size_t cap, struct tf_err *err)
{
	char identities[4096], policy_dir[4096];
	struct tf_policy_set_options kept = e->load;
	struct tf_err kept_err = { "" };
	int rc = tf_policy_set_load(&e->load, &e->ctx.set, err);

	if (rc == TF_ERR_INVALID && drop_refused_peer_policy(e, e->refused_id, err->msg))
		rc = tf_policy_set_load(&e->load, &e->ctx.set, err);
	kept.refused_id = NULL;   /* refused_id says what was wrong with the files */

	if (rc == TF_OK || rc == TF_ERR_NOMEM || opts->trace_db[0] == '\0'
			|| !tf_accepted_find(opts->trace_db, identities, policy_dir, sizeof(identities)))
		return rc;
	kept.identities = identities;
	kept.policy_dir = policy_dir;
	if (tf_policy_set_load(&kept, &e->ctx.set, &kept_err) != TF_OK)
		return rc;   /* the files' error, which the operator can mend */
	snprintf(refused, cap, "%s", err->msg);
	return TF_OK;
}

/* The policy a refused load was about, as its alert names it: its label
 * in force ("id@version"), or its id when none is in force; "" for none. */
static const char *refused_label(const struct tf_engine *e, const char *refused_id)
{
	const struct tf_policy *p = refused_id[0] ? tf_policy_set_find(e->ctx.set, refused_id)
		: NULL;

	return p != NULL ? p->label : refused_id;
}

/* Says, in the log, the trace and an alert, that the broker started on
 * the last accepted set because the files were refused. */
static void report_start_on_accepted(struct tf_engine *e, const char *store_dir,
		const char *refused)
{
	char text[sizeof(((struct tf_err *)0)->msg) + 200];

	engine_log(&e->ctx, TF_LOG_ERR, "trustflow: the policy files are refused (%s); started on the "
		"last accepted set, kept in %s/accepted: mend the files and reload", refused,
		store_dir);
	snprintf(text, sizeof(text), "refused: %s", refused);
	engine_record_policy_set(&e->ctx, text, NULL);
	engine_record_policy_set(&e->ctx, "loaded: the last accepted set", NULL);
	snprintf(text, sizeof(text), "at start: %s; started on the last accepted set", refused);
	engine_raise_alert(&e->ctx, "reload-failed", refused_label(e, e->refused_id), "", "", text,
		"last accepted set");
}

int tf_engine_new(const struct tf_options *opts, const struct tf_engine_hooks *hooks,
		struct tf_engine **out, struct tf_err *err)
{
	struct tf_engine *e;
	char *digest, refused[sizeof(err->msg)] = "";
	int rc;

	*out = NULL;
	if (hooks->clear_retained == NULL)
		return tf_err_set(err, TF_ERR_INVALID, "the engine needs a clear_retained hook");
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory");
	e->ctx.hooks = *hooks;
	pthread_mutex_init(&e->reload.lock, NULL);
	if (e->ctx.hooks.log == NULL)
		e->ctx.hooks.log = no_log;
	if (e->ctx.hooks.now_ms == NULL)
		e->ctx.hooks.now_ms = real_now_ms;
	e->identities = strdup(opts->identities);
	if (opts->trace_db[0] != '\0' && (e->trace_dir = strdup(opts->trace_db)) == NULL) {
		tf_engine_free(e);
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory");
	}
	e->policy_dir = strdup(opts->policy_dir);
	e->track = tf_msgtrack_new();
	e->qos2 = tf_qos2track_new();
	e->clientids = tf_clientids_new();
	e->queued = tf_queued_new();
	e->copies = tf_copytrack_new();
	e->ctx.alerts = tf_alerts_new();
	e->ctx.quarantine = tf_quarantine_new();
	e->ctx.guard = engine_new_guard(opts);
	e->rates = tf_ratelimit_new();
	e->ctx.retained = tf_retained_new();
	e->earlier_keys = tf_keyring_new();
	e->ctx.metrics = tf_metrics_new(engine_now_ms(&e->ctx));
	e->metrics_interval_s = (uint32_t)engine_option_number(opts->metrics_interval_s);
	e->ctx.broker_id = strdup(opts->broker_id);
	e->stamp_all = strcmp(opts->stamp_all, "true") == 0;
	e->max_inflight = (uint32_t)engine_option_number(opts->max_inflight_messages);
	if (e->identities == NULL || e->policy_dir == NULL || e->track == NULL || e->qos2 == NULL
			|| e->queued == NULL
			|| e->clientids == NULL || e->copies == NULL || e->ctx.alerts == NULL
			|| e->ctx.quarantine == NULL || e->ctx.guard == NULL || e->rates == NULL
			|| e->ctx.retained == NULL || e->earlier_keys == NULL || e->ctx.metrics == NULL
			|| e->ctx.broker_id == NULL) {
		tf_engine_free(e);
		return tf_err_set(err, TF_ERR_NOMEM, "out of memory");
	}
	e->load.identities = e->identities;
	e->load.policy_dir = e->policy_dir;
	e->load.default_allow = strcmp(opts->default_access, "allow") == 0;
	e->load.require_signed = strcmp(opts->require_signed_policies, "true") == 0;
	e->load.refused_id = e->refused_id;
	e->load.broker_id = e->ctx.broker_id;
	rc = make_peer_policy_dir(e, err);
	if (rc == TF_OK)
		rc = load_signer(e, opts, err);
	if (rc == TF_OK)
		rc = start_signing(e, opts, err);
	if (rc == TF_OK)
		rc = load_earlier_keys(e, opts->key_dir, err);
	/* The trace store first: it keeps the versions accepted before. */
	if (rc == TF_OK)
		rc = engine_start_trace(&e->ctx, opts, err);
	if (rc == TF_OK)
		rc = engine_load_rollback(&e->ctx, &e->rollback, err);
	e->load.rollback = e->rollback;
	if (rc == TF_OK)
		rc = load_at_start(e, opts, refused, sizeof(refused), err);
	if (rc == TF_OK)
		rc = engine_load_quarantine(&e->ctx, err);
	if (rc == TF_OK)
		rc = load_client_ids(e, err);
	if (rc != TF_OK) {
		tf_engine_free(e);
		return rc;
	}
	engine_accept_policies(&e->ctx, e->rollback, NULL, e->ctx.set);
	if (refused[0] != '\0') {
		report_start_on_accepted(e, opts->trace_db, refused);
	} else {
		digest = e->ctx.trace ? engine_policy_files_digest(e->identities, e->policy_dir) : NULL;
		engine_record_policy_set(&e->ctx, "loaded", digest);
		free(digest);
		keep_accepted(e);
	}
	log_loaded(e);
	*out = e;
	return TF_OK;
}

/* Why identity username (NULL: none) may not use client_id under the
 * identities in force; NULL when it may. */
static const char *client_id_refusal(const struct tf_engine *e, const char *client_id,
		const char *username)
{
	const struct tf_client *owner = tf_identities_client_id_owner(e->ctx.set->ids, client_id);
	const struct tf_client *who = engine_identify(&e->ctx, username);
	const struct tf_peer *bridge = engine_peer_of_client_id(&e->ctx, client_id);

	if (bridge != NULL && bridge != engine_peer_of_link(&e->ctx, username))
		return "reserved to a peer broker's bridge";
	if (owner != NULL && owner != who)
		return "reserved to another client by the identities file";
	if (who != NULL && who->n_client_ids > 0 && owner != who)
		return "not among the client ids its user may use";
	return NULL;
}

struct client_id_conflicts {
	struct tf_engine *e;
	char **ids;
	uint32_t n, cap;
};

static void find_conflict(void *ctx, const char *client_id, const char *username,
		bool connected, bool durable)
{
	struct client_id_conflicts *c = ctx;

	(void)connected;
	(void)durable;
	if (client_id_refusal(c->e, client_id, username) == NULL)
		return;
	if (!tf_grow(&c->ids, &c->cap, c->n, 16, UINT32_MAX))
		return;
	if ((c->ids[c->n] = strdup(client_id)) != NULL)
		c->n++;
}

/* After a reload, a client id that the new identities reserve to another
 * client (or no longer allow its user) is taken from whoever holds it:
 * connected, the client is disconnected. */
static void reconcile_client_ids(struct tf_engine *e)
{
	struct client_id_conflicts c = { e, NULL, 0, 0 };

	tf_clientids_each(e->clientids, find_conflict, &c);
	for (uint32_t i = 0; i < c.n; i++) {
		bool connected = false;
		const char *holder;

		if (tf_clientids_find(e->clientids, c.ids[i], &holder, &connected) && connected
				&& e->ctx.hooks.disconnect != NULL)
			e->ctx.hooks.disconnect(e->ctx.hooks.ctx, c.ids[i]);
		engine_log(&e->ctx, TF_LOG_NOTICE, "trustflow: client id %s is now reserved to another "
			"client%s", c.ids[i], connected ? "; its client is disconnected" : "");
		tf_clientids_forget(e->clientids, c.ids[i]);
		free(c.ids[i]);
	}
	free(c.ids);
}

/* Whether the retained copy on topic, made under label, is one the set in
 * force would not make: its policy is gone or has another version, or
 * another policy governs its topic now. */
static bool retained_stale(void *ctx, const char *topic, const char *label)
{
	struct tf_engine *e = ctx;
	const struct tf_policy *p = tf_policy_set_find_label(e->ctx.set, label);
	struct tf_governance g;

	if (p == NULL)
		return true;
	/* A view's topic is governed by no policy; an original's by its own. */
	g = tf_govern_lookup(e->ctx.set->govern, topic);
	return g.kind == TF_GOVERN_POLICY && &e->ctx.set->policies[g.policy] != p;
}

static void clear_retained(void *ctx, const char *topic)
{
	struct tf_engine *e = ctx;

	e->ctx.hooks.clear_retained(e->ctx.hooks.ctx, topic);
}

/* Puts a freshly loaded set in force, or records why it was refused
 * (rc, err; refused_id the policy refused, if one was): the previous set
 * stays, and the alert goes to the administrators and, when the refusal
 * is about a policy in force, to its owner's data stewards. */
static int apply_reload(struct tf_engine *e, int rc, struct tf_policy_set *fresh,
		const char *digest, const char *refused_id, struct tf_err *err)
{
	uint32_t stale;

	if (rc != TF_OK) {
		char result[sizeof(err->msg) + 16];

		/* What else changed loads again without it. */
		if (drop_refused_peer_policy(e, refused_id, err->msg))
			e->reload.again = true;
		snprintf(result, sizeof(result), "refused: %s", err->msg);
		engine_log(&e->ctx, TF_LOG_ERR, "trustflow: policy reload rejected: %s; the previous "
			"policies stay in force", err->msg);
		engine_record_policy_set(&e->ctx, result, digest);
		engine_raise_alert(&e->ctx, "reload-failed", refused_label(e, refused_id), "", "",
			err->msg, "none");
		return rc;
	}
	engine_accept_policies(&e->ctx, e->rollback, e->ctx.set, fresh);
	tf_policy_set_free(e->ctx.set);
	e->ctx.set = fresh;
	/* Buckets are keyed by policy index, which the new set renumbers. */
	tf_ratelimit_clear(e->rates);
	reconcile_client_ids(e);
	/* Nothing made under a version no longer in force is handed out
	 * again: a view that lists fewer fields now, an original its policy
	 * no longer governs. The publisher's next retained message makes
	 * them anew. */
	stale = tf_retained_clear_stale(e->ctx.retained, retained_stale, clear_retained, e);
	if (stale > 0)
		engine_log(&e->ctx, TF_LOG_NOTICE, "trustflow: %u retained copies made under policy "
			"versions no longer in force removed", stale);
	engine_record_policy_set(&e->ctx, "loaded", digest);
	log_loaded(e);
	return TF_OK;
}

int tf_engine_reload(struct tf_engine *e, struct tf_err *err)
{
	struct tf_policy_set *fresh = NULL;
	int rc = tf_policy_set_load(&e->load, &fresh, err);
	char *digest = e->ctx.trace ? engine_policy_files_digest(e->identities, e->policy_dir) : NULL;

	/* A background load that began before this one read older files: it
	 * must not replace this set when it ends. */
	if (e->reload.loading)
		e->reload.overtaken = true;
	rc = apply_reload(e, rc, fresh, digest, e->refused_id, err);
	free(digest);
	if (rc == TF_OK)
		keep_accepted(e);
	return rc;
}

/* --- reloading in the background ------------------------------------------- */

/* The loader thread: reads the files named by e->load (which nothing
 * changes while it runs) into a set of its own, checked against its own
 * copy of the versions accepted; touches nothing else. */
static void *load_in_background(void *arg)
{
	struct tf_engine *e = arg;
	struct tf_policy_set_options load = e->load;
	struct tf_policy_set *fresh = NULL;
	struct tf_err err = { "" }, keep_err = { "" };
	int rc;

	load.rollback = e->reload.rollback;
	load.refused_id = e->reload.refused_id;
	rc = tf_policy_set_load(&load, &fresh, &err);
	char *digest = e->ctx.trace ? engine_policy_files_digest(e->identities, e->policy_dir) : NULL;

	/* Copying the files is slow work too: here, not on the broker's thread. */
	if (rc == TF_OK && e->trace_dir != NULL)
		tf_accepted_keep(e->trace_dir, e->identities, e->policy_dir, &keep_err);
	pthread_mutex_lock(&e->reload.lock);
	e->reload.rc = rc;
	e->reload.fresh = fresh;
	e->reload.digest = digest;
	e->reload.keep_err = keep_err;
	e->reload.err = err;
	e->reload.done = true;
	pthread_mutex_unlock(&e->reload.lock);
	return NULL;
}

static int start_loader(struct tf_engine *e)
{
	e->reload.done = false;
	e->reload.again = false;
	e->reload.overtaken = false;
	/* The versions accepted change only when a set comes into force,
	 * on this thread: a load that began before that is overtaken. */
	if ((e->reload.rollback = tf_rollback_copy(e->rollback)) == NULL)
		return TF_ERR_NOMEM;
	if (pthread_create(&e->reload.thread, NULL, load_in_background, e) != 0) {
		tf_rollback_free(e->reload.rollback);
		e->reload.rollback = NULL;
		return TF_ERR_NOMEM;
	}
	e->reload.loading = true;
	return TF_OK;
}

void tf_engine_reload_in_background(struct tf_engine *e)
{
	struct tf_err err = { "" };

	if (e->reload.loading) {
		/* The files may have changed since that load began. */
		e->reload.again = true;
		return;
	}
	if (start_loader(e) != TF_OK) {
		engine_log(&e->ctx, TF_LOG_WARNING, "trustflow: no thread to reload the policies on; "
			"reloading on the broker's thread");
		tf_engine_reload(e, &err);
	}
}

/* Puts a set the loader finished in force (from tf_engine_tick). */
static void finish_background_reload(struct tf_engine *e)
{
	bool done;

	if (!e->reload.loading)
		return;
	pthread_mutex_lock(&e->reload.lock);
	done = e->reload.done;
	pthread_mutex_unlock(&e->reload.lock);
	if (!done)
		return;
	pthread_join(e->reload.thread, NULL);
	e->reload.loading = false;
	if (e->reload.overtaken)
		tf_policy_set_free(e->reload.fresh);
	else
		apply_reload(e, e->reload.rc, e->reload.fresh, e->reload.digest, e->reload.refused_id,
			&e->reload.err);
	if (e->reload.keep_err.msg[0] != '\0')
		engine_log(&e->ctx, TF_LOG_WARNING, "trustflow: the policy set in force could not be kept "
			"for a later start (%s)", e->reload.keep_err.msg);
	e->reload.fresh = NULL;
	tf_rollback_free(e->reload.rollback);
	e->reload.rollback = NULL;
	free(e->reload.digest);
	e->reload.digest = NULL;
	if (e->reload.again)
		tf_engine_reload_in_background(e);
}

const struct tf_policy_set *tf_engine_policies(const struct tf_engine *e)
{
	return e->ctx.set;
}

const struct tf_alerts *tf_engine_alerts(const struct tf_engine *e)
{
	return e->ctx.alerts;
}

const struct tf_quarantine *tf_engine_quarantine(const struct tf_engine *e)
{
	return e->ctx.quarantine;
}

/* The id of the policy of flow ("<policy id>/<publisher>") into id. */
static const char *flow_policy(const char *flow, char id[TF_ID_MAX_LEN + 1])
{
	size_t len = strcspn(flow, "/");

	if (len > TF_ID_MAX_LEN)
		return NULL;
	memcpy(id, flow, len);
	id[len] = '\0';
	return id;
}

int tf_engine_release_flow(struct tf_engine *e, const char *flow, const char *by,
		bool override, struct tf_release_counts *counts, struct tf_err *err)
{
	char id[TF_ID_MAX_LEN + 1];
	const char *policy = flow_policy(flow, id);
	int64_t now = engine_now_ms(&e->ctx);
	int rc;

	*counts = (struct tf_release_counts){ 0, 0, 0, 0 };
	rc = engine_release_flow(&e->ctx, flow, by, override, counts, err);
	tf_metrics_add(e->ctx.metrics, policy, TF_METRIC_RELEASED, counts->released, now);
	tf_metrics_add(e->ctx.metrics, policy, TF_METRIC_DISCARDED, counts->expired, now);
	return rc;
}

int tf_engine_discard_flow(struct tf_engine *e, const char *flow, const char *by,
		uint64_t *count, struct tf_err *err)
{
	char id[TF_ID_MAX_LEN + 1];
	int rc;

	*count = 0;
	rc = engine_discard_flow(&e->ctx, flow, by, count, err);
	tf_metrics_add(e->ctx.metrics, flow_policy(flow, id), TF_METRIC_DISCARDED, *count,
		engine_now_ms(&e->ctx));
	return rc;
}

struct tf_trace_store *tf_engine_trace_store(struct tf_engine *e)
{
	return e->ctx.trace ? tf_trace_writer_store(e->ctx.trace) : NULL;
}

int64_t tf_engine_now(const struct tf_engine *e)
{
	return engine_now_ms(&e->ctx);
}

bool tf_engine_client_in_org(const struct tf_engine *e, const char *username, const char *org_id)
{
	const struct tf_client *who = engine_identify(&e->ctx, username);
	const struct tf_peer *peer = engine_peer_of_link(&e->ctx, username);

	if (org_id == NULL)
		return false;
	if (peer != NULL)
		return strcmp(tf_identities_org_id(e->ctx.set->ids, peer->org), org_id) == 0;
	return who != NULL && strcmp(engine_org_name(&e->ctx, who), org_id) == 0;
}

bool tf_engine_is_peer_link(const struct tf_engine *e, const char *username)
{
	return engine_peer_of_link(&e->ctx, username) != NULL;
}

/* Any event but an ACL READ for the client being accepted: mosquitto has
 * accepted it. */
static void connection_accepted(struct tf_engine *e)
{
	free(e->accepting);
	e->accepting = NULL;
}

enum tf_verdict tf_engine_may_connect(struct tf_engine *e, const void *conn,
		const char *client_id, const char *username, bool durable)
{
	const char *why = client_id_refusal(e, client_id, username);
	const char *holder = NULL;
	char detail[400];

	if (why == NULL) {
		bool reserved = tf_identities_client_id_owner(e->ctx.set->ids, client_id) != NULL;

		switch (tf_clientids_bind(e->clientids, client_id, username, conn, durable, reserved)) {
		case TF_CLIENTID_OK:
			/* mosquitto checks its session's messages next (ACL READ). */
			free(e->accepting);
			e->accepting = strdup(client_id);
			tf_queued_resume(e->queued, client_id);
			return TF_DEFER;
		case TF_CLIENTID_TAKEN:
			tf_clientids_find(e->clientids, client_id, &holder, NULL);
			why = holder ? "in use by another user, or holding its session"
				: "in use by a client without a username, or holding its session";
			break;
		case TF_CLIENTID_FULL:
			why = "too many client ids are bound (or out of memory)";
			break;
		}
	}
	snprintf(detail, sizeof(detail), "connection refused: client id %.200s is %s", client_id,
		why);
	engine_raise_alert(&e->ctx, "client-id-refused", "", engine_org_name(&e->ctx,
		engine_identify(&e->ctx, username)), username ? username : "", detail, "refuse");
	return TF_DENY;
}

void tf_engine_disconnected(struct tf_engine *e, const void *conn, const char *client_id)
{
	/* Accepting a client id disconnects the connection that held it
	 * first; any other disconnection comes after. */
	if (e->accepting != NULL && (client_id == NULL || strcmp(client_id, e->accepting) != 0))
		connection_accepted(e);
	if (client_id == NULL) {
		tf_clientids_undo(e->clientids, conn);
		return;
	}
	tf_clientids_disconnected(e->clientids, client_id, conn);
	if (tf_qos2track_count(e->qos2) > 0)
		tf_qos2track_disconnected(e->qos2, conn, engine_now_ms(&e->ctx));
}

enum tf_verdict tf_engine_may_publish(struct tf_engine *e, const char *client_id,
		const char *username, const char *topic, const void *payload, uint32_t payloadlen)
{
	struct tf_decision d;
	int64_t now = engine_now_ms(&e->ctx);

	connection_accepted(e);
	if (engine_is_blocked(&e->ctx, client_id, username, now)) {
		tf_metrics_refused(e->ctx.metrics, NULL, TF_REFUSED_BLOCKED, now);
		return TF_DENY;
	}
	/* A peer hands over messages on any topic, and owners' policies;
	 * each is checked when it comes (tf_engine_on_message). No other `$`
	 * topic. */
	if (engine_peer_of_link(&e->ctx, username) != NULL)
		return topic[0] != '$' || strncmp(topic, ENGINE_POLICIES_PREFIX,
			strlen(ENGINE_POLICIES_PREFIX)) == 0 ? TF_ALLOW : TF_DENY;
	tf_decide_publish(e->ctx.set, engine_identify(&e->ctx, username), topic, &d);
	if (d.verdict != TF_DENY)
		return d.verdict;
	tf_metrics_refused(e->ctx.metrics, d.policy ? d.policy->id : NULL, TF_REFUSED_DENIED, now);
	if (e->ctx.trace != NULL)
		engine_record_unstamped(&e->ctx, now, client_id, username, topic, d.policy, payload,
			payloadlen, "denied", d.reason);
	/* A refusal on a governed topic is the owner's business. */
	if (d.policy != NULL)
		engine_raise_alert(&e->ctx, "denied-publish", d.policy->label,
			engine_org_name(&e->ctx, engine_identify(&e->ctx, username)),
			engine_client_name(client_id, username), d.reason, "drop");
	engine_count_refusal(&e->ctx, client_id, username, now);
	return d.verdict;
}

enum tf_verdict tf_engine_may_subscribe(struct tf_engine *e, const char *client_id,
		const char *username, const char *filter)
{
	struct tf_decision d;
	int64_t now = engine_now_ms(&e->ctx);

	connection_accepted(e);
	if (engine_is_blocked(&e->ctx, client_id, username, now))
		return TF_DENY;
	/* Peers push (their bridges are opened by the sending side); a peer
	 * subscribing here would pull data past the egress decision. */
	if (engine_peer_of_link(&e->ctx, username) != NULL)
		return TF_DENY;
	tf_decide_subscribe(e->ctx.set, engine_identify(&e->ctx, username), filter, now, &d);
	if (d.verdict == TF_DENY)
		engine_count_refusal(&e->ctx, client_id, username, now);
	return d.verdict;
}

/* The receive time of a stored message the engine has no record of: one
 * it released or rerouted itself, or, under a policy with a retention,
 * one mosquitto kept from before a restart, whose time the trace holds
 * (then remembered for its later deliveries). */
static int64_t age_unknown(struct tf_engine *e, const char *topic, const void *payload,
		uint32_t payloadlen, int64_t now)
{
	int64_t received = tf_quarantine_release_time(e->ctx.quarantine, topic, payload, payloadlen,
		now);
	struct tf_governance g;
	const struct tf_policy *p;

	if (received != TF_TIME_UNKNOWN || e->ctx.trace == NULL || topic[0] == '$')
		return received;
	g = tf_govern_lookup(e->ctx.set->govern, topic);
	if (g.kind != TF_GOVERN_POLICY || e->ctx.set->policies[g.policy].retention_ms == 0)
		return received;
	p = &e->ctx.set->policies[g.policy];
	received = engine_trace_received_at(&e->ctx, topic, payload, payloadlen, NULL, 0);
	if (received != TF_TIME_UNKNOWN)
		tf_msgtrack_put(e->track, topic, payload, payloadlen, received,
			received + p->retention_ms, NULL);
	return received;
}

#define ENGINE_STALE_RETAINED "a retained copy made under a policy version no longer in force"

/* Whether a retained message the engine keeps no record of was made
 * under a policy version still in force. One made or let through since
 * the broker started is in the retained table with the label it was made
 * under (a reload clears the stale ones); an older one, which mosquitto's
 * persistence brought back, is looked up in the trace: unknown there, or
 * recorded under a version no longer in force, it is not handed out.
 * Without a trace store this cannot be told, and it is (docs/options.md). */
static bool retained_in_force(struct tf_engine *e, const char *topic, const void *payload,
		uint32_t payloadlen)
{
	const char *label = tf_retained_label(e->ctx.retained, topic);
	char recorded[300];

	if (label != NULL)
		return tf_policy_set_find_label(e->ctx.set, label) != NULL;
	if (e->ctx.trace == NULL)
		return true;
	return engine_trace_received_at(&e->ctx, topic, payload, payloadlen, recorded, sizeof(recorded))
		!= TF_TIME_UNKNOWN && tf_policy_set_find_label(e->ctx.set, recorded) != NULL;
}

#define ENGINE_STALE_COPY "a view copy made under a policy version no longer in force"

/* Whether a view copy was made under the version of its policy p in force:
 * known by its content when made lately, else from the trace (a copy that
 * waited in an offline queue); unknown there, it is not handed out.
 * Without a trace store an unknown copy cannot be told, and it is. */
static bool view_copy_in_force(struct tf_engine *e, const char *topic, const void *payload,
		uint32_t payloadlen, const struct tf_policy *p)
{
	char recorded[300];
	bool same;

	if (tf_copytrack_find(e->copies, topic, payload, payloadlen, p->label, &same))
		return same;
	if (e->ctx.trace == NULL)
		return true;
	return engine_trace_received_at(&e->ctx, topic, payload, payloadlen, recorded, sizeof(recorded))
		!= TF_TIME_UNKNOWN && strcmp(recorded, p->label) == 0;
}

/* Whether client_id's session is connected; a client id the engine does
 * not know (a certificate client: no BASIC_AUTH) counts as connected. */
static bool session_connected(const struct tf_engine *e, const char *client_id)
{
	bool connected = true;

	if (client_id != NULL)
		tf_clientids_find(e->clientids, client_id, NULL, &connected);
	return connected;
}

/* The delivery event of a decision (engine_record_delivery), once per
 * message and session. A message for an offline session is "queued",
 * and noted; when the session comes back mosquitto decides each message
 * it holds for it again, and for a noted one that decision is the
 * delivery (the rest it dropped: tf_engine_tick). A message it holds
 * because the client had not acknowledged it was recorded when it was
 * first handed over: not again. connected: whether the session's client
 * is connected (session_connected; asked of allowed deliveries only).
 * Returns false when it cannot be recorded. */
static bool record_delivery(struct tf_engine *e, int64_t now, const struct tf_msgtrack_hit *hit,
		const char *client_id, const char *username, const struct tf_client *who,
		const char *topic, const void *payload, uint32_t payloadlen,
		const struct tf_decision *d, bool connected)
{
	const char *outcome = d->verdict == TF_ALLOW ? "delivered" : "withheld";

	if (e->accepting != NULL && client_id != NULL && strcmp(e->accepting, client_id) == 0) {
		if (!tf_queued_take(e->queued, client_id,
				tf_queued_fingerprint(topic, payload, payloadlen)) && d->verdict == TF_ALLOW)
			return true;
	} else if (e->accepting != NULL) {
		connection_accepted(e);
	}
	if (d->verdict == TF_ALLOW && !connected) {
		outcome = "queued";
		/* Not noted (bounds): its record stays "queued". */
		if (hit != NULL && hit->has_id)
			tf_queued_put(e->queued, client_id, username ? username : "", hit->id,
				tf_queued_fingerprint(topic, payload, payloadlen),
				d->policy ? d->policy->label : "", now);
	}
	return engine_record_delivery(&e->ctx, now, hit, client_id, username, who, topic, payload,
		payloadlen, d, outcome);
}

/* A delivery decided (d), for the metrics: made to a connected client,
 * or withheld. Not the checks mosquitto makes again of what a session
 * held while its client was away, nor a message queued for it. */
static void count_delivery(struct tf_engine *e, const char *client_id, const char *username,
		const struct tf_client *who, const struct tf_decision *d, bool connected, int64_t now)
{
	if (e->accepting != NULL && client_id != NULL && strcmp(e->accepting, client_id) == 0)
		return;
	if (d->verdict != TF_ALLOW)
		tf_metrics_add(e->ctx.metrics, d->policy ? d->policy->id : NULL, TF_METRIC_WITHHELD, 1,
			now);
	else if (connected)
		tf_metrics_delivered(e->ctx.metrics, d->policy ? d->policy->id : NULL,
			engine_org_name(&e->ctx, who), engine_client_name(client_id, username), now);
}

enum tf_verdict tf_engine_may_receive(struct tf_engine *e, const char *client_id,
		const char *username, const char *topic, const void *payload, uint32_t payloadlen,
		bool retain)
{
	const struct tf_client *who = engine_identify(&e->ctx, username);
	struct tf_msgtrack_hit hit;
	struct tf_decision d;
	bool known = tf_msgtrack_find(e->track, topic, payload, payloadlen, &hit);
	int64_t now = engine_now_ms(&e->ctx);
	bool connected;

	if (tf_qos2track_count(e->qos2) > 0)
		tf_qos2track_release(e->qos2, topic);
	/* The empty retained message by which the engine removes a retained
	 * copy (its retention passed, its version went): housekeeping, not
	 * data. mosquitto would hand it, unstamped, to the topic's live
	 * subscribers; it reaches no one, and is no delivery. */
	if (retain && payloadlen == 0 && !known)
		return TF_DENY;
	tf_decide_receive(e->ctx.set, who, topic, now, known ? hit.received_ms
		: age_unknown(e, topic, payload, payloadlen, now), &d);
	if (d.verdict == TF_ALLOW && engine_is_blocked(&e->ctx, client_id, username, now)) {
		d.verdict = TF_DENY;
		d.reason = ENGINE_BLOCKED;
	}
	if (d.verdict == TF_ALLOW && retain && !known && d.policy != NULL
			&& !retained_in_force(e, topic, payload, payloadlen)) {
		d.verdict = TF_DENY;
		d.reason = ENGINE_STALE_RETAINED;
	}
	/* Narrowed since it was made, a view copy would show removed fields. */
	if (d.verdict == TF_ALLOW && d.view
			&& !view_copy_in_force(e, topic, payload, payloadlen, d.policy)) {
		d.verdict = TF_DENY;
		d.reason = ENGINE_STALE_COPY;
	}
	/* Made now, or queued for a session whose client is away: asked once,
	 * for the trace and the metrics. */
	connected = topic[0] != '$' && d.verdict == TF_ALLOW && session_connected(e, client_id);
	/* A governed delivery that cannot be recorded is not made. */
	if (e->ctx.trace != NULL && topic[0] != '$' && d.verdict != TF_DEFER
			&& !record_delivery(e, now, known ? &hit : NULL, client_id, username, who, topic,
				payload, payloadlen, &d, connected) && d.policy != NULL)
		return TF_DENY;
	if (topic[0] != '$' && d.verdict != TF_DEFER)
		count_delivery(e, client_id, username, who, &d, connected, now);
	/* Private data reaching another org: its recipient is a suspect if it
	 * publishes the data again. (A view copy is other data.) */
	if (d.verdict == TF_ALLOW && d.policy != NULL && d.policy->forwarding_deny && !d.view
			&& who != NULL && who->org != d.policy->owner
			&& tf_guard_watching_leaks(e->ctx.guard))
		engine_note_recipient(&e->ctx, known ? &hit : NULL,
			engine_client_name(client_id, username), payload, payloadlen, now);
	return d.verdict;
}

/* --- messages ------------------------------------------------------------ */

/* A violation of p by m (a broken rule, act: p's on_violation) or an
 * anomaly the guard found (act: p's on_anomaly): raises its alert (every
 * one does, naming the action); what happens to the message is the
 * caller's, by act. */
static void violation(struct tf_engine *e, const struct tf_policy *p, const struct tf_message *m,
		const char *kind, const char *detail, const struct tf_action *act)
{
	char text[400];

	snprintf(text, sizeof(text), "%s on %s", detail, m->topic);
	engine_raise_alert(&e->ctx, kind, p->label,
		engine_org_name(&e->ctx, engine_identify(&e->ctx, m->username)),
		engine_client_name(m->client_id, m->username), text,
		tf_violation_action_name(act->action));
}

/* The reduced copy of an object payload for one view rule: only the
 * rule's fields, in the payload's order. */
static int make_view(const struct tf_consumer_rule *r, const struct tf_policy *p,
		const char *topic, const cJSON *payload, struct tf_copy *copy)
{
	cJSON *reduced = cJSON_CreateObject();
	const cJSON *member;
	size_t len;

	if (reduced == NULL)
		return -1;
	cJSON_ArrayForEach(member, payload) {
		bool wanted = false;

		for (uint32_t f = 0; f < r->n_fields && !wanted; f++)
			wanted = strcmp(r->fields[f], member->string) == 0;
		if (wanted && !cJSON_AddItemToObject(reduced, member->string,
				cJSON_Duplicate(member, true))) {
			cJSON_Delete(reduced);
			return -1;
		}
	}
	copy->payload = cJSON_PrintUnformatted(reduced);
	cJSON_Delete(reduced);
	len = strlen(r->view) + 1 + strlen(topic) + 1;
	copy->topic = malloc(len);
	if (copy->payload == NULL || copy->topic == NULL) {
		free(copy->payload);
		free(copy->topic);
		return -1;
	}
	snprintf(copy->topic, len, "%s/%s", r->view, topic);
	copy->payloadlen = (uint32_t)strlen(copy->payload);
	copy->expiry_s = (uint32_t)(p->retention_ms / 1000);
	return 0;
}

static void make_views(struct tf_engine *e, const struct tf_policy *p, const struct tf_message *m,
		const cJSON *json, int64_t now, struct tf_message_result *res)
{
	if (!cJSON_IsObject(json) || p->n_views == 0)
		return;
	res->copies = calloc(p->n_views, sizeof(*res->copies));
	if (res->copies == NULL) {
		engine_log(&e->ctx, TF_LOG_ERR, "trustflow: out of memory making the views of %s",
			m->topic);
		return;
	}
	for (uint32_t i = 0; i < p->n_consumers; i++) {
		const struct tf_consumer_rule *r = &p->consumers[i];
		struct tf_copy *c = &res->copies[res->n_copies];

		if (r->fields == NULL)
			continue;
		if (make_view(r, p, m->topic, json, c) != 0) {
			engine_log(&e->ctx, TF_LOG_ERR, "trustflow: out of memory making the view %s of %s",
				r->view, m->topic);
			continue;
		}
		res->n_copies++;
		if (!engine_stamp(&e->ctx, m, p, c->topic, c->payload, c->payloadlen, now, &c->stamp_buf,
				&c->stamp) || (e->ctx.trace != NULL
				&& engine_record_stamped(&e->ctx, now, &c->stamp, c->payloadlen,
					res->stamp.id, true, NULL) != TF_OK)) {
			res->n_copies--;
			free(c->topic);
			free(c->payload);
		} else {
			tf_copytrack_put(e->copies, c->topic, c->payload, c->payloadlen, p->label);
			if (m->retain)
				engine_note_retained(&e->ctx, c->topic, c->payloadlen, p, now);
		}
	}
}

static void note_retained(struct tf_engine *e, const struct tf_message *m,
		const struct tf_policy *p, int64_t now)
{
	engine_note_retained(&e->ctx, m->topic, m->payloadlen, p, now);
}

/* Whether the trace files m by content: whether mosquitto may hand it
 * out when the engine no longer knows its id (kept TRACE_ID_KEEP_MS, by
 * mosquitto's stored topic): a retained message to a later subscriber,
 * a QoS 1 or 2 one again to a session that had not acknowledged it when
 * it went, one the plugin published (not keyed by a stored topic), or
 * any when the table cannot keep its id. A delivery then names it by
 * topic and payload hash. A message queued for an offline session is
 * filed when it is queued (engine_record_delivery). */
static bool filed_by_content(const struct tf_engine *e, const struct tf_message *m)
{
	return m->retain || m->qos > 0 || m->republished || tf_msgtrack_full(e->track);
}

/* Keeps what later deliveries of a passed-on message need: its receive
 * time under a retention, its id for the trace. */
static void track(struct tf_engine *e, const struct tf_message *m, const struct tf_policy *p,
		const struct tf_stamp *st, int64_t now)
{
	int64_t keep = p && p->retention_ms > 0 ? p->retention_ms : 0;
	unsigned char id[16];
	/* The id also tells the leak detector which private data a delivery
	 * carries, trace or not. */
	bool traced = (e->ctx.trace != NULL || (p != NULL && p->forwarding_deny)) && st != NULL
		&& tf_trace_id_bytes(st->id, id);

	if (m->republished) {
		/* Not keyed by mosquitto's stored topic: known by its content,
		 * as a released message is. */
		tf_quarantine_note_release(e->ctx.quarantine, m->topic, m->payload, m->payloadlen, now,
			now);
		return;
	}

	if (traced && keep < TRACE_ID_KEEP_MS)
		keep = TRACE_ID_KEEP_MS;
	if (keep == 0)
		return;
	if (tf_msgtrack_put(e->track, m->topic, m->payload, m->payloadlen, now, now + keep,
			traced ? id : NULL) != 0 && p && p->retention_ms > 0)
		engine_log(&e->ctx, TF_LOG_WARNING, "trustflow: retention table full; %s will be "
			"withheld as of unknown age", m->topic);
}

/* A QoS 2 message sent again over a new connection before the first was
 * released: it carries the first one's stamp, and was recorded and its
 * views published with the first. Returns whether m is such a resend. */
static bool resend_of(struct tf_engine *e, const struct tf_message *m, uint64_t key,
		struct tf_message_result *res)
{
	const struct tf_qos2_pending *first = tf_qos2track_retransmitted(e->qos2, key,
		m->connection);

	if (first == NULL)
		return false;
	/* It goes where the first went: mosquitto then sees the same message
	 * and drops it. */
	res->stamp = first->stamp;
	res->stamped = !first->hold;
	res->hold = first->hold;
	res->redirect = first->redirect;
	return true;
}

/* At most one line a minute about QoS 2 messages forgotten early: a
 * client with many in flight would otherwise write one per message. */
static void tell_qos2_forgotten(struct tf_engine *e, int64_t now)
{
	uint64_t forgotten = tf_qos2track_forgotten(e->qos2);

	if (forgotten == e->qos2_forgotten_told || (e->qos2_told_ms != 0
			&& now - e->qos2_told_ms < TF_QOS2_TELL_MS))
		return;
	engine_log(&e->ctx, TF_LOG_WARNING, "trustflow: %" PRIu64 " QoS 2 messages forgotten before "
		"their release to make room (at most %d a connection, %d in all); those sent again "
		"get a stamp of their own", forgotten - e->qos2_forgotten_told,
		TF_QOS2_PER_CONNECTION, TF_QOS2_MAX_PENDING);
	e->qos2_forgotten_told = forgotten;
	e->qos2_told_ms = now;
}

/* mosquitto 2.0.11 refuses (PUBREC 0x97, or nothing a 3.1.1 client can
 * see) a QoS 2 message that comes while max_inflight_messages of its
 * client's wait for their PUBREL, after MESSAGE recorded it, and tells
 * plugins nothing. What the engine can see is a connection with more
 * unreleased QoS 2 messages within a second than mosquitto takes: then
 * the trace gets an alert saying that messages recorded now may not have
 * been taken. A message nobody receives is never released either, so a
 * client sending more than that many a second to nobody raises it too. */
static void check_qos2_overrun(struct tf_engine *e, const struct tf_message *m,
		const struct tf_policy *p, int64_t now)
{
	char detail[300];
	uint32_t unreleased;

	if (e->max_inflight == 0)
		return;
	unreleased = tf_qos2track_unreleased_since(e->qos2, m->connection, now - 1000);
	if (unreleased <= e->max_inflight)
		return;
	snprintf(detail, sizeof(detail), "%u QoS 2 messages unanswered within a second, more than "
		"the %u mosquitto takes in flight: QoS 2 messages recorded from this client now may "
		"have been refused by mosquitto after they were recorded", unreleased,
		e->max_inflight);
	engine_raise_alert(&e->ctx, "qos2-overrun", p ? p->label : "",
		engine_org_name(&e->ctx, engine_identify(&e->ctx, m->username)),
		engine_client_name(m->client_id, m->username), detail, "none");
}

/* Remembers a stamped QoS 2 message until mosquitto releases it. */
static void pend_qos2(struct tf_engine *e, const struct tf_message *m, const struct tf_policy *p,
		uint64_t key, const struct tf_message_result *res, int64_t now)
{
	if (!tf_qos2track_put(e->qos2, key, tf_qos2_client_key(m->client_id ? m->client_id : ""),
			m->connection, m->topic, &res->stamp, res->hold, res->redirect, now))
		engine_log(&e->ctx, TF_LOG_WARNING, "trustflow: out of memory keeping a QoS 2 message; if "
			"%s is sent again it gets a stamp of its own", m->topic);
	tell_qos2_forgotten(e, now);
	check_qos2_overrun(e, m, p, now);
}

/* A message on a topic no policy governs: stamped with stamp_all,
 * recorded when there is a trace, passed on either way. */
/* What became of a message under p (NULL: none), for the metrics. */
static void count_message(struct tf_engine *e, const struct tf_policy *p,
		const struct tf_message_result *res, int64_t now)
{
	const char *id = p ? p->id : NULL;

	if (res->stamped || res->hold)
		tf_metrics_add(e->ctx.metrics, id, TF_METRIC_STAMPED, 1 + res->n_copies, now);
	if (res->hold)
		tf_metrics_add(e->ctx.metrics, id, TF_METRIC_QUARANTINED, 1, now);
	else if (res->redirect != NULL)
		tf_metrics_add(e->ctx.metrics, id, TF_METRIC_REROUTED, 1, now);
	else if (!res->deliver)
		tf_metrics_refused(e->ctx.metrics, id, res->refusal, now);
}

static void on_ungoverned(struct tf_engine *e, const struct tf_message *m, int64_t now,
		struct tf_message_result *res)
{
	if (e->stamp_all) {
		if (!engine_stamp(&e->ctx, m, NULL, m->topic, m->payload, m->payloadlen, now,
				&res->stamp_buf, &res->stamp)) {
			engine_refuse(res, TF_REFUSED_UNSTAMPED, "cannot be stamped");
			return;
		}
		res->stamped = true;
	}
	if (e->ctx.trace != NULL) {
		if (res->stamped)
			engine_record_stamped(&e->ctx, now, &res->stamp, m->payloadlen, NULL,
				filed_by_content(e, m), NULL);
		else
			engine_record_unstamped(&e->ctx, now, m->client_id, m->username, m->topic, NULL,
				m->payload, m->payloadlen, "delivered", NULL);
	}
	track(e, m, NULL, res->stamped ? &res->stamp : NULL, now);
	if (m->retain)
		note_retained(e, m, NULL, now);
}

/* A message passed on as published: stamped, recorded, tracked for its
 * deliveries, its views made. */
/* The stamp of a message passed on, and its record (a peer's relayed
 * message: its format-2 stamp after its chain). Returns false when it
 * cannot be stamped or recorded (res refused). */
static bool stamp_and_record(struct tf_engine *e, const struct tf_message *m,
		const struct tf_policy *p, int64_t now, struct tf_message_result *res)
{
	struct engine_relayed relayed;

	if (!engine_stamp_message(&e->ctx, m, p, m->topic, now, res)) {
		engine_refuse(res, TF_REFUSED_UNSTAMPED, "cannot be stamped");
		return false;
	}
	res->stamped = true;
	/* What cannot be recorded is not passed on. */
	if (e->ctx.trace != NULL && engine_record_stamped(&e->ctx, now, &res->stamp,
			m->payloadlen, NULL, filed_by_content(e, m),
			engine_relayed_of(&e->ctx, m, res, &relayed)) != TF_OK) {
		engine_refuse(res, TF_REFUSED_UNRECORDED, "the trace store cannot record it");
		return false;
	}
	return true;
}

/* A message passed on as published: stamped, recorded, tracked for its
 * deliveries, its views made, and sent on to the peers that may have it. */
/* The brokers that stamped a relayed message before this one (none for
 * a message published here), into out; returns how many. */
static uint32_t chain_brokers(const struct tf_message *m, const char *out[TF_CHAIN_MAX])
{
	uint32_t n = 0;

	for (uint32_t i = 0; m->chain != NULL && i < m->chain->n && i < TF_CHAIN_MAX; i++)
		out[n++] = m->chain->stamps[i].broker;
	return n;
}

static void deliver(struct tf_engine *e, const struct tf_message *m, const struct tf_policy *p,
		const cJSON *json, struct engine_canon *canon, int64_t now,
		struct tf_message_result *res)
{
	const char *chain[TF_CHAIN_MAX];

	if (!stamp_and_record(e, m, p, now, res))
		return;
	track(e, m, p, &res->stamp, now);
	engine_egress(&e->ctx, &res->stamp, p, chain, chain_brokers(m, chain), now, &res->egress);
	make_views(e, p, m, json, now, res);
	if (m->retain)
		note_retained(e, m, p, now);
	if (p->forwarding_deny)
		engine_note_private(&e->ctx, m, p, canon, &res->stamp, now);
	if (e->ctx.trace_each && tf_trace_writer_flush(e->ctx.trace) != TF_OK)
		engine_refuse(res, TF_REFUSED_UNRECORDED, "the trace store cannot record it");
}

/* A message on a topic policy p governs: limits and schema, then what
 * the violation (if any) or the flow's quarantine says, else delivery
 * with stamp, record, views and retention. */
static void on_governed(struct tf_engine *e, const struct tf_message *m, const struct tf_policy *p,
		uint32_t policy_index, uint64_t qos2_key, struct engine_canon *canon, int64_t now,
		struct tf_message_result *res)
{
	const char *violated = NULL;
	const struct tf_action *act = NULL;   /* NULL: deliver */
	enum tf_violation_action action = TF_VIOLATION_ALERT;
	char flow[512], why[200];
	const cJSON *json = NULL;   /* for the schema and the views */

	if (engine_too_large(p, m->payloadlen)) {
		violated = "limit-exceeded";
		act = &p->on_violation;
		violation(e, p, m, violated, ENGINE_TOO_LARGE, act);
	} else if (p->max_messages_per_second > 0 && (m->username == NULL
			|| !tf_ratelimit_take(e->rates, policy_index, m->username,
				p->max_messages_per_second, now))) {
		violated = "limit-exceeded";
		act = &p->on_violation;
		violation(e, p, m, violated, "more than max_messages_per_second", act);
	}
	if (violated == NULL && (p->schema != NULL || p->n_views > 0))
		json = engine_canon_json(canon, m->payload, m->payloadlen);
	if (violated == NULL && engine_breaks_schema(p, m->payloadlen, json, why, sizeof(why))) {
		violated = "schema-violation";
		act = &p->on_violation;
		violation(e, p, m, violated, why, act);
	}
	tf_quarantine_flow_name(p->label, engine_client_name(m->client_id, m->username), flow,
		sizeof(flow));
	if (violated == NULL) {
		violated = tf_guard_message(e->ctx.guard, flow, m->payloadlen,
			tf_guard_hash(e->ctx.guard, m->payload, m->payloadlen), now, why, sizeof(why));
		/* A suspicion, not a broken rule: its own action (policy-v1). */
		if (violated != NULL) {
			act = &p->on_anomaly;
			violation(e, p, m, violated, why, act);
		}
	}
	if (act != NULL) {
		action = act->action;
		res->disconnect = act->disconnect;
	}
	/* Once a flow is held, all of it is, violating or not. */
	if (tf_quarantine_find(e->ctx.quarantine, flow) != NULL)
		action = TF_VIOLATION_QUARANTINE;

	switch (action) {
	case TF_VIOLATION_DROP:
		engine_refuse(res, violated, violated);
		if (e->ctx.trace != NULL)
			engine_record_unstamped(&e->ctx, now, m->client_id, m->username, m->topic, p,
				m->payload, m->payloadlen, "dropped", violated);
		break;
	case TF_VIOLATION_QUARANTINE:
		engine_hold(&e->ctx, m, p, flow, violated ? violated : "its flow is quarantined", now, res);
		break;
	case TF_VIOLATION_REROUTE:
		engine_reroute(&e->ctx, m, p, act->reroute_to, violated, now, res);
		break;
	case TF_VIOLATION_ALERT:
		deliver(e, m, p, json, canon, now, res);
		break;
	}
	if (m->qos == 2 && m->chain == NULL && res->deliver && (res->stamped || res->hold))
		pend_qos2(e, m, p, qos2_key, res, now);
	count_message(e, p, res, now);
	if (!res->deliver)
		tf_message_result_free(res);
}

/* A message on a `$` topic: left to mosquitto, but for a peer's policy
 * (federation-v1, section 2), which the engine takes: acknowledged, passed
 * to no one; this broker publishes its own copy once it holds it. */
static void on_dollar(struct tf_engine *e, const struct tf_message *m,
		struct tf_message_result *res)
{
	const struct tf_peer *peer = engine_peer_of_link(&e->ctx, m->username);
	const char *why;
	bool changed;

	if (peer == NULL || strncmp(m->topic, ENGINE_POLICIES_PREFIX,
			strlen(ENGINE_POLICIES_PREFIX)) != 0)
		return;
	why = engine_take_peer_policy(&e->ctx, peer, m->topic, m->payload, m->payloadlen,
		&changed);
	if (why != NULL) {
		engine_refuse(res, TF_REFUSED_RELAY, why);
		return;
	}
	res->taken = true;
	if (changed)
		tf_engine_reload_in_background(e);
}

/* A message a peer relayed: checked, then passed on as its policy says,
 * as any message on a governed topic is. */
static void on_relayed(struct tf_engine *e, const struct tf_message *m, int64_t now,
		struct tf_message_result *res)
{
	const struct tf_peer *peer = engine_peer_of_link(&e->ctx, m->username);
	const struct tf_policy *p = NULL;
	struct engine_canon canon = { .made = false };
	const char *why;

	if (peer == NULL)
		why = "not from a peer broker";
	else
		why = engine_relay_check(&e->ctx, peer, m, now, &p);
	if (why != NULL) {
		engine_refuse(res, TF_REFUSED_RELAY, why);
		count_message(e, NULL, res, now);
		return;
	}
	/* QoS 2 resends are mosquitto's to drop: a peer's bridge session
	 * outlives its connections (cleansession false). */
	on_governed(e, m, p, (uint32_t)(p - e->ctx.set->policies), 0, &canon, now, res);
	engine_canon_free(&canon);
}

void tf_engine_on_message(struct tf_engine *e, const struct tf_message *m,
		struct tf_message_result *res)
{
	struct tf_governance g;
	const struct tf_policy *p;
	int64_t now = engine_now_ms(&e->ctx);
	uint64_t qos2_key = 0;
	struct engine_canon canon = { .made = false };

	connection_accepted(e);

	/* Not memset: the stamp buffers are large and this runs per message. */
	res->deliver = true;
	res->reason = NULL;
	res->refusal = NULL;
	res->stamped = false;
	res->hold = false;
	res->taken = false;
	res->redirect = NULL;
	res->disconnect = false;
	res->n_copies = 0;
	res->copies = NULL;
	res->n_hops = 0;
	res->hops = NULL;
	res->egress = (struct tf_egress){ 0, NULL };
	if (m->topic[0] == '$') {
		on_dollar(e, m, res);
		return;
	}
	/* Anything from a peer's link is checked as relayed (a will, with no
	 * chain, is refused there). */
	if (m->chain != NULL || engine_peer_of_link(&e->ctx, m->username) != NULL) {
		on_relayed(e, m, now, res);
		return;
	}
	if (m->qos == 2) {
		qos2_key = tf_qos2_key(m->client_id ? m->client_id : "", m->topic, m->payload,
			m->payloadlen);
		if (resend_of(e, m, qos2_key, res))
			return;
	}
	/* Not a retransmission: its client sends new messages now, so what it
	 * sent over earlier connections will not come again. */
	if (tf_qos2track_count(e->qos2) > 0)
		tf_qos2track_moved_on(e->qos2, tf_qos2_client_key(m->client_id ? m->client_id : ""),
			m->connection);
	/* The leak check and the policy's checks share one parse (canon). */
	if (tf_guard_watching_leaks(e->ctx.guard) && engine_leaked(&e->ctx, m, &canon, now, res)) {
		count_message(e, NULL, res, now);
		goto out;
	}
	g = tf_govern_lookup(e->ctx.set->govern, m->topic);
	if (g.kind != TF_GOVERN_POLICY) {
		on_ungoverned(e, m, now, res);
		count_message(e, NULL, res, now);
		if (m->qos == 2 && res->stamped)
			pend_qos2(e, m, NULL, qos2_key, res, now);
		if (e->ctx.trace_each)
			tf_trace_writer_flush(e->ctx.trace);
		goto out;
	}
	p = &e->ctx.set->policies[g.policy];
	on_governed(e, m, p, g.policy, qos2_key, &canon, now, res);
out:
	engine_canon_free(&canon);
}

void tf_message_result_free(struct tf_message_result *res)
{
	for (uint32_t i = 0; i < res->n_hops; i++)
		free(res->hops[i]);
	free(res->hops);
	res->hops = NULL;
	res->n_hops = 0;
	free(res->egress.peers);
	res->egress = (struct tf_egress){ 0, NULL };
	for (uint32_t i = 0; i < res->n_copies; i++) {
		free(res->copies[i].topic);
		free(res->copies[i].payload);
	}
	free(res->copies);
	res->copies = NULL;
	res->n_copies = 0;
}

void tf_engine_publish_keys(struct tf_engine *e)
{
	if (e->ctx.hooks.publish_key == NULL)
		return;
	e->ctx.hooks.publish_key(e->ctx.hooks.ctx, tf_signer_kid(e->ctx.signer),
		tf_signer_public_pem(e->ctx.signer));
	for (int i = 0; i < tf_keyring_count(e->earlier_keys); i++) {
		const char *kid = tf_keyring_kid(e->earlier_keys, i);
		char *pem;

		if (strcmp(kid, tf_signer_kid(e->ctx.signer)) == 0)
			continue;
		pem = tf_keyring_public_pem(e->earlier_keys, kid);
		if (pem == NULL) {
			engine_log(&e->ctx, TF_LOG_ERR, "trustflow: out of memory publishing key %s", kid);
			continue;
		}
		e->ctx.hooks.publish_key(e->ctx.hooks.ctx, kid, pem);
		free(pem);
	}
}

static bool still_connected(void *ctx, const char *client_id)
{
	const struct tf_engine *e = ctx;
	bool connected = false;

	return tf_clientids_find(e->clientids, client_id, NULL, &connected) && connected;
}

static void record_dropped(void *ctx, const char *client_id, const unsigned char id[16],
		const char *label)
{
	struct tf_engine *e = ctx;
	const char *username = NULL;

	tf_clientids_find(e->clientids, client_id, &username, NULL);
	engine_record_dropped(&e->ctx, engine_now_ms(&e->ctx), client_id, username, id, label);
}

/* The metrics every interval: the broker's, then a round of the
 * policies' over as many ticks as it takes; first, the copies an earlier
 * run left. */
static void tick_metrics(struct tf_engine *e, int64_t now)
{
	if (!e->stale_cleared) {
		e->stale_cleared = engine_clear_stale_metrics(&e->ctx, &e->stale_metrics);
		return;
	}
	if (!e->metrics_round && now >= e->metrics_due) {
		engine_publish_broker_metrics(&e->ctx, now, e->metrics_interval_s);
		tf_metrics_round_start(e->ctx.metrics);
		e->metrics_round = true;
	}
	if (e->metrics_round && engine_publish_policy_metrics(&e->ctx, now, e->metrics_interval_s)) {
		e->metrics_round = false;
		e->metrics_due = now + (int64_t)e->metrics_interval_s * 1000;
	}
}

void tf_engine_tick(struct tf_engine *e)
{
	int64_t now = engine_now_ms(&e->ctx);

	connection_accepted(e);
	/* Sessions that came back since the last tick have been checked
	 * (mosquitto does it while it accepts the connection). */
	if (tf_queued_any_resumed(e->queued))
		tf_queued_settle(e->queued, still_connected, e->ctx.trace ? record_dropped : NULL, e);

	finish_background_reload(e);
	tf_retained_expire(e->ctx.retained, now, e->ctx.hooks.clear_retained, e->ctx.hooks.ctx);
	tf_msgtrack_sweep(e->track, now, SWEEP_BUDGET);
	tf_qos2track_expire(e->qos2, now);
	engine_alerts_tick(&e->ctx);
	engine_trace_tick(&e->ctx);
	if (e->metrics_interval_s > 0)
		tick_metrics(e, now);
}
