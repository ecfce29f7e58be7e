"""The Fabric network of a swarmfuse consortium, run as plain local processes under one home.

``control.Network`` starts, restarts, inspects and stops orderers, peers and the per-org chaincode
servers (``swarmfuse network up|status|down``); ``tasks`` creates one channel per collaboration task
and deploys the chaincode on it (``swarmfuse task create|list|invoke|query``). Clients read the
per-org connection profiles under ``<home>/orgs/<Org>/connection.json``.
"""
