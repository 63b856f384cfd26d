"""Hypothesis rules for the mlock family, mixed into a DifferentialMachine: mlock, mlock2 and
munlock over ranges that start near an existing VMA and cross VMAs and holes (the start need
not be aligned), mlockall with valid and invalid flags, munlockall; and locked_vm (the
host's VmLck) after each call while no mlockall has locked the host child's own mappings."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import rule

from vmamodel.fuzz import generate as gen

from .rules_madvise import LENGTHS, TARGETS

OPS = st.sampled_from(gen.LOCK_OPS)
MCL = st.sampled_from(gen.MCL)


def host_locked_pages(pid: int) -> int:
    """mm->locked_vm of a host process, in pages (VmLck of /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmLck:"):
                return int(line.split()[1]) // 4
    raise AssertionError(f"no VmLck in /proc/{pid}/status")


class MlockRules:
    """Rules only: the machine class that mixes this in provides ``both``, ``model`` and
    ``host``."""

    #: False once mlockall has locked (or made lockable) the host child's own mappings.
    locked_vm_comparable = True

    def __init__(self) -> None:
        super().__init__()
        # The shared host child's locked_vm as this example begins. The kernel itself can
        # leave locked_vm raised after every page is unmapped (a MREMAP_DONTUNMAP move of
        # locked memory charges the new range and never uncharges the old one; the model
        # does the same), so what one example leaves is the next one's starting point.
        self.locked_root = self.host.pid  # type: ignore[attr-defined]
        self.locked_base = host_locked_pages(self.locked_root)

    def check_locked_vm(self) -> None:
        if not self.locked_vm_comparable:
            return
        host = host_locked_pages(self.host.pid)  # type: ignore[attr-defined]
        base = self.locked_base if self.host.pid == self.locked_root else 0  # type: ignore[attr-defined]
        model = self.model.locked_vm  # type: ignore[attr-defined]
        assert model == host - base, f"locked_vm: model {model} != host {host} - {base} (start)"

    @rule(
        op=OPS,
        near=TARGETS,
        npages=LENGTHS,
        skew=st.sampled_from(gen.LOCK_SKEWS),
        onfault=st.sampled_from(gen.MLOCK2_FLAGS),
        mcl=MCL,
    )
    def lock(
        self, op: str, near: tuple[int, int], npages: int, skew: int, onfault: int, mcl: int
    ) -> None:
        both = self.both  # type: ignore[attr-defined]
        func, args = gen.lock_call(self.model, op, near, npages, skew, onfault, mcl)  # type: ignore[attr-defined]
        if func == "mlockall":
            if both(func, *args)[0] == "ok":
                self.locked_vm_comparable = False
            return
        both(func, *args)
        if func == "munlockall":
            self.locked_vm_comparable = True
        self.check_locked_vm()
