"""Training: the one loop every lab plugs its loss into.

    loop  the training loop (optimiser, schedule, accumulation, NaN guard, metrics, Stop), LoRA setup, tokenising
"""
