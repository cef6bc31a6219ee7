"""Will messages on a real broker. mosquitto publishes a will without the
plugin's MESSAGE event; the plugin still stamps, governs and records it:
subscribers get it with a stamp that verifies and none of the properties
the client put in the will, a retained will reaches later subscribers
stamped, a will that breaks the policy is treated as any message that
does, and the trace names it."""

import signal
import subprocess

import harness
from harness import MOSQUITTO_SUB

verify = harness.stamp_verifier()

TOPIC = "city/water/d7/telemetry"
IDENTITIES = {
    "trustflow_identities": 1,
    "organizations": {"city-waterworks": {}, "maint-co": {}, "research-lab": {}},
    "clients": {
        "ww-sensor-01": {"org": "city-waterworks", "roles": ["sensor"]},
        "ww-operator": {"org": "city-waterworks"},
        "maint-app": {"org": "maint-co"},
        "lab-analyst": {"org": "research-lab"},
    },
}
WATER = {
    "trustflow_policy": 1, "id": "water-telemetry", "version": 2, "owner": "city-waterworks",
    "topics": ["city/water/+/telemetry"], "publishers": {"roles": ["sensor"]},
    "consumers": [{"orgs": ["maint-co"]},
                  {"orgs": ["research-lab"], "fields": ["flow"], "view": "views/lab"}],
    "schema": {"type": "object", "properties": {"flow": {"type": "number"}},
               "required": ["flow"]},
}
PASSWORDS = {name: "demo" for name in IDENTITIES["clients"]}
FORGED = [("tf-org", "maint-co"), ("TF-SIG", "AAAA"), ("tf", "1|forged"), ("note", "x")]


class WillTest(harness.BrokerTestCase):
    def setUp(self):
        self.broker = self.start_broker(identities=IDENTITIES, passwords=PASSWORDS,
                                        policies={"water.json": WATER})

    def login(self, username):
        return self.client(self.broker, f"c-{username}", username=username, password="demo")

    def keys(self, client):
        client.subscribe("$trustflow/keys/#")
        kid, key = verify.load_key(client.receive().payload)
        return {kid: key}

    def die_with_will(self, payload, retain=False):
        """A sensor that connects with a will (and forged stamp properties
        in it) and dies without saying goodbye, so mosquitto sends it."""
        cmd = [MOSQUITTO_SUB, "-h", "127.0.0.1", "-p", str(self.broker.port), "-V", "5",
               "-u", "ww-sensor-01", "-P", "demo", "-i", "sensor-with-will",
               "-t", "$trustflow/keys/#", "--will-topic", TOPIC, "--will-payload", payload,
               "--will-qos", "1"]
        if retain:
            cmd.append("--will-retain")
        for name, value in FORGED:
            cmd += ["-D", "will", "user-property", name, value]
        sub = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        sub.stdout.readline()                 # connected: it received the key
        sub.send_signal(signal.SIGKILL)
        sub.wait()

    def test_a_will_is_stamped_and_carries_nothing_forged(self):
        operator = self.login("ww-operator")
        keys = self.keys(operator)
        operator.subscribe(TOPIC)
        self.die_with_will('{"flow": 0}')
        msg = operator.receive()
        self.assertEqual((msg.topic, msg.payload), (TOPIC, b'{"flow": 0}'))
        stamp = verify.stamp_of(msg)
        self.assertEqual(verify.check(stamp, msg.topic, msg.payload, keys), "ok")
        self.assertEqual((stamp["tf-org"], stamp["tf-client"], stamp["tf-policy"]),
                         ("city-waterworks", "ww-sensor-01", "water-telemetry@2"))
        # One stamp, the broker's, in the compact form; the forged ones are gone.
        names = [n.lower() for n, _ in msg.properties.UserProperty]
        self.assertEqual([n for n in names if n.startswith("tf")], ["tf"])
        # The trace knows it, and who received it.
        def recorded():
            trace = harness.trace_message(self.broker.trace_dir, stamp["tf-id"])
            return trace if trace and trace["deliveries"] else None
        trace = harness.wait_for("the will and its delivery in the trace", recorded)
        self.assertEqual(trace["client"], "ww-sensor-01")
        self.assertIn("ww-operator", [d["client"] for d in trace["deliveries"]])

    def test_a_will_goes_where_the_policy_says(self):
        maint, lab = self.login("maint-app"), self.login("lab-analyst")
        keys = self.keys(lab)
        maint.subscribe(TOPIC)
        lab.subscribe("views/lab/#")
        self.die_with_will('{"flow": 1, "pressure": 2}')
        self.assertEqual(maint.receive().payload, b'{"flow": 1, "pressure": 2}')
        view = lab.receive()
        self.assertEqual((view.topic, view.payload), ("views/lab/" + TOPIC, b'{"flow":1}'))
        self.assertEqual(verify.check(verify.stamp_of(view), view.topic, view.payload, keys),
                         "ok")

    def test_a_will_that_breaks_the_schema_is_dropped(self):
        operator = self.login("ww-operator")
        operator.subscribe(TOPIC)
        self.die_with_will('{"status": "offline"}')
        self.assertLess(harness.publish_v5(self.broker, "ww-sensor-01", TOPIC, '{"flow": 9}'),
                        0x80)
        self.assertEqual(operator.receive().payload, b'{"flow": 9}')
        self.assertIn("schema-violation", self.broker.log())

    def test_a_retained_will_reaches_later_subscribers_stamped(self):
        maint = self.login("maint-app")
        maint.subscribe(TOPIC)
        self.die_with_will('{"flow": 3}', retain=True)
        self.assertEqual(maint.receive().payload, b'{"flow": 3}')     # it went out
        operator = self.login("ww-operator")
        keys = self.keys(operator)
        operator.subscribe(TOPIC)
        msg = operator.receive()
        self.assertTrue(msg.retain)
        self.assertEqual(msg.payload, b'{"flow": 3}')
        self.assertEqual(verify.check(verify.stamp_of(msg), msg.topic, msg.payload, keys), "ok")


if __name__ == "__main__":
    harness.main()
