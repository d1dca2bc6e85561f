"""Training hyperparameters: one dataclass, its command-line flags, and the named presets.

The architecture is the served model's own `ModelConfig` (vocab_size and num_classes are placeholders
here: `prepare()` sets them from the data), so no architecture field is written twice. Every other
field is a training setting. Flags are generated from the fields; a preset is a set of overrides of
the defaults, and flags override the preset.
"""

import argparse
from collections.abc import Callable
from dataclasses import Field, asdict, dataclass, field, fields, replace
from typing import Any, Literal, get_args, get_origin, get_type_hints

from app.core.architecture import ModelConfig
from app.core.ngrams import HASHING

# The fields the data (vocabulary, labels) or the code (the hashing) decide, not the user.
NOT_FLAGS = ("vocab_size", "num_classes", "ngram_hashing")

ARCHITECTURE_HELP = {
    "embedding_dim": "word vector size (with --vectors, the pretrained vectors are mapped to it)",
    "hidden_dim": "recurrent layer size (per direction)",
    "rnn_type": "recurrent cell",
    "bidirectional": "read the text in both directions",
    "dropout": "dropout on the embeddings and the pooled features",
    "pooling": "how the recurrent states become one vector",
    "num_layers": "stacked recurrent layers",
    "ngram_buckets": "the n-gram branch beside the RNN: buckets its hashed word pairs share "
    "(0 = no branch, as --no-ngrams; the words themselves have a row each)",
}


def architecture(**overrides: Any) -> ModelConfig:
    """A ModelConfig whose data-decided fields are left for prepare() to fill in."""
    return ModelConfig(vocab_size=0, num_classes=0, **overrides)


def with_data(model: ModelConfig, vocab_size: int, num_classes: int) -> ModelConfig:
    """The architecture for this data; a branch is recorded with the hashing its pairs use."""
    hashing = HASHING if model.ngram_buckets else ""
    return replace(model, vocab_size=vocab_size, num_classes=num_classes, ngram_hashing=hashing)


# The n-gram branch's pair buckets by default: 2^17 keeps the bundled model's weights at 3.3 MB
# (2^18 would take them to 4.4 MB, past the 4 MB budget of an artifact shipped in the image).
NGRAM_BUCKETS = 2**17


@dataclass(frozen=True)
class TrainConfig:
    """The defaults are the default preset: the choice recorded in training/sweep-results.md
    (`python -m training.sweep`, training/sweep.py's CHOSEN)."""

    model: ModelConfig = field(
        default_factory=lambda: architecture(
            embedding_dim=50,
            # 48, not the sweep's 64: with the branch, 3 seeds tied on validation accuracy (0.809
            # against 0.807) at less serving cost and more accuracy out of domain (README).
            hidden_dim=48,
            rnn_type="gru",
            bidirectional=True,
            pooling="max_mean",
            ngram_buckets=NGRAM_BUCKETS,
        )
    )
    # 95% of the bundled snippets fit in 34 words.
    max_length: int = field(default=40, metadata={"help": "words read per text (more are cut)"})
    epochs: int = field(default=50, metadata={"help": "most epochs to train"})
    patience: int = field(
        default=5,
        metadata={"help": "stop after this many epochs without a better validation loss (0 = off)"},
    )
    lr: float = field(default=3e-3, metadata={"help": "Adam learning rate"})
    lr_decay: float = field(
        default=0.0,
        metadata={
            "help": "multiply the learning rate by this after each epoch without a better "
            "validation loss (0 = constant)"
        },
    )
    label_smoothing: float = field(
        default=0.0, metadata={"help": "share of each training target spread over all classes"}
    )
    distill: float = field(
        default=0.0,
        metadata={
            "help": "train twice: the second model's targets blend the labels with the first "
            "model's probabilities on the training texts, at this weight (0 = train once)"
        },
    )
    adversarial: float = field(
        default=0.0,
        metadata={
            "help": "adversarial training: also train on each text with its word vectors moved "
            "by this L2 norm (per text, in units of the vectors' spread per dimension) the way "
            "that raises the loss most (0 = off)"
        },
    )
    virtual_adversarial: float = field(
        default=0.0,
        metadata={
            "help": "virtual adversarial training: also penalize how far the probabilities move "
            "when the word vectors move by this L2 norm the way that moves them most; needs no "
            "labels (0 = off)"
        },
    )
    class_weight: Literal["none", "balanced"] = field(
        default="none",
        metadata={
            "help": "balanced: weight each class's loss by texts / (classes x its texts) and keep "
            "the epoch with the best validation macro-F1"
        },
    )
    logit_adjustment: Literal["auto", "none"] = field(
        default="auto",
        metadata={
            "help": "auto: when the smallest class has under half an even share of the training "
            "texts, subtract tau x log(class prior) from the logits (folded into the bias), tau "
            "chosen by validation macro-F1 from 0, 0.25, ..., 1"
        },
    )
    batch_size: int = field(default=32, metadata={"help": "texts per training step"})
    # On: with the GRU scan it trains 1.5x the texts/s at the same test accuracy over seeds
    # 13-15 (README, "Training speed"); before the scan it had cost 2.5 points.
    length_batches: bool = field(
        default=True,
        metadata={
            "help": "batch texts of similar length: fewer recurrent steps per batch, so faster "
            "epochs (--no-length-batches: batches drawn at random)"
        },
    )
    min_freq: int = field(
        default=2, metadata={"help": "training-set count a word needs to enter the vocabulary"}
    )
    word_dropout: float = field(
        default=0.2, metadata={"help": "share of training words replaced by <unk> (0 = off)"}
    )
    ema_decay: float = field(
        default=0.998,
        metadata={"help": "decay of the weight average that is validated and shipped (0 = off)"},
    )
    vectors: bool = field(
        default=True,
        metadata={"help": "start from GloVe 6B 50-d vectors (needs the train extra)"},
    )
    # 0 won on validation over 3 seeds on the bundled reviews (README): 1e-4 kept the branch at
    # 0.64 validation accuracy alone, 0 let it reach 0.73 and the whole model 0.802.
    ngram_decay: float = field(
        default=0.0,
        metadata={"help": "with --ngram-buckets: L2 penalty on the n-gram branch's class scores"},
    )
    # 0.25 won on validation over 3 seeds (README): 0 and 0.5 both did worse.
    ngram_dropout: float = field(
        default=0.25,
        metadata={
            "help": "with --ngram-buckets: share of training texts whose n-gram branch is "
            "switched off, so the RNN learns to answer them alone"
        },
    )
    offset_decay: float = field(
        default=1e-3,
        metadata={"help": "with --vectors: L2 penalty on the trainable per-word offsets"},
    )
    clitic_fallback: bool = field(
        default=True,
        metadata={
            "help": 'with --vectors: a word GloVe lacks such as "don\'t" starts from the mean '
            'of its parts\' vectors ("do", "n\'t")'
        },
    )
    extra_vocab: int = field(
        default=0,
        metadata={
            "help": "with --vectors: most frequent vector words the training set lacks, added to "
            "the saved vocabulary"
        },
    )


PRESETS: dict[str, TrainConfig] = {
    "default": TrainConfig(),
    # The reference pipeline this project started from, as written: a plain RNN reading 10
    # words, 5 epochs, no regularization, no pretrained vectors.
    "seed": TrainConfig(
        model=architecture(
            embedding_dim=50,
            hidden_dim=64,
            rnn_type="rnn",
            bidirectional=False,
            dropout=0.0,
            pooling="last",
        ),
        max_length=10,
        epochs=5,
        patience=0,
        lr=1e-3,
        lr_decay=0.0,
        min_freq=1,
        word_dropout=0.0,
        ema_decay=0.0,
        vectors=False,
        extra_vocab=0,
        length_batches=False,
    ),
}
# The seed preset's shape with the pretrained vectors, to show what they alone do.
PRESETS["seed-glove"] = replace(PRESETS["seed"], vectors=True)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_flag(add_argument: Callable[..., object], name: str, kind: Any, help_text: str) -> None:
    """A flag whose default is None, meaning "the preset's value"."""
    if kind is bool:
        add_argument(_flag(name), action=argparse.BooleanOptionalAction, help=help_text)
    elif get_origin(kind) is Literal:
        add_argument(_flag(name), choices=get_args(kind), help=help_text)
    elif kind in (int, float, str):
        add_argument(_flag(name), type=kind, help=help_text)
    else:
        raise TypeError(f"no flag for {name}: {kind}")


def _own_fields() -> list[Field[Any]]:
    return [f for f in fields(TrainConfig) if f.name != "model"]


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per hyperparameter; types and choices from the dataclasses' annotations."""
    group = parser.add_argument_group("hyperparameters (override the preset)")
    model_types = get_type_hints(ModelConfig)
    for f in fields(ModelConfig):
        if f.name not in NOT_FLAGS:
            _add_flag(group.add_argument, f.name, model_types[f.name], ARCHITECTURE_HELP[f.name])
    group.add_argument(
        "--no-ngrams",
        dest="ngram_buckets",
        action="store_const",
        const=0,
        help="no n-gram branch: the RNN alone (as --ngram-buckets 0)",
    )
    own_types = get_type_hints(TrainConfig)
    for f in _own_fields():
        _add_flag(group.add_argument, f.name, own_types[f.name], f.metadata["help"])


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The preset named by --preset with every flag the user gave applied on top."""
    preset = PRESETS[args.preset]
    given = {k: v for k, v in vars(args).items() if v is not None}
    model_keys = {f.name for f in fields(ModelConfig)} - set(NOT_FLAGS)
    own_keys = {f.name for f in _own_fields()}
    return replace(
        preset,
        model=replace(preset.model, **{k: v for k, v in given.items() if k in model_keys}),
        **{k: v for k, v in given.items() if k in own_keys},
    )


def flat(config: TrainConfig) -> dict[str, Any]:
    """Every hyperparameter by its flag name, for reports."""
    model = {k: v for k, v in asdict(config.model).items() if k not in NOT_FLAGS}
    return {**model, **{f.name: getattr(config, f.name) for f in _own_fields()}}
