"""A real program (progs/calls_probe.c) makes the calls of this issue where the kernel
chooses the addresses: KSM advice and PR_SET_MEMORY_MERGE, mbind, shmat, private and shared
/dev/zero, io_setup, UFFDIO_REGISTER, MAP_HUGETLB, shmdt, io_destroy and closing the
userfaultfd. A model seeded from its maps and smaps at start replays the same calls and must
return the same values and produce the same maps (inode numbers renumbered on both sides)
and VmFlags after every step."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import vmamodel as v
from vmamodel.devzero import open_dev_zero
from vmamodel.host.traits import host_kernel_kwargs
from vmamodel.mempolicy import MPOL_BIND
from vmamodel.scenario.compare import InodeNumbering, vmflags
from vmamodel.shm import IPC_CREAT, IPC_PRIVATE

SOURCE = Path(__file__).with_name("progs") / "calls_probe.c"
P = 4096
RW = v.PROT_READ | v.PROT_WRITE
ANON = v.MAP_PRIVATE | v.MAP_ANONYMOUS


@pytest.fixture(scope="module")
def steps(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, int, str, str]]:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.fail("no C compiler (cc or gcc) to build progs/calls_probe.c")
    binary = tmp_path_factory.mktemp("probe") / "calls_probe"
    subprocess.run([cc, "-O2", "-Wall", "-o", str(binary), str(SOURCE)], check=True)
    out = subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout
    parsed = []
    for chunk in out.split("@@step ")[1:]:
        head, _, body = chunk.partition("\n")
        name, result = head.split()
        maps, _, smaps = body.partition("@@smaps\n")
        parsed.append((name, int(result), maps, smaps))
    return parsed


def replay(mm: v.AddressSpace, state: dict[str, Any]) -> dict[str, Callable[[], int]]:
    """The probe's calls, in its order, on the model."""
    st = os.stat("/dev/zero")
    zero = open_dev_zero(dev=(os.major(st.st_dev), os.minor(st.st_dev)), ino=st.st_ino)

    def shmat() -> int:
        shmid = mm.shmget(IPC_PRIVATE, 3 * P, IPC_CREAT | 0o600)
        state["s"] = mm.shmat(shmid)
        mm.shmctl_rmid(shmid)
        return int(state["s"])

    def io_setup() -> int:
        state["ctx"] = mm.io_setup(1)
        return int(state["ctx"])

    def uffd_register() -> int:
        state["uffd"] = mm.userfaultfd()
        return mm.uffdio_register(state["uffd"], state["a"] + 2 * P, P, 1)

    def none(call: Callable[[], object]) -> Callable[[], int]:
        return lambda: call() or 0

    return {
        "mmap": lambda: state.setdefault("a", mm.mmap(0, 3 * P, RW, ANON)),
        "madvise_mergeable": none(lambda: mm.madvise(state["a"] + P, P, v.MADV_MERGEABLE)),
        "prctl_merge_any": lambda: mm.prctl(v.PR_SET_MEMORY_MERGE, 1),
        "mmap2": lambda: mm.mmap(0, 2 * P, RW, ANON),
        "mbind": none(lambda: mm.mbind(state["a"], P, MPOL_BIND, 1, 64)),
        "shmat": shmat,
        "zero_private": lambda: mm.mmap(0, 4 << 20, RW, v.MAP_PRIVATE, zero, 0),
        "zero_shared": lambda: mm.mmap(0, 2 * P, RW, v.MAP_SHARED, zero, 0),
        "io_setup": io_setup,
        "uffd_register": uffd_register,
        "hugetlb": lambda: mm.mmap(0, 2 << 20, RW, ANON | v.MAP_HUGETLB | v.MAP_NORESERVE),
        "shmdt": none(lambda: mm.shmdt(state["s"])),
        "io_destroy": none(lambda: mm.io_destroy(state["ctx"])),
        "uffd_close": none(lambda: mm.uffd_close(state["uffd"])),
    }


def test_the_model_replays_the_probe_call_by_call(steps):
    name, _, maps, smaps = steps[0]
    assert name == "start"
    soft, _ = resource.getrlimit(resource.RLIMIT_STACK)
    mm = v.AddressSpace.from_maps(maps, smaps=smaps, **host_kernel_kwargs(), rlimit_stack=soft)
    calls = replay(mm, {})
    kernel_ids, model_ids = InodeNumbering(), InodeNumbering()
    assert model_ids.text(mm.maps()) == kernel_ids.text(maps)
    for name, result, maps, smaps in steps[1:]:
        assert calls[name]() == result, name
        assert model_ids.text(mm.maps()) == kernel_ids.text(maps), name
        assert vmflags(mm.smaps()) == vmflags(smaps), name
