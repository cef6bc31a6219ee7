"""The control API and alerts on a real broker: every command for an
administrator, a data steward limited to its own org's policies, everyone
else refused; answers reach the caller alone; alerts reach those who may
read them."""

import json
import re
import subprocess
import time

import harness
from harness import TFCTL, publish_v5, run

WATER_TOPIC = "city/water/d7/telemetry"
AIR_TOPIC = "city/air/s1"
IDENTITIES = {
    "trustflow_identities": 1,
    "organizations": {"city-waterworks": {}, "research-lab": {}, "city-it": {}},
    "clients": {
        "ww-sensor-01": {"org": "city-waterworks", "roles": ["sensor"]},
        "lab-sensor": {"org": "research-lab", "roles": ["sensor"]},
        "tf-admin": {"org": "city-it", "roles": ["trustflow-admin"]},
        "tf-admin-2": {"org": "city-it", "roles": ["trustflow-admin"]},
        "ww-steward": {"org": "city-waterworks", "roles": ["data-steward"]},
        "lab-steward": {"org": "research-lab", "roles": ["data-steward"]},
        "lab-analyst": {"org": "research-lab"},
    },
}
SCHEMA = {"type": "object", "properties": {"flow": {"type": "number"}}, "required": ["flow"]}
WATER = {
    "trustflow_policy": 1, "id": "water-telemetry", "version": 3, "owner": "city-waterworks",
    "topics": ["city/water/+/telemetry"], "publishers": {"roles": ["sensor"]},
    "schema": SCHEMA,
}
AIR = {
    "trustflow_policy": 1, "id": "air-quality", "version": 1, "owner": "research-lab",
    "topics": ["city/air/+"], "publishers": {"orgs": ["research-lab"]},
    "schema": SCHEMA,
}
PASSWORDS = {name: "demo" for name in IDENTITIES["clients"]}
REQUEST = "$CONTROL/trustflow/v1"
RESPONSE = "$CONTROL/trustflow/v1/response"


class ControlTest(harness.BrokerTestCase):
    def setUp(self):
        self.broker = self.start_broker(identities=IDENTITIES, passwords=PASSWORDS,
                                        policies={"water.json": WATER, "air.json": AIR})

    def login(self, username):
        return self.client(self.broker, f"c-{username}", username=username, password="demo")

    def operator(self, username):
        client = self.login(username)
        self.assertEqual(client.subscribe(RESPONSE), 1)
        return client

    def ask(self, client, *commands, correlation=None):
        """Sends one request; returns its responses (and checks the
        correlation data came back)."""
        request = {"commands": list(commands)}
        if correlation is not None:
            request["correlationData"] = correlation
        client.publish(REQUEST, json.dumps(request))
        msg = client.receive()
        self.assertEqual(msg.topic, RESPONSE)
        answer = json.loads(msg.payload)
        self.assertEqual(answer.get("correlationData"), correlation)
        return answer["responses"]

    def violate(self, username, topic):
        """A message the policy's schema refuses: dropped, and an alert."""
        self.assertEqual(publish_v5(self.broker, username, topic, '{"flow": "high"}'), 135)

    def test_an_administrator_lists_alerts_of_every_policy(self):
        admin = self.operator("tf-admin")
        self.violate("ww-sensor-01", WATER_TOPIC)
        self.violate("lab-sensor", AIR_TOPIC)
        (r,) = self.ask(admin, {"command": "listAlerts"}, correlation="req-1")
        self.assertEqual(r["command"], "listAlerts")
        alerts = r["data"]["alerts"]
        self.assertEqual([(a["kind"], a["policy"], a["client"], a["action"]) for a in alerts],
                         [("schema-violation", "water-telemetry@3", "ww-sensor-01", "drop"),
                          ("schema-violation", "air-quality@1", "lab-sensor", "drop")])
        self.assertEqual(set(alerts[0]), {"id", "ts", "kind", "policy", "org", "client",
                                          "detail", "action"})
        (r,) = self.ask(admin, {"command": "listAlerts", "since": alerts[1]["ts"] + 1})
        self.assertEqual(r["data"]["alerts"], [])

    def test_a_steward_sees_and_explains_its_own_orgs_policies_only(self):
        steward = self.operator("ww-steward")
        self.violate("ww-sensor-01", WATER_TOPIC)
        self.violate("lab-sensor", AIR_TOPIC)
        listed, own, sender, other, reload = self.ask(
            steward, {"command": "listAlerts"},
            {"command": "explain", "client": "lab-analyst", "topic": WATER_TOPIC,
             "action": "receive"},
            {"command": "explain", "client": "ww-steward", "topic": WATER_TOPIC,
             "action": "publish"},
            {"command": "explain", "client": "lab-analyst", "topic": AIR_TOPIC,
             "action": "receive"},
            {"command": "reloadPolicies"})
        self.assertEqual([a["policy"] for a in listed["data"]["alerts"]], ["water-telemetry@3"])
        self.assertEqual((own["data"]["decision"], own["data"]["policy"]),
                         ("deny", "water-telemetry@3"))
        self.assertEqual(own["data"]["reason"], "the policy names no consumers")
        # The explanation names what failed, as tfctl policy explain does.
        self.assertEqual(sender["data"], {
            "decision": "deny", "policy": "water-telemetry@3", "rule": None,
            "reason": "publishers: role data-steward not among the publishers' roles (sensor)"})
        self.assertEqual(other, {"command": "explain", "error": "not authorized"})
        self.assertEqual(reload, {"command": "reloadPolicies", "error": "not authorized"})

    def test_get_message_answers_from_the_trace(self):
        admin = self.operator("tf-admin")
        lab_steward = self.operator("lab-steward")
        ww_steward = self.login("ww-steward")     # of the owner: it reads the data
        self.assertEqual(ww_steward.subscribe(WATER_TOPIC), 1)
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", WATER_TOPIC, '{"flow": 2}'),
                        0x80)
        msg = ww_steward.receive()
        msg_id = harness.stamp_verifier().stamp_of(msg)["tf-id"]
        # The trace writer commits within moments; ask until the delivery
        # is there.
        deadline = harness.time.monotonic() + 10
        while True:
            (r,) = self.ask(admin, {"command": "getMessage", "id": msg_id})
            if "data" in r and r["data"]["deliveries"] or harness.time.monotonic() > deadline:
                break
            harness.time.sleep(0.05)
        self.assertEqual((r["data"]["id"], r["data"]["topic"], r["data"]["status"]),
                         (msg_id, WATER_TOPIC, "delivered"))
        self.assertEqual(r["data"]["deliveries"][0]["client"], "ww-steward")
        (r,) = self.ask(lab_steward, {"command": "getMessage", "id": msg_id})
        self.assertEqual(r["error"], "not authorized")
        (r,) = self.ask(admin, {"command": "getMessage", "id": "0" * 32})
        self.assertEqual(r["error"], "no such message")

    def test_reload_policies(self):
        admin = self.operator("tf-admin")
        (r,) = self.ask(admin, {"command": "reloadPolicies"})
        self.assertEqual(r, {"command": "reloadPolicies", "data": {"policies": 2}})
        self.broker.write_policy("air.json", '{"trustflow_policy": 1, "id": ')
        (r,) = self.ask(admin, {"command": "reloadPolicies"})
        self.assertIn("air.json", r["error"])
        # The old set stays in force, and the refusal is an alert.
        self.assertLess(publish_v5(self.broker, "lab-sensor", AIR_TOPIC, '{"flow": 1}'), 0x80)
        (r,) = self.ask(admin, {"command": "listAlerts"})
        self.assertEqual([a["kind"] for a in r["data"]["alerts"]], ["reload-failed"])

    def test_the_answer_goes_to_the_caller_alone(self):
        first = self.operator("tf-admin")
        second = self.operator("tf-admin-2")
        self.ask(first, {"command": "listAlerts"}, correlation="first")
        # Had the first answer reached the second admin, it would arrive
        # before the answer to its own request.
        self.ask(second, {"command": "listAlerts"}, correlation="second")

    def test_bad_requests_get_an_error(self):
        admin = self.operator("tf-admin")
        admin.publish(REQUEST, "not json")
        answer = json.loads(admin.receive().payload)
        self.assertIn("not a request", answer["responses"][0]["error"])
        (r,) = self.ask(admin, {"command": "launchRockets"})
        self.assertEqual(r, {"command": "launchRockets", "error": "unknown command"})
        (r,) = self.ask(admin, {"command": "explain", "client": "x"})
        self.assertIn("required", r["error"])

    def test_a_string_with_a_nul_is_refused(self):
        # cJSON would read "explain\u0000x" as "explain": the whole
        # request is refused, wherever the NUL is.
        admin = self.operator("tf-admin")
        for command in ({"command": "explain\u0000x", "client": "lab-analyst",
                         "topic": WATER_TOPIC, "action": "receive"},
                        {"command": "explain", "client": "lab-analyst",
                         "topic": WATER_TOPIC + "\u0000x", "action": "receive"}):
            (r,) = self.ask(admin, command)
            self.assertEqual(r["command"], "")
            self.assertIn("the escape \\u0000 (a NUL character) is not allowed", r["error"])

    def test_numbers_out_of_range_are_an_error(self):
        admin = self.operator("tf-admin")
        self.violate("ww-sensor-01", WATER_TOPIC)
        # 1e30 and -1e400 are no ms since the epoch; cast to an integer they
        # were undefined behaviour that listed every alert.
        for since in ("1e30", "-1e400", "-1", "1.5", '"0"'):
            admin.publish(REQUEST, '{"commands": [{"command": "listAlerts", "since": %s}]}'
                          % since)
            (r,) = json.loads(admin.receive().payload)["responses"]
            self.assertEqual(r["command"], "listAlerts")
            self.assertIn("since: must be an integer from 0", r["error"])
        (r,) = self.ask(admin, {"command": "listAlerts", "since": 0})
        self.assertEqual(len(r["data"]["alerts"]), 1)
        for command, member in (("listAlerts", "limit"), ("listQuarantine", "limit"),
                                ("listAlerts", "cursor"), ("listQuarantine", "cursor")):
            for value in (-1, 0.5, 1e30, "1") + ((0, 501) if member == "limit" else ()):
                (r,) = self.ask(admin, {"command": command, member: value})
                self.assertTrue(r["error"].startswith(member + ": must be an integer from"),
                                r)

    def test_many_commands_are_refused_as_a_whole(self):
        admin = self.operator("tf-admin")
        responses = self.ask(admin, *[{"command": "listAlerts"}] * 16)
        self.assertEqual([r["command"] for r in responses], ["listAlerts"] * 16)
        (r,) = self.ask(admin, *[{"command": "listAlerts"}] * 17)
        self.assertEqual(r, {"command": "", "error": "more than 16 commands in one request"})

    def test_everyone_else_is_refused(self):
        analyst = self.login("lab-analyst")
        self.assertEqual(analyst.subscribe(RESPONSE), 0x87)
        self.assertEqual(analyst.subscribe("$CONTROL/trustflow/#"), 0x87)
        self.assertEqual(analyst.subscribe("$trustflow/alerts/#"), 0x87)
        self.assertEqual(publish_v5(self.broker, "lab-analyst", REQUEST,
                                    '{"commands": [{"command": "listAlerts"}]}'), 135)

    def test_alerts_reach_admins_and_the_owners_stewards(self):
        admin = self.login("tf-admin")
        ww_steward = self.login("ww-steward")
        lab_steward = self.login("lab-steward")
        for client in (admin, ww_steward, lab_steward):
            self.assertEqual(client.subscribe("$trustflow/alerts/#"), 1)
        self.violate("ww-sensor-01", WATER_TOPIC)
        self.violate("lab-sensor", AIR_TOPIC)
        got = {name: json.loads(client.receive().payload)["policy"]
               for name, client in (("admin", admin), ("ww", ww_steward), ("lab", lab_steward))}
        # Each steward's first alert is its own org's: the other's was
        # withheld (it was raised first for the waterworks).
        self.assertEqual(got, {"admin": "water-telemetry@3", "ww": "water-telemetry@3",
                               "lab": "air-quality@1"})
        self.assertEqual(json.loads(admin.receive().payload)["policy"], "air-quality@1")

    def test_alerts_folded_with_none_after_them_are_raised_once_their_second_ends(self):
        admin = self.operator("tf-admin")
        self.assertEqual(admin.subscribe("$trustflow/alerts/#"), 1)
        sensor = self.login("ww-sensor-01")
        for i in range(5):
            sensor.publish(WATER_TOPIC, '{"flow": "high-%d"}' % i)
        # Repeats within a second are folded into the alert before them;
        # those that no later alert mentions come, once their second ends,
        # as one alert of their own. However the five fall into seconds,
        # the alerts account for all five, and the last is such a report.
        alerts, told = [], 0
        while told < 5:
            alerts.append(json.loads(admin.receive().payload))
            told += alert_count(alerts[-1]["detail"])
        self.assertEqual(told, 5)
        first, folded = alerts[0], alerts[-1]
        self.assertNotIn("more like it", first["detail"])
        self.assertGreater(len(alerts), 1)
        for a in alerts:
            self.assertEqual((a["kind"], a["policy"], a["org"], a["client"], a["action"]),
                             ("schema-violation", "water-telemetry@3", "city-waterworks",
                              "ww-sensor-01", "drop"))
        self.assertRegex(folded["detail"], r"^[0-9]+ more like it in the last second; the last: ")
        (r,) = self.ask(admin, {"command": "listAlerts"})
        self.assertEqual([a["id"] for a in r["data"]["alerts"]], [a["id"] for a in alerts])
        # And recorded in the trace, like any alert.
        cmd = [TFCTL, "report", "impact", folded["id"], "--db", self.broker.trace_dir]
        deadline = time.monotonic() + 10
        while True:      # the trace writer commits within moments
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            if done.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(json.loads(done.stdout)["alert"]["id"], folded["id"])


def alert_count(detail):
    """How many violations an alert stands for: itself and those folded
    into it, or, for a report of folded ones, those."""
    m = re.match(r"([0-9]+) more like it in the last second; the last: ", detail)
    if m:
        return int(m.group(1))
    m = re.search(r"\(and ([0-9]+) more like it in the last second\)$", detail)
    return 1 + (int(m.group(1)) if m else 0)


SENSORS = [f"ww-sensor-{i:03}" for i in range(105)]
MANY_IDENTITIES = {
    "trustflow_identities": 1,
    "organizations": {"city-waterworks": {}, "city-it": {}},
    "clients": {**{name: {"org": "city-waterworks", "roles": ["sensor"]} for name in SENSORS},
                "tf-admin": {"org": "city-it", "roles": ["trustflow-admin"]}},
}
QUARANTINED_WATER = {**WATER, "on_violation": {"action": "quarantine"}}


def page_through(test, client, command, member):
    """Every item of a long list, asked for in pages that go on from the
    last one's "next"; checks that no page is larger than asked."""
    items, cursor = [], None
    while True:
        ask = dict(command)
        if cursor is not None:
            ask["cursor"] = cursor
        (r,) = test.ask(client, ask)
        page = r["data"][member]
        test.assertLessEqual(len(page), command.get("limit", 100))
        items += page
        if "next" not in r["data"]:
            return items
        cursor = r["data"]["next"]


class PagingTest(harness.BrokerTestCase):
    """Lists longer than a page: 105 publishers each break the schema once,
    so there are 105 alerts and 105 quarantined flows."""

    def setUp(self):
        self.broker = self.start_broker(identities=MANY_IDENTITIES,
                                        passwords={name: "demo" for name in
                                                   MANY_IDENTITIES["clients"]},
                                        policies={"water.json": QUARANTINED_WATER})
        for name in SENSORS:
            sensor = harness.Client(self.broker, f"c-{name}", username=name, password="demo")
            sensor.publish(WATER_TOPIC, '{"flow": "high"}')
            sensor.close()
        self.admin = self.client(self.broker, "c-tf-admin", username="tf-admin",
                                 password="demo")
        self.assertEqual(self.admin.subscribe(RESPONSE), 1)

    ask = ControlTest.ask

    def test_long_lists_come_in_pages_that_hold_each_item_once(self):
        alerts = page_through(self, self.admin, {"command": "listAlerts", "limit": 10}, "alerts")
        self.assertEqual([a["client"] for a in alerts], SENSORS)
        self.assertEqual(len({a["id"] for a in alerts}), len(SENSORS))
        # Without a limit, a page has 100.
        (r,) = self.ask(self.admin, {"command": "listAlerts"})
        self.assertEqual(len(r["data"]["alerts"]), 100)
        # A flow that ends between two pages moves no other flow to a
        # page already read.
        (r,) = self.ask(self.admin, {"command": "listQuarantine", "limit": 10})
        first = [f["flow"] for f in r["data"]["flows"]]
        (ended,) = self.ask(self.admin, {"command": "discardFlow", "flow": first[0]})
        self.assertEqual(ended["data"], {"discarded": 1})
        rest = page_through(self, self.admin, {"command": "listQuarantine", "limit": 10,
                                               "cursor": r["data"]["next"]}, "flows")
        self.assertEqual(first + [f["flow"] for f in rest],
                         [f"water-telemetry/{name}" for name in SENSORS])

    def test_tfctl_lists_every_page(self):
        connection = ["--port", str(self.broker.port), "--username", "tf-admin",
                      "--password", "demo"]
        out = run([TFCTL, "alerts"] + connection).stdout.splitlines()
        self.assertEqual([json.loads(line)["client"] for line in out], SENSORS)
        out = run([TFCTL, "quarantine", "list"] + connection).stdout.splitlines()
        self.assertEqual([json.loads(line)["client"] for line in out], SENSORS)


class AmplificationTest(harness.BrokerTestCase):
    """A small request may not ask for a large answer: 130 alerts of 2 KB
    each, asked for 16 times in one request, would be 4 MB."""

    def test_the_answer_stays_under_the_cap(self):
        broker = self.start_broker(identities=IDENTITIES, passwords=PASSWORDS,
                                   policies={"water.json": WATER})
        # Anonymous publishers are refused on a governed topic: an alert
        # each, named by its (long) client id.
        names = [f"{i:03}-" + "x" * 2000 for i in range(130)]
        for name in names:
            anonymous = harness.Client(broker, name)
            anonymous.publish(WATER_TOPIC, '{"flow": 1}')
            anonymous.close()
        admin = self.client(broker, "c-tf-admin", username="tf-admin", password="demo")
        self.assertEqual(admin.subscribe(RESPONSE), 1)
        admin.publish(REQUEST, json.dumps({"commands": [{"command": "listAlerts",
                                                         "limit": 500}] * 16}))
        msg = admin.receive()
        self.assertLessEqual(len(msg.payload), 256 * 1024)
        responses = json.loads(msg.payload)["responses"]
        self.assertEqual(len(responses), 16)
        # The first page ends where the answer is full; the commands after
        # it say so.
        self.assertIn("next", responses[0]["data"])
        self.assertLess(len(responses[0]["data"]["alerts"]), 130)
        for r in responses[1:]:
            self.assertTrue(r["error"].startswith("response too large"), r)
        # Page by page, every alert comes, once.
        alerts = page_through(self, admin, {"command": "listAlerts", "limit": 500}, "alerts")
        self.assertEqual([a["client"] for a in alerts], names)

    ask = ControlTest.ask


class TfctlAlertsTest(harness.BrokerTestCase):
    def setUp(self):
        self.broker = self.start_broker(identities=IDENTITIES, passwords=PASSWORDS,
                                        policies={"water.json": WATER, "air.json": AIR})

    def alerts(self, username, *extra):
        return [TFCTL, "alerts", "--port", str(self.broker.port), "--username", username,
                "--password", "demo"] + list(extra)

    def test_lists_recent_alerts_as_lines(self):
        self.assertEqual(publish_v5(self.broker, "ww-sensor-01", WATER_TOPIC, '{"flow": "x"}'),
                         135)
        out = run(self.alerts("ww-steward"))
        (alert,) = [json.loads(line) for line in out.stdout.splitlines()]
        self.assertEqual((alert["kind"], alert["policy"]), ("schema-violation",
                                                            "water-telemetry@3"))
        # The lab's steward may read none of the waterworks' alerts.
        self.assertEqual(run(self.alerts("lab-steward")).stdout, "")
        refused = run(self.alerts("lab-analyst"), check=False)
        self.assertEqual(refused.returncode, 1)
        self.assertIn("may not read alerts", refused.stderr)

    def test_follow_prints_new_alerts_as_they_come(self):
        before = self.broker.log().count("Sending SUBACK")
        proc = subprocess.Popen(self.alerts("tf-admin", "--follow"), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.addCleanup(proc.kill)
        deadline = harness.time.monotonic() + 10
        while self.broker.log().count("Sending SUBACK") < before + 2:
            self.assertLess(harness.time.monotonic(), deadline, "tfctl alerts did not subscribe")
            harness.time.sleep(0.05)
        self.assertEqual(publish_v5(self.broker, "lab-sensor", AIR_TOPIC, '{"flow": "x"}'), 135)
        alert = json.loads(proc.stdout.readline())
        self.assertEqual((alert["kind"], alert["policy"], alert["client"]),
                         ("schema-violation", "air-quality@1", "lab-sensor"))


if __name__ == "__main__":
    harness.main()
