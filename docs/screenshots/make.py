"""Make the README's two screenshots of examples/merge_and_split.vmas: the terminal view (rich's
SVG export, drawn by Chromium) and the HTML page. Needs Debian's chromium and Playwright.

    python docs/screenshots/make.py        # writes docs/screenshots/{terminal,html}.png
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from pathlib import Path

from rich.console import Console

from vmamodel.scenario import parse_file
from vmamodel.show import film_of_scenario, print_film, to_html

try:
    from playwright.sync_api import sync_playwright
except ImportError:
    raise SystemExit("this script drives Debian's chromium through Playwright: "
                     "pip install -e '.[test]' and apt-get install -y chromium") from None

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
EXAMPLE = "examples/merge_and_split.vmas"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: the steps the terminal screenshot shows (the split, the no-op, the merge)
TERMINAL_STEPS = range(2, 6)


def terminal_svg() -> str:
    film, _run = film_of_scenario(parse_file(EXAMPLE))
    console = Console(record=True, width=104, force_terminal=True, color_system="truecolor",
                      file=io.StringIO(), highlight=False)
    print_film(console, film, TERMINAL_STEPS)
    return console.export_svg(title=f"vmamodel show {EXAMPLE}")


def main() -> None:
    os.chdir(ROOT)  # the scenario's path, as the pictures show it, is relative
    with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        svg = Path(tmp, "terminal.svg")
        text = terminal_svg()
        svg.write_text(text)
        box = re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', text)
        assert box is not None, "rich's SVG has a viewBox"
        width, height = (int(float(n)) for n in box.groups())
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(svg.as_uri())
        page.locator("svg").screenshot(path=str(HERE / "terminal.png"))
        html = Path(tmp, "page.html")
        film, _run = film_of_scenario(parse_file(EXAMPLE))
        to_html(film, html)
        page = browser.new_page(viewport={"width": 1100, "height": 600})
        page.goto(html.as_uri())
        page.wait_for_selector("body[data-ready]")
        page.click('.step[data-step="3"]')
        page.click("#vmas tr.vma:nth-child(2)")
        page.screenshot(path=str(HERE / "html.png"))
        browser.close()
    for name in ("terminal.png", "html.png"):
        print(f"wrote {HERE / name} ({(HERE / name).stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
