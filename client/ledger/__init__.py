"""The task's chaincode as one org's typed client: :class:`TaskLedger` (every transaction and query the site, the
auditor, the CLI and the demo use), its typed refusals, and :func:`open_task` (a task's ledger as an org of a
network home)."""

from swarmfuse.client.ledger.connect import TaskUnknown, open_task, task_org, task_topology
from swarmfuse.client.ledger.refusals import (
    LedgerBadRequest,
    LedgerConflict,
    LedgerForbidden,
    LedgerNotFound,
    LedgerRefused,
)
from swarmfuse.client.ledger.task import CHAINCODE, DEFAULT_MODEL_SPEC_SHA256, TaskLedger

__all__ = ["CHAINCODE", "DEFAULT_MODEL_SPEC_SHA256", "LedgerBadRequest", "LedgerConflict", "LedgerForbidden",
           "LedgerNotFound", "LedgerRefused", "TaskLedger", "TaskUnknown", "open_task", "task_org", "task_topology"]
