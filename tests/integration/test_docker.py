"""The Docker image, built from this source tree with the container engine
the machine has (docker where a daemon answers, otherwise podman, as
../shared/tools/container-engine sets it up), run, and used as operators
would: a governed message passes through it with a stamp that tfctl
verify accepts, SIGHUP reloads, SIGTERM stops it cleanly with its trace
intact; the compose file's web console answers a sign-in. Skips (exit 77) only where no engine can run."""

import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

import harness
from harness import TFCTL, publish_v5, run

SRCDIR = os.path.abspath(os.environ.get("TF_SRCDIR",
                                        os.path.join(os.path.dirname(__file__), "..", "..")))
TOPIC = "city/water/d7/telemetry"


def find_engine():
    """docker or podman, ready to build and run; None when neither can."""
    helper = os.path.join(SRCDIR, "..", "shared", "tools", "container-engine")
    if os.path.exists(helper):
        out = subprocess.run(["bash", helper], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.split():
            return out.stdout.split()[-1]
    for engine in ("docker", "podman"):
        if shutil.which(engine) and subprocess.run([engine, "info"], capture_output=True,
                                                   timeout=60).returncode == 0:
            return engine
    return None


ENGINE = find_engine()


class Endpoint:
    """What the harness's clients need of a broker: its port."""

    def __init__(self, port):
        self.port = port


class DockerImageTest(harness.BrokerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tag = f"trustflow-test:{os.getpid()}"
        build = [ENGINE, "build", "-f", os.path.join(SRCDIR, "docker", "Dockerfile"),
                 "-t", cls.tag, SRCDIR]
        if ENGINE == "podman":
            build[2:2] = ["--format", "docker"]     # keeps the HEALTHCHECK
        run(build, timeout=1800)

    @classmethod
    def tearDownClass(cls):
        subprocess.run([ENGINE, "rmi", "-f", cls.tag], capture_output=True)

    def engine(self, *args, check=True, timeout=120):
        return run([ENGINE] + list(args), check=check, timeout=timeout)

    def test_the_image_builds_from_a_source_tree_configured_in_place(self):
        # `./configure && make` in the source tree, as the README allows,
        # leaves config.status there; the image's own configure must not see
        # it. The build stage is enough to show it (its packages are cached
        # from the build above).
        tree = tempfile.mkdtemp(prefix="tf-docker-src-")
        self.addCleanup(shutil.rmtree, tree, True)
        src = os.path.join(tree, "src")
        shutil.copytree(SRCDIR, src, symlinks=True,
                        ignore=shutil.ignore_patterns(".git", "_build*", "autom4te.cache"))
        run(["chmod", "-R", "u+w", src])       # make distcheck's tree is read-only
        if not os.path.exists(os.path.join(src, "configure")):
            run(["autoreconf", "-fi"], cwd=src, timeout=300)
        run(["./configure"], cwd=src, timeout=300)
        self.assertTrue(os.path.exists(os.path.join(src, "config.status")))
        tag = f"trustflow-test-build:{os.getpid()}"
        build = [ENGINE, "build", "--target", "build", "-f",
                 os.path.join(src, "docker", "Dockerfile"), "-t", tag, src]
        self.addCleanup(subprocess.run, [ENGINE, "rmi", "-f", tag], capture_output=True)
        self.assertEqual(run(build, timeout=1800, check=False).returncode, 0)

    def test_a_governed_message_passes_with_a_stamp_that_verifies(self):
        data = tempfile.mkdtemp(prefix="tf-docker-data-")
        self.addCleanup(shutil.rmtree, data, True)
        os.chmod(data, 0o777)              # the container's mosquitto user writes here
        port, tls_port = harness.free_port(), harness.free_port()
        name = f"tf-test-{os.getpid()}"
        self.engine("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:1883",
                    "-p", f"127.0.0.1:{tls_port}:8883", "-v", f"{data}:/var/lib/trustflow",
                    self.tag)
        self.addCleanup(subprocess.run, [ENGINE, "rm", "-f", name], capture_output=True)
        broker = Endpoint(port)

        self.wait_up(port, name)
        if ENGINE == "podman":
            self.assertEqual(self.engine("healthcheck", "run", name, check=False).returncode, 0)

        maint = self.client(broker, "c-maint", username="maint-app", password="demo")
        maint.subscribe("$trustflow/keys/#")
        key = os.path.join(data, "broker-public.pem")
        with open(key, "wb") as f:
            f.write(maint.receive().payload)
        self.assertEqual(maint.subscribe(TOPIC), 1)
        verifier = subprocess.Popen([TFCTL, "verify", "--key", key, "--port", str(port),
                                     "--username", "maint-app", "--password", "demo",
                                     "--topic", "city/water/#", "--count", "1"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(verifier.kill)
        # Readings until the verifier, once subscribed, has checked one.
        for i in range(60):
            self.assertLess(publish_v5(broker, "ww-sensor-01", TOPIC,
                                       json.dumps({"flow": 12.5, "n": i})), 0x80)
            self.assertEqual(json.loads(maint.receive().payload)["n"], i)
            try:
                out, _ = verifier.communicate(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                continue
        self.assertRegex(out, r"^ok [0-9a-f]{32} " + TOPIC)
        self.assertEqual(verifier.returncode, 0)
        maint.close()

        # SIGHUP reloads the policies; SIGTERM stops it cleanly.
        self.engine("kill", "-s", "HUP", name)
        deadline = time.monotonic() + 30
        while "Reloading config." not in self.engine("logs", name).stderr:
            self.assertLess(time.monotonic(), deadline, "no reload")
            time.sleep(0.2)
        self.engine("stop", "-t", "30", name)
        state = json.loads(self.engine("inspect", name).stdout)[0]["State"]
        self.assertEqual(state["ExitCode"], 0)
        verify = json.loads(run([TFCTL, "trace", "--db", os.path.join(data, "trace"),
                                 "verify", "--key", key]).stdout)
        self.assertTrue(verify["ok"])
        self.assertGreaterEqual(verify["events"], 3)     # policy set, message, delivery
        self.assertGreaterEqual(verify["checkpoints"], 1)

    # -- the compose file: the broker and its web console -------------------

    def test_the_compose_files_console_answers_a_sign_in(self):
        with open(os.path.join(SRCDIR, "docker", "compose.yaml"), encoding="utf-8") as f:
            compose = yaml.safe_load(f)
        self.assertEqual(compose["services"]["console"]["ports"], ["127.0.0.1:8080:8080"])
        project = f"tf-demo-{os.getpid()}"
        ports = self.start_compose_services(compose, project,
                                            base=os.path.join(SRCDIR, "docker"))
        self.wait_up(ports["trustflow"][1883], f"{project}-trustflow")
        port = ports["console"][8080]

        def sign_in(password):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                conn.request("POST", "/api/login", body=json.dumps(
                    {"username": "ww-steward", "password": password}),
                    headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                return r.status, r.getheader("Set-Cookie"), r.read()
            except OSError:
                return None
            finally:
                conn.close()
        status, cookie, body = harness.wait_for("the console", lambda: sign_in("demo"),
                                                timeout=60)
        self.assertEqual(status, 200, body)
        self.assertIn("HttpOnly", cookie)
        self.assertEqual(json.loads(body)["user"], "ww-steward")
        self.assertEqual(sign_in("wrong")[0], 401)

    # -- the federation demo ------------------------------------------------

    def start_compose_services(self, compose, project, base=None):
        """Runs compose's services with the engine as `docker compose up`
        would: on a network of the project's own, each reachable by its
        service name, its named volumes the project's (paths, relative to
        base, the compose file's folder, are bind-mounted), its ports on
        free host ports, one-shot services (entrypoint, no ports) first and
        to their end. Returns service -> {container port: host port}."""
        network = f"{project}-net"
        self.engine("network", "create", network)
        self.addCleanup(subprocess.run, [ENGINE, "network", "rm", "-f", network],
                        capture_output=True)
        for volume in compose.get("volumes", {}):
            self.addCleanup(subprocess.run, [ENGINE, "volume", "rm", "-f",
                                             f"{project}-{volume}"], capture_output=True)
        ports = {}
        for name, service in compose["services"].items():
            args = ["run", "--name", f"{project}-{name}", "--network", network,
                    "--network-alias", name]
            for key, value in service.get("environment", {}).items():
                args += ["-e", f"{key}={value}"]
            for volume in service.get("volumes", []):
                source, target = volume.split(":", 1)
                if source.startswith((".", "/")):
                    args += ["-v", f"{os.path.normpath(os.path.join(base, source))}:{target}"]
                else:
                    args += ["-v", f"{project}-{source}:{target}"]
            ports[name] = {}
            for mapping in service.get("ports", []):
                inside = int(mapping.split(":")[-1])
                ports[name][inside] = harness.free_port()
                args += ["-p", f"127.0.0.1:{ports[name][inside]}:{inside}"]
            if "entrypoint" in service:
                args += ["--entrypoint", service["entrypoint"][0]]
            self.addCleanup(subprocess.run, [ENGINE, "rm", "-f", f"{project}-{name}"],
                            capture_output=True)
            one_shot = "entrypoint" in service and not service.get("ports")
            self.engine(*(args + ([] if one_shot else ["-d"]) + [self.tag]
                          + service.get("entrypoint", [])[1:]), timeout=300)
        return ports

    def wait_up(self, port, name):
        """Waits until the broker of container name, on port, is up: when
        it has published its key."""
        deadline = time.monotonic() + 60
        while run([harness.MOSQUITTO_SUB, "-p", str(port), "-t", "$trustflow/keys/#", "-C", "1",
                   "-W", "2"], check=False).returncode != 0:
            self.assertLess(time.monotonic(), deadline,
                            self.engine("logs", name, check=False).stderr)
            time.sleep(0.5)

    def test_the_federation_demo_carries_data_from_a_to_c_with_a_chain_that_verifies(self):
        with open(os.path.join(SRCDIR, "docker", "federation", "compose.yaml"),
                  encoding="utf-8") as f:
            compose = yaml.safe_load(f)
        project = f"tf-fed-{os.getpid()}"
        ports = self.start_compose_services(compose, project)
        keys = tempfile.mkdtemp(prefix="tf-fed-keys-")
        self.addCleanup(shutil.rmtree, keys, True)
        key_files = []
        for b in ("broker-a", "broker-b", "broker-c"):
            port = ports[b][1883]
            self.wait_up(port, f"{project}-{b}")
            key_files.append(os.path.join(keys, f"{b}.pem"))
            with open(key_files[-1], "w", encoding="utf-8") as f:
                f.write(run([harness.MOSQUITTO_SUB, "-p", str(port), "-t", "$trustflow/keys/#",
                             "-C", "1", "-W", "5"]).stdout)
        a, c = Endpoint(ports["broker-a"][1883]), Endpoint(ports["broker-c"][1883])
        lab = self.client(c, "c-lab", username="lab-analyst", password="demo")
        # C may subscribe it once it holds the owner's policy, from B.
        deadline = time.monotonic() + 60
        while lab.subscribe("city/water/+/quality") != 1:
            self.assertLess(time.monotonic(), deadline, "broker-c never held water-quality:\n"
                            + self.engine("logs", f"{project}-broker-c", check=False).stderr)
            time.sleep(0.5)
        verifier = subprocess.Popen([TFCTL, "verify", "--key"] + key_files
                                    + ["--port", str(c.port), "--username", "lab-analyst",
                                       "--password", "demo", "--topic", "city/water/+/quality",
                                       "--count", "1"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(verifier.kill)
        # Readings at A until C has the owner's policy and the verifier one.
        deadline = time.monotonic() + 90
        while True:
            self.assertLess(time.monotonic(), deadline, "nothing reached broker-c:\n" + "".join(
                self.engine("logs", f"{project}-{b}", check=False).stderr[-3000:]
                for b in ("broker-a", "broker-b", "broker-c")))
            publish_v5(a, "ww-sensor-01", "city/water/d7/quality", '{"ph": 7.1}')
            try:
                out, _ = verifier.communicate(timeout=1)
                break
            except subprocess.TimeoutExpired:
                continue
        self.assertRegex(out, r"^ok [0-9a-f]{32} city/water/d7/quality path: "
                         r"city-waterworks/ww-sensor-01 -> broker-a -> broker-b -> broker-c")
        self.assertEqual(verifier.returncode, 0)
        self.assertEqual(json.loads(lab.receive().payload), {"ph": 7.1})

        # Who received it, on every broker, as README.md asks it: each
        # broker's export joined, once checkpoints cover the message.
        msg_id = out.split()[1]
        exports = []
        for b in ("broker-a", "broker-b", "broker-c"):
            exports.append(os.path.join(keys, f"{b}.jsonl"))
        key_args = [arg for b, key in zip(("broker-a", "broker-b", "broker-c"), key_files)
                    for arg in ("--key-of", b, key)]

        def joined():
            for b, path in zip(("broker-a", "broker-b", "broker-c"), exports):
                with open(path, "w", encoding="utf-8") as f:
                    f.write(self.engine("exec", f"{project}-{b}", "tfctl", "trace", "--db",
                                        "/var/lib/trustflow/trace", "export",
                                        "--checkpoints").stdout)
            result = run([TFCTL, "trace", "join"] + key_args + [msg_id] + exports, check=False)
            return json.loads(result.stdout) if result.returncode == 0 else None
        report = harness.wait_for("a joined trace that checks out", joined, timeout=60)
        self.assertEqual(report["path"], ["broker-a", "broker-b", "broker-c"])
        at_c = report["brokers"][2]
        self.assertIn(("lab-analyst", "research-lab", "delivered"),
                      {(r["client"], r["org"], r["outcome"]) for r in at_c["recipients"]})


if __name__ == "__main__":
    if ENGINE is None:
        print("SKIP: no container engine can run here (neither a docker daemon nor podman)")
        sys.exit(77)
    harness.main()
