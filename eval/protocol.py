"""The two evaluation protocols and every convention in which they differ (SPEC §8).

Common to both:

- Motion: any file ``motion.formats.load_motion`` reads, brought into the body's frame by
  ``prepare_for_body`` (y up, 30 fps, translation scaled to the body's legs; the scale is 1 for the
  real SMPL-X and ≈ 0.994 for our default body), then the FIRST ``max_frames`` (1024) frames, then
  forward kinematics with the body model's rest joints (default body unless ``--body_model``);
  the 22 body joints (SMPL-X 0–21), metres, y up.
- Features are computed on joints minus the first frame's root joint position (all three axes),
  which changes nothing but the reference's acceleration bug (which is not translation invariant).
- Kinetic features: per joint, with velocities averaged over a sliding window of ±2 frames (see
  :mod:`eval.features`). Geometric: the 32 Müller-style relations of the public scripts.
- FID = Fréchet distance between Gaussians fitted to the z-scored features of the two sets;
  Div = mean pairwise Euclidean distance of one set's z-scored features. Both sets are z-scored
  with the ground-truth mean and standard deviation (population std, ddof = 0).
- BAS: ``sync.beats`` (motion beats = minima of the σ = 5 smoothed mean joint speed; score =
  mean over music beats of exp(−d²/18)); chance = the same motion against the beat grid shifted by
  fractions of its period; gain = BAS − chance.
- PFC (EDGE's physical foot contact, identical in both protocols): see :func:`eval.metrics.pfc`.

=========================  ===========================================  ============================================
convention                 clean (default)                              reference (the public scripts)
=========================  ===========================================  ============================================
kinetic frame time         1/30 s (the data's frame rate)               1/60 s (velocities ×2, energies ×4)
kinetic acceleration       (x[k+1] − 2x[k] + x[k−1]) / dt²              ((x[k+1]−x[k])/dt − (x[k] − x[k−1]/dt)) / dt
                                                                        (the operator-precedence bug)
geometric frame time       1/30 s for the velocity relations            1/120 s (the scripts' default)
z-scoring                  σ < 1e-8 (a constant ground-truth channel)   (x − μ) / (σ + 1e-10)
                           is replaced by 1, so a channel that never
                           varies cannot blow up FID by 1e10
BAS music beats            the beats inside the frames the motion       every beat of the music file (the whole
                           covers (the segment it dances to)            song), also those after the motion ends
FSR grounding              floor = 2nd percentile over frames of the    floor = toe height in frame 0 (mean of
                           lower toe joint's height                     both toes when within 2 cm, else the lower)
FSR sliding                horizontal speed ‖(dx, dz)‖ of the ankle     |mean(dx, dz)| of the ankle or the toe
                           or the toe > 0.01 m/frame (frames 0…T−2)     > 0.01 (last frame: contact, speed 0)
PFC with no root motion    0                                            NaN (0 / 0)
=========================  ===========================================  ============================================
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

FPS = 30
MAX_FRAMES = 1024


@dataclass(frozen=True)
class Protocol:
    """Every convention that differs between the two protocols (see the module docstring)."""

    name: str
    kinetic_frame_time: float
    acceleration_bug: bool
    geometric_frame_time: float
    std_floor: float | None          # z-scoring: σ below this becomes 1 (None: add std_epsilon)
    std_epsilon: float
    whole_song_beats: bool
    fsr_style: str                   # 'clean' or 'lodge'
    pfc_zero_when_still: bool

    def to_dict(self) -> dict:
        return asdict(self)


CLEAN = Protocol(name="clean", kinetic_frame_time=1 / FPS, acceleration_bug=False, geometric_frame_time=1 / FPS,
                 std_floor=1e-8, std_epsilon=0.0, whole_song_beats=False, fsr_style="clean",
                 pfc_zero_when_still=True)
REFERENCE = Protocol(name="reference", kinetic_frame_time=1 / 60, acceleration_bug=True,
                     geometric_frame_time=1 / 120, std_floor=None, std_epsilon=1e-10, whole_song_beats=True,
                     fsr_style="lodge", pfc_zero_when_still=False)
PROTOCOLS = {p.name: p for p in (CLEAN, REFERENCE)}


def get_protocol(name: str | Protocol) -> Protocol:
    if isinstance(name, Protocol):
        return name
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"unknown protocol '{name}'; choose one of {', '.join(PROTOCOLS)}") from None
