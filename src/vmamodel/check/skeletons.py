"""The scenario skeletons: one short call sequence for every place where a mapping's
lifecycle can take a different path, sized to what the driver accepts.

A skeleton is a tuple of :class:`Step` s on the driver's file ``fd`` (opened first) and on
files and address spaces the steps bind (``m``: a memfd, ``up``: the driver's file under a
stacked legacy ``.mmap``, ``child``: a fork). Every run ends with the exit of each live
address space, so that the driver's state can be compared once every mapping is gone.

The sizes come from :class:`Shape`, found by probing the driver: the smallest length and the
first (shared/private, writable/read-only) combination it maps, and a longer length when it
accepts one (for splits).
"""

from __future__ import annotations

import errno as E
import random
from dataclasses import dataclass

from vmamodel.constants import (
    MADV_DONTFORK,
    MADV_DONTNEED,
    MADV_RANDOM,
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_PRIVATE,
    MAP_SHARED,
    MREMAP_DONTUNMAP,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    PAGE_SIZE,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
)
from vmamodel.host.arena import ARENA_BASE

Arg = int | str  # str: a name bound by an earlier step ("fd", "m", "up")
BASE = ARENA_BASE
P = PAGE_SIZE
RW = PROT_READ | PROT_WRITE
#: (flags, prot) in the order a probe tries them; the first the driver maps is the primary.
VARIANTS: tuple[tuple[str, int, int], ...] = (
    ("shared-rw", MAP_SHARED, RW),
    ("shared-ro", MAP_SHARED, PROT_READ),
    ("private-rw", MAP_PRIVATE, RW),
    ("private-ro", MAP_PRIVATE, PROT_READ),
)
PROBE_PAGES = (1, 2, 3, 4, 8, 16)
#: An offset past any device's size when the file has none (chardevs report 0).
FAR_PAGES = 1 << 18


@dataclass(frozen=True, slots=True)
class Step:
    """One call: ``func`` with ``args`` on address space ``space``; ``bind`` names its
    result (a file or an address space)."""

    func: str
    args: tuple[Arg, ...]
    space: str = "main"
    bind: str | None = None

    def uses(self) -> set[str]:
        names = {a for a in self.args if isinstance(a, str)}
        return names | ({self.space} if self.space != "main" else set())


@dataclass(frozen=True, slots=True)
class Skeleton:
    name: str
    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class Shape:
    """What the driver maps: ``unit`` pages with ``flags``/``prot``; ``long`` pages (>= 2)
    when some longer length works too, for splits; ``size`` the file's size in pages."""

    unit: int
    flags: int
    prot: int
    long: int | None
    size: int


def at(page: int) -> int:
    return BASE + page * P


def mmap(page: int, pages: int, off: int, shape: Shape, *, prot: int | None = None,
         flags: int | None = None, file: str = "fd", space: str = "main") -> Step:
    """MAP_FIXED ``pages`` pages of ``file`` at ``page``, file offset ``off`` pages."""
    return Step("mmap", (at(page), pages * P, shape.prot if prot is None else prot,
                         (shape.flags if flags is None else flags) | MAP_FIXED, file, off * P),
                space)


def anon(page: int, pages: int) -> Step:
    return Step("mmap", (at(page), pages * P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
                         0))


def other_prot(shape: Shape) -> int:
    return PROT_NONE if shape.prot != PROT_NONE else PROT_READ


def skeletons(shape: Shape) -> list[Skeleton]:
    """Every skeleton for a driver of this shape (see docs/check.md for the list)."""
    u, s = shape.unit, shape.long
    out: list[Skeleton] = []

    def add(name: str, *steps: Step) -> None:
        out.append(Skeleton(name, steps))

    for name, flags, prot in VARIANTS:
        add(f"alone-{name}", mmap(0, u, 0, shape, prot=prot, flags=flags))
    add("offset-nonzero", mmap(0, u, u, shape))
    add("offset-past-size", mmap(0, u, max(shape.size, FAR_PAGES), shape))
    add("merge-prev", mmap(0, u, 0, shape), mmap(u, u, u, shape))
    add("merge-next", mmap(u, u, u, shape), mmap(0, u, 0, shape))
    add("merge-both", mmap(0, u, 0, shape), mmap(2 * u, u, 2 * u, shape), mmap(u, u, u, shape))
    add("neighbours-incompatible", mmap(0, u, 0, shape, prot=other_prot(shape)),
        mmap(2 * u, u, 9 * u, shape), mmap(u, u, u, shape))
    add("neighbours-other-file", anon(0, u), anon(2 * u, u), mmap(u, u, 0, shape))
    add("fixed-over-same", mmap(0, u, 0, shape), mmap(0, u, 0, shape))
    add("fixed-over-other", Step("memfd_create", ("other", 1 << 20), bind="m"),
        mmap(0, u, 0, shape, file="m", flags=MAP_SHARED, prot=RW), mmap(0, u, 0, shape))
    add("other-over-driver", mmap(0, u, 0, shape), anon(0, u))
    add("second-file", Step("open", (), bind="fd2"), mmap(0, u, 0, shape),
        mmap(u, u, u, shape, file="fd2"), mmap(0, u, 0, shape, file="fd2"))
    add("mremap-move", mmap(0, u, 0, shape),
        Step("mremap", (at(0), u * P, u * P, MREMAP_MAYMOVE | MREMAP_FIXED, at(32 * u))))
    add("mremap-move-merge", mmap(0, u, 0, shape), mmap(2 * u, u, u, shape),
        Step("mremap", (at(0), u * P, u * P, MREMAP_MAYMOVE | MREMAP_FIXED, at(u))))
    add("mremap-grow", mmap(0, u, 0, shape), Step("mremap", (at(0), u * P, 2 * u * P, 0, 0)))
    add("mremap-grow-move", mmap(0, u, 0, shape), anon(u, u),
        Step("mremap", (at(0), u * P, 2 * u * P, MREMAP_MAYMOVE, 0)))
    add("mremap-dontunmap", mmap(0, u, 0, shape),
        Step("mremap", (at(0), u * P, u * P,
                        MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, at(32 * u))))
    add("madvise-dontneed", mmap(0, u, 0, shape), Step("madvise", (at(0), u * P, MADV_DONTNEED)))
    add("madvise-dontfork", mmap(0, u, 0, shape), Step("madvise", (at(0), u * P, MADV_DONTFORK)),
        Step("fork", (), bind="child"), Step("exit", (), space="child"))
    add("fork-child-exit", mmap(0, u, 0, shape), Step("fork", (), bind="child"),
        Step("exit", (), space="child"))
    add("fork-parent-exit", mmap(0, u, 0, shape), Step("fork", (), bind="child"),
        Step("exit", ()))
    add("stacked", Step("stacked", ("fd", 0), bind="up"), mmap(0, u, 0, shape, file="up"))
    add("stacked-merge", Step("stacked", ("fd", 0), bind="up"), mmap(0, u, 0, shape, file="up"),
        mmap(u, u, u, shape, file="up"))
    add("stacked-outer-fails", Step("stacked", ("fd", E.EINVAL), bind="up"),
        mmap(0, u, 0, shape, file="up"))
    if s is not None:
        out.extend(_split_skeletons(shape, s))
    return out


def _split_skeletons(shape: Shape, s: int) -> list[Skeleton]:
    """Skeletons that need a mapping of ``s`` >= 2 pages: splits and partial changes."""
    other = other_prot(shape)
    last = s - 1
    mid = 1 if s > 2 else 0
    big = mmap(0, s, 0, shape)
    return [
        Skeleton("split-start", (big, Step("mprotect", (at(0), P, other)))),
        Skeleton("split-end", (big, Step("mprotect", (at(last), P, other)))),
        Skeleton("split-middle-remerge", (big, Step("mprotect", (at(mid), P, other)),
                                          Step("mprotect", (at(0), s * P, shape.prot)))),
        Skeleton("unmap-part", (big, Step("munmap", (at(mid), P)), Step("munmap", (at(0), P)))),
        Skeleton("fixed-over-part", (big, mmap(mid, 1, mid, shape))),
        Skeleton("other-over-part", (big, anon(mid, 1))),
        Skeleton("mremap-shrink", (big, Step("mremap", (at(0), s * P, (s - 1) * P, 0, 0)))),
        Skeleton("madvise-split", (big, Step("madvise", (at(0), P, MADV_RANDOM)))),
        Skeleton("mlock-part", (big, Step("mlock", (at(mid), P)), Step("munlock", (at(mid), P)))),
        Skeleton("fork-child-unmap-part", (big, Step("fork", (), bind="child"),
                                           Step("munmap", (at(mid), P), space="child"),
                                           Step("exit", (), space="child"))),
    ]


def random_skeleton(shape: Shape, rng: random.Random, index: int) -> Skeleton:
    """A random sequence of 2 to 6 calls over the first 8 units of the arena."""
    u = shape.unit
    steps: list[Step] = []
    forked = False
    for _ in range(rng.randint(2, 6)):
        page = rng.randrange(0, 8) * u
        roll = rng.random()
        if roll < 0.4 or not steps:
            off = page if rng.random() < 0.7 else rng.randrange(0, 16) * u
            prot = shape.prot if rng.random() < 0.8 else other_prot(shape)
            steps.append(mmap(page, u, off, shape, prot=prot))
        elif roll < 0.5:
            steps.append(anon(page, u))
        elif roll < 0.6:
            steps.append(Step("mprotect", (at(page), rng.randint(1, u) * P, other_prot(shape))))
        elif roll < 0.7:
            steps.append(Step("munmap", (at(page), rng.randint(1, u) * P)))
        elif roll < 0.8:
            dest = rng.randrange(0, 8) * u
            steps.append(Step("mremap", (at(page), u * P, u * P,
                                         MREMAP_MAYMOVE | MREMAP_FIXED, at(dest))))
        elif roll < 0.9 and not forked:
            forked = True
            steps += [Step("fork", (), bind="child"), Step("exit", (), space="child")]
        else:
            steps.append(Step("madvise", (at(page), u * P, MADV_DONTNEED)))
    return Skeleton(f"random-{index}", tuple(steps))
