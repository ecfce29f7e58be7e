"""The auditor's view of a task: ledger queries (:mod:`.queries`) and the ``swarmfuse audit`` commands (:mod:`.cli`)."""
