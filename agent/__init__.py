"""The reference Spot Optimizer agent: reports a cluster's nodes and pods to the platform and carries out the
Kubernetes actions the platform queues for it. Runs against a real cluster (the official ``kubernetes`` client) or
an in-memory one (``--simulate``)."""

__version__ = "0.1.0"
