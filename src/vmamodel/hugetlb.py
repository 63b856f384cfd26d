"""hugetlb mappings (mm/hugetlb.c, fs/hugetlbfs/inode.c, ipc/shm.c's hugetlb path): the
huge page size of a VMA and the split rule that keeps hugetlb VMAs on huge-page bounds."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from vmamodel.constants import PAGE_SIZE, PMD_SIZE, VM_HUGETLB
from vmamodel.file import VmOperations
from vmamodel.hooks import oserror

if TYPE_CHECKING:
    from vmamodel.vma import Vma

#: The huge page sizes x86-64 offers (2 MiB, 1 GiB); the default is 2 MiB.
HPAGE_SIZES = (PMD_SIZE, 1 << 30)
DEFAULT_HPAGE_SIZE = PMD_SIZE


def vma_hpagesize(vma: Vma) -> int:
    """vma_kernel_pagesize(): the huge page size of a hugetlb VMA's file, else PAGE_SIZE."""
    if not vma.vm_flags & VM_HUGETLB or vma.vm_file is None:
        return PAGE_SIZE
    size: int = vma.vm_file.extra.get("hpage_size", DEFAULT_HPAGE_SIZE)
    return size


class HugetlbVmOperations(VmOperations):
    """hugetlb_vm_ops: ``may_split`` refuses an address off a huge page boundary
    (hugetlb_vm_op_split: EINVAL); ``pagesize`` is the file's huge page size."""

    def may_split(self, vma: Vma, addr: int) -> None:
        if addr & (vma_hpagesize(vma) - 1):
            raise oserror(errno.EINVAL, "hugetlb: split off a huge page boundary")


HUGETLB_VM_OPS = HugetlbVmOperations()
