"""Load: files (PDF, HTML, Markdown, text, CSV, JSON/JSONL), URLs, and the default corpus.

The default corpus is real and always present offline: the docstrings of a subset of the Python standard
library that is installed alongside this app (one document per module). It is small on purpose (about
130 k characters, ~300 chunks of 500 characters) so that embedding it takes seconds on a 2-core laptop.
"""
from __future__ import annotations

import csv
import hashlib
import http.client
import importlib
import inspect
import io
import ipaddress
import json
import re
import socket
import ssl
import time
import urllib.parse
from dataclasses import dataclass
from functools import lru_cache
from pathlib import PurePath

from bs4 import BeautifulSoup

from labs.core import settings
from labs.core.errors import DataError
from labs.data.corpora import python_version  # noqa: F401  (the RAG page names the stdlib's version)
from labs.rag.markdown import clean_markdown


MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # a bigger file is refused (and would take minutes to embed anyway)
MAX_RECORDS = 20_000  # rows of a CSV / records of a JSON file kept

# Modules whose docstrings make the default corpus; the bundled question set (assets/rag) is written for them.
DEFAULT_MODULES = (
    "json", "csv", "pathlib", "itertools", "functools", "collections", "datetime", "random", "re", "textwrap",
    "heapq", "bisect", "string", "fractions", "uuid", "base64", "math", "secrets", "glob",
    "fnmatch", "copy", "enum", "dataclasses", "contextlib", "hashlib", "queue",
)

KINDS = {".pdf": "pdf", ".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown",
         ".txt": "text", ".text": "text", ".rst": "text", ".csv": "csv", ".json": "json", ".jsonl": "jsonl",
         ".ndjson": "jsonl"}


class LoadError(DataError):
    """A file or URL we cannot read; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class Document:
    """One loaded document: where it came from, its plain text, the format it was read as, and a note for the user."""
    source: str  # file name, "file.pdf#p3", module name, or URL
    text: str
    kind: str  # pdf, html, markdown, text, csv, json, jsonl, docstrings, url
    note: str = ""  # something the user should know (e.g. "not UTF-8: decoded as cp1252")


def corpus_id(docs: list[Document]) -> str:
    """A short content hash: the same documents give the same id (and reuse the same Chroma collection)."""
    h = hashlib.sha256()
    for d in docs:
        h.update(d.source.encode() + b"\0" + d.text.encode("utf-8", "replace") + b"\1")
    return h.hexdigest()[:12]


# ---------------------------------------------------------------------------------------------- the default corpus

def _module_text(module) -> str:
    """Module docstring, then `name: docstring` for each public function/class (and public methods of classes)."""
    parts = [f"Module {module.__name__}\n\n{inspect.getdoc(module) or ''}".strip()]
    names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    for name in sorted(set(names)):
        obj = getattr(module, name, None)
        if obj is None or inspect.ismodule(obj) or not (callable(obj) or inspect.isclass(obj)):
            continue
        # C modules (math, itertools, heapq) report no or another __module__; keep only what this module defines
        owner = getattr(obj, "__module__", None)
        if owner not in (None, module.__name__, "_" + module.__name__) and not owner.lstrip("_").startswith(module.__name__):
            continue
        doc = inspect.getdoc(obj)
        if not doc:
            continue
        parts.append(f"{module.__name__}.{name}: {doc}")
        if inspect.isclass(obj):
            for attr, member in sorted(vars(obj).items()):
                if attr.startswith("_") or not (callable(member) or isinstance(member, (property, classmethod, staticmethod))):
                    continue
                mdoc = inspect.getdoc(member)
                if mdoc:
                    parts.append(f"{module.__name__}.{name}.{attr}: {mdoc}")
    return "\n\n".join(parts)


@lru_cache(maxsize=4)
def _stdlib_corpus(modules: tuple[str, ...]) -> tuple[Document, ...]:
    docs = []
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError:  # a trimmed Python build; the corpus is simply smaller
            continue
        docs.append(Document(source=name, text=_module_text(module), kind="docstrings"))
    return tuple(docs)


def default_corpus(modules: tuple[str, ...] = DEFAULT_MODULES) -> list[Document]:
    """The installed standard library's docstrings (this Python's version), one document per module."""
    return list(_stdlib_corpus(tuple(modules)))


# ------------------------------------------------------------------------------------------------------ files

def decode_text(data: bytes, name: str) -> tuple[str, str]:
    """UTF-8 (with or without BOM), else cp1252, else Latin-1 -- and say so. Returns (text, note)."""
    for encoding, note in (("utf-8-sig", ""), ("cp1252", f"{name} is not UTF-8; it was read as Windows-1252."),
                           ("latin-1", f"{name} is not UTF-8; it was read as Latin-1 (some characters may be wrong).")):
        try:
            return data.decode(encoding), note
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte string")


def _clean(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def load_pdf(name: str, data: bytes) -> list[Document]:
    """One document per page with text (`name#p3`); encrypted or corrupt PDFs are refused with a reason."""
    from pypdf import PdfReader  # optional dependency: only PDF uploads use it
    from pypdf.errors import PdfReadError  # optional dependency: only PDF uploads use it

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")  # many "encrypted" PDFs only restrict printing and open with an empty password
            except Exception:  # noqa: BLE001 - pypdf raises several types for unsupported crypto
                ok = 0
            if not ok:
                raise LoadError(f"{name} is encrypted (password-protected); save an unprotected copy and upload that.")
        pages = [page.extract_text() or "" for page in reader.pages]
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise LoadError(f"{name} is not a readable PDF ({type(exc).__name__}: {exc}).") from exc
    docs = [Document(f"{name}#p{i + 1}", _clean(t), "pdf") for i, t in enumerate(pages) if t.strip()]
    if not docs:
        raise LoadError(f"{name} has no extractable text (a scanned PDF needs OCR first).")
    return docs


def html_to_text(markup: str) -> str:
    """Visible text only: scripts, styles and templates are dropped, never executed or rendered."""
    soup = BeautifulSoup(markup, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "head"]):
        tag.decompose()
    return _clean(soup.get_text("\n"))


def _record_text(record) -> str:
    if isinstance(record, dict):
        return "; ".join(f"{k}: {json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v}"
                         for k, v in record.items())
    return json.dumps(record, ensure_ascii=False) if isinstance(record, (list,)) else str(record)


def load_csv(name: str, text: str) -> str:
    """Each row becomes one paragraph `column: value; column: value` so a chunk keeps the column names."""
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = []
    try:
        for i, row in enumerate(csv.DictReader(io.StringIO(text), dialect=dialect)):
            if i >= MAX_RECORDS:
                break
            rows.append(_record_text({k: v for k, v in row.items() if k is not None}))
    except csv.Error as exc:
        raise LoadError(f"{name} is not valid CSV ({exc}).") from exc
    return "\n\n".join(rows)


def load_json(name: str, text: str, lines: bool) -> str:
    """A list of records (or JSONL) becomes one paragraph per record; any other JSON is pretty-printed."""
    try:
        if lines:
            records = [json.loads(line) for line in text.splitlines() if line.strip()][:MAX_RECORDS]
        else:
            value = json.loads(text)
            if isinstance(value, list):
                records = value[:MAX_RECORDS]
            else:
                return json.dumps(value, indent=1, ensure_ascii=False)
    except json.JSONDecodeError as exc:
        raise LoadError(f"{name} is not valid {'JSON Lines' if lines else 'JSON'}: {exc.msg} "
                        f"at line {exc.lineno}, column {exc.colno}.") from exc
    return "\n\n".join(_record_text(r) for r in records)


def load_file(name: str, data: bytes) -> list[Document]:
    """Read one uploaded file by its extension. Raises LoadError with a reason for anything unusable."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise LoadError(f"{name} is {len(data) / 2**20:.0f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB. "
                        "Split it or upload the part you need.")
    if not data.strip():
        raise LoadError(f"{name} is empty.")
    suffix = PurePath(name).suffix.lower()
    kind = KINDS.get(suffix)
    if kind is None:
        raise LoadError(f"{name}: unsupported type '{suffix or 'no extension'}'. Use one of: {', '.join(sorted(KINDS))}.")
    if kind == "pdf":
        return load_pdf(name, data)
    text, note = decode_text(data, name)
    if kind == "html":
        text = html_to_text(text)
    elif kind == "csv":
        text = load_csv(name, text)
    elif kind in ("json", "jsonl"):
        text = load_json(name, text, lines=kind == "jsonl")
    elif kind == "markdown":  # front matter and <!-- comments --> are never shown to a reader: never embed them
        text = _clean(clean_markdown(text))
    else:
        text = _clean(text)
    if not text.strip():
        raise LoadError(f"{name} contains no text after parsing.")
    return [Document(name, text, kind, note)]


# ------------------------------------------------------------------------------------------------------- URLs
# On a class server every student's browser can make the server fetch a URL, so a URL may only lead to the
# public internet: never to the server itself (127.0.0.1, ::1), the room's network (10/8, 172.16/12, 192.168/16,
# fc00::/7) or the cloud metadata service (169.254.169.254). The host is resolved, every address is checked, the
# connection goes to the checked address (so DNS cannot answer differently a second time), and each redirect
# is checked the same way. No proxy from the environment is used: it would hide where the request really goes.
MAX_REDIRECTS = 5
URL_SCHEMES = ("http", "https")
URL_LOADING_OFF = ("URL loading is turned off on this server (the instructor set LLMLAB_URL_LOADING=off or "
                   "switched it off for the class). Download the page and upload the file instead.")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (::ffff:a.b.c.d, 6to4, Teredo, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in ipaddress.ip_network("64:ff9b::/96"):  # RFC 6052 NAT64: the last 32 bits are the IPv4 address
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _inside_kind(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    for test, what in (("is_unspecified", "an unspecified address"), ("is_loopback", "a loopback address (this server)"),
                       ("is_link_local", "a link-local address (where cloud metadata lives)"),
                       ("is_multicast", "a multicast address"), ("is_private", "a private-network address"),
                       ("is_reserved", "a reserved address"), ("is_site_local", "a site-local address")):
        if getattr(ip, test, False):
            return what
    if not ip.is_global:  # shared carrier NAT (100.64/10), documentation ranges, ...
        return "not a public internet address"
    return None


def address_problem(address: str) -> str | None:
    """Why the server must not connect to `address` (an IP literal), or None for a public address.

    >>> address_problem("::ffff:127.0.0.1")
    '::ffff:127.0.0.1 (= 127.0.0.1) is a loopback address (this server)'
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    except ValueError:
        return f"{address} is not an IP address"
    inner = _embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    if inner is not None:
        kind = _inside_kind(inner)
        return f"{address} (= {inner}) is {kind}" if kind else None
    kind = _inside_kind(ip)
    return f"{address} is {kind}" if kind else None


def resolve_public(host: str, port: int) -> list[str]:
    """The addresses to try for `host`, in DNS order: every address DNS gives must be public, else LoadError."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise LoadError(f"Could not find the host {host} ({exc}). This machine may have no internet access: "
                        "download the page and upload the file instead.") from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise LoadError(f"Could not find the host {host}.")
    for address in addresses:  # one inside address is enough to refuse: DNS could rotate to it
        problem = address_problem(address)
        if problem:
            raise LoadError(f"Refused: {host} leads to {problem}. The RAG page only fetches public web pages, "
                            "never addresses inside the server's own network; download the page and upload the "
                            "file instead.")
    return addresses


def _pinned(cls, addresses: list[str]):
    """An http.client connection class that connects only to `addresses` (already checked; the first that answers)
    whatever the URL's host says, and checks the socket's peer. TLS still verifies the certificate for the URL's host."""

    def connect_checked(_hostport, timeout, source=None):
        error: OSError | None = None
        for address in addresses:
            try:
                sock = socket.create_connection((address, _hostport[1]), timeout, source)
            except OSError as exc:  # e.g. an IPv6 address on a machine without an IPv6 route: try the next
                error = exc
                continue
            peer = sock.getpeername()[0]
            if peer.split("%", 1)[0] != address.split("%", 1)[0] or address_problem(peer):
                sock.close()
                raise LoadError(f"Refused: the connection went to {peer}, not to the checked address {address}.")
            return sock
        raise error or OSError("no address to connect to")

    class Pinned(cls):
        def connect(self):
            self._create_connection = connect_checked
            super().connect()

    return Pinned


def _fetch_once(url: str, deadline: float, timeout: float) -> tuple[int, dict, bytes, str]:
    """One request (no redirects followed): (status, headers, body, content type)."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in URL_SCHEMES:
        raise LoadError(f"A URL must start with http:// or https:// (this one is {scheme or 'missing'}://).")
    if parts.username or parts.password:
        raise LoadError("A URL with a user name or password in it is not fetched.")
    host = parts.hostname
    if not host:
        raise LoadError(f"{url} has no host name.")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise LoadError(f"{url} has an invalid port ({exc}).") from exc
    addresses = resolve_public(host, port)
    remaining = max(deadline - time.monotonic(), 0.1)
    if scheme == "https":
        conn = _pinned(http.client.HTTPSConnection, addresses)(host, port, timeout=min(timeout, remaining),
                                                             context=ssl.create_default_context())
    else:
        conn = _pinned(http.client.HTTPConnection, addresses)(host, port, timeout=min(timeout, remaining))
    path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    try:
        conn.request("GET", path, headers={"User-Agent": "llmlab-rag/1.0", "Accept-Encoding": "identity"})
        response = conn.getresponse()
        body = b""
        if response.status < 300 or response.status >= 400:
            chunks, size = [], 0
            while size <= MAX_UPLOAD_BYTES:
                if time.monotonic() > deadline:
                    raise LoadError(f"{url} took longer than {timeout:.0f} s to download; upload the file instead.")
                chunk = response.read(min(64 * 1024, MAX_UPLOAD_BYTES + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            body = b"".join(chunks)
        return response.status, dict(response.getheaders()), body, response.headers.get_content_type()
    finally:
        conn.close()


def fetch_url(url: str, timeout: float = 8.0, *, allowed: bool = True) -> list[Document]:
    """Fetch a public web page or PDF. Offline (or blocked) machines get a clear LoadError, never a hang.

    Refuses anything but http(s), any host that resolves to an address inside the server's network (checked
    again on every redirect and on the socket actually connected), bodies over MAX_UPLOAD_BYTES, and downloads
    slower than `timeout` seconds in all. `allowed=False` (the instructor's switch) refuses every URL.
    """
    url = (url or "").strip()
    if not allowed or not settings.url_loading():
        raise LoadError(URL_LOADING_OFF)
    if not re.match(r"^https?://", url, re.I):
        raise LoadError("A URL must start with http:// or https://.")
    deadline = time.monotonic() + timeout
    current = url
    try:
        for _ in range(MAX_REDIRECTS + 1):
            status, headers, data, ctype = _fetch_once(current, deadline, timeout)
            location = next((v for k, v in headers.items() if k.lower() == "location"), None)
            if status in (301, 302, 303, 307, 308) and location:
                current = urllib.parse.urljoin(current, location.strip())  # checked like the first URL
                continue
            break
        else:
            raise LoadError(f"{url} redirects more than {MAX_REDIRECTS} times; upload the file instead.")
    except LoadError:
        raise
    except (http.client.HTTPException, ssl.SSLError, TimeoutError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise LoadError(f"Could not fetch {url} ({reason}). This machine may have no internet access: "
                        "download the page and upload the file instead.") from exc
    if status >= 400:
        raise LoadError(f"{current} answered HTTP {status}; check the address or upload the file instead.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise LoadError(f"{current} is larger than {MAX_UPLOAD_BYTES // 2**20} MB; the limit is "
                        f"{MAX_UPLOAD_BYTES // 2**20} MB. Upload the part you need.")
    name = current.rstrip("/").rsplit("/", 1)[-1] or "page"
    if ctype == "application/pdf":
        return [Document(f"{url}#{d.source.rsplit('#', 1)[-1]}", d.text, "url") for d in load_pdf(name, data)]
    text, note = decode_text(data, url)
    text = html_to_text(text) if "html" in ctype or text.lstrip()[:1] == "<" else _clean(text)
    if not text:
        raise LoadError(f"{url} has no readable text.")
    return [Document(url, text, "url", note)]
