"""Translation metrics: corpus BLEU and chrF with sacrebleu (torch-free)."""

from __future__ import annotations

from typing import Dict, Sequence


def bleu_chrf(hyps: Sequence[str], refs: Sequence[str]) -> Dict[str, object]:
    """Corpus BLEU and chrF (sacrebleu, default 13a tokenisation) on detokenised text, with
    sacrebleu's signature of the BLEU settings (report it next to every BLEU)."""
    from sacrebleu.metrics import BLEU, CHRF

    bleu, chrf = BLEU(), CHRF()
    b = bleu.corpus_score(list(hyps), [list(refs)])
    c = chrf.corpus_score(list(hyps), [list(refs)])
    return {"bleu": float(b.score), "chrf": float(c.score), "sentences": len(hyps),
            "signature": str(bleu.get_signature()), "chrf_signature": str(chrf.get_signature())}
