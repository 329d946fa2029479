"""The translation predictor: sentences in, sentences out (``rnnkit translate``, ``rnnkit evaluate``).

Subword encoding and decoding (SentencePiece) happen here; the network
(:class:`~.nets.Seq2SeqNet`) searches (greedy or beam) over length-sorted batches.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Union

from ..errors import ConfigError
from .base import Predictor, as_texts, check_float, check_int

MAX_BEAM = 64
MAX_LEN = 1024  # target subwords per sentence


class Seq2SeqPredictor(Predictor):
    """An encoder-decoder translator with attention.

    >>> m = rnnkit.load("runs/m30k")                                  # doctest: +SKIP
    >>> m.translate(["A man is riding a bike."], beam=5)              # doctest: +SKIP
    ['Ein Mann fährt Fahrrad.']
    """

    task = "seq2seq"
    headline = "bleu"

    def __init__(self, config: Dict[str, Any], net: Any, path=None) -> None:
        super().__init__(config, net, path)
        from ..data.parallel import SubwordVocab

        d = config["data"]
        self.src_vocab = SubwordVocab.from_json(d["src_vocab"])
        self.tgt_vocab = self.src_vocab if d.get("shared_vocab") else SubwordVocab.from_json(d["tgt_vocab"])

    def hypotheses(self, texts: Sequence[str], beam: int = 5, max_len: Optional[int] = None,
                   length_penalty: float = 0.6, batch_size: int = 64, no_repeat_ngram: int = 0) -> List[Any]:
        """One hypothesis per text (``.tokens``, ``.score``, ``.attention``); an empty text gets
        an empty hypothesis (``None``)."""
        check_int("beam", beam, 1, MAX_BEAM)
        check_int("batch_size", batch_size, 1, 4096)
        check_float("length_penalty", length_penalty, 0.0, 10.0)
        if max_len is not None:
            check_int("max_len", max_len, 1, MAX_LEN)
        check_int("no_repeat_ngram", no_repeat_ngram, 0, 16)
        ids = self.src_vocab.encode([t.strip() for t in texts])
        todo = [i for i, s in enumerate(ids) if s]
        found = (self.net.translate_ids([ids[i] for i in todo], beam, length_penalty, max_len, batch_size,
                                        no_repeat_ngram) if todo else [])
        out: List[Any] = [None] * len(texts)
        for i, h in zip(todo, found):
            out[i] = h
        return out

    def translate(self, texts: Union[str, Sequence[str]], beam: int = 5, max_len: Optional[int] = None,
                  length_penalty: float = 0.6, batch_size: int = 64, attention: bool = False,
                  no_repeat_ngram: int = 0) -> Union[List[str], List[Dict[str, Any]]]:
        """Detokenised translations of ``texts`` (empty texts translate to ``""``); with
        ``attention=True``, dicts ``{"translation", "source_pieces", "target_pieces", "attention"}``
        where ``attention`` is the (target + EOS) x source matrix as lists (no EOS row when the
        translation was cut at its length limit)."""
        texts = as_texts(texts, allow_empty_text=True)
        hyps = self.hypotheses(texts, beam, max_len, length_penalty, batch_size, no_repeat_ngram)
        out = [self.tgt_vocab.decode([h.tokens])[0] if h is not None else "" for h in hyps]
        if not attention:
            return out
        rows = []
        for text, h, o in zip(texts, hyps, out):
            att = None if h is None or h.attention is None else _as_array(h.attention)
            rows.append({"translation": o, "source_pieces": self.source_pieces(text),
                         "target_pieces": self.tgt_vocab.pieces(h.tokens) if h is not None else [],
                         "attention": None if att is None else att.tolist()})
        return rows

    def source_pieces(self, text: str) -> List[str]:
        return self.src_vocab.pieces(self.src_vocab.encode([text.strip()])[0])

    def plot_attention(self, text: str, beam: int = 5, max_len: Optional[int] = None, length_penalty: float = 0.6):
        """A matplotlib Figure of the attention of ``text``'s translation (target rows x source columns)."""
        from .seq2seq_plot import attention_figure

        h = self.hypotheses([text], beam, max_len, length_penalty)[0]
        if h is None or h.attention is None:
            raise ConfigError("no attention to draw: the sentence is empty")
        return attention_figure(_as_array(h.attention), self.source_pieces(text), self.tgt_vocab.pieces(h.tokens))

    def evaluate(self, data: Optional[str] = None, split: Optional[str] = None, beam: int = 1,
                 max_len: Optional[int] = None, length_penalty: float = 0.6, batch_size: int = 64,
                 no_repeat_ngram: int = 0) -> Dict[str, Any]:
        """BLEU and chrF (sacrebleu, detokenised) on Multi30k or parallel files: ``evaluate --json``."""
        from ..data import parallel as pd
        from ..tasks.seq2seq_metrics import bleu_chrf

        data = data or self.config["data"].get("data") or "multi30k"
        if split == "all":
            raise ConfigError("--split all is not available for seq2seq; use train, val or test")
        if data == "multi30k":
            pairs = pd.multi30k(split or "test")
        elif data.startswith("multi30k:"):
            pairs = pd.load_pairs(data)
        else:
            if split not in (None, "test"):
                raise ConfigError(f"--split {split} applies to multi30k; {data} is scored whole")
            pairs = pd.load_pairs(data)
        hyps = self.translate(pairs.src, beam=beam, max_len=max_len, length_penalty=length_penalty,
                              batch_size=batch_size, no_repeat_ngram=no_repeat_ngram)
        scores = bleu_chrf(hyps, pairs.tgt)
        return {"checkpoint": str(self.path), "data": pairs.origin,
                "decoding": "greedy" if beam == 1 else f"beam {beam}",
                "length_penalty": length_penalty if beam > 1 else None, **scores}

    def describe(self, result: Dict[str, Any]) -> str:
        return (f"{result['data']}: BLEU {result['bleu']:.2f}, chrF {result['chrf']:.2f} over {result['sentences']} "
                f"sentences ({result['decoding']}; sacrebleu {result.get('signature', '')})")


def _as_array(a):
    import numpy as np

    return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)
