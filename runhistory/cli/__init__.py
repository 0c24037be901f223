"""The ``runhistory`` command line: one module per command group, rooted in :mod:`runhistory.cli.main`."""
