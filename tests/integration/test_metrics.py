"""The metrics on a real broker: $trustflow/metrics for administrators,
$trustflow/metrics/<policy id> for them and the policy owner's data
stewards, counting what was sent; a policy gone takes its copy with it;
and the control API's impactReport, a steward's for its own alerts only."""

import json
import os
import signal
import subprocess
import time

import harness
from harness import publish_v5

WATER_TOPIC = "city/water/d7/telemetry"
AIR_TOPIC = "city/air/s1"
IDENTITIES = {
    "trustflow_identities": 1,
    "organizations": {"city-waterworks": {}, "maint-co": {}, "research-lab": {}, "city-it": {}},
    "clients": {
        "ww-sensor-01": {"org": "city-waterworks", "roles": ["sensor"]},
        "maint-app": {"org": "maint-co"},
        "lab-sensor": {"org": "research-lab", "roles": ["sensor"]},
        "lab-analyst": {"org": "research-lab"},
        "tf-admin": {"org": "city-it", "roles": ["trustflow-admin"]},
        "ww-steward": {"org": "city-waterworks", "roles": ["data-steward"]},
        "lab-steward": {"org": "research-lab", "roles": ["data-steward"]},
    },
}
SCHEMA = {"type": "object", "properties": {"flow": {"type": "number"}}, "required": ["flow"]}
WATER = {
    "trustflow_policy": 1, "id": "water-telemetry", "version": 2, "owner": "city-waterworks",
    "topics": ["city/water/+/telemetry"], "publishers": {"roles": ["sensor"]},
    "consumers": [{"orgs": ["maint-co"]}],
    "schema": SCHEMA, "on_violation": {"action": "quarantine"},
}
AIR = {
    "trustflow_policy": 1, "id": "air-quality", "version": 1, "owner": "research-lab",
    "topics": ["city/air/+"], "publishers": {"orgs": ["research-lab"]},
}
PASSWORDS = {name: "demo" for name in IDENTITIES["clients"]}
METRICS = "$trustflow/metrics"
WATER_METRICS = METRICS + "/water-telemetry"
AIR_METRICS = METRICS + "/air-quality"
NOT_AUTHORIZED = 0x87
ACCEPTED = (0, 16)  # PUBACK: success, or success with no subscribers


class MetricsTest(harness.BrokerTestCase):
    def setUp(self):
        self.broker = self.start_broker(
            identities=IDENTITIES, passwords=PASSWORDS,
            policies={"water.json": WATER, "air.json": AIR},
            plugin_options={"metrics_interval_s": "1"})

    def login(self, username):
        return self.client(self.broker, f"c-{username}-{time.monotonic_ns()}",
                           username=username, password="demo")

    def reader(self, username, topic_filter="$trustflow/metrics/#"):
        client = self.login(username)
        self.assertEqual(client.subscribe(topic_filter), 1)
        return client

    def topics_seen(self, client, seconds=2.5):
        """The topics of what client receives in a few metrics intervals
        (retained copies come at once, then one per interval)."""
        seen = set()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                seen.add(client.messages.get(timeout=0.1).topic)
            except harness.queue.Empty:
                pass
        return seen

    def metrics_until(self, client, topic, done, timeout=10):
        """The first metrics on topic for which done(metrics) is true."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            msg = client.receive()
            if msg.topic == topic:
                last = json.loads(msg.payload)
                if done(last):
                    return last
        raise AssertionError(f"metrics on {topic} never got there; last: {last}")

    def ask(self, username, *commands):
        client = self.login(username)
        self.assertEqual(client.subscribe("$CONTROL/trustflow/v1/response"), 1)
        client.publish("$CONTROL/trustflow/v1", json.dumps({"commands": list(commands)}))
        answer = json.loads(client.receive().payload)["responses"]
        client.close()
        return answer

    def test_counters_follow_the_traffic(self):
        consumer = self.login("maint-app")
        consumer.subscribe("city/water/#")
        for i in range(5):
            self.assertEqual(publish_v5(self.broker, "ww-sensor-01", WATER_TOPIC,
                                        json.dumps({"flow": i})), 0)
        # Another org's sensor may not publish there.
        self.assertEqual(publish_v5(self.broker, "lab-sensor", WATER_TOPIC, '{"flow": 1}'),
                         NOT_AUTHORIZED)
        for _ in range(5):
            consumer.receive()

        admin = self.reader("tf-admin", "$trustflow/#")
        water = self.metrics_until(admin, WATER_METRICS,
                                   lambda m: m["messages"]["delivered"] == 5)
        self.assertEqual(water["policy"], "water-telemetry")
        self.assertEqual(water["version"], 2)
        self.assertEqual(water["owner"], "city-waterworks")
        self.assertEqual(water["messages"]["stamped"], 5)
        self.assertEqual(water["messages"]["refused"], {"denied": 1})
        self.assertEqual(water["alerts"], {"denied-publish": 1})
        minute = water["last_minute"]
        self.assertEqual(minute["messages"], 5)
        self.assertEqual(minute["deliveries"], 5)
        self.assertEqual(minute["clients"],
                         [{"client": "maint-app", "org": "maint-co", "deliveries": 5}])
        self.assertEqual(minute["orgs"], [{"org": "maint-co", "deliveries": 5}])
        self.assertEqual(water["last_hour"]["deliveries"], 5)

        whole = self.metrics_until(admin, METRICS, lambda m: m["messages"]["stamped"] >= 5)
        self.assertEqual(whole["broker"], "trustflow")
        self.assertEqual(whole["interval_s"], 1)
        self.assertGreaterEqual(whole["messages"]["refused"]["denied"], 1)
        self.assertGreater(whole["trace"]["events"], 0)
        self.assertFalse(whole["trace"]["failing"])
        self.assertGreater(whole["signer"]["pool_size"], 0)
        self.assertEqual(whole["signer"]["pooled"] + whole["signer"]["fallbacks"] > 0, True)

    def traffic_on_both(self):
        """A policy's metrics come with its first traffic."""
        self.assertIn(publish_v5(self.broker, "ww-sensor-01", WATER_TOPIC, '{"flow": 1}'),
                      ACCEPTED)
        self.assertIn(publish_v5(self.broker, "lab-sensor", AIR_TOPIC, '{"flow": 1}'), ACCEPTED)

    def test_each_reads_only_what_is_theirs(self):
        self.traffic_on_both()
        # "#" takes in the level above it: $trustflow/metrics too.
        admin = self.reader("tf-admin", "$trustflow/metrics/#")
        self.assertEqual(self.topics_seen(admin), {METRICS, WATER_METRICS, AIR_METRICS})
        ww = self.reader("ww-steward")
        self.assertEqual(self.topics_seen(ww), {WATER_METRICS})
        lab = self.reader("lab-steward", "$trustflow/#")
        self.assertEqual({t for t in self.topics_seen(lab) if t.startswith(METRICS)},
                         {AIR_METRICS})
        # The broker-wide metrics are the administrators'.
        self.assertEqual(lab.subscribe(METRICS), NOT_AUTHORIZED)
        # Neither an anonymous client, nor one without a role, reads any.
        anonymous = self.client(self.broker, "c-anonymous")
        self.assertEqual(anonymous.subscribe("$trustflow/metrics/#"), NOT_AUTHORIZED)
        self.assertEqual(anonymous.subscribe(METRICS), NOT_AUTHORIZED)
        analyst = self.login("lab-analyst")
        self.assertEqual(analyst.subscribe("$trustflow/metrics/#"), NOT_AUTHORIZED)
        self.assertEqual(analyst.subscribe(AIR_METRICS), NOT_AUTHORIZED)
        # No one but the broker publishes metrics.
        self.assertEqual(publish_v5(self.broker, "tf-admin", WATER_METRICS, "{}", retain=True),
                         NOT_AUTHORIZED)

    def test_a_will_cannot_forge_metrics(self):
        # A steward's client leaves a retained will on its policy's
        # metrics topic and dies: mosquitto would publish it; the broker
        # refuses it as it refuses any client's publish under $trustflow/.
        self.traffic_on_both()
        will = subprocess.Popen(
            [harness.MOSQUITTO_SUB, "-h", "127.0.0.1", "-p", str(self.broker.port), "-V", "5",
             "-u", "ww-steward", "-P", "demo", "-i", "steward-with-will",
             "-t", WATER_METRICS, "--will-topic", WATER_METRICS,
             "--will-payload", '{"forged": true}', "--will-qos", "1", "--will-retain"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        will.stdout.readline()                  # connected: it got the retained copy
        will.send_signal(signal.SIGKILL)
        will.communicate()
        harness.wait_for("the will handled", lambda: "Client steward-with-will closed its "
                         "connection" in self.broker.log())
        reader = self.reader("ww-steward")
        payloads = []
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            try:
                payloads.append(json.loads(reader.messages.get(timeout=0.1).payload))
            except harness.queue.Empty:
                pass
        self.assertTrue(payloads)
        self.assertTrue(all(p.get("policy") == "water-telemetry" for p in payloads), payloads)

    def test_quarantine_and_release_are_counted(self):
        self.assertIn(publish_v5(self.broker, "ww-sensor-01", WATER_TOPIC,
                                 '{"flow": "high"}'), ACCEPTED)
        self.assertIn(publish_v5(self.broker, "ww-sensor-01", WATER_TOPIC, '{"flow": 2}'),
                      ACCEPTED)
        (r,) = self.ask("ww-steward", {"command": "releaseFlow",
                                       "flow": "water-telemetry/ww-sensor-01",
                                       "override": True})
        self.assertEqual(r["data"]["released"], 2)
        ww = self.reader("ww-steward")
        water = self.metrics_until(ww, WATER_METRICS, lambda m: m["messages"]["released"] == 2)
        self.assertEqual(water["messages"]["quarantined"], 2)
        self.assertEqual(water["messages"]["stamped"], 2)
        self.assertEqual(water["alerts"], {"schema-violation": 1})

    def test_a_policy_gone_takes_its_metrics_along(self):
        self.traffic_on_both()
        admin = self.reader("tf-admin")
        self.assertIn(AIR_METRICS, self.topics_seen(admin))
        admin.close()
        os.remove(os.path.join(self.broker.policy_dir, "air.json"))
        self.broker.reload()
        harness.wait_for("the air policy's metrics gone",
                         self.new_reader_sees({METRICS, WATER_METRICS}))

    def new_reader_sees(self, topics):
        """A probe for wait_for: the metrics topics a new administrator's
        subscription brings, when they are topics."""
        def probe():
            reader = self.reader("tf-admin")
            seen = self.topics_seen(reader, seconds=1.5)
            reader.close()
            return seen == topics
        return probe

    def test_a_restart_leaves_no_copy_of_the_last_run(self):
        store = harness.tempfile.mkdtemp(prefix="tf-store-")
        self.addCleanup(harness.shutil.rmtree, store, True)
        self.broker.stop()
        broker = self.start_broker(identities=IDENTITIES, passwords=PASSWORDS,
                                   policies={"water.json": WATER, "air.json": AIR},
                                   plugin_options={"metrics_interval_s": "1"},
                                   extra_conf=f"persistence true\npersistence_location {store}/\n")
        self.broker = broker
        self.traffic_on_both()
        harness.wait_for("both policies' copies",
                         self.new_reader_sees({METRICS, WATER_METRICS, AIR_METRICS}))
        broker.stop()
        broker.start()
        # mosquitto kept the retained copies; the broker removes them, for
        # they count what no longer is.
        harness.wait_for("the copies of the last run gone", self.new_reader_sees({METRICS}))
        self.assertIn(publish_v5(broker, "lab-sensor", AIR_TOPIC, '{"flow": 1}'), ACCEPTED)
        harness.wait_for("the air policy counted anew",
                         self.new_reader_sees({METRICS, AIR_METRICS}))

    def test_impact_report_for_the_owner_only(self):
        self.assertIn(publish_v5(self.broker, "ww-sensor-01", WATER_TOPIC,
                                 '{"flow": "high"}'), ACCEPTED)
        (r,) = self.ask("ww-steward", {"command": "listAlerts"})
        (alert,) = r["data"]["alerts"]
        alert_id = alert["id"]
        (r,) = harness.wait_for("the alert in the trace", lambda: [
            x for x in self.ask("ww-steward", {"command": "impactReport", "alert": alert_id,
                                               "window": 600})
            if "data" in x])
        self.assertEqual(r["data"]["alert"]["id"], alert_id)
        self.assertEqual(r["data"]["alert"]["kind"], "schema-violation")
        self.assertIn("recipients", r["data"])
        (r,) = self.ask("lab-steward", {"command": "impactReport", "alert": alert_id})
        self.assertEqual(r["error"], "not authorized")
        (r,) = self.ask("tf-admin", {"command": "impactReport", "alert": alert_id})
        self.assertEqual(r["data"]["alert"]["id"], alert_id)
        (r,) = self.ask("tf-admin", {"command": "impactReport", "alert": "0" * 32})
        self.assertEqual(r["error"], "no such alert")
        (r,) = self.ask("tf-admin", {"command": "impactReport", "alert": alert_id,
                                     "window": 0})
        self.assertIn("window", r["error"])
        (r,) = self.ask("tf-admin", {"command": "impactReport"})
        self.assertIn("alert", r["error"])


if __name__ == "__main__":
    harness.main()
