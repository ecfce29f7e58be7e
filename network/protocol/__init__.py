"""Fabric's protocol, shared by everything that speaks it: identities and signing, transaction IDs, RPC status,
the block format and COMMIT_HASH, MSPs and signature policies, ``_lifecycle`` records, key metadata, and the
validator (a peer's proposal checks and block validation). The Gateway client (``client/gateway``), the
embedded engine (``network/embedded``) and the auditor (``client/audit``) depend on it; it depends on none of
them."""
