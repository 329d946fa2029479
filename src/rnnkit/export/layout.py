"""The layout of an ONNX export directory, shared by the exporter and the (torch-free) runtime.

    DIR/config.json        the checkpoint's config + an ``export`` section (format "onnx",
                           opset, graph roles -> files, each file's sha256, versions, self-check)
    DIR/model.onnx         charlm, sentiment, forecast, asr: the network over whole sequences
    DIR/step.onnx          charlm: one generation step (token, state) -> (logits, state)
    DIR/encoder.onnx       seq2seq: the encoder and the decoder's initial state
    DIR/decoder_step.onnx  seq2seq: one decoder step with attention

Graph input/output names per role (see :mod:`rnnkit.export.graphs` for the shapes).
"""

from __future__ import annotations

from typing import Dict, List, Tuple

FORMAT = "onnx"
OPSET = 17
GRAPH_FILES: Dict[str, Dict[str, str]] = {
    "charlm": {"model": "model.onnx", "step": "step.onnx"}, "sentiment": {"model": "model.onnx"},
    "forecast": {"model": "model.onnx"}, "asr": {"model": "model.onnx"},
    "seq2seq": {"encoder": "encoder.onnx", "decoder": "decoder_step.onnx"},
}
# graph role -> (input names, output names); "{state}" expands to h (and c for an LSTM)
IO: Dict[str, Tuple[Tuple[str, ...], Tuple[str, ...]]] = {
    "charlm": (("ids", "{state}"), ("logits", "{state_out}")),
    "charlm_step": (("token", "{state}"), ("logits", "{state_out}")),
    "sentiment": (("ids", "lengths"), ("logits",)),
    "forecast": (("x",), ("out",)),
    "asr": (("feats", "feat_lengths"), ("log_probs", "out_lengths")),
    "seq2seq_encoder": (("src", "src_len"), ("memory", "keys", "{state}")),
    "seq2seq_decoder": (("tokens", "{state}", "{prev_a}", "memory", "keys", "src_len"),
                        ("logits", "{state_out}", "a", "weights")),
}


def io_names(role: str, n_state: int = 1, input_feeding: bool = False) -> Tuple[List[str], List[str]]:
    """The concrete input and output names of a graph role."""
    state = ["h", "c"][:n_state]
    expand = {"{state}": state, "{state_out}": [f"{s}_out" for s in state],
              "{prev_a}": ["prev_a"] if input_feeding else []}
    ins, outs = IO[role]
    flat = lambda names: [n for name in names for n in expand.get(name, [name])]  # noqa: E731
    return flat(ins), flat(outs)


def graph_role(task: str, role: str) -> str:
    """The :data:`IO` key of a task's graph role."""
    return task if role == "model" else f"{task}_{role}"
