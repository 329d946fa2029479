"""Tasks: head + loss + metrics + decoding, independent of the encoder they are given.

A task is an ``nn.Module`` with:

* ``input_size``: the feature size C it feeds the encoder;
* ``inputs(batch) -> (x: (B, T, C), lengths or None)``;
* ``loss(y: (B, T, H), batch) -> (loss, {metric: value})`` with ``"tokens"`` counting what
  the loss averages over (used to weight validation means);
* ``rate_unit``: what training speed is counted in (``"tokens"``, ``"texts"``, ``"windows"``,
  ...; the progress bar shows ``<rate_unit>/s``), and ``loss`` reports that count under
  the same key.

The generic LightningModule in :mod:`rnnkit.training` runs any encoder with any task.
"""
