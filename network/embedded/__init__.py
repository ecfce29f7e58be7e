"""The embedded ledger engine: one process per home that speaks Fabric's Gateway, Deliver and
chaincode protocols, endorses through the same CCaaS chaincode servers as a Fabric peer, cuts
Fabric-format blocks, validates them as Fabric's peers do and commits them to SQLite."""
