"""The console's page in a real browser (Debian's headless Chromium driven
by selenium), against a real broker: a data steward signs in, watches a
policy's message count rise while a publisher runs, sees an alert come,
releases a quarantined flow with the button and sees the held messages
reach a subscriber, looks a message up by its tf-id and opens an alert's
impact report; another organization's steward sees none of it. With
TF_CONSOLE_SCREENSHOTS=DIR it writes the screenshots of docs/console.md
there. Skips (exit 77) only where Chromium or chromedriver is missing."""

import json
import os
import shutil
import sys
import threading
import time

import harness
from harness import publish_v5
from console_support import Console

CHROMIUM = os.environ.get("TF_CHROMIUM") or shutil.which("chromium") or ""
CHROMEDRIVER = (os.environ.get("TF_CHROMEDRIVER") or shutil.which("chromedriver")
                or ("/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else ""))
SCREENSHOTS = os.environ.get("TF_CONSOLE_SCREENSHOTS", "")
WAIT_S = 30

WATER_TOPIC = "city/water/d7/telemetry"
AIR_TOPIC = "city/air/s1"
IDENTITIES = {
    "trustflow_identities": 1,
    "organizations": {"city-waterworks": {"name": "City Waterworks Bureau"},
                      "maint-co": {"name": "Maintenance Co."},
                      "research-lab": {"name": "University Water Research Lab"}},
    "clients": {
        "ww-sensor-01": {"org": "city-waterworks", "roles": ["sensor"]},
        "ww-operator": {"org": "city-waterworks", "roles": ["operator"]},
        "ww-steward": {"org": "city-waterworks", "roles": ["data-steward"]},
        "maint-app": {"org": "maint-co", "purposes": ["maintenance"]},
        "lab-sensor": {"org": "research-lab", "roles": ["sensor"]},
        "lab-steward": {"org": "research-lab", "roles": ["data-steward"]},
    },
}
SCHEMA = {"type": "object", "properties": {"flow": {"type": "number"}}, "required": ["flow"]}
WATER = {
    "trustflow_policy": 1, "id": "water-telemetry", "version": 2, "owner": "city-waterworks",
    "topics": ["city/water/+/telemetry"], "publishers": {"roles": ["sensor"]},
    "consumers": [{"orgs": ["maint-co"], "purposes": ["maintenance"]}],
    "schema": SCHEMA, "on_violation": {"action": "quarantine"},
}
AIR = {
    "trustflow_policy": 1, "id": "air-quality", "version": 1, "owner": "research-lab",
    "topics": ["city/air/+"], "publishers": {"orgs": ["research-lab"]}, "schema": SCHEMA,
}
PASSWORDS = {name: "demo" for name in IDENTITIES["clients"]}
NO_SUBSCRIBERS = 16
# A topic level a publisher chose to inject markup: it reaches the page
# in an alert's detail, and must stay text.
XSS_TOPIC = 'city/water/<img src=x id=injected onerror="document.title=1">/telemetry'

if CHROMIUM and CHROMEDRIVER:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait


class Publisher(threading.Thread):
    """Publishes a reading as the sensor every 0.2 s until stopped."""

    def __init__(self, client):
        super().__init__(daemon=True)
        self.client = client
        self.stopped = threading.Event()
        self.sent = 0

    def run(self):
        while not self.stopped.is_set():
            self.client.publish(WATER_TOPIC, json.dumps({"flow": 10 + self.sent % 5}))
            self.sent += 1
            self.stopped.wait(0.2)


class ConsoleBrowserTest(harness.BrokerTestCase):
    def setUp(self):
        self.broker = self.start_broker(
            identities=IDENTITIES, passwords=PASSWORDS,
            policies={"water.json": WATER, "air.json": AIR},
            plugin_options={"metrics_interval_s": "1", "broker_id": "trustflow-demo"})
        self.console = Console(self.broker.port)
        self.addCleanup(self.stop_console)

    def stop_console(self):
        status = self.console.stop()
        if status != 0:
            raise AssertionError(f"tfctl console exited {status}:\n{self.console.stderr}")

    def browser(self):
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--window-size=1200,800"):
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.addCleanup(driver.quit)
        return driver

    # -- helpers ------------------------------------------------------------

    def wait(self, driver, what, probe):
        try:
            return WebDriverWait(driver, WAIT_S, poll_frequency=0.2).until(lambda d: probe())
        except Exception:
            raise AssertionError(f"timed out waiting for {what}; the page:\n"
                                 + driver.find_element(By.TAG_NAME, "body").text) from None

    def css(self, driver, selector):
        return driver.find_elements(By.CSS_SELECTOR, selector)

    def sign_in(self, driver, username):
        driver.get(self.console.url)
        self.wait(driver, "the sign-in form",
                  lambda: driver.find_element(By.ID, "signin").is_displayed())
        self.shot(driver, "console-signin.png", "signin")
        driver.find_element(By.ID, "username").send_keys(username)
        driver.find_element(By.ID, "password").send_keys("demo")
        driver.find_element(By.ID, "signin-button").click()
        self.wait(driver, "the console", lambda: driver.find_element(By.ID, "console")
                  .is_displayed())
        self.assertEqual(driver.find_element(By.ID, "who").text, f"Signed in as {username}")

    def texts(self, driver, selector):
        """The text of each element selector finds, read in one go: the
        page redraws its parts every second and a half, and an element
        found by one call may be gone by the next."""
        return driver.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0]))"
            ".map(function (e) { return e.textContent; });", selector)

    def click(self, driver, selector):
        """Clicks what selector finds, finding it again if the page redrew
        it in between."""
        for _ in range(5):
            try:
                driver.find_element(By.CSS_SELECTOR, selector).click()
                return
            except StaleElementReferenceException:
                continue
        raise AssertionError(f"{selector} kept changing under the click")

    def field(self, driver, policy, name):
        found = self.texts(driver, f'[data-policy="{policy}"] [data-field="{name}"]')
        return float(found[0]) if found else None

    def shot(self, driver, name, element_id=None):
        if not SCREENSHOTS:
            return
        os.makedirs(SCREENSHOTS, exist_ok=True)
        path = os.path.join(SCREENSHOTS, name)
        if element_id:
            element = driver.find_element(By.ID, element_id)
            driver.execute_script("arguments[0].scrollIntoView()", element)
            element.screenshot(path)
        else:
            driver.save_screenshot(path)

    # -- the tests ----------------------------------------------------------

    def test_a_steward_watches_releases_looks_up_and_reads_the_impact(self):
        maint = self.client(self.broker, "maint-van-3", username="maint-app", password="demo")
        self.assertEqual(maint.subscribe(WATER_TOPIC), 1)
        sensor = self.client(self.broker, "ww-sensor-01", username="ww-sensor-01",
                             password="demo")
        driver = self.browser()
        self.sign_in(driver, "ww-steward")

        # A live count: it rises while the publisher runs (a policy's card
        # comes with its first traffic).
        before = self.field(driver, "water-telemetry", "stamped") or 0
        publisher = Publisher(sensor)
        publisher.start()
        try:
            risen = self.wait(driver, "the count to rise", lambda: (lambda v: v if v
                              and v > before else None)(self.field(driver, "water-telemetry",
                                                                   "stamped")))
            self.wait(driver, "the count to rise again", lambda: (self.field(
                driver, "water-telemetry", "stamped") or 0) > risen)
            self.wait(driver, "the recipient in the last minute", lambda: self.css(
                driver, '[data-policy="water-telemetry"] [data-recipients="clients-minute"] '
                '[data-client="maint-app"]'))
            self.shot(driver, "console-policies.png", "policies-section")
        finally:
            publisher.stopped.set()
            publisher.join()
        for _ in range(publisher.sent):
            maint.receive()
        delivered = maint.messages

        # An alert comes, and the flow is held: the violation and what
        # follows it.
        self.assertEqual(publish_v5(self.broker, "ww-sensor-01", WATER_TOPIC,
                                    '{"flow": "high"}'), NO_SUBSCRIBERS)
        for i in (1, 2):
            self.assertEqual(publish_v5(self.broker, "ww-sensor-01", WATER_TOPIC,
                                        json.dumps({"flow": i})), NO_SUBSCRIBERS)
        kinds = self.wait(driver, "the alert", lambda: self.texts(driver, "#alerts li .kind"))
        self.assertEqual(kinds, ["schema-violation"])
        # The list comes every few seconds: until it shows the three held.
        held = '#quarantine tr[data-flow="water-telemetry/ww-sensor-01"] .held'
        self.wait(driver, "the quarantined flow, three held", lambda: self.texts(
            driver, held) == ["3"])
        self.shot(driver, "console-alerts.png", "alerts-section")
        self.shot(driver, "console-quarantine.png", "quarantine-section")

        # The page's own requests carry the token; one without it is refused.
        status = driver.execute_async_script(
            "var done = arguments[0]; fetch('/api/release', {method: 'POST', headers: "
            "{'Content-Type': 'application/json'}, body: JSON.stringify({flow: "
            "'water-telemetry/ww-sensor-01', override: true})}).then(function (r) "
            "{ done(r.status); });")
        self.assertEqual(status, 403)
        self.assertTrue(delivered.empty())

        # Release: the two that keep the rules reach the subscriber; the
        # one that broke them is kept until released with the override.
        self.click(driver, '#quarantine tr[data-flow="water-telemetry/ww-sensor-01"] '
                   '.release-button')
        result = self.wait(driver, "the release's result", lambda: (lambda t: t if "released"
                           in t else None)(driver.find_element(By.ID, "quarantine-result").text))
        self.assertIn("2 released, 0 expired, 1 kept held", result)
        self.assertEqual([maint.receive().payload for _ in range(2)],
                         [b'{"flow": 1}', b'{"flow": 2}'])
        driver.find_element(By.CSS_SELECTOR, "#quarantine-result .release-button").click()
        self.wait(driver, "the override's result", lambda: "1 by override" in driver
                  .find_element(By.ID, "quarantine-result").text)
        released = maint.receive()
        self.assertEqual(released.payload, b'{"flow": "high"}')
        self.wait(driver, "the flow to leave the list", lambda: not self.css(
            driver, '#quarantine tr[data-flow="water-telemetry/ww-sensor-01"]'))

        # Look the first reading up by its tf-id: stamp, path, recipients.
        msg_id = harness.stamp_verifier().stamp_of(released)["tf-id"]
        box = driver.find_element(By.ID, "lookup-id")
        for _ in range(WAIT_S * 2):       # the trace writer commits within moments
            box.clear()
            box.send_keys(msg_id)
            driver.find_element(By.ID, "lookup-button").click()
            try:
                WebDriverWait(driver, 5, poll_frequency=0.2).until(
                    lambda d: self.css(d, '#message [data-client="maint-app"]'))
                break
            except Exception:
                continue
        self.assertEqual(self.css(driver, '#message [data-field="tf-id"]')[0].text, msg_id)
        self.assertEqual(self.css(driver, '#message [data-field="path"]')[0].text,
                         "city-waterworks/ww-sensor-01 \u2192 trustflow-demo")
        self.assertIn("released", self.css(driver, '#message [data-field="status"]')[0].text)
        self.shot(driver, "console-message.png", "lookup-section")

        # The alert's impact report, drawn as tfctl report impact draws it.
        driver.find_element(By.CSS_SELECTOR, "#alerts .impact-button").click()
        self.wait(driver, "the impact diagram", lambda: self.css(
            driver, '#impact-report svg#flow-diagram g[data-recipient="maint-app"]'))
        self.assertTrue(self.css(driver, '#impact-report g[data-publisher="ww-sensor-01"]'))
        self.assertTrue(self.css(driver, '#impact-report g[data-held="held"]'))
        self.shot(driver, "console-impact.png", "impact-section")

        # Signing out ends the session: the page asks to sign in again.
        driver.find_element(By.ID, "signout").click()
        self.wait(driver, "the sign-in form again",
                  lambda: driver.find_element(By.ID, "signin").is_displayed())
        driver.refresh()
        self.wait(driver, "the sign-in form after a reload",
                  lambda: driver.find_element(By.ID, "signin").is_displayed())

    def test_what_a_publisher_chose_stays_text(self):
        # An alert's detail names the topic, which the publisher chose.
        self.assertEqual(publish_v5(self.broker, "ww-sensor-01", XSS_TOPIC, "not json"),
                         NO_SUBSCRIBERS)
        driver = self.browser()
        self.sign_in(driver, "ww-steward")
        detail = self.wait(driver, "the alert", lambda: self.css(driver, "#alerts li .detail"))
        self.assertIn('<img src=x id=injected onerror="document.title=1">', detail[0].text)
        driver.find_element(By.CSS_SELECTOR, "#alerts .impact-button").click()
        self.wait(driver, "the impact diagram", lambda: self.css(
            driver, '#impact-report g[data-publisher="ww-sensor-01"]'))
        self.assertIn("<img src=x", driver.find_element(By.ID, "impact-report").text)
        self.assertEqual(self.css(driver, "#injected"), [])        # text, not markup
        self.assertEqual(self.css(driver, "img"), [])
        self.assertEqual(driver.title, "trustflow console")

    def test_another_orgs_steward_sees_none_of_it(self):
        self.assertEqual(publish_v5(self.broker, "ww-sensor-01", WATER_TOPIC, '{"flow": 1}'),
                         NO_SUBSCRIBERS)
        self.assertEqual(publish_v5(self.broker, "ww-sensor-01", WATER_TOPIC, '{"flow": "x"}'),
                         NO_SUBSCRIBERS)
        self.assertEqual(publish_v5(self.broker, "lab-sensor", AIR_TOPIC, '{"flow": "y"}'), 135)
        driver = self.browser()
        self.sign_in(driver, "lab-steward")
        self.wait(driver, "its own policy and alert", lambda: self.css(
            driver, '[data-policy="air-quality"]') and self.css(driver, "#alerts li"))
        # A few refreshes later, still nothing of the waterworks'.
        time.sleep(3)
        self.assertEqual(self.css(driver, '[data-policy="water-telemetry"]'), [])
        alerts = [li.text for li in self.css(driver, "#alerts li")]
        self.assertEqual(len(alerts), 1, alerts)
        self.assertIn("air-quality@1", alerts[0])
        self.assertEqual(self.css(driver, "#quarantine tbody tr"), [])
        self.assertNotIn("water", driver.find_element(By.TAG_NAME, "body").text)


if __name__ == "__main__":
    if not CHROMIUM or not CHROMEDRIVER:
        print("SKIP: the console's page needs Chromium and chromedriver: apt-get install "
              "chromium chromium-driver python3-selenium, then configure again")
        sys.exit(77)
    harness.main()
