"""Mutual TLS on a real broker: certificates made by
scripts/make-demo-certs.sh, the certificate's CN as the username, and
plugin_opt_require_cert_org_match true. A client with a valid certificate
of its organization gets its data; a certificate naming another
organization, one from an unknown CA, and no certificate are refused."""

import os
import queue
import ssl
import subprocess
import tempfile

import harness

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

SRCDIR = os.environ.get("TF_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
TOPIC = "city/water/d7/telemetry"
IDENTITIES = {
    "trustflow_identities": 1,
    "organizations": {"city-waterworks": {}, "maint-co": {}},
    "clients": {
        "ww-sensor-01": {"org": "city-waterworks", "roles": ["sensor"]},
        "maint-app": {"org": "maint-co"},
    },
}
WATER = {
    "trustflow_policy": 1, "id": "water-telemetry", "version": 3, "owner": "city-waterworks",
    "topics": ["city/water/+/telemetry"], "publishers": {"roles": ["sensor"]},
    "consumers": [{"orgs": ["maint-co"]}],
}


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True)


def issue(ca_dir, name, subject, out_dir):
    """A client key and certificate signed by the CA in ca_dir."""
    key, csr, crt = (os.path.join(out_dir, f"{name}.{ext}") for ext in ("key", "csr", "crt"))
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
    openssl("req", "-new", "-key", key, "-subj", subject, "-out", csr)
    openssl("x509", "-req", "-in", csr, "-CA", os.path.join(ca_dir, "ca.crt"),
            "-CAkey", os.path.join(ca_dir, "ca.key"), "-CAcreateserial", "-days", "30",
            "-out", crt)
    return crt, key


class TlsClient:
    """A paho client over TLS; connected is the CONNACK code, or None when
    the connection failed (the TLS handshake included)."""

    def __init__(self, port, ca, cert=None, key=None, client_id=None, persistent=False):
        self.messages = queue.Queue()
        self.acks = queue.Queue()
        self.gone = queue.Queue()
        self.mqtt = paho.Client(client_id=client_id or f"tls-{os.urandom(4).hex()}",
                                protocol=paho.MQTTv5)
        self.mqtt.tls_set(ca_certs=ca, certfile=cert, keyfile=key, cert_reqs=ssl.CERT_REQUIRED)
        connected = queue.Queue()
        self.mqtt.on_connect = lambda c, u, f, rc, p=None: connected.put(rc.value)
        self.mqtt.on_message = lambda c, u, m: self.messages.put(m)
        self.mqtt.on_subscribe = lambda c, u, mid, codes, *a: self.acks.put(codes[0].value)
        self.mqtt.on_disconnect = lambda *a: self.gone.put(True)
        self.connected = None
        try:
            if persistent:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = 300
                self.mqtt.connect("127.0.0.1", port, keepalive=30, clean_start=False,
                                  properties=props)
            else:
                self.mqtt.connect("127.0.0.1", port, keepalive=30)
            # Until the CONNACK, or until the connection fails: a refused
            # certificate shows as a TLS error or a closed connection.
            deadline = harness.time.monotonic() + 10
            while connected.empty() and harness.time.monotonic() < deadline:
                if self.mqtt.loop(timeout=0.1) != paho.MQTT_ERR_SUCCESS:
                    return
        except (ssl.SSLError, OSError):
            return
        if not connected.empty():
            self.connected = connected.get()
            self.mqtt.loop_start()

    def subscribe(self, topic):
        self.mqtt.subscribe(topic, qos=1)
        return self.acks.get(timeout=10)

    def close(self):
        if self.connected is None:
            return                         # nothing to close: it never connected
        self.mqtt.disconnect()
        self.mqtt.loop_stop()


class MutualTlsTest(harness.BrokerTestCase):
    def setUp(self):
        self.certs = tempfile.mkdtemp(prefix="tf-certs-")
        ids = os.path.join(self.certs, "identities.json")
        harness.write_json(ids, IDENTITIES)
        subprocess.run(["bash", os.path.join(SRCDIR, "scripts", "make-demo-certs.sh"),
                        self.certs, ids, "localhost", "127.0.0.1"],
                       check=True, capture_output=True)
        self.ca = os.path.join(self.certs, "ca.crt")
        self.tls_port = harness.free_port()
        tls = (f"listener {self.tls_port} 127.0.0.1\n"
               f"cafile {self.ca}\n"
               f"certfile {os.path.join(self.certs, 'broker.crt')}\n"
               f"keyfile {os.path.join(self.certs, 'broker.key')}\n"
               "require_certificate true\nuse_identity_as_username true\n"
               "use_username_as_clientid true\n")
        self.broker = self.start_broker(identities=IDENTITIES, policies={"water.json": WATER},
                                        passwords={u: "demo" for u in IDENTITIES["clients"]},
                                        plugin_options={"require_cert_org_match": "true"},
                                        extra_conf=tls)
        self.addCleanup(harness.shutil.rmtree, self.certs, True)

    def client_of(self, username, cert_dir=None, **kwargs):
        cert_dir = cert_dir or os.path.join(self.certs, "clients")
        client = TlsClient(self.tls_port, self.ca, os.path.join(cert_dir, f"{username}.crt"),
                           os.path.join(cert_dir, f"{username}.key"), **kwargs)
        self.addCleanup(client.close)
        return client

    def test_a_valid_certificate_of_its_org_gets_its_data(self):
        maint = self.client_of("maint-app")
        self.assertEqual(maint.connected, 0)
        self.assertEqual(maint.subscribe(TOPIC), 1)
        sensor = self.client_of("ww-sensor-01")
        sensor.mqtt.publish(TOPIC, '{"flow": 1}', qos=1).wait_for_publish(timeout=10)
        msg = maint.messages.get(timeout=10)
        self.assertEqual(msg.payload, b'{"flow": 1}')
        # The certificate's CN is the username the stamp names.
        self.assertEqual(harness.stamp_verifier().stamp_of(msg)["tf-client"], "ww-sensor-01")
        # A client of the password listener has no certificate to judge.
        self.assertLess(harness.publish_v5(self.broker, "ww-sensor-01", TOPIC, '{"flow": 2}'),
                        0x80)
        self.assertEqual(maint.messages.get(timeout=10).payload, b'{"flow": 2}')

    def test_a_certificate_cannot_take_over_another_clients_session(self):
        # mosquitto hands a session to whoever connects with its client id,
        # and certificate clients skip the plugin's check at CONNECT: the
        # listener's use_username_as_clientid makes the CN the client id.
        maint = self.client_of("maint-app", client_id="maint-app", persistent=True)
        self.assertEqual(maint.subscribe(TOPIC), 1)
        maint.close()
        intruder = self.client_of("ww-sensor-01", client_id="maint-app", persistent=True)
        self.assertEqual(intruder.connected, 0)
        self.assertLess(harness.publish_v5(self.broker, "ww-sensor-01", TOPIC, '{"flow": 3}'),
                        0x80)
        back = self.client_of("maint-app", client_id="maint-app", persistent=True)
        self.assertEqual(back.connected, 0)
        self.assertEqual(back.messages.get(timeout=10).payload, b'{"flow": 3}')
        self.assertTrue(intruder.messages.empty())

    def test_a_certificate_naming_another_org_is_refused(self):
        wrong = os.path.join(self.certs, "wrong")
        os.mkdir(wrong)
        issue(self.certs, "maint-app", "/O=city-waterworks/CN=maint-app", wrong)
        impostor = self.client_of("maint-app", wrong)
        self.assertEqual(impostor.subscribe(TOPIC), 0x87)
        self.assertTrue(impostor.gone.get(timeout=10))
        self.assertIn("does not name its organization", self.broker.log())

    def test_a_certificate_from_an_unknown_ca_is_refused(self):
        other = os.path.join(self.certs, "other-ca")
        os.mkdir(other)
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out",
                os.path.join(other, "ca.key"))
        openssl("req", "-x509", "-new", "-key", os.path.join(other, "ca.key"), "-days", "30",
                "-subj", "/O=someone else/CN=other CA", "-out", os.path.join(other, "ca.crt"))
        issue(other, "maint-app", "/O=maint-co/CN=maint-app", other)
        self.assertIsNone(self.client_of("maint-app", other).connected)

    def test_no_certificate_is_refused(self):
        client = TlsClient(self.tls_port, self.ca)
        self.addCleanup(client.close)
        self.assertIsNone(client.connected)


if __name__ == "__main__":
    harness.main()
