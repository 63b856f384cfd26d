"""The ``vmamodel`` command line (click + rich)."""
