"""Inference: decoding, face detection, alignment, preprocessing and backends.

Imports numpy, OpenCV and an inference engine only; never torch (a test enforces it).
"""
