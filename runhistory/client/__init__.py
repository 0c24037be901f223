"""The client of a runhistory server: HTTP with retries, credentials, the spool, the remote stores."""
