"""The hub's log format: one event per line, whatever the values in it.

User names, paths and headers come from outside. Written as they are, a value holding a line
break could forge a whole log line (a fake setup link, a fake "logged in"). The formatter writes
every control character of the message as an escape (``\\n``, ``\\x1b``), so each record is one
line; tracebacks, which the hub itself produces, follow on their own lines as usual.
"""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_ESCAPES = {code: f"\\x{code:02x}" for code in range(32)} | {0x7F: "\\x7f", 10: "\\n", 13: "\\r", 9: "\\t"}
_ESCAPES |= {code: f"\\u{code:04x}" for code in (0x85, 0x2028, 0x2029)}


def one_line(text: str) -> str:
    return text.translate(_ESCAPES)


class OneLineFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.message)
        return super().formatMessage(record)


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
