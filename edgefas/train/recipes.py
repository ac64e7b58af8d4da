"""Training recipes as data: one frozen config per size, chosen by name."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from ..errors import EdgefasError, unknown_name

AUGMENTS = ("basic", "camera")
#: bounds of the alignment jitter (exclusive scale, inclusive degrees): beyond them the crop
#: is no longer the face the detector found
JITTER_SCALE_BELOW, JITTER_DEGREES_MAX = 0.5, 45.0
#: bounds of the light change (stops of exposure, inclusive; white-balance gain shift, exclusive)
LIGHT_EV_MAX, LIGHT_WB_BELOW = 4.0, 1.0
#: what a fine-tuning run trains (BaselineRecipe.train_layers)
TRAIN_LAYERS = ("all", "last-stage")


@dataclass(frozen=True)
class BaselineRecipe:
    """Everything that decides a baseline training run (written into the run and bundle)."""

    name: str
    arch: str = "mobilevit_xxs"
    steps: int = 600
    batch_size: int = 48
    # 2e-3 with 20 warm-up steps made the devel D-EER jump 0.7% -> 6% between checkpoints
    # (loss spikes) in the first cpu run; 1e-3 with a longer warm-up trains smoothly.
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 50
    ema_decay: float = 0.98
    eval_every: int = 100          # steps between devel evaluations / checkpoints
    devel_frames_per_video: int = 10  # devel frames scored at each evaluation (selection)
    use_lfw: bool = True           # LFW train identities as extra bona fide faces
    lfw_share: float = 0.25        # share of each batch's bona fide half drawn from LFW
    # Keep LFW's devel bucket of identities (edgefas.data.lfw.DEVEL_BUCKET, 10 % of them) out of
    # training and add its faces to devel as a second bona fide source: checkpoint and
    # threshold are then chosen against the worse of Replay-Attack's webcam and other cameras,
    # which a Replay-only devel set cannot see (its live faces come from the training webcam).
    lfw_devel: bool = False
    # A third source of bona fide faces: "cfd" (the Chicago Face Database's studio portraits,
    # edgefas.data.other_sets.load_cfd) or the path of a user's folder or CSV of live faces
    # (edgefas.data.folder.load_live_faces), drawn at extra_live_share of each batch's bona
    # fide half. Its people in LFW's devel hash bucket stay out of training. None keeps earlier
    # runs as they were.
    extra_live: str | None = None
    extra_live_share: float = 0.0
    seed: int = 0
    threads: int = 2
    # "basic": flip, shift, brightness/contrast. "camera": also the capture-pipeline effects
    # of edgefas.train.camera_aug (resolution, blur/sharpening, noise, gamma, JPEG) on both
    # classes, for live faces from cameras the training set does not have (P4).
    augment: str = "basic"
    # Share of each batch's attack half replaced by synthetic prints and screen replays made
    # from live training crops (edgefas.train.synth_attacks): attack media beyond
    # Replay-Attack's one printer, phone and tablet. 0 keeps earlier runs as they were.
    synth_attacks: float = 0.0
    # Alignment jitter (edgefas.train.camera_aug.alignment_jitter): every training crop is
    # re-warped by a scale change uniform in +-jitter_scale, a rotation uniform in
    # +-jitter_degrees and a sub-pixel shift, as a slightly different face-detector answer
    # would have aligned it. 0, 0 keeps earlier runs as they were.
    jitter_scale: float = 0.0
    jitter_degrees: float = 0.0
    # Light change (edgefas.train.camera_aug.light_change): half of the training crops, of both
    # classes, get an exposure change of up to +-light_ev stops and a white-balance cast of up
    # to +-light_wb (red against blue, linear light). 0, 0 keeps earlier runs as they were.
    light_ev: float = 0.0
    light_wb: float = 0.0
    # Share of each batch's live half given a print's or a screen's tone (gamut, cast, glare,
    # blur) without its texture, labels kept: with synth_attacks, only the media's dots,
    # moire and pixel rows are left to tell them apart. 0 keeps earlier runs as they were.
    # The first live slots of the batch get it: Replay-Attack's before LFW's (baseline.
    # _with_live_tone), so at lfw_share 0.25 a share <= 0.75 tones no LFW face.
    synth_live_tone: float = 0.0
    # True: the toned live slots are drawn at random among all of the batch's live slots
    # (Replay-Attack's and LFW's alike, as the synthetic attacks' sources are), instead of the
    # first ones. False keeps the S2 run's meaning.
    synth_live_tone_any: bool = False
    # Fusion detector (issue 5): None trains the RGB baseline. Otherwise "xattn" or "twostream",
    # with the frozen cue module read from cue_dir (edgefas distill OUT/student, or a DS Net
    # teacher folder with cue_kind "despoof").
    fusion: str | None = None
    cue_dir: str | None = None
    cue_kind: str = "student"
    cue_nfe: int = 1
    # Where the starting weights came from: "<bundle name>@sha256:<classifier.safetensors>" for
    # a fine-tuning run (edgefas.train.finetune), None for a run from scratch.
    init_from: str | None = None
    # Pretrained backbone weights a run from scratch starts from instead of random ones
    # (edgefas.train.backbone_init): "sha256:<the weights file's>". None: random weights (every
    # run up to bundle v0.3).
    backbone_init: str | None = None
    # L2-SP (Li et al., ICML 2018): loss + anchor / 2 * ||w - w_init||^2 over the trained
    # weights, pulling a fine-tuned model toward the bundle it started from so that it keeps
    # more of what the base data taught. 0: plain fine-tuning (and every run from scratch).
    anchor: float = 0.0
    # Fine-tuning only: also train on the base bundle's own training data (its protocol's
    # Replay-Attack train part, and LFW as its recipe drew it), mixed with the user's captures
    # in proportion to their counts, so that the base task keeps being rehearsed.
    rehearse: bool = False
    # Fine-tuning: keep BatchNorm's running statistics as the base bundle left them (BN layers
    # in eval mode while training). The anchor holds the weights, not these buffers, and on
    # NUAA they moved as far with the anchor as without it (docs/finetune_nuaa/result.md).
    freeze_bn: bool = False
    # Fine-tuning: which weights train. "all", or "last-stage": the backbone's last stage and
    # what follows it (MobileViT-XXS: stage 4, the final 1x1 convolution and the head, 460 k of
    # 951 k parameters); the layers below keep the base's weights and BatchNorm statistics.
    # On NUAA it failed its devel rule: it forgot more of the base and adapted less than all
    # layers under the same anchor (docs/finetune_nuaa/result.md, addendum 5).
    train_layers: str = "all"

    def to_dict(self) -> dict:
        return asdict(self)

    def with_overrides(self, **kw) -> BaselineRecipe:
        return replace(self, **{k: v for k, v in kw.items() if v is not None})

    def __post_init__(self) -> None:
        if self.augment not in AUGMENTS:
            raise EdgefasError(unknown_name("augment", self.augment, list(AUGMENTS)))
        for name in ("synth_attacks", "synth_live_tone", "extra_live_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise EdgefasError(f"{name} is a share of a batch half, in [0, 1]: "
                                   f"got {getattr(self, name)}")
        if not (0.0 <= self.jitter_scale < JITTER_SCALE_BELOW
                and 0.0 <= self.jitter_degrees <= JITTER_DEGREES_MAX):
            raise EdgefasError("jitter_scale is a relative scale change in [0, 0.5) and "
                               "jitter_degrees an angle in [0, 45]: got "
                               f"{self.jitter_scale}, {self.jitter_degrees}")
        if not (0.0 <= self.light_ev <= LIGHT_EV_MAX and 0.0 <= self.light_wb < LIGHT_WB_BELOW):
            raise EdgefasError(f"light_ev is in stops, in [0, {LIGHT_EV_MAX:g}], and light_wb a gain "
                               f"shift in [0, {LIGHT_WB_BELOW:g}): got {self.light_ev}, {self.light_wb}")
        if (self.rehearse or self.freeze_bn) and self.init_from is None:
            raise EdgefasError("rehearse and freeze_bn are for a run that starts from a bundle's "
                               "weights (init_from)")
        if self.train_layers not in TRAIN_LAYERS:
            raise EdgefasError(unknown_name("train layers", self.train_layers, list(TRAIN_LAYERS)))
        if self.train_layers != "all" and self.init_from is None:
            raise EdgefasError(f"train_layers {self.train_layers!r} is for a run that starts from "
                               "a bundle's weights (init_from)")
        if self.backbone_init is not None and (self.init_from is not None or self.fusion):
            raise EdgefasError("backbone_init starts the RGB detector from pretrained weights: not "
                               "with a bundle's weights (init_from) or a fusion detector")
        if self.anchor < 0 or (self.anchor > 0 and self.init_from is None):
            raise EdgefasError(f"anchor {self.anchor:g}: a non-negative weight, and only for a run "
                               "that starts from a bundle's weights (init_from)")
        if (self.extra_live is None) != (self.extra_live_share == 0.0):
            raise EdgefasError("extra_live and extra_live_share go together: a source and its "
                               f"share (got {self.extra_live!r}, {self.extra_live_share})")
        if self.lfw_share * self.use_lfw + self.extra_live_share >= 1.0:
            raise EdgefasError("lfw_share + extra_live_share must leave Replay-Attack's live faces "
                               f"part of each batch: got {self.lfw_share} + {self.extra_live_share}")


RECIPES: dict[str, BaselineRecipe] = {
    # Seconds, on synthetic or fixture crops: exercises every code path in the tests.
    "tiny": BaselineRecipe("tiny", steps=4, batch_size=8, warmup_steps=1, eval_every=2,
                           devel_frames_per_video=1, threads=1),
    # About 12 minutes on 2 idle CPU cores: the recipe behind the shipped default bundle, which
    # was trained with augment="camera" (`--augment camera`; the default stays "basic" so that
    # every earlier documented run reproduces as it was).
    "cpu": BaselineRecipe("cpu"),
    # For a GPU (accelerate launch): more steps, larger batches, the larger MobileViT.
    "gpu": BaselineRecipe("gpu", arch="mobilevit_xs", steps=6000, batch_size=128, lr=2e-3,
                          warmup_steps=300, ema_decay=0.999, eval_every=500,
                          devel_frames_per_video=20, threads=8),
}


def get_recipe(name: str) -> BaselineRecipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise EdgefasError(unknown_name("recipe", name, list(RECIPES))) from None
