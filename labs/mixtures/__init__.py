"""Pre-training data mixtures: the budget arithmetic, sampling by weights, and a tiny GPT trained on a mix.
Import the module you need (`from labs.mixtures import calculator`):

    calculator   published mixes (GPT-3, LLaMA-1), token budgets and epochs per source, training-set growth
    next_token   labels are the inputs shifted by one: per-position next-token loss of a causal LM
    filtering    the quality filter (exact / near-duplicates, Gopher-style rules), its report and precision / recall
    pretrain     the live tiny-GPT run: byte streams, batches drawn by weight, per-domain loss, overfitting (C3)
    comparison   quality beats quantity at equal compute (M4): the same GPT with and without the filter
    charts       Plotly figures: shares and epochs per source, training-set growth
    gpt          the small GPT decoder itself (nanoGPT recipe)

MixtureRunConfig, QualityComparisonConfig and quality_result are re-exported here for labs.runs.results (the
registry of run kinds); everything else is imported from its module.
"""
from labs.mixtures.comparison import QualityComparisonConfig, quality_result
from labs.mixtures.pretrain import MixtureRunConfig

__all__ = ["MixtureRunConfig", "QualityComparisonConfig", "quality_result"]
