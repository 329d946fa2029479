"""Tasks: head + loss + metrics + decoding, independent of the encoder they are given.

A task is an ``nn.Module`` with:

* ``input_size``: the feature size C it feeds the encoder;
* ``inputs(batch) -> (x: (B, T, C), lengths or None)``;
* ``loss(y: (B, T, H), batch) -> (loss, {metric: value})`` with ``"tokens"`` counting what
  the loss averages over (used to weight validation means).

The generic LightningModule in :mod:`rnnkit.training` runs any encoder with any task.
"""
