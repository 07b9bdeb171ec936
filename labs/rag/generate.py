"""Generate: the prompt that puts retrieved chunks in front of the question, citations, and the HyDE passage.

The answer streams from the shared local model via labs.serving.generation. When even the best retrieved chunk is
barely similar to the question (cosine below a threshold), we do not ask the model at all and answer
"I don't know" -- a 135M model would otherwise make something up from unrelated context.
"""
from __future__ import annotations

import re
from typing import Iterator, Sequence

import torch

from labs.rag.retrieve import MAX_CHARS_PER_CHUNK, Passage, Retrieval
from labs.serving import endpoints as backends
from labs.serving import generation


SYSTEM = ("You answer questions about documentation. Use only the numbered context passages. "
          "Cite the passages you used like [1] or [2]. If the passages do not contain the answer, "
          "say \"I don't know.\"")


def answer_config(max_new_tokens: int, temperature: float = 0.0, seed: int = 0) -> generation.GenerationConfig:
    """Decoding settings for answers from passages: no repetition penalty, because it penalises every token of the
    prompt's end too (labs.serving.generation.sample_next), i.e. exactly the words the answer should copy from the context
    (bench_lessons C9: 7 → 15 of 30 answers contain the key with compression; the no-RAG answers are decoded alike)."""
    return generation.GenerationConfig(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                                       repetition_penalty=1.0)


def context_block(passages: Sequence[Passage]) -> str:
    """The passages the model reads, one line '[rank] text' each (sentences of one chunk share its number), so the
    answer can cite them."""
    return "\n\n".join(f"[{p.rank}] {p.text.strip()}" for p in passages)


def rag_messages(question: str, passages: Sequence[Passage]) -> list[dict]:
    """System rules + one user turn holding the numbered passages (Retrieval.passages: compressed sentences or whole
    chunks, retrieve.whole) and the question."""
    user = (f"Context:\n{context_block(passages)}\n\nQuestion: {question.strip()}\n"
            "Answer in one or two sentences and cite passages.")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def plain_messages(question: str) -> list[dict]:
    """The same question with no retrieval: what the model knows (or invents) on its own."""
    return [{"role": "user", "content": f"{question.strip()}\nAnswer in one or two sentences."}]


def no_answer(retrieval: Retrieval, threshold: float) -> str:
    """The 'I don't know' answer when retrieval is below the threshold, with the best similarity it found."""
    return (f"I don't know: no passage in the corpus looks relevant (best cosine similarity "
            f"{retrieval.best_similarity:.2f} < threshold {threshold:.2f}), so the model was not asked.")


def is_answerable(retrieval: Retrieval, threshold: float) -> bool:
    """Some chunk was retrieved and the best one's cosine similarity reaches the threshold."""
    return bool(retrieval.hits) and retrieval.best_similarity >= threshold


def citations(answer: str, k: int) -> list[int]:
    """Passage numbers cited as [n] (also [1, 2] and [1][3]), in order of first mention, only 1..k."""
    found: list[int] = []
    for group in re.findall(r"\[(\d+(?:\s*,\s*\d+)*)\]", answer):
        for n in re.findall(r"\d+", group):
            n = int(n)
            if 1 <= n <= k and n not in found:
                found.append(n)
    return found


def stream_answer(lm, retrieval: Retrieval, config: generation.GenerationConfig, threshold: float) -> Iterator[str]:
    """Stream the grounded answer, or the 'I don't know' sentence when nothing relevant was retrieved."""
    if not is_answerable(retrieval, threshold):
        yield no_answer(retrieval, threshold)
        return
    yield from backends.stream(lm, rag_messages(retrieval.question, retrieval.passages), config)


def stream_plain(lm, question: str, config: generation.GenerationConfig) -> Iterator[str]:
    """`lm`: a local model or an endpoint (labs.serving.endpoints), here and in stream_answer and hyde_passage."""
    yield from backends.stream(lm, plain_messages(question), config)


def hyde_passage(lm, question: str, max_new_tokens: int = 64, seed: int = 0) -> str:
    """HyDE (Gao et al. 2022): a short passage that would answer the question; facts may be wrong, that is fine --
    only its embedding is used, to land the search near real passages that look like it."""
    prompt = [{"role": "user", "content": f"Write a short passage from the Python documentation that answers: "
                                          f"{question.strip()}"}]
    config = generation.GenerationConfig(max_new_tokens=max_new_tokens, temperature=0.0, seed=seed)
    return backends.generate(lm, prompt, config).strip()


@torch.inference_mode()
def llm_relevance(lm, question: str, passage: str) -> float:
    """Pointwise LLM re-ranker: log p("Yes") − log p("No") for "does the passage help answer the question?".

    The model reads question and passage together, like a cross-encoder (Nogueira & Cho 2019 fine-tune BERT
    for exactly this); one forward pass per candidate, so it re-ranks a short list, never the whole corpus.
    """
    messages = [{"role": "user", "content": f"Passage:\n{passage.strip()[:MAX_CHARS_PER_CHUNK]}\n\n"
                                            f"Question: {question.strip()}\n"
                                            "Does the passage help answer the question? Answer Yes or No."}]
    lm = backends.require_local(lm, "used to re-rank (it scores log p(Yes) − log p(No))")
    text = generation.render_prompt(lm, messages)
    ids = lm.tokenizer(text, add_special_tokens=lm.spec.prompt_format != "chat")["input_ids"]
    device = next(lm.model.parameters()).device
    with lm.lock:
        logits = lm.model(input_ids=torch.tensor([ids], device=device), logits_to_keep=1).logits[0, -1].float()
    logp = torch.log_softmax(logits, dim=-1)
    yes = lm.tokenizer.encode("Yes", add_special_tokens=False)[0]
    no = lm.tokenizer.encode("No", add_special_tokens=False)[0]
    return float(logp[yes] - logp[no])
