"""AccessFault, the exception of a user access that would raise a signal.

It lives apart from fault.py because it subclasses OSError, which mypyc cannot compile: this
module stays plain Python in the compiled build, and fault.py (compiled) raises it.
"""

from __future__ import annotations

import errno


class AccessFault(OSError):
    """The access would raise a signal: ``signal`` is "SIGSEGV" or "SIGBUS"."""

    def __init__(self, signal: str, detail: str) -> None:
        super().__init__(errno.EFAULT, f"{signal}: {detail}")
        self.signal = signal
