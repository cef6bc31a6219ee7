"""Quarantine, reroute and disconnect on a real broker: a held message
reaches no subscriber, the whole flow is held, nothing held is lost across
a restart, a release delivers every held message once, in order, with a
stamp that verifies, a discard removes them; a rerouted message arrives on
its new topic stamped for it; a publisher that must be disconnected is."""

import json
import queue

import harness
from harness import publish_v5

verify = harness.stamp_verifier()

WATER_TOPIC = "city/water/d7/telemetry"
AIR_TOPIC = "city/air/s1"
REJECTED = "ops/rejected/air"
IDENTITIES = {
    "trustflow_identities": 1,
    "organizations": {"city-waterworks": {}, "research-lab": {}, "city-it": {}},
    "clients": {
        "ww-sensor-01": {"org": "city-waterworks", "roles": ["sensor"]},
        "ww-sensor-02": {"org": "city-waterworks", "roles": ["sensor"]},
        "ww-operator": {"org": "city-waterworks"},
        "lab-sensor": {"org": "research-lab", "roles": ["sensor"]},
        "lab-analyst": {"org": "research-lab"},
        "tf-admin": {"org": "city-it", "roles": ["trustflow-admin"]},
        "lab-steward": {"org": "research-lab", "roles": ["data-steward"]},
    },
}
SCHEMA = {"type": "object", "properties": {"flow": {"type": "number"}}, "required": ["flow"]}
WATER = {
    "trustflow_policy": 1, "id": "water-telemetry", "version": 3, "owner": "city-waterworks",
    "topics": ["city/water/+/telemetry"], "publishers": {"roles": ["sensor"]},
    "schema": SCHEMA, "on_violation": {"action": "quarantine"},
}
AIR = {
    "trustflow_policy": 1, "id": "air-quality", "version": 1, "owner": "research-lab",
    "topics": ["city/air/+"], "publishers": {"orgs": ["research-lab"]},
    "schema": SCHEMA, "on_violation": {"action": "reroute", "reroute_to": REJECTED},
}
REJECTS = {
    "trustflow_policy": 1, "id": "air-rejects", "version": 1, "owner": "research-lab",
    "topics": ["ops/rejected/#"], "publishers": {"orgs": ["research-lab"]},
}
PASSWORDS = {name: "demo" for name in IDENTITIES["clients"]}
NO_SUBSCRIBERS = 16


class QuarantineTest(harness.BrokerTestCase):
    def setUp(self):
        self.broker = self.start_broker(
            identities=IDENTITIES, passwords=PASSWORDS,
            policies={"water.json": WATER, "air.json": AIR, "rejects.json": REJECTS})

    def login(self, username):
        return self.client(self.broker, f"c-{username}-{harness.time.monotonic_ns()}",
                           username=username, password="demo")

    def ask(self, username, *commands):
        admin = self.login(username)
        self.assertEqual(admin.subscribe("$CONTROL/trustflow/v1/response"), 1)
        admin.publish("$CONTROL/trustflow/v1", json.dumps({"commands": list(commands)}))
        answer = json.loads(admin.receive().payload)["responses"]
        admin.close()
        return answer

    def keys(self, client):
        client.subscribe("$trustflow/keys/#")
        kid, key = verify.load_key(client.receive().payload)
        return {kid: key}

    def publish(self, username, payload, topic=WATER_TOPIC):
        return publish_v5(self.broker, username, topic, payload)

    def test_a_quarantined_flow_is_held_across_a_restart_and_released_in_order(self):
        operator = self.login("ww-operator")
        operator.subscribe(WATER_TOPIC)
        self.assertLess(self.publish("ww-sensor-01", '{"flow": 1}'), 0x80)
        # The violation holds the message, and the rest of the flow with
        # it. The publisher is not refused: the message went to no one.
        held = ['{"flow": "high"}', '{"flow": 2}', '{"flow": 3}']
        for payload in held:
            self.assertEqual(self.publish("ww-sensor-01", payload), NO_SUBSCRIBERS)
        # Another sensor's flow goes on; it also shows what reached the
        # operator before it.
        self.assertLess(self.publish("ww-sensor-02", '{"flow": 9}'), 0x80)
        got = [m.payload.decode() for m in operator.receive_until(WATER_TOPIC)]
        got += [operator.receive().payload.decode()] if len(got) == 1 else []
        self.assertEqual(got, ['{"flow": 1}', '{"flow": 9}'])
        operator.close()

        (listed,) = self.ask("tf-admin", {"command": "listQuarantine"})
        (flow,) = listed["data"]["flows"]
        self.assertEqual((flow["flow"], flow["policy"], flow["client"], flow["held"]),
                         ("water-telemetry/ww-sensor-01", "water-telemetry@3", "ww-sensor-01", 3))

        self.broker.stop()
        self.broker.start()
        (listed,) = self.ask("tf-admin", {"command": "listQuarantine"})
        self.assertEqual([(f["flow"], f["held"]) for f in listed["data"]["flows"]],
                         [("water-telemetry/ww-sensor-01", 3)])

        operator = self.login("ww-operator")
        keys = self.keys(operator)
        operator.subscribe(WATER_TOPIC)
        # The first breaks the schema: only an override releases it.
        (released,) = self.ask("tf-admin", {"command": "releaseFlow", "override": True,
                                            "flow": "water-telemetry/ww-sensor-01"})
        self.assertEqual(released, {"command": "releaseFlow", "data": {
            "released": 3, "expired": 0, "kept": 0, "overridden": 1}})
        # Once each, in order, with the stamp made when it was received.
        self.assertLess(self.publish("ww-sensor-02", '{"flow": 10}'), 0x80)
        msgs = operator.receive_until(WATER_TOPIC)
        while msgs[-1].payload != b'{"flow": 10}':
            msgs.append(operator.receive())
        self.assertEqual([m.payload.decode() for m in msgs], held + ['{"flow": 10}'])
        stamps = [verify.stamp_of(m) for m in msgs[:3]]
        for m, stamp in zip(msgs, stamps):
            self.assertEqual(verify.check(stamp, m.topic, m.payload, keys), "ok")
            self.assertEqual(stamp["tf-client"], "ww-sensor-01")
        seqs = [int(s["tf-seq"]) for s in stamps]
        self.assertEqual(seqs, sorted(seqs))
        # The flow flows again, and the trace says what happened.
        (listed,) = self.ask("tf-admin", {"command": "listQuarantine"})
        self.assertEqual(listed["data"]["flows"], [])
        self.assertLess(self.publish("ww-sensor-01", '{"flow": 4}'), 0x80)
        self.assertEqual(operator.receive().payload, b'{"flow": 4}')
        (m,) = self.ask("tf-admin", {"command": "getMessage", "id": stamps[1]["tf-id"]})
        self.assertEqual(m["data"]["status"], "released")

    def trace_events(self, kind):
        out = harness.run([harness.TFCTL, "trace", "--db", self.broker.trace_dir, "export"])
        return [e for e in map(json.loads, out.stdout.splitlines()) if e["kind"] == kind]

    def test_a_plain_release_keeps_back_what_breaks_the_schema_and_override_releases_it(self):
        operator = self.login("ww-operator")
        operator.subscribe(WATER_TOPIC)
        self.assertEqual(self.publish("ww-sensor-01", '{"flow": "high"}'), NO_SUBSCRIBERS)
        self.assertEqual(self.publish("ww-sensor-01", '{"flow": 5}'), NO_SUBSCRIBERS)
        (r,) = self.ask("tf-admin", {"command": "releaseFlow",
                                     "flow": "water-telemetry/ww-sensor-01"})
        self.assertEqual(r["data"], {"released": 1, "expired": 0, "kept": 1, "overridden": 0})
        # The one that breaks the schema stays held, and so does the flow.
        self.assertEqual(operator.receive().payload, b'{"flow": 5}')
        (listed,) = self.ask("tf-admin", {"command": "listQuarantine"})
        self.assertEqual([(f["flow"], f["held"]) for f in listed["data"]["flows"]],
                         [("water-telemetry/ww-sensor-01", 1)])
        self.assertEqual(self.publish("ww-sensor-01", '{"flow": 6}'), NO_SUBSCRIBERS)

        conn = ["--port", str(self.broker.port), "--username", "tf-admin", "--password", "demo"]
        out = harness.run([harness.TFCTL, "quarantine", "release", "water-telemetry/ww-sensor-01",
                           "--override"] + conn)
        self.assertEqual(json.loads(out.stdout),
                         {"released": 2, "expired": 0, "kept": 0, "overridden": 1})
        got = [operator.receive(), operator.receive()]
        self.assertEqual([m.payload for m in got], [b'{"flow": "high"}', b'{"flow": 6}'])
        # The trace says who overrode which rule.
        stamp = verify.stamp_of(got[0])
        (m,) = self.ask("tf-admin", {"command": "getMessage", "id": stamp["tf-id"]})
        self.assertEqual((m["data"]["status"], m["data"]["by"]), ("released", "tf-admin"))
        self.assertTrue(m["data"]["reason"].startswith(
            "override: schema-violation under water-telemetry@3"), m["data"]["reason"])
        releases = {e["id"]: e for e in self.trace_events("release")}
        self.assertEqual(releases[stamp["tf-id"]]["by"], "tf-admin")
        self.assertEqual(releases[verify.stamp_of(got[1])["tf-id"]]["reason"], "")
        (listed,) = self.ask("tf-admin", {"command": "listQuarantine"})
        self.assertEqual(listed["data"]["flows"], [])

    def test_a_release_discards_what_is_past_its_retention(self):
        self.broker.write_policy("water.json", dict(WATER, version=4, retention_seconds=2))
        self.broker.reload()
        operator = self.login("ww-operator")
        operator.subscribe(WATER_TOPIC)
        self.assertEqual(self.publish("ww-sensor-01", '{"flow": "high"}'), NO_SUBSCRIBERS)
        self.assertEqual(self.publish("ww-sensor-01", '{"flow": 7}'), NO_SUBSCRIBERS)
        # Retention counts from when the broker received them, not from
        # the release.
        harness.time.sleep(2.5)
        self.assertEqual(self.publish("ww-sensor-01", '{"flow": 8}'), NO_SUBSCRIBERS)
        (r,) = self.ask("tf-admin", {"command": "releaseFlow", "override": True,
                                     "flow": "water-telemetry/ww-sensor-01"})
        self.assertEqual(r["data"], {"released": 1, "expired": 2, "kept": 0, "overridden": 0})
        self.assertEqual(self.publish("ww-sensor-02", '{"flow": 9}'), 0)
        got = [m.payload for m in operator.receive_until(WATER_TOPIC)]
        while got[-1] != b'{"flow": 9}':
            got.append(operator.receive().payload)
        self.assertEqual(got, [b'{"flow": 8}', b'{"flow": 9}'])
        discards = self.trace_events("discard")
        self.assertEqual(len(discards), 2)
        for event in discards:
            self.assertEqual((event["flow"], event["by"]),
                             ("water-telemetry/ww-sensor-01", "tf-admin"))
            self.assertEqual(event["reason"],
                             "past its retention (water-telemetry@4: retention_seconds 2)")
            (m,) = self.ask("tf-admin", {"command": "getMessage", "id": event["id"]})
            self.assertEqual((m["data"]["status"], m["data"]["reason"]),
                             ("discarded", event["reason"]))

    def test_a_discarded_flow_reaches_no_one(self):
        operator = self.login("ww-operator")
        operator.subscribe(WATER_TOPIC)
        self.assertEqual(self.publish("ww-sensor-01", '{"flow": "x"}'), NO_SUBSCRIBERS)
        self.assertEqual(self.publish("ww-sensor-01", '{"flow": 5}'), NO_SUBSCRIBERS)
        (r,) = self.ask("tf-admin", {"command": "discardFlow",
                                     "flow": "water-telemetry/ww-sensor-01"})
        self.assertEqual(r, {"command": "discardFlow", "data": {"discarded": 2}})
        self.assertLess(self.publish("ww-sensor-01", '{"flow": 6}'), 0x80)
        self.assertEqual(operator.receive().payload, b'{"flow": 6}')
        (r,) = self.ask("tf-admin", {"command": "releaseFlow",
                                     "flow": "water-telemetry/ww-sensor-01"})
        self.assertEqual(r["error"], "no such quarantined flow")

    def test_only_the_owners_steward_may_release(self):
        self.assertEqual(self.publish("ww-sensor-01", '{"flow": "x"}'), NO_SUBSCRIBERS)
        (r,) = self.ask("lab-steward", {"command": "releaseFlow",
                                        "flow": "water-telemetry/ww-sensor-01"})
        self.assertEqual(r["error"], "not authorized")
        (r,) = self.ask("lab-steward", {"command": "discardFlow",
                                        "flow": "water-telemetry/ww-sensor-01"})
        self.assertEqual(r["error"], "not authorized")
        (r,) = self.ask("lab-steward", {"command": "listQuarantine"})
        self.assertEqual(r["data"]["flows"], [])
        # Nothing was released or discarded by the refusals.
        (r,) = self.ask("tf-admin", {"command": "listQuarantine"})
        self.assertEqual([f["held"] for f in r["data"]["flows"]], [1])

    def test_a_rerouted_message_arrives_on_its_new_topic_stamped_for_it(self):
        steward = self.login("lab-steward")
        keys = self.keys(steward)
        self.assertEqual(steward.subscribe("ops/rejected/#"), 1)
        analyst = self.login("lab-analyst")
        analyst.subscribe(AIR_TOPIC)
        self.assertLess(self.publish("lab-sensor", '{"flow": "x"}', AIR_TOPIC), 0x80)
        msg = steward.receive()
        self.assertEqual((msg.topic, msg.payload), (REJECTED, b'{"flow": "x"}'))
        stamp = verify.stamp_of(msg)
        self.assertEqual(verify.check(stamp, msg.topic, msg.payload, keys), "ok")
        # Not on its own topic.
        self.assertLess(self.publish("lab-sensor", '{"flow": 1}', AIR_TOPIC), 0x80)
        self.assertEqual(analyst.receive().payload, b'{"flow": 1}')

    def test_a_retained_rerouted_message_reaches_its_new_topics_subscribers(self):
        steward = self.login("lab-steward")
        self.assertEqual(steward.subscribe("ops/rejected/#"), 1)
        self.assertLess(publish_v5(self.broker, "lab-sensor", AIR_TOPIC, '{"flow": "y"}',
                                   retain=True), 0x80)
        self.assertEqual(steward.receive().payload, b'{"flow": "y"}')
        late = self.login("lab-steward")
        self.assertEqual(late.subscribe("ops/rejected/#"), 1)
        msg = late.receive()
        self.assertEqual((msg.topic, msg.payload, msg.retain), (REJECTED, b'{"flow": "y"}', True))


class TfctlQuarantineTest(harness.BrokerTestCase):
    def test_list_and_discard_from_the_shell(self):
        broker = self.start_broker(identities=IDENTITIES, passwords=PASSWORDS,
                                   policies={"water.json": WATER})
        conn = ["--port", str(broker.port), "--username", "tf-admin", "--password", "demo"]
        self.assertEqual(publish_v5(broker, "ww-sensor-01", WATER_TOPIC, '{"flow": "x"}'),
                         NO_SUBSCRIBERS)
        out = harness.run([harness.TFCTL, "quarantine", "list"] + conn)
        (flow,) = [json.loads(line) for line in out.stdout.splitlines()]
        self.assertEqual((flow["flow"], flow["held"]), ("water-telemetry/ww-sensor-01", 1))
        out = harness.run([harness.TFCTL, "quarantine", "discard",
                           "water-telemetry/ww-sensor-01"] + conn)
        self.assertEqual(json.loads(out.stdout), {"discarded": 1})
        again = harness.run([harness.TFCTL, "quarantine", "release",
                             "water-telemetry/ww-sensor-01"] + conn, check=False)
        self.assertEqual(again.returncode, 1)
        self.assertIn("no such quarantined flow", again.stderr)
        self.assertEqual(harness.run([harness.TFCTL, "quarantine", "list"] + conn).stdout, "")


class DisconnectTest(harness.BrokerTestCase):
    def test_a_violation_with_disconnect_drops_the_publisher(self):
        water = dict(WATER, on_violation={"action": "drop", "disconnect": True})
        broker = self.start_broker(identities=IDENTITIES, passwords=PASSWORDS,
                                   policies={"water.json": water})
        sensor = self.client(broker, "c-sensor", username="ww-sensor-01", password="demo")
        gone = queue.Queue()
        sensor.mqtt.on_disconnect = lambda *args: gone.put(True)
        sensor.mqtt.publish(WATER_TOPIC, '{"flow": "x"}', qos=1)
        self.assertTrue(gone.get(timeout=10))


if __name__ == "__main__":
    harness.main()
