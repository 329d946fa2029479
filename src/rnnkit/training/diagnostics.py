"""``--diagnostics-every N``: a Lightning callback that logs how gradients behave during training.

Off by default. When on, for any task:

* every step (cheap: one fused norm over the gradients): the global gradient norm before
  clipping, and whether clipping fired (the norm exceeded ``--clip-norm``, or an element
  exceeded ``--clip-value``);
* every N steps, into the run's logger (CSV or TensorBoard) under ``diag/``:

  - ``grad_norm`` / ``grad_norm_clipped``: the global norm before / after clipping, and
    ``grad/<param>`` / ``grad_clipped/<param>`` per parameter;
  - ``clip_fraction``: the fraction of the last N steps on which clipping fired;
  - for recurrent encoders, on the step's own batch (zero initial state, dropout off):
    ``dh/<layer>/last`` and ``dh/<layer>/first`` = ||dL/dh_t|| at the last and the first step
    of the window and ``dh/<layer>/log10_ratio`` = log10(first / last), from one extra
    forward + backward through the unrolled encoder
    (:func:`rnnkit.diagnostics.gradient_flow`; parameter gradients are not touched);
    ``gate/<layer>/<gate>/{mean,low,high}``: gate means and saturation fractions (< 0.1,
    > 0.9); ``spectral/<layer>/<block>``: spectral radius of each recurrent block.

The extra pass uses no random numbers, so a run with diagnostics produces the same weights
as one without (tested). ``history`` keeps every logged row for programmatic use.
"""

from __future__ import annotations

import math
import warnings
from typing import Dict, List, Optional

import torch
from lightning.pytorch.callbacks import Callback

from ..diagnostics.flow import cell_name, grad_norms, gradient_flow, spectral_radius, total_norm


class GradientDiagnostics(Callback):
    """Logs gradient norms, clipping, gradient flow through time, gates and spectra every ``every`` steps."""

    def __init__(self, every: int, clip_norm: Optional[float] = None, clip_value: Optional[float] = None,
                 flow: bool = True) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.every, self.clip_norm, self.clip_value, self.flow = every, clip_norm, clip_value, flow
        self.history: List[Dict[str, float]] = []
        self._before: Dict[str, float] = {}
        self._fired = 0
        self._counted = 0
        self._warned = False

    # -- every step: before clipping -----------------------------------------------------
    def on_before_optimizer_step(self, trainer, module, optimizer) -> None:
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if not grads:
            return
        log_step = (module.total_steps + 1) % self.every == 0
        if log_step:
            self._before = grad_norms(list(module.named_parameters()))
            total = total_norm(self._before)
        else:
            total = float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))))
        if self.clip_value is not None:
            fired = any(bool((g.abs() > self.clip_value).any()) for g in grads)
        elif self.clip_norm is not None:
            fired = total > self.clip_norm
        else:
            fired = False
        self._fired += int(fired)
        self._counted += 1

    # -- every N steps: after the optimizer step (gradients are the clipped ones) --------
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        step = module.total_steps
        if step % self.every or not self._before:
            return
        m: Dict[str, float] = {"diag/grad_norm": total_norm(self._before),
                               "diag/clip_fraction": self._fired / max(1, self._counted)}
        after = grad_norms(list(module.named_parameters()))
        if after:
            m["diag/grad_norm_clipped"] = total_norm(after)
        for name, v in self._before.items():
            m[f"diag/grad/{name}"] = v
        for name, v in after.items():
            m[f"diag/grad_clipped/{name}"] = v
        self._before, self._fired, self._counted = {}, 0, 0
        if self.flow:
            m.update(self._flow_metrics(module, batch))
        self.history.append({"step": step, **m})
        for logger in trainer.loggers:
            logger.log_metrics(m, step=step)

    def _flow_metrics(self, module, batch) -> Dict[str, float]:
        encoder, task = module.encoder, module.task
        try:
            cell_name(encoder)
        except TypeError as e:
            if not self._warned:
                warnings.warn(f"--diagnostics-every: {e}; logging gradient norms and clipping only")
                self._warned = True
            return {}
        modes = encoder.training, task.training
        encoder.eval(), task.eval()
        try:
            x, lengths = task.inputs(batch)
            flow = gradient_flow(encoder, x.detach(), lambda y: task.loss(y, batch)[0], lengths=lengths, gates=True)
        finally:
            encoder.train(modes[0]), task.train(modes[1])
        m: Dict[str, float] = {}
        D = getattr(encoder, "num_directions", 1)
        for k, norms in enumerate(flow.norms):
            label = f"l{k // D}" + ("_reverse" if k % D else "")
            last, first = (norms[0], norms[-1]) if k % D else (norms[-1], norms[0])
            m[f"diag/dh/{label}/last"] = float(last)
            m[f"diag/dh/{label}/first"] = float(first)
            if last > 0 and first > 0:
                m[f"diag/dh/{label}/log10_ratio"] = math.log10(first / last)
        for label, gates in (flow.gates or {}).items():
            for gate, st in gates.items():
                for key, v in st.items():
                    m[f"diag/gate/{label}/{gate}/{key}"] = v
        for label, blocks in spectral_radius(encoder).items():
            for block, v in blocks.items():
                m[f"diag/spectral/{label}/{block}"] = v
        return m
