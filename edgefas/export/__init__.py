"""Exporting trained models (torch) to deployable graphs, each checked against PyTorch."""
from .onnx_export import ParityReport, export_onnx

__all__ = ["ParityReport", "export_onnx"]
