"""RNN text classifier: one tokenizer and one model, shared by training and serving."""

__version__ = "0.1.0"
