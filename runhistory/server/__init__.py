"""The runhistory server: the run-history and artifact stores over HTTP (see :mod:`.app`)."""
