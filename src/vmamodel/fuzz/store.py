"""A campaign directory: its metadata, append-only results per shard, and the failures.

Layout::

    DIR/campaign.json            what every result must share: sequence length, shard size,
                                 generator version; the kernel release(s) and host traits
    DIR/shards/SHARD.jsonl       one JSON record per seed run (vmamodel.fuzz.shard), appended
    DIR/failures/seed-N.vmas     the shrunk scenario of every difference

Shard ``k`` holds seeds ``[k * shard_size, (k + 1) * shard_size)``. A seed already recorded
is never run again, so an interrupted campaign resumes where it stopped and re-running a
finished shard adds nothing. Only the coordinator writes here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

META = "campaign.json"
FORMAT = 1


class CampaignError(Exception):
    """A campaign cannot continue as asked; the message says why and what to do."""


@dataclass
class Totals:
    seeds: int = 0
    calls: int = 0
    seconds: float = 0.0
    diffs: list[dict[str, Any]] = field(default_factory=list)
    invalid: int = 0
    kernels: set[str] = field(default_factory=set)

    def add(self, record: dict[str, Any]) -> None:
        self.seeds += 1
        self.calls += int(record["calls"])
        self.seconds += float(record.get("seconds", 0.0))
        self.invalid += record["status"] == "invalid"
        self.kernels.add(str(record.get("kernel", "")))
        if record["status"] == "diff":
            self.diffs.append(record)


class Campaign:
    """An open campaign directory (see the module docstring)."""

    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path = path
        self.meta = meta
        self._done: dict[str, set[int]] = {}

    # -- opening --------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, *, length: int, shard_size: int, generator: int,
             kernel: str, traits: dict[str, Any], allow_mixed_kernels: bool) -> Campaign:
        """Create the directory, or check that it was made with the same settings (a
        different length or shard size would make its records mean something else)."""
        root = Path(path)
        meta_path = root / META
        if not meta_path.exists():
            root.mkdir(parents=True, exist_ok=True)
            meta = {"format": FORMAT, "length": length, "shard_size": shard_size,
                    "generator": generator, "kernel": kernel, "kernels": [kernel],
                    "traits": traits, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                               time.gmtime())}
            campaign = cls(root, meta)
            campaign._save()
            return campaign
        meta = cls._load(meta_path)
        for key, value in (("length", length), ("shard_size", shard_size),
                           ("generator", generator)):
            if meta.get(key) != value:
                raise CampaignError(f"{meta_path}: this campaign was made with {key} "
                                    f"{meta.get(key)}, not {value}; use another directory")
        campaign = cls(root, meta)
        campaign.accept_kernel(kernel, allow_mixed_kernels)
        return campaign

    @staticmethod
    def _load(meta_path: Path) -> dict[str, Any]:
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise CampaignError(f"{meta_path}: not a campaign file ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise CampaignError(f"{meta_path}: not a campaign file of format {FORMAT}")
        return meta

    def _save(self) -> None:
        tmp = self.path / (META + ".tmp")
        tmp.write_text(json.dumps(self.meta, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.path / META)

    def accept_kernel(self, kernel: str, allow_mixed_kernels: bool) -> None:
        """Refuse results of another kernel than the campaign's, unless allowed."""
        kernels: list[str] = self.meta["kernels"]
        if kernel in kernels:
            return
        if not allow_mixed_kernels:
            raise CampaignError(
                f"{self.path / META}: this campaign ran on kernel {', '.join(kernels)}; "
                f"results from kernel {kernel} would mix kernels (pass --allow-mixed-kernels)")
        kernels.append(kernel)
        self._save()

    # -- shards ---------------------------------------------------------------------------

    @property
    def length(self) -> int:
        return int(self.meta["length"])

    @property
    def shard_size(self) -> int:
        return int(self.meta["shard_size"])

    def shard_key(self, index: int) -> str:
        first = index * self.shard_size
        return f"seeds-{first:09d}-{first + self.shard_size - 1:09d}"

    def shard_file(self, key: str) -> Path:
        return self.path / "shards" / f"{key}.jsonl"

    def done_seeds(self, key: str) -> set[int]:
        if key not in self._done:
            self._done[key] = {int(r["seed"]) for r in self._records(self.shard_file(key))}
        return self._done[key]

    def append(self, key: str, record: dict[str, Any]) -> Path | None:
        """Add one seed's record to its shard file (and its scenario to failures/); the
        path of the scenario written, if any. A seed already recorded (a retried shard)
        is not added again."""
        done = self.done_seeds(key)
        if int(record["seed"]) in done:
            return None
        done.add(int(record["seed"]))
        path = self.shard_file(key)
        path.parent.mkdir(exist_ok=True)
        with path.open("a+") as handle:
            handle.seek(0, 2)
            if handle.tell() and not _ends_with_newline(path):
                handle.write("\n")  # a line cut by a crash stays alone (and is skipped)
            handle.write(json.dumps(record, sort_keys=True) + "\n")
        shrunk = record.get("shrunk")
        if not shrunk:
            return None
        scenario = self.path / "failures" / f"seed-{record['seed']}.vmas"
        scenario.parent.mkdir(exist_ok=True)
        scenario.write_text(shrunk["scenario"])
        return scenario

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record of the campaign, shard by shard."""
        for path in sorted((self.path / "shards").glob("*.jsonl")):
            yield from self._records(path)

    @staticmethod
    def _records(path: Path) -> Iterator[dict[str, Any]]:
        if not path.exists():
            return
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short by an interrupted write
            if isinstance(record, dict) and "seed" in record:
                yield record

    def totals(self) -> Totals:
        totals = Totals()
        seen: set[int] = set()
        for record in self.records():
            if record["seed"] not in seen:
                seen.add(record["seed"])
                totals.add(record)
        return totals


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1) == b"\n"
