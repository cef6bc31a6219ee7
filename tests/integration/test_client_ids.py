"""Client ids on a real broker: each belongs to one identity. A client
without a username cannot pass for a user by taking its name as client id,
another identity cannot take over a session (connected or persistent,
also after a restart), a user keeps to the client ids the identities file
declares for it, a refused password binds nothing, and a reload that
reserves a client id disconnects the client holding it."""

import queue

import harness
from harness import publish_v5

import paho.mqtt.client as paho

TOPIC = "city/water/d7/telemetry"
SENTINEL = "city/water/d0/telemetry"
IDENTITIES = {
    "trustflow_identities": 1,
    "organizations": {"city-waterworks": {}, "maint-co": {}, "other-co": {}},
    "clients": {
        "ww-sensor-01": {"org": "city-waterworks", "roles": ["sensor"]},
        "ww-operator": {"org": "city-waterworks"},
        "maint-app": {"org": "maint-co"},
        "snoop": {"org": "other-co"},
    },
}
WATER = {
    "trustflow_policy": 1, "id": "water-telemetry", "version": 1, "owner": "city-waterworks",
    "topics": ["city/water/+/telemetry"], "publishers": {"roles": ["sensor"]},
    "consumers": [{"orgs": ["maint-co"]}],
}
DECLARED = dict(IDENTITIES, clients=dict(IDENTITIES["clients"], **{
    "maint-app": {"org": "maint-co", "client_ids": ["maint-app-1", "maint-app-2"]}}))
PASSWORDS = dict({name: "demo" for name in IDENTITIES["clients"]}, newcomer="demo")
REFUSED = (5, 135)     # CONNACK "not authorized", MQTT 3.1.1 and 5


def connack(broker, client_id, username=None, password="demo", protocol=paho.MQTTv5):
    """The CONNACK code a client gets (0: connected; it disconnects at once)."""
    acked = queue.Queue()
    mqtt = paho.Client(client_id=client_id, protocol=protocol)
    if username is not None:
        mqtt.username_pw_set(username, password)
    mqtt.on_connect = lambda c, u, f, rc, p=None: acked.put(int(getattr(rc, "value", rc)))
    mqtt.connect("127.0.0.1", broker.port, keepalive=30)
    mqtt.loop_start()
    try:
        return acked.get(timeout=harness.CLIENT_TIMEOUT_S)
    finally:
        mqtt.disconnect()
        mqtt.loop_stop()


class ClientIdTest(harness.BrokerTestCase):
    def setUp(self):
        self.broker = self.start_broker(identities=IDENTITIES, passwords=PASSWORDS,
                                        policies={"water.json": WATER})

    def session(self, client_id, username):
        """A persistent MQTT 3.1.1 session subscribed to the readings."""
        c = self.client(self.broker, client_id, username=username, password="demo",
                        protocol=paho.MQTTv311, clean_session=False)
        self.assertEqual(c.subscribe("city/water/+/telemetry"), 1)
        return c

    def test_a_client_without_username_cannot_take_a_users_name(self):
        self.assertIn(connack(self.broker, "ww-sensor-01"), REFUSED)
        self.assertIn(connack(self.broker, "ww-sensor-01", protocol=paho.MQTTv311), REFUSED)
        # Nor can another user; the user itself can.
        self.assertIn(connack(self.broker, "ww-sensor-01", "snoop"), REFUSED)
        self.assertEqual(connack(self.broker, "ww-sensor-01", "ww-sensor-01"), 0)
        # The refusal is alerted without blaming the user whose name it is.
        log = self.broker.log()
        self.assertIn("client id ww-sensor-01 is reserved to another client", log)
        self.assertNotIn("alert client-id-refused under - by ww-sensor-01", log)

    def test_an_anonymous_burst_cannot_block_the_user(self):
        # The review's attack: an anonymous client named like the sensor
        # makes refused subscriptions until the guard blocks "it".
        self.assertIn(connack(self.broker, "ww-sensor-01"), REFUSED)
        anon = self.client(self.broker, "anon-1")
        for _ in range(25):
            self.assertGreaterEqual(anon.subscribe("city/water/#"), 0x80)
        operator = self.client(self.broker, "op", username="ww-operator", password="demo")
        operator.subscribe(TOPIC)
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", TOPIC, '{"flow": 1}'), 0x80)
        self.assertEqual(operator.receive().payload, b'{"flow": 1}')
        self.assertNotIn("by ww-sensor-01: a burst", self.broker.log())

    def test_another_identity_cannot_take_over_a_persistent_session(self):
        self.session("op-session", "ww-operator").close()
        self.assertIn(connack(self.broker, "op-session", "snoop"), REFUSED)
        self.assertIn(connack(self.broker, "op-session"), REFUSED)
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", TOPIC, '{"flow": 2}'), 0x80)
        back = self.client(self.broker, "op-session", username="ww-operator", password="demo",
                           protocol=paho.MQTTv311, clean_session=False)
        self.assertEqual(back.receive().payload, b'{"flow": 2}')

    def test_a_connected_client_is_not_pushed_off_by_another_identity(self):
        live = self.session("op-live", "ww-operator")
        self.assertIn(connack(self.broker, "op-live", "snoop"), REFUSED)
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", TOPIC, '{"flow": 3}'), 0x80)
        self.assertEqual(live.receive().payload, b'{"flow": 3}')

    def test_the_same_user_may_come_back_on_its_session(self):
        self.session("op-again", "ww-operator").close()
        self.session("op-again", "ww-operator").close()
        self.assertEqual(connack(self.broker, "op-again", "ww-operator"), 0)

    def test_declared_client_ids_are_the_users_only_ones(self):
        self.broker.write_identities(DECLARED)
        self.broker.reload()
        self.assertIn(connack(self.broker, "maint-other", "maint-app"), REFUSED)
        self.assertEqual(connack(self.broker, "maint-app-2", "maint-app"), 0)
        # Reserved to maint-app even while unused.
        self.assertIn(connack(self.broker, "maint-app-1", "snoop"), REFUSED)
        self.assertIn(connack(self.broker, "maint-app-1"), REFUSED)

    def test_a_refused_password_binds_nothing(self):
        self.assertIn(connack(self.broker, "free-id", "snoop", password="wrong"), (4, 5, 134, 135))
        self.assertEqual(connack(self.broker, "free-id", "ww-operator"), 0)

    def test_a_reload_that_reserves_a_client_id_disconnects_its_holder(self):
        anon = self.client(self.broker, "newcomer")
        gone = queue.Queue()
        anon.mqtt.on_disconnect = lambda *a: gone.put(True)
        self.broker.write_identities(dict(IDENTITIES, clients=dict(
            IDENTITIES["clients"], newcomer={"org": "maint-co"})))
        self.broker.reload()
        self.assertTrue(gone.get(timeout=harness.CLIENT_TIMEOUT_S))
        anon.mqtt.reconnect_delay_set(60, 60)     # keeps paho from coming back meanwhile
        self.assertEqual(connack(self.broker, "newcomer", "newcomer"), 0)


class ClientIdRestartTest(harness.BrokerTestCase):
    def test_a_persistent_sessions_client_id_stays_bound_across_a_restart(self):
        store = harness.tempfile.mkdtemp(prefix="tf-store-")
        self.addCleanup(harness.shutil.rmtree, store, True)
        broker = self.start_broker(identities=IDENTITIES, passwords=PASSWORDS,
                                   policies={"water.json": WATER},
                                   extra_conf=f"persistence true\npersistence_location {store}/\n")
        c = self.client(broker, "op-durable", username="ww-operator", password="demo",
                        protocol=paho.MQTTv311, clean_session=False)
        self.assertEqual(c.subscribe(TOPIC), 1)
        c.close()
        broker.stop()
        broker.start()
        self.assertIn(connack(broker, "op-durable", "snoop"), REFUSED)
        self.assertLess(publish_v5(broker, "ww-sensor-01", TOPIC, '{"flow": 4}'), 0x80)
        back = self.client(broker, "op-durable", username="ww-operator", password="demo",
                           protocol=paho.MQTTv311, clean_session=False)
        self.assertEqual(back.receive().payload, b'{"flow": 4}')


if __name__ == "__main__":
    harness.main()
