"""The plugin loads into a real mosquitto, logs its version, and the broker
carries messages for MQTT v3.1.1 and v5 clients."""

import harness
from harness import MOSQUITTO_PUB, MOSQUITTO_SUB, run

import paho.mqtt.client as paho


class PluginLoadTest(harness.BrokerTestCase):
    def test_logs_version_and_broker_id(self):
        broker = self.start_broker(plugin_options={"broker_id": "city-broker-1"})
        self.assertTrue(harness.VERSION, "TF_VERSION is not set")
        self.assertIn(f"trustflow {harness.VERSION} loaded (broker_id city-broker-1)",
                      broker.log())

    def test_command_line_clients_exchange_a_message(self):
        broker = self.start_broker()
        for version in ("mqttv311", "mqttv5"):
            with self.subTest(version=version):
                sub = harness.subprocess.Popen(
                    [MOSQUITTO_SUB, "-p", str(broker.port), "-h", "127.0.0.1", "-V", version,
                     "-t", f"demo/hello/{version}", "-C", "1", "-W", "10"],
                    stdout=harness.subprocess.PIPE, text=True)
                self.addCleanup(sub.kill)
                # The subscription must exist before the publish; the
                # retained flag makes the order irrelevant.
                run([MOSQUITTO_PUB, "-p", str(broker.port), "-h", "127.0.0.1", "-V", version,
                     "-t", f"demo/hello/{version}", "-m", f"hello {version}", "-r", "-q", "1"])
                out, _ = sub.communicate(timeout=15)
                self.assertEqual(sub.returncode, 0)
                self.assertEqual(out.strip(), f"hello {version}")

    def test_paho_v5_round_trip_at_each_qos(self):
        broker = self.start_broker()
        sub = self.client(broker, "sub-1")
        pub = self.client(broker, "pub-1", protocol=paho.MQTTv311)
        sub.subscribe("demo/#", qos=2)
        for qos in (0, 1, 2):
            payload = f"payload at qos {qos}".encode()
            pub.publish(f"demo/qos{qos}", payload, qos=qos)
            msg = sub.receive()
            self.assertEqual(msg.topic, f"demo/qos{qos}")
            self.assertEqual(msg.payload, payload)
            self.assertEqual(msg.qos, qos)


if __name__ == "__main__":
    harness.main()
