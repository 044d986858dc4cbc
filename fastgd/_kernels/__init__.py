"""Compiled kernels: shared scalar rules (rules.py) and the CPU loops (cpu.py)."""
