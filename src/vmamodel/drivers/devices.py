"""The built-in devices a scenario can open by path: ``fd = open("/dev/hpet", O_RDONLY)``.

Each path names one device of one driver model; every ``open`` of it makes a new struct file
of that same device, so its ledger adds up over the whole run. A ``?form=...`` suffix picks
the driver's old (``.mmap``) form, or AFS's ``legacy`` / ``buggy_prepare`` forms:
``open("/dev/stm0?form=old")``. Only the model has these devices; the host kernel has none.

========================================================  =====================================
path                                                      device
========================================================  =====================================
``/dev/hpet``                                             hpet (open read-only)
``/dev/mtd0``                                             mtdchar (MMU: every mmap is ENODEV)
``/dev/open-dice0``                                       open-dice, 2-page reserved region
``/dev/stm0``                                             stm, one channel (``?chans=N``)
``/dev/bus/vme/m0``, ``/dev/bus/vme/s1``                  vme_user master and slave minors
``/sys/bus/vmbus/devices/vmbus0/channels/0/ring``         hv vmbus ring, 8 pages
``/dev/uio0``                                             uio + TCMU, 16 pages from offset 0
``/dev/uio1``                                             uio_hv_generic: map 0 is the ring
``/afs/cell/file``                                        AFS file of 1 MiB
``/dev/good0``, ``/dev/bad0``                             the teaching pair (refcount_good/bad)
========================================================  =====================================
"""

from __future__ import annotations

import errno as E
import importlib
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from vmamodel.drivers import afs, hpet, hv_vmbus, mtdchar, open_dice, stm, tcmu, uio, vme_user
from vmamodel.drivers import refcount_bad as bad
from vmamodel.drivers import refcount_good as good
from vmamodel.drivers.common import fail
from vmamodel.drivers.ledger import Ledger
from vmamodel.file import File

RING_PATH = "/sys/bus/vmbus/devices/vmbus0/channels/0/ring"
TCMU_PAGES = 16

Opener = Callable[["Devices", int, dict[str, str]], File]


def _form(query: dict[str, str], default: str = "new") -> str:
    return query.get("form", default)


def _hpet(devices: Devices, flags: int, query: dict[str, str]) -> File:
    return hpet.open_device(devices.hpet_device, flags, form=_form(query))


def _mtd(devices: Devices, flags: int, query: dict[str, str]) -> File:
    return mtdchar.open_device(devices.mtd_device, flags, form=_form(query))


def _dice(devices: Devices, flags: int, query: dict[str, str]) -> File:
    return open_dice.open_device(devices.dice_device, flags, form=_form(query))


def _stm(devices: Devices, flags: int, query: dict[str, str]) -> File:
    chans = int(query.get("chans", "1"))
    return stm.open_device(devices.stm_device, nr_chans=chans, flags=flags, form=_form(query))


def _vme(minor: int) -> Opener:
    def opener(devices: Devices, flags: int, query: dict[str, str]) -> File:
        return vme_user.open_device(devices.vme_bridge, minor, flags, form=_form(query))

    return opener


def _ring(devices: Devices, flags: int, query: dict[str, str]) -> File:
    return hv_vmbus.open_ring(devices.hv(_form(query)).channel, flags)


def _tcmu(devices: Devices, flags: int, query: dict[str, str]) -> File:
    return uio.open_device(devices.tcmu_uio(_form(query)), flags)


def _hv_uio(devices: Devices, flags: int, query: dict[str, str]) -> File:
    return uio.open_device(devices.hv(_form(query)).uio, flags)


def _afs(devices: Devices, flags: int, query: dict[str, str]) -> File:
    return afs.open_file(devices.afs_vnode, flags, form=_form(query))


def _good(devices: Devices, flags: int, query: dict[str, str]) -> File:
    return good.open_device(devices.good_device, flags)


def _bad(devices: Devices, flags: int, query: dict[str, str]) -> File:
    return bad.open_device(devices.bad_device, flags)


OPENERS: dict[str, Opener] = {
    "/dev/hpet": _hpet,
    "/dev/mtd0": _mtd,
    "/dev/open-dice0": _dice,
    "/dev/stm0": _stm,
    "/dev/bus/vme/m0": _vme(0),
    "/dev/bus/vme/s1": _vme(1),
    RING_PATH: _ring,
    "/dev/uio0": _tcmu,
    "/dev/uio1": _hv_uio,
    "/afs/cell/file": _afs,
    "/dev/good0": _good,
    "/dev/bad0": _bad,
}


#: ``package.module:factory`` - a driver outside the package, opened by calling ``factory()``.
FACTORY_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class FactoryError(ValueError):
    """A ``module:factory`` that cannot be imported or called."""


def is_factory_path(path: str) -> bool:
    """Whether ``path`` names a driver factory (``package.module:factory``)."""
    return bool(FACTORY_RE.match(path))


def load_factory(spec: str) -> Callable[[], object]:
    """Import ``package.module:factory`` (the current directory first, as ``python -m`` does)
    and return the callable; raises :class:`FactoryError`."""
    if not is_factory_path(spec):
        raise FactoryError(f"{spec!r} is not 'package.module:factory'")
    module_name, attr = spec.split(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: object = importlib.import_module(module_name)
    except ImportError as err:
        raise FactoryError(f"{spec}: cannot import {module_name!r}: {err}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise FactoryError(f"{spec}: {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise FactoryError(f"{spec}: {attr!r} is not callable")
    return obj


def open_factory(spec: str) -> File:
    """A fresh file from a driver factory; it must return a :class:`~vmamodel.file.File`."""
    file = load_factory(spec)()
    if not isinstance(file, File):
        raise FactoryError(f"{spec}: the factory returned {type(file).__name__}, not a File")
    return file


def split_path(path: str) -> tuple[str, dict[str, str]]:
    """``"/dev/stm0?form=old&chans=2"`` -> ``("/dev/stm0", {"form": "old", "chans": "2"})``."""
    parts = urlsplit(path)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    return parts.path, query


def is_device_path(path: str) -> bool:
    """Whether ``path`` names one of the built-in devices (with or without a query)."""
    return split_path(path)[0] in OPENERS


def _vme_bridge() -> vme_user.VmeUserBridge:
    return vme_user.VmeUserBridge(images={
        0: vme_user.VmeImage(vme_user.MASTER_MINOR, vme_user.VmeResource()),
        1: vme_user.VmeImage(vme_user.SLAVE_MINOR, vme_user.VmeResource(is_master=False)),
    })


@dataclass
class Devices:
    """One run's devices, made on first use and shared by every open of their path."""

    hpet_device: hpet.HpetDevice = field(default_factory=hpet.HpetDevice)
    mtd_device: mtdchar.MtdDevice = field(default_factory=mtdchar.MtdDevice)
    dice_device: open_dice.OpenDiceDevice = field(default_factory=open_dice.OpenDiceDevice)
    stm_device: stm.StmDevice = field(default_factory=stm.StmDevice)
    vme_bridge: vme_user.VmeUserBridge = field(default_factory=_vme_bridge)
    tcmu_device: tcmu.TcmuDevice = field(
        default_factory=lambda: tcmu.TcmuDevice(mmap_pages=TCMU_PAGES))
    afs_vnode: afs.AfsVnode = field(default_factory=lambda: afs.AfsVnode(afs.AfsVolume()))
    good_device: good.GoodDevice = field(default_factory=good.GoodDevice)
    bad_device: bad.BadDevice = field(default_factory=bad.BadDevice)
    _hv: dict[str, hv_vmbus.HvUioDevice] = field(default_factory=dict)
    _tcmu_uio: dict[str, uio.UioDevice] = field(default_factory=dict)
    used: list[str] = field(default_factory=list)

    def hv(self, form: str) -> hv_vmbus.HvUioDevice:
        """uio_hv_generic probed with the ring callback of ``form`` (one channel per form,
        shared by its ring file and /dev/uio1)."""
        if form not in self._hv:
            self._hv[form] = hv_vmbus.hv_uio_probe(hv_vmbus.VmbusChannel(), form=form)
        return self._hv[form]

    def tcmu_uio(self, form: str) -> uio.UioDevice:
        if form not in self._tcmu_uio:
            self._tcmu_uio[form] = tcmu.tcmu_uio_device(self.tcmu_device, form=form)
        return self._tcmu_uio[form]

    def open(self, path: str, flags: int) -> File:
        """open(2) of a built-in device; ENOENT for any other path."""
        name, query = split_path(path)
        opener = OPENERS.get(name)
        if opener is None:
            raise fail(E.ENOENT, f"no built-in device {name!r}")
        file = opener(self, flags, query)
        if name not in self.used:
            self.used.append(name)
        return file

    def ledgers(self) -> list[Ledger]:
        """The ledgers of the counting devices this run opened, in order of first use."""
        by_path = {
            "/dev/stm0": self.stm_device.ledger,
            "/dev/bus/vme/m0": self.vme_bridge.ledger,
            "/dev/bus/vme/s1": self.vme_bridge.ledger,
            "/dev/uio0": self.tcmu_device.ledger,
            "/afs/cell/file": self.afs_vnode.ledger,
            "/dev/good0": self.good_device.ledger,
            "/dev/bad0": self.bad_device.ledger,
        }
        out: list[Ledger] = []
        for name in self.used:
            ledger = by_path.get(name)
            if ledger is not None and all(ledger is not seen for seen in out):
                out.append(ledger)
        return out


def ledger_summary(ledger: Ledger) -> str:
    """One line: ``ledger refcount_bad: ref +1 (acquired by mmap_prepare 2, released by
    close 1)`` or ``ledger stm: balanced``; flags and underflows are named."""
    balance = {name: n for name, n in ledger.balance().items() if n}
    problems = [f"{name} {n:+d}" for name, n in sorted(balance.items())]
    if ledger.double_releases():
        problems.append(f"{len(ledger.double_releases())} release(s) with nothing held")
    problems.extend(f"bug: {flag.message} in {flag.cause}" for flag in ledger.flags())
    if not problems:
        return f"ledger {ledger.name}: balanced"
    acquired = ", ".join(f"{c} {n}" for c, n in sorted(ledger.causes("acquire").items()))
    released = ", ".join(f"{c} {n}" for c, n in sorted(ledger.causes("release").items()))
    return (f"ledger {ledger.name}: {'; '.join(problems)} (acquired by {acquired or 'none'}; "
            f"released by {released or 'none'})")
