"""Pictures of an address space and of how a sequence of calls made it.

``vmamodel show FILE.vmas`` draws each step in the terminal; ``--html OUT.html`` (or
:func:`to_html`) writes one self-contained page. In a notebook, ``%load_ext vmamodel.show``
(or ``import vmamodel.show``) makes an ``AddressSpace`` and a collected trace display as the
page. The views share one model (:mod:`vmamodel.show.model`): steps, and VMA versions with the
step they appeared and disappeared at.
"""

from __future__ import annotations

from vmamodel.show.html import to_html
from vmamodel.show.model import (
    Film,
    Frag,
    Recorder,
    StepInfo,
    VmaRecord,
    film_from_events,
    film_of,
)
from vmamodel.show.notebook import load_ipython_extension, register
from vmamodel.show.runs import film_of_scenario
from vmamodel.show.terminal import print_film

__all__ = [
    "Film",
    "Frag",
    "Recorder",
    "StepInfo",
    "VmaRecord",
    "film_from_events",
    "film_of",
    "film_of_scenario",
    "load_ipython_extension",
    "print_film",
    "register",
    "to_html",
]

register()
