"""The default configuration that the quickstart runs: the plugin loads and
command-line clients can use the broker."""

import os

import harness
from harness import MOSQUITTO_PUB, MOSQUITTO_SUB, run

DEV_CONF = os.path.join(os.environ.get("TF_BUILDDIR", "."), "broker", "conf",
                        "mosquitto-dev.conf")


class DefaultConfTest(harness.BrokerTestCase):
    def test_default_conf_loads_plugin_and_carries_messages(self):
        broker = self.start_broker(conf_template=DEV_CONF)
        self.assertIn(f"trustflow {harness.VERSION} loaded (broker_id trustflow-demo)",
                      broker.log())
        run([MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(broker.port),
             "-t", "demo/retained", "-m", "kept", "-r", "-q", "1"])
        got = run([MOSQUITTO_SUB, "-h", "127.0.0.1", "-p", str(broker.port),
                   "-t", "demo/retained", "-C", "1", "-W", "10"])
        self.assertEqual(got.stdout.strip(), "kept")

    def test_default_conf_listens_on_loopback_1883(self):
        with open(DEV_CONF, encoding="utf-8") as f:
            listeners = [line.split() for line in f if line.startswith("listener")]
        self.assertEqual(listeners, [["listener", "1883", "127.0.0.1"]])


if __name__ == "__main__":
    harness.main()
