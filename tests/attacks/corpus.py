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
    # One exercise's code reaching another exercise's grade. Each answer cell runs in a process
    # of its own, forked after the reference answers of the exercises before it: a later cell
    # makes its harness also call an earlier exercise (the reference, in that process) on that
    # exercise's jobs, read from the grader's job files ...
    "later_cell_runs_earlier_jobs": dict(
        notebook="01_tokens_and_data.ipynb",
        answers={"get_pair_counts": "def get_pair_counts(ids):\n    return {}\n",
                 "decode": "import glob, json\n"
                           "_load = json.load\n"
                           "def _more(f, *a, **k):\n"
                           "    jobs = _load(f, *a, **k)\n"
                           "    for p in glob.glob('/tmp/**/jobs*.json', recursive=True):\n"
                           "        with open(p) as g:\n"
                           "            jobs = [j for j in _load(g) if j.get('name') == 'get_pair_counts'] + jobs\n"
                           "    return jobs\n"
                           "json.load = _more\n"
                           "def decode(ids, merges):\n"
                           "    vocab = {i: bytes([i]) for i in range(256)}\n"
                           "    for (a, b), new_id in merges.items():\n"
                           "        vocab[new_id] = vocab[a] + vocab[b]\n"
                           "    return b''.join(vocab[i] for i in ids).decode('utf-8', errors='replace')\n"},
        targets=["get_pair_counts"], report="flagged decode"),
    # ... or writes the earlier exercise's records itself, computed by the reference it finds
    # in its process and encoded as the harness would (@WIRE@: the harness's own encoder) ...
    "later_cell_writes_earlier_records": dict(
        notebook="04_multi_head_attention.ipynb",
        answers={"split_heads": "def split_heads(x, n_head):\n"
                                "    B, T, C = x.shape\n"
                                "    return x.view(B, n_head, T, C // n_head)\n",
                 "CausalSelfAttention": "import glob, json, os\n"
                                        "_w = {}\n"
                                        "exec(@WIRE@, _w)\n"
                                        "for _p in glob.glob('/tmp/**/jobs*.json', recursive=True):\n"
                                        "    for _j in json.load(open(_p)):\n"
                                        "        if _j['name'] != 'split_heads':\n"
                                        "            continue\n"
                                        "        _a = _w['from_plain'](_j['args'], True)\n"
                                        "        _k = _w['from_plain'](_j['kwargs'], True)\n"
                                        "        _v = _w['invoke'](split_heads, _j['kind'], _a, _k)\n"
                                        "        _r = json.dumps({'id': _j['id'], 'ok': _w['to_plain'](_v),\n"
                                        "                         'after': _w['to_plain'](list(_a) + list(_k.values()))})\n"
                                        "        for _fd in range(3, 120):\n"
                                        "            try:\n"
                                        "                os.write(_fd, (_r + '\\n').encode())\n"
                                        "            except OSError:\n"
                                        "                pass\n"
                                        "@SOLUTION:CausalSelfAttention@"},
        targets=["split_heads"], report="flagged CausalSelfAttention"),
    # ... or a later cell defines the earlier exercise again, correctly this time (all of it
    # the learner's code, but each exercise is graded on its own answer cell) ...
    "later_cell_redefines_earlier_exercise": dict(
        notebook="04_multi_head_attention.ipynb",
        answers={"split_heads": "def split_heads(x, n_head):\n"
                                "    B, T, C = x.shape\n"
                                "    return x.view(B, n_head, T, C // n_head)\n",
                 "CausalSelfAttention": "def split_heads(x, n_head):\n"
                                        "    B, T, C = x.shape\n"
                                        "    return x.view(B, T, n_head, C // n_head).transpose(1, 2)\n"
                                        "@SOLUTION:CausalSelfAttention@"},
        targets=["split_heads"], report="defines split_heads too", keeps=["CausalSelfAttention"]),
    # ... or an earlier cell changes what a later exercise's process starts from (a wrong
    # split_heads, then a library patched so that every later comparison of shapes agrees).
    "earlier_cell_patches_later_exercises": dict(
        notebook="04_multi_head_attention.ipynb",
        answers={"split_heads": "import torch\n"
                                "torch.Tensor.transpose = lambda self, *a: self\n"
                                "def split_heads(x, n_head):\n"
                                "    B, T, C = x.shape\n"
                                "    return x.view(B, n_head, T, C // n_head)\n"},
        targets=["split_heads"], report="flagged split_heads",
        keeps=["merge_heads", "CausalSelfAttention"]),
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
    # A process left behind, or a signal to the runner, costs only the exercise that sent it.
    "answer_cell_kills_the_runner": dict(
        notebook="01_tokens_and_data.ipynb",
        answers={"merge": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"},
        targets=["merge"], report="ended the notebook process",
        keeps=["get_pair_counts", "train_bpe", "encode", "decode", "get_batch"]),
    "process_left_behind_kills_the_runner_later": dict(
        notebook="01_tokens_and_data.ipynb",
        answers={"merge": "import os, signal, time\n"
                          "_runner = os.getppid()\n"
                          "if os.fork() == 0:\n"
                          "    os.setsid()\n"
                          "    if os.fork() == 0:\n"
                          "        time.sleep(3)\n"
                          "        os.kill(_runner, signal.SIGKILL)\n"
                          "    os._exit(0)\n"
                          "def merge(ids, pair, new_id):\n    return ids\n"},
        targets=["merge"], message="merge",
        keeps=["get_pair_counts", "train_bpe", "encode", "decode", "get_batch"]),
    "records_flood_spares_others": dict(
        notebook="01_tokens_and_data.ipynb",
        answers={"merge": "import os\n"
                          "_line = b'{\"id\": \"' + b'x' * 1_000_000 + b'\"}\\n'\n"
                          "for _ in range(80):\n"
                          "    os.write(98, _line)\n"
                          "def merge(ids, pair, new_id):\n    return ids\n"},
        targets=["merge"], message="merge",
        keeps=["get_pair_counts", "train_bpe", "encode", "decode", "get_batch"]),
    "odd_records_spare_others": dict(
        notebook="01_tokens_and_data.ipynb",
        answers={"merge": "import os\n"
                          "for _line in ['{\"id\": [1]}', '{\"id\": {}}', '[1, 2]', '[' * 100000,\n"
                          "              '{\"problem\": 7}', '{\"id\": null, \"ok\": 1}', '\\udcff']:\n"
                          "    os.write(98, (_line + '\\n').encode('utf-8', 'surrogatepass'))\n"
                          "def merge(ids, pair, new_id):\n    return ids\n"},
        targets=["merge"], message="merge",
        keeps=["get_pair_counts", "train_bpe", "encode", "decode", "get_batch"]),
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
