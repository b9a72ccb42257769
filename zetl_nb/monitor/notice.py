"""A visible notice when an alarm fires: a warning, a log line and, in IPython, a display.

IPython is never imported here: the display is shown only when the process already runs IPython
(a notebook kernel), so plain scripts and tests pay nothing for it.
"""

from __future__ import annotations

import html
import logging
import sys
import warnings
from typing import Any

log = logging.getLogger("zetl_nb.monitor.alarms")


class AlarmWarning(UserWarning):
    """An alarm went to ALARM (``warnings.simplefilter("error", AlarmWarning)`` to stop on it)."""


def notify(alarm_name: str, state: str, reason: str) -> None:
    """Tell the user that ``alarm_name`` is now ``state`` (ALARM warns; others log)."""
    text = f"Alarm {alarm_name} is {state}: {reason}"
    if state != "ALARM":
        log.info(text)
        return
    log.warning(text)
    warnings.warn(text, AlarmWarning, stacklevel=2)
    _display(alarm_name, reason)


def _display(alarm_name: str, reason: str) -> None:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return
    try:
        shell = ipython.get_ipython()
        if shell is None:
            return
        import importlib

        shown: Any = importlib.import_module("IPython.display")
        shown.display(
            shown.HTML(
                '<div style="border-left:4px solid #d13212;padding:4px 8px;margin:4px 0">'
                f"<b>&#9888; Alarm {html.escape(alarm_name)} is ALARM</b><br>"
                f"{html.escape(reason)}</div>"
            )
        )
    except Exception:  # a notice must never break monitoring
        log.debug("IPython display of an alarm failed", exc_info=True)
