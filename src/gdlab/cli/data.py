"""``gdlab make-data``: a synthetic classification set of any size, written as ``.npy`` in
chunks (never whole in memory) by :func:`gdlab.data.synthetic.make_classification_npy`, for
training from disk and the scale-out benchmark."""

from __future__ import annotations

from .._files import write_config
from .common import take_out_dir


def _size(n: int) -> str:
    """Bytes as a person reads them: 390 MB, 1.2 GB (powers of 1000, as disks are sold)."""
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1000


def cmd_make_data(args) -> None:
    from ..data.synthetic import check_settings, make_classification_npy, npy_bytes

    check_settings(args.rows, args.features, args.classes, args.chunk_rows, args.seed)
    with take_out_dir(args.out, args.force, "gdlab make-data") as out:
        print(f"writing {args.rows} × {args.features} float32 features and their int64 "
              f"labels, {_size(npy_bytes(args.rows, args.features))}, to {out}", flush=True)
        x_path, y_path = make_classification_npy(out, args.rows, args.features,
                                                 classes=args.classes, seed=args.seed,
                                                 chunk_rows=args.chunk_rows,
                                                 progress=not args.quiet)
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
    p.add_argument("--rows", type=int, default=1_000_000, help="examples (default: 1000000; "
                   "with the default --features that is 408 MB on disk)")
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
