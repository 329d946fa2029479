"""Exchange formats for trained models: ONNX export (torch side, :mod:`.onnx_export`) and its
torch-free runtime (:mod:`.onnx_runtime`, onnxruntime behind the predictor network protocols).

Importing this package imports neither torch nor onnxruntime.
"""
