"""Differential privacy of what leaves a site: the accountant (:mod:`.accountant`) and the release mechanism
(:mod:`.release`), used by the sites that release and by the auditor that checks the releases."""
