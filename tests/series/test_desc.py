"""struct vm_area_desc: what mmap_prepare may change and what the kernel does with it
(call_mmap_prepare() and set_vma_user_defined_fields() in mm/vma.c; the compat path's
compat_set_vma_from_desc() in mm/vma.h)."""

from __future__ import annotations

import errno

import pytest

from vmamodel.constants import MAP_PRIVATE, PGPROT_CACHE_MASK, PGPROT_WC, VM
from vmamodel.events import MergeRefused, WarnOn
from vmamodel.file import VMA_DUMMY_VM_OPS, File, FileOperations, VmOperations
from vmamodel.vma import pgprot_writecombine

from .util import RW, P, at, collect, layout, mmap_at, vma_at


class Hook(FileOperations):
    """mmap_prepare running ``edit(desc)``."""

    def __init__(self, edit) -> None:
        self.edit = edit

    def mmap_prepare(self, desc):
        self.edit(desc)


def hooked(edit, path: str = "/dev/desc") -> File:
    return File(path, size=1 << 30, f_op=Hook(edit))


class Ops(VmOperations):
    def close(self, vma):
        return None


def test_mm_and_file_are_read_only(new_mm):
    def edit(desc):
        with pytest.raises(AttributeError):
            desc.mm = None
        with pytest.raises(AttributeError):
            desc.file = None
        with pytest.raises(AttributeError):
            desc.no_such_field = 1  # struct vm_area_desc has no such member

    mmap_at(new_mm, 0, 1, hooked(edit))


def test_start_and_end_are_ignored_with_a_warning(new_mm):
    def edit(desc):
        desc.start += P
        desc.end += 4 * P

    with collect(new_mm) as events:
        mmap_at(new_mm, 0, 2, hooked(edit))
    assert layout(new_mm) == [(0, 2)]
    assert any(isinstance(e, WarnOn) and "start/end" in e.message for e in events)


def test_pgoff_is_copied_back_and_decides_merging(new_mm):
    file = hooked(lambda desc: setattr(desc, "pgoff", desc.pgoff + 100))
    mmap_at(new_mm, 0, 2, file, pgoff=0)
    mmap_at(new_mm, 2, 2, file, pgoff=2)  # both moved by 100: still contiguous
    assert layout(new_mm) == [(0, 4)]
    assert vma_at(new_mm, 0).vm_pgoff == 100


def test_pgoff_change_can_prevent_a_merge(new_mm):
    shift = iter([0, 7])
    file = hooked(lambda desc: setattr(desc, "pgoff", desc.pgoff + next(shift)))
    mmap_at(new_mm, 0, 2, file)
    with collect(new_mm) as events:
        mmap_at(new_mm, 2, 2, file)
    assert layout(new_mm) == [(0, 2), (2, 4)]
    assert ("prev", "vm_pgoff not contiguous") in [
        (e.side, e.rule) for e in events if isinstance(e, MergeRefused)
    ]


def test_flags_set_by_the_hook_decide_merging(new_mm):
    flags = iter([0, VM.DONTDUMP])
    file = hooked(lambda desc: setattr(desc, "vm_flags", desc.vm_flags | next(flags)))
    mmap_at(new_mm, 0, 2, file)
    with collect(new_mm) as events:
        mmap_at(new_mm, 2, 2, file)
    assert layout(new_mm) == [(0, 2), (2, 4)]
    assert ("prev", "vm_flags") in [(e.side, e.rule) for e in events
                                    if isinstance(e, MergeRefused)]


def test_flags_cleared_by_the_hook_are_cleared(new_mm):
    mmap_at(new_mm, 0, 1, hooked(lambda d: setattr(d, "vm_flags", d.vm_flags & ~VM.MAYWRITE)),
            prot=0)
    assert not vma_at(new_mm, 0).vm_flags & VM.MAYWRITE


def test_accounting_is_not_redone_after_the_hook(new_mm):
    # VM_ACCOUNT was decided (and charged) in __mmap_setup, before the hook ran.
    def edit(desc):
        assert desc.vm_flags & VM.ACCOUNT
        desc.vm_flags &= ~VM.WRITE

    before = new_mm.committed_pages
    new_mm.mmap(at(0), 2 * P, RW, MAP_PRIVATE, hooked(edit), 0)
    assert vma_at(new_mm, 0).vm_flags & VM.ACCOUNT
    assert new_mm.committed_pages == before + 2


def test_page_prot_is_copied_back(new_mm):
    mmap_at(new_mm, 0, 1, hooked(lambda d: setattr(d, "page_prot",
                                                   pgprot_writecombine(d.page_prot))))
    assert vma_at(new_mm, 0).vm_page_prot & PGPROT_CACHE_MASK == PGPROT_WC


def test_vm_ops_are_written_only_when_set(new_mm):
    ops = Ops()
    first = iter([True, False])

    def edit(desc):
        if next(first):
            desc.vm_ops = ops

    file = hooked(edit)
    mmap_at(new_mm, 0, 2, file)
    mmap_at(new_mm, 2, 2, file)  # merges into the first: its ops stay
    assert layout(new_mm) == [(0, 4)] and vma_at(new_mm, 0).vm_ops is ops
    mmap_at(new_mm, 8, 1, hooked(lambda desc: None, "/dev/other"))
    assert vma_at(new_mm, 8).vm_ops is VMA_DUMMY_VM_OPS


def test_vm_file_swap_takes_effect(new_mm):
    other = File("/dev/swapped")
    mmap_at(new_mm, 0, 1, hooked(lambda d: setattr(d, "vm_file", other)))
    assert vma_at(new_mm, 0).vm_file is other
    assert new_mm.maps().rstrip().endswith("/dev/swapped")


def test_what_the_hook_sees(new_mm):
    seen = {}

    def edit(desc):
        seen.update(start=desc.start, end=desc.end, pgoff=desc.pgoff, size=desc.size,
                    pages=desc.pages, vm_ops=desc.vm_ops, private=desc.private_data,
                    action=desc.action.type.name, mm=desc.mm)

    mmap_at(new_mm, 3, 2, hooked(edit), pgoff=9)
    assert seen == dict(start=at(3), end=at(5), pgoff=9, size=2 * P, pages=2, vm_ops=None,
                        private=None, action="NOTHING", mm=new_mm)


def test_a_failing_hook_leaves_nothing(new_mm):
    def edit(desc):
        raise OSError(errno.ENXIO, "no device")

    before = new_mm.maps()
    with pytest.raises(OSError) as info:
        mmap_at(new_mm, 0, 1, hooked(edit))
    assert info.value.errno == errno.ENXIO
    assert new_mm.maps() == before
