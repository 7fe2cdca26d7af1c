"""ONNX Runtime sessions for every model, on the device asked for (``--device``).

One runtime for all models: the face and text models both run through ONNX Runtime, so an
accelerator's execution provider serves both. The CPU provider is always listed last, so a
provider that cannot run some node leaves that node on the CPU instead of failing.
"""

from __future__ import annotations

from ..errors import UsageError

# --device name -> ONNX Runtime execution provider.
DEVICES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
           "coreml": "CoreMLExecutionProvider", "directml": "DmlExecutionProvider"}
# "auto" takes an accelerator only from an ONNX Runtime build installed for it on purpose
# (onnxruntime-gpu, onnxruntime-directml). CoreML comes with every macOS build and has not been
# measured with this face model's free input size, so it is used only when asked for by name.
_AUTO_ORDER = ("cuda", "directml")
_INSTALL = {"cuda": "onnxruntime-gpu", "directml": "onnxruntime-directml",
            "coreml": "onnxruntime (macOS build)"}


def providers(device: str) -> list[str]:
    """The execution providers, best first, that ``device`` names.

    Raises:
        UsageError: an unknown name, or a provider this ONNX Runtime build does not have
            (never a silent fall back to the CPU for an accelerator asked for by name).
    """
    import onnxruntime

    if device not in DEVICES and device != "auto":
        raise UsageError(f"unknown device {device!r}: choose one of auto, " + ", ".join(DEVICES))
    available = onnxruntime.get_available_providers()
    if device == "auto":
        device = next((d for d in _AUTO_ORDER if DEVICES[d] in available), "cpu")
    provider = DEVICES[device]
    if provider not in available:
        raise UsageError(f"device {device!r} is not available: this ONNX Runtime has "
                         f"{', '.join(available)} (install {_INSTALL[device]} for {device}), "
                         f"or use --device cpu")
    return [provider] if device == "cpu" else [provider, DEVICES["cpu"]]


def session(model, device: str = "cpu", threads: int = 0):
    """An inference session for ``model`` (a path, or the bytes of an ONNX file).

    Args:
        threads: intra-op threads on the CPU (0: ONNX Runtime's default, one per core).
    """
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    if threads > 0:
        opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only: warnings would land in the user's terminal
    # Idle worker threads sleep instead of spinning: blur's decoder, encoder and the other model
    # need those cores between runs (measured on 100 frames of vtest.avi, 2 cores: 22 % less
    # CPU and 16 % less wall time).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # No memory pattern: it plans and keeps a buffer layout per input shape, and the face model
    # sees several (two passes, tiles, second-look batches). Measured: peak RSS 1887 -> 1406 MB
    # on 1080p, 1696 -> ~1490 MB on 4K, same speed.
    opts.enable_mem_pattern = False
    return onnxruntime.InferenceSession(model if isinstance(model, bytes) else str(model), opts,
                                        providers=providers(device))
