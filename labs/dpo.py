"""Preference tuning with DPO (and its IPO / hinge cousins) on LoRA adapters.

The lesson in one line: instead of fitting a reward model and running RL, push up the log-probability of the
chosen answer and push down the rejected one, *measured relative to a frozen reference model*.

    Rafailov et al. 2023, "Direct Preference Optimization: Your Language Model is Secretly a Reward Model"
      eq. 5   implicit reward   r(x, y) = beta * log pi_theta(y|x) / pi_ref(y|x)   (+ beta log Z(x), cancels)
      eq. 7   L_DPO = -log sigmoid( r(x, y_w) - r(x, y_l) )
      sec. 4  gradient = -beta * sigmoid(r(x, y_l) - r(x, y_w)) * [grad log pi(y_w|x) - grad log pi(y_l|x)]
    Azar et al. 2023, "A General Theoretical Paradigm to Understand Learning from Human Preferences" (IPO), eq. 17
    Zhao et al. 2023, "SLiC-HF: Sequence Likelihood Calibration with Human Feedback" (hinge)

The reference model is the policy with its LoRA adapter switched off (``with model.disable_adapter():``), so
there is only one copy of the base weights in memory. Shapes: B = number of preference pairs in a batch.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F

LOSS_VARIANTS = {
    "sigmoid": "DPO (Rafailov et al. 2023): -log σ(β·h)",
    "ipo": "IPO (Azar et al. 2023): (h − 1/(2β))²",
    "hinge": "Hinge / SLiC (Zhao et al. 2023): max(0, 1 − β·h)",
}


@dataclass
class PreferenceLoss:
    """Per-pair results of one batch, all shaped (B,)."""

    losses: torch.Tensor
    chosen_rewards: torch.Tensor  # beta * (log pi(y_w|x) - log pi_ref(y_w|x)), eq. 5 without log Z
    rejected_rewards: torch.Tensor  # beta * (log pi(y_l|x) - log pi_ref(y_l|x))

    @property
    def margins(self) -> torch.Tensor:
        return self.chosen_rewards - self.rejected_rewards

    @property
    def accuracies(self) -> torch.Tensor:
        """1 where the implicit reward ranks the pair correctly (a tie, e.g. at step 1, counts as wrong)."""
        return (self.chosen_rewards > self.rejected_rewards).float()


def preference_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
                    ref_chosen_logps: torch.Tensor, ref_rejected_logps: torch.Tensor,
                    beta: float, variant: str = "sigmoid") -> PreferenceLoss:
    """The DPO loss family from summed sequence log-probs, each (B,).

    h = log pi(y_w)/pi_ref(y_w) - log pi(y_l)/pi_ref(y_l): how much more the policy moved toward the chosen
    answer than toward the rejected one, compared with where the reference started.
    """
    if not beta > 0 or not math.isfinite(beta):
        raise ValueError(f"beta must be a positive number (got {beta}); 0.1 is the usual default.")
    if variant not in LOSS_VARIANTS:
        raise ValueError(f"Unknown loss variant '{variant}'. Choose one of: {', '.join(LOSS_VARIANTS)}.")
    chosen_logratio = policy_chosen_logps - ref_chosen_logps  # (B,)
    rejected_logratio = policy_rejected_logps - ref_rejected_logps  # (B,)
    h = chosen_logratio - rejected_logratio  # (B,)
    if variant == "sigmoid":
        losses = -F.logsigmoid(beta * h)  # eq. 7; logsigmoid is the stable form of log(σ(·))
    elif variant == "ipo":
        losses = (h - 1 / (2 * beta)) ** 2  # IPO eq. 17 (tau = beta): regress h onto a fixed target margin
    else:
        losses = torch.relu(1 - beta * h)  # SLiC-HF hinge: no gradient once the margin beta*h reaches 1
    return PreferenceLoss(losses=losses,
                          chosen_rewards=beta * chosen_logratio.detach(),
                          rejected_rewards=beta * rejected_logratio.detach())
