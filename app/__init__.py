"""RNN text classifier: one tokenizer and one model, shared by training and serving."""
