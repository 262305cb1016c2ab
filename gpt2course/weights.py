"""GPT-2 weights as safetensors files: read them, infer the model's config, download, load.

The Hugging Face hub stores OpenAI's GPT-2 as ``model.safetensors`` with keys like
``wte.weight`` and ``h.0.attn.c_attn.weight`` (no ``transformer.`` prefix), while a
``GPT2LMHeadModel`` state dict (and the course's own fixture) spells them
``transformer.wte.weight``. ``read_hf_state_dict`` accepts both and returns the prefixed form
that ``reference.load_hf_weights`` expects.

Nothing here downloads unless ``download_gpt2`` is called; the tests never call it with a
reachable address.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

PREFIX = "transformer."

# OpenAI's GPT-2 small (124M parameters) on the Hugging Face hub, 548 MB.
GPT2_124M_URL = "https://huggingface.co/openai-community/gpt2/resolve/main/model.safetensors"
WEIGHTS_FILE = "model.safetensors"
CACHE_ENV = "GPT2COURSE_CACHE"

_LAYER = re.compile(r"^transformer\.h\.(\d+)\.")


class WeightsFileError(ValueError):
    """A weights file that cannot be used: missing, not safetensors, or not GPT-2 weights."""


class DownloadError(OSError):
    """Downloading the weights failed."""


class OfflineError(DownloadError):
    """The weights could not be downloaded because there is no network (or the host is unreachable)."""


# --------------------------------------------------------------------------------------------
# Reading


def _check_file(path: Path) -> None:
    if not path.exists():
        raise WeightsFileError(f"{path}: no such file")
    if not path.is_file():
        raise WeightsFileError(f"{path}: not a file")


def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata stored in the header of safetensors file ``path`` ({} when none)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    _check_file(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError) as exc:
        raise WeightsFileError(f"{path}: not a readable safetensors file ({exc})") from None


def with_prefix(state_dict: dict) -> dict:
    """``state_dict`` with ``transformer.`` put in front of every key that lacks it
    (``lm_head.*`` keys are left alone). Order is kept; a key present in both forms is an error."""
    out = {}
    for key, value in state_dict.items():
        name = key if key.startswith(PREFIX) or key.startswith("lm_head.") else PREFIX + key
        if name in out:
            raise WeightsFileError(f"the weights hold both {name} and {key}: which one is meant?")
        out[name] = value
    return out


def read_hf_state_dict(path: str | Path) -> dict:
    """Read a safetensors file of GPT-2 weights into a GPT2LMHeadModel-style state dict.

    Works for the hub's ``model.safetensors`` (keys without ``transformer.``) and for files
    saved from a ``GPT2LMHeadModel`` (keys with it): the result always has the prefix. Raises
    ``WeightsFileError`` (a ``ValueError``) naming the file when it is missing or unreadable.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    _check_file(path)
    try:
        state_dict = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise WeightsFileError(f"{path}: not a readable safetensors file ({exc})") from None
    return with_prefix(state_dict)


# --------------------------------------------------------------------------------------------
# The config


def _metadata_config(metadata: dict | None) -> dict:
    """The model config stored as JSON under "config" in safetensors metadata ({} when none)."""
    if not metadata or "config" not in metadata:
        return {}
    try:
        config = json.loads(metadata["config"])
    except (TypeError, json.JSONDecodeError):
        raise ValueError("the weights' metadata has a \"config\" entry that is not JSON") from None
    if not isinstance(config, dict):
        raise ValueError("the weights' metadata has a \"config\" entry that is not a JSON object")
    # Hugging Face's GPT2Config names the context length n_positions (older files: n_ctx).
    if "block_size" not in config:
        for alias in ("n_positions", "n_ctx"):
            if alias in config:
                config["block_size"] = config[alias]
                break
    return config


def config_from_state_dict(state_dict: dict, n_head: int | None = None, metadata: dict | None = None):
    """The ``GPTConfig`` that GPT-2 weights ``state_dict`` were made for.

    vocab_size and n_embd come from ``wte``, block_size from ``wpe``, n_layer from the
    ``h.N`` keys. The number of heads cannot be read from the tensors' shapes: it is ``n_head``
    when given, else the "config" entry of the safetensors ``metadata`` when the caller passes
    it (see ``read_metadata``), else ``n_embd // 64`` (every OpenAI GPT-2 size uses heads of
    64). Keys with or without the ``transformer.`` prefix are accepted. Raises ``ValueError``
    saying what is wrong when ``state_dict`` is not GPT-2 weights.
    """
    from .reference.config import GPTConfig

    sd = with_prefix(state_dict)

    def tensor(name: str, dims: int):
        if name not in sd:
            sample = ", ".join(list(state_dict)[:4]) or "none"
            raise ValueError(f"not GPT-2 weights: there is no {name} (the first keys are: {sample})")
        value = sd[name]
        if not hasattr(value, "shape") or len(value.shape) != dims:
            raise ValueError(f"not GPT-2 weights: {name} should be a {dims}-D tensor, "
                             f"got shape {tuple(getattr(value, 'shape', ()))}")
        return value

    vocab_size, n_embd = tensor("transformer.wte.weight", 2).shape
    block_size, wpe_width = tensor("transformer.wpe.weight", 2).shape
    if wpe_width != n_embd:
        raise ValueError(f"not GPT-2 weights: wte is {n_embd} wide but wpe {wpe_width}")
    layers = {int(m.group(1)) for key in sd if (m := _LAYER.match(key))}
    if not layers:
        raise ValueError("not GPT-2 weights: there are no blocks (transformer.h.0...)")
    n_layer = max(layers) + 1
    if len(layers) != n_layer:
        missing = sorted(set(range(n_layer)) - layers)
        raise ValueError(f"not GPT-2 weights: blocks {missing} are missing (found h.0 to h.{n_layer - 1})")
    c_attn = tensor("transformer.h.0.attn.c_attn.weight", 2).shape
    if tuple(c_attn) == (3 * n_embd, n_embd):
        raise ValueError("these weights are laid out as nn.Linear (out, in), not as Hugging Face's "
                         "Conv1D (in, out): they look like the course model's own state dict, which "
                         "loads with model.load_state_dict, not as GPT-2 weights")
    if tuple(c_attn) != (n_embd, 3 * n_embd):
        raise ValueError(f"not GPT-2 weights: h.0.attn.c_attn.weight has shape {tuple(c_attn)}, "
                         f"expected ({n_embd}, {3 * n_embd})")

    stored = _metadata_config(metadata)
    found = dict(vocab_size=int(vocab_size), block_size=int(block_size), n_layer=n_layer, n_embd=int(n_embd))
    for name, value in found.items():
        if name in stored and stored[name] != value:
            raise ValueError(f"the weights' metadata says {name}={stored[name]} but the tensors "
                             f"have {name}={value}")
    if n_head is None:
        n_head = stored.get("n_head")
    if n_head is None:
        if n_embd % 64:
            raise ValueError(f"cannot tell the number of heads: n_embd={n_embd} is not a multiple of 64 "
                             "(the head size of every OpenAI GPT-2) and the weights do not say it: "
                             "pass n_head (--n-head on the command line)")
        n_head = n_embd // 64
    if not isinstance(n_head, int) or isinstance(n_head, bool) or n_head < 1:
        raise ValueError(f"n_head must be a positive integer, got {n_head!r}")
    if n_embd % n_head:
        raise ValueError(f"n_head={n_head} does not divide n_embd={n_embd}: pass the number of heads "
                         "the weights were trained with")
    return GPTConfig(n_head=n_head, dropout=0.0, **found)


# --------------------------------------------------------------------------------------------
# Downloading


def default_cache_dir() -> Path:
    """Where ``download_gpt2`` keeps the weights: ``$GPT2COURSE_CACHE`` when set, else
    ``gpt2course/gpt2-124M`` in the user's cache folder (``~/.cache`` or ``$XDG_CACHE_HOME``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "gpt2course" / "gpt2-124M"


def _offline_message(url: str, reason: object) -> str:
    return (f"cannot download GPT-2's weights: {url} is unreachable ({reason}); this machine looks "
            f"offline. Download {WEIGHTS_FILE} where there is a network (the address above) and "
            "pass the file instead: load_gpt2(PATH), or `python -m gpt2course generate --weights PATH`.")


def finish_atomic_write(tmp: Path, target: Path) -> None:
    """Give ``tmp`` (made by mkstemp, so private) the usual permissions and rename it to ``target``."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, target)


def _check_header(path: Path) -> None:
    """Refuse a downloaded file that is not safetensors GPT-2 weights (an error page, say)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            keys = set(f.keys())
    except (SafetensorError, OSError) as exc:
        raise DownloadError(f"the downloaded file is not a safetensors file ({exc})") from None
    if not {"wte.weight", "transformer.wte.weight"} & keys:
        raise DownloadError("the downloaded file is safetensors but holds no GPT-2 weights (no wte.weight)")


def download_gpt2(dest_dir: str | Path | None = None, progress: bool = True, url: str = GPT2_124M_URL,
                  timeout: float = 30.0) -> Path:
    """Download OpenAI's GPT-2 124M weights (``model.safetensors``) and return the file's path.

    The file goes to ``dest_dir`` (default: ``default_cache_dir()``) and is not downloaded
    again when it is already there. It is written to a temporary file in the same folder and
    renamed when complete and checked, so an interrupted download never leaves a half file
    under the final name. Without a network this raises ``OfflineError`` (an ``OSError``)
    saying how to pass a file instead; other failures raise ``DownloadError``.
    """
    from tqdm.auto import tqdm

    dest_dir = Path(dest_dir).expanduser() if dest_dir is not None else default_cache_dir()
    target = dest_dir / WEIGHTS_FILE
    if target.is_file() and target.stat().st_size > 0:
        return target
    dest_dir.mkdir(parents=True, exist_ok=True)

    request = urllib.request.Request(url, headers={"User-Agent": "gpt2course"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"cannot download GPT-2's weights from {url}: HTTP {exc.code} {exc.reason}") from None
    except OSError as exc:  # URLError is one: no route, no name resolution, refused, timed out
        raise OfflineError(_offline_message(url, getattr(exc, "reason", exc))) from None
    except http.client.HTTPException as exc:
        raise DownloadError(f"cannot download GPT-2's weights from {url}: a broken answer ({exc!r})") from None

    fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{WEIGHTS_FILE}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with response, os.fdopen(fd, "wb") as out:
            length = response.headers.get("Content-Length") if response.headers else None
            total = int(length) if length and length.isdigit() else None
            received = 0
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                      desc=f"GPT-2 124M {WEIGHTS_FILE}", disable=not progress) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        if total is not None and received != total:
            raise DownloadError(f"the download of {url} stopped after {received:,} of {total:,} bytes; "
                                "run it again")
        if received == 0:
            raise DownloadError(f"{url} sent an empty file")
        _check_header(tmp)
        finish_atomic_write(tmp, target)
    except (OSError, http.client.HTTPException) as exc:  # URLError and DownloadError are OSErrors
        tmp.unlink(missing_ok=True)
        if isinstance(exc, DownloadError):
            raise
        raise DownloadError(f"the download of {url} failed: {getattr(exc, 'reason', exc) or type(exc).__name__}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


# --------------------------------------------------------------------------------------------
# Loading


def load_gpt2(path: str | Path, device: str = "cpu", n_head: int | None = None):
    """The course's reference ``GPT`` with the weights of safetensors file ``path``, in eval
    mode on ``device``, and its ``GPTConfig``: ``(model, config)``.

    The config is inferred from the tensors (see ``config_from_state_dict``; ``n_head``
    overrides the number of heads). Raises ``WeightsFileError`` (a ``ValueError``) for a file
    that is missing, unreadable or not GPT-2 weights.
    """
    from .reference.gpt import GPT, load_hf_weights

    state_dict = read_hf_state_dict(path)
    try:
        config = config_from_state_dict(state_dict, n_head=n_head, metadata=read_metadata(path))
    except WeightsFileError:
        raise
    except ValueError as exc:
        raise WeightsFileError(f"{path}: {exc}") from None
    model = GPT(config)
    try:
        load_hf_weights(model, state_dict)
    except KeyError as exc:
        raise WeightsFileError(f"{path}: {exc.args[0] if exc.args else exc}") from None
    except ValueError as exc:
        raise WeightsFileError(f"{path}: {exc}") from None
    return model.to(device).eval(), config
