"""TensorBoard built in: ``Tensorboard`` serves runs live; ``export.export_to_tensorboard`` writes event files."""

from runhistory.tensorboard.board import Tensorboard

__all__ = ["Tensorboard"]
