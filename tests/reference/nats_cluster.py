"""The tests' 3-node NATS cluster: riskgate.cluster.local (also `riskgate nats-local`)."""

from riskgate.cluster.local import CLUSTER_NAME, NatsCluster, Node, free_port, nats_server_binary

__all__ = ["CLUSTER_NAME", "NatsCluster", "Node", "free_port", "nats_server_binary"]
