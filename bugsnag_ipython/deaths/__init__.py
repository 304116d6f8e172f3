"""Kernel deaths, watched and recorded: the crash record each kernel keeps (record.py, kept
current by checkpoint.py, in the folder place.py gives), the watcher process that reports the
kernel's death the moment it dies (watcher.py, started by watcher_process.py), the claims of
dead kernels' records (claims.py) and their report by the next kernel (scan.py), the notes of
deaths for the user (notes.py), and the source that ties them to a kernel (kernel_deaths.py).
The event itself is made in report/kernel_death.py."""
