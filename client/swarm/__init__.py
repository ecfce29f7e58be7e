"""Swarm merges: how several sites holding the same modality combine what each learned, in a form any member or
auditor can recompute. The parameters file format (:mod:`.parameters`), the deterministic merges and the
description of one merge with its check (:mod:`.merge`), the errors both raise (:mod:`.errors`)."""
