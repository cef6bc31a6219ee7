"""tfctl verify against a real broker: ok for every stamped message, in
either form, FAIL with the reason otherwise."""

import os
import subprocess
import tempfile

import harness
from harness import TFCTL, publish_v5

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

IDENTITIES = {
    "trustflow_identities": 1,
    "organizations": {"city-waterworks": {}},
    "clients": {
        "ww-sensor-01": {"org": "city-waterworks", "roles": ["sensor"]},
        "ww-operator": {"org": "city-waterworks"},
    },
}
WATER = {
    "trustflow_policy": 1, "id": "water-telemetry", "version": 3, "owner": "city-waterworks",
    "topics": ["city/water/+/telemetry"], "publishers": {"roles": ["sensor"]},
}
PASSWORDS = {name: "demo" for name in IDENTITIES["clients"]}


class VerifyTest(harness.BrokerTestCase):
    def start(self, **options):
        return self.start_broker(identities=IDENTITIES, passwords=PASSWORDS,
                                 policies={"water.json": WATER}, plugin_options=options)

    def verify(self, broker, keys, count, *extra):
        """Starts tfctl verify, waits until it has subscribed."""
        cmd = [TFCTL, "verify", "--key"] + keys + ["--port", str(broker.port), "--count",
               str(count), "--username", "ww-operator", "--password", "demo"] + list(extra)
        before = broker.log().count("Sending SUBACK")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(proc.kill)
        deadline = harness.time.monotonic() + 10
        while broker.log().count("Sending SUBACK") == before:
            self.assertLess(harness.time.monotonic(), deadline, "tfctl verify did not subscribe")
            harness.time.sleep(0.05)
        return proc

    def finish(self, proc):
        out, err = proc.communicate(timeout=20)
        return proc.returncode, out.splitlines(), err

    def test_every_stamped_message_is_ok(self):
        self.every_stamped_message_is_ok(self.start())

    def test_every_stamped_message_in_full_form_is_ok(self):
        self.every_stamped_message_is_ok(self.start(stamp_form="full"))

    def every_stamped_message_is_ok(self, broker):
        proc = self.verify(broker, [os.path.join(broker.dir, "signing-key.pem")], 2,
                           "--topic", "city/#")
        for i in range(2):
            publish_v5(broker, "ww-sensor-01", "city/water/d7/telemetry", '{"n": %d}' % i)
        rc, lines, err = self.finish(proc)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(lines), 2)
        for line in lines:
            self.assertRegex(line, r"^ok [0-9a-f]{32} city/water/d7/telemetry$")

    def test_a_key_it_does_not_have_is_a_fail(self):
        broker = self.start()
        stranger = os.path.join(broker.dir, "stranger.pem")
        harness.run([TFCTL, "key", "generate", "--out", stranger])
        proc = self.verify(broker, [stranger], 1)
        publish_v5(broker, "ww-sensor-01", "city/water/d7/telemetry", "{}")
        rc, lines, _ = self.finish(proc)
        self.assertEqual(rc, 1)
        self.assertRegex(lines[0], r"^FAIL [0-9a-f]{32} city/water/d7/telemetry unknown key$")

    def test_an_unstamped_message_is_a_fail(self):
        broker = self.start(stamp_all="false", default_access="allow")
        proc = self.verify(broker, [os.path.join(broker.dir, "signing-key.pem")], 1)
        publish_v5(broker, None, "free/topic", "hello")
        rc, lines, _ = self.finish(proc)
        self.assertEqual((rc, lines), (1, ["FAIL - free/topic missing stamp"]))

    def test_a_malformed_or_doubled_stamp_is_a_fail(self):
        """Stamps no broker of ours sends, through a plain mosquitto: each
        is a FAIL with its reason, and tfctl goes on to the next."""
        plain = self.start_broker(with_plugin=False)
        key = os.path.join(plain.dir, "key.pem")
        harness.run([TFCTL, "key", "generate", "--out", key])
        proc = self.verify(plain, [key], 5, "--topic", "t/#")
        publisher = self.client(plain, "publisher")
        sig = "A" * 86 + "=="
        fields = ["1", "0" * 32, "b", "0" * 16, "1", "org", "client", "", "1", sig]
        cases = [
            ("t/escape", [("tf", "|".join(fields[:5] + ["org%zz"] + fields[6:]))]),
            ("t/percent", [("tf", "|".join(fields[:6] + ["100%"] + fields[7:]))]),
            ("t/count", [("tf", "|".join(fields[:9]))]),
            ("t/both", [("tf", "|".join(fields)), ("tf-v", "1")]),
            ("t/twice", [("tf", "|".join(fields)), ("tf", "|".join(fields))]),
        ]
        for topic, pairs in cases:
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = pairs
            publisher.publish(topic, "x", properties=props)
        rc, lines, _ = self.finish(proc)
        self.assertEqual((rc, lines), (1, [
            "FAIL - t/escape bad escape in a compact stamp or hop record",
            "FAIL - t/percent bad escape in a compact stamp or hop record",
            "FAIL - t/count wrong number of fields in a compact stamp or hop record",
            "FAIL - t/both stamp in both forms",
            "FAIL - t/twice malformed stamp",
        ]))

    def test_usage_errors(self):
        out = harness.run([TFCTL, "verify", "--port", "1"], check=False)
        self.assertEqual(out.returncode, 2)
        out = harness.run([TFCTL, "verify", "--key", "/nonexistent.pem"], check=False)
        self.assertEqual(out.returncode, 2)

    def test_key_of_takes_a_broker_and_one_key_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            key = os.path.join(tmp, "broker-a.pem")
            harness.run([TFCTL, "key", "generate", "--out", key])
            for args in (["--key-of", "broker-a"], ["--key-of", key],
                         ["--key-of", "broker-a", "--port", "1"],
                         ["--key-of", "broker-a", "/nonexistent.pem"]):
                out = harness.run([TFCTL, "verify"] + args, check=False)
                self.assertEqual(out.returncode, 2, args)
            # One key is one broker's: bound to two, it is refused.
            out = harness.run([TFCTL, "verify", "--key-of", "broker-a", key, "--key-of",
                               "broker-b", key, "--port", "1"], check=False)
            self.assertEqual(out.returncode, 2)
            self.assertIn("bound to broker broker-a already", out.stderr)
            self.assertIn("--key-of BROKER PEM", harness.run(
                [TFCTL, "verify"], check=False).stderr)


if __name__ == "__main__":
    harness.main()
