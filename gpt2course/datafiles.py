"""The files shipped in ``data/``: where they are and their SHA-256, checked before any use.

In the repository they sit in ``data/``; an installed package (a wheel) holds a copy in
``gpt2course/_data`` (setup.py), which ``data_dir`` finds first.

The lowest layer of the package: ``data`` (the texts) and ``tokenizer`` (GPT-2's encoding) both
read their files through ``verified_path``, and this module imports nothing of the package.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# SHA-256 of every shipped file (the same values as data/SOURCES.md).
CHECKSUMS = {
    "tinyshakespeare.txt": "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    "gpt2/encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    "gpt2/vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
    "trained/shakespeare_doubled_2x128.safetensors":
        "aa044611512ad09e670579b7b71ec62790e9a22bff566d59086c7074e099dafd",
    "trained/shakespeare_doubled_2x128.heads.csv":
        "46cffe3af75d1fcb649488959fa14b82599874c88de0b8d275ade73c731a40e1",
}

DATA_ENV = "GPT2COURSE_DATA"


class DataFileError(RuntimeError):
    """A shipped data file is missing or does not match its checksum."""


# An installed package carries its own copy of the repository's data/ folder here (setup.py
# copies it at build time); a checkout or an editable install has none and reads data/ itself.
PACKAGED = Path(__file__).resolve().parent / "_data"
CHECKOUT = Path(__file__).resolve().parent.parent / "data"


def data_dir() -> Path:
    """The folder holding the course data.

    ``GPT2COURSE_DATA`` wins when set; then the copy inside an installed package
    (``gpt2course/_data``); otherwise the ``data/`` folder of the repository this package lives in.
    """
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    if PACKAGED.is_dir():
        return PACKAGED
    return CHECKOUT


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verified_path(name: str, root: Path | None = None) -> Path:
    """The path of shipped file ``name`` (e.g. "gpt2/vocab.bpe"), after checking its hash.

    Raises DataFileError naming the file when it is missing or corrupt.
    """
    path = Path(root or data_dir()) / name
    if name not in CHECKSUMS:
        raise DataFileError(f"{name}: not a course data file (known: {', '.join(CHECKSUMS)})")
    if not path.is_file():
        raise DataFileError(
            f"{path}: missing. The course data ships in the repository's data/ folder and inside "
            f"the installed package; clone the whole repository or install the package from it "
            f"(or set {DATA_ENV} to the folder holding the data).")
    actual = sha256(path)
    if actual != CHECKSUMS[name]:
        raise DataFileError(
            f"{path}: corrupt (sha256 {actual[:12]}..., expected {CHECKSUMS[name][:12]}...). "
            "Restore it from the repository (git checkout -- data/).")
    return path
