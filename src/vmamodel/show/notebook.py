"""Notebooks: an ``AddressSpace`` and a collected trace (``Trace``) display as the page.

The core never imports this tool, so the display is registered from here with the running
IPython: ``%load_ext vmamodel.show`` (or ``import vmamodel.show``, which registers when it is
imported inside IPython).
"""

from __future__ import annotations

import html
import sys
from typing import Any

from vmamodel.events import Trace
from vmamodel.mm import AddressSpace
from vmamodel.show.html import page
from vmamodel.show.model import Film, film_from_events, film_of

FRAME_HEIGHT = 520


def frame(film: Film) -> str:
    """The page inside an iframe, so that its script and style stay out of the notebook's."""
    return (f'<iframe srcdoc="{html.escape(page(film), quote=True)}" sandbox="allow-scripts" '
            f'style="width:100%;height:{FRAME_HEIGHT}px;border:1px solid #d0d7de"></iframe>')


def address_space_html(mm: AddressSpace) -> str:
    return frame(film_of(mm))


def trace_html(trace: Trace) -> str:
    return frame(film_from_events(trace))


def register(ipython: Any = None) -> bool:
    """Register the HTML display of AddressSpace and Trace with IPython; False when no
    IPython is running (there is nothing to display into)."""
    if ipython is None:
        module = sys.modules.get("IPython")
        ipython = module.get_ipython() if module is not None else None
    if ipython is None:
        return False
    formatter = ipython.display_formatter.formatters["text/html"]
    formatter.for_type(AddressSpace, address_space_html)
    formatter.for_type(Trace, trace_html)
    return True


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext vmamodel.show``."""
    register(ipython)
