"""LoRA rank explorer: parameter arithmetic, rank sweeps, and what the update ΔW = BA really learns.

Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models" (arXiv:2106.09685). Freeze W0 ∈ R^{d×k}
and learn ΔW = B A with B ∈ R^{d×r}, A ∈ R^{r×k}, r ≪ min(d, k) (Section 4.1, eq. 3):

    h = W0 x + ΔW x = W0 x + (α / r) · B A x          A ~ Gaussian, B = 0 at the start, so ΔW = 0 at step 0.

Shape legend: d = out features, k = in features, r = rank, L = layers, T = tokens, V = vocabulary.
PEFT does the LoRA; this package holds the lesson:

    params  how many parameters, which matrices, which rank: the calculator and the sweep plans (no weights)
    train   one adapter trained with PEFT on a task with an exact answer (LoraRunConfig, train_lora)
    delta   the trained ΔW: spectra, effective rank, subspace similarity, relation to W0; the merge check

The package re-exports the names the page uses (`lora.lora_parameter_count`, `lora.LoraRunConfig`, ...).
"""
from labs.finetune.lora.delta import (DeltaW, adapter_deltas, delta_spectra, effective_rank, energy_rank,  # noqa: F401
                                      merge_check, random_adapter, right_singular_vectors, similarity_grid,
                                      singular_values, subspace_similarity, w0_projection, w0_table)
from labs.finetune.lora.params import (ALL_TARGETS, ATTENTION_TARGETS, BUDGET_RANK, GPT3, INIT_CHOICES,  # noqa: F401
                                       MATRIX_CHOICES, MLP_TARGETS, RANK_CHOICES, SWEEP_RANKS, TARGET_NAMES,
                                       Architecture, ParameterCount, architecture_of, equal_budget_plan, gpt3_reduction,
                                       gpt_like, lora_parameter_count, model_architecture, qv_verdict, rank_for_budget,
                                       rank_verdict, validate_rank_targets)
from labs.finetune.lora.train import (TASKS, LoraRunConfig, arithmetic_pairs, encode_pairs,  # noqa: F401
                                      held_out_scores, lora_model, task_pairs, task_score, task_success, train_lora)
