"""do_mmap argument checks, each with the kernel's errno, on the model and on the host."""

from __future__ import annotations

import errno

import pytest

import vmamodel as v

from .util import ANON, FIXED, NOREPLACE, RW, P, at, flags_of, layout


def _errno(fn: object, *args: object, **kwargs: object) -> int:
    with pytest.raises(OSError) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    return info.value.errno or 0


def test_zero_length_is_einval(mm):
    assert _errno(mm.mmap, at(0), 0, RW, NOREPLACE) == errno.EINVAL


def test_unaligned_offset_is_einval_even_for_anonymous(mm):
    assert _errno(mm.mmap, at(0), P, RW, NOREPLACE, None, 100) == errno.EINVAL


def test_huge_length_is_enomem(mm):
    assert _errno(mm.mmap, at(0), (1 << 64) - 100, RW, NOREPLACE) == errno.ENOMEM
    assert _errno(mm.mmap, at(0), 1 << 62, RW, NOREPLACE) == errno.ENOMEM


def test_unaligned_fixed_address_is_einval(mm):
    assert _errno(mm.mmap, at(0) + 1, P, RW, FIXED) == errno.EINVAL
    assert layout(mm) == []


@pytest.mark.parametrize("map_type", [0, v.MAP_SHARED_VALIDATE, 0x0F, v.MAP_SHARED | 0x04])
def test_anonymous_bad_mapping_type_is_einval(mm, map_type):
    flags = map_type | v.MAP_ANONYMOUS | v.MAP_FIXED_NOREPLACE
    assert _errno(mm.mmap, at(0), P, RW, flags) == errno.EINVAL


def test_unaligned_hint_is_rounded_down_and_honoured(mm):
    assert mm.mmap(at(4) + 0x234, P, RW, ANON) == at(4)


def test_fixed_noreplace_partial_overlap_is_eexist_and_changes_nothing(mm):
    mm.mmap(at(2), 2 * P, RW, NOREPLACE)
    before = mm.maps()
    assert _errno(mm.mmap, at(0), 3 * P, v.PROT_READ, NOREPLACE) == errno.EEXIST
    assert _errno(mm.mmap, at(3), 3 * P, v.PROT_READ, NOREPLACE) == errno.EEXIST
    assert mm.maps() == before


def test_growsdown_on_shared_anonymous_is_einval(mm):
    flags = v.MAP_SHARED | v.MAP_ANONYMOUS | v.MAP_GROWSDOWN | v.MAP_FIXED_NOREPLACE
    assert _errno(mm.mmap, at(0), P, RW, flags) == errno.EINVAL


def test_droppable_with_locked_is_einval(mm):
    flags = v.MAP_DROPPABLE | v.MAP_ANONYMOUS | v.MAP_LOCKED | v.MAP_FIXED_NOREPLACE
    assert _errno(mm.mmap, at(0), P, RW, flags) == errno.EINVAL


def test_unknown_prot_bits_are_ignored_by_mmap(mm):
    assert mm.mmap(at(0), P, 0x101, NOREPLACE) == at(0)
    assert layout(mm) == [(0, 1, "r--p")]


def test_fd_required_without_map_anonymous(mm):
    assert _errno(mm.mmap, at(0), P, RW, v.MAP_PRIVATE | v.MAP_FIXED_NOREPLACE) == errno.EBADF


def test_ebadf_comes_before_the_length_check(mm):
    assert _errno(mm.mmap, at(0), 0, RW, v.MAP_SHARED) == errno.EBADF


def test_hugetlb_on_a_memfd_is_einval(mm, memfd):
    f = memfd("huge", 4 * P)
    flags = v.MAP_SHARED | v.MAP_HUGETLB | v.MAP_FIXED_NOREPLACE
    assert _errno(mm.mmap, at(0), P, RW, flags, f) == errno.EINVAL


class TestMemfdFlags:
    def test_shared_validate_unknown_flag_is_eopnotsupp(self, mm, memfd):
        f = memfd("validate", 4 * P)
        flags = v.MAP_SHARED_VALIDATE | v.MAP_FIXED | 0x400000
        assert _errno(mm.mmap, at(0), P, RW, flags, f) == errno.EOPNOTSUPP

    def test_shared_ignores_unknown_flag(self, mm, memfd):
        f = memfd("shared", 4 * P)
        assert mm.mmap(at(0), P, RW, v.MAP_SHARED | v.MAP_FIXED | 0x400000, f) == at(0)

    @pytest.mark.parametrize("extra", [v.MAP_FIXED_NOREPLACE, v.MAP_SYNC])
    def test_shared_validate_rejects_flags_outside_the_legacy_mask(self, mm, memfd, extra):
        f = memfd("legacy", 4 * P)
        flags = v.MAP_SHARED_VALIDATE | v.MAP_FIXED | extra
        assert _errno(mm.mmap, at(0), P, RW, flags, f) == errno.EOPNOTSUPP

    def test_growsdown_on_a_file_is_einval(self, mm, memfd):
        f = memfd("grows", 4 * P)
        flags = v.MAP_PRIVATE | v.MAP_GROWSDOWN | v.MAP_FIXED_NOREPLACE
        assert _errno(mm.mmap, at(0), P, RW, flags, f) == errno.EINVAL

    def test_droppable_on_a_file_is_einval(self, mm, memfd):
        f = memfd("drop", 4 * P)
        flags = v.MAP_DROPPABLE | v.MAP_FIXED_NOREPLACE
        assert _errno(mm.mmap, at(0), P, RW, flags, f) == errno.EINVAL


class TestFileModes:
    def test_read_only_file_shared_writable_is_eacces(self, mm, regular_file):
        f = regular_file(v.O_RDONLY, 4 * P)
        flags = v.MAP_SHARED | v.MAP_FIXED_NOREPLACE
        assert _errno(mm.mmap, at(0), P, RW, flags, f) == errno.EACCES

    def test_read_only_file_private_writable_is_allowed(self, mm, regular_file):
        f = regular_file(v.O_RDONLY, 4 * P)
        assert mm.mmap(at(0), P, RW, v.MAP_PRIVATE | v.MAP_FIXED_NOREPLACE, f) == at(0)

    def test_read_only_file_shared_read_only_loses_mayshare_write(self, mm, regular_file):
        f = regular_file(v.O_RDONLY, 4 * P)
        mm.mmap(at(0), P, v.PROT_READ, v.MAP_SHARED | v.MAP_FIXED_NOREPLACE, f)
        assert layout(mm) == [(0, 1, "r--s")]
        assert flags_of(mm) == ["rd mr me ms"]

    @pytest.mark.parametrize("prot", [v.PROT_READ, v.PROT_WRITE, RW])
    @pytest.mark.parametrize("map_type", [v.MAP_PRIVATE, v.MAP_SHARED])
    def test_write_only_file_is_eacces(self, mm, regular_file, prot, map_type):
        f = regular_file(v.O_WRONLY, 4 * P)
        assert _errno(mm.mmap, at(0), P, prot, map_type | v.MAP_FIXED_NOREPLACE, f) == (
            errno.EACCES
        )

    def test_length_zero_on_write_only_file_is_einval(self, mm, regular_file):
        f = regular_file(v.O_WRONLY, 4 * P)
        assert _errno(mm.mmap, at(0), 0, RW, v.MAP_SHARED, f) == errno.EINVAL

    def test_mprotect_write_on_read_only_shared_file_is_eacces(self, mm, regular_file):
        f = regular_file(v.O_RDONLY, 4 * P)
        mm.mmap(at(0), P, v.PROT_READ, v.MAP_SHARED | v.MAP_FIXED_NOREPLACE, f)
        assert _errno(mm.mprotect, at(0), P, RW) == errno.EACCES
        assert layout(mm) == [(0, 1, "r--s")]


def test_fixed_replaces_what_it_overlaps(mm):
    mm.mmap(at(0), 2 * P, RW, NOREPLACE)
    mm.mmap(at(3), 2 * P, v.PROT_READ, NOREPLACE)
    assert mm.mmap(at(1), 3 * P, v.PROT_EXEC, FIXED) == at(1)
    assert layout(mm) == [(0, 1, "rw-p"), (1, 4, "--xp"), (4, 5, "r--p")]


def test_model_refuses_address_below_mmap_min_addr_without_rawio():
    mm = v.AddressSpace(cap_sys_rawio=False)
    assert _errno(mm.mmap, 0, P, RW, FIXED) == errno.EPERM
    assert _errno(mm.mmap, P - P, P, RW, FIXED) == errno.EPERM
    assert mm.mmap(0x1000, P, RW, FIXED) == 0x1000


def test_model_root_may_map_page_zero():
    mm = v.AddressSpace()
    assert mm.mmap(0, P, RW, FIXED) == 0


def test_model_low_hint_is_raised_to_mmap_min_addr():
    mm = v.AddressSpace(mmap_min_addr=0x10000)
    assert mm.mmap(0x2000, P, RW, ANON) == 0x10000
    # A hint below one page rounds down to 0, which is no hint at all.
    assert mm.mmap(0x10, P, RW, ANON) == mm.mmap_base - P


def test_model_mmap_at_max_map_count_is_enomem():
    mm = v.AddressSpace(max_map_count=4, debug=True)
    for i in range(5):  # the check is map_count > max: one more than the limit fits
        mm.mmap(at(2 * i), P, RW if i % 2 else v.PROT_READ, NOREPLACE)
    assert _errno(mm.mmap, at(20), P, RW, NOREPLACE) == errno.ENOMEM



