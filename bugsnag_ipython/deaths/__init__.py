"""Kernel deaths, watched and recorded; report/kernel_death.py makes their event."""
