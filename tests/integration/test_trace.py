"""The trace store on a real broker, read with tfctl trace while the broker
runs: a message's publish, each delivery and each withholding; who
received a policy's data; a refused publish; looking a stamp up by payload
hash; signed checkpoints on $trustflow/checkpoints; a store that verifies;
the policy files' hashes."""

import base64
import hashlib
import json
import os
import sys
import time

import harness
from harness import TFCTL, publish_v5, run, wait_for

from cryptography.hazmat.primitives.serialization import load_pem_public_key

verify = harness.stamp_verifier()

TOPIC = "city/water/d7/telemetry"
READING = '{"flow": 12.5, "pressure": 3.1}'
IDENTITIES = {
    "trustflow_identities": 1,
    "organizations": {"city-waterworks": {}, "maint-co": {}, "research-lab": {}},
    "clients": {
        "ww-sensor-01": {"org": "city-waterworks", "roles": ["sensor"]},
        "ww-operator": {"org": "city-waterworks"},
        "maint-app": {"org": "maint-co", "roles": ["maintenance"]},
        "lab-analyst": {"org": "research-lab"},
    },
}
WATER = {
    "trustflow_policy": 1, "id": "water-telemetry", "version": 3, "owner": "city-waterworks",
    "topics": ["city/water/+/telemetry"], "publishers": {"roles": ["sensor"]},
    "consumers": [{"orgs": ["maint-co"]}],
}
# The lab may read air quality: so its subscription to city/# stands, and
# the water readings it matches are withheld from it one by one.
AIR = {
    "trustflow_policy": 1, "id": "air-quality", "version": 1, "owner": "city-waterworks",
    "topics": ["city/air/+"], "publishers": {"orgs": ["city-waterworks"]},
    "consumers": [{"orgs": ["research-lab"]}],
}
PASSWORDS = {name: "demo" for name in IDENTITIES["clients"]}


class TraceTest(harness.BrokerTestCase):
    def setUp(self):
        self.broker = self.start_broker(identities=IDENTITIES, passwords=PASSWORDS,
                                        policies={"water.json": WATER, "air.json": AIR},
                                        plugin_options={"broker_id": "city-broker-1"})

    def login(self, username, **kwargs):
        return self.client(self.broker, f"c-{username}", username=username, password="demo",
                           **kwargs)

    def trace(self, *args, check=True):
        return run([TFCTL, "trace", "--db", self.broker.trace_dir] + list(args), check=check)

    def lines(self, *args):
        return [json.loads(line) for line in self.trace(*args).stdout.splitlines()]

    def message(self, msg_id):
        return harness.trace_message(self.broker.trace_dir, msg_id)

    def publish_seen_by(self, subscriber, payload=READING):
        """Publishes a reading that subscriber receives; returns its stamp."""
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", TOPIC, payload), 0x80)
        return verify.stamp_of(subscriber.receive())

    def test_message_shows_its_publish_deliveries_and_withholdings(self):
        operator = self.login("ww-operator")
        operator.subscribe(TOPIC)
        # Subscribed to everything, but not a consumer of the policy.
        analyst = self.login("lab-analyst")
        analyst.subscribe("city/#")
        stamp = self.publish_seen_by(operator)

        def complete():
            m = self.message(stamp["tf-id"])
            return m if m and m["deliveries"] and m["withheld"] else None
        m = wait_for("the deliveries in the trace", complete)
        self.assertEqual((m["id"], m["seq"], m["ts"], m["topic"], m["org"], m["client"],
                          m["policy"], m["sha256"], m["size"], m["status"]),
                         (stamp["tf-id"], int(stamp["tf-seq"]), int(stamp["tf-ts"]), TOPIC,
                          "city-waterworks", "ww-sensor-01", "water-telemetry@3",
                          hashlib.sha256(READING.encode()).hexdigest(), len(READING),
                          "delivered"))
        self.assertEqual([(d["client"], d["org"]) for d in m["deliveries"]],
                         [("ww-operator", "city-waterworks")])
        self.assertEqual([(w["client"], w["org"]) for w in m["withheld"]],
                         [("lab-analyst", "research-lab")])
        self.assertTrue(m["withheld"][0]["reason"])
        self.assertGreaterEqual(m["deliveries"][0]["ts"], m["ts"])
        self.assertEqual(self.trace("message", "0" * 32, check=False).returncode, 1)

    def test_recipients_are_exactly_the_clients_that_received_data(self):
        operator = self.login("ww-operator")
        operator.subscribe(TOPIC)
        maint = self.login("maint-app")
        maint.subscribe(TOPIC)
        analyst = self.login("lab-analyst")
        analyst.subscribe("city/#")
        first = self.publish_seen_by(operator)
        maint.receive()
        self.publish_seen_by(operator, '{"flow": 13.0}')
        maint.receive()

        def both():
            got = self.lines("recipients", "--policy", "water-telemetry")
            return got if sum(r["messages"] for r in got) == 4 else None
        got = wait_for("four deliveries", both)
        self.assertEqual([(r["client"], r["org"], r["messages"]) for r in got],
                         [("maint-app", "maint-co", 2), ("ww-operator", "city-waterworks", 2)])
        self.assertLessEqual(got[0]["first_ts"], got[0]["last_ts"])
        # A window that ends before the first message holds nobody.
        self.assertEqual(self.lines("recipients", "--policy", "water-telemetry", "--until",
                                    str(int(first["tf-ts"]) - 1)), [])

    def test_a_refused_publish_is_recorded(self):
        self.assertEqual(publish_v5(self.broker, "lab-analyst", TOPIC, '{"flow": 1}'), 135)

        def denied():
            return [m for m in self.lines("find", "--topic", TOPIC) if m["status"] == "denied"]
        m = wait_for("the refused publish", denied)[0]
        self.assertEqual((m["client"], m["org"], m["policy"], m["seq"]),
                         ("lab-analyst", "research-lab", "water-telemetry@3", None))
        self.assertTrue(m["reason"])
        self.assertEqual(m["sha256"], hashlib.sha256(b'{"flow": 1}').hexdigest())

    def test_a_v311_subscriber_finds_the_stamp_by_payload_hash(self):
        legacy = self.login("ww-operator", protocol=harness.paho.MQTTv311)
        keys = {}
        legacy.subscribe("$trustflow/keys/#")
        kid, key = verify.load_key(legacy.receive().payload)
        keys[kid] = key
        legacy.subscribe(TOPIC)
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", TOPIC, READING), 0x80)
        msg = legacy.receive()
        sha = hashlib.sha256(msg.payload).hexdigest()
        found = wait_for("the message by hash", lambda: self.lines(
            "find", "--topic", msg.topic, "--sha256", sha))
        self.assertEqual(len(found), 1)
        m = found[0]
        stamp = {"tf-v": "1", "tf-id": m["id"], "tf-broker": m["broker"], "tf-kid": m["kid"],
                 "tf-ts": str(m["ts"]), "tf-org": m["org"], "tf-client": m["client"],
                 "tf-policy": m["policy"], "tf-sha256": m["sha256"], "tf-seq": str(m["seq"]),
                 "tf-sig": m["sig"]}
        self.assertEqual(verify.check(stamp, msg.topic, msg.payload, keys), "ok")

    def test_find_takes_a_topic_filter_as_a_subscription_would(self):
        sent = [("city/water/d7/telemetry", '{"flow": 1}'), ("city/air/d7", '{"pm10": 9}'),
                ("city/water/d8/telemetry", '{"flow": 2}'), ("city/air/d8", '{"pm10": 7}')]
        for topic, payload in sent:
            self.assertLess(publish_v5(self.broker, "ww-sensor-01", topic, payload), 0x80)
        every = wait_for("four messages", lambda: len(self.lines("find", "--topic", "#")) == 4
                         and self.lines("find", "--topic", "#"))

        def topics(*args):
            return [m["topic"] for m in self.lines("find", "--topic", *args)]
        self.assertEqual([m["topic"] for m in every], [t for t, _ in sent])
        self.assertEqual(topics("city/air/#"), ["city/air/d7", "city/air/d8"])
        self.assertEqual(topics("city/water/+/telemetry"),
                         ["city/water/d7/telemetry", "city/water/d8/telemetry"])
        self.assertEqual(topics("+/+/d8"), ["city/air/d8"])
        # "#" takes in the parent level; + is exactly one level.
        self.assertEqual(topics("city/air/d7/#"), ["city/air/d7"])
        self.assertEqual(topics("city/+"), [])
        self.assertEqual(topics("city/air/d7"), ["city/air/d7"])
        # --since bounds the scan, and --sha256 narrows a filter too.
        since = every[2]["ts"]
        self.assertEqual(topics("city/#", "--since", str(since)),
                         [m["topic"] for m in every if m["ts"] >= since])
        sha = hashlib.sha256(b'{"pm10": 7}').hexdigest()
        self.assertEqual(topics("city/#", "--sha256", sha), ["city/air/d8"])
        self.assertEqual(topics("city/water/#", "--sha256", sha), [])
        for bad in ("city/#/d7", "city/air+", "$SYS/#"):
            out = self.trace("find", "--topic", bad, check=False)
            self.assertEqual(out.returncode, 2, bad)
            self.assertIn("is not a topic filter", out.stderr)
            self.assertEqual(out.stdout, "")

    def test_checkpoints_are_published_signed_and_match_the_chain(self):
        watcher = self.login("lab-analyst")
        watcher.subscribe("$trustflow/checkpoints")
        watcher.subscribe("$trustflow/keys/#")
        key = load_pem_public_key(watcher.receive().payload)
        operator = self.login("ww-operator")
        operator.subscribe(TOPIC)
        self.publish_seen_by(operator)
        # At least every 10 seconds while events arrive.
        cp = json.loads(watcher.receive(timeout=15).payload)
        self.assertEqual(set(cp), {"broker", "kid", "seq", "hash", "ts", "sig"})
        self.assertEqual(cp["broker"], "city-broker-1")
        signed = b"trustflow-checkpoint-1\n" + b"".join(
            f"{name}:{len(str(cp[name]).encode())}:{cp[name]}\n".encode()
            for name in ("broker", "kid", "seq", "hash", "ts"))
        key.verify(base64.b64decode(cp["sig"]), signed)   # raises when invalid
        exported = {e["seq"]: e for e in self.lines("export")}
        self.assertEqual(exported[cp["seq"]]["hash"], cp["hash"])
        # The chain from the first event, recomputed from export alone.
        prev = bytes(32)
        for seq in sorted(exported):
            event = exported[seq]
            self.assertEqual(event.get("prev", prev.hex()), prev.hex())
            prev = hashlib.sha256(prev + event_bytes(event)).digest()
            self.assertEqual(prev.hex(), event["hash"])

    def test_the_auditors_script_in_the_docs_checks_an_export(self):
        """docs/auditors.md's own Python, run as an auditor would, on an
        export with every kind of delivery; and it notices a changed byte."""
        with open(os.path.join(harness.SRCDIR, "docs", "auditors.md"), encoding="utf-8") as f:
            doc = f.read()
        script = doc.split("## Checking without tfctl", 1)[1].split("```python\n", 1)[1]
        script = script.split("```", 1)[0]
        operator = self.login("ww-operator")
        operator.subscribe(TOPIC)
        maint = self.persistent("maint-app", "maint-van-3")
        maint.subscribe(TOPIC)
        maint.close()
        self.publish_seen_by(operator)          # delivered, and queued
        maint = self.persistent("maint-app", "maint-van-3")
        maint.receive()                         # delivered on return
        maint.close()
        second = self.publish_seen_by(operator, '{"flow": 2}')
        exported = wait_for("the second message in the trace", lambda: (lambda out: out if
                            second["tf-id"] in out else None)(self.trace("export").stdout))
        self.assertIn('"outcome":"queued"', exported.replace(" ", ""))
        ok = run([sys.executable, "-c", script], input=exported)
        self.assertIn("chain ok up to", ok.stdout)
        changed = exported.replace('"maint-van-3"', '"maint-van-4"', 1)
        bad = run([sys.executable, "-c", script], input=changed, check=False)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("does not match", bad.stderr)

    def test_verify_passes_while_the_broker_runs_and_after_it_stops(self):
        operator = self.login("ww-operator")
        operator.subscribe(TOPIC)
        for i in range(20):
            self.publish_seen_by(operator, json.dumps({"flow": i}))
        running = json.loads(self.trace("verify").stdout)
        self.assertTrue(running["ok"])
        self.broker.stop()
        stopped = json.loads(self.trace("verify").stdout)
        self.assertEqual(stopped, {"events": stopped["events"], "checkpoints": stopped["checkpoints"],
                                   "ok": True})
        self.assertGreaterEqual(stopped["events"], 41)   # the load, 20 messages and deliveries
        self.assertGreaterEqual(stopped["checkpoints"], 1)
        key = os.path.join(self.broker.dir, "signing-key.pem")
        self.assertTrue(json.loads(self.trace("verify", "--key", key).stdout)["ok"])

    def test_each_policy_set_load_is_recorded_with_file_hashes(self):
        self.broker.write_policy("water.json", dict(WATER, version=4))
        self.broker.reload()
        self.broker.write_policy("water.json", '{"trustflow_policy": 1, "id": ')
        self.broker.reload()
        sets = wait_for("three policy sets", lambda: [
            e for e in self.lines("export") if e["kind"] == "policy-set"][2:] and [
            e for e in self.lines("export") if e["kind"] == "policy-set"])
        self.assertEqual([s["result"].split(":")[0] for s in sets], ["loaded", "loaded", "refused"])
        with open(os.path.join(self.broker.policy_dir, "water.json"), "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        self.assertIn(f"{digest}  {self.broker.policy_dir}/water.json", sets[2]["files"])
        self.assertEqual(sets[1]["policies"], "2")

    # -- offline sessions and views: each delivery once, each copy linked ---

    def persistent(self, username, client_id):
        return harness.Client(self.broker, client_id, username=username, password="demo",
                              protocol=harness.paho.MQTTv311, clean_session=False)

    def test_an_offline_session_counts_once_when_it_comes_back(self):
        maint = self.persistent("maint-app", "maint-van-3")
        self.assertEqual(maint.subscribe(TOPIC), 1)
        maint.close()
        operator = self.login("ww-operator")
        operator.subscribe(TOPIC, qos=1)
        sensor = self.login("ww-sensor-01")
        readings = [json.dumps({"flow": i}) for i in range(3)]
        queued = []
        for payload in readings:
            sensor.publish(TOPIC, payload, qos=1)
            queued.append(verify.stamp_of(operator.receive())["tf-id"])
        # QoS 0 to an offline session: mosquitto drops it (queue_qos0_messages).
        sensor.publish(TOPIC, '{"flow": 99}', qos=0)
        lost = verify.stamp_of(operator.receive())["tf-id"]

        def waiting(msg_id):
            m = self.message(msg_id)
            return m if m and m["queued"] else None
        m = wait_for("the queued delivery", lambda: waiting(queued[0]))
        self.assertEqual([(q["client"], q["client_id"], q["org"]) for q in m["queued"]],
                         [("maint-app", "maint-van-3", "maint-co")])
        self.assertEqual([d["client"] for d in m["deliveries"]], ["ww-operator"])
        # Queued is not received: not a recipient yet.
        self.assertEqual([r["client"] for r in self.lines("recipients", "--policy",
                                                          "water-telemetry")], ["ww-operator"])

        maint = self.persistent("maint-app", "maint-van-3")
        self.assertEqual([maint.receive().payload.decode() for _ in readings], readings)
        maint.close()
        # And once more: a session's return with nothing queued adds nothing.
        maint = self.persistent("maint-app", "maint-van-3")
        maint.close()

        def settled():
            got = {r["client"]: r for r in self.lines("recipients", "--policy",
                                                       "water-telemetry")}
            m = self.message(lost)
            return got if "maint-app" in got and m and m["dropped"] else None
        got = wait_for("the deliveries on return", settled)
        self.assertEqual((got["maint-app"]["messages"], got["ww-operator"]["messages"]), (3, 4))
        for msg_id in queued:
            m = self.message(msg_id)
            self.assertEqual(m["queued"], [])
            self.assertEqual(sorted((d["client"], d.get("client_id")) for d in m["deliveries"]),
                             [("maint-app", "maint-van-3"), ("ww-operator", "c-ww-operator")])
        m = self.message(lost)
        self.assertEqual((m["queued"], [d["client"] for d in m["deliveries"]]),
                         ([], ["ww-operator"]))
        self.assertEqual([(d["client"], d["client_id"]) for d in m["dropped"]],
                         [("maint-app", "maint-van-3")])
        self.assertIn("no longer in the session's queue", m["dropped"][0]["reason"])

    def test_a_message_sent_again_on_return_counts_once(self):
        raw = harness.RawSession(self.broker.port, "maint-raw", "maint-app")
        raw.subscribe(TOPIC, qos=1)
        stamp_seen = self.login("ww-operator")
        stamp_seen.subscribe(TOPIC)
        stamp = self.publish_seen_by(stamp_seen)
        dup, pid, topic = raw.receive_publish()
        self.assertEqual((dup, topic), (False, TOPIC.encode()))
        raw.drop()                      # unacknowledged: mosquitto sends it again
        raw = harness.RawSession(self.broker.port, "maint-raw", "maint-app")
        self.assertTrue(raw.session_present)
        dup, pid, topic = raw.receive_publish()
        self.assertEqual((dup, topic), (True, TOPIC.encode()))
        raw.acknowledge(pid)
        raw.drop()
        self.publish_seen_by(stamp_seen, '{"flow": 1}')   # later events: the return is over

        def two_messages():
            got = {r["client"]: r for r in self.lines("recipients", "--policy",
                                                       "water-telemetry")}
            return got if got.get("ww-operator", {}).get("messages") == 2 else None
        got = wait_for("the second message", two_messages)
        self.assertEqual(got["maint-app"]["messages"], 1)
        m = self.message(stamp["tf-id"])
        self.assertEqual(sorted((d["client"], d["client_id"]) for d in m["deliveries"]),
                         [("maint-app", "maint-raw"), ("ww-operator", "c-ww-operator")])
        self.assertEqual((m["queued"], m["dropped"], m["withheld"]), ([], [], []))

    def test_two_sessions_of_one_user_are_told_apart(self):
        first = self.login("maint-app")
        first.subscribe(TOPIC)
        second = self.client(self.broker, "maint-tablet", username="maint-app",
                             password="demo")
        second.subscribe(TOPIC)
        stamp = self.publish_seen_by(first)
        second.receive()
        m = wait_for("both deliveries", lambda: (lambda m: m if m and len(m["deliveries"]) == 2
                                                 else None)(self.message(stamp["tf-id"])))
        self.assertEqual(sorted(d["client_id"] for d in m["deliveries"]),
                         ["c-maint-app", "maint-tablet"])
        self.assertEqual({d["client"] for d in m["deliveries"]}, {"maint-app"})


class RetainedRemovalTraceTest(harness.BrokerTestCase):
    """When a retained copy's retention passes, the broker removes it; the
    removal is no message to anyone, and no delivery in the trace."""

    def test_removing_a_retained_copy_delivers_and_records_nothing(self):
        broker = self.start_broker(identities=IDENTITIES, passwords=PASSWORDS,
                                   policies={"water.json": dict(WATER, retention_seconds=1)})
        maint = self.client(broker, "c-maint", username="maint-app", password="demo")
        maint.subscribe("city/water/#")
        self.assertLess(publish_v5(broker, "ww-sensor-01", TOPIC, READING, retain=True), 0x80)
        self.assertEqual(maint.receive().payload.decode(), READING)
        time.sleep(2.5)            # past the retention: the broker removes the copy
        sentinel = "city/water/d9/telemetry"
        self.assertLess(publish_v5(broker, "ww-sensor-01", sentinel, '{"flow": 0}'), 0x80)
        got = maint.receive_until(sentinel)
        self.assertEqual([(m.topic, m.payload) for m in got], [(sentinel, b'{"flow": 0}')])

        def export():
            out = run([TFCTL, "trace", "--db", broker.trace_dir, "export"])
            return [json.loads(line) for line in out.stdout.splitlines()]
        def through_sentinel():
            events = export()
            ids = {e["id"] for e in events if e["kind"] == "message" and e["topic"] == sentinel}
            return events if any(e["kind"] == "delivery" and e["id"] in ids
                                 for e in events) else None
        events = wait_for("the sentinel's delivery", through_sentinel)
        deliveries = [e for e in events if e["kind"] == "delivery"]
        self.assertEqual([(d["client"], d["outcome"]) for d in deliveries],
                         [("maint-app", "delivered")] * 2)
        self.assertTrue(all(len(d["id"]) == 32 for d in deliveries))


class ViewTraceTest(harness.BrokerTestCase):
    """A view copy is a message of its own, linked to the message it was
    made of both ways."""

    def test_the_original_shows_who_got_its_view(self):
        water = dict(WATER, consumers=[
            {"orgs": ["maint-co"]},
            {"orgs": ["research-lab"], "fields": ["flow"], "view": "views/research-lab"}])
        broker = self.start_broker(identities=IDENTITIES, passwords=PASSWORDS,
                                   policies={"water.json": water})
        lab = self.client(broker, "c-lab", username="lab-analyst", password="demo")
        lab.subscribe("views/research-lab/#")
        maint = self.client(broker, "c-maint", username="maint-app", password="demo")
        maint.subscribe(TOPIC)
        self.assertLess(publish_v5(broker, "ww-sensor-01", TOPIC, READING), 0x80)
        original = verify.stamp_of(maint.receive())["tf-id"]
        view = verify.stamp_of(lab.receive())["tf-id"]
        self.assertNotEqual(original, view)

        def message(msg_id):
            return harness.trace_message(broker.trace_dir, msg_id)

        def with_view():
            m = message(original)
            return m if m and m["views"] and m["views"][0]["deliveries"] else None
        m = wait_for("the view under its original", with_view)
        self.assertEqual([d["client"] for d in m["deliveries"]], ["maint-app"])
        self.assertEqual(len(m["views"]), 1)
        v = m["views"][0]
        self.assertEqual((v["id"], v["of"], v["topic"]),
                         (view, original, "views/research-lab/" + TOPIC))
        self.assertEqual([(d["client"], d["client_id"]) for d in v["deliveries"]],
                         [("lab-analyst", "c-lab")])
        # And from the view back to its original.
        self.assertEqual(message(view)["of"], original)
        self.assertNotIn("of", m)


def event_bytes(event):
    """The bytes an exported event was hashed as (docs/auditors.md)."""
    fields = [("kind", event["kind"]), ("seq", str(event["seq"])), ("ts", str(event["ts"]))]
    fields += [(k, v) for k, v in event.items()
               if k not in ("kind", "seq", "ts", "hash", "prev")]
    out = b"trustflow-event-1\n"
    for name, value in fields:
        value = value.encode()
        out += name.encode() + b":" + str(len(value)).encode() + b":" + value + b"\n"
    return out


if __name__ == "__main__":
    harness.main()
