"""Evaluating language models: multiple-choice benchmarks by log-likelihood, generative answers, an LLM judge,
diversity and contamination. Import the module you need (`from labs.evaluation import judging`):

    scoring        multiple-choice prompts, each choice's log-likelihood (shared prefix), acc / acc_norm, one scored item
    benchmark      the benchmark as a background run: config, step function, results.json, throughput, page rows
    generative     generated answers scored by exact match, contains and regex; its background run
    judging        LLM-as-a-judge in both orders, its biases (position, first slot, length), known pairs
    diversity      distinct-n, self-overlap and self-similarity of samples against temperature; its background run
    contamination  the n-gram overlap detector and the C14 experiment (fine-tune on the test items vs a clean run)
    charts         Plotly figures: accuracy per subject, answers picked, diversity vs temperature

The run configs, ContaminationResult and load_results are re-exported here for labs.runs.results (the registry
of run kinds); everything else is imported from its module.
"""
from labs.evaluation.benchmark import BenchmarkConfig, load_results
from labs.evaluation.contamination import ContaminationConfig, ContaminationResult
from labs.evaluation.diversity import DiversityConfig
from labs.evaluation.generative import GenerativeConfig
from labs.evaluation.judging import JudgeConfig


__all__ = ["BenchmarkConfig", "ContaminationConfig", "ContaminationResult", "DiversityConfig", "GenerativeConfig",
           "JudgeConfig", "load_results"]
