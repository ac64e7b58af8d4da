"""Data sets (Replay-Attack, LFW, your own folders), protocols and the aligned-crop cache."""
from .folder import load_csv, load_folder
from .lfw import load_lfw
from .replay_attack import load_replay_attack
from .samples import Sample

__all__ = ["Sample", "load_csv", "load_folder", "load_lfw", "load_replay_attack"]
