"""Widgets and drawing for the evaluation page (pages/80_Evaluation.py), one module per tab; the page imports them.

- shared: helpers several tabs use: upload digests, is a run active, the adapter picker, forgetting removed models.
- benchmark: the Benchmark (multiple choice) tab: the question source, scoring knobs, results, the speed check.
- qa: the Your Q&A + LLM judge tab: the Q&A scores, the judge picker, its pairs and its biases (C13).
- diversity: the Diversity tab: the sampling knobs and distinct-n / self-similarity results.
- contamination: the Contamination tab: the n-gram overlap check and the leaked-test-set experiment (C14).
- system: the Model vs system evals tab: model vs system evals and links to the related labs.

The lesson lives in labs/evaluation/ (one module per topic, listed in its __init__).
"""
