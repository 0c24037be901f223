"""Run queries: the filter language, its SQL, and the per-series stats the store keeps."""
