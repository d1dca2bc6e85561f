"""Named hyperparameter sets for `python -m training.train --preset NAME`."""

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # The seed's pipeline as written: a plain RNN reading 10 words, 5 epochs, no regularization.
    "seed": {
        "embedding_dim": 50,
        "hidden_dim": 64,
        "rnn_type": "rnn",
        "bidirectional": False,
        "dropout": 0.0,
        "pooling": "last",
        "max_length": 10,
        "epochs": 5,
        "patience": 0,
        "lr": 1e-3,
        "batch_size": 32,
        "min_freq": 1,
        "word_dropout": 0.0,
        "ema_decay": 0.0,
    },
    # 95% of snippets fit in 34 words. A bidirectional GRU whose states are max- and mean-pooled,
    # with dropout, word dropout, an averaged (EMA) copy of the weights and early stopping on
    # validation loss: chosen by validation loss among the variants in model_artifacts/report.md.
    "default": {
        "embedding_dim": 128,
        "hidden_dim": 128,
        "rnn_type": "gru",
        "bidirectional": True,
        "dropout": 0.5,
        "pooling": "max_mean",
        "max_length": 40,
        "epochs": 15,
        "patience": 3,
        "lr": 1e-3,
        "batch_size": 32,
        "min_freq": 2,
        "word_dropout": 0.1,
        "ema_decay": 0.998,
    },
}
