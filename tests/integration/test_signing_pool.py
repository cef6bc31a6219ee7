"""Signing with the pool of precomputed nonces (the default) on a real
broker: thousands of stamps, across a restart, all verify with the Python
example (python3-cryptography), no R (the first 32 bytes of a signature)
repeats among them, and the log says how the pool is set up and how it
fared. With `signing deterministic` every signature is RFC 8032's."""

import base64
import os
import re

import harness
from cryptography.hazmat.primitives.serialization import load_pem_private_key

verify = harness.stamp_verifier()

SENTINEL = "done/sentinel"


class SigningPoolTest(harness.BrokerTestCase):
    def keys(self, client):
        client.subscribe("$trustflow/keys/#")
        msg = client.receive()
        kid, key = verify.load_key(msg.payload)
        return {kid: key}

    def stamped_burst(self, broker, count, tag):
        """count messages through broker, each checked with the Python
        verifier; returns their stamps."""
        sub = self.client(broker, f"sub-{tag}")
        keys = self.keys(sub)
        sub.subscribe("burst/#")
        sub.subscribe(SENTINEL)
        pub = self.client(broker, f"pub-{tag}")
        got = []
        # In rounds of 250, each ended by a sentinel: a publisher far ahead
        # of its subscriber would overrun mosquitto's queue for it
        # (max_queued_messages) on a slow machine, and messages would be
        # dropped before any stamp is checked.
        for start in range(0, count, 250):
            for i in range(start, min(start + 250, count)):
                pub.mqtt.publish(f"burst/{i % 7}", f"{tag} reading {i}", qos=1)
            pub.publish(SENTINEL, "end")
            got += [m for m in sub.receive_until(SENTINEL) if m.topic != SENTINEL]
        self.assertEqual(len(got), count)
        stamps = []
        for msg in got:
            stamp = verify.stamp_of(msg)
            self.assertEqual(verify.check(stamp, msg.topic, msg.payload, keys), "ok")
            stamps.append((stamp, msg.topic))
        sub.close()
        pub.close()
        return stamps

    def rfc8032_signature(self, broker, stamp, topic):
        """What deterministic RFC 8032 signing gives for this stamp."""
        with open(os.path.join(broker.dir, "signing-key.pem"), "rb") as f:
            key = load_pem_private_key(f.read(), None)
        return base64.b64encode(key.sign(verify.signing_input(stamp, topic))).decode()

    def test_pool_stamps_verify_across_a_restart_and_never_repeat_r(self):
        broker = self.start_broker(plugin_options={"signing_workers": "1",
                                                   "signing_pool_size": "1024"})
        self.assertIn("signing with a pool of 1024 precomputed nonces filled by 1 worker "
                      "thread", broker.log())
        stamps = self.stamped_burst(broker, 2000, "first")
        broker.stop()
        stop_line = re.search(r"signing pool at (\d+) of 1024 nonces; (\d+) signatures from "
                              r"the pool, (\d+) the ordinary way because it was empty",
                              broker.log())
        self.assertIsNotNone(stop_line, broker.log())
        pooled, fallbacks = int(stop_line.group(2)), int(stop_line.group(3))
        self.assertGreaterEqual(pooled + fallbacks, 2000)

        broker.start()
        stamps += self.stamped_burst(broker, 1500, "second")
        rs = [base64.b64decode(stamp["tf-sig"])[:32] for stamp, _topic in stamps]
        self.assertEqual(len(set(rs)), len(rs), "an R repeats: a nonce was used twice")
        # Pooled nonces are not RFC 8032's (which derives r from the message).
        deterministic = sum(stamp["tf-sig"] == self.rfc8032_signature(broker, stamp, topic)
                            for stamp, topic in stamps)
        self.assertLess(deterministic, len(stamps))

    def test_deterministic_signing_is_rfc8032(self):
        broker = self.start_broker(plugin_options={"signing": "deterministic"})
        self.assertIn("signing deterministically (RFC 8032)", broker.log())
        for stamp, topic in self.stamped_burst(broker, 50, "det"):
            self.assertEqual(stamp["tf-sig"], self.rfc8032_signature(broker, stamp, topic))
        broker.stop()
        self.assertNotIn("signing pool at", broker.log())

    def test_background_threads_yield_to_the_broker(self):
        """The trace writer and the pool's workers run as background work
        (SCHED_BATCH) under their own names; mosquitto's thread does not."""
        broker = self.start_broker(plugin_options={"signing_workers": "2"})
        policies = {}
        for tid in os.listdir(f"/proc/{broker.proc.pid}/task"):
            with open(f"/proc/{broker.proc.pid}/task/{tid}/comm", encoding="utf-8") as f:
                name = f.read().strip()
            with open(f"/proc/{broker.proc.pid}/task/{tid}/stat", encoding="utf-8") as f:
                # Fields after the name in parentheses; the 41st is the policy.
                policy = int(f.read().rsplit(")", 1)[1].split()[38])
            policies.setdefault(name, []).append(policy)
        SCHED_OTHER, SCHED_BATCH = 0, 3
        self.assertEqual(policies["tf-trace"], [SCHED_BATCH])
        self.assertEqual(policies["tf-sign"], [SCHED_BATCH, SCHED_BATCH])
        self.assertEqual(policies["mosquitto"], [SCHED_OTHER])

    def test_bad_signing_options_refuse_the_start(self):
        broker = self.broker_expecting_failure(plugin_options={"signing_workers": "0"})
        self.assertNotEqual(broker.start_expecting_failure(), 0)
        self.assertIn("plugin_opt_signing_workers: \"0\" is not a whole number from 1 to 64 "
                      "or auto", broker.log())


if __name__ == "__main__":
    harness.main()
