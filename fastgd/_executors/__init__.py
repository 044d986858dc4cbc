"""Epoch executors: one small class per way to run an epoch (see
:mod:`fastgd._executors.base` for the interface, ``docs/architecture.md`` for how to
add one)."""
