"""Fine-tuning labs: each module owns its Config, run function, Result and reader.

    sft         instruction tuning: the run (LoRA, last N blocks or full), LIMA's size sweep, the tuned model
    cost        what an instruction-tuning run will cost before it starts: trainable parameters, memory, time
    templates   prompt templates (Alpaca, chat, plain) and loss masking: which tokens the loss trains on
    answers     before/after answers and their scores (the answer card's format, exact answers)
    classifier  classifier fine-tuning: a new output layer, frozen layers
    dpo         direct preference optimisation on chosen/rejected pairs, with the reward curves
    lora        the LoRA rank explorer: rank, targets, trainable parameters, update spectra, the merge check
"""
