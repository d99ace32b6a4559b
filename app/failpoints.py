"""Named points where a test can make the process die (SIGKILL), to prove crash recovery.

`YIBAO_FAILPOINT=<name>` in the environment kills the process when it reaches that point. It
costs one dictionary lookup, and nothing happens unless the variable names the point.
"""

from __future__ import annotations

import os
import signal


def reach(name: str) -> None:
    if os.environ.get("YIBAO_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
