"""ONNX Runtime sessions for every model, on the device asked for (``--device``).

One runtime for all models: the face and text models both run through ONNX Runtime, so an
accelerator's execution provider serves both. The CPU provider is always listed last, so a
provider that cannot run some node leaves that node on the CPU instead of failing.
"""

from __future__ import annotations

import os

from ..errors import UsageError

# --device name -> ONNX Runtime execution provider.
DEVICES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "directml": "DmlExecutionProvider",
}
# What --device accepts.
DEVICE_NAMES = ("auto", *DEVICES)
# "auto" takes an accelerator only from an ONNX Runtime build installed for it on purpose
# (onnxruntime-gpu, onnxruntime-directml). CoreML comes with every macOS build and has not been
# measured with this face model's free input size, so it is used only when asked for by name.
_AUTO_ORDER = ("cuda", "directml")
_INSTALL = {
    "cuda": "install onnxruntime-gpu in place of onnxruntime",
    "directml": "install onnxruntime-directml in place of onnxruntime (Windows)",
    "coreml": "CoreML is in ONNX Runtime's macOS build only",
}


def providers(device: str) -> list[str]:
    """The execution providers, best first, that ``device`` names.

    Raises:
        UsageError: an unknown name, or a provider this ONNX Runtime build does not have.
    """
    import onnxruntime

    device = device.lower()
    if device not in DEVICES and device != "auto":
        raise UsageError(f"unknown device {device!r}: choose one of auto, " + ", ".join(DEVICES))
    available = onnxruntime.get_available_providers()
    if device == "auto":
        device = next((d for d in _AUTO_ORDER if DEVICES[d] in available), "cpu")
    provider = DEVICES[device]
    if provider not in available:
        raise UsageError(
            f"device {device!r} is not available: this ONNX Runtime has "
            f"{', '.join(available)} ({_INSTALL[device]}), or use --device cpu"
        )
    return [provider] if device == "cpu" else [provider, DEVICES["cpu"]]


# Intra-op threads of the sessions made from now on when none are asked for (``share_cores``).
_threads = 0


def share_cores(networks: int) -> int:
    """Give each of ``networks`` networks that run side by side an equal share of the cores
    (at least one thread): the intra-op threads of every session made from now on.

    Why: one network spreads over the cores unevenly (small layers, Python between runs), and
    two networks with a thread per core each fight over them. Measured on 2 cores, 60 frames
    of vtest.avi, faces and plates side by side: 2 threads each 21.9-23.1 s wall, 37.5-40.0 s
    CPU; 1 thread each 17.6-17.8 s, 29.0-29.3 s (one after the other, 2 threads: 22.0-25.9 s,
    33.9-36.4 s).
    """
    global _threads
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    _threads = max(1, cores // max(1, networks))
    return _threads


def share() -> int:
    """The intra-op threads sessions get when none are asked for (0: ONNX Runtime's default)."""
    return _threads


def session(model, device: str = "auto", threads: int = 0):
    """An inference session for ``model`` (a path, or the bytes of an ONNX file).

    Args:
        device: "auto", "cpu" or an accelerator's name (see ``providers``).
        threads: intra-op threads on the CPU (0: the share of ``share_cores``, or ONNX
            Runtime's default, one per core).

    Raises:
        UsageError: an accelerator named by the user that this machine cannot start (ONNX
            Runtime lists a build's providers, not the ones that work: without the CUDA
            libraries or a GPU it falls back to the CPU, which must not pass silently).
    """
    import onnxruntime

    # Errors only, from every logger: ONNX Runtime's own messages would land in the terminal.
    onnxruntime.set_default_logger_severity(3)
    opts = onnxruntime.SessionOptions()
    threads = threads or _threads
    if threads > 0:
        opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    # Idle worker threads sleep instead of spinning: blur's decoder, encoder and the other model
    # need those cores between runs (measured on 100 frames of vtest.avi, 2 cores, two pairs of
    # runs: 50.6 -> 39.7 and 59.6 -> 48.3 CPU s).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # No memory pattern: it plans and keeps a buffer layout per input shape, and the face model
    # sees several (two passes, tiles, second-look batches). Measured peak RSS of a whole run:
    # 1887 -> 1406 MB on a 2 s 1080p clip, 1696 -> 1469-1506 MB on a 1 s 4K clip, same speed.
    opts.enable_mem_pattern = False
    device = device.lower()
    wanted = providers(device)
    sess = onnxruntime.InferenceSession(
        model if isinstance(model, bytes) else str(model), opts, providers=wanted
    )
    if sess.get_providers()[0] != wanted[0] and device != "auto":
        raise UsageError(
            f"device {device!r} could not be started ({wanted[0]} is installed but "
            f"did not load: a missing driver or library?); use --device cpu"
        )
    return sess
