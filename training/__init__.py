"""Training: builds the artifacts in model_artifacts/ with the same tokenizer and model as serving."""
