"""The anomaly guard on a real broker, one detector at a time: the alert
arrives on $trustflow/alerts/<policy>, and the policy's action happens (a
finding follows on_anomaly, delivered by default, or dropped or held; a
probing client is blocked; a leak follows on_violation and names its
suspects)."""

import json
import time

import harness
from harness import publish_v5

TOPIC = "city/water/d7/telemetry"
NOTES = "maint/notes"
IDENTITIES = {
    "trustflow_identities": 1,
    "organizations": {"city-waterworks": {}, "maint-co": {}, "city-it": {}, "rival-co": {}},
    "clients": {
        "ww-sensor-01": {"org": "city-waterworks", "roles": ["sensor"]},
        "ww-operator": {"org": "city-waterworks"},
        "maint-app": {"org": "maint-co"},
        "maint-viewer": {"org": "maint-co"},
        "maint-bot": {"org": "maint-co"},
        "rival-app": {"org": "rival-co"},
        "tf-admin": {"org": "city-it", "roles": ["trustflow-admin"]},
    },
}
WATER = {
    "trustflow_policy": 1, "id": "water-telemetry", "version": 3, "owner": "city-waterworks",
    "topics": ["city/water/+/telemetry"], "publishers": {"roles": ["sensor"]},
    "consumers": [{"orgs": ["maint-co"]}], "forwarding": "deny",
}
MAINT = {
    "trustflow_policy": 1, "id": "maint-notes", "version": 1, "owner": "maint-co",
    "topics": ["maint/#"],
}
RIVAL = {
    "trustflow_policy": 1, "id": "rival-data", "version": 1, "owner": "rival-co",
    "topics": ["rival/#"],
}
PASSWORDS = {name: "demo" for name in IDENTITIES["clients"]}
NOT_AUTHORIZED = 135


class GuardTest(harness.BrokerTestCase):
    def start(self, water=WATER, **options):
        self.broker = self.start_broker(identities=IDENTITIES, passwords=PASSWORDS,
                                        policies={"water.json": water, "maint.json": MAINT,
                                                  "rival.json": RIVAL},
                                        plugin_options=options)
        self.admin = self.client(self.broker, "c-admin", username="tf-admin", password="demo")
        self.assertEqual(self.admin.subscribe("$trustflow/alerts/#"), 1)

    def login(self, username):
        return self.client(self.broker, f"c-{username}", username=username, password="demo")

    def alert(self, kind):
        """The next alert of kind (others are skipped)."""
        while True:
            msg = self.admin.receive()
            alert = json.loads(msg.payload)
            if alert["kind"] == kind:
                return msg.topic, alert

    def alerts_until(self, kind):
        """The alerts up to and including the next one of kind."""
        got = []
        while not got or got[-1]["kind"] != kind:
            got.append(json.loads(self.admin.receive().payload))
        return got

    def sentinel_alert(self):
        """Raises a denied-publish alert on water-telemetry: the alerts
        before it are all the guard raised until now."""
        self.assertEqual(publish_v5(self.broker, "maint-app", TOPIC, '{"flow": 0}'),
                         NOT_AUTHORIZED)
        return self.alerts_until("denied-publish")[:-1]

    def warm_up(self, sensor, seconds):
        """One reading a second: the flow's usual rate."""
        for i in range(seconds):
            if i:
                time.sleep(1)
            sensor.publish(TOPIC, json.dumps({"flow": i, "warm": True}), qos=1)

    def test_a_flow_far_above_its_usual_rate_is_flagged_and_held(self):
        # on_anomaly, not on_violation, decides what happens to a finding.
        self.start(dict(WATER, on_violation={"action": "drop"},
                        on_anomaly={"action": "quarantine"}),
                   guard_rate_factor="5", guard_rate_min="10", guard_rate_warmup_s="2")
        sensor = self.login("ww-sensor-01")
        self.warm_up(sensor, 4)
        time.sleep(1)
        for i in range(40):                    # then a flood
            sensor.mqtt.publish(TOPIC, json.dumps({"flood": i}), qos=0)
        topic, alert = self.alert("rate-anomaly")
        self.assertEqual(topic, "$trustflow/alerts/water-telemetry")
        self.assertEqual((alert["policy"], alert["client"], alert["action"]),
                         ("water-telemetry@3", "ww-sensor-01", "quarantine"))
        self.assertIn("in this second", alert["detail"])
        # The flood is held, with the rest of the flow.
        self.admin.subscribe("$CONTROL/trustflow/v1/response")
        self.admin.publish("$CONTROL/trustflow/v1",
                           json.dumps({"commands": [{"command": "listQuarantine"}]}))
        while True:
            msg = self.admin.receive()
            if msg.topic == "$CONTROL/trustflow/v1/response":
                break
        (flow,) = json.loads(msg.payload)["responses"][0]["data"]["flows"]
        self.assertEqual(flow["flow"], "water-telemetry/ww-sensor-01")
        self.assertGreater(flow["held"], 0)

    def test_a_rate_anomaly_without_on_anomaly_is_delivered_and_alerted(self):
        self.start(guard_rate_factor="5", guard_rate_min="10", guard_rate_warmup_s="2")
        operator = self.login("ww-operator")
        self.assertEqual(operator.subscribe(TOPIC), 1)
        sensor = self.login("ww-sensor-01")
        self.warm_up(sensor, 3)
        time.sleep(1)
        flood = [sensor.mqtt.publish(TOPIC, json.dumps({"flood": i}), qos=1)
                 for i in range(40)]
        for info in flood:
            info.wait_for_publish(timeout=10)
        _topic, alert = self.alert("rate-anomaly")
        self.assertEqual((alert["client"], alert["action"]), ("ww-sensor-01", "alert"))
        # Nothing is lost: every reading and the whole flood arrive.
        got = [json.loads(operator.receive().payload) for _ in range(43)]
        self.assertEqual([m["flood"] for m in got if "flood" in m], list(range(40)))

    def test_a_backlog_after_a_reconnect_is_not_a_rate_anomaly(self):
        # Even under on_anomaly drop, a meter catching up loses nothing.
        self.start(dict(WATER, on_anomaly={"action": "drop"}), guard_rate_factor="2",
                   guard_rate_min="3", guard_rate_warmup_s="1")
        operator = self.login("ww-operator")
        self.assertEqual(operator.subscribe(TOPIC), 1)
        sensor = self.login("ww-sensor-01")
        self.warm_up(sensor, 3)
        sensor.close()
        time.sleep(4)                          # away: it stores its readings
        sensor = self.login("ww-sensor-01")
        stored = [{"flow": 10 + i, "stored": True} for i in range(5)]
        for reading in stored:
            sensor.publish(TOPIC, json.dumps(reading), qos=1)
        self.assertEqual([a["kind"] for a in self.sentinel_alert()], [])
        got = [json.loads(operator.receive().payload) for _ in range(3 + len(stored))]
        self.assertEqual([m for m in got if "stored" in m], stored)

    def test_a_payload_far_outside_the_usual_size_is_dropped(self):
        self.start(dict(WATER, on_anomaly={"action": "drop"}))
        sensor = self.login("ww-sensor-01")
        for i in range(60):
            sensor.publish(TOPIC, json.dumps({"flow": i % 10}), qos=1)
        big = json.dumps({"flow": 1, "pad": "x" * 2000})
        self.assertEqual(publish_v5(self.broker, "ww-sensor-01", TOPIC, big), NOT_AUTHORIZED)
        _topic, alert = self.alert("size-anomaly")
        self.assertEqual((alert["client"], alert["action"]), ("ww-sensor-01", "drop"))
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", TOPIC, '{"flow": 3}'), 0x80)

    def test_the_same_payload_again_is_a_replay(self):
        self.start(guard_replay_window_s="60")
        operator = self.login("ww-operator")
        self.assertEqual(operator.subscribe(TOPIC), 1)
        reading = '{"flow": 12.5, "ts": 1764158400000}'
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", TOPIC, reading), 0x80)
        # Without on_anomaly, a replay is delivered and alerted.
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", TOPIC, reading), 0x80)
        _topic, alert = self.alert("replay")
        self.assertEqual((alert["client"], alert["action"]), ("ww-sensor-01", "alert"))
        self.assertEqual([operator.receive().payload.decode() for _ in range(2)],
                         [reading, reading])

    def test_a_client_probing_for_what_it_may_not_do_is_blocked(self):
        self.start(guard_denied_burst="5", guard_denied_window_s="60", guard_block_s="600")
        for i in range(5):
            self.assertEqual(publish_v5(self.broker, "maint-app", TOPIC, '{"flow": 1}'),
                             NOT_AUTHORIZED)
        topic, alert = self.alert("denied-burst")
        self.assertEqual(topic, "$trustflow/alerts/-")
        self.assertEqual((alert["client"], alert["org"], alert["action"]),
                         ("maint-app", "maint-co", "block"))
        # Blocked: even what it may do is refused now.
        self.assertEqual(publish_v5(self.broker, "maint-app", NOTES, "hello"), NOT_AUTHORIZED)
        self.assertEqual(self.login("maint-app").subscribe(TOPIC), 0x87)

    def test_private_data_published_again_outside_the_owner_is_a_leak(self):
        self.start()
        maint = self.login("maint-app")
        self.assertEqual(maint.subscribe(TOPIC), 1)
        reading = {"flow": 12.5, "pressure": 3.1}
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", TOPIC, json.dumps(reading)),
                        0x80)
        self.assertEqual(json.loads(maint.receive().payload), reading)
        # Neither whitespace nor key order hides it.
        again = '{ "pressure" : 3.10,\n  "flow": 12.5 }'
        self.assertEqual(publish_v5(self.broker, "maint-app", NOTES, again), NOT_AUTHORIZED)
        topic, alert = self.alert("leak")
        self.assertEqual(topic, "$trustflow/alerts/water-telemetry")
        self.assertEqual((alert["client"], alert["org"], alert["action"]),
                         ("maint-app", "maint-co", "drop"))
        self.assertIn("suspects: maint-app", alert["detail"])
        # Other data of its own is not a leak.
        self.assertLess(publish_v5(self.broker, "maint-app", NOTES, '{"pump": "ok"}'), 0x80)

    def test_equal_data_of_someone_who_never_received_it_is_no_leak(self):
        self.start()
        maint = self.login("maint-app")
        self.assertEqual(maint.subscribe(TOPIC), 1)
        reading = {"flow": 12.5, "pressure": 3.1}
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", TOPIC, json.dumps(reading)),
                        0x80)
        self.assertEqual(json.loads(maint.receive().payload), reading)
        # Neither another org nor another client of the recipient's org
        # received it: equal data of their own is theirs to publish.
        rival = self.login("rival-app")
        self.assertEqual(rival.subscribe("rival/#"), 1)
        self.assertLess(publish_v5(self.broker, "rival-app", "rival/readings",
                                   json.dumps(reading)), 0x80)
        self.assertEqual(json.loads(rival.receive().payload), reading)
        self.assertLess(publish_v5(self.broker, "maint-bot", NOTES, json.dumps(reading)), 0x80)
        self.assertEqual([a["kind"] for a in self.sentinel_alert()], [])

    def test_a_recipient_publishing_it_again_is_a_leak_with_each_suspect_once(self):
        # Forwarding is a rule: a leak follows on_violation, not on_anomaly.
        self.start(dict(WATER, on_violation={"action": "drop"},
                        on_anomaly={"action": "alert"}), trace_sync_ms="0")
        maint = self.login("maint-app")         # two subscriptions: two deliveries
        self.assertEqual(maint.subscribe(TOPIC), 1)
        self.assertEqual(maint.subscribe("city/water/#"), 1)
        viewer = self.login("maint-viewer")
        self.assertEqual(viewer.subscribe(TOPIC), 1)
        reading = {"flow": 7.25, "pressure": 2.9}
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", TOPIC, json.dumps(reading)),
                        0x80)
        for _ in range(2):
            self.assertEqual(json.loads(maint.receive().payload), reading)
        self.assertEqual(json.loads(viewer.receive().payload), reading)
        # Another message, synced with every event before it (trace_sync_ms
        # 0): the trace now holds the deliveries.
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", TOPIC, '{"flow": 1}'), 0x80)
        self.assertEqual(publish_v5(self.broker, "maint-viewer", NOTES, json.dumps(reading)),
                         NOT_AUTHORIZED)
        _topic, alert = self.alert("leak")
        self.assertEqual((alert["client"], alert["org"], alert["action"]),
                         ("maint-viewer", "maint-co", "drop"))
        suspects = alert["detail"].split("suspects: ", 1)[1].split(", ")
        self.assertEqual(suspects, ["maint-viewer", "maint-app"])

    def test_the_owner_cannot_block_a_competitor_by_publishing_first(self):
        self.start()
        # The owner publishes what it expects maint-co to send; maint-co's
        # client has not subscribed and receives nothing.
        expected = {"pump": "p-17", "status": "serviced"}
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", TOPIC, json.dumps(expected)),
                        0x80)
        notes = self.login("maint-viewer")
        self.assertEqual(notes.subscribe(NOTES), 1)
        self.assertLess(publish_v5(self.broker, "maint-app", NOTES, json.dumps(expected)),
                        0x80)
        self.assertEqual(json.loads(notes.receive().payload), expected)
        self.assertEqual([a["kind"] for a in self.sentinel_alert()], [])


if __name__ == "__main__":
    harness.main()
