"""What of the running kernel's configuration the model must be told about.

The model is deterministic and never looks at the machine; the host oracle does. Machines
of the same kernel differ in what the CPU offers: protection keys (PKU) change which key an
exec-only mapping gets, whether it can be read, and smaps' ``ProtectionKey:`` line.
Transparent huge pages decide placement: a THP kernel aligns large anonymous mappings to 2 MiB
whatever the sysfs mode, and shmem aligns only as its own sysfs settings allow.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path
from typing import Any

from vmamodel.unmapped_area import PMD_ORDER, ShmemHuge

THP_SYSFS = Path("/sys/kernel/mm/transparent_hugepage")


@functools.cache
def host_has_pkeys() -> bool:
    """arch_pkeys_enabled() on this machine: smaps prints ``ProtectionKey:`` exactly then."""
    return "ProtectionKey:" in Path("/proc/self/smaps").read_text()


def _sysctl(name: str, default: int) -> int:
    try:
        return int(Path("/proc/sys/vm", name).read_text().split()[0])
    except (OSError, ValueError):
        return default


def _sysfs_choice(path: Path) -> str | None:
    """The bracketed word of a sysfs choice file ("always [madvise] never" -> "madvise")."""
    try:
        text = path.read_text()
    except OSError:
        return None
    start, end = text.find("["), text.find("]")
    return text[start + 1:end] if 0 <= start < end else None


@functools.cache
def host_thp_mode() -> str | None:
    """/sys/kernel/mm/transparent_hugepage/enabled, or None on a kernel built without THP
    (CONFIG_TRANSPARENT_HUGEPAGE off: the directory does not exist)."""
    return _sysfs_choice(THP_SYSFS / "enabled")


def _order_of(size_dir: Path) -> int:
    """hugepages-2048kB -> 9: the page order of a per-size THP directory."""
    kib = int(size_dir.name.removeprefix("hugepages-").removesuffix("kB"))
    return (kib // 4).bit_length() - 1


@functools.cache
def host_shmem_huge() -> ShmemHuge:
    """shmem's huge page settings: shmem_enabled and the per-size anonymous shmem controls."""
    enabled = _sysfs_choice(THP_SYSFS / "shmem_enabled") or "never"
    orders = 0
    inherit = 0
    for size_dir in THP_SYSFS.glob("hugepages-*kB"):
        choice = _sysfs_choice(size_dir / "shmem_enabled")
        if choice in ("always", "within_size", "advise"):
            orders |= 1 << _order_of(size_dir)
        elif choice == "inherit":
            inherit |= 1 << _order_of(size_dir)
    if not any(THP_SYSFS.glob("hugepages-*kB")):
        inherit = 1 << PMD_ORDER
    return ShmemHuge(enabled=enabled, orders=orders, inherit_orders=inherit)


@functools.cache
def host_mmap_min_addr() -> int:
    """The kernel's mmap_min_addr: the larger of the vm.mmap_min_addr sysctl and the LSM's
    CONFIG_LSM_MMAP_MIN_ADDR, which no file shows. A hint of one page is raised to it
    (round_hint_to_min), so a PROT_NONE probe at that hint reveals it."""
    sysctl = _sysctl("mmap_min_addr", 4096)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long)
    libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
    page = 4096
    got = libc.mmap(page, page, 0, 0x22, -1, 0)  # PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS
    if got in (None, ctypes.c_void_p(-1).value):
        return sysctl
    libc.munmap(got, page)
    # A result far up means the low hint was not free here: keep the sysctl's value.
    return got if page <= got <= (1 << 20) else sysctl


@functools.cache
def host_has_anon_vma_name() -> bool:
    """CONFIG_ANON_VMA_NAME: prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME) of an empty range at 0
    succeeds with it and fails with EINVAL without; either way nothing changes."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.restype = ctypes.c_int
    libc.prctl.argtypes = (ctypes.c_int,) + (ctypes.c_ulong,) * 4
    return bool(libc.prctl(0x53564D41, 0, 0, 0, 0) == 0)  # PR_SET_VMA, PR_SET_VMA_ANON_NAME


def host_model_kwargs() -> dict[str, Any]:
    """Keyword arguments that make ``vmamodel.AddressSpace`` configured like this host and
    laid out like the oracle's child (HostAddressSpace). A new dict on every call (the
    values are immutable), so that a caller's change stays its own."""
    return {**_host_kernel_kwargs(), "start_brk": _oracle_start_brk()}


def host_kernel_kwargs() -> dict[str, Any]:
    """The part of host_model_kwargs() that describes the kernel alone, for a model of
    another process (AddressSpace.from_maps of the placement runner); a new dict each call."""
    return dict(_host_kernel_kwargs())


@functools.cache
def _host_kernel_kwargs() -> dict[str, Any]:
    """Read once: callers get copies (host_kernel_kwargs, host_model_kwargs)."""
    return {
        "pkeys": host_has_pkeys(),
        "max_map_count": _sysctl("max_map_count", 65530),
        "overcommit_memory": _sysctl("overcommit_memory", 0),
        "mmap_min_addr": host_mmap_min_addr(),
        "thp_enabled": host_thp_mode() is not None,
        "shmem_huge": host_shmem_huge(),
        "anon_vma_name": host_has_anon_vma_name(),
        "numa_nodes": host_numa_nodes(),
        "possible_cpus": host_possible_cpus(),
    }


def host_possible_cpus() -> int:
    """num_possible_cpus(): the CPUs in /sys/devices/system/cpu/possible (e.g. "0-1")."""
    try:
        text = Path("/sys/devices/system/cpu/possible").read_text().strip()
    except OSError:
        return 1
    count = 0
    for part in text.split(","):
        first, _, last = part.partition("-")
        count += int(last or first) - int(first) + 1
    return count


def host_numa_nodes() -> int:
    """How many NUMA nodes are online (the model takes nodes 0..n-1): the highest node in
    /sys/devices/system/node/online, plus one."""
    try:
        text = Path("/sys/devices/system/node/online").read_text().strip()
    except OSError:
        return 1
    last = text.replace("-", ",").split(",")[-1]
    return int(last) + 1 if last.isdigit() else 1


def _oracle_start_brk() -> int:
    """Where the oracle's child keeps its heap (the default arena's top; see heap_start)."""
    # Not at module level: vmamodel.host imports this module for host_model_kwargs.
    from vmamodel.host import heap_start

    return heap_start() or 0


def parse_mountinfo(text: str, source: str = "mountinfo") -> dict[tuple[int, int], str]:
    """Device number -> filesystem type from /proc/PID/mountinfo text (field 3 is
    ``major:minor``; the type follows the `` - `` separator). A device mounted twice keeps
    its first type. ValueError names the line of malformed text."""
    found: dict[tuple[int, int], str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split(" ")
        try:
            major, minor = (int(x) for x in fields[2].split(":"))
            fstype = fields[fields.index("-", 6) + 1]
        except (IndexError, ValueError):
            raise ValueError(f"{source}:{number}: not a mountinfo line: {line!r}") from None
        found.setdefault((major, minor), fstype)
    return found


@functools.cache
def host_filesystems() -> dict[tuple[int, int], str]:
    """This machine's filesystems by device number (/proc/self/mountinfo), for
    ``AddressSpace.from_maps(..., fs_of=host_filesystems())``."""
    return parse_mountinfo(Path("/proc/self/mountinfo").read_text())
