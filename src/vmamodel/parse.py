"""Parsers for /proc/PID/maps and /proc/PID/smaps text (fs/proc/task_mmu.c, x86-64).

The maps line layout relied on (``show_vma_header_prefix`` + ``show_map_vma``):

- ``start-end perms offset MM:mm inode`` separated by single spaces; the hex fields are
  zero-padded to at least 8 digits (the vsyscall page prints 16), dev fields to 2;
- then always one space after the inode;
- then, only when the VMA has a name, padding to column 72 plus one more space (``seq_pad``),
  so the name starts at index 73; a prefix of 72 characters or more gets no padding but still
  the one space;
- the name is the ``seq_path`` text with ``\\n`` escaped as ``\\012`` (and nothing else
  escaped); an unlinked file has the ``" (deleted)"`` suffix from ``d_path``.

An smaps block is that header line followed by ``Key:   N kB`` / ``Key:   N`` lines and a final
``VmFlags: rd wr ...`` line (bit order, two-letter mnemonics, one trailing space).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from vmamodel.constants import VM, VM_MNEMONICS

__all__ = ["MapsEntry", "SmapsEntry", "parse_maps", "parse_maps_line", "parse_smaps"]

#: (show_vma_header_prefix) seq_setwidth(m, 25 + sizeof(void *) * 6 - 1) on 64-bit.
NAME_PAD_WIDTH = 72
DELETED_SUFFIX = " (deleted)"
#: How show_map_vma prints a prctl(PR_SET_VMA_ANON_NAME) name: anonymous memory, shared
#: anonymous memory.
ANON_NAME_FORMATS = ("[anon:", "[anon_shmem:")

_HEADER_RE = re.compile(
    r"(?P<start>[0-9a-f]{8,16})-(?P<end>[0-9a-f]{8,16}) (?P<perms>[-r][-w][-x][ps]) "
    r"(?P<offset>[0-9a-f]{8,16}) (?P<major>[0-9a-f]{2,}):(?P<minor>[0-9a-f]{2,}) "
    r"(?P<inode>[0-9]+) "
)
_MNEMONIC_BITS: dict[str, int] = {name: bit for bit, name in VM_MNEMONICS.items() if name}
_PKEY_SHIFT = 32
_PKEY_BITS = 4


def unescape_name(text: str) -> str:
    """Undo seq_path's escaping: only the newline is escaped (as ``\\012``)."""
    return text.replace("\\012", "\n")


def escape_name(name: str) -> str:
    """seq_path's escaping of a name for maps: newline becomes ``\\012``."""
    return name.replace("\n", "\\012")


@dataclass(frozen=True, slots=True)
class MapsEntry:
    """One /proc/PID/maps line. ``name`` is unescaped and keeps a ``" (deleted)"`` suffix."""

    start: int
    end: int
    perms: str
    offset: int
    dev: tuple[int, int]
    inode: int
    name: str
    line: str

    @property
    def deleted(self) -> bool:
        """The name carries d_path's " (deleted)" suffix (unlinked file, memfd, shared anon)."""
        return self.name.endswith(DELETED_SUFFIX)

    @property
    def anon_name(self) -> str | None:
        """The anonymous VMA name of an ``[anon:NAME]`` or ``[anon_shmem:NAME]`` line (such
        names cannot hold brackets, so the text is unambiguous), else None."""
        for prefix in ANON_NAME_FORMATS:
            if self.name.startswith(prefix) and self.name.endswith("]"):
                return self.name[len(prefix):-1]
        return None

    @property
    def shared(self) -> bool:
        """The ``s`` of perms: VM_MAYSHARE (not VM_SHARED)."""
        return self.perms[3] == "s"

    @property
    def has_file(self) -> bool:
        """Only file VMAs print a device/inode; anonymous ones print ``00:00 0``."""
        return self.inode != 0 or self.dev != (0, 0)

    @property
    def pages(self) -> int:
        return (self.end - self.start) >> 12

    def format(self) -> str:
        """Rebuild the kernel's text of this entry (without the newline)."""
        return format_maps_line(
            self.start, self.end, self.perms, self.offset, self.dev, self.inode, self.name
        )


def format_maps_line(
    start: int, end: int, perms: str, offset: int, dev: tuple[int, int], inode: int, name: str
) -> str:
    """The maps line show_map_vma prints for these fields (``name`` unescaped, "" for none)."""
    prefix = f"{start:08x}-{end:08x} {perms} {offset:08x} {dev[0]:02x}:{dev[1]:02x} {inode} "
    if not name:
        return prefix
    return prefix.ljust(NAME_PAD_WIDTH) + " " + escape_name(name)


def parse_maps_line(line: str) -> MapsEntry:
    """Parse one maps line (with or without its newline). Raises ValueError if malformed."""
    line = line.removesuffix("\n")
    match = _HEADER_RE.match(line)
    if match is None:
        raise ValueError(f"not a maps line: {line!r}")
    prefix_end = match.end()  # index just after the one space that follows the inode
    if len(line) == prefix_end:
        name = ""
    else:
        name_start = max(prefix_end, NAME_PAD_WIDTH) + 1
        padding = line[prefix_end:name_start]
        if len(line) <= name_start or padding.strip(" "):
            raise ValueError(f"bad name padding in maps line: {line!r}")
        name = unescape_name(line[name_start:])
    return MapsEntry(
        start=int(match["start"], 16),
        end=int(match["end"], 16),
        perms=match["perms"],
        offset=int(match["offset"], 16),
        dev=(int(match["major"], 16), int(match["minor"], 16)),
        inode=int(match["inode"]),
        name=name,
        line=line,
    )


def parse_maps(text: str) -> list[MapsEntry]:
    """Parse /proc/PID/maps text. Names never contain a raw newline (seq_path escapes it)."""
    return [parse_maps_line(line) for line in text.split("\n") if line]


@dataclass(frozen=True, slots=True)
class SmapsEntry:
    """One /proc/PID/smaps block: the header, the numeric fields, and VmFlags.

    ``fields`` maps each ``Key`` to its number as printed (kB for ``... kB`` lines).
    ``vm_flag_names`` are the VmFlags mnemonics in printed order; ``vm_flags`` is the VM value
    they encode, plus the protection-key bits taken from ``ProtectionKey`` (the pkey bits have
    no mnemonic). ``unknown_flags`` counts ``??`` entries (bits the kernel has no name for).
    """

    header: MapsEntry
    fields: dict[str, int] = field(hash=False)
    vm_flag_names: tuple[str, ...]
    vm_flags: VM
    unknown_flags: int = 0

    @property
    def start(self) -> int:
        return self.header.start

    @property
    def end(self) -> int:
        return self.header.end

    @property
    def name(self) -> str:
        return self.header.name


def vm_flags_from_names(names: tuple[str, ...] | list[str], pkey: int = 0) -> VM:
    """The VM bits of VmFlags mnemonics (VM_MNEMONICS) and a protection key."""
    value = 0
    for name in names:
        if name == "??":
            continue
        bit = _MNEMONIC_BITS.get(name)
        if bit is None:
            raise ValueError(f"unknown VmFlags mnemonic {name!r}")
        value |= 1 << bit
    value |= (pkey & ((1 << _PKEY_BITS) - 1)) << _PKEY_SHIFT
    return VM(value)


def _parse_field(line: str) -> tuple[str, int]:
    key, sep, rest = line.partition(":")
    if not sep:
        raise ValueError(f"not an smaps field: {line!r}")
    value = rest.strip().removesuffix(" kB")
    try:
        return key, int(value)
    except ValueError:
        raise ValueError(f"non-numeric smaps field: {line!r}") from None


def _finish_block(header: MapsEntry, body: list[str]) -> SmapsEntry:
    fields: dict[str, int] = {}
    names: tuple[str, ...] = ()
    for line in body:
        if line.startswith("VmFlags:"):
            names = tuple(line[len("VmFlags:"):].split())
        else:
            key, value = _parse_field(line)
            fields[key] = value
    return SmapsEntry(
        header=header,
        fields=fields,
        vm_flag_names=names,
        vm_flags=vm_flags_from_names(names, fields.get("ProtectionKey", 0)),
        unknown_flags=names.count("??"),
    )


def parse_smaps(text: str) -> list[SmapsEntry]:
    """Parse /proc/PID/smaps text into one entry per VMA block.

    A header line is recognised by its first token having no ``:`` (field keys always end
    with one; the header starts with ``start-end``).
    """
    entries: list[SmapsEntry] = []
    header: MapsEntry | None = None
    body: list[str] = []
    for line in text.split("\n"):
        if not line:
            continue
        if ":" not in line.split(" ", 1)[0]:
            if header is not None:
                entries.append(_finish_block(header, body))
            header, body = parse_maps_line(line), []
        elif header is None:
            raise ValueError(f"smaps field before any header: {line!r}")
        else:
            body.append(line)
    if header is not None:
        entries.append(_finish_block(header, body))
    return entries
