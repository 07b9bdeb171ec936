"""Drawing helpers for the LoRA rank explorer (pages/40_LoRA_rank_explorer.py), one module per tab; the page imports
the modules.

- shared: the model's matrices, a group of runs (start, watch, tabulate) and the finished runs, used by several tabs.
- calculator: the Parameter calculator tab: GPT-3-like dimensions, the count's figures, the GPT-3 box.
- sweep: the Rank sweep tab: the training settings it shares with Which matrices, and the sweep's results (C6).
- which: the Which matrices tab: the equal-budget runs' results (C7).
- inside: the Inside ΔW tab: ΔW's spectra, subspace similarity between two ranks, the relation to W0.
- merge: the Merge check tab: merged vs unmerged logits, speeds and texts.

The arithmetic lives in labs/finetune/lora/ (params, train, delta).
"""
