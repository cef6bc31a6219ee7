"""Chains of stamps (federation-v1, sections 4 and 5) as a subscriber
receives them: chains signed by the test (tests/integration/chains.py) and
sent through a plain mosquitto, which passes user properties unchanged, to
`tfctl verify`, to broker/examples/verify_stamps.py and to the Python of
docs/provenance.md ("Relayed messages: checking a chain"). A chain of three
in either form is ok with its path; a changed or rewritten hop record, a
prev that does not link, a loop, an unknown key, a stamp for another topic
and a malformed hop record each fail with their reason and the stamp at
fault."""

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
    def tfctl(self, cases):
        cmd = [TFCTL, "verify", "--key"] + [k.path for k in self.keys] + [
            "--port", str(self.broker.port), "--topic", chains.PREFIX + "#",
            "--count", str(len(cases))]
        return self.run_verifier(cmd, 1, "tfctl verify", cases)

    def test_tfctl_verify_prints_each_chains_path_or_its_fault(self):
        rc, lines, err = self.tfctl(self.cases)
        self.assertEqual(lines, [case.line() for case in self.cases], err)
        self.assertEqual(rc, 1)

    def test_tfctl_verify_exits_0_when_every_chain_holds(self):
        valid = [case for case in self.cases if case.verdict == "ok"]
        self.assertEqual(len(valid), 4)
        rc, lines, err = self.tfctl(valid)
        self.assertEqual((rc, lines), (0, [case.line() for case in valid]), err)
        self.assertEqual(lines[0], f"ok {valid[0].id} {chains.PREFIX}valid-full path: "
                         "city-waterworks/ww-sensor-01 -> broker-a -> broker-b -> broker-c")

    def test_the_python_example_prints_the_same(self):
        cmd = [sys.executable, EXAMPLE, "--port", str(self.broker.port),
               "--topic", chains.PREFIX + "#", "--count", str(len(self.cases))]
        for key in self.keys:
            cmd += ["--key", key.path]
        # With pinned keys it subscribes to the topic alone.
        rc, lines, err = self.run_verifier(cmd, 1, "verify_stamps.py", self.cases)
        self.assertEqual(lines, [case.line() for case in self.cases], err)
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
