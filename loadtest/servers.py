"""Servers the harness starts itself: riskgate and the no-op baseline, as subprocesses on
free ``127.0.0.1`` ports, ready once their gRPC health service says SERVING."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

__all__ = [
    "LOCALHOST",
    "ServerError",
    "SpawnedServer",
    "baseline_command",
    "free_port",
    "riskgate_command",
    "spawn",
    "wait_serving",
]

LOCALHOST = "127.0.0.1"
RISKGATE_SERVICE = "riskgate.v1.RiskGate"


class ServerError(RuntimeError):
    """A server could not be started or did not become healthy."""


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOCALHOST, 0))
        return int(s.getsockname()[1])


def riskgate_command(
    port: int,
    model: str,
    profile_out: Path | None = None,
    profile_clock: str = "cpu",
    data_dir: Path | None = None,
    fsync: str | None = None,
    stress: str | None = None,
) -> list[str]:
    """``python -m riskgate.cli serve --listen 127.0.0.1:PORT --no-demo --model M`` (with
    ``data_dir``: ``--data-dir DIR --fsync POLICY``, every state change journaled there);
    with ``profile_out`` the same command under :mod:`loadtest.profiled_server` (cProfile)."""
    serve = ["serve", "--listen", f"{LOCALHOST}:{port}", "--no-demo", "--model", model]
    if stress is not None:
        serve += ["--stress", stress]
    if data_dir is not None:
        serve += ["--data-dir", str(data_dir), "--fsync", fsync or "batch"]
    if profile_out is not None:
        return [sys.executable, "-m", "loadtest.profiled_server", "--out", str(profile_out),
                "--clock", profile_clock, "--", *serve]  # fmt: skip
    return [sys.executable, "-m", "riskgate.cli", *serve]


def baseline_command(port: int, workers: int) -> list[str]:
    return [sys.executable, "-m", "loadtest.baseline", "--listen", f"{LOCALHOST}:{port}",
            "--workers", str(workers)]  # fmt: skip


@dataclass
class SpawnedServer:
    name: str
    address: str
    command: list[str]
    log_path: Path
    process: subprocess.Popen[bytes]
    started_s: float = 0.0
    _log: IO[bytes] | None = field(default=None, repr=False)

    def alive(self) -> bool:
        return self.process.poll() is None

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the server process so far (Linux ``/proc``; None
        elsewhere or once it has exited)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        # fields[0] is the state (3rd field of the file): utime and stime are 14th and 15th
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def signal(self, sig: int) -> None:
        if self.alive():
            self.process.send_signal(sig)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (graceful drain), then SIGKILL after ``timeout``; returns the exit code."""
        proc = self.process
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5.0)
        if self._log is not None:
            self._log.close()
            self._log = None
        return proc.returncode

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def spawn(
    name: str, command: list[str], port: int, log_dir: Path, env: dict[str, str] | None = None
) -> SpawnedServer:
    """Start ``command`` (which must listen on 127.0.0.1:``port``); stdout and stderr go to
    ``log_dir/<name>.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log = log_path.open("wb")
    full_env = {**os.environ, **(env or {})}
    # the harness's own package must be importable by the child (python -m loadtest...)
    root = str(Path(__file__).resolve().parents[1])
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (root, full_env.get("PYTHONPATH")) if p)
    proc = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=full_env
    )
    return SpawnedServer(name, f"{LOCALHOST}:{port}", command, log_path, proc, _log=log)


def wait_serving(address: str, timeout_s: float, server: SpawnedServer | None = None) -> float:
    """Poll the gRPC health service until ``""`` or ``riskgate.v1.RiskGate`` is SERVING;
    returns the seconds waited. Raises :class:`ServerError` on timeout or if ``server``
    exits meanwhile."""
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    last = "no answer"
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if server is not None and not server.alive():
                raise ServerError(
                    f"{server.name} exited with code {server.process.returncode} before "
                    f"serving; last log lines:\n{server.log_tail()}"
                )
            for service in ("", RISKGATE_SERVICE):
                try:
                    resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1.0)
                except grpc.RpcError as exc:
                    last = exc.code().name
                    continue
                if resp.status == health_pb2.HealthCheckResponse.SERVING:
                    return time.monotonic() - t0
                last = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
            time.sleep(0.2)
    tail = f"; last log lines:\n{server.log_tail()}" if server is not None else ""
    raise ServerError(f"{address}: not SERVING after {timeout_s:.0f} s (last: {last}){tail}")
