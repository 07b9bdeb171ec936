"""One error family: a LabError is a problem the user can fix, and its message is the text the page shows.

Each lab raises LabError or a subclass named for where it happens (ModelError, EngineError, ...); `ui.common.
friendly_errors` shows the message as it is. Anything else is a bug: the page shows a short apology and the log
keeps the traceback. Messages that several places share are written once, here.
"""


class LabError(Exception):
    """A user-fixable problem; str(error) is the sentence the page shows (what happened and how to fix it)."""


class ModelError(LabError):
    """A model cannot be found, converted, loaded or used as asked."""


EMPTY_PROMPT = "The prompt is empty: type a question or an instruction first."
