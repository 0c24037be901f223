"""TensorBoard built in: ``Tensorboard`` serves runs live; ``export.export_to_tensorboard`` writes
event files; ``import_logdir`` brings event files written elsewhere into runs."""

from runhistory.tensorboard.board import Tensorboard
from runhistory.tensorboard.importer import import_logdir

__all__ = ["Tensorboard", "import_logdir"]
