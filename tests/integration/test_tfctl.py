"""tfctl's --version and --help, and its usage errors."""

import unittest

import harness
from harness import TFCTL, run


class TfctlTest(unittest.TestCase):
    def test_version(self):
        out = run([TFCTL, "--version"])
        self.assertEqual(out.stdout, f"tfctl (trustflow) {harness.VERSION}\n")

    def test_help_lists_plugin_options(self):
        out = run([TFCTL, "--help"])
        self.assertIn("usage: tfctl", out.stdout)
        self.assertIn("broker_id", out.stdout)

    def test_every_command_has_its_help(self):
        for command in ("verify", "trace", "policy", "key", "alerts", "quarantine", "report",
                        "console"):
            with self.subTest(command):
                out = run([TFCTL, command, "--help"], check=False)
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertIn(f"tfctl {command}", out.stdout)

    def test_unknown_command_is_a_usage_error(self):
        out = run([TFCTL, "frobnicate"], check=False)
        self.assertEqual(out.returncode, 2)
        self.assertIn("unknown command 'frobnicate'", out.stderr)

    def test_no_command_is_a_usage_error(self):
        out = run([TFCTL], check=False)
        self.assertEqual(out.returncode, 2)


if __name__ == "__main__":
    harness.main()
