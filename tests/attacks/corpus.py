"""The attack and fault corpus. Sources are answer cells, written as a learner could."""

WRONG_SOFTMAX = "def softmax(x, dim=-1):\n    return x\n"

ATTACKS = {
    # nbgrader skips cells tagged skip-execution: tag every test cell, answer wrongly.
    "skip_execution_tags": dict(
        notebook="00_welcome.ipynb", answers={"softmax": WRONG_SOFTMAX},
        edit="tag_tests:skip-execution", targets=["softmax"], report="tags added"),
    # Blank every later cell (the tests) through IPython's input transformers.
    "input_transformer": dict(
        notebook="00_welcome.ipynb",
        answers={"softmax": "get_ipython().input_transformers_cleanup.append(lambda lines: [])\n"
                            + WRONG_SOFTMAX},
        targets=["softmax"], report="flagged softmax"),
    # Make every comparison succeed.
    "patch_allclose": dict(
        notebook="00_welcome.ipynb",
        answers={"softmax": "import torch, numpy as np\n"
                            "torch.allclose = lambda *a, **k: True\n"
                            "torch.equal = lambda *a, **k: True\n"
                            "np.allclose = lambda *a, **k: True\n"
                            "np.isclose = lambda a, b, **k: np.ones(np.shape(a), bool)\n"
                            "torch.testing.assert_close = lambda *a, **k: None\n" + WRONG_SOFTMAX},
        targets=["softmax"], report="modifies a library"),
    # A tensor whose every torch operation answers True.
    "lying_tensor_subclass": dict(
        notebook="00_welcome.ipynb",
        answers={"softmax": "import torch\n"
                            "class Liar(torch.Tensor):\n"
                            "    @classmethod\n"
                            "    def __torch_function__(cls, func, types, args=(), kwargs=None):\n"
                            "        return True\n"
                            "    def numpy(self):\n"
                            "        return self\n"
                            "def softmax(x, dim=-1):\n"
                            "    return torch.zeros_like(x).as_subclass(Liar)\n"},
        targets=["softmax"], report="overrides torch dispatch"),
    # Replace the test helper itself.
    "rebind_check": dict(
        notebook="00_welcome.ipynb",
        answers={"softmax": "def check(*args, **kwargs):\n    return 0\n" + WRONG_SOFTMAX},
        targets=["softmax"], report="test helper"),
    # Let the course's reference code answer.
    "import_reference": dict(
        notebook="00_welcome.ipynb",
        answers={"softmax": "from gpt2course.reference import softmax\n"},
        targets=["softmax"], report="imports the course package"),
    "import_reference_dynamically": dict(
        notebook="00_welcome.ipynb",
        answers={"softmax": "softmax = __import__('gpt2' + 'course.refer' + 'ence', fromlist=['x']).softmax\n"},
        targets=["softmax"], report="flagged softmax"),
    "import_check_oracle": dict(
        notebook="01_tokens_and_data.ipynb",
        answers={"merge": "from gpt2course.checks.bpe import merge_oracle as merge\n"},
        targets=["merge"], report="imports the course package"),
    # Read the instructor's source notebook (hidden tests, solutions).
    "read_solutions": dict(
        notebook="00_welcome.ipynb",
        answers={"softmax": "import json, glob\n"
                            "SRC = [open(p).read() for p in glob.glob('/**/solutions/00_welcome.ipynb', recursive=True)]\n"
                            + WRONG_SOFTMAX},
        targets=["softmax"], report="flagged softmax"),
    "read_solutions_with_numpy": dict(
        notebook="00_welcome.ipynb",
        answers={"softmax": "import numpy as np\n"
                            "ROOT = '@REPO@'\n"
                            "SRC = np.fromfile(ROOT + '/sol' + 'utions/00_welcome.ipynb', dtype=np.uint8)\n"
                            + WRONG_SOFTMAX},
        targets=["softmax"], report="reads files"),
    # Run the reference answer from another copy of the course on the machine (a second clone,
    # an older download, another course's folder): the test plants one in /var/tmp.
    "reference_from_a_second_clone": dict(
        notebook="00_welcome.ipynb", setup="second_clone",
        answers={"softmax": "import glob\n"
                            "for _p in glob.glob('@CLONE@/**/reference/softmax.py', recursive=True):\n"
                            "    exec(open(_p).read())\n"
                            "    break\n"
                            "else:\n"
                            "    def softmax(x, dim=-1):\n"
                            "        return x\n"},
        targets=["softmax"], report="flagged softmax"),
    # Rewrite the harness's records on their way out (the learner's code runs in the same
    # process as the harness): report no inputs after the call, so an in-place change of the
    # input would have nothing to be compared with ...
    "forged_report_without_inputs_after": dict(
        notebook="00_welcome.ipynb",
        answers={"softmax": "import json\n"
                            "_dumps = json.dumps\n"
                            "def _forge(obj, **kw):\n"
                            "    if isinstance(obj, dict) and 'after' in obj:\n"
                            "        obj = dict(obj, after=[])\n"
                            "    return _dumps(obj, **kw)\n"
                            "json.dumps = _forge\n"
                            "def softmax(x, dim=-1):\n"
                            "    x -= x.amax(dim=dim, keepdim=True)\n"
                            "    e = x.exp()\n"
                            "    return e / e.sum(dim=dim, keepdim=True)\n"},
        targets=["softmax"], report="flagged softmax"),
    # ... or a module's report with no outputs and empty gradients, so a wrong module would
    # have nothing to be compared ...
    "forged_report_without_outputs_or_gradients": dict(
        notebook="04_multi_head_attention.ipynb",
        answers={"CausalSelfAttention": "import json\n"
                 "from torch import nn\n"
                 "_dumps = json.dumps\n"
                 "def _forge(obj, **kw):\n"
                 "    ok = obj.get('ok') if isinstance(obj, dict) else None\n"
                 "    for pair in (ok or {}).get('__dict__', []) if isinstance(ok, dict) else []:\n"
                 "        if pair[0] == 'outputs':\n"
                 "            pair[1] = []\n"
                 "        if pair[0] == 'grads' and isinstance(pair[1], list):\n"
                 "            pair[1] = [{'__dict__': [['inputs', []], ['parameters', {'__dict__': []}]]}\n"
                 "                       for _ in pair[1]]\n"
                 "    return _dumps(obj, **kw)\n"
                 "json.dumps = _forge\n"
                 "class CausalSelfAttention(nn.Module):\n"
                 "    def __init__(self, n_embd, n_head):\n"
                 "        super().__init__()\n"
                 "        if n_embd % n_head:\n"
                 "            raise ValueError('n_embd must be divisible by n_head')\n"
                 "        self.n_head = n_head\n"
                 "        self.c_attn = nn.Linear(n_embd, 3 * n_embd)\n"
                 "        self.c_proj = nn.Linear(n_embd, n_embd)\n"
                 "    def forward(self, x):\n"
                 "        return self.c_proj(x)\n"},
        targets=["CausalSelfAttention"], report="flagged CausalSelfAttention"),
    # Patch builtins so that checks see what they want.
    "patch_builtins": dict(
        notebook="00_welcome.ipynb",
        answers={"softmax": "import builtins\nbuiltins.isinstance = lambda *a: True\n"
                            "builtins.abs = lambda x: 0\n" + WRONG_SOFTMAX},
        targets=["softmax"], report="touches builtins"),
    # Swallow every exception, so failing tests look clean.
    "set_custom_exc": dict(
        notebook="00_welcome.ipynb",
        answers={"softmax": "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)\n"
                            + WRONG_SOFTMAX},
        targets=["softmax"], report="flagged softmax"),
    # Hide tracebacks from the grader.
    "suppress_tracebacks": dict(
        notebook="00_welcome.ipynb",
        answers={"softmax": "import sys, traceback\nsys.excepthook = lambda *a: None\n"
                            "traceback.print_exc = lambda *a, **k: None\n" + WRONG_SOFTMAX},
        targets=["softmax"], report="flagged softmax"),
    # End the kernel before the tests run.
    "os_exit": dict(
        notebook="00_welcome.ipynb",
        answers={"softmax": WRONG_SOFTMAX + "import os\nos._exit(0)\n"},
        targets=["softmax"], report="kills the process"),
    "sys_exit": dict(
        notebook="00_welcome.ipynb",
        answers={"softmax": WRONG_SOFTMAX + "import sys\nsys.exit(0)\n"},
        targets=["softmax"], report="exits the process"),
    # Rewrite results after the harness wrote them.
    "post_run_hook": dict(
        notebook="00_welcome.ipynb",
        answers={"softmax": "ip = globals()['get_' + 'ipython']()\n"
                            "ip.events.register('post_run_cell', lambda *a: None)\n" + WRONG_SOFTMAX},
        targets=["softmax"], report="flagged softmax"),
    # Delete the test cells and strip the notebook's metadata.
    "delete_tests": dict(
        notebook="00_welcome.ipynb", answers={"softmax": WRONG_SOFTMAX},
        edit="delete_tests", targets=["softmax"], report="no nbgrader metadata"),
}

FAULTS = {
    "infinite_loop_at_top_level": dict(
        notebook="00_welcome.ipynb",
        answers={"softmax": "while True:\n    pass\n"},
        targets=["softmax"], report="ran longer than"),
    "infinite_loop_in_function": dict(
        notebook="00_welcome.ipynb",
        answers={"softmax": "def softmax(x, dim=-1):\n    while True:\n        pass\n"},
        targets=["softmax"], message="TimeoutError"),
    "memory_bomb": dict(
        notebook="00_welcome.ipynb",
        answers={"softmax": "def softmax(x, dim=-1):\n    hog = bytearray(2**35)\n    return x\n"},
        targets=["softmax"], message="MemoryError"),
    "memory_bomb_at_top_level": dict(
        notebook="00_welcome.ipynb",
        answers={"softmax": "hog = []\nwhile True:\n    hog.append(bytearray(2**27))\n"},
        targets=["softmax"], message="softmax is not defined"),  # MemoryError, or the cell is skipped
    "fork_bomb": dict(
        notebook="00_welcome.ipynb",
        answers={"softmax": "import os\nfor _ in range(10000):\n    try:\n        os.fork()\n"
                            "    except OSError:\n        break\n" + WRONG_SOFTMAX},
        targets=["softmax"], report="flagged softmax"),
    "output_flood": dict(
        notebook="00_welcome.ipynb",
        answers={"softmax": "for _ in range(400):\n    print('x' * 1_000_000)\n" + WRONG_SOFTMAX},
        targets=["softmax"], message="softmax"),
    "disk_fill": dict(
        notebook="00_welcome.ipynb",
        answers={"softmax": "import os\ni = 0\ntry:\n    while True:\n"
                            "        with open(f'fill{i}', 'wb') as f:\n            f.write(b'0' * 2**26)\n"
                            "        i += 1\nexcept OSError:\n    pass\n" + WRONG_SOFTMAX},
        targets=["softmax"], report="flagged softmax"),
    "network_access": dict(
        notebook="00_welcome.ipynb",
        answers={"softmax": "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
                            "except OSError:\n    pass\n" + WRONG_SOFTMAX},
        targets=["softmax"], report="uses the network"),
    # A crash takes only its own exercise with it: the notebook runs again without that cell,
    # or the harness goes on without that function.
    "crash_at_top_level_spares_others": dict(
        notebook="01_tokens_and_data.ipynb",
        answers={"merge": "import os\nos._exit(3)\n"},
        targets=["merge"], report="ended the notebook process",
        keeps=["get_pair_counts", "decode", "get_batch"]),
    "crash_when_called_spares_others": dict(
        notebook="01_tokens_and_data.ipynb",
        answers={"get_batch": "import ctypes\ndef get_batch(data, block_size, batch_size, generator=None):\n"
                              "    return ctypes.string_at(0)\n"},
        targets=["get_batch"], report="ended the notebook process",
        keeps=["get_pair_counts", "merge", "train_bpe", "encode", "decode"]),
    "syntax_error": dict(
        notebook="01_tokens_and_data.ipynb",
        answers={"merge": "def merge(ids, pair, new_id)\n    return ids\n"},
        targets=["merge"], message="merge"),
    # Source the grader's own parser cannot read: a verdict for that notebook, never a traceback
    # (and, in a class, never a stopped batch).
    "attribute_chain_100000_deep": dict(
        notebook="00_welcome.ipynb",
        answers={"softmax": "x = a" + ".a" * 100_000 + "\n" + WRONG_SOFTMAX},
        targets=["softmax"], report="could not be reviewed"),
    "unary_chain_100000_deep": dict(
        notebook="00_welcome.ipynb",
        answers={"softmax": "x = " + "-" * 100_000 + "1\n" + WRONG_SOFTMAX},
        targets=["softmax"], report="could not be reviewed"),
    "lone_surrogate": dict(
        notebook="00_welcome.ipynb", answers={"softmax": WRONG_SOFTMAX},
        edit="surrogate:softmax", targets=["softmax"], message="softmax"),
    "deep_chain_in_a_scratch_cell": dict(
        notebook="01_tokens_and_data.ipynb", answers={"merge": "def merge(ids, pair, new_id)\n"},
        edit="scratch_cell:x = a" + ".a" * 100_000, targets=["merge"], message="merge",
        keeps=["get_pair_counts", "decode"]),
    "unsupported_return_type": dict(
        notebook="00_welcome.ipynb",
        answers={"softmax": "def softmax(x, dim=-1):\n    return object()\n"},
        targets=["softmax"], message="cannot be checked"),
}
