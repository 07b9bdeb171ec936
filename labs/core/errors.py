"""One error family: a LabError is a problem the user can fix, and its message is the text the page shows.

Each lab raises LabError or one of the kinds below; `ui.common.friendly_errors` shows the message as it is.
Anything else is a bug: the page says so in one line and the app keeps running. The kinds also derive from the
built-in error a caller would expect (a bad setting is a ValueError), so `except ValueError` keeps working.
"""


class LabError(Exception):
    """A user-fixable problem; str(error) is the sentence the page shows (what happened and how to fix it)."""


class ConfigError(LabError, ValueError):
    """A setting, a config field or an argument is out of range; the message names the range."""


class DataError(LabError, ValueError):
    """A file or dataset the user brought cannot be read as asked; the message says what to change."""


class MissingData(LabError, FileNotFoundError):
    """Something the lab needs is not on this machine (a saved adapter, a corpus); the message says how to get it."""


class ModelError(LabError, RuntimeError):
    """A model cannot be found, converted, loaded or used as asked."""


class EmptyPrompt(ConfigError):
    """The prompt is empty; the one message for it, everywhere."""

    def __init__(self, message: str = "The prompt is empty: type a question or an instruction first."):
        super().__init__(message)
