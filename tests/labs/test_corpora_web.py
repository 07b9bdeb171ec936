"""The noisy 'web' domain: deterministic, labelled, mostly noise, and noise only on the training side."""
from __future__ import annotations

from collections import Counter

from labs.mixtures import filtering
from labs.data import corpora


def test_web_pages_are_deterministic_and_labelled():
    first = corpora.web_pages()
    corpora.web_pages.cache_clear()
    assert corpora.web_pages() == first  # fixed seeds: the same pages in the same order
    kinds = Counter(kind for kind, _ in first)
    assert set(kinds) == set(corpora.WEB_KINDS)
    assert corpora.builtin_documents("web") == [text for _, text in first]
    assert "web" in corpora.BUILTIN_DOMAINS and "web" in corpora.DOMAIN_HELP


def test_noise_is_over_half_the_bytes_and_never_held_out():
    pages = corpora.web_pages()
    size = Counter()
    for kind, text in pages:
        size[kind] += len(text.encode())
    assert 0.5 <= 1 - size["clean"] / sum(size.values()) <= 0.65
    train, val = corpora.split([text for _, text in pages])
    kind_of = {text: kind for kind, text in pages if kind == "clean"}
    assert val and all(kind_of.get(d) == "clean" for d in val)  # validation = clean pages only
    assert not set(train) & set(val)


def test_each_near_duplicate_comes_after_the_clean_page_it_copies():
    seen = set()
    for kind, text in corpora.web_pages():
        key = filtering.near_duplicate_key(text)
        if kind == "clean":
            seen.add(key)
        elif kind == "near-duplicate":
            assert key in seen


def test_the_web_domain_is_disjoint_from_the_prose_domain():
    web = "\n\n".join(text for kind, text in corpora.web_pages() if kind == "clean")
    shared = [d for d in corpora.builtin_documents("prose") if len(d) > 200 and d in web]
    assert not shared  # packages vs top-level modules: a mixture with both never scores web on prose's training text
