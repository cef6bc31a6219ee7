"""Owner-signed policies (federation-v1, section 2) on a real broker: a
policy of an owner with policy_keys is in force only with its owner's
signature of its very bytes, at start and at every reload."""

import os
import shutil
import tempfile
import time

import harness
from harness import TFCTL, publish_v5, run

TOPIC = "city/water/d7/telemetry"
SENTINEL = "city/water/d0/telemetry"
WATER = {
    "trustflow_policy": 1, "id": "water-telemetry", "version": 3, "owner": "city-waterworks",
    "topics": ["city/water/+/telemetry"], "publishers": {"roles": ["sensor"]},
    "consumers": [{"orgs": ["maint-co"]}],
}
CLIENTS = {
    "ww-sensor-01": {"org": "city-waterworks", "roles": ["sensor"]},
    "maint-app": {"org": "maint-co"},
    "lab-analyst": {"org": "research-lab"},
}
PASSWORDS = {name: "demo" for name in CLIENTS}


class SignedPolicyTest(harness.BrokerTestCase):
    def setUp(self):
        keys = tempfile.mkdtemp(prefix="tf-owner-")
        self.addCleanup(shutil.rmtree, keys, True)
        self.owner_key = os.path.join(keys, "owner.pem")
        run([TFCTL, "key", "generate", "--out", self.owner_key])
        pem = run([TFCTL, "key", "public", self.owner_key]).stdout.splitlines()
        identities = {
            "trustflow_identities": 1,
            "organizations": {"city-waterworks": {"policy_keys": [pem[1]]}, "maint-co": {},
                              "research-lab": {}},
            "clients": CLIENTS,
        }
        self.broker = self.broker_expecting_failure(
            identities=identities, passwords=PASSWORDS, policies={"water.json": WATER})
        self.water = os.path.join(self.broker.policy_dir, "water.json")

    def sign(self):
        run([TFCTL, "policy", "sign", "--key", self.owner_key, self.water])

    def client_of(self, username):
        return self.client(self.broker, f"c-{username}-{time.monotonic_ns()}", username=username,
                           password="demo")

    def maint_receives(self):
        """The topics maint-app receives of a reading and a sentinel."""
        c = self.client_of("maint-app")
        self.assertEqual(c.subscribe("city/water/+/telemetry"), 1)
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", TOPIC, '{"flow": 1}'), 0x80)
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", SENTINEL, '{"flow": 0}'), 0x80)
        got = [m.topic for m in c.receive_until(SENTINEL)]
        c.close()
        return got

    def lab_may_subscribe(self):
        c = self.client_of("lab-analyst")
        code = c.subscribe("city/water/+/telemetry")
        c.close()
        return code < 0x80

    def test_signed_it_is_in_force(self):
        self.sign()
        self.broker.start()
        self.assertEqual(self.maint_receives(), [TOPIC, SENTINEL])
        self.assertFalse(self.lab_may_subscribe())

    def test_unsigned_the_broker_does_not_start(self):
        status = self.broker.start_expecting_failure()
        self.assertNotEqual(status, 0)
        self.assertIn("water.json: not signed: its owner city-waterworks signs its policies",
                      self.broker.log())

    def test_a_widened_file_is_refused_and_the_signed_one_stays(self):
        self.sign()
        self.broker.start()
        # Someone with access to the policy directory lets the lab in.
        self.broker.write_policy("water.json", dict(WATER, consumers=[
            {"orgs": ["maint-co"]}, {"orgs": ["research-lab"]}]))
        self.broker.reload()
        self.assertIn("water.json.sig: its signature was made by none of its owner's "
                      "policy_keys, or over other bytes", self.broker.log())
        self.assertFalse(self.lab_may_subscribe())
        self.assertEqual(self.maint_receives(), [TOPIC, SENTINEL])
        # And a restart does not let it in either.
        self.broker.stop()
        self.assertNotEqual(self.broker.start_expecting_failure(), 0)


if __name__ == "__main__":
    harness.main()
