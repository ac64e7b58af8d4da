"""What an export starts from: the bundle's fp32 ONNX graph and, when the bundle carries them,
its PyTorch weights (``classifier.safetensors`` + the model config in the manifest).

litert-torch, Core ML and torch-tensorrt convert from PyTorch, and the parity gate compares
every export with PyTorch itself when the weights are there (else with the fp32 ONNX graph,
which was gated against PyTorch at <= 1e-4 when the bundle was made).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..bundle import Bundle
from ..errors import ExportError

if TYPE_CHECKING:
    import torch

#: Manifest keys under ``models.classifier`` for the PyTorch weights and their constructor.
TORCH_WEIGHTS_KEY = "pytorch"
TORCH_CONFIG_KEY = "model_config"


class ExportSource:
    """The files of ``bundle`` a conversion reads; the torch model is built on first use."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.onnx: Path = bundle.model_file("classifier", "onnx")
        self._model: Any = None

    @property
    def has_torch(self) -> bool:
        return TORCH_WEIGHTS_KEY in self.bundle.manifest["models"]["classifier"]

    def torch_model(self) -> torch.nn.Module:
        """The classifier in eval mode, from safetensors (never a pickle)."""
        if self._model is None:
            if not self.has_torch:
                raise ExportError(
                    f"bundle {self.bundle.name!r} has no PyTorch weights (models.classifier."
                    f"{TORCH_WEIGHTS_KEY}); re-package it from its run with 'edgefas export RUN' "
                    "to convert through PyTorch")
            from safetensors.torch import load_file

            from ..models.fusion import build_classifier

            entry = self.bundle.manifest["models"]["classifier"]
            model = build_classifier(entry[TORCH_CONFIG_KEY])   # the RGB baseline or a fusion detector
            model.load_state_dict(load_file(self.bundle.model_file("classifier", TORCH_WEIGHTS_KEY)))
            self._model = model.eval()
        return self._model


def save_torch_weights(model: torch.nn.Module, bundle_dir: Path, model_config: dict) -> dict:
    """Write ``classifier.safetensors`` into ``bundle_dir``; return the manifest entries."""
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
              bundle_dir / "classifier.safetensors")
    return {TORCH_WEIGHTS_KEY: "classifier.safetensors", TORCH_CONFIG_KEY: dict(model_config)}
