"""The frozen configuration that builds a Long-VMNet, and the named presets.

Everything that decides the architecture lives here, so that a checkpoint carrying this
config (as JSON) rebuilds exactly the network that wrote it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from model.errors import ConfigError

#: Activity classes of the retail product; the synthetic store generator uses exactly these.
DEFAULT_ACTIVITY_LABELS: tuple[str, ...] = (
    "take_from_shelf",
    "put_in_cart",
    "inspect",
    "return_to_shelf",
    "take_out_of_cart",
)

#: Names accepted by ``ModelConfig.writer`` (see ``model.writers``).
WRITER_NAMES: tuple[str, ...] = ("neural", "random", "merge")
TIME_ANSWERS: tuple[str, ...] = ("head", "activity_steps")
#: Token mixers of the encoders (see ``model.layers.Encoder``).
MIXERS: tuple[str, ...] = ("attention", "mamba")
#: Where a question meets the memory (see ``model.encoder_decoder``).
QUERY_FUSIONS: tuple[str, ...] = ("encoder", "decoder")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a Long-VMNet; ``ModelConfig.preset(name)`` gives the named ones.

    Time is counted in frames at ``fps`` on the session timeline: memory time indices,
    query windows ``[start, end)`` and time answers are all such integer steps.
    """

    name: str
    # Frozen timm backbone; its final feature grid gives the tokens.
    backbone: str
    image_size: int  # square input side in pixels; the whole frame is resized to it
    backbone_channels: int  # C: channels of one token (the memory lives in this space)
    grid: tuple[int, int]  # (h', w'): the backbone's output grid, tokens per frame = h' * w'
    # Memory and timeline.
    fps: float  # memory frames per second: one time step = 1 / fps seconds
    clip_frames: int  # T: frames per clip written into memory in one sampler step
    memory_size: int  # m: tokens kept per session, whatever the video length
    # Transformers (sampler, encoder-decoder) and heads.
    d_model: int
    num_heads: int
    ffn_dim: int
    sampler_layers: int
    encoder_layers: int
    decoder_layers: int
    mlp_layers: int  # layers of every MLP (sampler scores, heads); the paper uses 1
    dropout: float
    # How the sampler's and the answer encoder's layers mix tokens: "attention" (paper) or
    # "mamba", VideoMamba's bidirectional selective scans (``model.mamba``, deviation).
    # The decoder keeps attention. The ssm_* fields size the Mamba mixer only.
    mixer: str = "attention"
    ssm_state: int = 16  # N: state size per channel
    ssm_expand: int = 2  # inner width = ssm_expand * d_model
    ssm_head_dim: int = 64  # P: channels per head; one decay per head
    ssm_conv: int = 4  # causal convolution kernel before each scan
    # The query's activity added to every memory token of the answer encoder's input, not
    # only given as one token of its own (deviation, for the Mamba mixer: a scan reads that
    # token first and carries it through a decaying state, so the 2,000th memory token
    # hears little of it, where attention reads it from every token). No weight depends
    # on it. See docs/MODEL.md, "The Mamba mixer".
    activity_in_every_token: bool = False
    # Decoder step t reads the memory tokens within this many steps of t (and the query's
    # own tokens); -1: the whole memory, as the paper. See docs/MODEL.md, "Deviations".
    decoder_time_radius: int = -1
    # Where the question meets the memory: "encoder" (paper), the question's tokens are
    # mixed with the memory's by the answer encoder, so every question re-encodes the whole
    # memory; "decoder" (deviation), the encoder reads the memory alone, once per memory
    # and model (``LongVMNet.prepare``), and the question is applied to the encoded tokens
    # the decoder reads. See docs/MODEL.md, "Questions meet the memory in the decoder".
    query_fusion: str = "encoder"
    # Decoder step t's self-attention reads only the steps within this many of t; -1: every
    # step of the window, as the paper (whose cost grows with the square of the window).
    decoder_self_radius: int = -1
    # With query_fusion "decoder": a memory token's encoder attention reads only the tokens
    # within this many steps of its own, so what a token hears is the same in a 4-minute
    # and a 40-minute session; -1: the whole memory. Attention mixer only.
    memory_encoder_radius: int = -1
    # The sampler's attention in blocks of this many candidates (in time order): a block
    # reads itself and its neighbours, 3 x this many keys, so a write costs linear, not
    # square, time in m; -1: every candidate reads every other, as the paper. A session of
    # at most 3 blocks is read whole either way. Attention mixer only; no weight depends
    # on it. See docs/MODEL.md, "The sampler reads its candidates in blocks".
    sampler_window: int = -1
    # With query_fusion "decoder": layers in which the question's own tokens (object image,
    # activity) read the whole question-weighted memory before the decoder reads them (a
    # glance over the session; decoder steps read only the memory near them). 0: none.
    glance_layers: int = 0
    # Each backbone channel shifted and scaled by its mean and spread over the training
    # videos' tokens before the projections' layer norm (deviation): a pretrained
    # backbone's tokens have a few loud channels that set a token's norm, and where the
    # box sits in the quiet ones a layer norm alone shrinks it (docs/MODEL.md, "Channel
    # standardisation"). The statistics are buffers of the checkpoint, fit once by training.
    token_standardisation: bool = False
    activity_labels: tuple[str, ...] = DEFAULT_ACTIVITY_LABELS
    writer: str = "neural"  # which memory writer ``LongVMNet.write`` uses
    writer_seed: int = 0  # seeds the ``random`` writer (mixed with each session's frames_seen)
    # A local file with the backbone's stock weights; None: random init (or weights come
    # from a LongVMNet checkpoint). Never a hub download.
    backbone_weights_file: str | None = None
    # Loss weights (paper: lambda_L1 = 5, lambda_gIoU = 2).
    loss_activity: float = 1.0
    loss_box_l1: float = 5.0
    loss_box_giou: float = 2.0
    loss_time: float = 1.0
    # Auxiliary, not in the paper: the sampler's scores against "this token shows the
    # handled product" (annotated boxes); 0 = off, the paper's end-to-end-only sampler.
    # See docs/MODEL.md, "Deviations".
    loss_sampler_evidence: float = 0.0
    # Not in the paper: the activity answer judged at every window step too (the paper
    # judges only the window's), from the annotated spans; what reconciliation reads to
    # count events. 0 = off. See docs/MODEL.md, "Deviations".
    loss_activity_steps: float = 0.0
    # Not in the paper: width of the product-match embedding (``model.product_match``) that
    # gives each memory token its cosine similarity to the query's catalog image; 0 = off,
    # the paper's answer inputs only. See docs/MODEL.md, "Deviations".
    object_match_dim: int = 0
    # How time questions are answered: "head", the paper's start/end head; or
    # "activity_steps", from the activity head's per-step answer for the question's
    # product and activity (deviation; no weight differs). See docs/MODEL.md.
    time_answers: str = "head"
    # Activity probabilities are ``sigmoid(scale * logit + bias)``, one map for every
    # activity and step, fitted on a validation split (``model.calibration``); the default
    # is the raw sigmoid. A monotone map shared by all classes: rankings do not change.
    activity_logit_scale: float = 1.0
    activity_logit_bias: float = 0.0

    def __post_init__(self) -> None:
        # JSON gives lists; keep the config hashable and comparable.
        object.__setattr__(self, "grid", tuple(int(g) for g in self.grid))
        object.__setattr__(self, "activity_labels", tuple(self.activity_labels))
        self._validate()

    # ------------------------------------------------------------------ derived sizes
    @property
    def tokens_per_frame(self) -> int:
        """S = h' * w'."""
        return self.grid[0] * self.grid[1]

    @property
    def clip_tokens(self) -> int:
        """k = T * S: tokens one full clip offers the writer."""
        return self.clip_frames * self.tokens_per_frame

    @property
    def num_activities(self) -> int:
        return len(self.activity_labels)

    # ------------------------------------------------------------------ presets
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ModelConfig:
        """The named preset (``paper``, ``small``, ``tiny``), optionally with fields replaced."""
        try:
            base = _PRESETS[name]
        except KeyError:
            raise ConfigError(
                f"Unknown model preset {name!r}; choose one of {', '.join(_PRESETS)}."
            ) from None
        return dataclasses.replace(base, **overrides) if overrides else base

    @staticmethod
    def preset_names() -> tuple[str, ...]:
        return tuple(_PRESETS)

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["grid"] = list(self.grid)
        out["activity_labels"] = list(self.activity_labels)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"Model config has unknown fields {unknown}; is the file newer?")
        try:
            return cls(**values)
        except TypeError as exc:  # a required field is missing
            raise ConfigError(f"Model config is incomplete: {exc}.") from None

    # ------------------------------------------------------------------ checks
    def _validate(self) -> None:
        positive = (
            "image_size",
            "backbone_channels",
            "clip_frames",
            "memory_size",
            "d_model",
            "num_heads",
            "ffn_dim",
            "sampler_layers",
            "encoder_layers",
            "decoder_layers",
            "mlp_layers",
            "ssm_state",
            "ssm_expand",
            "ssm_head_dim",
            "ssm_conv",
        )
        for field_name in positive:
            if int(getattr(self, field_name)) <= 0:
                raise ConfigError(f"ModelConfig.{field_name} must be a positive integer.")
        if len(self.grid) != 2 or min(self.grid) <= 0:
            raise ConfigError("ModelConfig.grid must be two positive integers (rows, columns).")
        if self.fps <= 0:
            raise ConfigError("ModelConfig.fps must be positive.")
        if self.d_model % self.num_heads:
            raise ConfigError("ModelConfig.d_model must be a multiple of num_heads.")
        if self.d_model % 4:
            raise ConfigError("ModelConfig.d_model must be a multiple of 4 (2-D sinusoids).")
        if self.mixer not in MIXERS:
            raise ConfigError(
                f"ModelConfig.mixer must be one of {', '.join(MIXERS)}, not {self.mixer!r}."
            )
        if (self.ssm_expand * self.d_model) % self.ssm_head_dim:
            raise ConfigError("ModelConfig.ssm_head_dim must divide ssm_expand * d_model.")
        if self.object_match_dim < 0:
            raise ConfigError("ModelConfig.object_match_dim must be 0 (off) or positive.")
        if self.time_answers not in TIME_ANSWERS:
            raise ConfigError(
                f"ModelConfig.time_answers must be one of {', '.join(TIME_ANSWERS)}, "
                f"not {self.time_answers!r}."
            )
        if not self.activity_logit_scale > 0:  # also refuses NaN
            raise ConfigError("ModelConfig.activity_logit_scale must be positive.")
        if not abs(self.activity_logit_bias) < float("inf"):
            raise ConfigError("ModelConfig.activity_logit_bias must be a finite number.")
        if self.query_fusion not in QUERY_FUSIONS:
            raise ConfigError(
                f"ModelConfig.query_fusion must be one of {', '.join(QUERY_FUSIONS)}, "
                f"not {self.query_fusion!r}."
            )
        if self.decoder_self_radius < -1:
            raise ConfigError("ModelConfig.decoder_self_radius must be -1 (off) or >= 0.")
        if self.memory_encoder_radius < -1:
            raise ConfigError("ModelConfig.memory_encoder_radius must be -1 (off) or >= 0.")
        if self.memory_encoder_radius >= 0 and (
            self.query_fusion != "decoder" or self.mixer != "attention"
        ):
            raise ConfigError(
                "ModelConfig.memory_encoder_radius needs query_fusion 'decoder' and the "
                "attention mixer (the memory is encoded alone, by attention)."
            )
        if self.sampler_window == 0 or self.sampler_window < -1:
            raise ConfigError("ModelConfig.sampler_window must be -1 (off) or >= 1.")
        if self.sampler_window > 0 and self.mixer != "attention":
            raise ConfigError("ModelConfig.sampler_window needs the attention mixer.")
        if self.glance_layers < 0 or (self.glance_layers and self.query_fusion != "decoder"):
            raise ConfigError(
                "ModelConfig.glance_layers must be 0, or positive with query_fusion 'decoder'."
            )
        if self.decoder_time_radius < -1:
            raise ConfigError("ModelConfig.decoder_time_radius must be -1 (off) or >= 0.")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("ModelConfig.dropout must be in [0, 1).")
        if not self.activity_labels or len(set(self.activity_labels)) != len(self.activity_labels):
            raise ConfigError("ModelConfig.activity_labels must be non-empty and unique.")
        if self.writer not in WRITER_NAMES:
            raise ConfigError(
                f"ModelConfig.writer must be one of {', '.join(WRITER_NAMES)}, not {self.writer!r}."
            )
        if ":" in self.backbone:  # "hf-hub:..." / "local-dir:..." would make timm fetch
            raise ConfigError(
                "ModelConfig.backbone must be a plain timm model name; give weights through "
                "backbone_weights_file, never a hub reference."
            )


_PRESETS: dict[str, ModelConfig] = {
    # The paper's sizes (Sec. 4.2): Swin-V2 small, 49 tokens per frame, T = 120 at 1 FPS,
    # m = 5,880 = T * 49, N = 2 layers, 1-layer MLPs, dropout 0.2, d_model 256 as TubeDETR.
    "paper": ModelConfig(
        name="paper",
        backbone="swinv2_cr_small_ns_224",
        image_size=224,
        backbone_channels=768,
        grid=(7, 7),
        fps=1.0,
        clip_frames=120,
        memory_size=5880,
        d_model=256,
        num_heads=8,
        ffn_dim=2048,
        sampler_layers=2,
        encoder_layers=2,
        decoder_layers=2,
        mlp_layers=1,
        dropout=0.2,
    ),
    # A single-GPU / patient-CPU middle ground: ResNet-18 at 160 px (5 x 5 grid), 32-frame
    # clips, m = 32 * 25 = 800.
    "small": ModelConfig(
        name="small",
        backbone="resnet18",
        image_size=160,
        backbone_channels=512,
        grid=(5, 5),
        fps=1.0,
        clip_frames=32,
        memory_size=800,
        d_model=128,
        num_heads=4,
        ffn_dim=512,
        sampler_layers=2,
        encoder_layers=2,
        decoder_layers=2,
        mlp_layers=1,
        dropout=0.1,
    ),
    # Runs comfortably on 2 CPU cores (tests, demo, issue-4 training): MobileNetV3-small at
    # 128 px (4 x 4 grid, ~1 ms per frame), 16-frame clips, m = 16 * 16 = 256.
    "tiny": ModelConfig(
        name="tiny",
        backbone="mobilenetv3_small_100",
        image_size=128,
        backbone_channels=576,
        grid=(4, 4),
        fps=1.0,
        clip_frames=16,
        memory_size=256,
        d_model=64,
        num_heads=4,
        ffn_dim=128,
        sampler_layers=2,
        encoder_layers=2,
        decoder_layers=2,
        mlp_layers=1,
        dropout=0.1,
        decoder_time_radius=1,
        # The activity answer is what checkout reconciles on; with the paper's weight its
        # focal loss is a few percent of the total and learned last (docs/MODEL.md).
        loss_activity=10.0,
        # In our CPU budget the end-to-end signal alone teaches the sampler to spread its
        # tokens over time but not which ones hold the product (docs/MODEL.md).
        loss_sampler_evidence=1.0,
        # Products never seen in training are recognised by matching their catalog image
        # (docs/MODEL.md).
        object_match_dim=64,
    ),
}
