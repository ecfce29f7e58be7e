"""A rich progress bar for image-extractor training: epoch, loss and time left.

``training_bar(progress)`` returns a :data:`~swarmfuse.extractors.image.train.ProgressCallback` that adds
its task to ``progress`` on the first training step (so nothing shows when the extractor comes from the
cache). :func:`columns` gives the columns that show the bar and the time left.
"""

from __future__ import annotations

from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from swarmfuse.extractors.image.train import ProgressCallback, TrainProgress


def columns() -> tuple:
    """Fresh columns for a :class:`rich.progress.Progress` that shows the bar, the time spent and the time left."""
    return (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), TextColumn("left"),
            TimeRemainingColumn())


def training_bar(progress: Progress, description: str = "training the ResNet50 image extractor") -> ProgressCallback:
    task: TaskID | None = None

    def update(p: TrainProgress) -> None:
        nonlocal task
        if task is None:
            task = progress.add_task(description, total=p.epochs * p.steps)
        progress.update(task, completed=(p.epoch - 1) * p.steps + p.step,
                        description=f"{description}: epoch {p.epoch}/{p.epochs}, loss {p.loss:.3f}")

    return update
