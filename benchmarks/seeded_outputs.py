"""Hashes of seeded outputs: run ``blur`` on some files and print the SHA-256 of each output and
of its regions file, so that two versions of the code can be compared byte for byte.

The default fills draw fresh noise on every frame from generators made without a seed. Here each
generator blur makes without a seed is seeded by its position in the run (0, 1, 2, ...), so the
same code gives the same bytes twice, and a change meant to leave behaviour alone (a refactor)
must give the bytes the previous version gave. Each file runs in its own process, as ``blur``
would, so the numbering starts afresh for each.

    python benchmarks/seeded_outputs.py samples/messi5.jpg samples/street.mp4 --out /tmp/seeded

Run it from two checkouts (``PYTHONPATH`` set to each) with the same ``--out`` naming and
compare the printed lines.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from pathlib import Path

_CHILD = """
import itertools, sys
import numpy as np
_make, _seeds = np.random.default_rng, itertools.count()
np.random.default_rng = lambda seed=None: _make(next(_seeds) if seed is None else seed)
from blur.cli import main
main(sys.argv[1:])
"""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="folder for the outputs")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:cut])  # after "--": options for blur (-- --style pixelate)
    extra = argv[cut + 1 :]
    args.out.mkdir(parents=True, exist_ok=True)
    status = 0
    for src in args.inputs:
        dst = args.out / f"{src.stem}.blurred{src.suffix}"
        regions = args.out / f"{src.stem}.regions.json"
        run = subprocess.run(
            [
                sys.executable,
                "-c",
                _CHILD,
                str(src),
                "-o",
                str(dst),
                "--regions",
                str(regions),
                "--overwrite",
                "-q",
                *extra,
            ]
        )
        if run.returncode:
            print(f"{src}: blur exited {run.returncode}")
            status = 1
            continue
        print(f"{src.name}  output {_sha256(dst)}  regions {_sha256(regions)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
