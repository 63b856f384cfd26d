"""Notebooks: with the extension loaded, IPython displays an AddressSpace and a collected trace
as the page (in an iframe), and the page inside works in a real browser."""

from __future__ import annotations

import base64
import gzip
import html
import json
import re
import subprocess
import sys
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

import vmamodel as v
from vmamodel.show.notebook import register

BASE = 0x100000000000
RW = v.PROT_READ | v.PROT_WRITE
ANON = v.MAP_PRIVATE | v.MAP_ANONYMOUS | v.MAP_FIXED


@pytest.fixture(scope="module")
def shell() -> Any:
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "vmamodel.show")
    return shell


def srcdoc(fragment: str) -> str:
    match = re.fullmatch(r'<iframe srcdoc="([^"]*)" sandbox="allow-scripts" style="[^"]*">'
                         r"</iframe>", fragment)
    assert match is not None, fragment[:200]
    return html.unescape(match.group(1))


def test_an_address_space_displays_as_the_page(shell: Any, browser: Any) -> None:
    mm = v.AddressSpace()
    mm.mmap(BASE, 3 * 4096, RW, ANON)
    mm.mprotect(BASE + 4096, 4096, v.PROT_READ)
    data, _metadata = shell.display_formatter.format(mm)
    page = srcdoc(data["text/html"])
    assert page.startswith("<!DOCTYPE html>") and "<script" in page
    tab = browser.new_page()
    tab.set_content(data["text/html"])
    frame = tab.frames[1]
    frame.wait_for_selector("body[data-ready]")
    rows = frame.locator("#vmas tr.vma td.maps").all_inner_texts()
    assert [r.split()[1] for r in rows] == ["rw-p", "r--p", "rw-p"]
    assert "kept apart by vm_flags" in frame.inner_text("#step-detail")
    tab.close()


def test_a_collected_trace_displays_as_the_page(shell: Any) -> None:
    mm = v.AddressSpace()
    with mm.tracer.collect() as events:
        mm.mmap(BASE, 2 * 4096, RW, ANON)
        mm.munmap(BASE, 4096)
    data, _metadata = shell.display_formatter.format(events)
    page = srcdoc(data["text/html"])
    packed = re.search(r'id="vmamodel-data">([A-Za-z0-9+/=]+)</script>', page)
    assert packed is not None
    film = json.loads(gzip.decompress(base64.b64decode(packed.group(1))))
    assert film["st"]["t"] == ["mmap(0x100000000000, 0x2000, 3, 50, None, 0)",
                               "munmap(0x100000000000, 0x1000)"]


def test_outside_ipython_importing_the_tool_registers_nothing() -> None:
    code = "import sys, vmamodel.show as s; print(s.register(), 'IPython' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["False", "False"]
    assert register(InteractiveShell.instance()) is True
