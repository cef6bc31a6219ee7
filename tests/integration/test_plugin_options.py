"""The plugin refuses to start, with a clear message in the broker's log,
on an unknown, malformed or repeated plugin_opt_ line."""

import harness


class PluginOptionsTest(harness.BrokerTestCase):
    def assert_refuses(self, extra_conf, message):
        broker = self.broker_expecting_failure(extra_conf=extra_conf)
        status = broker.start_expecting_failure()
        self.assertNotEqual(status, 0)
        self.assertIn(message, broker.log())

    def test_unknown_option(self):
        self.assert_refuses("plugin_opt_brokerid city-broker-1",
                            "trustflow: plugin_opt_brokerid: unknown option")

    def test_malformed_value(self):
        self.assert_refuses("plugin_opt_broker_id -starts-with-dash",
                            'trustflow: plugin_opt_broker_id: "-starts-with-dash" is not a valid id')

    def test_repeated_option(self):
        self.assert_refuses("plugin_opt_broker_id one\nplugin_opt_broker_id two",
                            "trustflow: plugin_opt_broker_id: given more than once")

    def test_unknown_stamp_form(self):
        self.assert_refuses("plugin_opt_stamp_form short",
                            'trustflow: plugin_opt_stamp_form: "short" is not one of compact|full')

    def test_refusal_says_the_broker_will_not_start(self):
        self.assert_refuses("plugin_opt_nosuch 1", "refusing to start")


if __name__ == "__main__":
    harness.main()
