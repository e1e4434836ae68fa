"""NATS credentials and TLS from the settings: a real nats-server (one JetStream node on a
free 127.0.0.1 port) that requires TLS with a client certificate and a token; the journal
connects with the options ``connect_options`` builds from the settings, and without them it
cannot."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time

import nats
import pytest

from riskgate.cluster.local import free_port, nats_server_binary
from riskgate.cluster.node import connect_options
from riskgate.config import Settings
from riskgate.engine.events import Audited, Stamped
from riskgate.engine.journal import nats_journal
from riskgate.engine.journal.nats_journal import JetStreamJournal
from tests.reference import pki

pytestmark = pytest.mark.skipif(nats_server_binary() is None, reason="no nats-server")


@pytest.fixture
def tls_server(tmp_path):
    ca_key, key = pki.new_key(), pki.new_key()
    ca = pki.cert("test-ca", ca_key, pki.name("test-ca"), ca_key, ca=True)
    files = {
        "ca": pki.write(tmp_path / "ca.pem", ca),
        "cert": pki.write(tmp_path / "server.pem", pki.cert("nats", key, ca.subject, ca_key,
                                                             ca=False, ip="127.0.0.1")),
        "key": pki.write(tmp_path / "server.key", key=key),
    }  # fmt: skip
    ckey = pki.new_key()
    files["ccert"] = pki.write(
        tmp_path / "client.pem", pki.cert("riskgate", ckey, ca.subject, ca_key, ca=False)
    )
    files["ckey"] = pki.write(tmp_path / "client.key", key=ckey)
    port = free_port()
    conf = tmp_path / "nats.conf"
    conf.write_text(
        f"listen: 127.0.0.1:{port}\n"
        f'jetstream {{ store_dir: "{tmp_path / "store"}" }}\n'
        f'tls {{ cert_file: "{files["cert"]}", key_file: "{files["key"]}", '
        f'ca_file: "{files["ca"]}", verify: true }}\n'
        'authorization { token: "s3cret" }\n'
    )
    with open(tmp_path / "nats.log", "wb") as log:
        proc = subprocess.Popen([nats_server_binary(), "-c", str(conf)], stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 20
            while True:  # until it listens
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", port)) == 0:
                        break
                assert time.monotonic() < deadline, "nats-server did not start"
                time.sleep(0.05)
            yield f"tls://127.0.0.1:{port}", files
        finally:
            proc.terminate()
            proc.wait(10)
            nats_journal.CONNECT_OPTIONS.clear()


def test_the_journal_connects_with_tls_and_a_token_from_the_settings(tls_server) -> None:
    url, f = tls_server
    s = Settings(
        journal_url=url, nats_token="s3cret", nats_tls_ca_file=f["ca"],
        nats_tls_cert_file=f["ccert"], nats_tls_key_file=f["ckey"], nats_replicas=1,
    )  # fmt: skip
    nats_journal.CONNECT_OPTIONS.update(connect_options(s))
    sink = JetStreamJournal(s.journal_urls, 5, replicas=1, connect_timeout_s=5.0)
    try:
        seq = sink.start_seq + 1
        sink.write([Stamped(seq, 1, Audited("p", "m", (), "OK", ""))])
        sink.wait_durable(seq)
        assert sink.acked == seq
    finally:
        sink.close()


def test_without_the_token_the_connection_is_refused(tls_server) -> None:
    url, f = tls_server
    s = Settings(journal_url=url, nats_tls_ca_file=f["ca"], nats_tls_cert_file=f["ccert"],
                 nats_tls_key_file=f["ckey"])  # fmt: skip

    async def attempt() -> None:
        nc = await nats.connect(servers=[url], allow_reconnect=False, connect_timeout=2,
                                **connect_options(s))  # fmt: skip
        await nc.close()

    with pytest.raises(Exception, match=r"(?i)authoriz"):
        asyncio.run(attempt())
