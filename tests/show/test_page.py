"""The HTML page in a real headless Chromium: the VMAs of a step, a VMA's details, no network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import vmamodel as v
from vmamodel.scenario import parse_file
from vmamodel.show import film_of_scenario, to_html

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples/merge_and_split.vmas"
ROW = 22  # page.js: the height of a step's row


@pytest.fixture
def opened(browser: Any, tmp_path: Path) -> Any:
    """Opens the page of a scenario file and records every request the page makes."""
    pages: list[Any] = []

    def open_(scenario: Path) -> tuple[Any, list[str]]:
        out = tmp_path / (scenario.stem + ".html")
        to_html(scenario, out)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        pages.append(page)
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(out.as_uri())
        page.wait_for_selector("body[data-ready]")
        assert errors == []
        return page, requests

    yield open_
    for page in pages:
        page.close()


def maps_after(step: int) -> list[str]:
    """The model's maps lines after the ``step``-th call (0-based), from a run of the film."""
    film, _run = film_of_scenario(parse_file(str(EXAMPLE)))
    return [r.maps for r in film.alive_at(step)]


def test_the_page_shows_the_vmas_of_a_chosen_step(opened: Any, tmp_path: Path) -> None:
    page, requests = opened(EXAMPLE)
    assert page.title() == "examples/merge_and_split.vmas · vmamodel show" or \
        page.title().endswith("merge_and_split.vmas · vmamodel show")
    page.click('.step[data-step="3"]')  # mprotect(a + 4K, 4K, PROT_READ): a split in three
    assert page.inner_text("#step-detail .call") == "mprotect(a + 4K, 4K, PROT_READ)"
    rows = page.locator("#vmas tr.vma td.maps").all_inner_texts()
    assert [r.rstrip() for r in rows] == [m.rstrip() for m in maps_after(3)]
    assert [r.split()[1] for r in rows] == ["rw-p", "r--p", "rw-p"]
    detail = page.inner_text("#step-detail")
    assert "vm_flags (2)" not in detail and "kept apart by vm_flags \u00d72" in detail
    page.click('.step[data-step="5"]')  # restoring merges the three
    assert len(page.locator("#vmas tr.vma").all()) == 1
    assert "merged into #2" in page.inner_text("#step-detail")
    assert "removed (merged)" in page.inner_text("#step-detail")
    page.screenshot(path=str(tmp_path / "step5.png"))
    assert (tmp_path / "step5.png").stat().st_size > 10_000
    assert requests == [(tmp_path / "merge_and_split.html").as_uri()]


def test_clicking_a_vma_shows_its_details(opened: Any) -> None:
    page, _requests = opened(EXAMPLE)
    page.click('.step[data-step="3"]')
    page.click('#vmas tr.vma:nth-child(2)')
    assert page.inner_text("#vma-detail .field-maps").startswith(
        "100000001000-100000002000 r--p 00000000 00:00 0")
    assert page.inner_text("#vma-detail .field-VmFlags") == "rd mr mw me"
    assert page.inner_text("#vma-detail .field-anon_vma") == "none (not faulted)"
    assert page.inner_text("#vma-detail .field-vm_ops") == "none (anonymous)"
    assert "Split vma_id=" in page.inner_text("#vma-detail")


def test_clicking_the_picture_selects_the_step_and_the_vma(opened: Any) -> None:
    page, _requests = opened(EXAMPLE)
    box = page.locator("#band").bounding_box()
    # Row 3 holds three VMAs side by side; the middle of the axis is the read-only page.
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + 3 * ROW + ROW / 2)
    assert page.get_attribute(".step.selected", "data-step") == "3"
    assert " r--p " in page.inner_text("#vma-detail .field-maps")
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 2 * ROW + ROW / 2)
    assert page.is_visible("#tip") and "rw-p" in page.inner_text("#tip")


def settle(page: Any) -> None:
    """Wait until the frame the page asked for has been drawn."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => "
                  "requestAnimationFrame(() => r(0))))")


def test_zoom_and_keys(opened: Any) -> None:
    page, _requests = opened(EXAMPLE)
    settle(page)
    before = page.locator("#band").screenshot()
    page.click("#zoom-in")
    page.click("#zoom-in")
    settle(page)
    assert page.locator("#band").screenshot() != before
    page.click("#zoom-fit")
    # each key moves one step once the page has drawn the last one
    page.keyboard.press("ArrowDown")
    page.wait_for_selector('.step.selected[data-step="1"]', timeout=10_000)
    page.keyboard.press("ArrowDown")
    page.wait_for_selector('.step.selected[data-step="2"]', timeout=10_000)
    assert page.get_attribute(".step.selected", "data-step") == "2"


def test_a_file_name_cannot_break_out_of_the_page(opened: Any, tmp_path: Path) -> None:
    scenario = tmp_path / "evil.vmas"
    scenario.write_text(
        'fd = memfd_create("</script><img src=http://example.com/x.png>", 64K)\n'
        "mmap(BASE, 8K, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_FIXED, fd, 0) = BASE\n")
    page, requests = opened(scenario)
    page.click('.step[data-step="1"]')
    row = page.inner_text("#vmas tr.vma td.maps")
    assert "/memfd:</script><img src=http://example.com/x.png> (deleted)" in row
    assert page.locator("img").count() == 0
    assert requests == [(tmp_path / "evil.html").as_uri()]


def test_a_page_next_to_a_128_tib_gap_stays_visible(browser: Any, tmp_path: Path) -> None:
    mm = v.AddressSpace()
    low, high = 0x10000, mm.task_size - 2 * 4096
    mm.mmap(low, 4096, v.PROT_READ, v.MAP_PRIVATE | v.MAP_ANONYMOUS | v.MAP_FIXED)
    mm.mmap(high, 4096, v.PROT_READ | v.PROT_WRITE, v.MAP_PRIVATE | v.MAP_ANONYMOUS | v.MAP_FIXED)
    out = tmp_path / "far.html"
    to_html(mm, out)
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-ready]")
    drawn = page.evaluate("""() => {
        const c = document.getElementById('band'), ctx = c.getContext('2d');
        const row = ctx.getImageData(0, 11 * devicePixelRatio, c.width, 1).data;
        const runs = []; let inside = false;
        for (let i = 0; i < row.length; i += 4) {
            const ink = row[i] + row[i + 1] + row[i + 2] < 650;
            if (ink && !inside) runs.push(1); else if (ink) runs[runs.length - 1]++;
            inside = ink;
        }
        return runs.map(n => n / devicePixelRatio); }""")
    # Two pages, each a run of pixels well wider than a hairline, with the gap between them.
    assert len(drawn) == 2 and min(drawn) > 20, drawn
    assert "largest gap 128T" in page.inner_text("#step-detail")
    assert page.locator("#vmas tr.vma").count() == 2
    page.close()


def test_every_maps_line_comes_back_byte_for_byte(opened: Any) -> None:
    """The page stores a maps line in pieces (perms, offset, device and inode, name) and puts
    it back together: every line of every step equals the model's, padding included."""
    scenario = ROOT / "examples/memfd.vmas"
    film, _run = film_of_scenario(parse_file(str(scenario)))
    page, _requests = opened(scenario)
    for index in range(len(film.steps)):
        page.fill("#goto", str(index + 1))
        page.dispatch_event("#goto", "change")
        shown = page.evaluate(
            "() => [...document.querySelectorAll('#vmas tr.vma td.maps')].map(t => t.textContent)")
        assert shown == [r.maps for r in film.alive_at(index)], f"step {index}"


def test_the_vma_table_holds_only_the_rows_in_view(browser: Any, tmp_path: Path) -> None:
    mm = v.AddressSpace()
    for i in range(600):  # alternate protections: 600 VMAs that cannot merge
        prot = v.PROT_READ if i % 2 else v.PROT_READ | v.PROT_WRITE
        mm.mmap(0x100000000000 + i * 4096, 4096, prot,
                v.MAP_PRIVATE | v.MAP_ANONYMOUS | v.MAP_FIXED)
    out = tmp_path / "many.html"
    to_html(mm, out)
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-ready]")
    assert 10 < page.locator("#vmas tr.vma").count() < 100
    assert page.inner_text("#vmas tr.vma td.maps >> nth=0").startswith("100000000000-")
    page.eval_on_selector("#vmas-box", "box => box.scrollTop = box.scrollHeight")
    settle(page)
    last = page.locator("#vmas tr.vma td.maps").all_inner_texts()[-1]
    assert last.startswith(f"{0x100000000000 + 599 * 4096:x}-")
    assert "599 touching pairs" not in page.inner_text("#step-detail")
    assert "kept apart by vm_flags \u00d7599" in page.inner_text("#step-detail")
    page.close()
