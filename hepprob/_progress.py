"""One progress bar for every long loop (MCMC, toys, scans, limit searches).

:func:`progress` gives a tqdm bar that fits where the code runs: a widget in a
Jupyter notebook (when ipywidgets is installed), a text bar in a terminal or in
a notebook without ipywidgets (no ``TqdmWarning``), and nothing when stderr is
not a terminal (a script piped to a file, CI) or when the caller says so.

Usage in a loop of known length::

    with progress(total=n_batches, desc="toys", show=progress_bar) as bar:
        for batch in batches:
            run(batch)
            bar.update(1)

``show``: ``None`` decides as above, ``True`` always shows a bar, ``False`` never.
The environment variable ``HEPPROB_PROGRESS=0`` silences every bar.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["enabled", "in_notebook", "progress"]

ENV_VAR = "HEPPROB_PROGRESS"


def in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython's ZMQ shell)."""
    shell = sys.modules.get("IPython")
    if shell is None or "ipykernel" not in sys.modules:
        return False
    try:
        ip = shell.get_ipython()  # type: ignore[attr-defined]
    except AttributeError:
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def enabled(show: bool | None = None) -> bool:
    """Whether a bar is shown: ``show`` if given, else a terminal or a notebook.

    ``HEPPROB_PROGRESS=0`` (or ``off``/``false``/``no``) turns bars off in any case.
    """
    if os.environ.get(ENV_VAR, "").strip().lower() in {"0", "off", "false", "no"}:
        return False
    if show is not None:
        return bool(show)
    return in_notebook() or _isatty(sys.stderr)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


class _Silent:
    """The part of tqdm's interface the loops use, doing nothing."""

    n = 0
    desc = ""

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_description(self, desc: str) -> None:
        self.desc = desc

    def set_postfix_str(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def _bar_class() -> Any:
    """tqdm's notebook widget when it can draw one, else the text bar."""
    if in_notebook():
        try:
            import ipywidgets  # noqa: F401
        except ImportError:
            pass
        else:
            from tqdm.notebook import tqdm as notebook_bar

            return notebook_bar
    from tqdm.std import tqdm as text_bar

    return text_bar


@contextlib.contextmanager
def progress(
    *,
    total: int | None,
    desc: str = "",
    unit: str = "it",
    show: bool | None = None,
) -> Iterator[Any]:
    """A progress bar over ``total`` units (a no-op object when not shown).

    The object has ``update(n)``, ``set_description(text)``,
    ``set_postfix_str(text)`` and ``n``; it is closed when the block ends.
    """
    if not enabled(show):
        yield _Silent()
        return
    bar = _bar_class()(total=total, desc=desc, unit=unit, leave=True)
    try:
        yield bar
    finally:
        bar.close()
