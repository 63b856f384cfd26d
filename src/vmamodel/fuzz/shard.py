"""The fuzz task of a campaign: run the seeds of one shard, emit one record per seed.

A record is a JSON-ready dict: the seed, the calls run, a status (``ok``, ``diff``, or
``invalid`` when the oracle refused a generated call), the seconds it took, and where it ran:
the node, its kernel release and the host traits the model was configured with. A ``diff``
record carries the divergence and, unless shrinking is off, the shrunk steps and the scenario
file that reproduces them. Only these records and the shard's counts travel back.
"""

from __future__ import annotations

import dataclasses
import os
import platform
from dataclasses import dataclass
from typing import Any

from vmamodel.campaign import Shard, ShardContext
from vmamodel.fuzz import planted
from vmamodel.fuzz.lockstep import SequenceResult, run_sequence, run_steps
from vmamodel.fuzz.render import scenario_text
from vmamodel.fuzz.shrink import replay_divergence, shrink
from vmamodel.host.traits import host_model_kwargs

#: Changes whenever the same seed would generate another sequence: campaigns refuse to mix.
GENERATOR_VERSION = 1


class MixedKernels(RuntimeError):
    """A shard ran on a kernel other than the campaign's."""


@dataclass(frozen=True, slots=True)
class FuzzWork:
    """A shard's description: the seeds still to run and how."""

    seeds: tuple[int, ...]
    length: int
    kernel: str  # the campaign's kernel release
    allow_mixed_kernels: bool = False
    shrink: bool = True
    host: bool = True


def kernel_release() -> str:
    return platform.release()


def host_traits() -> dict[str, Any]:
    """host_model_kwargs() as JSON values (dataclasses as dicts)."""
    out: dict[str, Any] = {}
    for key, value in sorted(host_model_kwargs().items()):
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = dataclasses.asdict(value)
        out[key] = value
    return out


def run_fuzz_shard(shard: Shard, ctx: ShardContext) -> dict[str, int]:
    """The campaign task: every pending seed of the shard, until the deadline."""
    work: FuzzWork = shard.work
    release = kernel_release()
    if release != work.kernel and not work.allow_mixed_kernels:
        raise MixedKernels(f"node {platform.node()} runs kernel {release}, the campaign "
                           f"{work.kernel}; pass --allow-mixed-kernels to mix them")
    planted.install_from_env()
    where = {"kernel": release, "node": platform.node(), "pid": os.getpid(),
             "traits": host_traits() if work.host else {}}
    counts = {"seeds": 0, "calls": 0, "diffs": 0}
    for seed in work.seeds:
        if ctx.expired:
            break
        record = seed_record(run_sequence(seed, work.length, host=work.host), work)
        ctx.emit({**record, **where})
        counts["seeds"] += 1
        counts["calls"] += record["calls"]
        counts["diffs"] += record["status"] == "diff"
    return counts


def seed_record(result: SequenceResult, work: FuzzWork) -> dict[str, Any]:
    record: dict[str, Any] = {"seed": result.seed, "calls": len(result.steps),
                              "seconds": round(result.seconds, 4), "status": "ok"}
    if result.invalid is not None:
        record.update(status="invalid", invalid=result.invalid)
    divergence = result.divergence
    if divergence is None:
        return record
    record.update(status="diff", divergence=divergence.to_json())
    if not work.shrink:
        return record
    shrunk = shrink(result.steps, divergence, replay_divergence)
    host_results, again = run_steps(shrunk.steps)
    header = [
        f"vmamodel fuzz: seed {result.seed}, {work.length} calls a sequence",
        f"kernel {kernel_release()}; shrunk from {len(result.steps)} to {len(shrunk.steps)} "
        f"calls in {shrunk.attempts} replays",
        f"difference: {(again or shrunk.divergence).describe()}",
        "each call's expectation is the host kernel's result",
    ]
    record["shrunk"] = {
        "calls": len(shrunk.steps),
        "attempts": shrunk.attempts,
        "steps": [step.to_json() for step in shrunk.steps],
        "divergence": (again or shrunk.divergence).to_json(),
        "scenario": scenario_text(shrunk.steps, host_results, header),
    }
    return record
