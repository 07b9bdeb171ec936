"""Loaders: every format the page accepts, and every kind of bad input it must refuse with a reason."""
import io
import json

import pytest

from labs.rag import load


def tiny_pdf(text: str) -> bytes:
    """A one-page PDF with `text` in Helvetica, written by hand (no PDF writer needed)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = b"%PDF-1.4\n", []
    for i, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)


def test_default_corpus_is_real_and_small():
    docs = load.default_corpus()
    assert {d.source for d in docs} >= {"json", "collections", "re"}
    total = sum(len(d.text) for d in docs)
    assert 50_000 < total < 200_000  # embeds in well under a minute on 2 cores
    assert "sort_keys" in next(d.text for d in docs if d.source == "json")
    assert load.corpus_id(docs) == load.corpus_id(load.default_corpus())


def test_pdf_text_and_bad_pdfs():
    docs = load.load_file("paper.pdf", tiny_pdf("Retrieval augmented generation"))
    assert docs[0].source == "paper.pdf#p1" and "Retrieval augmented generation" in docs[0].text
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(tiny_pdf("secret"))))
    writer.encrypt("password")
    buf = io.BytesIO()
    writer.write(buf)
    with pytest.raises(load.LoadError, match="encrypted"):
        load.load_file("locked.pdf", buf.getvalue())
    with pytest.raises(load.LoadError, match="not a readable PDF"):
        load.load_file("broken.pdf", b"%PDF-1.4\nthis is not really a pdf")


def test_html_scripts_are_dropped():
    html = b"<html><head><title>t</title><script>alert('x')</script></head><body><h1>Hello</h1>" \
           b"<p>World <b>bold</b></p><style>p{}</style><script>document.write('evil')</script></body></html>"
    (doc,) = load.load_file("page.html", html)
    assert "Hello" in doc.text and "World" in doc.text
    assert "alert" not in doc.text and "evil" not in doc.text and "<" not in doc.text


def test_structured_formats_keep_field_names():
    (csv_doc,) = load.load_file("t.csv", b"name,colour\napple,red\nbanana,yellow\n")
    assert csv_doc.text.split("\n\n") == ["name: apple; colour: red", "name: banana; colour: yellow"]
    (json_doc,) = load.load_file("t.json", json.dumps([{"q": "a?", "a": 1}, {"q": "b?", "a": 2}]).encode())
    assert json_doc.text == "q: a?; a: 1\n\nq: b?; a: 2"
    (jsonl_doc,) = load.load_file("t.jsonl", b'{"x": 1}\n\n{"x": [1, 2]}\n')
    assert jsonl_doc.text == "x: 1\n\nx: [1, 2]"
    (md,) = load.load_file("notes.md", b"# Title\r\n\r\n\r\n\r\nBody")
    assert md.text == "# Title\n\nBody"
    with pytest.raises(load.LoadError, match="line 1"):
        load.load_file("bad.json", b"{not json")


def test_bad_inputs_are_refused_with_reasons(monkeypatch):
    with pytest.raises(load.LoadError, match="empty"):
        load.load_file("empty.txt", b"  \n")
    with pytest.raises(load.LoadError, match="unsupported"):
        load.load_file("program.exe", b"MZ....")
    monkeypatch.setattr(load, "MAX_UPLOAD_BYTES", 1000)
    with pytest.raises(load.LoadError, match="limit"):
        load.load_file("big.txt", b"a" * 1001)
    (latin,) = load.load_file("latin.txt", "café crème".encode("cp1252"))
    assert latin.text == "café crème" and "not UTF-8" in latin.note


def test_url_fails_clearly_offline():
    with pytest.raises(load.LoadError, match="http"):
        load.fetch_url("ftp://example.com/x")
    with pytest.raises(load.LoadError, match="upload the file"):
        load.fetch_url("http://127.0.0.1:9/nothing-listens-here", timeout=2)
