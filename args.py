"""Every command-line option of the project, grouped by purpose, in one place.

Each entry point builds its parser from the groups it needs, so an option means the same thing
(same name, default and help) everywhere.
"""
from __future__ import annotations

import argparse

from eval.protocol import MAX_FRAMES            # torch-free, as is model.config: --help stays instant
from model.config import DEFAULT_DIFFUSION, DEFAULT_SECONDS
from dataset.styles import STYLES


FINEDANCE_SPLITS = ("genre", "dancer")     # dataset.finedance.FINEDANCE_SPLITS (not imported: --help stays instant)
SUBSETS = ("train", "test", "all")


class _SplitAction(argparse.Action):
    """--split genre|dancer picks the official FineDance split; the older --split train|test|all
    still picks the part (as --subset does)."""

    def __call__(self, parser, namespace, value, option_string=None):
        if value in SUBSETS and self.const:
            setattr(namespace, self.const, value)
        elif value in SUBSETS:
            parser.error(f"--split takes {' or '.join(FINEDANCE_SPLITS)} here, not {value!r}")
        else:
            setattr(namespace, self.dest, value)


def add_split(g, subset_dest: str | None = None, subset_default: str = "test"):
    """--split (FineDance@Genre or FineDance@Dancer; dest ``finedance_split``) and, with a
    ``subset_dest``, --subset (train, test or all of it)."""
    choices = FINEDANCE_SPLITS + (SUBSETS if subset_dest else ())
    g.add_argument("--split", dest="finedance_split", default="genre", choices=choices, action=_SplitAction,
                   const=subset_dest,
                   help="which official FineDance split a FineDance root is cut by: genre (FineDance@Genre, "
                        "default) or dancer (FineDance@Dancer); a corpus with its own splits.json uses its lists"
                        + (f" (train, test or all: the same as --subset, as before)" if subset_dest else ""))
    if subset_dest:
        g.add_argument("--subset", dest=subset_dest, default=subset_default, choices=SUBSETS,
                       help=f"which songs of the split (default {subset_default})")


def _add_body(p: argparse.ArgumentParser):
    g = p.add_argument_group("body")
    g.add_argument("--body_model", default=None, metavar="PATH",
                   help="SMPL-X .npz file or folder with SMPLX_NEUTRAL.npz (default: "
                        "assets/smpl_model/smplx/SMPLX_NEUTRAL.npz if present, else our free body)")


def _add_render(p: argparse.ArgumentParser):
    g = p.add_argument_group("rendering")
    g.add_argument("--mode", choices=("smplx", "skeleton"), default="smplx",
                   help="full body mesh, or a fast stick-figure preview")
    g.add_argument("--gl", choices=("osmesa", "egl"), default=None,
                   help="offscreen OpenGL platform (default: OSMesa if installed, else EGL)")
    g.add_argument("--overwrite", action="store_true",
                   help="replace existing output files (without it, an existing file is an error and nothing is written)")


def render_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="render.py", description="Render saved motion files (.npy, .pkl, .npz) to 1200×1200 MP4 videos.")
    src = p.add_argument_group("input and output")
    src.add_argument("--modir", required=True, metavar="DIR_OR_FILE",
                     help="folder of motion files (or a single file)")
    src.add_argument("--out_dir", default=None, metavar="DIR",
                     help="where videos go (default: DIR/../videos)")
    src.add_argument("--music", default=None, metavar="FILE",
                     help="audio to mux into every video (default: a same-named audio file beside each motion)")
    _add_render(p)
    _add_body(p)
    return p


def _add_generation(p: argparse.ArgumentParser, duration_default: str | None = None,
                    duration_help: str = "seconds of dance from the song's start, or 'full' for the whole song "
                                         f"(default {DEFAULT_SECONDS:g}; with --edit, the motion's length: a "
                                         "longer duration continues the dance)"):
    g = p.add_argument_group("generation")
    g.add_argument("--checkpoint", default=None, metavar="FILE",
                   help="model checkpoint: ours, one from train_seq.py, or FineDance's train-2000.pt "
                        "(default: assets/checkpoints/default.pt)")
    g.add_argument("--duration", default=duration_default, metavar="SECONDS|full", help=duration_help)
    g.add_argument("--seed", type=int, default=0, help="same seed, same dance")
    g.add_argument("--steps", type=int, default=None,
                   help=f"DDIM denoising steps (default: the checkpoint's, {DEFAULT_DIFFUSION.sample_steps} for ours)")
    g.add_argument("--guidance", type=float, default=None,
                   help=f"classifier-free guidance weight (default: the checkpoint's, {DEFAULT_DIFFUSION.guidance:g} "
                        "for ours)")
    g.add_argument("--no_beat_sync", dest="beat_sync", action="store_false",
                   help="keep the model's own timing (default: re-time the dance so its moves land on the "
                        "song's beats, each beat moved by at most 0.5 s)")
    g.add_argument("--no_foot_lock", dest="foot_lock", action="store_false",
                   help="leave the feet as the model made them (default: plant each foot that touches the "
                        "floor where it landed, bending the legs by two-bone IK, so it does not slide)")
    g.add_argument("--no_retrieval", dest="retrieval", action="store_false",
                   help="let the model write the whole dance (default: dance around real motion-capture clips "
                        "that fit the song's tempo; the model writes the transitions between them and the hands; "
                        "see README)")
    g.add_argument("--no_hand_motion", dest="hand_motion", action="store_false",
                   help="leave the fingers as the model wrote them (default: procedural hand poses - relaxed, open, "
                        "fist, point, ... - that change on the beat and follow the arms, unless the model moves its "
                        "own fingers; not learned, see README)")
    g.add_argument("--style", default="any", metavar="NAME",
                   help=f"dance style: {', '.join(STYLES)} (default any: whatever fits the song). Retrieval draws "
                        "only that style's clips and a model with a style token dances it; with a model without "
                        "one (the official checkpoint) it changes the retrieved clips only")
    g.add_argument("--reference", action="store_true",
                   help="reproduce FineDance's official test.py: its per-slice music features, guidance schedule, "
                        "independent initial noise and stitching, without beat sync, foot lock, retrieval or hand motion "
                        "(default: our sampler and additions; see README, 'Two modes')")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")


def _add_export(p: argparse.ArgumentParser, option: str = "--export", required: bool = False):
    g = p.add_argument_group("export (motion for animation tools)")
    g.add_argument(option, dest="export", required=required, default=None, metavar="FORMATS",
                   help="comma-separated: bvh (52-joint skeleton, centimetres, 30 fps), glb (skinned body with "
                        "its animation, for any glTF viewer or engine), npz (AMASS-style SMPL-X, z up, for the "
                        "SMPL-X Blender add-on)" + (", written beside each video with the same name" if not required else ""))
    g.add_argument("--no_ground", dest="ground", action="store_false",
                   help="write bvh and glb in the body model's own frame (pelvis at its rest height above the "
                        "origin, feet about 0.9 m below y = 0) instead of standing on the floor (default: the "
                        "soles rest on y = 0, as in the videos; npz is never moved)")
    g.add_argument("--ground", dest="ground", action="store_true", help=argparse.SUPPRESS)  # the default; old scripts


def _add_edit(p: argparse.ArgumentParser):
    from motion.edit import PARTS

    g = p.add_argument_group("editing (dance around a motion you bring; see README)")
    g.add_argument("--edit", default=None, metavar="MOTION",
                   help="motion to edit, in any format render.py reads (.npy, .pkl, .npz); the song and the motion "
                        "start together, the dance lasts as long as the motion unless --duration asks for more "
                        "(the extra continues the dance)")
    g.add_argument("--keep", default=None, metavar="SPANS",
                   help="spans of MOTION kept exactly, in seconds, e.g. 0-3,6-10 (default: all of it); the rest "
                        "is danced anew to the music")
    g.add_argument("--keep_parts", default=None, metavar="PARTS",
                   help=f"what is kept inside the spans: all (default), or comma-separated {', '.join(PARTS[:-1])}: "
                        "lower = root translation, pelvis, legs, feet; upper = root, spine, neck, head, arms; "
                        "hands = the 30 finger joints; root = root translation and orientation (a path to follow)")


def generate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="generate_dance.py",
                                description="Make a dance video (1200×1200, 30 fps, with the song's audio) for each song.")
    io = p.add_argument_group("input and output")
    io.add_argument("songs", nargs="+", metavar="SONG", help="audio files (mp3, wav, m4a, flac, ogg, …)")
    io.add_argument("--output", default=None, metavar="PATH", help="video path (one song only)")
    io.add_argument("--out_dir", default="output", metavar="DIR",
                    help="where videos go as <songname>_dance.mp4 (default: output)")
    io.add_argument("--save_motion", action="store_true",
                    help="also write the motion beside each video: FineDance .npy and AMASS-style .npz")
    _add_generation(p)
    _add_edit(p)
    _add_render(p)
    _add_export(p)
    _add_body(p)
    return p


def export_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="export.py", description="Write a motion file (.npy, .pkl, .npz) for animation tools: BVH, glTF "
        "binary (.glb) or AMASS-style .npz.")
    io = p.add_argument_group("input and output")
    io.add_argument("motion", metavar="MOTION", help="motion file: FineDance .npy, EDGE/AIST++ .pkl or AMASS-style .npz")
    io.add_argument("--out", default=None, metavar="PATH",
                    help="output file (one format only; default: beside MOTION, named MOTION's stem + .FORMAT)")
    io.add_argument("--overwrite", action="store_true", help="replace existing files")
    _add_export(p, option="--format", required=True)
    _add_body(p)
    return p


def train_parser() -> argparse.ArgumentParser:
    from model.training import MODEL_SIZES, TrainOptions

    d = TrainOptions()
    p = argparse.ArgumentParser(
        prog="train_seq.py", description="Train the dance diffusion model on a FineDance-layout folder. "
        "Run with `accelerate launch train_seq.py …` for several GPUs or processes.")
    data = p.add_argument_group("data")
    data.add_argument("--data_dir", default=d.data_dir, help="FineDance-layout folder (motion/, music_npy/, …)")
    add_split(data, subset_dest="split", subset_default=d.split)
    data.add_argument("--stride", type=int, default=d.stride, help="frames between training windows")
    data.add_argument("--min_std", type=float, default=d.min_std,
                      help="drop nearly still windows: mean per-channel std at most this (the reference's 0.07 "
                           "assumes captured finger motion; use ~0.02 for data with fixed hands)")
    data.add_argument("--num_workers", type=int, default=d.num_workers)
    model = p.add_argument_group("model")
    model.add_argument("--model_size", default=d.model_size, choices=sorted(MODEL_SIZES),
                       help="network size (official = the released FineDance size)")
    opt = p.add_argument_group("optimisation")
    opt.add_argument("--batch_size", type=int, default=d.batch_size, help="per process")
    opt.add_argument("--epochs", type=int, default=d.epochs)
    opt.add_argument("--max_steps", type=int, default=None, help="stop after this many steps in total")
    opt.add_argument("--lr", type=float, default=d.lr)
    opt.add_argument("--warmup_steps", type=int, default=d.warmup_steps,
                     help="ramp the learning rate up linearly over this many steps (e.g. 200 with --init: "
                          "Adan's first steps move every weight by about lr)")
    opt.add_argument("--weight_decay", type=float, default=d.weight_decay)
    opt.add_argument("--ema_decay", type=float, default=d.ema_decay)
    opt.add_argument("--seed", type=int, default=d.seed)
    opt.add_argument("--speed_loss", type=float, default=d.speed_loss, metavar="W",
                     help="weight of our speed-profile loss: the per-frame mean body-joint speed of the "
                          "prediction against the target's, relative to its mean square (0 = off, the "
                          "reference recipe)")
    opt.add_argument("--beat_loss", type=float, default=d.beat_loss, metavar="W",
                     help="weight of our beat loss: a squared hinge asking each window's body-joint speed "
                          "to be lower on the music's beats than between them, by --beat_margin "
                          "(0 = off, the reference recipe)")
    opt.add_argument("--beat_margin", type=float, default=d.beat_margin, metavar="C",
                     help="the beat contrast the beat loss asks for: speed/mean weighted by cos 2πφ of the "
                          "beat phase; 0.1 = a speed that swings ±20%% over the beat")
    out = p.add_argument_group("checkpoints")
    out.add_argument("--out_dir", default=d.out_dir, help="checkpoints, log.csv")
    out.add_argument("--save_every", type=int, default=d.save_every, help="epochs between checkpoints")
    out.add_argument("--checkpoint", default=None, help="resume from this checkpoint")
    out.add_argument("--init", default=None, metavar="FILE",
                     help="start a new run (epoch 0, fresh optimiser) from this checkpoint's weights: ours or "
                          "FineDance's train-2000.pt; our additions named by --init_add are added where it "
                          "lacks them, without changing what it computes")
    out.add_argument("--init_add", default=d.init_add, metavar="LIST",
                     help="with --init: which of our additions to add (comma-separated: music_norm, "
                          "cond_frames, beat_phase, style; default the first three; style adds the style "
                          "token at zero)")
    opt.add_argument("--style_drop", type=float, default=d.style_drop, metavar="P",
                     help="models with a style token: probability a window's style is replaced by the null "
                          "style in training, so 'any' keeps working (default %(default)s)")
    opt.add_argument("--balance_styles", action="store_true",
                     help="models with a style token: draw training windows with every style equally likely "
                          "(with replacement), not in proportion to the corpus (79%% salsa in open_corpus6)")
    _add_body(p)
    return p


def app_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="app.py", description="Serve the web page: upload or record a song, watch it danced, download the "
        "motion. The generation options set the page's starting values; visitors can change them.")
    server = p.add_argument_group("server")
    server.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (0.0.0.0 serves other machines too; default 127.0.0.1)")
    server.add_argument("--port", type=int, default=7861, help="port to listen on (default 7861)")
    server.add_argument("--keep_requests", type=int, default=8, metavar="N",
                        help="keep the files of the last N requests on disk; older ones are deleted (default 8)")
    server.add_argument("--max_upload_mb", type=float, default=200, metavar="MB",
                        help="largest song file a visitor may upload, in MB (default 200: a 10-minute WAV is ~100 MB)")
    server.add_argument("--max_seconds", type=float, default=300, metavar="SECONDS",
                        help="longest dance a visitor may ask for (default 300); a 'whole song' longer than this is "
                             "refused from its header, before it is decoded")
    _add_generation(p)
    _add_body(p)
    return p


def evaluate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="evaluate.py", description="FID_k/g, Div_k/g, BAS (with chance level), FSR and PFC of generated dances "
        f"against ground truth, on the 22 body joints of the first {MAX_FRAMES} frames (SPEC §8).")
    io = p.add_argument_group("input and output")
    io.add_argument("--pred", required=True, metavar="DIR", help="folder of generated motion files (.npy, .pkl, .npz)")
    io.add_argument("--gt", required=True, metavar="DIR",
                    help="folder of ground-truth motion files, or a FineDance-layout root (motion/, music_npy/)")
    io.add_argument("--music", default=None, metavar="DIR",
                    help="music of the generated dances: NAME.npy (T, 35) features or NAME.<audio> for each "
                         "NAME.* in --pred (default: PRED/music/ as generate_all.py writes it, PRED/music_npy/, "
                         "PRED/music_wav/, and beside a FineDance motion/ folder its music_npy/, music_wav/)")
    io.add_argument("--gt_music", default=None, metavar="DIR",
                    help="music of the ground truth (default: beside it, e.g. a FineDance root's music_npy/)")
    io.add_argument("--out", default=None, metavar="DIR", help="where results go (default: PRED/evaluation_PROTOCOL)")
    ev = p.add_argument_group("protocol")
    ev.add_argument("--protocol", choices=("clean", "reference"), default="clean",
                    help="clean: our fixed conventions; reference: the public scripts' (kinetic frame time 1/60, "
                         "the acceleration precedence bug, whole-song beats) for numbers comparable to papers")
    ev.add_argument("--max_frames", type=int, default=MAX_FRAMES, help="frames evaluated from the start of each dance")
    ev.add_argument("--plot_song", default=None, metavar="NAME",
                    help="generated dance (file stem) for the beat-alignment plot (default: the first with music)")
    _add_body(p)
    return p


def generate_all_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="generate_all.py",
                                description="Generate dances for a test set (FineDance .npy + music features).")
    io = p.add_argument_group("input and output")
    io.add_argument("--data_dir", default="data/test_slices", metavar="DIR",
                    help="test slices from data/code/slice_music_motion.py, a FineDance-layout root (its test "
                         "split, see --split) or a folder of audio files (default: data/test_slices)")
    add_split(io)
    io.add_argument("--motion_save_dir", required=True, metavar="DIR", help="where NAME.npy, music/NAME.npy and "
                    "manifest.json go")
    io.add_argument("--save_motions", action="store_true", help="write the motions (required: the only output)")
    io.add_argument("--samples_per_song", type=int, default=1, help="dances per song (names NAME_k0, NAME_k1, …)")
    _add_generation(p, duration_default="auto",
                    duration_help="seconds of dance from the start of each song, 'full' for whole songs, or 'auto' "
                                  f"(default): {MAX_FRAMES} frames ({MAX_FRAMES / 30:.2f} s), the evaluation length")
    _add_body(p)
    return p


def _add_heldout_run(p: argparse.ArgumentParser, tracks_default: str | None, tracks_help: str):
    """Options of the eval tools that dance a checkpoint to annotated held-out songs."""
    p.add_argument("--checkpoint", default=None, help="default: assets/checkpoints/default.pt")
    p.add_argument("--music_dir", default=None,
                   help="annotated music (default: the open corpus's, dataset.open_corpus.DEFAULT_MUSIC_DIR)")
    p.add_argument("--tracks", default=tracks_default, help=tracks_help)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the numbers here")


def heldout_songs_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eval.heldout_songs",
                                description="Does a model dance to the beat of songs it never heard? Beat "
                                            "alignment on held-out tracks.")
    _add_heldout_run(p, tracks_default=None,
                     tracks_help="comma-separated track ids (default: dataset.open_corpus.HELD_OUT_TRACKS)")
    p.add_argument("--guidance", type=float, default=None,
                   help="guidance weight of the model's dances (default: the checkpoint's)")
    p.add_argument("--baseline", choices=("random_clip",), default=None,
                   help="score a real training clip drawn at random instead of a model's dance")
    p.add_argument("--train_root", default="data/open_corpus", help="corpus the random clips come from")
    return p


def baselines_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eval.baselines",
                                description='Baseline "generated" sets for the results table, in '
                                            "generate_all.py's output layout.")
    p.add_argument("kind", choices=("random_clip", "random_clip_sync", "still"))
    p.add_argument("--test", required=True, help="test slices folder (motion/, music_npy/)")
    p.add_argument("--train_root", default=None, help="FineDance-layout root whose train split is drawn from")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0)
    return p


def foot_lock_report_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eval.foot_lock_report",
                                description="Foot skating before and after foot locking: FSR and PFC of the model's "
                                            "dances and of held-out CMU clips, raw and locked.")
    _add_heldout_run(p, tracks_default="d05,d09,d14", tracks_help="comma-separated track ids ('' for none)")
    p.add_argument("--cmu_dir", default=None, help="CMU mocap (default: dataset.open_corpus.DEFAULT_CMU_DIR)")
    p.add_argument("--clips", default=None,
                   help="CMU clip ids ('' for none; default: dataset.open_corpus.HELD_OUT_CLIPS)")
    return p

