"""riskgate cluster processes for the failover tests and ``python -m loadtest.failover``:
``riskgate serve --nats URLS --shard K --shards N`` on a free 127.0.0.1 port, with its log in
a file; killed (``SIGKILL``), paused (``SIGSTOP``/``SIGCONT``) or stopped (``SIGTERM``) on
demand. The role is read from the health service (``riskgate.cluster.owner`` /
``riskgate.cluster.standby`` SERVING)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

OWNER, STANDBY = "riskgate.cluster.owner", "riskgate.cluster.standby"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RiskgateProc:
    """One ``riskgate serve`` process of shard ``shard``."""

    def __init__(
        self,
        urls: list[str],
        shard: int,
        shards: int,
        log_dir: str | Path,
        name: str,
        *,
        lease_ttl_s: float = 1.5,
        extra: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.urls, self.shard, self.shards, self.name = urls, shard, shards, name
        self.lease_ttl_s, self.extra, self.env = lease_ttl_s, extra, dict(env or {})
        self.log = Path(log_dir) / f"{name}.log"
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> RiskgateProc:
        self.port = _free_port()
        exe = Path(sys.executable).parent / "riskgate"
        env = dict(os.environ, RISKGATE_LEASE_TTL_S=str(self.lease_ttl_s),
                   RISKGATE_ACCEPT_LOG_SAMPLE_RATE="0", **self.env)  # fmt: skip
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(exe), "serve", "--nats", ",".join(self.urls), "--shard", str(self.shard),
                 "--shards", str(self.shards), "--listen", self.address, *self.extra],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            )  # fmt: skip
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def health(self, service: str, timeout_s: float = 0.5) -> str:
        """SERVING / NOT_SERVING / ... or '' if it does not answer."""
        try:
            with grpc.insecure_channel(self.address) as ch:
                resp = health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
                )
        except grpc.RpcError:
            return ""
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

    def role(self) -> str:
        if self.health(OWNER) == "SERVING":
            return "owner"
        if self.health(STANDBY) == "SERVING":
            return "standby"
        return ""

    def wait_role(self, role: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.role() != role:
            if not self.alive:
                raise RuntimeError(f"{self.name} exited: {self.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: not {role} after {timeout_s}s: {self.tail()}")
            time.sleep(0.1)

    def signal(self, sig: int) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)  # type: ignore[union-attr]

    def kill(self) -> None:
        """``kill -9``."""
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(20)

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def stop(self, timeout_s: float = 20.0) -> None:
        if not self.alive:
            return
        self.resume()
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)  # type: ignore[union-attr]
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self, lines: int = 8) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
