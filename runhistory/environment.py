"""The environment variables that tell a process which workspace and run it belongs to.

A module of its own (no imports) so that a job's supervisor can read them without
loading the SDK.
"""

ENV_TRACKING_URI = "RUNHISTORY_TRACKING_URI"
ENV_ARTIFACT_URI = "RUNHISTORY_ARTIFACT_URI"
ENV_RUN_ID = "RUNHISTORY_RUN_ID"
