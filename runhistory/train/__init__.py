"""azureml's ``train`` namespace: framework estimators, as aliases of :class:`~runhistory.Estimator`."""
