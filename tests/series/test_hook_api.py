"""The hook API a driver author writes against (vmamodel.file): its documented example runs,
and every hook is optional."""

from __future__ import annotations

import doctest

import vmamodel.file
from vmamodel.file import VMA_DUMMY_VM_OPS, File, FileOperations, Ref, VmOperations

from .util import RO, P, at, mmap_at, vma_at

HOOKS = ("open", "close", "mapped", "may_split", "mremap", "mprotect", "name",
         "page_mkwrite", "pfn_mkwrite")


def test_the_module_example_runs():
    result = doctest.testmod(vmamodel.file)
    assert result.attempted >= 8 and result.failed == 0


def test_every_hook_is_optional():
    ops = VmOperations()
    assert all(getattr(ops, hook) is None for hook in HOOKS)
    fops = FileOperations()
    assert fops.mmap is None and fops.mmap_prepare is None


def test_ops_without_any_hook_survive_map_split_and_unmap(new_mm):
    class Bare(FileOperations):
        def mmap_prepare(self, desc):
            desc.vm_ops = VmOperations()

    mmap_at(new_mm, 0, 4, File("/dev/bare", f_op=Bare()))
    new_mm.mprotect(at(1), P, RO)
    new_mm.munmap(at(0), 4 * P)
    assert new_mm.vmas() == []


def test_ref_is_the_out_parameter():
    ref: Ref[object] = Ref(None)
    ref.value = "new"
    assert repr(ref) == "Ref('new')"


def test_close_runs_once_then_the_dummy_ops(new_mm):
    closed = []

    class Once(VmOperations):
        def close(self, vma):
            closed.append(vma.id)

    class Fops(FileOperations):
        def mmap_prepare(self, desc):
            desc.vm_ops = Once()

    mmap_at(new_mm, 0, 1, File("/dev/once", f_op=Fops()))
    vma = vma_at(new_mm, 0)
    new_mm.munmap(at(0), P)
    assert closed == [vma.id] and vma.vm_ops is VMA_DUMMY_VM_OPS
