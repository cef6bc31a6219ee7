"""The JavaScript of docs/provenance.md ("Relayed messages: checking a
chain") under Node.js, on the chains of tests/integration/chains.py as a
subscriber receives them through a plain mosquitto: the user properties
in order, and as MQTT.js hands them over (an object, pairsOf()), with
each broker's key given by broker id. Each chain is ok with its path, or
fails with the reason and the stamp that tfctl verify --key-of names: a
path made up by one broker, signing every stamp with its key, fails."""

import json
import os
import sys

import chains
import harness

NODE = os.environ.get("TF_NODE", "")

# Runs the doc's JavaScript on the messages a subscriber received (JSON on
# stdin); prints for each message the result of checkChain, as [verdict,
# path or stamp], on its pairs and on the object MQTT.js would make of
# them.
NODE_DRIVER = """
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const show = (r) => JSON.stringify(r.verdict === "ok" ? [r.verdict, r.path] : [r.verdict, r.at]);
for (const m of input) {
  const keys = keyring(m.keys);
  const payload = Buffer.from(m.payload, "base64");
  // MQTT.js: one key per name, a repeated name's values in an array.
  const asMqttJs = {};
  for (const [name, value] of m.pairs) {
    if (!(name in asMqttJs)) asMqttJs[name] = value;
    else asMqttJs[name] = [].concat(asMqttJs[name], [value]);
  }
  console.log(show(checkChain(m.pairs, m.topic, payload, keys)));
  console.log(show(checkChain(pairsOf(asMqttJs), m.topic, payload, keys)));
}
"""


class ChainVerifyJsTest(chains.ChainTestCase):
    def test_the_javascript_in_the_docs_checks_what_a_subscriber_receives(self):
        script = os.path.join(self.broker.dir, "doc_chain.js")
        with open(script, "w", encoding="utf-8") as f:
            f.write(chains.doc_snippet("js") + NODE_DRIVER)
        out = harness.run([NODE, script], input=json.dumps(self.received()))
        expected = []
        for case in self.cases:
            expected += [chains.snippet_result(case)] * 2
        self.assertEqual([json.loads(line) for line in out.stdout.splitlines()], expected,
                         out.stderr)


if __name__ == "__main__":
    if not NODE:
        print("SKIP: the documentation's JavaScript needs Node.js: apt-get install nodejs, "
              "then configure again")
        sys.exit(77)
    harness.main()
