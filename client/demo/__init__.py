"""The main job on one machine (:mod:`.job`: three data centres, the auditor and one fusion round on a local
network) and its report (:mod:`.report`), scored in each extractor regime (:mod:`.regimes`); the same regimes built
and scored in one process, without a network (:mod:`.local_regimes`), behind ``swarmfuse fuse evaluate``
(:mod:`.fuse_cli`); built on the site, the ledger client and the auditor, none of which depends on it."""
