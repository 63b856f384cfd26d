"""``vmamodel check``: find lifecycle bugs in a driver's mmap hooks, unaided.

    >>> from vmamodel.check import check
    >>> [f.kind for f in check("/dev/bad0", profiles=["v4"], jobs=1) if f.is_driver_bug][:1]
    ['leak']

Modules: :mod:`.skeletons` (the call sequences), :mod:`.explore` (probing, the runs, the
process pool), :mod:`.detectors` (the monitor of one run), :mod:`.state` (the driver's state as
data), :mod:`.rules` (the kernel rule of each finding), :mod:`.findings` (grouping, shrinking,
reproducers, JSON and SARIF), :mod:`.targets` (what TARGET names). See docs/check.md.
"""

from vmamodel.check.api import Report, check, run_check
from vmamodel.check.detectors import Detection, Monitor
from vmamodel.check.findings import Finding, replay
from vmamodel.check.targets import Target, TargetError, resolve

__all__ = [
    "Detection",
    "Finding",
    "Monitor",
    "Report",
    "Target",
    "TargetError",
    "check",
    "replay",
    "resolve",
    "run_check",
]
