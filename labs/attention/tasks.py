"""Synthetic tasks that separate what a fixed-size state can and cannot do (Arora et al. 2024 'Zoology';
Merrill, Petty & Sabharwal 2024 'The Illusion of State in State-Space Models'; Jelassi et al. 2024 'Repeat After Me').

Each generator returns `inputs` [N, T] token ids and `labels` [N, T]: the token the model must output at each
position, or -100 where nothing is scored. Token 0 is never used as data (kept for padding).

* MQAR — multi-query associative recall. Key–value pairs, then queries; only query positions are scored.
  Worked example (num_kv_pairs=3, vocab_size=64: keys from 2..31, values from 32..63):

      inputs : 4 40  9 33 17 51 | 17 51  4 40  9 33
      labels : .  .  .  .  .  . | 51  .  40 .  33  .        (. = -100)

  A softmax layer can look the key up; a recurrent layer must have stored all pairs in its state.

* parity — bits in, the running parity out at every position (state tracking in Z_2):

      inputs : 2 1 2 2 1        (1 = bit 0, 2 = bit 1)
      labels : 2 2 1 2 2        (1 = parity 0, 2 = parity 1)

* permutation — elements of the symmetric group S_n in, the running product out at every position
  (the 'word problem'; S_5 is the non-solvable case that constant-depth transformers provably cannot do
  in general, Merrill et al. 2024). Element ids are 1 + index in `permutations(n)`.

* copy / palindrome — tokens, a separator, then the same tokens again (copy) or reversed (palindrome):

      inputs : 7 12 5 1 | 5 12        (1 = separator; the last output token is never an input)
      labels : .  . . 5 | 12 7        (palindrome: 7 12 5 reversed is 5 12 7)
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from labs.core.errors import ConfigError


TASKS = {
    "mqar": "MQAR (associative recall)",
    "parity": "Parity (state tracking)",
    "permutation": "Permutation composition (state tracking)",
    "copy": "Copy",
    "palindrome": "Palindrome (reverse)",
}
IGNORE = -100
SEP = 1


@dataclass(frozen=True)
class TaskConfig:
    """One synthetic task (`name`, a key of TASKS) and its size; the fields that do not apply to it are ignored."""
    name: str = "mqar"
    vocab_size: int = 64  # mqar/copy/palindrome: keys in the lower half, values in the upper half (mqar)
    num_kv_pairs: int = 8  # mqar: pairs to remember (and queries asked)
    length: int = 16  # parity/permutation: sequence length; copy/palindrome: tokens to copy
    group_size: int = 3  # permutation: S_n with n! elements (3 -> 6, 4 -> 24, 5 -> 120)

    def __post_init__(self):
        if self.name not in TASKS:
            raise ConfigError(f"Unknown task '{self.name}'. Choose one of: {', '.join(TASKS)}.")
        if self.vocab_size < 8:
            raise ConfigError("The vocabulary needs at least 8 tokens.")
        if self.name == "mqar" and not 1 <= self.num_kv_pairs < self.vocab_size // 2 - 1:
            raise ConfigError(f"MQAR needs 1 ≤ key-value pairs < vocab/2 − 1 = {self.vocab_size // 2 - 1} "
                             "(each pair needs its own key). Lower the pairs or raise the vocabulary.")
        if self.length < 2:
            raise ConfigError("The sequence length must be at least 2.")
        if self.name == "permutation" and not 2 <= self.group_size <= 5:
            raise ConfigError("The permutation group size n must be between 2 and 5 (S_5 has 120 elements).")

    @property
    def seq_len(self) -> int:
        """Length T of `inputs`."""
        if self.name == "mqar":
            return 4 * self.num_kv_pairs
        if self.name in ("copy", "palindrome"):
            return 2 * self.length
        return self.length

    @property
    def model_vocab(self) -> int:
        """Output classes the model needs."""
        if self.name == "parity":
            return 3
        if self.name == "permutation":
            return 1 + math.factorial(self.group_size)
        return self.vocab_size

    @property
    def chance(self) -> float:
        """Accuracy of guessing uniformly among the plausible answers."""
        if self.name == "mqar":
            return 1 / (self.vocab_size - self.vocab_size // 2)
        if self.name == "parity":
            return 0.5
        if self.name == "permutation":
            return 1 / math.factorial(self.group_size)
        return 1 / (self.vocab_size - 2)


def generate(config: TaskConfig, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n examples of the task: (inputs [n, T], labels [n, T]) as int64."""
    gen = torch.Generator().manual_seed(int(seed))
    return {"mqar": _mqar, "parity": _parity, "permutation": _permutation,
            "copy": _copy, "palindrome": _copy}[config.name](config, n, gen)


def _mqar(config: TaskConfig, n: int, gen: torch.Generator):
    P, V = config.num_kv_pairs, config.vocab_size
    half = V // 2
    # distinct keys per example from 2..half-1, values (may repeat) from half..V-1
    keys = torch.argsort(torch.rand(n, half - 2, generator=gen), dim=1)[:, :P] + 2             # [n, P]
    values = torch.randint(half, V, (n, P), generator=gen)                                      # [n, P]
    order = torch.argsort(torch.rand(n, P, generator=gen), dim=1)                              # query order
    q_keys, q_values = keys.gather(1, order), values.gather(1, order)
    context = torch.stack([keys, values], dim=2).view(n, 2 * P)
    queries = torch.stack([q_keys, q_values], dim=2).view(n, 2 * P)
    inputs = torch.cat([context, queries], dim=1)                                               # [n, 4P]
    labels = torch.full_like(inputs, IGNORE)
    labels[:, 2 * P::2] = q_values                                   # only the query-key positions are scored
    return inputs, labels


def _parity(config: TaskConfig, n: int, gen: torch.Generator):
    bits = torch.randint(0, 2, (n, config.length), generator=gen)
    return bits + 1, bits.cumsum(1) % 2 + 1


def permutations(size: int) -> list[tuple[int, ...]]:
    """Every permutation of range(size), in a fixed order: index i stands for group element i."""
    return list(itertools.permutations(range(size)))


def compose_table(size: int) -> torch.Tensor:
    """table[a, b] = index of (a ∘ b): apply b first, then a."""
    perms = permutations(size)
    index = {p: i for i, p in enumerate(perms)}
    return torch.tensor([[index[tuple(a[b[i]] for i in range(size))] for b in perms] for a in perms])


def _permutation(config: TaskConfig, n: int, gen: torch.Generator):
    table = compose_table(config.group_size)
    elems = torch.randint(0, table.shape[0], (n, config.length), generator=gen)
    state = elems[:, 0]
    prods = [state]
    for t in range(1, config.length):
        state = table[elems[:, t], state]                                    # g_t ∘ (g_{t−1} ∘ … ∘ g_1)
        prods.append(state)
    return elems + 1, torch.stack(prods, dim=1) + 1


def _copy(config: TaskConfig, n: int, gen: torch.Generator):
    T = config.length
    x = torch.randint(2, config.vocab_size, (n, T), generator=gen)
    y = x.flip(1) if config.name == "palindrome" else x
    inputs = torch.cat([x, torch.full((n, 1), SEP), y[:, :-1]], dim=1)                       # [N, 2T]
    labels = torch.cat([torch.full((n, T), IGNORE), y], dim=1)
    return inputs, labels


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of scored positions (labels ≠ -100) where the arg-max is the label."""
    scored = labels != IGNORE
    if not scored.any():
        return float("nan")
    return (logits.argmax(-1)[scored] == labels[scored]).float().mean().item()
