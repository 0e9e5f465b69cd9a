"""The one base class of user errors (standard library only: it ships to the board with host/).

A `SqzError` is something the user can fix -- a bad option, a missing or malformed input file, a model,
spec or board the tool does not support -- and its message says what and where. `python -m sqz` prints
it as one line (`error: ...`) and exits 2. Anything else that escapes a command is a bug: the CLI lets
it through, so it shows its traceback and exits 1.

Several subclasses also inherit ValueError, because callers (and tests) that predate this class catch
them as ValueError; new code catches SqzError or the specific class.
"""
from __future__ import annotations


class SqzError(Exception):
    """A user error: the CLI prints it as one line and exits 2."""
