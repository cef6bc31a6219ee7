"""Policies enforced by a real broker on real clients: entitled consumers
receive; everyone else, including a `#` subscriber, an unidentified client,
a client whose rule has expired and a consumer of another org, receives
nothing governed; denied publishes (another organization's sensor on the
owner's topics among them) are refused with "not authorized";
views carry only the fields a rule allows; a broken reload, or one in
which another owner captures a topic inside the waterworks' filter,
changes nothing; a policy with `owner_receives: false` keeps its data from
the owner's own clients that no consumer rule names.
"""

import os
import time

import harness
from harness import publish_v5, trace_message, wait_for

import paho.mqtt.client as paho

NOT_AUTHORIZED = 0x87  # reason codes below 0x80 (0, 16 "no subscribers") are success
TOPIC = "city/water/d7/telemetry"
SENTINEL = "city/water/sentinel/telemetry"
READING = '{"flow": 12.5, "pressure": 3.1}'

IDENTITIES = {
    "trustflow_identities": 1,
    "organizations": {
        "city-waterworks": {"name": "City Waterworks"},
        "maint-co": {}, "old-co": {}, "research-lab": {}, "other-co": {},
    },
    "clients": {
        "ww-sensor-01": {"org": "city-waterworks", "roles": ["sensor"]},
        "ww-operator": {"org": "city-waterworks"},
        "maint-app": {"org": "maint-co", "purposes": ["maintenance"]},
        "maint-nopurpose": {"org": "maint-co"},
        "old-app": {"org": "old-co", "purposes": ["maintenance"]},
        "lab-analyst": {"org": "research-lab"},
        "snoop": {"org": "other-co"},
        # Has the role water's publishers name, but is not the owner's.
        "foreign-sensor": {"org": "other-co", "roles": ["sensor"]},
    },
}

WATER = {
    "trustflow_policy": 1, "id": "water-telemetry", "version": 3,
    "owner": "city-waterworks",
    "topics": ["city/water/+/telemetry"],
    "publishers": {"roles": ["sensor"]},
    "consumers": [
        {"orgs": ["maint-co"], "purposes": ["maintenance"], "not_after": "2999-01-01T00:00:00Z"},
        {"orgs": ["old-co"], "not_after": "2020-01-01T00:00:00Z"},
        {"orgs": ["research-lab"], "fields": ["flow"], "view": "views/research-lab"},
    ],
    "limits": {"max_payload_bytes": 256},
    "schema": {"type": "object", "required": ["flow"],
               "properties": {"flow": {"type": "number", "minimum": 0, "maximum": 1000}}},
}

# A second owner's data, which none of the water consumers may read.
OTHER = {
    "trustflow_policy": 1, "id": "other-data", "version": 1, "owner": "other-co",
    "topics": ["other/#"],
}

PASSWORDS = {name: "demo" for name in IDENTITIES["clients"]}

# "Leak alarms only to the contractor": the owner narrows its own org too.
ALARMS = {
    "trustflow_policy": 1, "id": "leak-alarms", "version": 1, "owner": "city-waterworks",
    "topics": ["city/water/+/leak"], "publishers": {"roles": ["sensor"]},
    "owner_receives": False,
    "consumers": [{"orgs": ["maint-co"]}],
}
LEAK = "city/water/d7/leak"

verify = harness.stamp_verifier()


class PolicyEnforcementTest(harness.BrokerTestCase):
    def setUp(self):
        self.broker = self.start_broker(
            identities=IDENTITIES, passwords=PASSWORDS,
            policies={"water.json": WATER, "other.json": OTHER})

    def login(self, username, **kwargs):
        return self.client(self.broker, f"c-{username}-{time.monotonic_ns()}",
                           username=username, password="demo", **kwargs)

    def publish(self, topic=TOPIC, payload=READING, username="ww-sensor-01", **kwargs):
        return publish_v5(self.broker, username, topic, payload, **kwargs)

    def assert_withheld(self, client, topic=TOPIC):
        """client, subscribed to TOPIC and SENTINEL, gets the sentinel but
        nothing published on topic before it."""
        self.assertLess(self.publish(SENTINEL, '{"flow": 0}'), 0x80)
        got = client.receive_until(SENTINEL)
        self.assertEqual([m.topic for m in got if m.topic == topic], [])

    # -- entitled consumers -------------------------------------------------

    def test_owner_org_and_entitled_contractor_receive(self):
        operator, maint = self.login("ww-operator"), self.login("maint-app")
        for c in (operator, maint):
            self.assertEqual(c.subscribe("city/water/+/telemetry"), 1)
        self.assertLess(self.publish(), 0x80)
        for c in (operator, maint):
            msg = c.receive()
            self.assertEqual((msg.topic, msg.payload.decode()), (TOPIC, READING))

    def test_wildcard_subscriber_gets_only_what_it_may_read(self):
        maint = self.login("maint-app")
        self.assertEqual(maint.subscribe("#"), 1)
        self.assertLess(publish_v5(self.broker, "snoop", "other/secret", "x"), 0x80)
        self.assertLess(self.publish(SENTINEL, '{"flow": 0}'), 0x80)
        got = maint.receive_until(SENTINEL)
        self.assertEqual([m.topic for m in got], [SENTINEL])

    def test_shared_subscription_is_decided_like_any_other(self):
        maint, snoop = self.login("maint-app"), self.login("snoop")
        self.assertEqual(maint.subscribe("$share/g/city/water/+/telemetry"), 1)
        self.assertEqual(snoop.subscribe("$share/g/city/water/+/telemetry"), NOT_AUTHORIZED)
        self.assertLess(self.publish(), 0x80)
        self.assertEqual(maint.receive().payload.decode(), READING)

    def test_offline_queue_delivers_to_an_entitled_consumer(self):
        maint = harness.Client(self.broker, "maint-persistent", username="maint-app",
                               password="demo", protocol=paho.MQTTv311, clean_session=False)
        self.assertEqual(maint.subscribe(TOPIC), 1)
        maint.close()
        self.assertLess(self.publish(), 0x80)
        maint = harness.Client(self.broker, "maint-persistent", username="maint-app",
                               password="demo", protocol=paho.MQTTv311, clean_session=False)
        self.addCleanup(maint.close)
        self.assertEqual(maint.receive().payload.decode(), READING)

    def test_retained_message_reaches_only_entitled_late_subscribers(self):
        self.assertLess(self.publish(retain=True), 0x80)
        maint, snoop = self.login("maint-app"), self.login("snoop")
        self.assertEqual(maint.subscribe(TOPIC), 1)
        msg = maint.receive()
        self.assertEqual((msg.payload.decode(), msg.retain), (READING, True))
        self.assertEqual(snoop.subscribe("city/#"), NOT_AUTHORIZED)

    # -- everyone else --------------------------------------------------------

    def test_outsiders_cannot_subscribe(self):
        for username in ("snoop", "old-app", "maint-nopurpose", "lab-analyst"):
            with self.subTest(username=username):
                c = self.login(username)
                self.assertEqual(c.subscribe(TOPIC), NOT_AUTHORIZED)
                self.assertEqual(c.subscribe("city/water/#"), NOT_AUTHORIZED)

    def test_hash_subscriber_of_another_org_receives_nothing_governed(self):
        # snoop owns other/#, so its `#` subscription is accepted...
        snoop = self.login("snoop")
        self.assertEqual(snoop.subscribe("#"), 1)
        self.assertLess(self.publish(), 0x80)
        self.assertLess(publish_v5(self.broker, "snoop", "other/mine", "ok"), 0x80)
        # ...and only its own data arrives.
        got = snoop.receive_until("other/mine")
        self.assertEqual([m.topic for m in got], ["other/mine"])

    def test_unidentified_client_gets_nothing_and_publishes_nothing(self):
        anon = self.client(self.broker, "anonymous")
        self.assertEqual(anon.subscribe("#"), NOT_AUTHORIZED)
        self.assertEqual(anon.subscribe(TOPIC), NOT_AUTHORIZED)
        self.assertEqual(publish_v5(self.broker, None, TOPIC, READING), NOT_AUTHORIZED)

    def test_client_of_an_expired_rule_cannot_subscribe(self):
        # A subscription made before the expiry is ExpiryTest's case.
        old = self.login("old-app")
        self.assertEqual(old.subscribe(TOPIC), NOT_AUTHORIZED)
        self.assertEqual(old.subscribe("city/#"), NOT_AUTHORIZED)

    def test_denied_publish_is_refused_not_authorized(self):
        for username in ("snoop", "ww-operator", "maint-app"):
            with self.subTest(username=username):
                self.assertEqual(self.publish(username=username), NOT_AUTHORIZED)

    def test_another_orgs_sensor_cannot_publish_the_owners_data(self):
        # water's publishers are {"roles": ["sensor"]}, with no orgs: the
        # waterworks' sensors only.
        operator = self.login("ww-operator")
        self.assertEqual(operator.subscribe("city/water/+/telemetry"), 1)
        self.assertEqual(self.publish(username="foreign-sensor"), NOT_AUTHORIZED)
        self.assert_withheld(operator)

    def test_nobody_publishes_on_a_view_or_under_trustflow(self):
        self.assertEqual(self.publish("views/research-lab/" + TOPIC, '{"flow": 1}'),
                         NOT_AUTHORIZED)
        self.assertEqual(self.publish("$trustflow/keys/x", "k"), NOT_AUTHORIZED)

    # -- views, schema and limits ---------------------------------------------

    def test_view_carries_only_the_rule_fields_to_its_consumers(self):
        lab, maint = self.login("lab-analyst"), self.login("maint-app")
        self.assertEqual(lab.subscribe("views/research-lab/#"), 1)
        self.assertEqual(maint.subscribe("views/research-lab/#"), NOT_AUTHORIZED)
        self.assertLess(self.publish(), 0x80)
        msg = lab.receive()
        self.assertEqual(msg.topic, "views/research-lab/" + TOPIC)
        self.assertEqual(msg.payload.decode(), '{"flow":12.5}')

    def test_a_reload_that_narrows_a_view_removes_the_retained_copies(self):
        # Each change raises the version: the broker takes no other bytes
        # under a version it accepted.
        wide = dict(WATER, version=4, consumers=[
            {"orgs": ["research-lab"], "fields": ["flow", "pressure"],
             "view": "views/research-lab"}])
        self.broker.write_policy("water.json", wide)
        self.broker.reload()
        self.assertLess(self.publish(retain=True), 0x80)
        lab = self.login("lab-analyst")
        self.assertEqual(lab.subscribe("views/research-lab/" + TOPIC), 1)
        self.assertEqual(lab.receive().payload, b'{"flow":12.5,"pressure":3.1}')
        lab.close()

        narrow = dict(wide, version=5, consumers=[
            {"orgs": ["research-lab"], "fields": ["flow"], "view": "views/research-lab"}])
        self.broker.write_policy("water.json", narrow)
        self.broker.reload()
        self.assertIn("2 retained copies made under policy versions no longer in force "
                      "removed", self.broker.log())
        # A new subscriber gets neither the old view copy nor the original
        # made under version 4: the first it gets is a copy made under 5.
        lab, operator = self.login("lab-analyst"), self.login("ww-operator")
        self.assertEqual(lab.subscribe("views/research-lab/#"), 1)
        self.assertEqual(operator.subscribe("city/water/+/telemetry"), 1)
        self.assertLess(self.publish(SENTINEL, READING), 0x80)
        msg = lab.receive()
        self.assertEqual((msg.topic, msg.payload),
                         ("views/research-lab/" + SENTINEL, b'{"flow":12.5}'))
        self.assertEqual(operator.receive().topic, SENTINEL)

    def test_schema_violation_is_dropped(self):
        operator = self.login("ww-operator")
        operator.subscribe("city/water/+/telemetry")
        for bad in ('{"flow": 5000}', '{"pressure": 1}', "not json", '{"flow": "high"}'):
            with self.subTest(payload=bad):
                self.assertEqual(self.publish(payload=bad), NOT_AUTHORIZED)
        self.assert_withheld(operator)

    def test_oversized_payload_is_dropped(self):
        operator = self.login("ww-operator")
        operator.subscribe("city/water/+/telemetry")
        big = '{"flow": 1, "pad": "' + "x" * 300 + '"}'
        self.assertEqual(self.publish(payload=big), NOT_AUTHORIZED)
        self.assert_withheld(operator)

    # -- reload -----------------------------------------------------------------

    def test_broken_reload_keeps_the_old_policies(self):
        maint = self.login("maint-app")
        self.broker.write_policy("water.json", '{"trustflow_policy": 1, "id": ')
        self.broker.reload()
        self.assertIn("policy reload rejected", self.broker.log())
        self.assertIn("water.json", self.broker.log())
        self.assertEqual(maint.subscribe(TOPIC), 1)
        self.assertLess(self.publish(), 0x80)
        self.assertEqual(maint.receive().payload.decode(), READING)

    def test_valid_reload_takes_effect(self):
        snoop = self.login("snoop")
        self.assertEqual(snoop.subscribe(TOPIC), NOT_AUTHORIZED)
        grant = dict(WATER, version=4, consumers=WATER["consumers"] + [{"orgs": ["other-co"]}])
        self.broker.write_policy("water.json", grant)
        self.broker.reload()
        self.assertEqual(snoop.subscribe(TOPIC), 1)
        self.assertLess(self.publish(), 0x80)
        self.assertEqual(snoop.receive().payload.decode(), READING)


    def test_reload_capturing_another_owners_topic_is_refused(self):
        # other-co writes a more specific policy for one of the
        # waterworks' topics, letting itself publish and read there.
        capture = {
            "trustflow_policy": 1, "id": "capture", "version": 1, "owner": "other-co",
            "topics": [TOPIC], "publishers": {"orgs": ["other-co"]},
        }
        self.broker.write_policy("capture.json", capture)
        self.broker.reload()
        rejected = [line for line in self.broker.log().splitlines()
                    if "policy reload rejected" in line]
        self.assertEqual(len(rejected), 1)
        self.assertIn("capture.json", rejected[0])
        self.assertIn("water.json", rejected[0])
        # The waterworks' rules stay in force on the topic.
        snoop, maint = self.login("snoop"), self.login("maint-app")
        self.assertEqual(snoop.subscribe(TOPIC), NOT_AUTHORIZED)
        self.assertEqual(maint.subscribe(TOPIC), 1)
        self.assertEqual(self.publish(username="snoop"), NOT_AUTHORIZED)
        self.assertLess(self.publish(), 0x80)
        self.assertEqual(maint.receive().payload.decode(), READING)


class OwnerReceivesTest(harness.BrokerTestCase):
    def test_leak_alarms_reach_only_the_contractor(self):
        broker = self.start_broker(identities=IDENTITIES, passwords=PASSWORDS,
                                   policies={"water.json": WATER, "alarms.json": ALARMS})
        operator = self.client(broker, "operator", username="ww-operator", password="demo")
        maint = self.client(broker, "maint", username="maint-nopurpose", password="demo")
        # The owner's own client may not subscribe to the alarms alone...
        self.assertEqual(operator.subscribe("city/water/+/leak"), NOT_AUTHORIZED)
        # ...and a wider subscription, for its telemetry, gets no alarm.
        self.assertEqual(operator.subscribe("city/water/#"), 1)
        self.assertEqual(maint.subscribe("city/water/+/leak"), 1)
        # The owner's sensors still publish them.
        self.assertLess(publish_v5(broker, "ww-sensor-01", LEAK, '{"leak": true}'), 0x80)
        alarm = maint.receive()
        self.assertEqual((alarm.topic, alarm.payload.decode()), (LEAK, '{"leak": true}'))
        self.assertLess(publish_v5(broker, "ww-sensor-01", SENTINEL, '{"flow": 0}'), 0x80)
        self.assertEqual([m.topic for m in operator.receive_until(SENTINEL)], [SENTINEL])
        # The trace records the refusal, and why.
        msg_id = verify.stamp_of(alarm)["tf-id"]
        m = wait_for("the withheld alarm in the trace",
                     lambda: (m := trace_message(broker.trace_dir, msg_id)) and m["withheld"]
                     and m)
        self.assertEqual([(d["client"], d["org"]) for d in m["deliveries"]],
                         [("maint-nopurpose", "maint-co")])
        self.assertEqual([(w["client"], w["reason"]) for w in m["withheld"]],
                         [("ww-operator", "its organization is not among the consumer rule's "
                           "orgs")])


class ExpiryTest(harness.BrokerTestCase):
    def test_expiry_stops_a_live_stream(self):
        ends = time.time() + 3
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ends))
        policy = dict(WATER, consumers=[{"orgs": ["maint-co"], "not_after": stamp}])
        broker = self.start_broker(identities=IDENTITIES, passwords=PASSWORDS,
                                   policies={"water.json": policy})
        maint = self.client(broker, "maint", username="maint-app", password="demo")
        operator = self.client(broker, "operator", username="ww-operator", password="demo")
        self.assertEqual(maint.subscribe(TOPIC), 1)
        self.assertEqual(operator.subscribe(TOPIC), 1)
        self.assertLess(publish_v5(broker, "ww-sensor-01", TOPIC, '{"flow": 1}'), 0x80)
        self.assertEqual(maint.receive().payload.decode(), '{"flow": 1}')
        while time.time() < ends + 1:
            time.sleep(0.2)
        self.assertLess(publish_v5(broker, "ww-sensor-01", TOPIC, '{"flow": 2}'), 0x80)
        self.assertLess(publish_v5(broker, "ww-sensor-01", SENTINEL, '{"flow": 3}'), 0x80)
        # The owner still gets both; the expired contractor neither.
        self.assertEqual(operator.receive().payload.decode(), '{"flow": 1}')
        self.assertEqual(operator.receive().payload.decode(), '{"flow": 2}')
        self.assertTrue(maint.messages.empty())


class RetentionTest(harness.BrokerTestCase):
    def setUp(self):
        policy = dict(WATER, retention_seconds=1)
        self.broker = self.start_broker(identities=IDENTITIES, passwords=PASSWORDS,
                                        policies={"water.json": policy})

    def test_retained_copy_older_than_retention_is_not_delivered(self):
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", TOPIC, READING, retain=True), 0x80)
        fresh = self.client(self.broker, "fresh", username="ww-operator", password="demo")
        fresh.subscribe(TOPIC)
        self.assertEqual(fresh.receive().payload.decode(), READING)
        time.sleep(2)
        late = self.client(self.broker, "late", username="ww-operator", password="demo")
        late.subscribe("city/water/+/telemetry")
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", SENTINEL, '{"flow": 0}'), 0x80)
        got = late.receive_until(SENTINEL)
        self.assertEqual([m.topic for m in got], [SENTINEL])



class OfflineRetentionTest(harness.BrokerTestCase):
    """Messages queued for an offline session keep the policy's retention."""

    def setUp(self):
        policy = dict(WATER, retention_seconds=2)
        self.broker = self.start_broker(identities=IDENTITIES, passwords=PASSWORDS,
                                        policies={"water.json": policy})

    def session(self):
        return harness.Client(self.broker, "maint-persistent", username="maint-app",
                              password="demo", protocol=paho.MQTTv311, clean_session=False)

    def test_queued_message_is_delivered_within_retention(self):
        maint = self.session()
        self.assertEqual(maint.subscribe(TOPIC), 1)
        maint.close()
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", TOPIC, '{"flow": 1}'), 0x80)
        maint = self.session()
        self.addCleanup(maint.close)
        msg = maint.receive()
        self.assertEqual((msg.topic, msg.payload.decode(), msg.qos), (TOPIC, '{"flow": 1}', 1))

    def test_queued_message_expires_with_retention(self):
        maint = self.session()
        self.assertEqual(maint.subscribe("city/water/+/telemetry"), 1)
        maint.close()
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", TOPIC, '{"flow": 1}'), 0x80)
        time.sleep(3)
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", TOPIC, '{"flow": 2}'), 0x80)
        maint = self.session()
        self.addCleanup(maint.close)
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", SENTINEL, '{"flow": 3}'), 0x80)
        got = maint.receive_until(SENTINEL)
        self.assertEqual([m.payload.decode() for m in got], ['{"flow": 2}', '{"flow": 3}'])

    def test_qos0_subscription_gets_no_offline_copy(self):
        maint = self.session()
        self.assertEqual(maint.subscribe(TOPIC, qos=0), 0)
        maint.close()
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", TOPIC, '{"flow": 1}'), 0x80)
        maint = self.session()
        self.addCleanup(maint.close)
        maint.subscribe(SENTINEL, qos=1)
        self.assertLess(publish_v5(self.broker, "ww-sensor-01", SENTINEL, '{"flow": 3}'), 0x80)
        got = maint.receive_until(SENTINEL)
        self.assertEqual([m.topic for m in got], [SENTINEL])


class RetentionAcrossRestartTest(harness.BrokerTestCase):
    """A retained message mosquitto keeps across a restart gets its age
    back from the trace store: delivered within its retention, withheld
    after it."""

    def start(self, retention):
        store = harness.tempfile.mkdtemp(prefix="tf-store-")
        self.addCleanup(harness.shutil.rmtree, store, True)
        persist = f"persistence true\npersistence_location {store}/\n"
        policy = dict(WATER, retention_seconds=retention)
        return self.start_broker(identities=IDENTITIES, passwords=PASSWORDS, extra_conf=persist,
                                 policies={"water.json": policy})

    def retained_after_restart(self, broker):
        self.assertLess(publish_v5(broker, "ww-sensor-01", TOPIC, READING, retain=True), 0x80)
        broker.stop()
        broker.start()
        late = self.client(broker, f"late-{time.monotonic_ns()}", username="ww-operator",
                           password="demo")
        late.subscribe("city/water/+/telemetry")
        self.assertLess(publish_v5(broker, "ww-sensor-01", SENTINEL, '{"flow": 0}'), 0x80)
        return [m.topic for m in late.receive_until(SENTINEL)]

    def test_within_its_retention_it_is_delivered(self):
        self.assertEqual(self.retained_after_restart(self.start(3600)), [TOPIC, SENTINEL])

    def test_past_its_retention_it_is_withheld(self):
        broker = self.start(2)
        self.assertLess(publish_v5(broker, "ww-sensor-01", TOPIC, READING, retain=True), 0x80)
        broker.stop()
        time.sleep(2.5)
        broker.start()
        late = self.client(broker, "late", username="ww-operator", password="demo")
        late.subscribe("city/water/+/telemetry")
        self.assertLess(publish_v5(broker, "ww-sensor-01", SENTINEL, '{"flow": 0}'), 0x80)
        self.assertEqual([m.topic for m in late.receive_until(SENTINEL)], [SENTINEL])


class RetainedAcrossPolicyChangeTest(harness.BrokerTestCase):
    """The owner narrows a view while the broker is down: the retained
    copies mosquitto brings back from before are made under the old
    version, so no one gets them; the next retained reading makes them
    anew."""

    def test_copies_from_an_older_version_are_withheld_after_a_restart(self):
        store = harness.tempfile.mkdtemp(prefix="tf-store-")
        self.addCleanup(harness.shutil.rmtree, store, True)
        wide = dict(WATER, consumers=[
            {"orgs": ["research-lab"], "fields": ["flow", "pressure"],
             "view": "views/research-lab"}])
        broker = self.start_broker(identities=IDENTITIES, passwords=PASSWORDS,
                                   policies={"water.json": wide},
                                   extra_conf=f"persistence true\npersistence_location {store}/\n")
        self.assertLess(publish_v5(broker, "ww-sensor-01", TOPIC, READING, retain=True), 0x80)
        broker.stop()
        broker.write_policy("water.json", dict(wide, version=WATER["version"] + 1, consumers=[
            {"orgs": ["research-lab"], "fields": ["flow"], "view": "views/research-lab"}]))
        broker.start()
        lab = self.client(broker, "lab", username="lab-analyst", password="demo")
        operator = self.client(broker, "op", username="ww-operator", password="demo")
        self.assertEqual(lab.subscribe("views/research-lab/#"), 1)
        self.assertEqual(operator.subscribe("city/water/+/telemetry"), 1)
        self.assertLess(publish_v5(broker, "ww-sensor-01", SENTINEL, READING), 0x80)
        self.assertEqual([(m.topic, m.payload) for m in lab.receive_until(
            "views/research-lab/" + SENTINEL)],
            [("views/research-lab/" + SENTINEL, b'{"flow":12.5}')])
        self.assertEqual([m.topic for m in operator.receive_until(SENTINEL)], [SENTINEL])
        harness.wait_for("the withholding in the trace", lambda: "no longer in force" in
                         harness.run([harness.TFCTL, "trace", "--db", broker.trace_dir,
                                      "export"]).stdout)
        # The next retained reading is made under the version in force.
        self.assertLess(publish_v5(broker, "ww-sensor-01", TOPIC, READING, retain=True), 0x80)
        late = self.client(broker, "late", username="lab-analyst", password="demo")
        self.assertEqual(late.subscribe("views/research-lab/" + TOPIC), 1)
        self.assertEqual(late.receive().payload, b'{"flow":12.5}')


class OfflineViewAcrossReloadTest(harness.BrokerTestCase):
    """A view copy waiting in an offline session's queue while the owner
    narrows the view is not handed out when the session comes back."""

    def test_a_queued_copy_of_a_narrowed_view_is_withheld(self):
        wide = dict(WATER, consumers=[
            {"orgs": ["research-lab"], "fields": ["flow", "pressure"],
             "view": "views/research-lab"}])
        broker = self.start_broker(identities=IDENTITIES, passwords=PASSWORDS,
                                   policies={"water.json": wide})
        lab = self.client(broker, "lab-session", username="lab-analyst", password="demo",
                          protocol=paho.MQTTv311, clean_session=False)
        self.assertEqual(lab.subscribe("views/research-lab/#"), 1)
        lab.close()
        self.assertLess(publish_v5(broker, "ww-sensor-01", TOPIC, READING), 0x80)
        broker.write_policy("water.json", dict(wide, version=WATER["version"] + 1, consumers=[
            {"orgs": ["research-lab"], "fields": ["flow"], "view": "views/research-lab"}]))
        broker.reload()
        back = self.client(broker, "lab-session", username="lab-analyst", password="demo",
                           protocol=paho.MQTTv311, clean_session=False)
        self.assertLess(publish_v5(broker, "ww-sensor-01", SENTINEL, READING), 0x80)
        self.assertEqual([(m.topic, m.payload) for m in back.receive_until(
            "views/research-lab/" + SENTINEL)],
            [("views/research-lab/" + SENTINEL, b'{"flow":12.5}')])


class StartOnLastAcceptedTest(harness.BrokerTestCase):
    """A refused reload leaves its bad file in the policy directory; after a
    crash the broker starts on the last set it accepted, and says so. With
    no accepted set at all, it refuses to start."""

    def test_a_crash_after_a_refused_reload_starts_on_the_last_accepted_set(self):
        broker = self.start_broker(identities=IDENTITIES, passwords=PASSWORDS,
                                   policies={"water.json": WATER})
        broker.write_policy("broken.json", '{"trustflow_policy": 1, "id": ')
        broker.reload()
        self.assertIn("policy reload rejected", broker.log())
        broker.proc.kill()                     # a crash: no clean stop
        broker.proc.wait()
        broker.start()
        log = broker.log()
        self.assertIn("started on the last accepted set", log)
        self.assertIn("broken.json", log.split("started on the last accepted set")[0][-600:])
        self.assertIn("alert reload-failed", log)
        operator = self.client(broker, "op", username="ww-operator", password="demo")
        operator.subscribe(TOPIC)
        self.assertLess(publish_v5(broker, "ww-sensor-01", TOPIC, READING), 0x80)
        self.assertEqual(operator.receive().payload.decode(), READING)
        # Mended, the files are in force again.
        os.remove(os.path.join(broker.policy_dir, "broken.json"))
        broker.reload()
        self.assertEqual(broker.log().count("policy reload rejected"), 1)

    def test_without_an_accepted_set_a_refused_set_stops_the_start(self):
        broker = self.broker_expecting_failure(identities=IDENTITIES, passwords=PASSWORDS,
                                               policies={"water.json": WATER,
                                                         "broken.json": "{"})
        self.assertNotEqual(broker.start_expecting_failure(), 0)
        self.assertIn("refusing to start", broker.log())


class BackgroundReloadTest(harness.BrokerTestCase):
    """A reload reads the files off the broker's thread: messages flow
    while it loads. The identities file is made a FIFO, so that the load
    waits, as on a very large file, until the test lets it go on."""

    def test_messages_flow_while_the_policies_load(self):
        broker = self.start_broker(identities=IDENTITIES, passwords=PASSWORDS,
                                   policies={"water.json": WATER})
        operator = self.client(broker, "op", username="ww-operator", password="demo")
        operator.subscribe(TOPIC)
        os.remove(broker.identities_path)
        os.mkfifo(broker.identities_path)
        self.addCleanup(self.let_go, broker.identities_path)
        broker.proc.send_signal(harness.signal.SIGHUP)
        deadline = time.monotonic() + harness.START_TIMEOUT_S
        while "Reloading config." not in broker.log():
            self.assertLess(time.monotonic(), deadline, broker.log())
            time.sleep(0.05)
        # The load waits on the FIFO; the broker does not.
        self.assertLess(publish_v5(broker, "ww-sensor-01", TOPIC, READING), 0x80)
        self.assertEqual(operator.receive().payload.decode(), READING)
        self.assertNotIn("policy reload rejected", broker.log())
        # Let it go on: a FIFO is no identities file, and the set in force stays.
        deadline = time.monotonic() + harness.START_TIMEOUT_S
        while "policy reload rejected" not in broker.log():
            self.assertLess(time.monotonic(), deadline, broker.log())
            self.let_go(broker.identities_path)
            time.sleep(0.05)
        self.assertIn("not a regular file", broker.log())
        self.assertLess(publish_v5(broker, "ww-sensor-01", TOPIC, '{"flow": 2}'), 0x80)
        self.assertEqual(operator.receive().payload, b'{"flow": 2}')

    @staticmethod
    def let_go(fifo):
        """Opens the FIFO for writing (which lets a reader waiting to open
        it go on) and closes it; nothing when no one waits."""
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass


class RetainedRemovalTest(harness.BrokerTestCase):
    def test_retained_copy_is_removed_once_retention_passes(self):
        # The broker saves its retained messages at exit; a plain mosquitto
        # on the same store then shows what was really kept.
        store = harness.tempfile.mkdtemp(prefix="tf-store-")
        self.addCleanup(harness.shutil.rmtree, store, True)
        persist = f"persistence true\npersistence_location {store}/\n"
        policy = dict(WATER, retention_seconds=1)
        broker = self.start_broker(identities=IDENTITIES, passwords=PASSWORDS, extra_conf=persist,
                                   policies={"water.json": policy, "other.json": OTHER})
        self.assertLess(publish_v5(broker, "ww-sensor-01", TOPIC, READING, retain=True), 0x80)
        self.assertLess(publish_v5(broker, "snoop", "other/keep", "kept", retain=True), 0x80)
        time.sleep(2.5)
        broker.stop()

        plain = self.start_broker(with_plugin=False, extra_conf=persist)
        anon = self.client(plain, "anon")
        anon.subscribe("#")
        self.assertLess(publish_v5(plain, None, "x/sentinel", "s"), 0x80)
        got = anon.receive_until("x/sentinel")
        self.assertEqual(sorted(m.topic for m in got), ["other/keep", "x/sentinel"])


if __name__ == "__main__":
    harness.main()
