"""tfctl key generate and public, on real files."""

import os
import shutil
import stat
import tempfile
import unittest

import harness
from harness import TFCTL, run

VECTOR_KEY = """-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g
-----END PRIVATE KEY-----
"""
VECTOR_PUBLIC = """-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=
-----END PUBLIC KEY-----
"""


class KeyTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tf-key-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def test_public_key_and_kid_of_the_spec_vector(self):
        with open(self.path("vector.pem"), "w", encoding="ascii") as f:
            f.write(VECTOR_KEY)
        out = run([TFCTL, "key", "public", self.path("vector.pem")])
        self.assertEqual(out.stdout, VECTOR_PUBLIC + "21fe31dfa154a261\n")
        # A public key file gives the same answer.
        with open(self.path("public.pem"), "w", encoding="ascii") as f:
            f.write(VECTOR_PUBLIC)
        self.assertEqual(run([TFCTL, "key", "public", self.path("public.pem")]).stdout,
                         out.stdout)

    def test_generate_writes_a_private_key_and_prints_its_kid(self):
        key = self.path("signing.pem")
        kid = run([TFCTL, "key", "generate", "--out", key]).stdout.strip()
        self.assertRegex(kid, r"^[0-9a-f]{16}$")
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        with open(key, encoding="ascii") as f:
            self.assertTrue(f.read().startswith("-----BEGIN PRIVATE KEY-----\n"))
        public = run([TFCTL, "key", "public", key]).stdout
        self.assertTrue(public.startswith("-----BEGIN PUBLIC KEY-----\n"))
        self.assertTrue(public.endswith(f"\n{kid}\n"))
        # Two keys are never the same.
        other = run([TFCTL, "key", "generate", "--out", self.path("other.pem")]).stdout.strip()
        self.assertNotEqual(kid, other)

    def test_generate_never_overwrites(self):
        key = self.path("signing.pem")
        run([TFCTL, "key", "generate", "--out", key])
        with open(key, encoding="ascii") as f:
            before = f.read()
        out = run([TFCTL, "key", "generate", "--out", key], check=False)
        self.assertEqual(out.returncode, 2)
        self.assertIn("File exists", out.stderr)
        with open(key, encoding="ascii") as f:
            self.assertEqual(f.read(), before)

    def test_bad_input_and_usage(self):
        with open(self.path("junk.pem"), "w", encoding="ascii") as f:
            f.write("not a key\n")
        self.assertEqual(run([TFCTL, "key", "public", self.path("junk.pem")],
                             check=False).returncode, 2)
        self.assertEqual(run([TFCTL, "key", "public", self.path("missing.pem")],
                             check=False).returncode, 2)
        self.assertEqual(run([TFCTL, "key", "generate"], check=False).returncode, 2)
        self.assertEqual(run([TFCTL, "key"], check=False).returncode, 2)


if __name__ == "__main__":
    harness.main()
