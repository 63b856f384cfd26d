"""``vmamodel check``: find lifecycle bugs in a driver's mmap hooks, unaided."""
