"""execve as the end of one address space and the start of another, judged by a real
program (progs/exec_probe.c): stage 1 maps memory, attaches a SysV segment and (with "ksm")
sets PR_SET_MEMORY_MERGE, then re-executes itself; stage 2 prints its maps and smaps, maps
three pages where the kernel chooses, and prints them again. The model replays stage 1,
execs into a model seeded from stage 2's first dump, replays the mmap, and must give the
kernel's address, maps and VmFlags."""

from __future__ import annotations

import resource
import shutil
import subprocess
from pathlib import Path

import pytest

import vmamodel as v
from vmamodel.host.traits import host_kernel_kwargs
from vmamodel.shm import IPC_CREAT, IPC_PRIVATE

SOURCE = Path(__file__).with_name("progs") / "exec_probe.c"
ARENA = 0x100000000000
P = 4096


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.fail("no C compiler (cc or gcc) to build progs/exec_probe.c")
    binary = tmp_path_factory.mktemp("probe") / "exec_probe"
    subprocess.run([cc, "-O2", "-Wall", "-o", str(binary), str(SOURCE)], check=True)
    return binary


def run(probe: Path, ksm: bool) -> dict[str, list[str]]:
    out = subprocess.run([str(probe), *(["ksm"] if ksm else [])], check=True,
                         capture_output=True, text=True).stdout
    sections: dict[str, list[str]] = {}
    for chunk in out.split("@@")[1:]:
        tag, _, body = chunk.partition("\n")
        sections.setdefault(tag, []).append(body)
    return sections


def stage1(ksm: bool) -> v.AddressSpace:
    """What the probe did before execve, on a model."""
    soft, _ = resource.getrlimit(resource.RLIMIT_STACK)
    mm = v.AddressSpace(**host_kernel_kwargs(), rlimit_stack=soft)
    if ksm:
        mm.prctl(v.PR_SET_MEMORY_MERGE, 1)
    mm.mmap(ARENA, 8 * P, 3, v.MAP_PRIVATE | v.MAP_ANONYMOUS | v.MAP_FIXED_NOREPLACE)
    shmid = mm.shmget(IPC_PRIVATE, P, IPC_CREAT | 0o600)
    mm.shmat(shmid, ARENA + 0x100000)
    mm.shmctl_rmid(shmid)
    return mm


def vmflags(smaps: str, start: int) -> str:
    blocks = [block for block in v.parse_smaps(smaps) if block.header.start == start]
    assert len(blocks) == 1
    return str(v.VM(blocks[0].vm_flags))


@pytest.mark.parametrize("ksm", [False, True])
def test_execve_replay_continues_on_the_new_image(probe, ksm):
    out = run(probe, ksm)
    old = stage1(ksm)
    soft, _ = resource.getrlimit(resource.RLIMIT_STACK)
    new = old.execve(out["maps"][0], out["smaps"][0], rlimit_stack=soft)
    # The old address space is gone, and with it the last attach of the removed segment.
    assert old.maps() == "" and old.map_count == 0
    assert not old.ipc_ns.segments
    assert all(not line.startswith("1000") for line in out["maps"][0].splitlines())
    assert new.ksm_merge_any is ksm
    assert new.maps() == out["maps"][0]
    addr = new.mmap(0, 3 * P, 3, v.MAP_PRIVATE | v.MAP_ANONYMOUS)
    assert addr == int(out["addr"][0], 16)
    assert new.maps() == out["maps"][1]
    assert str(v.VM(new.find_vma(addr).vm_flags)) == vmflags(out["smaps"][1], addr)
