"""Split: recursive character splitting and sentence splitting, measured in characters or tokens.

Both splitters work on offsets into the original text, so a chunk always knows where it came from
(the chunk viewer colours exactly those ranges) and the invariants can be checked:

* coverage  -- every character of the document lies in at least one chunk;
* overlap   -- consecutive chunks share at most `chunk_overlap` units;
* size      -- no chunk is longer than `chunk_size` units unless it is one piece that cannot be split further.

The Markdown splitter cuts at headings first: each section (a heading and the text up to the next heading) is split
on its own, fenced code blocks stay whole where they fit, and every chunk carries its heading path
("Chat UI > Streaming") -- embedded and keyword-searched with the chunk, shown in the viewer and in citations.

The recursive splitter is the one LangChain made popular (RecursiveCharacterTextSplitter): cut at the
coarsest separator that appears ("\\n\\n", then "\\n", ". ", " ", and finally between characters), recurse
into pieces that are still too long, then greedily merge pieces back into chunks of at most `chunk_size`,
starting each new chunk with the tail of the previous one (at most `chunk_overlap`) as overlap.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

from labs.core.errors import ConfigError
from labs.rag.load import Document


Length = Callable[[str], int]
Span = tuple[int, int]  # [start, end) character offsets into the document text

DEFAULT_SEPARATORS = ("\n\n", "\n", ". ", " ", "")
SEPARATOR_NAMES = {"\n\n": "blank line", "\n": "line break", ". ": "sentence end '. '", " ": "space",
                   "": "between characters"}
METHODS = ("recursive", "sentence", "markdown")
# An ATX heading (# Title .. ###### Title) and a code fence (``` or ~~~) at the start of a line.
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# A sentence ends at . ! or ? (plus closing quotes/brackets) followed by whitespace, or at a blank line.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n[ \t]*\n\s*")


@dataclass(frozen=True)
class SplitConfig:
    """How documents are cut into chunks: recursive or by sentence, chunk size and overlap in `unit`
    (characters or the embedder's word pieces), and the separators the recursive splitter tries in order."""
    method: str = "recursive"  # "recursive", "sentence" or "markdown" (headings first, then recursive)
    chunk_size: int = 500  # ~100 tokens: all-MiniLM-L6-v2 reads at most 256 word pieces, the rest is cut off
    chunk_overlap: int = 50  # 10 %: a fact cut at a boundary still appears whole in one chunk
    unit: str = "chars"  # "chars" or "tokens" (word pieces of the embedding model's tokenizer)
    separators: tuple[str, ...] = DEFAULT_SEPARATORS

    def __post_init__(self):
        if self.method not in METHODS:
            raise ConfigError(f"Splitter must be one of {', '.join(METHODS)}.")
        if self.unit not in ("chars", "tokens"):
            raise ConfigError("Unit must be 'chars' or 'tokens'.")
        smallest = 8 if self.unit == "tokens" else 20
        if not smallest <= self.chunk_size <= 20_000:
            raise ConfigError(f"Chunk size must be between {smallest} and 20000 {self.unit}.")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ConfigError("Overlap must be at least 0 and smaller than the chunk size.")
        if self.method != "sentence" and not self.separators:
            raise ConfigError("Give at least one separator (the empty string means 'between characters').")

    @property
    def label(self) -> str:
        """A short label: 'recursive 500/50 chars'."""
        return f"{self.method} {self.chunk_size}/{self.chunk_overlap} {self.unit}"


@dataclass(frozen=True)
class Chunk:
    """One piece of a document: its text, exactly document.text[start:end], where it sits, and its length in the
    splitter's unit."""
    text: str  # exactly document.text[start:end]
    source: str
    start: int
    end: int
    position: int  # index of this chunk inside its document
    index: int  # index in the whole corpus (the chunk's id)
    length: int  # in the config's unit
    heading: str = ""  # the Markdown heading path above it ("Chat UI > Streaming"); "" outside Markdown sections

    @property
    def id(self) -> str:
        """The chunk's id in the store: 'c<index>'."""
        return f"c{self.index}"

    @property
    def indexed_text(self) -> str:
        """What is embedded and keyword-searched: the heading path, then the text (a section's later chunks keep
        the topic their heading names)."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text


def char_length(text: str) -> int:
    """Length in characters (the default `length` of the splitter)."""
    return len(text)


def token_length(tokenizer) -> Length:
    """Length in word pieces of `tokenizer` (no special tokens) -- use the embedder's, since it truncates."""

    def length(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return length


def _pieces(text: str, start: int, end: int, separators: Sequence[str], size: int, length: Length) -> list[Span]:
    """Cut [start, end) into contiguous pieces of at most `size` units, trying separators coarsest first.

    The separator stays attached to the piece on its left, so the pieces tile the span exactly.
    A piece that contains none of the remaining separators is returned whole even if too long.
    """
    if length(text[start:end]) <= size:
        return [(start, end)]
    for i, sep in enumerate(separators):
        if sep == "":
            return [(j, j + 1) for j in range(start, end)]
        if text.find(sep, start, end) < 0:
            continue
        out: list[Span] = []
        pos = start
        while pos < end:
            j = text.find(sep, pos, end)
            cut = end if j < 0 else min(j + len(sep), end)
            if length(text[pos:cut]) <= size:
                out.append((pos, cut))
            else:
                out.extend(_pieces(text, pos, cut, separators[i + 1:], size, length))
            pos = cut
        return out
    return [(start, end)]


def _merge(text: str, pieces: list[Span], size: int, overlap: int, length: Length) -> list[Span]:
    """Greedy merge of contiguous pieces into chunks <= size; each chunk starts with <= overlap of the previous."""
    chunks: list[Span] = []
    current: list[Span] = []
    for piece in pieces:
        if current and length(text[current[0][0]:piece[1]]) > size:
            chunks.append((current[0][0], current[-1][1]))
            # keep the longest tail of the chunk that fits the overlap and still leaves room for this piece
            while current and (length(text[current[0][0]:current[-1][1]]) > overlap
                               or length(text[current[0][0]:piece[1]]) > size):
                current.pop(0)
        current.append(piece)
    if current:
        chunks.append((current[0][0], current[-1][1]))
    return chunks


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentences as contiguous spans (trailing whitespace attached), covering [start, end) exactly."""
    end = len(text) if end is None else end
    spans, pos = [], start
    for m in _SENTENCE_END.finditer(text, start, end):
        if m.end() > pos:
            spans.append((pos, m.end()))
            pos = m.end()
    if pos < end:
        spans.append((pos, end))
    return spans


def markdown_sections(text: str) -> list[tuple[int, int, str]]:
    """The text cut before every ATX heading outside code fences: (start, end, heading path), tiling the text. The
    path joins the enclosing headings with ' > ' (a '## B' under '# A' is 'A > B'); text before the first heading
    has the path ''."""
    sections, stack, start, path, fence, pos = [], [], 0, "", None, 0
    for line in text.splitlines(keepends=True):
        opener = _FENCE.match(line)
        if opener and (fence is None or opener.group(1)[0] == fence[0] and len(opener.group(1)) >= len(fence)):
            fence = None if fence else opener.group(1)
        elif fence is None and (m := _HEADING.match(line.rstrip("\r\n"))):
            if pos > start:
                sections.append((start, pos, path))
            level = len(m.group(1))
            stack = [(lv, title) for lv, title in stack if lv < level] + [(level, m.group(2).strip())]
            start, path = pos, " > ".join(title for _, title in stack)
        pos += len(line)
    if len(text) > start:
        sections.append((start, len(text), path))
    return sections


def _code_blocks(text: str, start: int, end: int) -> list[Span]:
    """The fenced code blocks inside [start, end), fence lines included."""
    blocks, fence, block_start, pos = [], None, 0, start
    for line in text[start:end].splitlines(keepends=True):
        opener = _FENCE.match(line)
        if opener and fence is None:
            fence, block_start = opener.group(1), pos
        elif opener and opener.group(1)[0] == fence[0] and len(opener.group(1)) >= len(fence):
            blocks.append((block_start, pos + len(line)))
            fence = None
        pos += len(line)
    if fence is not None:
        blocks.append((block_start, end))  # an unclosed fence runs to the end of the section
    return blocks


def _section_pieces(text: str, start: int, end: int, config: SplitConfig, length: Length) -> list[Span]:
    """Pieces of one Markdown section: a code block that fits one chunk is one piece, prose is cut recursively."""
    pieces, pos = [], start
    for a, b in _code_blocks(text, start, end):
        if a > pos:
            pieces += _pieces(text, pos, a, config.separators, config.chunk_size, length)
        pieces += [(a, b)] if length(text[a:b]) <= config.chunk_size else \
            _pieces(text, a, b, ("\n", " ", ""), config.chunk_size, length)
        pos = b
    if end > pos:
        pieces += _pieces(text, pos, end, config.separators, config.chunk_size, length)
    return pieces


def split_markdown(text: str, config: SplitConfig, length: Length = char_length) -> list[tuple[int, int, str]]:
    """Chunk spans with their heading path: headings first, each section merged on its own (no chunk spans two
    sections, so overlap stays inside a section)."""
    out = []
    for a, b, path in markdown_sections(text):
        pieces = _section_pieces(text, a, b, config, length)
        out += [(x, y, path) for x, y in _merge(text, pieces, config.chunk_size, config.chunk_overlap, length)]
    return out


def split_spans(text: str, config: SplitConfig, length: Length = char_length) -> list[Span]:
    """The chunk spans of one text under `config`."""
    if not text:
        return []
    size, overlap = config.chunk_size, config.chunk_overlap
    if config.method == "markdown":
        return [(a, b) for a, b, _ in split_markdown(text, config, length)]
    if config.method == "recursive":
        pieces = _pieces(text, 0, len(text), config.separators, size, length)
    else:  # sentences are the pieces; a sentence longer than a chunk falls back to words, then characters
        pieces = []
        for a, b in sentence_spans(text):
            pieces.extend(_pieces(text, a, b, (" ", ""), size, length))
    return _merge(text, pieces, size, overlap, length)


def split_documents(docs: Sequence[Document], config: SplitConfig, length: Length = char_length) -> list[Chunk]:
    """Every document cut into chunks by `config`, numbered across the whole corpus; `length` measures a
    piece in the config's unit."""
    chunks: list[Chunk] = []
    for doc in docs:
        spans = split_markdown(doc.text, config, length) if config.method == "markdown" and doc.text else \
            [(a, b, "") for a, b in split_spans(doc.text, config, length)]
        for position, (a, b, heading) in enumerate(spans):
            piece = doc.text[a:b]
            chunks.append(Chunk(piece, doc.source, a, b, position, len(chunks), length(piece), heading))
    return chunks


def overlap_len(first: Chunk, second: Chunk) -> int:
    """Characters shared by two consecutive chunks of the same document."""
    return max(0, first.end - second.start) if first.source == second.source else 0


def coverage_segments(chunks: Sequence[Chunk], text_len: int) -> list[tuple[int, int, tuple[int, ...]]]:
    """Cut [0, text_len) at every chunk boundary: (start, end, positions of the chunks covering it).

    One covering chunk = plain chunk text; two or more = an overlap; none = a gap (never, if coverage holds).
    """
    cuts = sorted({0, text_len, *(c.start for c in chunks), *(c.end for c in chunks)})
    segments = []
    for a, b in zip(cuts, cuts[1:]):
        if a >= text_len:
            break
        covering = tuple(c.position for c in chunks if c.start <= a and b <= c.end)
        segments.append((a, min(b, text_len), covering))
    return segments
