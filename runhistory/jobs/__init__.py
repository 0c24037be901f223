"""Jobs: a training script run as a tracked run on a compute target.

``config`` (what to run), ``snapshot`` (the source folder, copied into the run's files),
``submit`` (``Experiment.submit``), ``supervisor`` (runs one job next to its script),
``process`` and ``watchdog`` (the script's whole process tree ends with the job),
``streaming`` (files and output into the run's files as they grow); waiting for a run
is the SDK's (``runhistory.watch``). Nothing is imported here, so the supervisor starts fast.
"""
