"""Batches: many inputs, a mask rule, resumable outputs, sharding over processes/machines.

``tsam inpaint a.mp4 b.mp4 clips/*.mov --mask-dir masks/ -o out/`` runs every input, one
after the other; one failing input does not stop the others. Outputs are ``out/<stem>.mp4``
(``.mov``/``.mkv`` inputs keep their container); an output that already exists is skipped,
so a stopped batch resumes where it stopped. A summary table lists done / skipped / failed
(with the one-line reason) and the exit code is :data:`tsam_cli.errors.EXIT_PARTIAL` when
anything failed.

Sharding: under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) or with ``--shard i/n``, process
i takes the inputs ``i, i+n, i+2n, ...`` of the sorted input list, and under torchrun uses
GPU ``LOCAL_RANK`` when ``--device`` is auto/cuda. Processes do not talk to each other:
every input has exactly one owner, so no coordination is needed, on one machine or many.
"""

from __future__ import annotations

import glob
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from tsam_cli.data.layouts import VIDEO_SUFFIXES
from tsam_cli.errors import Interrupted, OutputError, TsamError, UsageError
from tsam_cli.media import IMAGE_SUFFIXES, VIDEO_OUT_SUFFIXES, natural_key
from tsam_cli.media.masks import LOSSLESS_IMAGE_SUFFIXES

#: inputs in a container tsam writes keep it; anything else (avi, webm, folders) becomes .mp4
KEEP_SUFFIXES = VIDEO_OUT_SUFFIXES
#: mask files looked for in --mask-dir, lossless images first, then videos
MASK_SUFFIXES = [*sorted(IMAGE_SUFFIXES, key=lambda s: (s not in LOSSLESS_IMAGE_SUFFIXES, s)), *VIDEO_SUFFIXES]


@dataclass
class Job:
    """One input of a batch, with its mask and output path."""

    input: Path
    output: Path
    mask: Path | None
    status: str = "pending"  # done | skipped | failed
    reason: str = ""
    seconds: float = 0.0
    frames: int = 0


def expand_inputs(args: list[str]) -> list[Path]:
    """Files, frame folders and glob patterns -> sorted unique paths (patterns must match)."""
    paths: list[Path] = []
    for a in args:
        if any(c in a for c in "*?[") and not Path(a).exists():
            hits = sorted(glob.glob(a), key=natural_key)
            if not hits:
                raise UsageError(f"no input matches {a!r}: check the pattern")
            paths += [Path(h) for h in hits]
        else:
            paths.append(Path(a))
    seen, unique = set(), []
    for p in paths:
        key = str(p.resolve()) if p.exists() else str(p)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return sorted(unique, key=lambda p: natural_key(str(p)))


def is_batch(args: list[str], mask_dir: str | None) -> bool:
    """Batch mode: several inputs, a glob pattern, or a ``--mask-dir``."""
    return len(args) > 1 or mask_dir is not None or any(any(c in a for c in "*?[") and not Path(a).exists() for a in args)


def find_mask(mask_dir: Path, video: Path, inputs: list[Path] = ()) -> Path | None:
    """The mask of ``video`` in ``mask_dir``, matched by name: a folder ``<stem>/``, or
    ``<stem>.<ext>`` / ``<stem>_mask.<ext>`` / ``<stem>-mask.<ext>`` (image or video).

    A candidate that is one of the ``inputs`` (``--mask-dir`` pointing at the videos'
    own folder) is never taken: a video is not its own mask."""
    stem = video.stem if video.is_file() or video.suffix else video.name
    taken = {_same_key(p) for p in [video, *inputs]}
    for name in (stem, f"{stem}_mask", f"{stem}-mask", f"{stem}_masks"):
        candidates = [mask_dir / name] + [mask_dir / f"{name}{ext}" for ext in MASK_SUFFIXES]
        for c in candidates:
            if (c.is_dir() if c == mask_dir / name else c.is_file()) and _same_key(c) not in taken:
                return c
    return None


def _same_key(path: Path):
    """Identity of a path: device + inode when it exists (links, case variants), else its name."""
    try:
        st = path.stat()
        return (st.st_dev, st.st_ino)
    except OSError:
        return str(path.resolve())


def output_for(video: Path, out_dir: Path) -> Path:
    """``out_dir/<stem>.mp4``; mov/mkv inputs keep their container."""
    if video.is_dir():
        return out_dir / f"{video.name}.mp4"
    suffix = video.suffix.lower() if video.suffix.lower() in KEEP_SUFFIXES else ".mp4"
    return out_dir / f"{video.stem}{suffix}"


def shard_from_env(shard: str | None) -> tuple[int, int]:
    """``--shard i/n`` or torchrun's RANK/WORLD_SIZE -> (index, count); (0, 1) otherwise."""
    if shard:
        try:
            i, n = (int(x) for x in shard.split("/"))
        except ValueError:
            i, n = -1, 0
        if n < 1 or not 0 <= i < n:
            raise UsageError(f"--shard {shard!r} is not i/n with 0 <= i < n: e.g. --shard 0/4")
        return i, n
    if "WORLD_SIZE" in os.environ and "RANK" in os.environ:
        return _shard_from_torchrun(os.environ["RANK"], os.environ["WORLD_SIZE"])
    return 0, 1


def _shard_from_torchrun(rank: str, world: str) -> tuple[int, int]:
    """torchrun's RANK and WORLD_SIZE as (index, count); a value that makes no sense (not a
    number, WORLD_SIZE < 1, RANK outside 0..WORLD_SIZE-1: this process would do nothing and
    say nothing) is a UsageError naming the variable."""
    try:
        n = int(world)
    except ValueError:
        n = 0
    if n < 1:
        raise UsageError(f"WORLD_SIZE={world!r} is not a positive whole number: unset it, or start with torchrun")
    try:
        i = int(rank)
    except ValueError:
        i = -1
    if not 0 <= i < n:
        raise UsageError(f"RANK={rank!r} is not a whole number from 0 to {n - 1} (WORLD_SIZE={n}): "
                         "unset RANK and WORLD_SIZE, or start with torchrun")
    return i, n


def plan(inputs: list[Path], out_dir: Path, mask: Path | None, mask_dir: Path | None, shard: tuple[int, int],
         has_box: bool = False) -> list[Job]:
    """This process's jobs (after sharding), with masks matched. Raises UsageError."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"-o {out_dir} is a file: with several inputs -o must be a folder")
    if not out_dir.exists() and out_dir.suffix.lower() in VIDEO_OUT_SUFFIXES:
        raise UsageError(f"-o {out_dir} names a video file, but a batch (several inputs, a pattern or --mask-dir) "
                         "writes one output per input into a folder: give a folder name")
    if mask is not None and mask_dir is not None:
        raise UsageError("--mask and --mask-dir both given: --mask is one mask for every input, --mask-dir one per "
                         "input; give one of them")
    if mask is None and mask_dir is None and not has_box:
        raise UsageError("no mask given: pass --mask FILE (same for all), --mask-dir DIR (matched by name) or --box x,y,w,h")
    if mask_dir is not None and not mask_dir.is_dir():
        raise UsageError(f"--mask-dir {mask_dir} is not a folder: give the folder holding one mask per input")
    _refuse_collisions(inputs, out_dir)
    _refuse_output_folder(out_dir, inputs, mask_dir)
    index, count = shard
    mine = inputs[index::count]
    jobs = []
    for v in mine:
        m = find_mask(mask_dir, v, inputs) if mask_dir is not None else mask
        jobs.append(Job(v, output_for(v, out_dir), m))
    return jobs


def _refuse_output_folder(out_dir: Path, inputs: list[Path], mask_dir: Path | None) -> None:
    """The batch's output folder may not be inside the mask folder or a frame-folder input, and
    no output may be an input (``-o`` the inputs' own folder): OutputError before any work."""
    from tsam_cli.media.output import refuse_inside

    folders = [("the mask folder", mask_dir)] if mask_dir is not None else []
    refuse_inside(out_dir, folders + [("the input", v) for v in inputs if v.is_dir()], "-o")
    taken = {_same_key(v) for v in inputs}
    for v in inputs:
        if _same_key(output_for(v, out_dir)) in taken:
            raise OutputError(f"-o {out_dir}: the output of {v} would be {output_for(v, out_dir)}, an input of the "
                              "batch: choose another output folder")


def _refuse_collisions(inputs: list[Path], out_dir: Path) -> None:
    """Two inputs that would write the same output (``a.mp4``, ``a.webm``, ``x/a.mp4``):
    refused before any work, over the whole list (every shard sees the same answer)."""
    owners: dict[str, Path] = {}
    for v in inputs:
        key = output_for(v, out_dir).name.lower()  # case-insensitive filesystems collide too
        if key in owners:
            raise UsageError(
                f"{owners[key]} and {v} would both be written to {output_for(v, out_dir)}: "
                "rename one of them or run them in separate batches"
            )
        owners[key] = v


def run_batch(jobs: list[Job], opts, reporter, has_box: bool = False) -> list[Job]:
    """Run every job; never raises for a job's own failure (recorded in the job instead).
    The model is loaded once, before the first job that runs, and used for all of them (a
    model that cannot be loaded stops the batch: no job could run)."""
    from tsam_cli.api import inpaint, outpaint
    from tsam_cli.options import OutpaintOptions

    run = outpaint if isinstance(opts, OutpaintOptions) else inpaint
    todo = [job for job in jobs if _runnable(job, opts, has_box, reporter)]
    model = _load_once(opts, reporter) if todo else None
    for job in todo:
        job.output.parent.mkdir(parents=True, exist_ok=True)
        reporter.info(f"{job.input} -> {job.output}")
        job_opts = replace(opts, mask=str(job.mask) if job.mask else None,
                           protected=(*opts.protected, *(("an input of the batch", j.input) for j in jobs)))
        try:
            options = asdict(job_opts)
            del options["model"]  # loaded once above
            rep = run(job.input, mask=options.pop("mask"), output=job.output, model=model, reporter=reporter,
                      **options)
        except Interrupted:
            raise  # a signal stops the batch; finished outputs stay
        except TsamError as exc:
            job.status, job.reason = "failed", str(exc)
            reporter.warn(f"{job.input}: {exc}")
            continue
        job.status, job.seconds, job.frames = "done", rep.seconds, rep.n_frames
    return jobs


def _runnable(job: Job, opts, has_box: bool, reporter) -> bool:
    """False (and the job marked skipped or failed) when its output exists or it has no mask."""
    if job.output.exists() and not opts.overwrite:
        job.status, job.reason = "skipped", "output exists"
        return False
    if job.mask is None and not has_box:
        job.status, job.reason = "failed", (f"no mask for {job.input.name} in --mask-dir (expected "
                                            f"{job.input.stem}/ or {job.input.stem}.png ...)")
        reporter.warn(f"{job.input}: {job.reason}")
        return False
    return True


def _load_once(opts, reporter):
    """The batch's model (:func:`tsam_cli.api.load_model`), or None for ``--preview``."""
    from tsam_cli.api import load_model

    if opts.preview:
        return None
    return load_model(opts.model, opts.device, reporter, model_window=opts.model_window,
                      model_stride=opts.model_stride, precision=opts.precision, use_flow=opts.use_flow)


def summary_table(jobs: list[Job], shard: tuple[int, int]):
    """A rich Table of the batch results."""
    from rich.table import Table
    from rich.text import Text

    title = "batch summary" + (f" (shard {shard[0]}/{shard[1]})" if shard[1] > 1 else "")
    t = Table(title=title)
    for col in ("input", "status", "frames", "s/frame", "output / reason"):
        t.add_column(col)
    colour = {"done": "green", "skipped": "cyan", "failed": "red"}
    for j in jobs:
        spf = f"{j.seconds / j.frames:.3f}" if j.frames else ""
        t.add_row(Text(str(j.input)), Text(j.status, style=colour.get(j.status, "white")), str(j.frames or ""), spf,
                  Text(str(j.output) if j.status != "failed" else j.reason))  # Text: paths are not markup
    n = {s: sum(j.status == s for j in jobs) for s in ("done", "skipped", "failed")}
    t.caption = f"{n['done']} done, {n['skipped']} skipped, {n['failed']} failed"
    return t

