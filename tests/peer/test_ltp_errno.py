"""The LTP errno table (C1-C66) and the LTP functional tests that bear on VMA layout
(F1-F26), on the model and on the host kernel; docs/kernel-tests.md sections 2 and 3 name
each row's LTP source file.

Each test is named after its row. Where LTP passes NULL and lets the kernel choose, the tests
pass an arena address as a hint (or MAP_FIXED where the row's point is not placement): the
host oracle keeps every mapping inside its arena. Rows that are not here or differ from
LTP, and why:

- C25 (mremap04) uses SysV shm, which the model does not have: a shared anonymous mapping
  (also shmem) stands in, in test_c25_mremap04_shm_grow_in_place_is_enomem.
- C44, C45, C47, C48, C52, C53 need an unprivileged process (RLIMIT_MEMLOCK without
  CAP_IPC_LOCK); the oracle's child runs as root and keeps CAP_IPC_LOCK, so they run on the
  model only, configured with ``cap_ipc_lock=False``.
- C56 (mseal01/2) is TCONF in LTP without PKU; there pkey_alloc fails (EINVAL first) and
  the test uses key -1, the one key such a CPU accepts.
- C38 (madvise02/9) expects EBADF, which kernels no longer return (LTP always skips it):
  test_c38_madvise02_willneed_on_anonymous_memory_succeeds pins what they do instead.
- C34, C35 expect EINVAL only without CONFIG_KSM; the host has KSM: they succeed.
- F7, F8, F9 check Rss, Locked and VmLck, which count pages: their VMA side is tested.
- F5 (the [stack] VMA),
  F20 (userfaultfd), F25 (msync), F26 (memcg) need what the arena oracle cannot show or the
  model does not have.
- F1 (mprotect05) is tests/core/test_merge.py::test_ltp_mprotect05_shared_file_pieces_remerge.
"""

from __future__ import annotations

import errno

import pytest

import vmamodel as v
from core.util import (
    ANON,
    FIXED,
    NOREPLACE,
    RO,
    RW,
    SHANON,
    P,
    at,
    flags_of,
    layout,
    offsets,
)
from vmamodel.host import host_has_pkeys

from .util import errno_of, state

ULONG_MAX = (1 << 64) - 1
GiB = 1 << 30
MiB = 1 << 20


# ---- mmap06, mmap07, mmap08, mmap15, mmap17, mmap20, mmap23, mmap24 (C1-C15) -------------


@pytest.mark.parametrize(
    ("row", "prot", "kind"),
    [
        ("C1", v.PROT_WRITE, v.MAP_PRIVATE),
        ("C2", v.PROT_WRITE, v.MAP_SHARED),
        ("C3", v.PROT_READ, v.MAP_PRIVATE),
        ("C4", v.PROT_READ, v.MAP_SHARED),
        ("C5", RW, v.MAP_PRIVATE),
        ("C6", RW, v.MAP_SHARED),
    ],
)
def test_c1_c6_mmap06_write_only_fd_is_eacces(mm, regular_file, row, prot, kind):
    """Every mapping needs a readable file (do_mmap: FMODE_READ), shared or not."""
    f = regular_file(v.O_WRONLY, 4 * P)
    assert errno_of(mm.mmap, at(0), 1024, prot, kind, f) == errno.EACCES
    assert mm.maps() == ""


def test_c7_mmap06_zero_length_is_einval_before_the_access_check(mm, regular_file):
    f = regular_file(v.O_WRONLY, 4 * P)
    assert errno_of(mm.mmap, at(0), 0, RW, v.MAP_SHARED, f) == errno.EINVAL


def test_c8_mmap06_neither_shared_nor_private_is_einval(mm, regular_file):
    f = regular_file(v.O_WRONLY, 4 * P)
    assert errno_of(mm.mmap, at(0), 1024, RW, v.MAP_FILE, f) == errno.EINVAL


def test_c9_mmap07_write_only_fd_private_page_is_eacces(mm, regular_file):
    f = regular_file(v.O_WRONLY, 4 * P)
    assert errno_of(mm.mmap, at(0), P, v.PROT_WRITE, v.MAP_PRIVATE, f) == errno.EACCES


def test_c10_mmap08_bad_fd_is_ebadf_before_the_length_check(mm):
    """A closed descriptor: no file and no MAP_ANONYMOUS (the oracle passes fd -1)."""
    assert errno_of(mm.mmap, at(0), 0, v.PROT_WRITE, v.MAP_SHARED, None) == errno.EBADF


def test_c11_mmap15_fixed_at_the_top_page_is_enomem(mm, regular_file):
    f = regular_file(v.O_RDWR, 4 * P)
    top = ULONG_MAX + 1 - P
    assert errno_of(mm.mmap, top, P, RW, v.MAP_SHARED | v.MAP_FIXED, f) == errno.ENOMEM


def test_c12_mmap17_noreplace_over_a_file_mapping_is_eexist(mm, regular_file):
    f = regular_file(v.O_RDWR, 4 * P)
    mm.mmap(at(0), 2 * P, RW, v.MAP_PRIVATE | v.MAP_FIXED_NOREPLACE, f)
    before = state(mm)
    flags = v.MAP_PRIVATE | v.MAP_FIXED_NOREPLACE
    assert errno_of(mm.mmap, at(0), 2 * P, RW, flags, f) == errno.EEXIST
    assert state(mm) == before


def test_c13_mmap20_shared_validate_with_map_above4g_succeeds_on_x86_64(mm, regular_file):
    """LTP expects EOPNOTSUPP for bit 0x80, but on x86-64 that bit is MAP_ABOVE4G, which is
    in LEGACY_MAP_MASK: the mapping succeeds (the host kernel agrees). The
    unknown bit 0x200 still gets EOPNOTSUPP."""
    f = regular_file(v.O_RDWR, 4 * P)
    validate = v.MAP_SHARED_VALIDATE
    assert mm.mmap(at(0), P, RW, validate | v.MAP_ABOVE4G, f) == at(0)
    assert errno_of(mm.mmap, at(4), P, RW, validate | 0x200, f) == errno.EOPNOTSUPP
    assert layout(mm) == [(0, 1, "rw-s")]


def test_c13_shared_validate_refuses_map_fixed_noreplace(mm, regular_file):
    """Measured next to C13: MAP_FIXED_NOREPLACE is not in LEGACY_MAP_MASK, so
    MAP_SHARED_VALIDATE refuses it with EOPNOTSUPP even where the range is free."""
    f = regular_file(v.O_RDWR, 4 * P)
    flags = v.MAP_SHARED_VALIDATE | v.MAP_FIXED_NOREPLACE
    assert errno_of(mm.mmap, at(0), P, RW, flags, f) == errno.EOPNOTSUPP
    assert mm.maps() == ""


def test_c14_mmap23_two_gib_below_two_gib_is_enomem(mm):
    """MAP_32BIT places in [1 GiB, 2 GiB): 2 GiB cannot fit."""
    assert errno_of(mm.mmap, 0, 2 * GiB, RW, ANON | v.MAP_32BIT) == errno.ENOMEM
    assert mm.maps() == ""


#: mmap24 in a throwaway process with randomisation off (setarch -R): MAP_32BIT reservations
#: of 32 MiB until mmap fails; prints the addresses, then the errno.
_MMAP24 = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.syscall.argtypes = (ctypes.c_long,) + (ctypes.c_ulong,) * 6
while (addr := libc.syscall(9, 0, 32 << 20, 0, 0x62, (1 << 64) - 1, 0)) != -1:
    print(addr)
print(-ctypes.get_errno())
"""


def _mmap24_on_the_host() -> list[int]:
    import subprocess
    import sys

    argv = ["setarch", "-R", sys.executable, "-I", "-S", "-c", _MMAP24]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return [int(word) for word in out.split()]


def _mmap24_on_the_model() -> list[int]:
    mm = v.AddressSpace(debug=True)
    placed = []
    while True:
        try:
            placed.append(mm.mmap(0, 32 * MiB, v.PROT_NONE, ANON | v.MAP_32BIT))
        except OSError as exc:
            placed.append(-(exc.errno or 0))
            break
    assert mm.mmap(0, P, RW, ANON) > 4 * GiB  # an unrestricted mapping still works
    return placed


@pytest.mark.host
def test_c15_mmap24_map_32bit_exhausts_below_two_gib():
    """MAP_32BIT reservations of 32 MiB until ENOMEM, every one ending at or below 2 GiB.

    Run in a throwaway process, not the oracle: MAP_32BIT places below 2 GiB, outside the
    oracle's arena. Anonymous 32 MiB mappings are THP-aligned (2 MiB padding), so the 1 GiB
    window holds 30 of them, not 32; the model must place them where the kernel does.
    """
    host = _mmap24_on_the_host()
    assert host[-1] == -errno.ENOMEM
    assert all(addr + 32 * MiB <= 2 * GiB for addr in host[:-1])
    assert _mmap24_on_the_model() == host


# ---- munmap03, munmap04 (C16-C19) ---------------------------------------------------------


def test_c16_munmap03_all_ones_address_is_einval(mm):
    assert errno_of(mm.munmap, ULONG_MAX, 2 * P) == errno.EINVAL


def test_c17_munmap03_zero_length_is_einval(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    assert errno_of(mm.munmap, at(0), 0) == errno.EINVAL
    assert layout(mm) == [(0, 2, "rw-p")]


def test_c18_munmap03_unaligned_address_is_einval(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    assert errno_of(mm.munmap, at(0) + 1, P) == errno.EINVAL
    assert layout(mm) == [(0, 2, "rw-p")]


#: munmap04 in a throwaway process: 3-page PROT_NONE VMAs at a 6-page stride from BASE
#: until mmap fails, then munmap of the middle page of VMA 100, then unmapping from VMA 102 on
#: (whole VMAs: no split needed) and the maps lines of VMAs 0-101. Prints the errnos and
#: those lines, relative to BASE in pages.
_MUNMAP04 = """
import ctypes, sys
BASE, P = int(sys.argv[1]), 4096
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.syscall.argtypes = (ctypes.c_long,) + (ctypes.c_ulong,) * 6
def call(*args):
    return -ctypes.get_errno() if libc.syscall(*args, *[0] * (7 - len(args))) == -1 else 0
count = 0
while (err := call(9, BASE + 6 * P * count, 3 * P, 0, 0x100022, (1 << 64) - 1, 0)) == 0:
    count += 1
print(err, call(11, BASE + 601 * P, P), call(11, BASE + 612 * P, 6 * count * P))
for line in open("/proc/self/maps"):
    lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
    if BASE <= lo < BASE + 612 * P:
        print((lo - BASE) // P, (hi - BASE) // P, line.split()[1], count > 60000)
"""


def _munmap04(mm) -> list[str]:
    """The same steps on an AddressSpace, printed the same way."""
    flags = NOREPLACE
    count = 0
    while True:
        try:
            mm.mmap(at(6 * count), 3 * P, v.PROT_NONE, flags)
        except OSError as exc:
            first = -(exc.errno or 0)
            break
        count += 1
    results = [first]
    for addr, length in ((at(601), P), (at(612), 6 * count * P)):
        try:
            mm.munmap(addr, length)
            results.append(0)
        except OSError as exc:
            results.append(-(exc.errno or 0))
    lines = [" ".join(map(str, results))]
    lines += [f"{lo} {hi} {perms} {count > 60000}" for lo, hi, perms in layout(mm)]
    return lines


@pytest.mark.host
def test_c19_munmap04_split_past_max_map_count_is_enomem():
    """At max_map_count, unmapping the middle of a VMA (one more VMA) is ENOMEM; unmapping
    whole VMAs still works. The host side runs in a throwaway process: the oracle's child
    allocates memory with mmap, so it cannot keep working at the limit. The number of VMAs
    each side maps differs (the host process's own mappings count toward the limit)."""
    import subprocess
    import sys

    argv = [sys.executable, "-I", "-S", "-c", _MUNMAP04, str(at(0))]
    host = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.splitlines()
    assert host[0] == f"{-errno.ENOMEM} {-errno.ENOMEM} 0"
    model = v.AddressSpace(**v.host.host_model_kwargs())
    assert _munmap04(model) == host


# ---- mprotect01 (C20-C22) -----------------------------------------------------------------


def test_c20_mprotect01_unmapped_range_is_enomem(mm):
    """LTP uses address NULL; the oracle refuses addresses outside its arena, so an unmapped
    arena page stands in (nothing is mapped at either)."""
    assert errno_of(mm.mprotect, at(0), P + 1, RO) == errno.ENOMEM


def test_c20_mprotect01_null_is_enomem_on_the_model():
    mm = v.AddressSpace()
    assert errno_of(mm.mprotect, 0, P + 1, RO) == errno.ENOMEM


def test_c21_mprotect01_unaligned_address_is_einval(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    assert errno_of(mm.mprotect, at(0) + 1, 1024, RO) == errno.EINVAL


def test_c22_mprotect01_write_on_read_only_dev_zero_is_eacces(mm):
    from vmamodel.host import real_file

    zero = real_file("/dev/zero", v.O_RDONLY)
    mm.mmap(at(0), P, RO, v.MAP_SHARED | v.MAP_FIXED_NOREPLACE, zero)
    before = state(mm)
    assert errno_of(mm.mprotect, at(0), P, v.PROT_WRITE) == errno.EACCES
    assert state(mm) == before


# ---- mremap02, mremap03, mremap04, mremap05, mremap09 (C23-C29) --------------------------

MAYMOVE = v.MREMAP_MAYMOVE
FIXED_MOVE = v.MREMAP_MAYMOVE | v.MREMAP_FIXED


def test_c23_mremap02_unaligned_old_address_is_einval(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    assert errno_of(mm.mremap, at(0) + 0xFFF, P, 2 * P, MAYMOVE) == errno.EINVAL
    assert layout(mm) == [(0, 1, "rw-p")]


def test_c24_mremap03_old_range_past_the_vma_is_efault(mm):
    mm.mmap(at(0), P, v.PROT_NONE, NOREPLACE)
    assert errno_of(mm.mremap, at(0), 1000 * P, 2000 * P, MAYMOVE) == errno.EFAULT
    assert layout(mm) == [(0, 1, "---p")]


def test_c25_mremap04_shm_grow_in_place_is_enomem(mm):
    """SysV shm is not modelled: a 2-page shared anonymous mapping (shmem as well) stands
    in. Growing its first page in place needs the range to end at the VMA's end."""
    mm.mmap(at(0), 2 * P, RW, SHANON)
    before = state(mm)
    assert errno_of(mm.mremap, at(0), P, 2 * P, 0) == errno.ENOMEM
    assert state(mm) == before


def test_c26_mremap05_fixed_without_maymove_is_einval(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    assert errno_of(mm.mremap, at(0), P, P, v.MREMAP_FIXED, at(8)) == errno.EINVAL


def test_c27_mremap05_unaligned_new_address_is_einval(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    assert errno_of(mm.mremap, at(0), P, P, FIXED_MOVE, at(8) + 1) == errno.EINVAL


def test_c28_mremap05_overlapping_target_is_einval(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    assert errno_of(mm.mremap, at(0), 2 * P, P, FIXED_MOVE, at(0)) == errno.EINVAL
    assert layout(mm) == [(0, 2, "rw-p")]


def test_c29_mremap09_grow_over_hole_is_enomem(mm):
    mm.mmap(at(0), 3 * P, RW, NOREPLACE)
    mm.munmap(at(1), P)
    before = state(mm)
    assert errno_of(mm.mremap, at(0), P, 3 * P, 0) == errno.ENOMEM
    assert state(mm) == before


# ---- madvise02 (C30-C42) ------------------------------------------------------------------


@pytest.fixture
def file1(mm, regular_file):
    """madvise02's file1: a 16-page shared read-only file mapping, mlocked."""
    f = regular_file(v.O_RDWR, 16 * P)
    mm.mmap(at(0), 16 * P, RO, v.MAP_SHARED | v.MAP_FIXED_NOREPLACE, f)
    mm.mlock(at(0), 16 * P)
    return mm


@pytest.mark.parametrize(
    ("row", "offset", "advice"),
    [
        ("C30", 100, v.MADV_NORMAL),
        ("C31", 0, 1212),
        ("C32", 0, v.MADV_REMOVE),
        ("C33", 0, v.MADV_DONTNEED),
        ("C39", 0, v.MADV_FREE),
        ("C40", 0, v.MADV_WIPEONFORK),
    ],
)
def test_c30_c40_madvise02_file1_is_einval(file1, row, offset, advice):
    """An unaligned start and an unknown advice fail before any VMA is looked at; REMOVE
    and DONTNEED refuse a VM_LOCKED VMA; FREE and WIPEONFORK refuse file memory."""
    before = state(file1)
    assert errno_of(file1.madvise, at(0) + offset, 16 * P, advice) == errno.EINVAL
    assert state(file1) == before


@pytest.mark.parametrize(("row", "advice"),
                         [("C34", v.MADV_MERGEABLE), ("C35", v.MADV_UNMERGEABLE)])
def test_c34_c35_madvise02_ksm_advice_succeeds_with_ksm_built_in(file1, row, advice):
    """LTP expects EINVAL only without CONFIG_KSM (and skips the rows otherwise); the host
    has KSM, and a shared file VMA is not KSM-compatible, so nothing changes."""
    before = state(file1)
    file1.madvise(at(0), 16 * P, advice)
    assert state(file1) == before


@pytest.mark.parametrize(("row", "advice"), [("C36", v.MADV_NORMAL), ("C37", v.MADV_WILLNEED)])
def test_c36_c37_madvise02_range_past_the_mapping_is_enomem(file1, row, advice):
    """file2: the same mapping with its last page unmapped; the advice still applies to
    the mapped part (nothing visible for these two) and the hole gives ENOMEM."""
    file1.munmap(at(15), P)
    before = state(file1)
    assert errno_of(file1.madvise, at(0), 16 * P, advice) == errno.ENOMEM
    assert state(file1) == before


def test_c38_madvise02_willneed_on_anonymous_memory_succeeds(mm):
    """LTP always skips this row (EBADF for anonymous WILLNEED is long gone): it succeeds."""
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.madvise(at(0), 4 * P, v.MADV_WILLNEED)
    assert layout(mm) == [(0, 4, "rw-p")]


def test_c41_madvise02_wipeonfork_on_shared_anonymous_is_einval(mm):
    """The first VMA refuses before the walk reaches the hole behind it."""
    mm.mmap(at(0), P, RW, SHANON)
    assert errno_of(mm.madvise, at(0), 16 * P, v.MADV_WIPEONFORK) == errno.EINVAL


def test_c42_madvise02_wipeonfork_on_a_private_file_mapping_is_einval(mm, regular_file):
    f = regular_file(v.O_RDWR, 4 * P)
    mm.mmap(at(0), 4 * P, RO, v.MAP_PRIVATE | v.MAP_FIXED_NOREPLACE, f)
    assert errno_of(mm.madvise, at(0), 4 * P, v.MADV_WIPEONFORK) == errno.EINVAL


# ---- mlock02, mlock202, munlock02, munlock03, mlockall02 (C43-C54) -------------------------


def unprivileged(**limits: int) -> v.AddressSpace:
    """An address space of a process without CAP_IPC_LOCK (model only: the oracle's child
    runs as root and keeps the capability)."""
    return v.AddressSpace(cap_ipc_lock=False, debug=True, **limits)


def test_c43_mlock02_unmapped_page_is_enomem(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    mm.munmap(at(0), P)
    assert errno_of(mm.mlock, at(0), P) == errno.ENOMEM


@pytest.mark.parametrize(
    ("row", "limit", "call", "expected"),
    [
        ("C44", P - 1, "mlock", errno.ENOMEM),
        ("C45", 0, "mlock", errno.EPERM),
        ("C47", P - 1, "mlock2", errno.ENOMEM),
        ("C48", 0, "mlock2", errno.EPERM),
    ],
)
def test_c44_c48_mlock_over_rlimit_memlock_without_cap_ipc_lock(row, limit, call, expected):
    """Model only (see unprivileged): a limit below one page is ENOMEM, a limit of 0 is
    EPERM (can_do_mlock)."""
    mm = unprivileged(rlimit_memlock=limit)
    mm.mmap(at(0), P, RW, NOREPLACE)
    before = state(mm)
    assert errno_of(getattr(mm, call), at(0), P) == expected
    assert state(mm) == before


def test_c46_mlock202_unknown_flags_are_einval(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    assert errno_of(mm.mlock2, at(0), P, (1 << 64) - 1) == errno.EINVAL


def test_c49_mlock202_page_in_a_freed_area_is_enomem(mm):
    mm.mmap(at(0), 8 * P, RW, NOREPLACE)
    mm.munmap(at(0), 8 * P)
    assert errno_of(mm.mlock2, at(4), P, 0) == errno.ENOMEM


def test_c50_munlock02_range_starting_in_a_hole_is_enomem(mm):
    mm.mmap(at(0), 8 * P, RW, NOREPLACE)
    mm.mlock(at(0), 8 * P)
    mm.munmap(at(2), 4 * P)
    before = state(mm)
    assert errno_of(mm.munlock, at(2), 8 * P) == errno.ENOMEM
    assert state(mm) == before


def test_c51_munlock03_huge_length_is_einval(mm):
    mm.mmap(at(0), P, RW, NOREPLACE)
    mm.mlock(at(0), 1024)
    assert errno_of(mm.munlock, at(0), (1 << 64) - 8 * P) == errno.EINVAL


@pytest.mark.parametrize(("row", "limit", "expected"), [("C52", 7, errno.ENOMEM),
                                                         ("C53", 0, errno.EPERM)])
def test_c52_c53_mlockall02_current_over_rlimit_memlock(row, limit, expected):
    """Model only (see unprivileged): total_vm above the limit is ENOMEM; 0 is EPERM."""
    mm = unprivileged(rlimit_memlock=limit)
    mm.mmap(at(0), P, RW, NOREPLACE)
    before = state(mm)
    assert errno_of(mm.mlockall, v.MCL_CURRENT) == expected
    assert state(mm) == before


def test_c54_mlockall02_no_flags_is_einval(mm):
    assert errno_of(mm.mlockall, 0) == errno.EINVAL


# ---- mseal01, mseal02 (C55-C66) -----------------------------------------------------------


def test_c55_mseal01_mprotect_over_a_sealed_page_is_eperm(sealed):
    mm = sealed()
    assert errno_of(mm.mprotect, at(0), 8 * P, v.PROT_NONE) == errno.EPERM


def test_c56_mseal01_pkey_mprotect_over_a_sealed_page_is_eperm(sealed):
    """The VMAs before the sealed one get the new protection and key first (the walk of
    do_mprotect_pkey stops at the seal)."""
    mm = sealed()
    if host_has_pkeys():
        pkey = mm.pkey_alloc(0, 0)
    else:
        assert errno_of(mm.pkey_alloc, 0, 0) == errno.EINVAL
        pkey = -1
    assert errno_of(mm.pkey_mprotect, at(0), 8 * P, RO, pkey) == errno.EPERM
    assert layout(mm) == [(0, 2, "r--p"), (2, 3, "rw-p"), (3, 8, "rw-p")]


def test_c58_mseal01_munmap_over_a_sealed_page_is_eperm(sealed):
    mm = sealed()
    before = state(mm)
    assert errno_of(mm.munmap, at(0), 8 * P) == errno.EPERM
    assert state(mm) == before


def test_c60_mseal01_map_fixed_over_a_sealed_page_is_eperm(sealed):
    mm = sealed()
    before = state(mm)
    assert errno_of(mm.mmap, at(0), 8 * P, RO, FIXED) == errno.EPERM
    assert state(mm) == before


def test_c59_mseal01_shrinking_move_over_a_sealed_page_is_eperm(sealed):
    """The VMA at the old address is not sealed; the tail the shrink unmaps is."""
    mm = sealed()
    target = mm.mmap(at(40), 2 * P, RW, NOREPLACE)
    assert errno_of(mm.mremap, at(0), 8 * P, 2 * P, FIXED_MOVE, target) == errno.EPERM


def test_c57_mseal01_discarding_sealed_read_only_memory_is_eperm(sealed):
    mm = sealed(RO)
    assert errno_of(mm.madvise, at(0), 8 * P, v.MADV_DONTNEED) == errno.EPERM


@pytest.fixture
def holed(mm):
    """mseal02's setup: 4 pages RW with page [2,3) unmapped."""
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.munmap(at(2), P)
    return mm


@pytest.mark.parametrize(
    ("row", "page", "offset", "length", "flags", "expected"),
    [
        ("C61", 0, 0, P, ULONG_MAX, errno.EINVAL),
        ("C62", 0, 1, P, 0, errno.EINVAL),
        ("C63", 0, 0, ULONG_MAX - P + 2, 0, errno.EINVAL),
        ("C64", 2, 0, 2 * P, 0, errno.ENOMEM),
        ("C65", 1, 0, 2 * P, 0, errno.ENOMEM),
        ("C66", 0, 0, 4 * P, 0, errno.ENOMEM),
    ],
)
def test_c61_c66_mseal02_errors_change_nothing(holed, row, page, offset, length, flags, expected):
    """do_mseal(): flags, alignment and overflow are EINVAL; a hole anywhere in the range is
    ENOMEM, checked before any VMA is sealed."""
    before = state(holed)
    assert errno_of(holed.mseal, at(page) + offset, length, flags) == expected
    assert state(holed) == before


# ---- functional tests (C2: F10, F12, F14-F17, F23, F24) -----------------------------------


def test_f3_brk01_every_break_is_returned_exactly(mm):
    """33 steps of +(2P-1), +0, -(2P-1) from the current break: brk() returns each request
    to the byte, and the heap below a grown break is writable."""
    brk = mm.brk(0)
    for step in range(33):
        want = brk + (2 * P - 1, 0, -(2 * P - 1))[step % 3]
        brk = mm.brk(want)
        assert brk == want
        if step % 3 == 0:
            mm.touch(brk - 1, write=True)


def test_f4_brk02_shrinking_over_a_split_heap_succeeds(mm):
    """Grow by a page twice, make the second new page read-only (the heap VMA splits),
    grow once more (a third VMA: the read-only tail cannot be expanded), then go back to
    the start: one brk() unmaps all three."""
    start = mm.brk(0)
    assert mm.brk(start + P) == start + P
    assert mm.brk(start + 2 * P) == start + 2 * P
    mm.mprotect(start + P, P, RO)
    assert mm.brk(start + 3 * P) == start + 3 * P
    assert len(mm.maps().splitlines()) == 3
    assert mm.brk(start) == start
    assert mm.maps() == ""


def test_f10_mmap13_access_past_the_end_of_file_is_sigbus(mm, regular_file):
    f = regular_file(v.O_RDWR, P // 2)
    mm.mmap(at(0), 2 * P, RW, v.MAP_SHARED | v.MAP_FIXED_NOREPLACE, f)
    mm.touch(at(0) + 1)
    assert errno_of(mm.touch, at(1) + 1) == errno.EFAULT
    assert layout(mm) == [(0, 2, "rw-s")]


def test_f12_mmap19_files_swap_places_at_each_others_hint(mm, regular_file):
    """Two file mappings unmapped and mapped again with each other's address as the hint:
    the hints are honoured (the contents check of LTP needs no VMA model)."""
    a, b = regular_file(v.O_RDWR, 4 * P), regular_file(v.O_RDWR, 4 * P)
    shared = v.MAP_SHARED
    first = mm.mmap(at(0), 4 * P, RW, shared, a)
    second = mm.mmap(at(8), 4 * P, RW, shared, b)
    mm.munmap(first, 4 * P)
    mm.munmap(second, 4 * P)
    assert mm.mmap(second, 4 * P, RW, shared, a) == at(8)
    assert mm.mmap(first, 4 * P, RW, shared, b) == at(0)
    assert [view.file for view in mm.vmas()] == [b, a]


def test_f13_mmap09_truncating_a_mapped_file(backend, regular_file):
    """ftruncate down, up and to 0 under a shared mapping: the VMA stays as it was; pages
    past the end of the file raise SIGBUS (the model has no ftruncate: the File's size is
    what it reads)."""
    mm = backend()
    f = regular_file(v.O_RDWR, 4 * P)
    mm.mmap(at(0), 4 * P, RW, v.MAP_SHARED | v.MAP_FIXED_NOREPLACE, f)

    def truncate(size: int) -> None:
        if backend.is_host:
            mm.ftruncate(f, size)
        else:
            f.size = size

    truncate(P)
    mm.touch(at(0), write=True)
    assert errno_of(mm.touch, at(2)) == errno.EFAULT
    truncate(4 * P)
    mm.touch(at(2), write=True)
    truncate(0)
    assert errno_of(mm.touch, at(0)) == errno.EFAULT
    assert layout(mm) == [(0, 4, "rw-s")]


def test_f14_munmap01_whole_file_mapping_then_access_is_sigsegv(mm, regular_file):
    f = regular_file(v.O_RDWR, 3 * P)
    mm.mmap(at(0), 3 * P, RW, v.MAP_SHARED | v.MAP_FIXED_NOREPLACE, f)
    mm.munmap(at(0), 3 * P)
    assert mm.maps() == ""
    assert errno_of(mm.touch, at(1)) == errno.EFAULT


def test_f15_munmap02_tail_of_a_file_mapping_then_access_is_sigsegv(mm, regular_file):
    f = regular_file(v.O_RDWR, 3 * P)
    mm.mmap(at(0), 3 * P, RW, v.MAP_SHARED | v.MAP_FIXED_NOREPLACE, f)
    mm.munmap(at(1), 2 * P)
    mm.touch(at(0), write=True)
    assert errno_of(mm.touch, at(1)) == errno.EFAULT
    assert layout(mm) == [(0, 1, "rw-s")]


def test_f16_mprotect02_write_after_making_a_shared_file_writable(mm, regular_file):
    f = regular_file(v.O_RDWR, P)
    mm.mmap(at(0), P, RO, v.MAP_SHARED | v.MAP_FIXED_NOREPLACE, f)
    assert errno_of(mm.touch, at(0), True) == errno.EFAULT
    mm.mprotect(at(0), P, RW)
    mm.touch(at(0), write=True)
    assert layout(mm) == [(0, 1, "rw-s")]


def test_f17_mprotect04_prot_none_faults_until_made_executable(mm):
    """The access half of mprotect04 (running copied code is not a VMA matter)."""
    mm.mmap(at(0), P, v.PROT_NONE, NOREPLACE)
    assert errno_of(mm.touch, at(0)) == errno.EFAULT
    mm.mprotect(at(0), P, v.PROT_READ | v.PROT_EXEC)
    mm.touch(at(0))
    assert layout(mm) == [(0, 1, "r-xp")]


@pytest.mark.parametrize(
    ("case", "readonly", "expected"),
    [
        ("all compatible", None, [(0, 3, "rw-s")]),
        ("third", 2, [(0, 2, "rw-s"), (2, 3, "r--s")]),
        ("first", 0, [(0, 1, "r--s"), (1, 3, "rw-s")]),
    ],
)
def test_f2_mremap06_file_page_moved_out_and_back(mm, regular_file, case, readonly, expected):
    """Page 1 of a shared file mapping moves onto slot 3 and back to slot 1, with slot 0 or
    2 made read-only in between; the pieces merge back by file offset (after a move back
    next to a read-only slot 0, the writable VMA starts at pgoff 1: 7e7757876f25)."""
    f = regular_file(v.O_RDWR, 4 * P)
    mm.mmap(at(0), 4 * P, RW, v.MAP_SHARED | v.MAP_FIXED_NOREPLACE, f)
    assert mm.mremap(at(1), P, P, FIXED_MOVE, at(3)) == at(3)
    if readonly is not None:
        mm.mprotect(at(readonly), P, RO)
    assert mm.mremap(at(3), P, P, FIXED_MOVE, at(1)) == at(1)
    assert layout(mm) == expected
    assert offsets(mm) == [start for start, _, _ in expected]


@pytest.mark.parametrize("target_mapped", [False, True])
def test_f18_f19_mremap05_mremap08_fixed_move(mm, target_mapped):
    """MREMAP_FIXED|MAYMOVE returns new_addr, to a free range or replacing a mapping."""
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.touch(at(0), write=True)
    if target_mapped:
        mm.mmap(at(10), 4 * P, RO, NOREPLACE)
    assert mm.mremap(at(0), 2 * P, 2 * P, FIXED_MOVE, at(10)) == at(10)
    tail = [(12, 14, "r--p")] if target_mapped else []
    assert layout(mm) == [(10, 12, "rw-p"), *tail]
    mm.touch(at(11), write=True)


def test_f24_mmap04_read_only_fd_maps_shared_read_exec(mm, regular_file):
    """A file opened O_RDONLY maps MAP_SHARED R|X without VM_SHARED and VM_MAYWRITE."""
    f = regular_file(v.O_RDONLY, 2 * P)
    mm.mmap(at(0), 2 * P, v.PROT_READ | v.PROT_EXEC, v.MAP_SHARED | v.MAP_FIXED_NOREPLACE, f)
    mm.touch(at(1))
    assert layout(mm) == [(0, 2, "r-xs")]
    assert flags_of(mm) == ["rd ex mr me ms"]


def test_f11_mmap18_growsdown_stack_grows_unless_blocked(mm):
    """A MAP_GROWSDOWN mapping grows when touched below, with stack_guard_gap (256 pages)
    free under it; a mapping inside the gap refuses the growth."""
    mm.mmap(at(600), 4 * P, RW, NOREPLACE | v.MAP_GROWSDOWN)
    mm.touch(at(599), write=True)
    assert layout(mm) == [(599, 604, "rw-p")]
    mm.mmap(at(400), P, RW, SHANON)
    assert errno_of(mm.touch, at(598), True) == errno.EFAULT
    assert layout(mm) == [(400, 401, "rw-s"), (599, 604, "rw-p")]


# ---- functional: mlock04 (F6), madvise01 (F21), madvise10 (F22), madvise12 (F23) -------------


def test_f6_mlock04_write_only_shared_file_mapping_can_be_locked(mm, regular_file):
    f = regular_file(v.O_RDWR, 10 * P)
    mm.mmap(at(0), 10 * P, v.PROT_WRITE, v.MAP_SHARED | v.MAP_FIXED_NOREPLACE, f)
    mm.mlock(at(0), 10 * P)
    assert flags_of(mm) == ["wr sh mr mw me ms lo"]


def test_f7_mlock05_write_only_anonymous_megabyte_is_locked(mm):
    """The VMA side of mlock05 (Rss and Locked count pages, which the model does not)."""
    mm.mmap(at(0), MiB, v.PROT_WRITE, NOREPLACE)
    mm.mlock(at(0), MiB)
    assert layout(mm) == [(0, MiB // P, "-w-p")]
    assert flags_of(mm) == ["wr mr mw me lo ac"]


def test_f8_mlock203_onfault_then_plain_mlock2(mm):
    """The VMA side of mlock203 (VmLck is not visible through the arena): MLOCK_ONFAULT
    adds "lf"; mlock2 without it on the same page drops "lf" and keeps "lo"."""
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mlock2(at(0), P, v.MLOCK_ONFAULT)
    assert flags_of(mm) == ["rd wr mr mw me lo lf ac", "rd wr mr mw me ac"]
    mm.mlock2(at(0), P, 0)
    assert flags_of(mm) == ["rd wr mr mw me lo ac", "rd wr mr mw me ac"]


def test_f9_mmap14_map_locked_megabyte(mm):
    """The VMA side of mmap14 (VmLck is not visible through the arena)."""
    mm.mmap(at(0), MiB, RW, NOREPLACE | v.MAP_LOCKED)
    assert layout(mm) == [(0, MiB // P, "rw-p")]
    assert flags_of(mm) == ["rd wr mr mw me lo ac"]


SHARED_FILE_ADVICES = [v.MADV_NORMAL, v.MADV_RANDOM, v.MADV_SEQUENTIAL, v.MADV_WILLNEED,
                       v.MADV_DONTNEED, v.MADV_REMOVE, v.MADV_DONTFORK, v.MADV_DOFORK,
                       v.MADV_MERGEABLE, v.MADV_UNMERGEABLE, v.MADV_DONTDUMP, v.MADV_DODUMP]
PRIVATE_ANON_ADVICES = [v.MADV_HUGEPAGE, v.MADV_NOHUGEPAGE, v.MADV_FREE, v.MADV_WIPEONFORK,
                        v.MADV_KEEPONFORK, v.MADV_COLD, v.MADV_PAGEOUT]


@pytest.mark.parametrize("advice", SHARED_FILE_ADVICES)
def test_f21_madvise01_advice_on_a_shared_tmpfs_file_succeeds(mm, advice):
    """madvise01's file advices on a shared tmpfs (memfd) mapping; MADV_HWPOISON is left
    out: it poisons a physical page of the machine."""
    f = v.memfd_create("madvise01", 4 * P)
    mm.mmap(at(0), 4 * P, RW, v.MAP_SHARED | v.MAP_FIXED_NOREPLACE, f)
    mm.touch(at(0), write=True)
    mm.madvise(at(0), 4 * P, advice)


@pytest.mark.parametrize("advice", PRIVATE_ANON_ADVICES)
def test_f21_madvise01_advice_on_private_anonymous_memory_succeeds(mm, advice):
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.touch(at(0), write=True)
    mm.madvise(at(0), 4 * P, advice)


def test_f22_madvise10_wipeonfork_is_inherited_and_undone_by_keeponfork(mm):
    """The VMA side of madvise10 (the zeroed contents are not modelled): the child and
    grandchild VMAs carry "wf"; KEEPONFORK clears it; a zero length changes nothing."""
    mm.mmap(at(0), 4 * P, RW, NOREPLACE)
    mm.madvise(at(0), 0, v.MADV_WIPEONFORK)
    assert flags_of(mm) == ["rd wr mr mw me ac"]
    mm.madvise(at(0), 4 * P, v.MADV_WIPEONFORK)
    child = mm.fork()
    try:
        grandchild = child.fork()
        try:
            assert flags_of(grandchild) == ["rd wr mr mw me ac wf"]
        finally:
            grandchild.exit()
    finally:
        child.exit()
    mm.madvise(at(0), 4 * P, v.MADV_KEEPONFORK)
    assert flags_of(mm) == ["rd wr mr mw me ac"]


def test_f23_madvise12_guard_region_faults_until_removed(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.touch(at(0), write=True)
    mm.madvise(at(0), 2 * P, v.MADV_GUARD_INSTALL)
    assert errno_of(mm.touch, at(1), True) == errno.EFAULT
    mm.madvise(at(0), 2 * P, v.MADV_GUARD_REMOVE)
    mm.touch(at(1), write=True)
    assert layout(mm) == [(0, 2, "rw-p")]
    assert flags_of(mm) == ["rd wr mr mw me gu ac"]
