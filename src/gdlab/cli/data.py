"""``gdlab make-data``: a synthetic classification set of any size, written as ``.npy`` in
chunks (never whole in memory), for training from disk and the scale-out benchmark."""

from __future__ import annotations

from .._files import write_config
from .common import CommandError, prepare_out_dir


def make_classification_npy(out, rows: int, features: int, *, classes: int = 2, seed: int = 0,
                            chunk_rows: int = 100_000, noise: float = 0.5,
                            progress: bool = True) -> tuple:
    """Write ``out/X.npy`` (rows × features, float32, standard normal) and ``out/Y.npy``
    (int64 class indices from a random linear teacher plus Gaussian noise on its logits),
    ``chunk_rows`` rows at a time. Returns the two paths."""
    from pathlib import Path

    import numpy as np
    from tqdm.auto import tqdm

    from .._checks import check_positive_int

    rows = check_positive_int("rows", rows)
    features = check_positive_int("features", features)
    chunk_rows = check_positive_int("chunk_rows", chunk_rows)
    classes = check_positive_int("classes", classes)
    if classes < 2:
        raise ValueError(f"classes must be at least 2, got {classes}")
    out = Path(out)
    rng = np.random.default_rng(seed)
    teacher = rng.standard_normal((features, 1 if classes == 2 else classes)) / np.sqrt(features)
    X = np.lib.format.open_memmap(out / "X.npy", mode="w+", dtype=np.float32,
                                  shape=(rows, features))
    Y = np.lib.format.open_memmap(out / "Y.npy", mode="w+", dtype=np.int64, shape=(rows,))
    with tqdm(total=rows, unit="row", unit_scale=True, disable=not progress or None,
              leave=False) as bar:
        for start in range(0, rows, chunk_rows):
            end = min(start + chunk_rows, rows)
            X_chunk = rng.standard_normal((end - start, features), dtype=np.float32)
            logits = X_chunk @ teacher.astype(np.float32)
            logits += noise * rng.standard_normal(logits.shape, dtype=np.float32)
            X[start:end] = X_chunk
            Y[start:end] = (logits[:, 0] > 0) if classes == 2 else logits.argmax(axis=1)
            X.flush()  # written pages can leave memory
            bar.update(end - start)
    X.flush()
    Y.flush()
    del X, Y
    return out / "X.npy", out / "Y.npy"


def cmd_make_data(args) -> None:
    out = prepare_out_dir(args.out, args.force)
    size = args.rows * args.features * 4 + args.rows * 8
    print(f"writing {args.rows} × {args.features} float32 rows and their labels "
          f"({size / 2**30:.2f} GiB) to {out}")
    try:
        x_path, y_path = make_classification_npy(out, args.rows, args.features,
                                                 classes=args.classes, seed=args.seed,
                                                 chunk_rows=args.chunk_rows,
                                                 progress=not args.quiet)
    except OSError as e:
        raise CommandError(f"could not write {out}: {e}") from None
    write_config(out, "make-data", {"rows": args.rows, "features": args.features,
                                    "classes": args.classes, "seed": args.seed,
                                    "X": x_path.name, "Y": y_path.name})
    print(f"wrote {x_path} and {y_path}; train on them with gdlab.data.memmap.open_npy "
          f"(docs/scaling.md)")


def register(commands) -> None:
    """Add ``make-data`` to ``commands``."""
    p = commands.add_parser("make-data", help="write a synthetic classification set as .npy",
                            description="Write a synthetic classification set of --rows × "
                            "--features (X.npy float32, Y.npy int64 class indices) to --out, "
                            "in chunks, for training from disk (gdlab.data.memmap).")
    p.add_argument("--rows", type=int, default=1_000_000, help="examples (default: 1000000)")
    p.add_argument("--features", type=int, default=100, help="features (default: 100)")
    p.add_argument("--classes", type=int, default=2, help="classes (default: 2)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--chunk-rows", type=int, default=100_000, help="rows written at a time "
                   "(default: 100000)")
    p.add_argument("--out", required=True, help="folder to write")
    p.add_argument("--force", action="store_true", help="write into a folder that is not a "
                   "gdlab output")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_make_data)
