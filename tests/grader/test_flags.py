"""The static review of answer cells (grader/flags.py): tampering is flagged, honest code is not."""

from grader import flags


def test_sys_modules_is_flagged_but_module_methods_are_not():
    assert flags.review("import sys\nsys.modules['torch'].allclose = lambda *a, **k: True\n")
    assert flags.review("import sys\nm = sys.modules\n")
    honest = (
        "import torch\nfrom torch import nn\n\n"
        "class GPT(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.lin = nn.Linear(2, 2)\n"
        "        for m in self.modules():\n"
        "            if isinstance(m, nn.Linear):\n"
        "                torch.nn.init.normal_(m.weight, 0.0, 0.02)\n"
    )
    assert flags.review(honest) == []


def test_file_and_process_access_is_flagged():
    assert flags.review("import os\nos.system('ls')\n")
    assert flags.review("def f():\n    return open('/etc/passwd').read()\n")
    assert flags.review("from gpt2course.reference import softmax\n")
