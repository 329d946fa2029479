"""Sequence to sequence: an attentional encoder-decoder RNN for translation.

The generic training loop runs the *encoder* (any encoder under the contract, normally a
bidirectional LSTM/GRU from :mod:`rnnkit.layers`); this task owns everything after it::

    m_1..m_S = encoder(E_src[x])                 (B, S, He)  bidirectional annotations
    s_0      = tanh(W_b mean_j m_j)              per decoder layer (and c_0 for an LSTM);
                                                 the mean over true lengths (Nematus,
                                                 Sennrich et al. 2017)
    h_t, s_t = decoder(E_tgt[y_{t-1}] (; a_{t-1}), s_{t-1})      (B, Hd)
    e_tj     = v^T tanh(W_q h_t + W_k m_j)       additive (Bahdanau et al. 2015), or
    e_tj     = h_t^T W m_j                       multiplicative ("general", Luong et al. 2015)
    alpha_t  = softmax_j(e_tj) over true source positions; c_t = sum_j alpha_tj m_j
    a_t      = tanh(W_c [h_t; c_t])              (B, A) attentional vector (Luong et al. 2015)
    p(y_t)   = softmax(W_o a_t + b_o)            W_o optionally tied to E_tgt (Press & Wolf 2017)

The query of both scores is the current decoder state (Luong's global attention). With
*input feeding* (Luong et al. 2015) a_{t-1} joins the decoder input; without it and with full
teacher forcing the decoder runs over the whole target at once through the fused kernel,
which is several times faster on CPU. Teacher forcing follows a linear schedule from
``teacher_forcing`` to ``teacher_forcing_end`` over ``teacher_forcing_steps`` training steps
(scheduled sampling, Bengio et al. 2015: with probability 1 - ratio the previous *predicted*
token is fed); the step counter is a buffer saved with the weights, so resume is exact.
The loss is label-smoothed cross-entropy (Szegedy et al. 2016) over true target tokens.

Decoding carries the decoder state from step to step (nothing is recomputed): greedy, or
batched beam search whose hypotheses are ranked by log p / lp(len) with the GNMT length
penalty lp = ((5 + len) / 6) ** alpha (Wu et al. 2016).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.parallel import BOS, EOS, PAD
from .seq2seq_metrics import bleu_chrf  # noqa: F401  (torch-free home, re-exported)
from ..layers import Encoder, build_encoder, map_state

ATTENTIONS = ("additive", "multiplicative")


class AdditiveAttention(nn.Module):
    """Bahdanau et al. 2015: e_tj = v^T tanh(W_q q_t + W_k m_j)."""

    def __init__(self, query_size: int, memory_size: int, attn_size: int) -> None:
        super().__init__()
        self.key = nn.Linear(memory_size, attn_size, bias=False)
        self.query = nn.Linear(query_size, attn_size, bias=True)
        self.v = nn.Linear(attn_size, 1, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        return self.key(memory)  # (B, S, He) -> (B, S, A)

    def scores(self, q: Tensor, keys: Tensor) -> Tensor:
        # q (B, T, Hd), keys (B, S, A) -> (B, T, S)
        return self.v(torch.tanh(self.query(q)[:, :, None, :] + keys[:, None, :, :])).squeeze(-1)


class MultiplicativeAttention(nn.Module):
    """Luong et al. 2015 ("general"): e_tj = q_t^T W m_j."""

    def __init__(self, query_size: int, memory_size: int, attn_size: int) -> None:
        super().__init__()
        self.key = nn.Linear(memory_size, query_size, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        return self.key(memory)  # (B, S, He) -> (B, S, Hd)

    def scores(self, q: Tensor, keys: Tensor) -> Tensor:
        return torch.bmm(q, keys.transpose(1, 2))  # (B, T, Hd) x (B, Hd, S) -> (B, T, S)


def attend(attn: nn.Module, q: Tensor, memory: Tensor, keys: Tensor, mask: Tensor) -> Tuple[Tensor, Tensor]:
    """q (B, T, Hd) over memory (B, S, He) with mask (B, S) -> context (B, T, He), weights (B, T, S)."""
    e = attn.scores(q, keys).masked_fill(~mask[:, None, :], float("-inf"))
    w = torch.softmax(e, dim=-1)
    return torch.bmm(w, memory), w


@dataclass
class Memory:
    """What the decoder attends to, computed once per source batch."""

    memory: Tensor  # (N, S, He)
    keys: Tensor  # (N, S, A)
    mask: Tensor  # (N, S) true on real source tokens

    def select(self, index: Tensor) -> "Memory":
        return Memory(self.memory.index_select(0, index), self.keys.index_select(0, index),
                      self.mask.index_select(0, index))


class Seq2SeqTask(nn.Module):
    """Source embedding in; attentional decoder, projection and label-smoothed loss out."""

    name = "seq2seq"
    stream = False  # independent sentence pairs: never carry state across batches
    rate_unit = "sentences"  # training speed is reported in loss()'s "sentences" (pairs) per second

    def __init__(self, src_vocab: int, tgt_vocab: int, embedding_dim: int, encoder_size: int,
                 decoder: str = "lstm", decoder_hidden: int = 512, decoder_layers: int = 1,
                 attention: str = "additive", attention_size: int = 256, input_feeding: bool = False,
                 dropout: float = 0.3, tie_weights: bool = False, shared_embeddings: bool = False,
                 label_smoothing: float = 0.1, teacher_forcing: float = 1.0,
                 teacher_forcing_end: Optional[float] = None, teacher_forcing_steps: int = 0) -> None:
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
        self.input_size = embedding_dim
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        self.tgt_embedding = nn.Embedding(tgt_vocab, embedding_dim, padding_idx=PAD)
        if shared_embeddings:
            if src_vocab != tgt_vocab:
                raise ValueError("shared embeddings need one vocabulary for both sides")
            self.src_embedding = self.tgt_embedding
        else:
            self.src_embedding = nn.Embedding(src_vocab, embedding_dim, padding_idx=PAD)
        self.input_feeding = input_feeding
        self.decoder = build_encoder(decoder, embedding_dim + (attention_size if input_feeding else 0),
                                     decoder_hidden, num_layers=decoder_layers, dropout=dropout)
        self.n_state = self.decoder.spec.n_state  # LSTM: (h, c); GRU/RNN: h
        self.decoder_layers, self.decoder_hidden = decoder_layers, decoder_hidden
        self.bridge = nn.Linear(encoder_size, self.n_state * decoder_layers * decoder_hidden)
        cls = AdditiveAttention if attention == "additive" else MultiplicativeAttention
        self.attention = cls(decoder_hidden, encoder_size, attention_size)
        self.combine = nn.Linear(decoder_hidden + encoder_size, attention_size, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(attention_size, tgt_vocab)
        if tie_weights:
            if attention_size != embedding_dim:
                raise ValueError("weight tying needs attention_size == embedding_dim")
            self.head.weight = self.tgt_embedding.weight
        self.label_smoothing = label_smoothing
        self.tf_start = teacher_forcing
        self.tf_end = teacher_forcing if teacher_forcing_end is None else teacher_forcing_end
        self.tf_steps = teacher_forcing_steps
        self.register_buffer("tf_step", torch.zeros(1, dtype=torch.long))  # training steps seen (saved)

    # -- the generic loop's hooks ----------------------------------------------------------
    def inputs(self, batch: Dict[str, Tensor]) -> Tuple[Tensor, Tensor]:
        return self.dropout(self.src_embedding(batch["src"])), batch["src_len"]  # (B, S, E)

    def teacher_forcing_ratio(self, step: Optional[int] = None) -> float:
        step = int(self.tf_step) if step is None else step
        if self.tf_steps <= 0:
            return self.tf_end if step > 0 and self.tf_start != self.tf_end else self.tf_start
        return self.tf_start + (self.tf_end - self.tf_start) * min(1.0, step / self.tf_steps)

    def loss(self, y: Tensor, batch: Dict[str, Tensor]) -> Tuple[Tensor, Dict[str, float]]:
        ratio = self.teacher_forcing_ratio() if self.training else 1.0
        if self.training:
            self.tf_step += 1
        logits, _ = self.forward_train(y, batch["src_len"], batch["tgt_in"], batch["tgt_len"], ratio)
        target = batch["tgt_out"]  # (B, T), PAD past the true length
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                               ignore_index=PAD, label_smoothing=self.label_smoothing)
        return loss, {"tokens": float((target != PAD).sum()), "sentences": float(y.shape[0]),
                      "teacher_forcing": ratio}

    # -- pieces ----------------------------------------------------------------------------
    def memory(self, y: Tensor, src_len: Tensor) -> Memory:
        mask = torch.arange(y.shape[1], device=y.device)[None, :] < src_len.to(y.device)[:, None]  # (B, S)
        return Memory(y, self.attention.keys(y), mask)

    def initial_state(self, mem: Memory) -> Any:
        m = mem.mask.unsqueeze(-1).to(mem.memory.dtype)
        mean = (mem.memory * m).sum(1) / m.sum(1).clamp_min(1.0)  # (B, He)
        s = torch.tanh(self.bridge(mean))  # (B, n_state * L * Hd)
        s = s.view(-1, self.n_state, self.decoder_layers, self.decoder_hidden).permute(1, 2, 0, 3)
        parts = [p.contiguous() for p in s]  # each (L, B, Hd)
        return parts[0] if self.n_state == 1 else tuple(parts)

    def output(self, h: Tensor, mem: Memory) -> Tuple[Tensor, Tensor, Tensor]:
        """Decoder outputs h (B, T, Hd) -> attentional vectors (B, T, A), logits (B, T, V), weights."""
        ctx, w = attend(self.attention, h, mem.memory, mem.keys, mem.mask)  # (B, T, He), (B, T, S)
        a = torch.tanh(self.combine(torch.cat([h, ctx], dim=-1)))  # (B, T, A)
        return a, self.head(self.dropout(a)), w

    def step(self, tokens: Tensor, state: Any, prev_a: Optional[Tensor], mem: Memory):
        """One decoder step: tokens (N,) -> logits (N, V), new state, a_t (N, A), weights (N, S)."""
        x = self.dropout(self.tgt_embedding(tokens))  # (N, E)
        if self.input_feeding:
            if prev_a is None:
                prev_a = x.new_zeros(x.shape[0], self.combine.out_features)
            x = torch.cat([x, prev_a], dim=-1)
        h, state = self.decoder.step(x, state)  # (N, Hd)
        a, logits, w = self.output(h[:, None, :], mem)
        return logits[:, 0], state, a[:, 0], w[:, 0]

    def forward_train(self, y: Tensor, src_len: Tensor, tgt_in: Tensor, tgt_len: Tensor,
                      teacher_forcing: float = 1.0) -> Tuple[Tensor, Tensor]:
        """Logits (B, T, V) and attention weights (B, T, S) for a target prefix batch."""
        mem = self.memory(y, src_len)
        state = self.initial_state(mem)
        if not self.input_feeding and teacher_forcing >= 1.0:
            x = self.dropout(self.tgt_embedding(tgt_in))  # (B, T, E)
            h, _ = self.decoder(x, state, tgt_len)  # (B, T, Hd); zeros past tgt_len
            _, logits, w = self.output(h, mem)
            return logits, w
        logits, weights, prev_a = [], [], None
        tok = tgt_in[:, 0]
        for t, gold in enumerate(tgt_in.unbind(1)):
            if t > 0 and teacher_forcing < 1.0:
                sampled = torch.rand(gold.shape, device=gold.device) >= teacher_forcing
                tok = torch.where(sampled, logits[-1].detach().argmax(-1), gold)
            else:
                tok = gold
            lg, state, prev_a, w = self.step(tok, state, prev_a, mem)
            logits.append(lg)
            weights.append(w)
        return torch.stack(logits, 1), torch.stack(weights, 1)


def build(model_cfg: dict, src_vocab: int, tgt_vocab: int, shared_vocab: bool = False) -> Tuple[Encoder, Seq2SeqTask]:
    """Encoder + task from a model config dict (Seq2SeqModelConfig fields)."""
    c = model_cfg
    encoder = build_encoder(c["encoder"], c["embedding_dim"], c["hidden_size"], num_layers=c["num_layers"],
                            dropout=c["dropout"], bidirectional=c.get("bidirectional", True))
    task = Seq2SeqTask(
        src_vocab, tgt_vocab, c["embedding_dim"], encoder.output_size, decoder=c["decoder"],
        decoder_hidden=c["decoder_hidden"], decoder_layers=c["decoder_layers"], attention=c["attention"],
        attention_size=c["attention_size"], input_feeding=c["input_feeding"], dropout=c["dropout"],
        tie_weights=c["tie_weights"], shared_embeddings=shared_vocab, label_smoothing=c["label_smoothing"],
        teacher_forcing=c["teacher_forcing"], teacher_forcing_end=c.get("teacher_forcing_end"),
        teacher_forcing_steps=c.get("teacher_forcing_steps", 0),
    )
    return encoder, task


# ---------------------------------------------------------------------------------------
# decoding


@dataclass
class Hypothesis:
    tokens: List[int]  # without BOS and EOS
    score: float  # sum of log-probabilities (EOS included)
    attention: Tensor  # (len(tokens) + 1, S_true): one row per emitted token, EOS last


def pad_batch(seqs: Sequence[Sequence[int]], device=None) -> Tuple[Tensor, Tensor]:
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    out = torch.full((len(seqs), max(1, int(lengths.max()))), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = torch.tensor(list(s), dtype=torch.long)
    return out.to(device), lengths


def _encode(encoder: Encoder, task: Seq2SeqTask, src: Tensor, src_len: Tensor) -> Memory:
    y = encoder.outputs(task.src_embedding(src), src_len)  # (B, S, He)
    return task.memory(y, src_len)


def never_special(logp: Tensor) -> Tensor:
    """Decoders never emit PAD or BOS (log p = -inf); scores stay unnormalised log p."""
    logp = logp.clone()
    logp[:, PAD] = float("-inf")
    logp[:, BOS] = float("-inf")
    return logp


def length_limits(src_len: Tensor, max_len: Optional[int]) -> Tensor:
    """Most target tokens (EOS included) per sentence: ``max_len``, or 2 x its own source
    length + 10, so a sentence decodes the same whatever else shares its batch."""
    return torch.full_like(src_len, max_len) if max_len else src_len * 2 + 10


def ban_repeats(logp: Tensor, hist: Tensor, n: int) -> Tensor:
    """Forbid (log p = -inf) every token that would repeat an n-gram already in a row's
    history ``hist: (N, t)`` (the no-repeat-ngram rule of fairseq / Hugging Face)."""
    if n <= 0 or hist.shape[1] < n - 1:
        return logp
    logp = logp.clone()
    rows = hist.tolist()
    for r, h in enumerate(rows):
        prefix = tuple(h[len(h) - n + 1:]) if n > 1 else ()
        banned = {h[i + n - 1] for i in range(len(h) - n + 1) if tuple(h[i:i + n - 1]) == prefix}
        if banned:
            logp[r, list(banned)] = float("-inf")
    return logp


def _cut(seq: List[int]) -> int:
    """Length of a hypothesis: up to its EOS, or the PAD that fills a row stopped at its limit."""
    for i, t in enumerate(seq):
        if t in (EOS, PAD):
            return i
    return len(seq)


@torch.no_grad()
def greedy(encoder: Encoder, task: Seq2SeqTask, src: Tensor, src_len: Tensor,
           max_len: Optional[int] = None, no_repeat_ngram: int = 0) -> List[Hypothesis]:
    """Batched greedy decoding, carrying the decoder state."""
    encoder.eval(), task.eval()
    mem = _encode(encoder, task, src, src_len)
    B = src.shape[0]
    state, prev_a = task.initial_state(mem), None
    tok = torch.full((B,), BOS, dtype=torch.long, device=src.device)
    done = torch.zeros(B, dtype=torch.bool, device=src.device)
    limit = length_limits(src_len, max_len).to(src.device)
    toks, scores, weights = [], torch.zeros(B, device=src.device), []
    for step in range(int(limit.max())):
        logits, state, prev_a, w = task.step(tok, state, prev_a, mem)
        logp = never_special(torch.log_softmax(logits.float(), -1))
        if no_repeat_ngram and toks:
            logp = ban_repeats(logp, torch.stack(toks, 1), no_repeat_ngram)
        tok = logp.argmax(-1)
        scores += torch.where(done, torch.zeros_like(scores), logp.gather(1, tok[:, None])[:, 0])
        tok = torch.where(done, torch.full_like(tok, PAD), tok)
        toks.append(tok)
        weights.append(w)
        done |= (tok == EOS) | (step + 1 >= limit)
        if bool(done.all()):
            break
    T = torch.stack(toks, 1).tolist()
    W = torch.stack(weights, 1)  # (B, T, S)
    out = []
    for b in range(B):
        seq = T[b]
        n = _cut(seq)
        out.append(Hypothesis(seq[:n], float(scores[b]), W[b, :n + 1, :int(src_len[b])].cpu()))
    return out


def length_penalty(length: Tensor, alpha: float) -> Tensor:
    """GNMT: ((5 + len) / 6) ** alpha (Wu et al. 2016); alpha = 0 ranks by raw log p."""
    return ((5.0 + length.float()) / 6.0) ** alpha


@torch.no_grad()
def beam_search(encoder: Encoder, task: Seq2SeqTask, src: Tensor, src_len: Tensor, beam: int = 5,
                alpha: float = 0.6, max_len: Optional[int] = None, no_repeat_ngram: int = 0) -> List[Hypothesis]:
    """Batched beam search: B sentences x K hypotheses decoded together as N = B*K rows.

    Each step extends every live hypothesis by every token, ranks the K*V candidates of a
    sentence by log p / lp(len) (finished hypotheses compete with their final normalised
    score and are kept unchanged), and reorders the decoder state, the attentional vector
    and the histories by the chosen parents: the state is carried, never recomputed.
    """
    if beam == 1:
        return greedy(encoder, task, src, src_len, max_len, no_repeat_ngram)
    encoder.eval(), task.eval()
    B, K, dev = src.shape[0], beam, src.device
    mem = _encode(encoder, task, src, src_len)
    rows = torch.arange(B, device=dev).repeat_interleave(K)  # (N,)
    mem = mem.select(rows)
    state = task.initial_state(mem)  # (L, N, Hd): every beam of a sentence starts alike
    prev_a = None
    N = B * K
    tok = torch.full((N,), BOS, dtype=torch.long, device=dev)
    score = torch.zeros(B, K, device=dev)
    score[:, 1:] = float("-inf")  # all beams start identical: keep one
    length = torch.zeros(N, dtype=torch.long, device=dev)  # tokens emitted, EOS included
    finished = torch.zeros(N, dtype=torch.bool, device=dev)
    hist = torch.zeros(N, 0, dtype=torch.long, device=dev)
    att = torch.zeros(N, 0, src.shape[1], device=dev)
    V = task.tgt_vocab
    limit = length_limits(src_len, max_len).to(dev).index_select(0, rows)  # (N,)
    for _ in range(int(limit.max())):
        logits, state, prev_a, w = task.step(tok, state, prev_a, mem)
        logp = never_special(torch.log_softmax(logits.float(), -1))  # (N, V)
        if no_repeat_ngram:
            logp = ban_repeats(logp, hist, no_repeat_ngram)
        # a finished hypothesis may only "continue" with PAD at no cost (it stays as it is)
        fin_row = torch.full((V,), float("-inf"), device=dev)
        fin_row[PAD] = 0.0
        logp = torch.where(finished[:, None], fin_row[None, :], logp)
        new_len = torch.where(finished, length, length + 1)  # (N,)
        cand = score.view(N, 1) + logp  # (N, V) raw log p
        ranked = cand / length_penalty(new_len, alpha)[:, None]
        top, idx = ranked.view(B, K * V).topk(K, dim=-1)  # (B, K)
        parent = idx // V + torch.arange(B, device=dev)[:, None] * K  # (B, K) rows in N
        parent = parent.view(N)
        tok = (idx % V).view(N)
        score = cand.view(B, K * V).gather(1, idx)  # raw scores of the survivors
        length = new_len.index_select(0, parent)
        was_finished = finished.index_select(0, parent)
        finished = was_finished | (tok == EOS) | (length >= limit)
        state = map_state(lambda t: t.index_select(1, parent), state)
        prev_a = prev_a.index_select(0, parent)
        hist = torch.cat([hist.index_select(0, parent), tok[:, None]], 1)
        att = torch.cat([att.index_select(0, parent), w.index_select(0, parent)[:, None, :]], 1)
        if bool(finished.all()):
            break
    final = score.view(N) / length_penalty(length, alpha)
    best = final.view(B, K).argmax(-1)  # (B,)
    out = []
    H, A, S_ = hist.tolist(), att.cpu(), score.view(N)
    for b in range(B):
        r = b * K + int(best[b])
        seq = H[r]
        n = _cut(seq)
        out.append(Hypothesis(seq[:n], float(S_[r]), A[r, :n + 1, :int(src_len[b])]))
    return out


def translate_ids(encoder: Encoder, task: Seq2SeqTask, src_ids: Sequence[Sequence[int]], beam: int = 1,
                  alpha: float = 0.6, batch_size: int = 64, max_len: Optional[int] = None,
                  no_repeat_ngram: int = 0) -> List[Hypothesis]:
    """Translate many id sequences in length-sorted batches; results in input order."""
    order = sorted(range(len(src_ids)), key=lambda i: len(src_ids[i]))
    dev = next(task.parameters()).device
    out: List[Optional[Hypothesis]] = [None] * len(src_ids)
    for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        src, src_len = pad_batch([src_ids[j] for j in idx], dev)
        hyps = (greedy(encoder, task, src, src_len, max_len, no_repeat_ngram) if beam == 1
                else beam_search(encoder, task, src, src_len, beam, alpha, max_len, no_repeat_ngram))
        for j, h in zip(idx, hyps):
            out[j] = h
    return out  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------
# trivial baselines (so a BLEU always stands next to one)


def _words(s: str) -> List[str]:
    import re

    return re.findall(r"\w+|[^\w\s]", s)


class DictionaryBaseline:
    """Word-by-word translation with a dictionary learned from the training pairs.

    Each source word maps to the target word with the highest Dice coefficient
    2 c(e, d) / (c(e) + c(d)) over sentence-level co-occurrence counts (ties: the more
    frequent target word); unknown words are copied. No reordering, no context.
    """

    def __init__(self, src: Sequence[str], tgt: Sequence[str], min_count: int = 1) -> None:
        from collections import Counter

        ce, cd, ced = Counter(), Counter(), Counter()
        for s, t in zip(src, tgt):
            ws, wt = set(_words(s)), set(_words(t))
            ce.update(ws)
            cd.update(wt)
            ced.update((e, d) for e in ws for d in wt)
        best: Dict[str, Tuple[float, int, str]] = {}
        for (e, d), n in ced.items():
            if n < min_count:
                continue
            key = (2.0 * n / (ce[e] + cd[d]), cd[d], d)
            if e not in best or key > best[e]:
                best[e] = key
        self.table = {e: v[2] for e, v in best.items()}

    def translate(self, texts: Sequence[str]) -> List[str]:
        import re

        # detokenise: no space before closing punctuation (what sacrebleu expects)
        return [re.sub(r" ([.,!?;:)])", r"\1", " ".join(self.table.get(w, w) for w in _words(t))) for t in texts]


def summary(m: Dict[str, float]) -> str:
    """The validation metrics of ``rnnkit train``'s last line."""
    if m.get("val_bleu") is None:
        return f"val loss {m['val_loss']:.4f}" if "val_loss" in m else ""
    return (f"val BLEU {m['val_bleu']:.2f} (greedy), chrF {m['val_chrf']:.2f}"
            + (f", loss {m['val_loss']:.4f}" if "val_loss" in m else ""))
