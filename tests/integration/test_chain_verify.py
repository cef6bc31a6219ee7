"""Chains of stamps (federation-v1, sections 4 and 5) as a subscriber
receives them: chains signed by the test (tests/integration/chains.py) and
sent through a plain mosquitto, which passes user properties unchanged, to
`tfctl verify`, to broker/examples/verify_stamps.py and to the Python of
docs/provenance.md ("Relayed messages: checking a chain"). A chain of three
in either form is ok with its path; a changed or rewritten hop record, a
prev that does not link, a loop, an unknown key, a stamp under another
broker's key (a path made up by one broker), a stamp for another topic, a
format-2 stamp without its tf-topic and a malformed hop record or compact
value each fail with their reason and the stamp at fault. With keys
trusted for any broker (--key), the made-up path holds: the weakness
--key-of closes."""

import json
import os
import sys

import chains
import harness
from harness import TFCTL

EXAMPLE = os.path.join(harness.SRCDIR, "broker", "examples", "verify_stamps.py")

# Runs the doc's Python on the messages a subscriber received (JSON on
# stdin); prints one JSON line per message: [verdict, path or stamp].
PYTHON_DRIVER = """
import base64, json, sys

for m in json.load(sys.stdin):
    keys = keyring(m["keys"])
    print(json.dumps(check_chain([tuple(p) for p in m["pairs"]], m["topic"],
                                 base64.b64decode(m["payload"]), keys)))
"""


class ChainVerifyTest(chains.ChainTestCase):
    def tfctl(self, cases, bound=True):
        cmd = [TFCTL, "verify"] + self.key_options(bound) + [
            "--port", str(self.broker.port), "--topic", chains.PREFIX + "#",
            "--count", str(len(cases))]
        return self.run_verifier(cmd, 1, "tfctl verify", cases)

    def example(self, bound):
        cmd = [sys.executable, EXAMPLE, "--port", str(self.broker.port),
               "--topic", chains.PREFIX + "#", "--count", str(len(self.cases))]
        # With pinned keys it subscribes to the topic alone.
        return self.run_verifier(cmd + self.key_options(bound), 1, "verify_stamps.py",
                                 self.cases)

    def made_up(self):
        """The case whose three stamps are all under broker-a's key."""
        return next(case for case in self.cases if case.topic.endswith("/one-key"))

    def test_tfctl_verify_prints_each_chains_path_or_its_fault(self):
        rc, lines, err = self.tfctl(self.cases)
        self.assertEqual(lines, [case.line() for case in self.cases], err)
        self.assertEqual(rc, 1)
        self.assertIn(f"FAIL {self.made_up().id} {chains.PREFIX}one-key key of another broker "
                      "at stamp 3 (broker-c)", lines)

    def test_tfctl_verify_with_keys_for_any_broker_takes_a_made_up_path(self):
        rc, lines, err = self.tfctl(self.cases, bound=False)
        self.assertEqual(lines, [case.line(bound=False) for case in self.cases], err)
        self.assertEqual(rc, 1)
        self.assertIn(f"ok {self.made_up().id} {chains.PREFIX}one-key path: {chains.PATH}",
                      lines)

    def test_tfctl_verify_exits_0_when_every_chain_holds(self):
        valid = [case for case in self.cases if case.verdict == "ok"]
        self.assertEqual(len(valid), 4)
        rc, lines, err = self.tfctl(valid)
        self.assertEqual((rc, lines), (0, [case.line() for case in valid]), err)
        self.assertEqual(lines[0], f"ok {valid[0].id} {chains.PREFIX}valid-full path: "
                         "city-waterworks/ww-sensor-01 -> broker-a -> broker-b -> broker-c")

    def test_the_python_example_prints_the_same(self):
        rc, lines, err = self.example(bound=True)
        self.assertEqual(lines, [case.line() for case in self.cases], err)
        self.assertEqual(rc, 1)

    def test_the_python_example_with_keys_for_any_broker_prints_the_same(self):
        rc, lines, err = self.example(bound=False)
        self.assertEqual(lines, [case.line(bound=False) for case in self.cases], err)
        self.assertEqual(rc, 1)

    def test_the_python_in_the_docs_checks_what_a_subscriber_receives(self):
        script = os.path.join(self.broker.dir, "doc_chain.py")
        with open(script, "w", encoding="utf-8") as f:
            f.write(chains.doc_snippet("python") + PYTHON_DRIVER)
        out = harness.run([sys.executable, script], input=json.dumps(self.received()))
        self.assertEqual([json.loads(line) for line in out.stdout.splitlines()],
                         [chains.snippet_result(case) for case in self.cases], out.stderr)


if __name__ == "__main__":
    harness.main()
