"""What the page tables hold that the VMA layer can observe: guard markers (MADV_GUARD_INSTALL),
which pages were faulted in, and which of those hold a private anonymous page (written), as
opposed to the shared zero page a read fault maps. Page contents are not modelled."""

from __future__ import annotations

from vmamodel.constants import PAGE_SIZE


class PageTable:
    """Per-address-space page state, keyed by page address."""

    __slots__ = ("anon", "guards", "present")

    def __init__(self) -> None:
        self.guards: set[int] = set()
        self.present: set[int] = set()
        self.anon: set[int] = set()

    def zap(self, start: int, end: int, keep_guards: bool = False) -> None:
        """zap_page_range(): drop the pages of [start, end); munmap drops guard markers too."""
        self.present = _without(self.present, start, end)
        self.anon = _without(self.anon, start, end)
        if not keep_guards:
            self.guards = _without(self.guards, start, end)

    def is_guard(self, addr: int) -> bool:
        return bool(self.guards) and (addr & ~(PAGE_SIZE - 1)) in self.guards

    def move(self, old: int, new: int, length: int) -> None:
        """move_page_tables(): pages and markers follow an mremap move."""
        self.present = _moved(self.present, old, new, length)
        self.anon = _moved(self.anon, old, new, length)
        self.guards = _moved(self.guards, old, new, length)

    def copy(self) -> PageTable:
        table = PageTable()
        table.guards = set(self.guards)
        table.present = set(self.present)
        table.anon = set(self.anon)
        return table


def _without(pages: set[int], start: int, end: int) -> set[int]:
    if not pages:
        return pages
    if (end - start) // PAGE_SIZE < len(pages):
        return pages.difference(range(start, end, PAGE_SIZE))
    return {page for page in pages if not start <= page < end}


def _moved(pages: set[int], old: int, new: int, length: int) -> set[int]:
    if not pages:
        return pages
    inside = {page for page in pages if old <= page < old + length}
    return (pages - inside) | {page - old + new for page in inside}
