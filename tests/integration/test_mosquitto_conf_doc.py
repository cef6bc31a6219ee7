"""docs/mosquitto-conf.md: its complete mosquitto.conf starts a real
broker, as written and with every commented plugin option uncommented,
its paths moved to a temporary directory. Every plugin option it names,
and every one docs/options.md and the shipped configurations name, is
one the plugin knows (its own table, as `tfctl --help` prints it), with
the plugin's own default."""

import getpass
import os
import queue
import re
import shutil
import ssl
import subprocess
import tempfile
import unittest

import paho.mqtt.client as paho

import harness
from harness import MOSQUITTO_PASSWD, TFCTL, run

DOC = os.path.join(harness.SRCDIR, "docs", "mosquitto-conf.md")
OPTIONS_DOC = os.path.join(harness.SRCDIR, "docs", "options.md")
SHIPPED_CONFS = [os.path.join(harness.SRCDIR, "broker", "conf", "mosquitto.conf.in"),
                 os.path.join(harness.SRCDIR, "docker", "mosquitto.conf")]
# Where the doc's install keeps things, and the plugin's path there.
ETC, VAR, PLUGIN = "/etc/trustflow", "/var/lib/trustflow", "/usr/lib/trustflow/trustflow.so"
BROKER_ID = "broker-1.example.org"

IDENTITIES = {
    "trustflow_identities": 1,
    "organizations": {"city-waterworks": {"name": "City Waterworks Bureau"}},
    "clients": {"ww-sensor-01": {"org": "city-waterworks", "roles": ["sensor"]}},
}
POLICY = {"trustflow_policy": 1, "id": "water", "version": 1, "owner": "city-waterworks",
          "topics": ["city/water/#"], "publishers": {"roles": ["sensor"]}}
OPTION_LINE = re.compile(r"^(#?)plugin_opt_(\w+) (.*)$", re.M)


def doc_conf():
    """The doc's one fenced conf block."""
    with open(DOC, encoding="utf-8") as f:
        blocks = re.findall(r"^```conf\n(.*?)^```$", f.read(), re.S | re.M)
    assert len(blocks) == 1, f"{DOC} has {len(blocks)} conf blocks, not one"
    return blocks[0]


def plugin_options():
    """Each option the plugin knows, with its default: None when required,
    "" when there is none."""
    table = run([TFCTL, "--help"]).stdout.split("Plugin options", 1)[1]
    options = {}
    for m in re.finditer(r"^  ([a-z_]+) .*\((?:default: (.*)|required)\)$", table, re.M):
        default = m.group(2)
        options[m.group(1)] = None if default is None else "" if default == "none" else default
    assert len(options) == table.count("\n  "), "a line of tfctl --help was not understood"
    return options


def comment_above(lines, i):
    """The comment lines above line i, past other plugin_opt_ lines of its
    group."""
    j = i - 1
    while j >= 0 and lines[j].startswith("plugin_opt_"):
        j -= 1
    text = []
    while j >= 0 and lines[j].startswith("# "):
        text.insert(0, lines[j][2:])
        j -= 1
    return " ".join(text)


class DocumentedOptionsTest(unittest.TestCase):
    def test_every_option_is_in_the_example_with_its_default(self):
        known = plugin_options()
        lines = doc_conf().splitlines()
        seen = []
        for i, line in enumerate(lines):
            m = OPTION_LINE.match(line)
            if m is None:
                continue
            commented, name, value = m.groups()
            seen.append(name)
            with self.subTest(option=name):
                self.assertIn(name, known, "the doc names an option the plugin does not know")
                default = known[name]
                if commented and default:
                    self.assertEqual(value, default, "a commented line shows another default")
                elif not commented and default is None:
                    self.assertIn("Required", comment_above(lines, i))
                elif not commented and value != default:
                    self.assertIn(f"Default: {default or 'none'}", comment_above(lines, i))
        self.assertEqual(sorted(seen), sorted(set(seen)), "an option is named twice")
        self.assertEqual(sorted(seen), sorted(known), "the doc leaves options out")

    def test_options_md_lists_every_option_with_its_default(self):
        with open(OPTIONS_DOC, encoding="utf-8") as f:
            rows = re.findall(r"^\| `([a-z_]+)` \| [^|]* \| ([^|]*) \|", f.read(), re.M)
        listed = {name: None if cell.strip() == "required" else
                  "" if cell.strip() == "none" else cell.strip().strip("`")
                  for name, cell in rows}
        self.assertEqual(len(listed), len(rows), "docs/options.md lists an option twice")
        self.assertEqual(listed, plugin_options())

    def test_shipped_configurations_name_known_options(self):
        known = plugin_options()
        for path in SHIPPED_CONFS:
            with open(path, encoding="utf-8") as f:
                names = [m.group(2) for m in OPTION_LINE.finditer(f.read())]
            with self.subTest(conf=path):
                self.assertTrue(names)
                self.assertEqual([n for n in names if n not in known], [])


class DocumentedConfStartsTest(harness.BrokerTestCase):
    """The example as an operator would install it: identities, a policy,
    passwords, TLS files and a signing key of its own."""

    @classmethod
    def setUpClass(cls):
        cls.etc = tempfile.mkdtemp(prefix="tf-etc-")
        ids = os.path.join(cls.etc, "identities.json")
        harness.write_json(ids, IDENTITIES)
        os.mkdir(os.path.join(cls.etc, "policies"))
        harness.write_json(os.path.join(cls.etc, "policies", "water.json"), POLICY)
        os.mkdir(os.path.join(cls.etc, "keys"))
        passwords = os.path.join(cls.etc, "passwords")
        with open(passwords, "w", encoding="utf-8") as f:
            f.write("ww-sensor-01:demo\n")
        run([MOSQUITTO_PASSWD, "-U", passwords])
        subprocess.run(["bash", os.path.join(harness.SRCDIR, "scripts", "make-demo-certs.sh"),
                        os.path.join(cls.etc, "tls"), ids, "localhost", "127.0.0.1"],
                       check=True, capture_output=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.etc, ignore_errors=True)

    def start_documented(self, conf):
        """Starts a broker on conf, with the doc's paths moved to this
        test's directories (the harness gives the broker its own data
        directory and ports). The signing key is made first, as the doc
        says."""
        work = tempfile.mkdtemp(prefix="tf-conf-doc-")
        self.addCleanup(shutil.rmtree, work, True)
        moved = (conf.replace(PLUGIN, harness.env_path("TF_PLUGIN"))
                 .replace(ETC, self.etc).replace(VAR, work)
                 .replace("\nuser mosquitto\n", f"\nuser {getpass.getuser()}\n"))
        for path in (ETC, VAR, "/usr/", "user mosquitto"):
            self.assertNotIn(path, moved, "the example names a path outside its install")
        path = os.path.join(work, "mosquitto.conf")
        with open(path, "w", encoding="utf-8") as f:
            f.write(moved)
        broker = self.unstarted_broker(conf_template=path)
        run([TFCTL, "key", "generate", "--out", os.path.join(broker.data_dir, "signing-key.pem")])
        return broker.start()

    def assert_serves_both_listeners(self, broker):
        log = broker.log()
        self.assertIn(f"trustflow {harness.VERSION} loaded (broker_id {BROKER_ID})", log)
        self.assertIn("1 policies, 1 organizations, 1 clients loaded (default_access deny)", log)
        # Passwords on the first listener.
        self.client(broker, "sensor", username="ww-sensor-01", password="demo")
        # Mutual TLS on the second: the certificate's CN is the username.
        [tls_port] = broker.other_ports
        tls = os.path.join(self.etc, "tls")
        client = paho.Client(client_id="ignored", protocol=paho.MQTTv5)
        client.tls_set(ca_certs=os.path.join(tls, "ca.crt"),
                       certfile=os.path.join(tls, "clients", "ww-sensor-01.crt"),
                       keyfile=os.path.join(tls, "clients", "ww-sensor-01.key"),
                       cert_reqs=ssl.CERT_REQUIRED)
        connected = queue.Queue()
        client.on_connect = lambda _c, _u, _f, rc, _p=None: connected.put(rc.value)
        client.connect("127.0.0.1", tls_port, keepalive=30)
        client.loop_start()
        self.addCleanup(client.loop_stop)
        self.assertEqual(connected.get(timeout=10), 0)
        client.disconnect()
        harness.wait_for("the TLS client in the log",
                         lambda: "as ww-sensor-01 (p5, c1, k30, u'ww-sensor-01')" in broker.log())

    def test_the_example_as_written(self):
        self.assert_serves_both_listeners(self.start_documented(doc_conf()))

    def test_the_example_with_every_option_uncommented(self):
        conf, n = re.subn(r"^#(plugin_opt_\w+ )", r"\1", doc_conf(), flags=re.M)
        self.assertGreater(n, 20)
        broker = self.start_documented(conf)
        self.assertNotIn("unknown option", broker.log())
        self.assert_serves_both_listeners(broker)


if __name__ == "__main__":
    harness.main()
