"""Voilà dashboards: which notebook a Voilà kernel renders.

Voilà executes a notebook with nbclient, as a runner does: it sends no cell ids and sets no
`JPY_SESSION_NAME`. What it does give a kernel it starts for a page (Voilà 0.4 and 0.5):

- `SERVER_SOFTWARE=voila/<version>` and the page's path in `SCRIPT_NAME`, as a CGI server
  would: `<base url>voila/render/<notebook's path>` (percent-encoded) for a notebook of a folder,
  whether Voilà runs on its own (`voila notebooks/`) or inside Jupyter Server; the bare base URL
  when Voilà serves one notebook (`voila dashboard.ipynb`), whose command line names it;
- the notebook's folder as its working directory, in every case.

A kernel pre-started for a pool (`--preheat_kernel`, `VOILA_PREHEAT=True`) has no page yet: its
notebook is the command line's, or is found by its cells in the kernel's folder, as for an
unnamed run. Only the base name of the page's path is used, joined to the kernel's folder: a
path made up by a visitor names nothing outside it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from urllib.parse import unquote

VOILA = "voila"
SOFTWARE_VARIABLE = "SERVER_SOFTWARE"  # voila/<version>, for a kernel started for a page
PREHEAT_VARIABLE = "VOILA_PREHEAT"  # "True" for a pool's kernel, "False" for a page's
PAGE_VARIABLE = "SCRIPT_NAME"  # the page's path
RENDER_PATH = "/voila/render/"


def voila_kernel(env: Mapping[str, str]) -> bool:
    """Whether Voilà started this kernel (or the kernel that started it: see sources.headless)."""
    return env.get(SOFTWARE_VARIABLE, "").startswith(VOILA + "/") or PREHEAT_VARIABLE in env


def dashboard_notebook(env: Mapping[str, str], kernel_cwd: str,
                       server: tuple[Sequence[str], str] | None) -> str | None:
    """The notebook Voilà renders in this kernel: the page's, else the one `server` (Voilà's
    command line and working directory) names, else None (to be found by its cells)."""
    page = env.get(PAGE_VARIABLE, "")
    if RENDER_PATH in page:
        name = os.path.basename(unquote(page.rsplit(RENDER_PATH, 1)[1]))
        if name.endswith(".ipynb"):
            return os.path.join(kernel_cwd, name)
    if server is not None:
        argv, cwd = server
        named = [arg for arg in argv[1:] if arg.endswith(".ipynb") and not arg.startswith("-")]
        if len(named) == 1:
            return os.path.normpath(os.path.join(cwd, named[0]))
    return None
