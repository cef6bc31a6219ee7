"""The harness itself: a broker that cannot start fails with its log, and a
broker is stopped by its pid even when the test using it fails."""

import os

import harness


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class HarnessTest(harness.BrokerTestCase):
    def test_start_failure_carries_the_broker_log(self):
        with self.assertRaises(harness.BrokerStartError) as caught:
            self.start_broker(extra_conf="no_such_mosquitto_option 1")
        message = str(caught.exception)
        self.assertIn("mosquitto did not start", message)
        self.assertIn("no_such_mosquitto_option", message)

    def test_broker_is_stopped_when_the_test_body_fails(self):
        pid = None
        with self.assertRaises(RuntimeError):
            with harness.Broker() as broker:
                pid = broker.proc.pid
                self.assertTrue(pid_alive(pid))
                raise RuntimeError("a failing test")
        self.assertIsNotNone(pid)
        self.assertFalse(pid_alive(pid))
        harness.shutil.rmtree(broker.dir, ignore_errors=True)


if __name__ == "__main__":
    harness.main()
