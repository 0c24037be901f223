"""``TensorFlow`` and ``PyTorch``: azureml's framework estimators, here aliases of ``Estimator``.

A job runs in the submitting Python environment, so choosing a framework changes nothing:
the names exist so that code written for ``azureml.train.dnn`` ports by changing the import.
"""

from runhistory.jobs.config import Estimator

TensorFlow = Estimator
PyTorch = Estimator
Chainer = Estimator

__all__ = ["Chainer", "PyTorch", "TensorFlow"]
