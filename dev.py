#!/usr/bin/env python3
"""Set up the project's own virtual environment and run its jobs: `demo` and `test`.

Usage (from a fresh clone, with nothing but python3 >= 3.11 and git):

    python3 dev.py demo     # the main job: a sample MicroSIP folder, live calls, the dashboard
    python3 dev.py test     # the whole suite: ruff, mypy, import contracts, pytest

Everything is installed into ./.venv, never globally, so PEP 668 "externally managed" systems are
fine. Debian's python3 without the python3-venv package has no ensurepip: we then create the venv
without pip and bootstrap pip from its wheel on PyPI.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".microsip-bridge-installed"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
# The real-world test corpus stays outside the repository, beside the clone (tests/conftest.py).
CORPUS = ROOT.parent / "shared" / "corpus"


def say(msg: str) -> None:
    print(f"[dev] {msg}", flush=True)


def run(*args: str | Path, check: bool = True, env: dict[str, str] | None = None) -> int:
    proc = subprocess.run([str(a) for a in args], cwd=ROOT, env=env, check=False)
    if check and proc.returncode != 0:
        say(f"failed ({proc.returncode}): {' '.join(str(a) for a in args)}")
        sys.exit(proc.returncode)
    return proc.returncode


def bootstrap_pip() -> None:
    """Install pip into a venv that was made without it (no ensurepip on this system)."""
    say("no ensurepip here: fetching pip's wheel from PyPI")
    index = "https://pypi.org/pypi/pip/json"
    with urllib.request.urlopen(index, timeout=60) as resp:
        meta = json.load(resp)
    wheel = next(
        f
        for f in meta["urls"]
        if f["packagetype"] == "bdist_wheel" and f["filename"].endswith(".whl")
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / wheel["filename"]
        # Mirrors may answer with a URL relative to the index page.
        url = urllib.parse.urljoin(index, wheel["url"])
        with urllib.request.urlopen(url, timeout=120) as resp:  # noqa: S310
            data = resp.read()
        if hashlib.sha256(data).hexdigest() != wheel["digests"]["sha256"]:
            sys.exit("[dev] pip wheel checksum mismatch; refusing to install it")
        path.write_bytes(data)
        zipfile.ZipFile(path).testzip()
        # A wheel is importable as a zip: run pip from its own wheel to install itself.
        run(PY, str(path / "pip"), "install", "--no-index", "--quiet", str(path))


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs under any system python
        sys.exit(f"[dev] python >= 3.11 is needed, this is {sys.version.split()[0]}")
    if not PY.exists():
        say(f"creating {VENV.relative_to(ROOT)}")
        proc = subprocess.run(
            [sys.executable, "-m", "venv", str(VENV)], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            shutil.rmtree(VENV, ignore_errors=True)
            run(sys.executable, "-m", "venv", "--without-pip", VENV)
            bootstrap_pip()
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    say("installing microsip-bridge and its test tools into .venv")
    run(PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", ".[dev]")
    STAMP.write_text(wanted)


def venv_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV)
    env.pop("PYTHONHOME", None)
    return env


def demo(args: list[str]) -> int:
    """What the bridge reads from the sample MicroSIP folder, then the live demo: the daemon and
    the MicroSIP simulator with our hooks installed, playing a few calls into the call log, and
    at the end the dashboard, served until Ctrl-C (``--once``: stop there instead)."""
    once = "--once" in args
    args = [a for a in args if a != "--once"]
    env = venv_env()
    home = Path(env.get("MSB_DEMO_HOME") or ROOT / ".demo-home")
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env["MICROSIP_BRIDGE_HOME"] = str(home)
    # Short timeouts, so that the rejected call is closed before the demo ends.
    (home / "config.toml").write_text("reject_timeout = 3.0\nsweep_interval = 2.0\n")
    tool = str(BIN / "microsip-bridge")
    sample = ROOT / "samples" / "MicroSIP"
    live = home / "MicroSIP"

    def step(*cmd: str) -> int:
        print(f"\n$ microsip-bridge {' '.join(cmd)}", flush=True)
        return run(tool, *cmd, check=False, env=env)

    print("== 1. What the bridge reads from a MicroSIP folder (samples/MicroSIP)")
    for cmd in (
        ["doctor", "--microsip", str(sample)],
        ["history", "--microsip", str(sample), "--limit", "5"],
        ["contacts", "list", "--microsip", str(sample)],
    ):
        if step(*cmd) not in (0, 1):
            return 1
    print("\n== 2. Live: the daemon, and a simulated MicroSIP running our hook on every event")
    if step("sim", str(live), "--create") != 0 or step("hooks", "install", "--microsip", str(live)):
        return 1
    print(f"\n$ microsip-bridge serve --port 0 --ini {live / 'microsip.ini'} &", flush=True)
    daemon = Served(tool, ["serve", "--port", "0", "--ini", str(live / "microsip.ini")], env)
    phone: subprocess.Popen[bytes] | None = None
    interrupted = False
    try:
        deadline = time.monotonic() + 30
        while not (home / "daemon.json").exists():
            if daemon.proc.poll() is not None or time.monotonic() > deadline:
                say("the daemon did not start")
                return 1
            time.sleep(0.1)
        scenario = ROOT / "samples" / "demo-calls.toml"
        if step("sim", str(live), "--scenario", str(scenario), *args) != 0:
            return 1
        time.sleep(4)  # the reject timeout closes the call MicroSIP rejected silently
        step("calls")
        step("events", "--limit", "8")
        if once:
            return 0
        print("\n== 3. The dashboard: live calls, the call log, dialing, contacts, health")
        print(f"$ microsip-bridge sim {live} --serve &", flush=True)
        phone = subprocess.Popen([tool, "sim", str(live), "--serve"], cwd=ROOT, env=env)
        info = json.loads((home / "daemon.json").read_text("utf-8"))
        link = daemon.login_link() or f"{info['url']}/"
        print(f"\nOpen the dashboard: {link}", flush=True)
        print("(a one-time login link; `microsip-bridge open` makes a fresh one, with")
        print(f"MICROSIP_BRIDGE_HOME={home}). Calls you place there ring in the simulated")
        print("MicroSIP. The daemon and the simulator serve until you press Ctrl-C.", flush=True)
        try:
            while daemon.proc.poll() is None and phone.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            interrupted = True
            print()
        return 0
    finally:
        stop_all([p for p in (phone, daemon.proc) if p is not None], signalled=interrupted)
        daemon.close()
        print(f"\nThe demo's bridge home is {home}; run the commands above with")
        print(f"MICROSIP_BRIDGE_HOME={home} to look further (the daemon is stopped).")


def stop_all(procs: list[subprocess.Popen[bytes]], *, signalled: bool) -> None:
    """Stop the demo's processes. Ctrl-C in a terminal reached them already (``signalled``):
    they are given time to stop, since a second signal would make the daemon stop at once."""
    if signalled:
        give_up = time.monotonic() + 15
        while any(p.poll() is None for p in procs) and time.monotonic() < give_up:
            time.sleep(0.1)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class Served:
    """``microsip-bridge serve`` in the background: its output is passed on as it comes, and
    the one-time login link it prints is kept for the demo's last words."""

    def __init__(self, tool: str, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [tool, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=None
        )
        self._link: str | None = None
        self._echo = threading.Thread(target=self._pass_on, daemon=True)
        self._echo.start()

    def _pass_on(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace")
            sys.stdout.write(line)
            sys.stdout.flush()
            found = re.search(r"http://\S+/login\?once=\S+", line)
            if found:
                self._link = found.group(0)

    def login_link(self) -> str | None:
        return self._link

    def close(self) -> None:
        self._echo.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def start_postgres(env: dict[str, str]) -> list[str] | None:
    """Start a throwaway PostgreSQL for the store's tests, unless MSB_TEST_PG_URL names one.

    Returns the command that stops it. Without PostgreSQL those tests are skipped, unless
    MSB_REQUIRE_PG=1 (CI) makes that a failure.
    """
    script = ROOT / "scripts" / "pg-test-server.sh"
    if env.get("MSB_TEST_PG_URL") or os.name != "posix" or not script.exists():
        return None
    say("--- starting a throwaway PostgreSQL for the store tests")
    proc = subprocess.run(
        ["bash", str(script), "start"],  # noqa: S607 - bash from PATH is the point
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        say("no PostgreSQL here: " + (proc.stderr.strip().splitlines() or ["?"])[-1])
        if env.get("MSB_REQUIRE_PG") == "1":
            sys.exit("[dev] MSB_REQUIRE_PG=1 but PostgreSQL could not be started")
        say("its tests will be skipped")
        return None
    env["MSB_TEST_PG_URL"] = proc.stdout.strip().splitlines()[-1].split("=", 1)[1]
    return ["bash", str(script), "stop"]


def check_corpus(env: dict[str, str]) -> None:
    """Say whether the tests over the real-world corpus run; MSB_REQUIRE_CORPUS=1 (CI) needs it."""
    if CORPUS.is_dir():
        say(f"the real-world corpus is beside this clone ({CORPUS}): its tests run too")
    elif env.get("MSB_REQUIRE_CORPUS") == "1":
        sys.exit(f"[dev] MSB_REQUIRE_CORPUS=1 but there is no real-world corpus at {CORPUS}")
    else:
        say("no real-world corpus beside this clone (../shared/corpus): its tests are skipped")


def check_browser(env: dict[str, str]) -> None:
    """Say whether the dashboard's browser tests run; MSB_REQUIRE_BROWSER=1 (CI) needs them."""
    if Path("/usr/bin/chromium").is_file():
        say("Debian's chromium is here: the dashboard's browser tests run too")
    elif env.get("MSB_REQUIRE_BROWSER") == "1":
        sys.exit("[dev] MSB_REQUIRE_BROWSER=1 but there is no /usr/bin/chromium")
    else:
        say("no /usr/bin/chromium (apt-get install chromium): the browser tests are skipped")


def test(args: list[str]) -> int:
    env = venv_env()
    checks: list[tuple[str, list[str | Path]]] = [
        ("ruff check", [BIN / "ruff", "check", "src", "tests", "bench", "dev.py"]),
        ("ruff format", [BIN / "ruff", "format", "--check", "src", "tests", "bench", "dev.py"]),
        ("mypy (linux)", [PY, "-m", "mypy", "--platform", "linux", "src"]),
        ("mypy (win32)", [PY, "-m", "mypy", "--platform", "win32", "src"]),
        # The layers point down (pyproject.toml's [tool.importlinter] contracts).
        ("import contracts", [BIN / "lint-imports", "--no-cache"]),
        ("pytest", [PY, "-m", "pytest", *args]),
    ]
    failed: list[str] = []
    stop_pg = None
    try:
        for name, cmd in checks:
            if name == "pytest":
                check_corpus(env)
                check_browser(env)
                stop_pg = start_postgres(env)
            say(f"--- {name}")
            rc = run(*cmd, check=False, env=env)
            if name == "pytest" and rc == 5:
                say("pytest collected no tests: that is a failure")
            if rc != 0:
                failed.append(name)
    finally:
        if stop_pg:
            subprocess.run(stop_pg, capture_output=True, check=False)
    if failed:
        say(f"FAILED: {', '.join(failed)}")
        return 1
    say("all checks passed")
    return 0


def main() -> int:
    jobs = {"demo": demo, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in jobs:
        print(__doc__)
        return 2
    ensure_venv()
    return jobs[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
