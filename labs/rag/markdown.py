"""Markdown before splitting: drop what a reader never sees, so it is never embedded as content.

Documentation sites keep two kinds of invisible text in their Markdown sources:

* front matter -- a YAML block fenced by ``---`` lines (Jekyll, Hugo, MkDocs, Docusaurus) or a TOML block fenced by
  ``+++`` lines (Hugo) at the very top of the file: titles, tags, layout names;
* HTML comments -- ``<!-- ... -->``, often a licence header repeated in every file, or editor notes.

Neither is rendered, yet a retriever that embeds them finds the licence header in every file and ranks it for
any question that mentions "license" or "copyright". Comments inside fenced code blocks (```` ``` ```` or ``~~~``)
are kept: there they are the content (an example of HTML).

    >>> clean_markdown("---\\ntitle: Intro\\n---\\n<!-- Licensed under Apache-2.0 -->\\n# Intro\\nHello")
    '# Intro\\nHello'
"""
from __future__ import annotations

import re


# Front matter: the first line is exactly --- (YAML) or +++ (TOML), closed by the same fence on its own line.
_FRONT_MATTER = re.compile(r"\A\ufeff?[ \t]*(---|\+\+\+)[ \t]*\r?\n.*?^[ \t]*\1[ \t]*(?:\r?\n|\Z)",
                           re.DOTALL | re.MULTILINE)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
# A fenced code block: an opening fence of 3+ backticks or tildes, up to the same fence (or the end of the text).
_FENCE = re.compile(r"^([ \t]*)(`{3,}|~{3,})[^\n]*\n.*?(?:^[ \t]*\2[ \t]*$|\Z)", re.DOTALL | re.MULTILINE)


def strip_front_matter(text: str) -> str:
    """The text without a YAML (---) or TOML (+++) front-matter block at its very start."""
    return _FRONT_MATTER.sub("", text, count=1)


def strip_html_comments(text: str) -> str:
    """The text without <!-- ... --> comments, except inside fenced code blocks. An unclosed '<!--' is kept
    (a browser would hide the rest of the page, but the rest is what the author meant to publish)."""
    out, last = [], 0
    for fence in _FENCE.finditer(text):
        out.append(_COMMENT.sub("", text[last:fence.start()]))
        out.append(fence.group(0))
        last = fence.end()
    out.append(_COMMENT.sub("", text[last:]))
    return "".join(out)


def clean_markdown(text: str) -> str:
    """Front matter and HTML comments removed, runs of blank lines left by them squeezed to one, ends trimmed."""
    text = strip_html_comments(strip_front_matter(text))
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
