"""Plain-data encoding of check inputs and learner outputs (JSON, never pickle).

The trusted grader writes each case's inputs with ``encode``; code inside the sandbox decodes
them, calls the learner's function and encodes what comes back; the grader decodes that and
verifies it. Only these types cross: None, bool, int, float (NaN and inf included), str, bytes,
list, tuple, dict (any encodable keys), NumPy arrays and torch tensors (as plain tensors, whatever
their subclass), and ``Seeded`` generators. Anything else is refused.

This file is also pasted, as source, into the harness cell that runs in the sandbox, so it
imports nothing from the course.
"""

import base64
import json
import math
import sys

import numpy as np

MAX_DEPTH = 32


class Seeded:
    """A torch.Generator seeded with ``seed``, made fresh wherever the case is decoded."""

    def __init__(self, seed):
        self.seed = int(seed)

    def __eq__(self, other):
        return isinstance(other, Seeded) and other.seed == self.seed

    def __repr__(self):
        return f"Seeded({self.seed})"


class WireError(ValueError):
    """A value that cannot cross between the sandbox and the grader."""


def _array(arr):
    arr = np.ascontiguousarray(arr).reshape(np.shape(arr))  # ascontiguousarray makes 0-d 1-d
    if arr.dtype == object:
        raise WireError("object arrays cannot cross")
    return {"dtype": arr.dtype.str, "shape": list(arr.shape),
            "data": base64.b64encode(arr.tobytes()).decode("ascii")}


_HALF = {"torch.bfloat16", "torch.float16"}


def _tensor(t):
    import torch
    T = torch.Tensor
    # Neither a subclass's __torch_function__ nor its Python methods decide what its data is.
    with torch._C.DisableTorchFunctionSubclass():
        plain = T.cpu(T.detach(t))
        dtype = str(plain.dtype)
        if dtype in _HALF:
            plain = T.float(plain)
        body = _array(np.array(T.numpy(T.resolve_neg(T.resolve_conj(plain))), copy=True))
    if dtype in _HALF:
        body["torch_dtype"] = dtype
    return body


def _enc(value, depth):
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return {"__int__": str(int(value))} if abs(value) >= 2**53 else int(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return {"__float__": repr(float(value))}
        return float(value)
    if isinstance(value, np.generic):
        return _enc(value.item(), depth + 1)
    if isinstance(value, (bytes, bytearray)):
        return {"__bytes__": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Seeded):
        return {"__seeded__": value.seed}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": _array(value)}
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return {"__tensor__": _tensor(value)}
    if torch is not None and isinstance(value, torch.Generator):
        return {"__generator__": None}  # a generator passed in: nothing to compare afterwards
    if isinstance(value, (list, tuple)):
        items = [_enc(v, depth + 1) for v in value]
        return items if isinstance(value, list) else {"__tuple__": items}
    if isinstance(value, dict):
        return {"__dict__": [[_enc(k, depth + 1), _enc(v, depth + 1)] for k, v in value.items()]}
    raise WireError(f"a {type(value).__name__} cannot be checked (expected tensors, numbers, "
                    "strings, lists, tuples or dicts)")


def to_plain(value):
    """``value`` as a tree of JSON-compatible Python objects."""
    return _enc(value, 0)


def from_plain(tree, generators=False):
    """The value of a tree made by ``to_plain``; ``generators=True`` turns Seeded markers into
    torch.Generators."""
    return _dec(tree, 0, generators)


def encode(value):
    """``value`` as JSON text."""
    return json.dumps(_enc(value, 0), allow_nan=False)


def _dec(obj, depth, tensors):
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, list):
        return [_dec(v, depth + 1, tensors) for v in obj]
    if not isinstance(obj, dict) or len(obj) != 1:
        raise WireError("malformed value")
    (tag, body), = obj.items()
    if tag == "__int__":
        return int(body)
    if tag == "__float__":
        return float(body)
    if tag == "__bytes__":
        return base64.b64decode(body)
    if tag == "__seeded__":
        if tensors:
            import torch
            return torch.Generator().manual_seed(int(body))
        return Seeded(body)
    if tag == "__generator__":
        return None
    if tag in ("__ndarray__", "__tensor__"):
        dtype = np.dtype(body["dtype"])
        if dtype == object:
            raise WireError("object arrays cannot cross")
        shape = tuple(int(n) for n in body["shape"])
        arr = np.frombuffer(base64.b64decode(body["data"]), dtype=dtype).reshape(shape).copy()
        if tag == "__tensor__":
            import torch
            t = torch.from_numpy(arr)
            if body.get("torch_dtype") in _HALF:
                t = t.to(getattr(torch, body["torch_dtype"].split(".")[1]))
            return t
        return arr
    if tag == "__tuple__":
        return tuple(_dec(v, depth + 1, tensors) for v in body)
    if tag == "__dict__":
        return {_dec(k, depth + 1, tensors): _dec(v, depth + 1, tensors) for k, v in body}
    raise WireError(f"unknown tag {tag!r}")


def decode(text, generators=False):
    """The value of JSON ``text``; ``generators=True`` turns Seeded markers into torch.Generators."""
    return _dec(json.loads(text), 0, generators)
