"""What training and serving share: the tokenizer, the network's shape, padding, the artifact files.

No web framework here; only `network` needs torch.
"""
