"""Faults of the trace store on a real broker: kill -9 under load, a byte
changed or an event removed behind the broker's back, a store that has no
room left, and durability with trace_sync_ms 0."""

import json
import signal
import threading
import time

import harness
from harness import TFCTL, TRACE_TAMPER, publish_v5, run

TOPIC = "city/water/d7/telemetry"
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


class TraceFaultTest(harness.BrokerTestCase):
    def start(self, **options):
        self.broker = self.start_broker(identities=IDENTITIES, passwords=PASSWORDS,
                                        policies={"water.json": WATER}, plugin_options=options)
        return self.broker

    def login(self, username):
        return self.client(self.broker, f"c-{username}-{time.monotonic_ns()}", username=username,
                           password="demo")

    def trace(self, *args, check=True):
        return run([TFCTL, "trace", "--db", self.broker.trace_dir] + list(args), check=check)

    def verify(self):
        out = self.trace("verify", check=False)
        return out.returncode, json.loads(out.stdout)

    def received_ids(self, count):
        """Publishes count readings that an operator receives; their ids."""
        operator = self.login("ww-operator")
        operator.subscribe(TOPIC)
        ids = []
        for i in range(count):
            self.assertLess(publish_v5(self.broker, "ww-sensor-01", TOPIC, json.dumps({"n": i})),
                            0x80)
            ids.append(harness.stamp_verifier().stamp_of(operator.receive())["tf-id"])
        operator.close()
        return ids

    def kill_9(self):
        self.broker.proc.send_signal(signal.SIGKILL)
        self.broker.proc.wait()

    def test_kill_9_under_load_keeps_a_verifiable_store_and_what_was_synced(self):
        self.start()
        ids = self.received_ids(10)
        # trace_sync_ms is 100 by default: these are on disk well before
        # the broker dies.
        time.sleep(0.5)
        sensor = self.login("ww-sensor-01")
        stop = threading.Event()

        def flood():
            n = 0
            while not stop.is_set():
                sensor.mqtt.publish(TOPIC, json.dumps({"flood": n}), qos=0)
                n += 1
                if n % 100 == 0:
                    time.sleep(0.001)
        flooder = threading.Thread(target=flood)
        flooder.start()
        deadline = time.monotonic() + 10
        while self.broker.log().count("Received PUBLISH") < 300 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.kill_9()
        stop.set()
        flooder.join()
        sensor.close()

        status, result = self.verify()
        self.assertEqual(status, 0, result)
        self.assertTrue(result["ok"])
        for msg_id in ids:
            m = json.loads(self.trace("message", msg_id).stdout)
            self.assertEqual(m["status"], "delivered")
            self.assertEqual([d["client"] for d in m["deliveries"]], ["ww-operator"])
        last_seq = max(json.loads(self.trace("message", i).stdout)["seq"] for i in ids)

        # The broker starts again on the same store and goes on numbering.
        self.broker.start()
        later = self.received_ids(1)
        m = harness.wait_for("the new message in the trace",
                             lambda: harness.trace_message(self.broker.trace_dir, later[0]))
        self.assertGreater(m["seq"], last_seq)
        self.broker.stop()
        status, result = self.verify()
        self.assertEqual(status, 0, result)

    def test_a_changed_byte_is_found_and_named(self):
        self.start()
        self.received_ids(3)
        self.broker.stop()
        self.assertEqual(self.verify()[0], 0)
        # Byte 60 of a record: inside its events (after the 32-byte hash).
        # Verify names the record that holds the change: its first event.
        record = int(run([TRACE_TAMPER, self.broker.trace_dir, "flip", "3", "60"]).stdout)
        self.assertLessEqual(record, 3)
        status, result = self.verify()
        self.assertEqual(status, 1)
        self.assertFalse(result["ok"])
        self.assertEqual(result["first_bad_seq"], record)

    def test_a_removed_event_is_found_and_named(self):
        self.start()
        self.received_ids(3)
        self.broker.stop()
        record = int(run([TRACE_TAMPER, self.broker.trace_dir, "delete", "4"]).stdout)
        status, result = self.verify()
        self.assertEqual(status, 1)
        self.assertEqual(result["first_bad_seq"], record)
        self.assertEqual(result["reason"], "event missing")

    def test_a_store_of_another_format_is_refused_with_what_to_do(self):
        self.start()
        self.received_ids(1)
        self.broker.stop()
        # A format-2 store is no input to migrate, and migrate needs --out.
        out = self.trace("migrate", "--out", self.broker.trace_dir + "-2", check=False)
        self.assertEqual(out.returncode, 2)
        self.assertIn("not a trace store of format 1", out.stderr)
        self.assertEqual(self.trace("migrate", check=False).returncode, 2)
        # A store written by 0.1 (format 1): the broker does not start on it
        # and tfctl does not read it; both say which command copies it.
        run([TRACE_TAMPER, self.broker.trace_dir, "format", "1"])
        out = self.trace("verify", check=False)
        self.assertEqual(out.returncode, 2)
        self.assertIn("migrate --out", out.stderr)
        self.broker.start_expecting_failure()
        self.assertIn("trustflow 0.1", self.broker.log())
        self.assertIn("migrate --out", self.broker.log())

    def test_a_full_store_refuses_governed_messages_without_crashing(self):
        self.start(trace_max_mb="1")
        sensor = self.login("ww-sensor-01")
        # About a kilobyte of events and index entries each: 1 MiB is full
        # long before the last.
        for i in range(5000):
            info = sensor.mqtt.publish(TOPIC, json.dumps({"n": i}), qos=1)
        info.wait_for_publish(timeout=30)
        sensor.close()
        full = "the store is at its size limit"
        deadline = time.monotonic() + 10
        while full not in self.broker.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        # Still running, refusing, and the operator is told why.
        self.assertEqual(publish_v5(self.broker, "ww-sensor-01", TOPIC, '{"n": 1}'), 135)
        self.assertIsNone(self.broker.proc.poll())
        self.assertIn(full, self.broker.log())
        self.assertIn("governed messages are refused", self.broker.log())
        self.broker.stop()
        status, result = self.verify()
        self.assertEqual(status, 0, result)
        self.assertGreater(result["events"], 500)

    def test_with_sync_0_an_acknowledged_message_survives_kill_9(self):
        self.start(trace_sync_ms="0")
        ids = self.received_ids(1)
        self.kill_9()
        m = json.loads(self.trace("message", ids[0]).stdout)
        self.assertEqual(m["status"], "delivered")


if __name__ == "__main__":
    harness.main()
