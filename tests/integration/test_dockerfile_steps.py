"""The Dockerfile's steps, run without a container engine.

No container engine can pull images here, so this test reads the Dockerfile and does what
each step does, in a temporary directory standing in for the image's file system: the
builder stage's COPY (only files the build context lets through .dockerignore), its venv and
its `pip install` with the constraints file, the runtime stage's ENV and kernel warm-up, then
the ENTRYPOINT with the image's environment (addresses moved to free ports) and the
HEALTHCHECK command, which must pass once the service is SERVING; metrics answer on the
metrics address, and SIGTERM (STOPSIGNAL) stops it with exit code 0. Creating the image's
user needs root and is not reproduced.

It installs riskgate's run-time dependencies into a fresh virtual environment (about a
minute with a warm pip cache) and compiles the kernels of both models.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _stages(text: str) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for word, rest in _instructions(text):
        if word == "FROM":
            stages.append([])
        elif stages:
            stages[-1].append((word, rest))
    return stages


def _env_pairs(rest: str) -> list[tuple[str, str]]:
    return [tuple(item.split("=", 1)) for item in shlex.split(rest)]  # type: ignore[misc]


def _sent_to_build(path: str) -> bool:
    """Whether .dockerignore lets ``path`` (relative) into the build context."""
    included = True
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/")
        if pattern == "**" or fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            included = negate
    return included


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_dockerfile_steps(tmp_path: Path) -> None:
    builder, runtime = _stages((ROOT / "Dockerfile").read_text())
    image = {  # the image's paths, here
        "/opt/venv": tmp_path / "venv",
        "/src": tmp_path / "src",
        "/var/cache/riskgate/numba": tmp_path / "numba-cache",
        "/var/lib/riskgate": tmp_path / "data",
        "/home/riskgate": tmp_path / "home",
    }
    for path in image.values():
        path.mkdir(parents=True, exist_ok=True)

    def local(text: str) -> str:
        for container, here in sorted(image.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(container, str(here))
        return text

    env = {k: v for k, v in os.environ.items() if not k.startswith(("RISKGATE_", "NUMBA_"))}
    env.pop("VIRTUAL_ENV", None)
    # the base image's `python` is this test's interpreter
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "python").symlink_to(sys.executable)
    env["PATH"] = f"{shim}{os.pathsep}{env.get('PATH', '')}"
    workdir = tmp_path

    def run_step(command: str) -> None:
        done = subprocess.run(
            local(command), shell=True, cwd=workdir, env=env, capture_output=True, text=True,
            timeout=900,
        )  # fmt: skip
        assert done.returncode == 0, f"RUN {command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"

    def apply_env(rest: str) -> None:
        for key, value in _env_pairs(rest):
            env[key] = local(value).replace("$PATH", env.get("PATH", ""))

    # ---- builder stage
    copied = []
    for word, rest in builder:
        if word == "ENV":
            apply_env(rest)
        elif word == "WORKDIR":
            workdir = Path(local(rest))
        elif word == "COPY":
            *sources, dest = shlex.split(rest)
            for src in sources:
                assert _sent_to_build(src), f"COPY {src}: excluded by .dockerignore"
                target = workdir / dest / (src if dest.endswith("/") else "")
                if (ROOT / src).is_dir():
                    shutil.copytree(ROOT / src, workdir / dest, ignore=shutil.ignore_patterns(
                        "__pycache__", "*.pyc", "*.nbi", "*.nbc"))  # fmt: skip
                else:
                    shutil.copy2(ROOT / src, target if dest.endswith("/") else workdir / dest)
                copied.append(src)
        elif word == "RUN":
            if "pip install" in rest:
                env.pop("PIP_NO_CACHE_DIR", None)  # the image has no cache; this test may
            run_step(rest)
    assert {"pyproject.toml", "constraints.txt", "riskgate"} <= set(copied)

    # every package the image's environment holds is pinned by constraints.txt
    venv_python = image["/opt/venv"] / "bin" / "python"
    frozen = subprocess.run(
        [str(venv_python), "-m", "pip", "freeze", "--exclude", "riskgate", "--exclude", "pip",
         "--exclude", "setuptools", "--exclude", "wheel"],
        capture_output=True, text=True, check=True, env=env,
    ).stdout.split()  # fmt: skip
    pins = {
        ln.split("==")[0].lower().replace("_", "-"): ln.split("==")[1]
        for ln in (ROOT / "constraints.txt").read_text().splitlines()
        if ln and not ln.startswith("#")
    }
    for line in frozen:
        name, _, version = line.partition("==")
        assert pins.get(name.lower().replace("_", "-")) == version, f"{line} not pinned"
    # grpcio-tools is not a run-time dependency
    assert not any(ln.lower().startswith("grpcio-tools") for ln in frozen)

    # ---- runtime stage
    healthcheck: list[str] = []
    entrypoint: list[str] = []
    for word, rest in runtime:
        if word == "ENV":
            apply_env(rest)
        elif word == "WORKDIR":
            workdir = Path(local(rest))
        elif word == "RUN":
            if "useradd" in rest:
                continue  # creating the image's user needs root
            run_step(rest)
        elif word == "HEALTHCHECK":
            healthcheck = json.loads(rest.split("CMD", 1)[1])
        elif word == "ENTRYPOINT":
            entrypoint = json.loads(rest)
        elif word == "STOPSIGNAL":
            assert rest == "SIGTERM"
    assert healthcheck and entrypoint
    # the warm-up filled the kernel cache the service starts from
    assert list(image["/var/cache/riskgate/numba"].rglob("*.nbi"))

    # the image listens on every interface: free ports here, and an auth file as the
    # README's first `docker run` line gives it
    grpc_port, metrics_port = _free_port(), _free_port()
    assert env["RISKGATE_LISTEN_ADDRESS"].startswith("0.0.0.0:")
    env["RISKGATE_LISTEN_ADDRESS"] = f"0.0.0.0:{grpc_port}"
    env["RISKGATE_METRICS_ADDRESS"] = re.sub(
        r":\d+$", f":{metrics_port}", env["RISKGATE_METRICS_ADDRESS"]
    )
    auth = tmp_path / "auth.toml"
    auth.write_text(
        '[[principal]]\nname = "gw"\ntoken_sha256 = "' + "0" * 64 + '"\nroles = ["gateway"]\n'
        'accounts = ["*"]\n'
    )
    env["RISKGATE_AUTH_FILE"] = str(auth)
    env["RISKGATE_DEMO_ACCOUNTS"] = "1"

    server = subprocess.Popen(
        [shutil.which(entrypoint[0], path=env["PATH"]) or entrypoint[0], *entrypoint[1:]],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120  # the HEALTHCHECK's start period is 60 s
        while True:
            probe = subprocess.run(
                healthcheck, env=env, cwd=workdir, capture_output=True, timeout=30
            )
            if probe.returncode == 0:
                break
            assert server.poll() is None, server.communicate()[0][-3000:]
            assert probe.returncode in (1, 2), probe  # not serving yet / not listening yet
            assert time.monotonic() < deadline, "never healthy"
            time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
            assert r.status == 200 and b"riskgate_market_version" in r.read()
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
        # stopped: the same health check now fails
        probe = subprocess.run(healthcheck, env=env, cwd=workdir, capture_output=True, timeout=30)
        assert probe.returncode != 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
