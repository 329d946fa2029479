"""The ``rnnkit`` command line (``rnnkit --help``)."""
