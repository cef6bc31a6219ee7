"""tfctl console over plain HTTP and HTTPS, against a real broker: signing
in (the broker decides: a wrong password, another role), the session
cookie's flags, the CSRF token every action needs, one organization's
steward seeing nothing of another's, /metrics read by a Prometheus
parser and its counters checked against the messages sent, and requests
that are too large or malformed."""

import json
import os
import re
import shutil
import ssl
import subprocess
import tempfile

import harness
from harness import publish_v5, wait_for
from console_support import Console, Web, basic_auth

WATER_TOPIC = "city/water/d7/telemetry"
AIR_TOPIC = "city/air/s1"
IDENTITIES = {
    "trustflow_identities": 1,
    "organizations": {"city-waterworks": {}, "maint-co": {}, "research-lab": {}, "city-it": {},
                      "other-co": {}},
    "clients": {
        "ww-sensor-01": {"org": "city-waterworks", "roles": ["sensor"]},
        "ww-steward": {"org": "city-waterworks", "roles": ["data-steward"]},
        "maint-app": {"org": "maint-co"},
        "lab-sensor": {"org": "research-lab", "roles": ["sensor"]},
        "lab-steward": {"org": "research-lab", "roles": ["data-steward"]},
        "tf-admin": {"org": "city-it", "roles": ["trustflow-admin"]},
        "snoop": {"org": "other-co"},
    },
}
SCHEMA = {"type": "object", "properties": {"flow": {"type": "number"}}, "required": ["flow"]}
WATER = {
    "trustflow_policy": 1, "id": "water-telemetry", "version": 2, "owner": "city-waterworks",
    "topics": ["city/water/+/telemetry"], "publishers": {"roles": ["sensor"]},
    "consumers": [{"orgs": ["maint-co"]}],
    "schema": SCHEMA, "on_violation": {"action": "quarantine"},
}
AIR = {
    "trustflow_policy": 1, "id": "air-quality", "version": 1, "owner": "research-lab",
    "topics": ["city/air/+"], "publishers": {"orgs": ["research-lab"]},
    "schema": SCHEMA, "on_violation": {"action": "quarantine"},
}
PASSWORDS = {name: "demo" for name in IDENTITIES["clients"]}
NO_SUBSCRIBERS = 16
NOT_AUTHORIZED = 135


try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    text_string_to_metric_families = None


def samples(text):
    """{(name, frozenset(labels.items())): value} of an exposition, read by
    prometheus_client's parser (which refuses what the format forbids)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def sample(parsed, name, **labels):
    return parsed.get((name, frozenset(labels.items())))


class ConsoleTest(harness.BrokerTestCase):
    def setUp(self):
        self.broker = self.start_broker(
            identities=IDENTITIES, passwords=PASSWORDS,
            policies={"water.json": WATER, "air.json": AIR},
            plugin_options={"metrics_interval_s": "1"})
        self.console = self.start_console(self.broker.port)

    def start_console(self, port, *extra, cafile=None):
        console = Console(port, *extra, cafile=cafile)
        self.addCleanup(self.stop_console, console)
        return console

    def stop_console(self, console):
        status = console.stop()
        if status != 0:
            raise AssertionError(f"tfctl console exited {status}:\n{console.stderr}")

    def web(self, username=None):
        w = Web(self.console)
        if username is not None:
            r = w.login(username)
            self.assertEqual(r.status, 200, r)
        return w

    def quarantine_water(self, *payloads):
        """Holds the water flow: a reading that breaks the schema, then
        the payloads (held with it)."""
        self.assertEqual(publish_v5(self.broker, "ww-sensor-01", WATER_TOPIC, '{"flow": "x"}'),
                         NO_SUBSCRIBERS)
        for p in payloads:
            self.assertEqual(publish_v5(self.broker, "ww-sensor-01", WATER_TOPIC, p),
                             NO_SUBSCRIBERS)

    def state_when(self, w, done, what):
        return wait_for(what, lambda: (lambda s: s if done(s) else None)(
            w.get("/api/state").json()), timeout=15)

    # -- signing in ---------------------------------------------------------

    def test_sign_in_sets_a_strict_http_only_cookie_and_the_broker_decides_who(self):
        w = self.web()
        for user, password in (("ww-steward", "wrong"), ("nobody", "demo")):
            r = w.post("/api/login", {"username": user, "password": password})
            self.assertEqual(r.status, 401, r)
            # Nothing says which of the two was wrong.
            self.assertEqual(r.json(), {"error": "wrong user name or password"})
            self.assertIsNone(r.header("Set-Cookie"))
        # A cross-site form cannot send JSON.
        r = w.post("/api/login", "username=ww-steward&password=demo",
                   content_type="application/x-www-form-urlencoded")
        self.assertEqual(r.status, 415, r)
        r = w.post("/api/login", {"username": "ww-steward"})
        self.assertEqual(r.status, 400, r)
        # A client without the steward's or administrator's role.
        r = w.post("/api/login", {"username": "snoop", "password": "demo"})
        self.assertEqual(r.status, 403, r)
        self.assertIn("trustflow-admin or data-steward", r.json()["error"])

        r = w.login("ww-steward")
        self.assertEqual(r.status, 200, r)
        cookie = r.header("Set-Cookie")
        self.assertRegex(cookie, r"^tf_session=[0-9a-f]{64}; ")
        flags = [f.strip() for f in cookie.split(";")[1:]]
        self.assertIn("HttpOnly", flags)
        self.assertIn("SameSite=Strict", flags)
        self.assertIn("Path=/", flags)
        self.assertNotIn("Secure", flags)          # plain HTTP here
        self.assertEqual(r.json()["user"], "ww-steward")
        self.assertRegex(r.json()["csrf"], r"^[0-9a-f]{64}$")
        self.assertNotIn(r.json()["csrf"], cookie)
        for header, value in (("Content-Security-Policy", "default-src 'self'"),
                              ("Content-Security-Policy", "frame-ancestors 'none'"),
                              ("X-Content-Type-Options", "nosniff"),
                              ("Cache-Control", "no-store"),
                              ("Referrer-Policy", "no-referrer")):
            self.assertIn(value, r.header(header) or "", header)
        self.assertEqual(w.get("/api/session").json(), {"user": "ww-steward", "csrf": w.csrf})

        # Another sign-in from the same browser replaces the session.
        old = w.cookie
        self.assertEqual(w.login("ww-steward").status, 200)
        self.assertNotEqual(w.cookie, old)
        stale = Web(self.console)
        stale.cookie = old
        self.assertEqual(stale.get("/api/state").status, 401)

        # Signing out is an action too: it needs the token.
        self.assertEqual(w.post("/api/logout", csrf=False).status, 403)
        self.assertEqual(w.get("/api/state").status, 200)
        r = w.post("/api/logout")
        self.assertEqual(r.status, 200, r)
        self.assertIn("Max-Age=0", r.header("Set-Cookie"))
        self.assertEqual(w.get("/api/state").status, 401)
        self.assertEqual(w.get("/api/session").status, 401)

    def test_the_page_and_its_assets_are_served_without_inline_scripts(self):
        w = self.web()
        page = w.get("/")
        self.assertEqual(page.status, 200)
        self.assertTrue(page.header("Content-Type").startswith("text/html"))
        html = page.body.decode()
        scripts = re.findall(r"<script[^>]*>", html)
        self.assertTrue(scripts)
        for tag in scripts:
            self.assertIn(' src="', tag)             # CSP forbids inline ones
        self.assertNotIn("http://", html.replace("http://www.w3.org", ""))
        self.assertNotIn("https://", html)
        for asset, kind in (("console.js", "text/javascript"), ("console.css", "text/css"),
                            ("impact.js", "text/javascript"), ("impact.css", "text/css")):
            r = w.get("/" + asset)
            self.assertEqual(r.status, 200, asset)
            self.assertTrue(r.header("Content-Type").startswith(kind), asset)
            self.assertNotIn(b"innerHTML", r.body)
            self.assertEqual(r.header("X-Content-Type-Options"), "nosniff")
        for path in ("/../etc/passwd", "/nothing.js", "/api/nothing", "/%2e%2e/Makefile"):
            self.assertEqual(w.get(path).status, 404, path)
        self.assertEqual(w.post("/api/state").status, 405)
        self.assertEqual(w.get("/api/release").status, 405)

    def test_bad_requests_get_clear_errors(self):
        w = self.web("ww-steward")
        r = w.post("/api/release", b"x" * (65 * 1024))
        self.assertEqual(r.status, 413, r)
        r = w.post("/api/release", "{not json")
        self.assertEqual(r.status, 400, r)
        r = w.post("/api/release", {"flow": 7})
        self.assertEqual(r.status, 400, r)
        r = w.post("/api/release", {"flow": "water-telemetry/x", "override": "yes"})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(w.get("/api/state?since=-1").status, 400)
        self.assertEqual(w.get("/api/state?since=abc").status, 400)
        self.assertEqual(w.get("/api/message").status, 400)
        self.assertEqual(w.get("/api/impact?alert=x&window=0").status, 400)
        r = w.get("/api/message?id=" + "0" * 32)
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.json()["error"], "no such message")
        r = w.post("/api/discard", {"flow": "water-telemetry/nobody"})
        self.assertEqual(r.status, 404, r)
        # The console still answers.
        self.assertEqual(w.get("/api/state").status, 200)

    # -- actions and what each may see -------------------------------------

    def test_an_action_without_the_csrf_token_is_refused_and_releases_nothing(self):
        maint = self.client(self.broker, "c-maint", username="maint-app", password="demo")
        self.assertEqual(maint.subscribe(WATER_TOPIC), 1)
        self.quarantine_water('{"flow": 2}', '{"flow": 3}')
        w = self.web("ww-steward")
        (flow,) = w.get("/api/quarantine").json()["flows"]
        self.assertEqual((flow["flow"], flow["held"]), ("water-telemetry/ww-sensor-01", 3))

        release = {"flow": "water-telemetry/ww-sensor-01", "override": True}
        self.assertEqual(w.post("/api/release", release, csrf=False).status, 403)
        self.assertEqual(w.post("/api/release", release,
                                headers={"X-CSRF-Token": "0" * 64}, csrf=False).status, 403)
        self.assertEqual(w.post("/api/release", release,
                                headers={"X-CSRF-Token": w.cookie.split("=")[1]},
                                csrf=False).status, 403)
        self.assertEqual(w.post("/api/discard", {"flow": flow["flow"]}, csrf=False).status, 403)
        anonymous = Web(self.console)
        self.assertEqual(anonymous.post("/api/release", release).status, 401)
        (still,) = w.get("/api/quarantine").json()["flows"]
        self.assertEqual(still["held"], 3)
        self.assertTrue(maint.messages.empty())

        r = w.post("/api/release", release)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"released": 3, "expired": 0, "kept": 0, "overridden": 1})
        self.assertEqual([maint.receive().payload for _ in range(3)],
                         [b'{"flow": "x"}', b'{"flow": 2}', b'{"flow": 3}'])
        self.assertEqual(w.get("/api/quarantine").json(), {"flows": []})

    def test_another_orgs_steward_sees_none_of_it(self):
        maint = self.client(self.broker, "c-maint", username="maint-app", password="demo")
        self.assertEqual(maint.subscribe(WATER_TOPIC), 1)
        self.assertEqual(publish_v5(self.broker, "ww-sensor-01", WATER_TOPIC, '{"flow": 1}'), 0)
        msg_id = harness.stamp_verifier().stamp_of(maint.receive())["tf-id"]
        self.assertEqual(publish_v5(self.broker, "lab-sensor", AIR_TOPIC, '{"flow": 1}'),
                         NO_SUBSCRIBERS)
        self.quarantine_water()
        self.assertEqual(publish_v5(self.broker, "lab-sensor", AIR_TOPIC, '{"flow": "y"}'),
                         NO_SUBSCRIBERS)

        ww, lab, admin = self.web("ww-steward"), self.web("lab-steward"), self.web("tf-admin")
        own = self.state_when(ww, lambda s: s["policies"] and s["alerts"], "the steward's state")
        self.assertEqual([p["policy"] for p in own["policies"]], ["water-telemetry"])
        self.assertEqual({a["policy"] for a in own["alerts"]}, {"water-telemetry@2"})
        self.assertIsNone(own["broker"])
        other = self.state_when(lab, lambda s: s["policies"] and s["alerts"], "the other's state")
        self.assertEqual([p["policy"] for p in other["policies"]], ["air-quality"])
        self.assertEqual({a["policy"] for a in other["alerts"]}, {"air-quality@1"})
        everything = self.state_when(
            admin, lambda s: len(s["policies"]) == 2 and s["broker"], "the administrator's")
        self.assertEqual([p["policy"] for p in everything["policies"]],
                         ["air-quality", "water-telemetry"])

        self.assertEqual([f["flow"] for f in lab.get("/api/quarantine").json()["flows"]],
                         ["air-quality/lab-sensor"])
        r = lab.post("/api/release", {"flow": "water-telemetry/ww-sensor-01", "override": True})
        self.assertEqual((r.status, r.json()), (403, {"error": "not authorized"}))
        r = lab.post("/api/discard", {"flow": "water-telemetry/ww-sensor-01"})
        self.assertEqual(r.status, 403)
        self.assertEqual([f["held"] for f in ww.get("/api/quarantine").json()["flows"]], [1])
        self.assertEqual(lab.get("/api/message?id=" + msg_id).status, 403)
        water_alert = own["alerts"][0]["id"]
        self.assertEqual(lab.get("/api/impact?alert=" + water_alert).status, 403)
        lab_metrics = samples(lab.get("/metrics").body.decode())
        self.assertTrue(lab_metrics)
        self.assertFalse([k for k in lab_metrics if ("policy", "water-telemetry") in k[1]])

        # The owner's steward looks the message up: its path and recipients.
        m = wait_for("the delivery in the trace", lambda: (lambda r: r.json() if r.status == 200
                     and r.json()["deliveries"] else None)(ww.get("/api/message?id=" + msg_id)))
        self.assertEqual((m["id"], m["topic"], m["client"]), (msg_id, WATER_TOPIC, "ww-sensor-01"))
        self.assertEqual([d["client"] for d in m["deliveries"]], ["maint-app"])

    def test_impact_report_of_an_alert(self):
        maint = self.client(self.broker, "c-maint", username="maint-app", password="demo")
        self.assertEqual(maint.subscribe(WATER_TOPIC), 1)
        for i in range(3):
            self.assertEqual(publish_v5(self.broker, "ww-sensor-01", WATER_TOPIC,
                                        json.dumps({"flow": i})), 0)
            maint.receive()
        self.quarantine_water()
        ww = self.web("ww-steward")
        alert = self.state_when(ww, lambda s: s["alerts"], "the alert")["alerts"][0]

        def report():
            r = ww.get(f"/api/impact?alert={alert['id']}&window=600")
            return r.json() if r.status == 200 and r.json()["recipients"] else None
        impact = wait_for("the impact report", report)
        self.assertEqual(impact["alert"]["id"], alert["id"])
        self.assertEqual((impact["flow"], impact["messages"], impact["held"]),
                         ("water-telemetry/ww-sensor-01", 4, 1))
        self.assertEqual([(r["client"], r["messages"]) for r in impact["recipients"]],
                         [("maint-app", 3)])
        self.assertEqual(ww.get("/api/impact?alert=" + "0" * 32).status, 404)

    # -- /metrics -----------------------------------------------------------

    def test_metrics_count_what_was_sent(self):
        anonymous = Web(self.console)
        r = anonymous.get("/metrics")
        self.assertEqual(r.status, 401)
        self.assertIn("Basic", r.header("WWW-Authenticate"))
        r = anonymous.get("/metrics", headers=basic_auth("tf-admin", "wrong"))
        self.assertEqual(r.status, 401)
        self.assertIn("Basic", r.header("WWW-Authenticate"))

        maint = self.client(self.broker, "c-maint", username="maint-app", password="demo")
        self.assertEqual(maint.subscribe(WATER_TOPIC), 1)
        sent = 7
        for i in range(sent):
            self.assertEqual(publish_v5(self.broker, "ww-sensor-01", WATER_TOPIC,
                                        json.dumps({"flow": i})), 0)
        for _ in range(sent):
            maint.receive()
        self.assertEqual(publish_v5(self.broker, "snoop", WATER_TOPIC, '{"flow": 1}'),
                         NOT_AUTHORIZED)
        water = {"policy": "water-telemetry", "owner": "city-waterworks"}

        def scrape(user):
            r = anonymous.get("/metrics", headers=basic_auth(user))
            self.assertEqual(r.status, 200, r)
            self.assertTrue(r.header("Content-Type").startswith("text/plain; version=0.0.4"))
            return samples(r.body.decode())

        parsed = wait_for("the counts of what was sent", lambda: (lambda p: p if (
            sample(p, "trustflow_policy_deliveries_total", **water) or 0) >= sent
            and sample(p, "trustflow_messages_refused_total", reason="denied") else None)(
            scrape("tf-admin")), timeout=15)
        # Exactly what was sent: 7 stamped and delivered to the one
        # subscriber, one refusal.
        self.assertEqual(sample(parsed, "trustflow_policy_messages_stamped_total", **water), sent)
        self.assertEqual(sample(parsed, "trustflow_policy_deliveries_total", **water), sent)
        self.assertEqual(sample(parsed, "trustflow_policy_window_messages", window="1m", **water),
                         sent)
        self.assertEqual(sample(parsed, "trustflow_policy_window_org_deliveries", window="1m",
                                org="maint-co", **water), sent)
        self.assertEqual(sample(parsed, "trustflow_policy_window_client_deliveries", window="1h",
                                client="maint-app", org="maint-co", **water), sent)
        self.assertEqual(sample(parsed, "trustflow_policy_version", **water), 2)
        self.assertEqual(sample(parsed, "trustflow_messages_stamped_total"), sent)
        self.assertEqual(sample(parsed, "trustflow_deliveries_total"), sent)
        self.assertEqual(sample(parsed, "trustflow_messages_refused_total", reason="denied"), 1)
        self.assertEqual(sample(parsed, "trustflow_alerts_total", kind="denied-publish"), 1)
        self.assertEqual(sample(parsed, "trustflow_policy_alerts_total", kind="denied-publish",
                                **water), 1)
        self.assertIsNotNone(sample(parsed, "trustflow_trace_queue"))
        self.assertIsNotNone(sample(parsed, "trustflow_start_time_seconds"))
        # The parser names counters without _total; the type is what counts.
        families = {f.name: f.type for f in text_string_to_metric_families(
            anonymous.get("/metrics", headers=basic_auth("tf-admin")).body.decode())}
        self.assertEqual(families["trustflow_messages_stamped"], "counter")
        self.assertEqual(families["trustflow_trace_queue"], "gauge")

        # A steward sees its own policies only, and nothing broker-wide.
        steward = scrape("ww-steward")
        self.assertEqual(sample(steward, "trustflow_policy_messages_stamped_total", **water), sent)
        self.assertFalse([k for k in steward if k[0].startswith("trustflow_messages")])
        self.assertFalse([k for k in steward if ("policy", "air-quality") in k[1]])
        # Each scrape does not connect again: one connection per scraper.
        scrape("tf-admin")
        log = self.broker.log()
        self.assertEqual(len(re.findall(r"New client connected .* as tf-console-\S+ .*u'tf-admin'",
                                        log)), 1, log)
        # A signed-in session reads them too.
        w = self.web("tf-admin")
        self.assertEqual(sample(samples(w.get("/metrics").body.decode()),
                                "trustflow_messages_stamped_total"), sent)

    def test_an_unreachable_broker_is_said(self):
        console = self.start_console(harness.free_port())
        r = Web(console).login("ww-steward")
        self.assertEqual(r.status, 502, r)
        self.assertEqual(r.json()["error"], "the broker cannot be reached")


class ConsoleTlsTest(harness.BrokerTestCase):
    def test_https_with_tls_cert_and_key_and_a_broker_over_tls(self):
        certs = tempfile.mkdtemp(prefix="tf-console-certs-")
        self.addCleanup(shutil.rmtree, certs, True)
        subprocess.run(["bash", os.path.join(harness.SRCDIR, "scripts", "make-demo-certs.sh"),
                        certs, os.path.join(harness.SRCDIR, "broker", "conf", "demo",
                                            "identities.json"), "127.0.0.1"],
                       check=True, capture_output=True)
        tls_port = harness.free_port()
        broker = self.start_broker(
            identities=IDENTITIES, passwords=PASSWORDS, policies={"water.json": WATER},
            extra_conf=f"listener {tls_port} 127.0.0.1\ncafile {certs}/ca.crt\n"
                       f"certfile {certs}/broker.crt\nkeyfile {certs}/broker.key\n")
        ca = os.path.join(certs, "ca.crt")
        console = Console(tls_port, "--tls-cert", os.path.join(certs, "broker.crt"),
                          "--tls-key", os.path.join(certs, "broker.key"),
                          "--cafile", ca, "--host", "127.0.0.1", cafile=ca)
        self.addCleanup(console.stop)
        self.assertEqual(console.scheme, "https")
        w = Web(console)
        r = w.login("ww-steward")
        self.assertEqual(r.status, 200, r)
        self.assertIn("Secure", [f.strip() for f in r.header("Set-Cookie").split(";")])
        self.assertEqual(w.get("/api/state").status, 200)
        self.assertEqual(w.get("/").status, 200)
        # Plain HTTP to the HTTPS port gets no page.
        import http.client
        plain = http.client.HTTPConnection(console.host, console.port, timeout=10)
        with self.assertRaises((http.client.HTTPException, OSError)):
            plain.request("GET", "/")
            plain.getresponse().read()
        plain.close()
        # A client that does not trust the certificate refuses it.
        strict = http.client.HTTPSConnection(console.host, console.port, timeout=10,
                                             context=ssl.create_default_context())
        with self.assertRaises(ssl.SSLError):
            strict.request("GET", "/")
        strict.close()
        self.assertEqual(console.stop(), 0, console.stderr)
        self.assertIn("tf-console-", broker.log())

    def test_bad_flags_are_usage_errors(self):
        for args in (["--tls-cert", "/nonexistent.pem"], ["--http-port", "70000"],
                     ["--port", "0"], ["--listen"], ["--frobnicate", "1"],
                     ["--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.pem"],
                     ["--listen", "not an address!", "--http-port", "0"]):
            out = harness.run([harness.TFCTL, "console"] + args, check=False, timeout=30)
            self.assertEqual(out.returncode, 2, args)
            self.assertIn("tfctl console", out.stderr)


if __name__ == "__main__":
    if text_string_to_metric_families is None:
        print("SKIP: /metrics is read with Prometheus' own parser: apt-get install "
              "python3-prometheus-client")
        raise SystemExit(77)
    harness.main()
