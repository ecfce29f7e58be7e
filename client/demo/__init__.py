"""The main job on one machine (:mod:`.job`: three data centres, the auditor and one fusion round on a local
network) and its report (:mod:`.report`); built on the site, the ledger client and the auditor, none of which
depends on it."""
