"""Prompt templates and loss masking: how an (instruction, input, output) example becomes tokens, and which of
them the loss is trained on (the prompt's labels are -100 unless train_on_prompt). Alpaca's templates verbatim,
the model's own chat template, or plain text."""
from __future__ import annotations

from dataclasses import dataclass

from labs.core.errors import ConfigError
from labs.data.instructions import Example
from labs.models import ModelError
from labs.training import loop as training


TEMPLATES = {
    "chat": "The model's own chat template (what SmolLM2-Instruct was tuned with)",
    "alpaca": "Alpaca (Taori et al. 2023): '### Instruction:' / '### Input:' / '### Response:'",
    "plain": "Plain text: the instruction, a blank line, then the answer",
}
MODES = {"lora": "LoRA adapters (PEFT)", "last_n": "Last N blocks", "full": "Full fine-tuning"}

# Alpaca's two prompt templates, verbatim (github.com/tatsu-lab/stanford_alpaca, train.py PROMPT_DICT).
ALPACA_INPUT = ("Below is an instruction that describes a task, paired with an input that provides further context. "
                "Write a response that appropriately completes the request.\n\n"
                "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n")
ALPACA_NO_INPUT = ("Below is an instruction that describes a task. Write a response that appropriately completes the "
                   "request.\n\n### Instruction:\n{instruction}\n\n### Response:\n")


def has_chat_template(tokenizer) -> bool:
    """True when the tokenizer ships a chat template (instruct models; base models usually have none)."""
    return bool(getattr(tokenizer, "chat_template", None))


def render(example: Example, template: str, tokenizer) -> tuple[str, str]:
    """(prompt text, response text) of one example; the tokenizer's EOS is appended later by tokenize_example."""
    if template == "chat":
        if not has_chat_template(tokenizer):
            raise ModelError("This model has no chat template (it is a base model); choose the Alpaca or plain template.")
        prompt = tokenizer.apply_chat_template(example.messages(), tokenize=False, add_generation_prompt=True)
        return prompt, example.output
    history = "".join(f"{role.capitalize()}: {text}\n" for role, text in example.history)
    instruction = (example.system + "\n\n" if example.system else "") + history + example.instruction
    if template == "alpaca":
        fmt = ALPACA_INPUT if example.input else ALPACA_NO_INPUT
        return fmt.format(instruction=instruction, input=example.input), example.output
    if template == "plain":
        return instruction + ("\n\n" + example.input if example.input else "") + "\n\n", example.output
    raise ConfigError(f"Unknown template '{template}'; choose one of {list(TEMPLATES)}.")


@dataclass
class TokenizedSet:
    """Tokenised rows with their loss masks, and how many examples were cut or dropped at max_len."""

    rows: list[dict]  # training.tokenize_example dicts
    truncated: int = 0  # rows cut at max_len (kept if some response tokens survive)
    dropped: int = 0  # rows whose prompt alone filled max_len: nothing left to train on

    @property
    def tokens(self) -> int:
        """Tokens in all rows, prompt and response."""
        return sum(len(r["input_ids"]) for r in self.rows)

    @property
    def supervised(self) -> int:
        """Tokens the loss sees (labels not masked with -100)."""
        return sum(sum(1 for x in r["labels"] if x != training.IGNORE) for r in self.rows)


def tokenize(examples: list[Example], tokenizer, template: str, train_on_prompt: bool = False,
             max_len: int = 256) -> TokenizedSet:
    """Render + tokenise with the loss mask; rows longer than max_len are truncated (and counted)."""
    out = TokenizedSet([])
    for ex in examples:
        prompt, response = render(ex, template, tokenizer)
        row = training.tokenize_example(tokenizer, prompt, response, train_on_prompt=train_on_prompt, max_len=max_len)
        full = len(tokenizer(prompt + response, add_special_tokens=False)["input_ids"]) + 1
        if row["prompt_len"] >= len(row["input_ids"]) - 1 and not train_on_prompt:
            out.dropped += 1
            continue
        if full > max_len:
            out.truncated += 1
        out.rows.append(row)
    return out


def token_view(tokenizer, example: Example, template: str, train_on_prompt: bool = False,
               max_len: int = 256) -> list[dict]:
    """One dict per token: text, id, and whether the loss trains on it (predicting this token from the ones before)."""
    prompt, response = render(example, template, tokenizer)
    row = training.tokenize_example(tokenizer, prompt, response, train_on_prompt=train_on_prompt, max_len=max_len)
    return [{"text": tokenizer.decode([tid]), "id": tid, "trained": label != training.IGNORE,
             "part": "prompt" if i < row["prompt_len"] else "response"}
            for i, (tid, label) in enumerate(zip(row["input_ids"], row["labels"]))]
