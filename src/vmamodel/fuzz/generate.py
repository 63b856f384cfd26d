"""Random calls for differential testing: the one home of their domains and builders.

Two users share this module:

- the hypothesis state machines of ``tests/differential`` draw every argument with a strategy
  made from the domains below (``st.sampled_from(PROTS)``, ``st.integers(*PAGE_RANGE)``...) and
  turn the drawn values into a call with the builders (:func:`mmap_args`,
  :func:`madvise_args`, :func:`mremap_fixed_args`...);
- :class:`CallGenerator` (``vmamodel fuzz``) draws the same values from a seeded
  ``random.Random`` and hands them to the same builders, with operations weighted toward
  those that change VMAs (MAP_FIXED over neighbours, partial mprotect, mremap moves, madvise
  that splits, the mlock family, fork).

Calls play in a small window of the oracle's arena (:data:`WINDOW` pages from its base) and
in the pages above ``start_brk``, so that they collide often. Where a good argument depends on
the state (a range that starts at a VMA, whether an mremap grows in place), the builders read
the model's address space, never the host's: the two are compared after every call, so they
agree whenever the next call is built.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vmamodel import constants as c
from vmamodel.host.arena import ARENA_BASE, at
from vmamodel.unmapped_area import vm_start_gap

P = c.PAGE_SIZE
#: Pages of the arena the calls play in: small, so that calls collide often.
WINDOW = 48
ARENA = ARENA_BASE

# ---------------------------------------------------------------------------------------------
# Domains. A range (lo, hi) includes both ends, like st.integers(lo, hi) and randint(lo, hi).

PROTS: tuple[int, ...] = (
    c.PROT_NONE,
    c.PROT_READ,
    c.PROT_READ | c.PROT_WRITE,
    c.PROT_READ | c.PROT_EXEC,
    c.PROT_EXEC,
    c.PROT_WRITE,
    c.PROT_READ | c.PROT_WRITE | c.PROT_EXEC,
)
PAGE_RANGE = (0, WINDOW - 1)
LENGTH_RANGE = (1, 8)

# mmap / munmap / mprotect / touch (the core rules)
KINDS = ("anon-private", "anon-shared", "memfd0-private", "memfd0-shared", "memfd1-private")
EXTRA = (0, 0, 0, 0, c.MAP_NORESERVE, c.MAP_POPULATE, c.MAP_STACK, c.MAP_LOCKED)
FILEOFF_RANGE = (0, WINDOW)
#: The memfds a sequence maps: names and size (room for any offset plus a length).
MEMFDS = ("fuzz0", "fuzz1")
MEMFD_BYTES = 2 * WINDOW * P
UNMAP_PAGES = (0, 12)
MUNMAP_SKEWS = (0, 0, 0, 0, 1, 100)
MPROTECT_SKEWS = (0, 0, 0, 1)

# madvise, the mlock family and anonymous names: ranges near an existing VMA
ADVICES: tuple[int, ...] = (
    c.MADV_NORMAL, c.MADV_RANDOM, c.MADV_SEQUENTIAL, c.MADV_WILLNEED, c.MADV_DONTNEED,
    c.MADV_FREE, c.MADV_REMOVE, c.MADV_DONTFORK, c.MADV_DOFORK, c.MADV_MERGEABLE,
    c.MADV_UNMERGEABLE, c.MADV_HUGEPAGE, c.MADV_NOHUGEPAGE, c.MADV_DONTDUMP, c.MADV_DODUMP,
    c.MADV_WIPEONFORK, c.MADV_KEEPONFORK, c.MADV_COLD, c.MADV_PAGEOUT, c.MADV_POPULATE_READ,
    c.MADV_POPULATE_WRITE, c.MADV_DONTNEED_LOCKED, c.MADV_COLLAPSE, c.MADV_GUARD_INSTALL,
    c.MADV_GUARD_INSTALL, c.MADV_GUARD_REMOVE, c.MADV_HWPOISON, 999,
)
#: Advice that changes vm_flags (madvise_update_vma), so splits and merges VMAs.
SPLITTING_ADVICES: tuple[int, ...] = (
    c.MADV_RANDOM, c.MADV_SEQUENTIAL, c.MADV_NORMAL, c.MADV_DONTFORK, c.MADV_DOFORK,
    c.MADV_HUGEPAGE, c.MADV_NOHUGEPAGE, c.MADV_DONTDUMP, c.MADV_DODUMP, c.MADV_WIPEONFORK,
    c.MADV_KEEPONFORK, c.MADV_MERGEABLE, c.MADV_UNMERGEABLE, c.MADV_GUARD_INSTALL,
)
#: (which VMA, pages from its start): ranges mostly begin inside or just before a VMA.
TARGET_VMAS = (0, 63)
TARGET_OFFSETS = (-2, 6)
#: Lengths near a VMA: one of two ranges, each half the time.
NEAR_LENGTHS = ((1, 4), (0, 12))
MADVISE_SKEWS = (0,) * 10 + (1, 100)
LOCK_OPS = ("mlock", "mlock", "mlock2", "munlock", "munlock", "mlockall", "munlockall")
LOCK_SKEWS = (0,) * 6 + (1, 100)
MLOCK2_FLAGS = (0, c.MLOCK_ONFAULT, c.MLOCK_ONFAULT, 2)
MCL = (
    c.MCL_CURRENT, c.MCL_FUTURE, c.MCL_CURRENT | c.MCL_FUTURE, c.MCL_CURRENT | c.MCL_ONFAULT,
    c.MCL_FUTURE | c.MCL_ONFAULT, c.MCL_CURRENT | c.MCL_FUTURE | c.MCL_ONFAULT, 0,
    c.MCL_ONFAULT, 8,
)
#: Few names, so that equal names meet and merge; and the refused ones.
ANON_NAMES = ("a", "a", "b", "b", None, None, "", "n" * 79, "n" * 80, "x]", "\t")
ANON_NAME_SKEWS = (0,) * 10 + (1,)

# brk and the pages around the heap
HEAP_WINDOW = 40
HEAP_PAGE_RANGE = (0, HEAP_WINDOW - 1)
BREAK_RANGE = (-1, HEAP_WINDOW)
BRK_SKEWS = (0, 0, 0, 1, P - 1)
NEAR_HEAP_FLAGS = (
    c.MAP_PRIVATE | c.MAP_ANONYMOUS | c.MAP_FIXED_NOREPLACE,
    c.MAP_PRIVATE | c.MAP_ANONYMOUS | c.MAP_FIXED,
    c.MAP_SHARED | c.MAP_ANONYMOUS | c.MAP_FIXED_NOREPLACE,
    c.MAP_PRIVATE | c.MAP_ANONYMOUS | c.MAP_FIXED_NOREPLACE | c.MAP_GROWSDOWN,
)

# mremap
M, F, D = c.MREMAP_MAYMOVE, c.MREMAP_FIXED, c.MREMAP_DONTUNMAP
RW = c.PROT_READ | c.PROT_WRITE
ANON_FIXED = c.MAP_PRIVATE | c.MAP_ANONYMOUS | c.MAP_FIXED
OLD_PAGES = (0, 10)
NEW_PAGES = (1, 10)
#: Byte skews of a length: most calls are page multiples; some round up; 0 stays 0.
LEN_SKEWS = (0, 0, 0, 0, 1, P - 1)
#: Flag bits mremap does not know (8) make EINVAL; most calls use none.
BAD_MREMAP_FLAGS = (0,) * 12 + (8, 0x40)
#: How an old range is chosen (see spot): 0 whole VMA, 1 VMA tail, 2 from a VMA's start,
#: 3 anywhere.
MODES = (0, 0, 1, 1, 2, 2, 3)
PICK_RANGE = (0, 1 << 16)
ADDR_SKEWS = (0,) * 15 + (1,)
DEST_RANGE = (0, WINDOW)
MISMATCH = (False,) * 7 + (True,)
FIXED_MAYMOVE = (True,) * 9 + (False,)
SETUP_PROTS = (c.PROT_READ, RW)

#: Processes alive at once (fork), the first included.
MAX_FAMILY = 4


def aligned(nbytes: int) -> int:
    return (nbytes + P - 1) & ~(P - 1)


# ---------------------------------------------------------------------------------------------
# Builders: drawn values -> arguments. A file argument is the index of a memfd (MEMFDS).


def mmap_args(page: int, npages: int, prot: int, kind: str, noreplace: bool, extra: int,
              fileoff: int) -> tuple[int, int, int, int, int | None, int]:
    """(addr, length, prot, flags, memfd index or None, offset) of a fixed mmap in the
    window: anonymous or of memfd 0/1, private or shared (KINDS)."""
    flags = (c.MAP_FIXED_NOREPLACE if noreplace else c.MAP_FIXED) | extra
    memfd = None
    if kind.startswith("anon"):
        flags |= c.MAP_ANONYMOUS
    else:
        memfd = int(kind[5])
    flags |= c.MAP_SHARED if kind.endswith("shared") else c.MAP_PRIVATE
    return at(page), npages * P, prot, flags, memfd, fileoff * P


def target_page(model: Any, which: int, offset: int) -> int:
    """A page of the window near VMA number ``which`` of ``model`` (``offset`` pages from its
    start, clamped to the window); any page when the model has no VMA."""
    vmas = model.vmas()
    if not vmas:
        return which % WINDOW
    base = (int(vmas[which % len(vmas)].vm_start) - at(0)) // P
    return min(max(base + offset, 0), WINDOW - 1)


def madvise_args(model: Any, near: tuple[int, int], npages: int, advice: int,
                 skew: int) -> tuple[int, int, int]:
    page = target_page(model, *near)
    return at(page) + skew, npages * P - skew // 2, advice


def lock_call(model: Any, op: str, near: tuple[int, int], npages: int, skew: int,
              onfault: int, mcl: int) -> tuple[str, tuple[int, ...]]:
    """One call of the mlock family (LOCK_OPS): its name and arguments."""
    addr = at(target_page(model, *near)) + skew
    if op == "mlockall":
        return op, (mcl,)
    if op == "munlockall":
        return op, ()
    if op == "mlock2":
        return op, (addr, npages * P, onfault)
    return op, (addr, npages * P)


def heap_page(model: Any, page: int) -> int:
    """The address ``page`` pages above the model's start_brk."""
    return int(model.start_brk) + page * P


def grows_in_place(model: Any, addr: int, old_len: int, new_len: int) -> bool:
    """What expand_vma() decides, read from the model: the range ends at its VMA's end and
    the pages after it are free."""
    vma = model.find_vma(addr)
    old_len, new_len = aligned(old_len), aligned(new_len)
    if vma is None or vma.vm_start > addr or new_len <= old_len:
        return False
    end = vma.vm_end + new_len - old_len
    after = model.find_vma(vma.vm_end)
    return bool(vma.vm_end - addr == old_len and (after is None or after.vm_start >= end))


def hint_is_free(model: Any, hint: int, length: int) -> bool:
    """The hint range is free, short of the guard gap below a stack (_hint_fits)."""
    vma = model.find_vma(hint)
    return vma is None or bool(vm_start_gap(model, vma) >= hint + aligned(length))


def spot(model: Any, mode: int, pick: int, page: int, old: int) -> tuple[int, int]:
    """(first page, pages) of an old mremap range: mostly drawn from the model's VMAs (a
    whole VMA, a tail ending at the VMA's end, or a range starting at a VMA that may run past
    it), sometimes anywhere in the window (MODES)."""
    views = [view for view in model.vmas() if at(0) <= view.vm_start < at(WINDOW)]
    if mode == 3 or not views:
        return page, old
    view = views[pick % len(views)]
    first, last = (view.vm_start - at(0)) // P, (view.vm_end - at(0)) // P
    if mode == 0:
        return first, last - first
    if mode == 1:
        start = first + pick // 7 % (last - first)
        return start, last - start
    return first, old


def mremap_resize_args(
    model: Any, mode: int, pick: int, page: int, old: int, new: int, old_skew: int,
    new_skew: int, maymove: bool, bad: int, addr_skew: int,
) -> tuple[int, int, int, int, int]:
    """Shrink, grow or keep the size in place (no new address). MREMAP_MAYMOVE only where
    the model says the call grows in place: a move would be to a kernel-chosen address,
    which the oracle refuses outside its arena."""
    page, old = spot(model, mode, pick, page, old)
    old_len, new_len = old * P + old_skew, new * P + new_skew
    flags = bad
    if maymove and grows_in_place(model, at(page), old_len, new_len):
        flags |= M
    return at(page) + addr_skew, old_len, new_len, flags, 0


def mremap_fixed_args(
    model: Any, mode: int, pick: int, page: int, old: int, new: int, dest: int, same: bool,
    dontunmap: bool, mismatch: bool, maymove: bool, dest_skew: int, new_skew: int,
) -> tuple[int, int, int, int, int]:
    """MREMAP_FIXED to a target in the window: a move of one or several VMAs (same length),
    a resize and move, or MREMAP_DONTUNMAP."""
    page, old = spot(model, mode, pick, page, old)
    if same or (dontunmap and not mismatch):
        new = old or 1
    flags = F | (M if maymove else 0) | (D if dontunmap else 0)
    return at(page), old * P, new * P + new_skew, flags, at(dest) + dest_skew


def mremap_dontunmap_hint_args(
    model: Any, mode: int, pick: int, page: int, npages: int, hint: int
) -> tuple[int, int, int, int, int]:
    """MREMAP_DONTUNMAP without MREMAP_FIXED: new_addr is a hint, taken when free (else
    MREMAP_FIXED is added, so the kernel never chooses an address outside the window)."""
    page, npages = spot(model, mode, pick, page, npages)
    length = max(npages, 1) * P
    flags = M | D
    if not hint_is_free(model, at(hint), length):
        flags |= F
    return at(page), length, length, flags, at(hint)


# ---------------------------------------------------------------------------------------------
# The fuzzer's generator


@dataclass(frozen=True, slots=True)
class Step:
    """One call of a sequence, with concrete arguments: ``func`` is a call of the scenario
    language, ``args`` its arguments (a str names a memfd of MEMFDS, None is no file),
    ``space`` the address space it runs on, ``bind`` the name fork() gives the new one."""

    func: str
    args: tuple[int | str | None, ...] = ()
    space: str = "main"
    bind: str | None = None

    def to_json(self) -> list[Any]:
        return [self.func, list(self.args), self.space, self.bind]

    @classmethod
    def from_json(cls, data: Sequence[Any]) -> Step:
        func, args, space, bind = data
        return cls(str(func), tuple(args), str(space), bind)


#: Relative weights of the operations of CallGenerator: mostly calls that split, merge,
#: move or copy VMAs.
DEFAULT_WEIGHTS: Mapping[str, int] = {
    "mmap_near": 14,  # MAP_FIXED (or NOREPLACE) over and next to existing VMAs
    "mmap": 5,
    "mprotect_near": 12,  # partial mprotect: ranges starting in or just before a VMA
    "mprotect": 3,
    "munmap_near": 5,
    "munmap": 2,
    "touch": 5,  # faults give anon_vmas, which decide merges
    "mremap_fixed": 8,  # moves
    "mremap_resize": 4,
    "mremap_dontunmap_hint": 2,
    "madvise_split": 8,  # advice that changes vm_flags
    "madvise": 3,
    "lock": 6,
    "brk": 2,
    "heap": 3,
    "fork": 2,
    "switch": 2,
    "exit": 1,
}


class CallGenerator:
    """Seeded sequences of Steps, built from the state of the models they run on.

    ``next_step(models)`` takes the live models by space name (the generator names them:
    ``main``, then ``c1``, ``c2``... as it forks) and returns the next call; run it on the
    models (and the host) before asking for the next one."""

    def __init__(self, seed: int, weights: Mapping[str, int] = DEFAULT_WEIGHTS) -> None:
        self.rng = random.Random(seed)
        self.ops = [op for op, weight in weights.items() if weight > 0]
        self.weights = [weights[op] for op in self.ops]
        self.current = "main"
        self.family = ["main"]
        self.forks = 0
        self.setup = self.rng.randint(1, 4)

    # -- drawing --------------------------------------------------------------------------

    def _int(self, bounds: tuple[int, int]) -> int:
        return self.rng.randint(*bounds)

    def _of(self, choices: Sequence[Any]) -> Any:
        return self.rng.choice(choices)

    def _near(self) -> tuple[int, int]:
        return self._int(TARGET_VMAS), self._int(TARGET_OFFSETS)

    def _near_length(self) -> int:
        return self._int(self._of(NEAR_LENGTHS))

    # -- steps ----------------------------------------------------------------------------

    def next_step(self, models: Mapping[str, Any]) -> Step:
        if self.setup > 0:
            self.setup -= 1
            return self._mmap(models[self.current], near=False, prots=SETUP_PROTS)
        while True:
            op = self.rng.choices(self.ops, self.weights)[0]
            step = self._build(op, models)
            if step is not None:
                return step

    def _build(self, op: str, models: Mapping[str, Any]) -> Step | None:
        if op == "switch":
            self.current = self._of(self.family)
            return None
        if op == "fork":
            return self._fork()
        if op == "exit":
            return self._exit()
        model = models[self.current]
        builder = getattr(self, "_" + op)
        step: Step = builder(model)
        return step

    def _call(self, func: str, *args: int | str | None) -> Step:
        return Step(func, tuple(args), self.current)

    def _fork(self) -> Step | None:
        if len(self.family) >= MAX_FAMILY:
            return None
        self.forks += 1
        child = f"c{self.forks}"
        step = Step("fork", (), self.current, child)
        self.family.append(child)
        return step

    def _exit(self) -> Step | None:
        if len(self.family) < 2:
            return None
        victim = self._of(self.family[1:])
        self.family.remove(victim)
        if self.current == victim:
            self.current = "main"
        return Step("exit", (), victim)

    def _mmap(self, model: Any, near: bool = False,
              prots: Sequence[int] = PROTS) -> Step:
        page = target_page(model, *self._near()) if near else self._int(PAGE_RANGE)
        addr, length, prot, flags, memfd, off = mmap_args(
            page, self._int(LENGTH_RANGE), self._of(prots), self._of(KINDS),
            self.rng.random() < 0.3, self._of(EXTRA), self._int(FILEOFF_RANGE),
        )
        return self._call("mmap", addr, length, prot, flags,
                          None if memfd is None else MEMFDS[memfd], off)

    def _mmap_near(self, model: Any) -> Step:
        return self._mmap(model, near=True)

    def _munmap(self, model: Any, near: bool = False) -> Step:
        page = target_page(model, *self._near()) if near else self._int(PAGE_RANGE)
        return self._call("munmap", at(page) + self._of(MUNMAP_SKEWS), self._int(UNMAP_PAGES) * P)

    def _munmap_near(self, model: Any) -> Step:
        return self._munmap(model, near=True)

    def _mprotect(self, model: Any, near: bool = False) -> Step:
        page = target_page(model, *self._near()) if near else self._int(PAGE_RANGE)
        npages = self._near_length() if near else self._int(UNMAP_PAGES)
        return self._call("mprotect", at(page), npages * P + self._of(MPROTECT_SKEWS),
                          self._of(PROTS))

    def _mprotect_near(self, model: Any) -> Step:
        return self._mprotect(model, near=True)

    def _touch(self, model: Any) -> Step:
        page = target_page(model, *self._near()) if self.rng.random() < 0.7 \
            else self._int(PAGE_RANGE)
        return self._call("touch", at(page) + 8, int(self.rng.random() < 0.5))

    def _madvise(self, model: Any, advices: Sequence[int] = ADVICES) -> Step:
        return self._call("madvise", *madvise_args(
            model, self._near(), self._near_length(), self._of(advices),
            self._of(MADVISE_SKEWS)))

    def _madvise_split(self, model: Any) -> Step:
        return self._madvise(model, SPLITTING_ADVICES)

    def _lock(self, model: Any) -> Step:
        func, args = lock_call(model, self._of(LOCK_OPS), self._near(), self._near_length(),
                               self._of(LOCK_SKEWS), self._of(MLOCK2_FLAGS), self._of(MCL))
        return self._call(func, *args)

    def _brk(self, model: Any) -> Step:
        return self._call("brk", heap_page(model, self._int(BREAK_RANGE)) + self._of(BRK_SKEWS))

    def _heap(self, model: Any) -> Step:
        addr = heap_page(model, self._int(HEAP_PAGE_RANGE))
        which = self.rng.randrange(4)
        if which == 0:
            return self._call("mmap", addr, self._int((1, 6)) * P, self._of(PROTS),
                              self._of(NEAR_HEAP_FLAGS), None, 0)
        if which == 1:
            return self._call("munmap", addr, self._int((1, 8)) * P)
        if which == 2:
            return self._call("mprotect", addr, self._int((1, 8)) * P, self._of(PROTS))
        return self._call("touch", addr + 8, int(self.rng.random() < 0.5))

    def _mremap_resize(self, model: Any) -> Step:
        return self._call("mremap", *mremap_resize_args(
            model, self._of(MODES), self._int(PICK_RANGE), self._int(PAGE_RANGE),
            self._int(OLD_PAGES), self._int(NEW_PAGES), self._of(LEN_SKEWS),
            self._of(LEN_SKEWS), self.rng.random() < 0.5, self._of(BAD_MREMAP_FLAGS),
            self._of(ADDR_SKEWS)))

    def _mremap_fixed(self, model: Any) -> Step:
        return self._call("mremap", *mremap_fixed_args(
            model, self._of(MODES), self._int(PICK_RANGE), self._int(PAGE_RANGE),
            self._int(OLD_PAGES), self._int(NEW_PAGES), self._int(DEST_RANGE),
            self.rng.random() < 0.5, self.rng.random() < 0.5, self._of(MISMATCH),
            self._of(FIXED_MAYMOVE), self._of(ADDR_SKEWS), self._of(LEN_SKEWS)))

    def _mremap_dontunmap_hint(self, model: Any) -> Step:
        return self._call("mremap", *mremap_dontunmap_hint_args(
            model, self._of(MODES), self._int(PICK_RANGE), self._int(PAGE_RANGE),
            self._int((1, 8)), self._int(DEST_RANGE)))
