"""map_shadow_stack(2) (arch/x86/kernel/shstk.c).

The syscall exists only with CONFIG_X86_USER_SHADOW_STACK; without it the syscall table
entry is sys_ni_syscall and every call is ENOSYS, whatever the arguments. This host is
built without it (and its CPU has no user_shstk), so that is what the model answers; with
it, the kernel would check X86_FEATURE_USER_SHSTK (EOPNOTSUPP), the flags (EINVAL), room
for a token (ENOSPC), an address below 4 GiB (ERANGE), then map a VM_SHADOW_STACK VMA.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from vmamodel.hooks import oserror

if TYPE_CHECKING:
    from vmamodel.mm import AddressSpace


def sys_map_shadow_stack(mm: AddressSpace) -> int:
    """sys_ni_syscall(): ENOSYS."""
    raise oserror(errno.ENOSYS, "map_shadow_stack: CONFIG_X86_USER_SHADOW_STACK is off")
