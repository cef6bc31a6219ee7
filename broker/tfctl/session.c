#include "config.h"

#include "broker/tfctl/session.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <mqtt_protocol.h>

#include "broker/util/number.h"
#include "broker/tfctl/tfctl.h"

struct running {
	const struct tfctl_session *s;
	int connect_rc;        /* -1 until the broker answers */
	int subscribed;        /* SUBACKs so far */
};

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
		const mosquitto_property *props)
{
	struct running *r = obj;

	(void)flags;
	(void)props;
	r->connect_rc = rc;
	if (rc != 0) {
		fprintf(stderr, "tfctl: the broker refused the connection: %s\n",
			mosquitto_reason_string(rc));
		mosquitto_disconnect(mosq);
		return;
	}
	/* One SUBSCRIBE per topic, so that each gets its own SUBACK. */
	for (int i = 0; i < r->s->n_topics; i++)
		mosquitto_subscribe_v5(mosq, NULL, r->s->topics[i], 1, 0, NULL);
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int qos_count,
		const int *granted_qos, const mosquitto_property *props)
{
	struct running *r = obj;

	(void)mid;
	(void)props;
	if (r->s->on_subscribed != NULL)
		r->s->on_subscribed(mosq, r->s->ctx, r->subscribed,
			qos_count >= 1 && granted_qos[0] < 0x80);
	r->subscribed++;
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg,
		const mosquitto_property *props)
{
	struct running *r = obj;

	if (r->s->on_message != NULL)
		r->s->on_message(mosq, r->s->ctx, msg, props);
}

int tfctl_session_run(const struct tfctl_session *s)
{
	struct running r = { s, -1, 0 };
	struct mosquitto *mosq;
	int rc = TFCTL_USAGE;

	mosquitto_lib_init();
	mosq = mosquitto_new(NULL, true, &r);
	if (mosq == NULL) {
		fputs("tfctl: out of memory\n", stderr);
		mosquitto_lib_cleanup();
		return TFCTL_USAGE;
	}
	mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
	mosquitto_connect_v5_callback_set(mosq, on_connect);
	mosquitto_subscribe_v5_callback_set(mosq, on_subscribe);
	mosquitto_message_v5_callback_set(mosq, on_message);
	if (s->username != NULL)
		mosquitto_username_pw_set(mosq, s->username, s->password);
	if (mosquitto_connect(mosq, s->host, (int)s->port, 60) != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "tfctl: cannot connect to %s:%ld: %s\n", s->host, s->port,
			strerror(errno));
	} else {
		mosquitto_loop_forever(mosq, -1, 1);
		if (r.connect_rc == 0)
			rc = TFCTL_OK;
	}
	mosquitto_destroy(mosq);
	mosquitto_lib_cleanup();
	return rc;
}

bool tfctl_session_option(struct tfctl_session *s, const char *opt, const char *val)
{
	if (strcmp(opt, "--host") == 0)
		s->host = val;
	else if (strcmp(opt, "--username") == 0)
		s->username = val;
	else if (strcmp(opt, "--password") == 0)
		s->password = val;
	else if (strcmp(opt, "--port") == 0)
		return tf_parse_long(val, 1, 65535, &s->port);
	else
		return false;
	return true;
}
