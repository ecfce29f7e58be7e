"""NT-ASGD: SGD until validation stops improving non-monotonically, then averaged SGD (Merity et al. 2017)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn


class NTASGD:
    """Runs SGD; :meth:`observe` switches to ASGD once a validation loss is worse than the best one
    seen more than ``nonmono`` checks ago. :meth:`averaged` evaluates with the averaged weights."""

    def __init__(self, params: Iterable[nn.Parameter], lr: float, weight_decay: float = 0.0, nonmono: int = 5) -> None:
        self.params = list(params)
        self.lr, self.weight_decay, self.nonmono = lr, weight_decay, nonmono
        self.optimizer: torch.optim.Optimizer = torch.optim.SGD(self.params, lr=lr, weight_decay=weight_decay)
        self.history: list[float] = []
        self.switched_at: int | None = None

    @property
    def averaging(self) -> bool:
        return self.switched_at is not None

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def step(self) -> None:
        self.optimizer.step()

    def observe(self, val_loss: float) -> bool:
        """Record a validation loss; return True when this check triggers the switch to averaging."""
        trigger = (not self.averaging and len(self.history) > self.nonmono
                   and val_loss > min(self.history[: -self.nonmono]))
        self.history.append(val_loss)
        if trigger:
            self.switched_at = len(self.history)
            self.optimizer = torch.optim.ASGD(self.params, lr=self.lr, t0=0, lambd=0.0, weight_decay=self.weight_decay)
        return trigger

    def _averages(self) -> list[torch.Tensor] | None:
        if not self.averaging:
            return None
        state = self.optimizer.state
        if any("ax" not in state[p] for p in self.params):
            return None  # no averaged step taken yet
        return [state[p]["ax"] for p in self.params]

    @contextmanager
    def averaged(self) -> Iterator[None]:
        """Temporarily load the averaged weights (a no-op before the switch)."""
        averages = self._averages()
        if averages is None:
            yield
            return
        backup = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p, avg in zip(self.params, averages):
                p.copy_(avg)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, old in zip(self.params, backup):
                    p.copy_(old)

    def finalize(self) -> None:
        """Keep the averaged weights for good (end of training)."""
        averages = self._averages()
        if averages is not None:
            with torch.no_grad():
                for p, avg in zip(self.params, averages):
                    p.copy_(avg)
