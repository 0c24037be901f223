"""The web UI: server-rendered pages over the run history, served with the server's API (:mod:`.app`)."""
