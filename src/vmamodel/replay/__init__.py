"""Real programs: record their memory-management calls, replay them on the model, explain
their layout (``vmamodel record``, ``replay``, ``explain``). See docs/replay.md."""
