"""The default configuration that the quickstart runs, with the demo
organizations: the README's walkthrough, step by step."""

import os

import harness
from harness import MOSQUITTO_PUB, MOSQUITTO_SUB, run

DEV_CONF = os.path.join(os.environ.get("TF_BUILDDIR", "."), "broker", "conf",
                        "mosquitto-dev.conf")
TOPIC = "city/water/d7/telemetry"
READING = '{"flow":12.5,"pressure":3.1}'


class DefaultConfTest(harness.BrokerTestCase):
    def setUp(self):
        self.broker = self.start_broker(conf_template=DEV_CONF)

    def sub(self, username, topic, count=1):
        """A mosquitto_sub that waits for count messages (or 10 s)."""
        cmd = [MOSQUITTO_SUB, "-h", "127.0.0.1", "-p", str(self.broker.port), "-V", "mqttv5",
               "-t", topic, "-C", str(count), "-W", "10", "-v"]
        if username:
            cmd += ["-u", username, "-P", "demo"]
        return harness.subprocess.Popen(cmd, stdout=harness.subprocess.PIPE,
                                        stderr=harness.subprocess.STDOUT, text=True)

    def pub(self, username, topic, payload, retain=True):
        cmd = [MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(self.broker.port), "-V", "mqttv5",
               "-u", username, "-P", "demo", "-t", topic, "-m", payload, "-q", "1"]
        return run(cmd + (["-r"] if retain else []), check=False)

    def test_plugin_is_loaded_with_the_demo(self):
        log = self.broker.log()
        self.assertIn(f"trustflow {harness.VERSION} loaded (broker_id trustflow-demo)", log)
        self.assertIn("1 policies, 4 organizations, 7 clients loaded (default_access deny)", log)

    def test_walkthrough(self):
        # The sensor publishes a retained reading.
        self.assertEqual(self.pub("ww-sensor-01", TOPIC, READING).stderr, "")
        # The owner's operator and the maintenance contractor read it.
        for user in ("ww-operator", "maint-app"):
            out, _ = self.sub(user, "city/water/+/telemetry").communicate(timeout=15)
            self.assertEqual(out.strip(), f"{TOPIC} {READING}")
        # The research lab reads only the flow, on its view.
        out, _ = self.sub("lab-analyst", "views/research-lab/#").communicate(timeout=15)
        self.assertEqual(out.strip(), f"views/research-lab/{TOPIC} " + '{"flow":12.5}')
        # Anyone else is refused, with or without a username.
        for user in ("snoop", None):
            out, _ = self.sub(user, "#").communicate(timeout=15)
            self.assertIn("All subscription requests were denied", out)
        # Only the sensor may publish.
        out = self.pub("snoop", TOPIC, READING)
        self.assertIn("Not authorized", out.stderr)
        # A reading that breaks the schema is refused.
        out = self.pub("ww-sensor-01", TOPIC, '{"flow": -5}', retain=False)
        self.assertIn("Not authorized", out.stderr)

    def test_default_conf_listens_on_loopback_1883(self):
        with open(DEV_CONF, encoding="utf-8") as f:
            listeners = [line.split() for line in f if line.startswith("listener")]
        self.assertEqual(listeners, [["listener", "1883", "127.0.0.1"]])


if __name__ == "__main__":
    harness.main()
