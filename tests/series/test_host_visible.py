"""What user space can see of the seed path, judged by the host kernel under every profile.

The series changes what drivers may do, not what a memfd, a disk file or anonymous memory
looks like: every rule below holds on the host (6.18) and on the model under 6.18, v4 and
mainline alike (profiles.py: "user-visible behaviour that the host can judge is the same
under every profile").
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vmamodel import AddressSpace, HostAddressSpace, memfd_create
from vmamodel.constants import (
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_PRIVATE,
    MAP_SHARED,
    MAP_SHARED_VALIDATE,
    MAP_SYNC,
)
from vmamodel.host import host_model_kwargs
from vmamodel.scenario import FileStore, HostBackend, ModelBackend, execute, options_for, parse_file
from vmamodel.scenario.compare import compare

from .util import RO, RW, P, at, errno_of

EXAMPLE = Path(__file__).parents[2] / "examples" / "mmap_prepare.vmas"
PROFILES = ["6.18", "v4", "mainline"]
SHARED_NOREPLACE = MAP_SHARED | MAP_FIXED_NOREPLACE


@pytest.fixture(params=[pytest.param("host", marks=pytest.mark.host), *PROFILES])
def space(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The host kernel, or the model (configured like the host) under one profile."""
    if request.param == "host":
        with HostAddressSpace() as host:
            yield host
    else:
        yield AddressSpace(**{**host_model_kwargs(), "profile": request.param, "debug": True})


def lines(mm: Any) -> list[tuple[int, int, str, int, str]]:
    """(first page, end page, perms, offset, name) of each VMA in the test area."""
    out = []
    for line in mm.maps().splitlines():
        fields = line.split(maxsplit=5)
        start, end = (int(x, 16) for x in fields[0].split("-"))
        name = fields[5] if len(fields) > 5 else ""
        out.append(((start - at(0)) // P, (end - at(0)) // P, fields[1], int(fields[2], 16),
                    name))
    return out


def vmflags(mm: Any) -> list[str]:
    return [line.split(":", 1)[1].split() for line in mm.smaps().splitlines()
            if line.startswith("VmFlags:")]


@pytest.mark.host
@pytest.mark.parametrize("profile", PROFILES)
def test_the_seed_example_is_the_same_on_every_profile_and_on_the_host(profile, tmp_path):
    scenario = parse_file(EXAMPLE)
    options = options_for(scenario)
    files = FileStore(tmp_path)
    model = execute(scenario, ModelBackend(profile, files, config=host_model_kwargs()), options)
    host_backend = HostBackend(files)
    try:
        host = execute(scenario, host_backend, options)
    finally:
        host_backend.close()
    assert model.error is None and not model.failed_expectations
    assert compare(model, host) == []


def test_a_range_between_two_memfd_mappings_merges_both_ways(space):
    fd = memfd_create("both", 16 * P)
    space.mmap(at(0), 2 * P, RW, SHARED_NOREPLACE, fd, 0)
    space.mmap(at(3), 2 * P, RW, SHARED_NOREPLACE, fd, 3 * P)
    space.mmap(at(2), P, RW, SHARED_NOREPLACE, fd, 2 * P)
    assert lines(space) == [(0, 5, "rw-s", 0, "/memfd:both (deleted)")]


def test_map_fixed_over_the_middle_replaces_it(space):
    fd = memfd_create("middle", 64 * P)
    space.mmap(at(0), 4 * P, RW, SHARED_NOREPLACE, fd, 0)
    space.mmap(at(1), 2 * P, RO, MAP_SHARED | MAP_FIXED, fd, 40 * P)
    assert [(s, e, perms, off) for s, e, perms, off, _ in lines(space)] == [
        (0, 1, "rw-s", 0), (1, 3, "r--s", 40 * P), (3, 4, "rw-s", 3 * P)]


def test_private_memfd_mapping_is_accounted_and_stays_apart(space):
    fd = memfd_create("private", 16 * P)
    space.mmap(at(0), P, RW, SHARED_NOREPLACE, fd, 0)
    space.mmap(at(1), P, RW, MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd, P)
    assert [perms for _, _, perms, _, _ in lines(space)] == ["rw-s", "rw-p"]
    shared, private = vmflags(space)
    assert "ac" not in shared and "ac" in private and "sh" in shared


def test_shared_anonymous_memory_is_a_shmem_file_of_its_own(space):
    space.mmap(at(0), 2 * P, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE)
    space.mmap(at(2), 2 * P, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE)
    assert [(s, e, name) for s, e, _, _, name in lines(space)] == [
        (0, 2, "/dev/zero (deleted)"), (2, 4, "/dev/zero (deleted)")]
    assert vmflags(space) == [["rd", "wr", "sh", "mr", "mw", "me", "ms"]] * 2


@pytest.mark.parametrize(
    ("length", "flags", "offset", "err"),
    [
        (P, MAP_SHARED_VALIDATE | MAP_FIXED | MAP_SYNC, 0, errno.EOPNOTSUPP),
        (P, MAP_SHARED | MAP_FIXED, 100, errno.EINVAL),
        (0, MAP_SHARED | MAP_FIXED, 0, errno.EINVAL),
        (P, MAP_FIXED, 0, errno.EINVAL),  # neither shared nor private
    ],
)
def test_memfd_errno_before_any_hook(space, length, flags, offset, err):
    fd = memfd_create("errno", 16 * P)
    space.mmap(at(0), 2 * P, RW, SHARED_NOREPLACE, fd, 0)
    before = space.maps()
    assert errno_of(lambda: space.mmap(at(0), length, RO, flags, fd, offset)) == err
    assert space.maps() == before


def test_map_fixed_memfd_over_anonymous_memory(space):
    space.mmap(at(0), 4 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE)
    fd = memfd_create("over", 16 * P)
    space.mmap(at(1), 2 * P, RW, MAP_SHARED | MAP_FIXED, fd, 0)
    assert [(s, e, perms, name) for s, e, perms, _, name in lines(space)] == [
        (0, 1, "rw-p", ""), (1, 3, "rw-s", "/memfd:over (deleted)"), (3, 4, "rw-p", "")]
