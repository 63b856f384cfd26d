"""Scenario files that open the built-in drivers (vmamodel.drivers.devices)."""

from __future__ import annotations

import errno

import pytest

from vmamodel.constants import O_RDONLY, O_RDWR
from vmamodel.drivers import devices, hpet
from vmamodel.drivers import refcount_good as good
from vmamodel.drivers.ledger import Ledger
from vmamodel.scenario import FileStore, HostBackend, ModelBackend, execute, parse


def run_model(text: str, profile: str | None = None):
    return execute(parse(text), ModelBackend(profile))


@pytest.mark.parametrize("path", sorted(devices.OPENERS))
def test_every_device_opens_and_maps_or_refuses_with_an_errno(path):
    flags = O_RDONLY if path == "/dev/hpet" else O_RDWR
    backend = ModelBackend()
    file = backend.open_file(path, flags, 0)
    assert file.f_op is not None
    space = backend.new_space()
    try:
        space.mmap(0x100000000000, 4096, 1, 0x11, file, 0)
    except OSError as exc:
        assert exc.errno  # a driver's refusal is an errno, never a crash
    assert path in backend.devices.used


def test_form_query_picks_the_old_form():
    backend = ModelBackend()
    assert isinstance(backend.open_file("/dev/hpet", O_RDONLY, 0).f_op, hpet.HpetFops)
    old = backend.open_file("/dev/hpet?form=old", O_RDONLY, 0)
    assert isinstance(old.f_op, hpet.HpetLegacyFops)
    assert devices.split_path("/dev/stm0?form=old&chans=3") == (
        "/dev/stm0", {"form": "old", "chans": "3"})


def test_opens_of_one_path_share_the_device():
    backend = ModelBackend()
    first = backend.open_file("/dev/good0", O_RDWR, 0)
    second = backend.open_file("/dev/good0", O_RDWR, 0)
    assert first is not second
    assert first.private_data is second.private_data
    assert isinstance(first.private_data, good.GoodDevice)
    assert backend.devices.ledgers() == [first.private_data.ledger]


def test_a_scenario_maps_a_driver_and_reports_its_ledger():
    run = run_model("""
        g = open("/dev/good0")
        a = mmap(BASE, 8K, PROT_READ, MAP_SHARED|MAP_FIXED, g, 0) = BASE
        mprotect(a, 4K, PROT_NONE) = 0
    """)
    assert run.error is None and not run.failed_expectations
    assert run.ledgers == ["ledger refcount_good: ref +2 (acquired by mapped 1, open 1; "
                           "released by none)"]


def test_driver_errno_reaches_the_scenario():
    run = run_model("""
        h = open("/dev/hpet") = -EINVAL
        h = open("/dev/hpet", O_RDONLY)
        mmap(BASE, 8K, PROT_READ, MAP_SHARED|MAP_FIXED, h, 0) = -EINVAL
        mmap(BASE, 4K, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_FIXED, h, 0) = -EACCES
    """)
    assert run.error is None and not run.failed_expectations
    assert run.steps[0].outcome.errno == errno.EINVAL


def test_the_profile_reaches_the_driver():
    text = """
        t = open("/dev/uio0")
        mmap(BASE, 64K, PROT_READ, MAP_SHARED|MAP_FIXED, t, 0)
    """
    assert run_model(text, "v4").steps[1].outcome.errno == errno.EINVAL
    assert run_model(text, "mainline").steps[1].outcome.errno == 0


def test_model_only_lines_are_found_statically():
    scenario = parse("""
        f = open("data", O_RDWR, 4K)
        h = open("/dev/hpet?form=old", O_RDONLY)
        m = memfd_create("m", 4K)
        s = open("/dev/stm0")
    """)
    assert scenario.model_only == [(3, "/dev/hpet?form=old"), (5, "/dev/stm0")]
    assert parse('f = open("/dev/hpet2")').model_only == []


def test_the_host_backend_refuses_a_device(tmp_path):
    backend = HostBackend(FileStore(tmp_path))
    try:
        run = execute(parse('h = open("/dev/hpet", O_RDONLY)'), backend)
    finally:
        backend.close()
    assert run.crashed
    assert "only in the model" in (run.steps[0].outcome.crash or "")


def test_unknown_device_is_enoent():
    with pytest.raises(OSError) as info:
        devices.Devices().open("/dev/nothing", O_RDWR)
    assert info.value.errno == errno.ENOENT


def test_ledger_summary_names_each_problem():
    ledger = Ledger("t")
    assert devices.ledger_summary(ledger) == "ledger t: balanced"
    ledger.release("pm", "close", 3)
    ledger.flag("NULL dereference", "close", 3)
    assert devices.ledger_summary(ledger) == (
        "ledger t: pm -1; 1 release(s) with nothing held; bug: NULL dereference in close "
        "(acquired by none; released by close 1)")
