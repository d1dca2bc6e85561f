"""Engines run the network: one batch of word ids in, class probabilities out."""
