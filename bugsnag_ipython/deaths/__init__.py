"""Kernel deaths, watched and recorded: each kernel's crash record, its watcher process, and the
report of dead kernels' records by the watcher or the next kernel. The event itself is made in
report/kernel_death.py."""
