"""Markdown cleaning before splitting: front matter and HTML comments never reach the chunks; code and rules stay."""
from labs.rag import load
from labs.rag.markdown import clean_markdown, strip_front_matter, strip_html_comments
from labs.rag.split import SplitConfig, split_documents

LICENCE = "<!--\n  Licensed to the Apache Software Foundation (ASF) under one\n  or more contributor license agreements.\n-->"


def test_yaml_and_toml_front_matter_are_removed_only_at_the_top():
    assert strip_front_matter("---\ntitle: Intro\ntags: [a, b]\n---\n# Intro\n") == "# Intro\n"
    assert strip_front_matter('+++\ntitle = "Intro"\n+++\r\nBody') == "Body"
    assert strip_front_matter("\ufeff---\nx: 1\n---\nBody") == "Body"
    # a horizontal rule later in the text is content, not front matter
    text = "# Title\n\nBefore\n\n---\n\nAfter\n\n---\n"
    assert strip_front_matter(text) == text
    # an opening fence that is never closed is not front matter either
    assert strip_front_matter("---\nno closing fence\n# Title") == "---\nno closing fence\n# Title"


def test_html_comments_are_removed_outside_code_blocks():
    text = f"{LICENCE}\n# Install\nRun it.<!-- TODO: screenshot --> Done.\n\n```html\n<!-- kept: an example -->\n```\nEnd"
    out = strip_html_comments(text)
    assert "Licensed" not in out and "TODO" not in out
    assert "Run it. Done." in out and "<!-- kept: an example -->" in out and out.endswith("End")
    assert strip_html_comments("a <!-- never closed") == "a <!-- never closed"  # not a comment a browser closes


def test_clean_markdown_squeezes_the_gaps_it_leaves():
    text = f"---\ntitle: t\n---\n\n{LICENCE}\n\n\n\n# Title\n\nBody\n"
    assert clean_markdown(text) == "# Title\n\nBody"


def test_markdown_upload_chunks_hold_no_licence_header_or_front_matter():
    body = "\n\n".join(f"Paragraph {i} explains how the parser reads option {i}." for i in range(40))
    data = f"---\nlayout: page\ntitle: Parser\n---\n{LICENCE}\n\n# Parser\n\n{body}\n".encode()
    (doc,) = load.load_file("parser.md", data)
    assert doc.text.startswith("# Parser") and doc.kind == "markdown"
    chunks = split_documents([doc], SplitConfig(chunk_size=200, chunk_overlap=20))
    assert len(chunks) > 5
    assert not [c for c in chunks if "Licensed" in c.text or "layout:" in c.text]
    # the same text uploaded as plain text keeps everything: only Markdown has invisible parts
    (txt,) = load.load_file("parser.txt", data)
    assert "Licensed" in txt.text and "layout: page" in txt.text
