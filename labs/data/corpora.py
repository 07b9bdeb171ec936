"""Text domains for the data-mixtures lab: real text that is on every machine that runs Python, plus uploads.

| domain      | what                                                                 | where it comes from               |
|-------------|----------------------------------------------------------------------|-----------------------------------|
| code        | Python functions and classes, docstrings and comments stripped       | the installed standard library     |
| prose       | English prose: the docstrings of the same modules                    | the installed standard library     |
| arithmetic  | "417 + 38 = 455" lines: a perfectly learnable, low-entropy domain     | generated here from a fixed seed   |
| web         | scraped-web style: clean prose pages mixed with boilerplate pages,   | the docstrings of the stdlib's     |
|             | near-duplicate copies and junk (~55% of its bytes are noise; each    | packages (asyncio, email, json...),|
|             | document labelled with its kind, see `web_pages`)                    | noise generated from a fixed seed  |
| (uploads)   | a .txt file (split into paragraphs) or .jsonl with a "text" field    | the user                           |

Each domain is a list of documents (strings). The train / validation split is by document (a hash of its
text), so validation text is never seen in training, whichever mixture or filter is used. The web domain's noise
is generated on the training side only: its held-out documents are clean pages, so "validation loss on clean text"
means the same text with and without the quality filter.
"""
from __future__ import annotations

import ast
import hashlib
import json
import random
import sys
import sysconfig
import textwrap
from functools import lru_cache
from pathlib import Path

from labs.core import settings
from labs.core.errors import ConfigError, MissingData


CLEAN_DOMAINS = ("code", "prose", "arithmetic")
NOISY_DOMAIN = "web"
BUILTIN_DOMAINS = (*CLEAN_DOMAINS, NOISY_DOMAIN)
DOMAIN_HELP = {
    "code": "Python source of the installed standard library (functions and classes, docstrings stripped).",
    "prose": "English prose: the docstrings of the standard library's modules, classes and functions.",
    "arithmetic": "Generated sums and products like '417 + 38 = 455': fully predictable once learned.",
    "web": "Scraped-web style: clean prose pages mixed with cookie/menu boilerplate, near-duplicate copies and "
           "junk (over half its bytes are noise). Turn on the quality filter to drop most of the noise.",
}
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # a 2-core laptop trains on a few hundred KB; bigger files only slow parsing
_CAP_BYTES = 600_000  # per built-in domain: far more than a one-minute run can read once


def _stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.glob("*.py") if not p.name.startswith(("_", "test")))
    if not files:
        raise MissingData(f"No Python standard-library sources under {root}; the code and prose domains "
                                "need them (some minimal Python installs ship only .pyc files).")
    return files


def _strip_docstring(node: ast.AST) -> None:
    for child in ast.walk(node):
        body = getattr(child, "body", None)
        if (isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)) and body
                and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant)
                and isinstance(body[0].value.value, str)):
            child.body = body[1:] or [ast.Pass()]


@lru_cache(maxsize=1)
def _stdlib_documents() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(code documents, prose documents) from the standard library, in a fixed order; cached on disk."""
    cache = settings.subdir("mixtures") / f"stdlib-corpora-{python_version()}.json"
    try:
        code, prose = json.loads(cache.read_text())
        return tuple(code), tuple(prose)
    except (OSError, ValueError):
        pass
    code, prose = [], []
    files = _stdlib_files()
    random.Random(0).shuffle(files)  # many modules, not the first ones alphabetically
    for path in files:
        if sum(map(len, code)) > 2 * _CAP_BYTES and sum(map(len, prose)) > 2 * _CAP_BYTES:
            break  # enough to fill both caps: parsing the rest only costs time
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=True)
                if doc:
                    prose.append(doc.strip())
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                _strip_docstring(node)
                code.append(ast.unparse(node))
    rng = random.Random(0)
    rng.shuffle(code)
    rng.shuffle(prose)
    code, prose = _cap(code), _cap(prose)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps([code, prose]))
    tmp.replace(cache)
    return tuple(code), tuple(prose)


def _cap(docs: list[str], cap: int = _CAP_BYTES) -> list[str]:
    out, total = [], 0
    for d in docs:
        if total >= cap:
            break
        out.append(d)
        total += len(d.encode())
    return out


@lru_cache(maxsize=4)
def _arithmetic(n: int, seed: int) -> tuple[str, ...]:
    return tuple(arithmetic_documents(n, seed))


def arithmetic_documents(n: int = 4000, seed: int = 0) -> list[str]:
    """Documents of 8 equations each: 'a + b = c' and 'a * b = c' with small numbers, exact answers."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        lines = []
        for _ in range(8):
            a, b = rng.randint(0, 999), rng.randint(0, 99)
            lines.append(f"{a} + {b} = {a + b}" if rng.random() < 0.7 else f"{a} * {b % 10} = {a * (b % 10)}")
        docs.append("\n".join(lines))
    return docs


# ---------------------------------------------------------------------------------------------------------------
# The noisy "web" domain: clean pages plus the three kinds of noise web-scale filters remove (boilerplate,
# near-duplicates, junk). Its clean pages come from the stdlib's *packages* (asyncio, email, json, ...), so they
# never overlap the prose domain, which reads only top-level modules.
# ---------------------------------------------------------------------------------------------------------------
WEB_KINDS = ("clean", "boilerplate", "near-duplicate", "junk")
_WEB_CLEAN_BYTES = 240_000  # the filtered M4 run reads it ~3 times at 600 steps: repeats still help (<= ~4 epochs)
_WEB_NOISE_SHARE = {"boilerplate": 0.22, "near-duplicate": 0.20, "junk": 0.13}  # of all bytes: 55% noise
# encodings' ~100 docstrings are near-copies of each other: real noise, which a "clean" label must not carry
_SKIP_PACKAGES = ("encodings", "pydoc_data", "site-packages", "lib2to3", "idlelib", "test")
_NAV = ("Home | News | Sport | Business | Tech | Contact", "Home » Blog » Archive", "Skip to main content", "Menu",
        "Search this site", "Sign in | Register")
_COOKIE = ("We use cookies to improve your experience on our site.", "Accept all cookies",
           "By continuing to browse you agree to our use of cookies.", "Manage cookie preferences")
_PROMO = ("Subscribe to our newsletter for the latest updates!", "Read more »", "Share on Facebook",
          "Share on Twitter", "Related posts", "Popular this week", "Leave a comment", "Advertisement",
          "Click here to learn more", "Download our free app today", "You might also like")
_FOOTER = ("© {year} Example Media Group. All rights reserved.", "Privacy policy · Terms of use · Cookie settings",
           "Follow us on social media", "Back to top ↑", "Contact us: info@example.com", "Powered by WordPress")
_MARKUP = ('<div class="c-{n}">', "</div>", '<span id="s{n}">', "</span>", "<br/>", "<!-- -->", "&nbsp;", "&amp;",
           "{{", "}}", "<td></td>", '<li><a href="#">', "</a></li>", "<script>var _=[];</script>", '{"@type":[]}',
           "</p><p>", "\n")
_FRAGMENTS = ("Loading…", "Click here", "404 Not Found", "Page {n} of {m}", "Skip to content", "Error {n}",
              "undefined", "null", "[removed]", "Continue reading", "Posted by admin", "Next »", "Comments ({n})")


@lru_cache(maxsize=1)
def _package_docstrings() -> tuple[str, ...]:
    """Docstrings of the standard library's packages (not its top-level modules), shuffled; cached on disk."""
    cache = settings.subdir("mixtures") / f"stdlib-packages-{python_version()}.json"
    try:
        return tuple(json.loads(cache.read_text()))
    except (OSError, ValueError):
        pass
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.glob("*/*.py") if not p.name.startswith(("_", "test"))
                   and not p.parent.name.startswith(("_", "config-", *_SKIP_PACKAGES)))
    docs = []
    for path in files:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        docs += [d.strip() for node in ast.walk(tree)
                 if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                 and (d := ast.get_docstring(node, clean=True))]
    random.Random(1).shuffle(docs)
    docs = _cap(docs, 2 * _WEB_CLEAN_BYTES)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps(docs))
    tmp.replace(cache)
    return tuple(docs)


def _near_copy(page: str, rng: random.Random) -> str:
    """The same page scraped again: a date stamp, a tracking parameter, re-wrapped lines or another case."""
    how = rng.choice(("stamp", "tracking", "rewrap", "case", "stamp+case", "exact"))
    if "stamp" in how:
        page = f"{rng.randint(2015, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} " \
               f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}\n{page}"
    if how == "tracking":
        page = f"{page}\n?utm_source=feed&utm_id={rng.randint(10_000, 99_999)}"
    if how == "rewrap":
        page = textwrap.fill(" ".join(page.split()), rng.randint(50, 100))
    if "case" in how:
        page = rng.choice((str.upper, str.lower))(page)
    return page


def _boilerplate(rng: random.Random) -> str:
    """A page that is only navigation, cookie banner, promos and footer: a few lines, repeated."""
    pool = [*_NAV, *_COOKIE, *_PROMO, *_FOOTER]
    lines = [x.format(year=rng.randint(2012, 2024)) for x in rng.sample(pool, rng.randint(5, 8))]
    return "\n".join(rng.choice(lines) for _ in range(rng.randint(14, 30)))


def _junk(rng: random.Random) -> str:
    """Symbol runs, markup soup or a very short fragment."""
    kind = rng.random()
    if kind < 0.15:
        return rng.choice(_FRAGMENTS).format(n=rng.randint(1, 99), m=rng.randint(100, 999))
    if kind < 0.55:
        chars = "#$%&*+=<>{}[]|~^@!?/\\-_;:" + "abcxyz0123456789"
        return "\n".join("".join(rng.choice(chars) for _ in range(rng.randint(40, 80)))
                         for _ in range(rng.randint(5, 25)))
    return "".join(rng.choice(_MARKUP).replace("{n}", str(rng.randint(0, 99))) for _ in range(rng.randint(40, 200)))


@lru_cache(maxsize=1)
def web_pages() -> tuple[tuple[str, str], ...]:
    """The web domain as (kind, text) pairs, kind in WEB_KINDS; the same on every call and machine with the same
    Python (fixed seeds). Clean pages are 500+ characters of package docstrings; noise is ~55% of the bytes and is
    made only on the training side of `split` (a copy whose hash falls in validation is redrawn or dropped), and a
    near-duplicate always comes after the page it copies, so a filter that keeps first occurrences keeps the clean one.

        >>> [k for k, _ in web_pages()][:6]   # doctest: +SKIP
        ['clean', 'junk', 'boilerplate', 'clean', 'near-duplicate', 'clean']
    """
    rng = random.Random(0)
    clean, cur = [], ""
    for d in _package_docstrings():
        cur = f"{cur}\n\n{d}" if cur else d
        if len(cur) >= 500:
            clean.append(cur)
            cur = ""
        if sum(map(len, clean)) >= _WEB_CLEAN_BYTES:
            break
    keyed = [(rng.random(), "clean", p) for p in clean]  # a sort key each: the order pages are "crawled"
    clean_bytes = sum(len(p.encode()) for p in clean)
    trainable = [(k, p) for k, _, p in keyed if not is_validation(p)]
    for kind, share in _WEB_NOISE_SHARE.items():
        target, made = share / (1 - sum(_WEB_NOISE_SHARE.values())) * clean_bytes, 0
        while made < target:
            if kind == "near-duplicate":
                key, page = rng.choice(trainable)
                doc, key = _near_copy(page, rng), key + (1 - key) * rng.random()  # after the page it copies
            else:
                doc, key = (_boilerplate if kind == "boilerplate" else _junk)(rng), rng.random()
            if not is_validation(doc):  # noise only on the training side: held-out text stays clean
                keyed.append((key, kind, doc))
                made += len(doc.encode())
    return tuple((kind, doc) for _, kind, doc in sorted(keyed))


def builtin_documents(domain: str) -> list[str]:
    """The documents of a built-in domain ('code', 'prose', 'arithmetic' or 'web'); KeyError naming the domains."""
    if domain == "code":
        return list(_stdlib_documents()[0])
    if domain == "prose":
        return list(_stdlib_documents()[1])
    if domain == "arithmetic":
        return list(_arithmetic(4000, 0))
    if domain == NOISY_DOMAIN:
        return [text for _, text in web_pages()]
    raise ConfigError(f"Unknown domain '{domain}'. Built-in domains: {', '.join(BUILTIN_DOMAINS)}.")


def is_validation(doc: str, fraction: float = 0.1) -> bool:
    """Deterministic by-document split: a document is in validation iff its hash falls in the first `fraction`."""
    h = int.from_bytes(hashlib.blake2b(doc.encode(), digest_size=8).digest(), "big")
    return h / 2**64 < fraction


def split(docs: list[str], fraction: float = 0.1) -> tuple[list[str], list[str]]:
    """(train, validation) documents: each goes to validation by a stable hash of its text, about `fraction` of
    them; at least one is held out when there are two or more."""
    train, val = [], []
    for d in docs:
        (val if is_validation(d, fraction) else train).append(d)
    if not val and len(train) > 1:  # tiny uploads: keep at least one held-out document
        val.append(train.pop())
    return train, val


def parse_upload(name: str, data: bytes, max_bytes: int = MAX_UPLOAD_BYTES) -> list[str]:
    """Documents from an uploaded .txt (paragraphs split on blank lines) or .jsonl (a "text" field per line).

    Raises ValueError with a message for the user: too big, empty, binary, no usable text.
    """
    if len(data) > max_bytes:
        raise ConfigError(f"{name} is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB. "
                         "A tiny model reads only a few hundred KB in a run: upload a smaller sample.")
    if not data.strip():
        raise ConfigError(f"{name} is empty.")
    if b"\x00" in data[:65536]:
        raise ConfigError(f"{name} looks binary (it contains NUL bytes). Upload plain text (.txt) or JSON lines.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        if text.count("\ufffd") > 0.01 * len(text):
            raise ConfigError(f"{name} is not UTF-8 text (too many undecodable bytes). Save it as UTF-8.") from None
    if name.lower().endswith((".jsonl", ".json")):
        docs, bad = [], 0
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                bad += 1
                continue
            value = row.get("text") if isinstance(row, dict) else None
            if isinstance(value, str) and value.strip():
                docs.append(value.strip())
            else:
                bad += 1
        if not docs:
            raise ConfigError(f"{name} has no lines with a non-empty \"text\" field ({bad} unusable lines). "
                             'Each line must be a JSON object like {"text": "..."}.')
        return docs
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    docs = _chunk(paragraphs, 1000)
    if not docs:
        raise ConfigError(f"{name} has no text.")
    return docs


def _chunk(paragraphs: list[str], size: int) -> list[str]:
    """Group paragraphs into documents of about `size` characters (one-line files become several documents)."""
    docs, cur = [], ""
    for p in paragraphs:
        while len(p) > 2 * size:  # one huge paragraph: cut it
            docs.append(p[:size])
            p = p[size:]
        cur = f"{cur}\n\n{p}" if cur else p
        if len(cur) >= size:
            docs.append(cur)
            cur = ""
    if cur:
        docs.append(cur)
    return docs


def domain_slug(name: str) -> str:
    """A metric-key-safe name: 'My notes.txt' -> 'my_notes'."""
    stem = name.rsplit(".", 1)[0] if "." in name else name
    slug = "".join(c if c.isalnum() else "_" for c in stem.lower()).strip("_")
    return (slug or "upload")[:24]


def python_version() -> str:
    """This interpreter's 'major.minor' version (the standard library the code and prose domains come from)."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def describe(domain: str, docs: list[str]) -> str:
    """One line for the page: the domain, its document count, size in KB and the start of a sample."""
    sample = docs[0][:200] if docs else ""
    return f"{domain}: {len(docs)} documents, {sum(len(d.encode()) for d in docs) / 1000:.0f} KB. e.g. {sample!r}"


__all__ = ["BUILTIN_DOMAINS", "CLEAN_DOMAINS", "NOISY_DOMAIN", "WEB_KINDS", "web_pages", "DOMAIN_HELP",
           "MAX_UPLOAD_BYTES", "builtin_documents", "arithmetic_documents", "split", "is_validation", "parse_upload",
           "domain_slug", "python_version", "describe"]
