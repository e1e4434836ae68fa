"""The servers of a crash test run (see :mod:`loadtest.chaos`): riskgate incarnations on one
data directory, each on a free 127.0.0.1 port, timed from process start to health SERVING,
and killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from loadtest.chaos_traffic import CHANNEL_OPTIONS
from loadtest.servers import (
    RISKGATE_SERVICE,
    ServerError,
    SpawnedServer,
    riskgate_command,
)

__all__ = ["SERVER_ENV", "Servers", "log_events"]

SERVER_ENV = {
    "RISKGATE_RESERVATION_TTL_S": "3600",
    "RISKGATE_SNAPSHOT_INTERVAL_S": "2",
    "RISKGATE_JOURNAL_SEGMENT_MB": "1",
    # the check is of durability, not of the latency budget: on a loaded machine a 2 ms
    # budget rejects some orders, which are then not remembered for retries
    "RISKGATE_DECISION_BUDGET_US": "250000",
    "RISKGATE_LOG_FORMAT": "json",
}
# The server runs under this launcher: it asks the kernel to SIGKILL it when the crash test
# dies, so that no server outlives the test however the test ends (Linux; elsewhere a no-op).
_LAUNCHER = (
    "import ctypes, os, sys\n"
    "try:\n    ctypes.CDLL(None).prctl(1, 9)\n"  # PR_SET_PDEATHSIG, SIGKILL
    "except Exception:\n    pass\n"
    "if os.getppid() != int(sys.argv[1]):\n    sys.exit(70)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


class Servers:
    """The riskgate incarnations of one run, all on the same data directory."""

    def __init__(self, data_dir: Path, log_dir: Path, fsync: str) -> None:
        self.data_dir, self.log_dir, self.fsync = data_dir, log_dir, fsync
        self.current: SpawnedServer | None = None
        self.started = 0

    def start(self) -> SpawnedServer:
        # port 0: the server binds a free port itself and logs it (a port picked here and
        # bound later could be taken meanwhile, and the checks would talk to someone else)
        cmd = [*riskgate_command(0, "deribit"), "--data-dir", str(self.data_dir)]
        cmd += ["--fsync", self.fsync]
        self.started += 1
        log_path = self.log_dir / f"riskgate-{self.started:03d}.log"
        log = log_path.open("wb")
        env = {**os.environ, **SERVER_ENV}
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(os.getpid()), *cmd],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        self.current = SpawnedServer(
            f"riskgate #{self.started}", "", cmd, log_path, proc, t0, _log=log
        )
        return self.current

    def wait_serving(self, timeout_s: float) -> float:
        """Seconds from process start to health SERVING (polled every 20 ms) on the address
        the server logged it listens on."""
        srv = self.current
        assert srv is not None
        deadline = srv.started_s + timeout_s
        while not srv.address:
            self._check_alive(srv, deadline, timeout_s)
            srv.address = next(
                (e["address"] for e in log_events(srv.log_path) if e.get("event") == "listening"),
                "",
            )
        with grpc.insecure_channel(srv.address, options=CHANNEL_OPTIONS) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                self._check_alive(srv, deadline, timeout_s)
                try:
                    for service in ("", RISKGATE_SERVICE):
                        req = health_pb2.HealthCheckRequest(service=service)
                        if (
                            stub.Check(req, timeout=1.0).status
                            != health_pb2.HealthCheckResponse.SERVING
                        ):
                            break
                    else:
                        return time.monotonic() - srv.started_s
                except grpc.RpcError:
                    pass

    @staticmethod
    def _check_alive(srv: SpawnedServer, deadline: float, timeout_s: float) -> None:
        """Wait a poll interval; raise if the server exited or the time is up."""
        time.sleep(0.02)
        if not srv.alive():
            raise ServerError(
                f"{srv.name} exited with code {srv.process.returncode} before serving; "
                f"last log lines:\n{srv.log_tail()}"
            )
        if time.monotonic() > deadline:
            raise ServerError(f"{srv.name}: not SERVING after {timeout_s:.0f} s:\n{srv.log_tail()}")

    def kill(self) -> bool:
        """SIGKILL the current server; True if it had reported SERVING in its log."""
        srv, self.current = self.current, None
        if srv is None:
            return False
        srv.signal(signal.SIGKILL)
        srv.stop(timeout=10.0)
        return any(e.get("event") == "serving" for e in log_events(srv.log_path))

    def stop(self) -> int | None:
        srv, self.current = self.current, None
        return None if srv is None else srv.stop(timeout=30.0)


def log_events(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by the kill
    return out
