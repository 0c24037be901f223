"""The request-size limits of the runhistory server, read once at start-up from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from runhistory.core import settings


@dataclass(frozen=True)
class RequestLimits:
    """The most bytes a request may bring: any body, a metric batch once decompressed, one uploaded file."""

    max_request: int  # any body, however it is framed
    max_batch: int  # a metric batch, decompressed
    max_file: int  # one uploaded file

    @classmethod
    def from_settings(cls) -> "RequestLimits":
        """The limits of ``$RUNHISTORY_SERVER_MAX_REQUEST``, ``_MAX_BATCH`` and ``_MAX_FILE`` (or their
        defaults, in :mod:`runhistory.core.settings`); a value that is not a positive number is :class:`~runhistory.core.errors.SettingError`."""
        return cls(
            max_request=int(settings.SERVER_MAX_REQUEST.positive_number()),
            max_batch=int(settings.SERVER_MAX_BATCH.positive_number()),
            max_file=int(settings.SERVER_MAX_FILE.positive_number()),
        )
