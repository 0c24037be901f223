"""runhistory: experiment run history with TensorBoard built in."""

from runhistory.experiment import Experiment
from runhistory.run import Run
from runhistory.workspace import Workspace

__version__ = "0.1.0"

__all__ = ["Experiment", "Run", "Workspace", "__version__"]
