"""Anonymous VMA names: prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, start, len, name).

Only a kernel built with CONFIG_ANON_VMA_NAME has them (``AddressSpace(anon_vma_name=...)``);
without it the prctl fails with EINVAL whatever its arguments (the stub prctl_set_vma).

With it (kernel/sys.c prctl_set_vma, mm/madvise.c madvise_set_anon_name):

- the name is checked before anything else: at most 79 bytes (80 with the NUL), only
  printable ASCII without ``[ ] \\ $ `````; EINVAL otherwise. ``None`` (a NULL pointer)
  clears the name;
- the range is checked like madvise's (EINVAL: unaligned start, a length that rounds up to
  zero, a wrapping range); an empty range succeeds at once;
- each VMA part of the range gets the name, splitting and merging like a flag change; VMAs
  with different names never merge, VMAs with equal names do. A file VMA other than shared
  anonymous memory stops the walk with EBADF (the parts before it keep their name); holes are
  skipped and reported as ENOMEM after the whole range was handled; running out of memory in
  a split (max_map_count) is EAGAIN.

The name is a ``str`` held by the VMA (``Vma.anon_name``): split, fork (vm_area_dup) and
mremap (copy_vma) copy it. maps shows ``[anon:NAME]`` for anonymous memory (after ``[heap]``
and ``[stack]``, which win) and ``[anon_shmem:NAME]`` for shared anonymous memory.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from vmamodel.constants import ULONG_MAX, page_align
from vmamodel.events import VmaChanged
from vmamodel.hooks import oserror
from vmamodel.madvise import check_input_range, madvise_walk_vmas
from vmamodel.merge import VmaMergeStruct, vma_modify

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace
    from vmamodel.vma import Vma

#: ANON_VMA_NAME_MAX_LEN (include/linux/mm.h): the name's bytes plus its NUL.
ANON_VMA_NAME_MAX_LEN = 80
#: Printable characters that is_valid_name_char() refuses anyway: they would make the maps
#: line ambiguous or be taken for shell syntax.
FORBIDDEN_NAME_CHARS = frozenset(b"\\`$[]")


def is_valid_name_char(byte: int) -> bool:
    """is_valid_name_char() (kernel/sys.c): printable ASCII but for the forbidden ones."""
    return 0x20 <= byte < 0x7F and byte not in FORBIDDEN_NAME_CHARS


def anon_vma_name_from_user(name: str) -> str:
    """strndup_user() and the character check of prctl_set_vma(): the C string the kernel
    reads (up to the first NUL), EINVAL when too long or holding a forbidden byte."""
    raw = name.encode("utf-8", "surrogateescape").split(b"\0", 1)[0]
    if len(raw) + 1 > ANON_VMA_NAME_MAX_LEN:
        raise oserror(errno.EINVAL, f"PR_SET_VMA_ANON_NAME: name of {len(raw)} bytes")
    if not all(is_valid_name_char(byte) for byte in raw):
        raise oserror(errno.EINVAL, f"PR_SET_VMA_ANON_NAME: bad character in {name!r}")
    return raw.decode("ascii")


def vma_is_anon_shmem(vma: Vma) -> bool:
    """vma_is_anon_shmem(): shared anonymous memory (the /dev/zero shmem file of
    shmem_zero_setup), the only file VMA that can be named."""
    return vma.vm_file is not None and vma.vm_file.kind == "shmem_zero"


def vma_modify_name(
    mm: AddressSpace, prev: Vma | None, vma: Vma, start: int, end: int, name: str | None
) -> Vma:
    """vma_modify_name() (mm/vma.c): merge [start, end) with a neighbour of that name, or
    split ``vma`` so that one VMA covers exactly the range. Returns that VMA."""
    vmg = VmaMergeStruct.from_vma(mm, prev, vma, start, end)
    vmg.anon_name = name
    return vma_modify(vmg)


def madvise_update_vma_name(
    mm: AddressSpace, prev: Vma | None, vma: Vma, start: int, end: int, name: str | None
) -> Vma:
    """madvise_update_vma() for a new name: nothing when the name is already the same, else
    merge or split, then replace the name (replace_anon_vma_name). ENOMEM becomes EAGAIN
    (madvise_vma_behavior)."""
    if vma.anon_name == name:
        return vma
    try:
        vma = vma_modify_name(mm, prev, vma, start, end, name)
    except OSError as exc:
        if exc.errno == errno.ENOMEM:
            raise oserror(errno.EAGAIN, f"PR_SET_VMA_ANON_NAME: {exc.strerror}") from exc
        raise
    vma.anon_name = name
    if mm.tracer.active:
        mm.tracer.emit(
            VmaChanged(vma.id, vma.vm_start, vma.vm_end, vma.vm_pgoff, vma.vm_flags, "anon_name")
        )
    return vma


def madvise_vma_anon_name(
    mm: AddressSpace, prev: Vma | None, vma: Vma, start: int, end: int, name: str | None
) -> Vma:
    """The anon-name case of madvise_vma_behavior(): only anonymous memory (private, or
    shared anonymous) can be named; any other file VMA is EBADF."""
    if vma.vm_file is not None and not vma_is_anon_shmem(vma):
        raise oserror(errno.EBADF, "PR_SET_VMA_ANON_NAME: a file mapping cannot be named")
    return madvise_update_vma_name(mm, prev, vma, start, end, name)


def madvise_set_anon_name(mm: AddressSpace, start: int, len_in: int, name: str | None) -> None:
    """madvise_set_anon_name() (mm/madvise.c): madvise's range checks, then the VMA walk
    (madvise_walk_vmas): holes are ENOMEM at the end, a per-VMA error ends the walk."""
    check_input_range(start, len_in)
    last_end = start + page_align(len_in)
    if last_end == start:
        return
    madvise_walk_vmas(
        mm, start, last_end,
        lambda prev, vma, lo, hi: madvise_vma_anon_name(mm, prev, vma, lo, hi, name),
    )


def prctl_set_vma_anon_name(
    mm: AddressSpace, start: int, len_in: int, name: str | None
) -> None:
    """prctl_set_vma(PR_SET_VMA_ANON_NAME): EINVAL without CONFIG_ANON_VMA_NAME; the name is
    checked before the range."""
    if not mm.anon_vma_name_enabled:
        raise oserror(errno.EINVAL, "PR_SET_VMA: CONFIG_ANON_VMA_NAME is off")
    anon_name = None if name is None else anon_vma_name_from_user(name)
    madvise_set_anon_name(mm, start & ULONG_MAX, len_in & ULONG_MAX, anon_name)
