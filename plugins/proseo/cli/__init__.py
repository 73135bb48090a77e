"""The ``proseo`` command line."""
