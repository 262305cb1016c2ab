"""Run a notebook's code cells as one plain Python program: no Jupyter, no kernel.

For machines with PyTorch but without Jupyter (the GPU machine the course's GPU figures come
from). Cells run in order in one namespace; each cell's wall time is printed; figures shown
with ``IPython.display.display`` (or left open at a cell's end) are saved as PNG files in
``--out``; Markdown shown with ``display(Markdown(...))`` is printed. Where IPython is not
installed, a small stand-in for ``IPython.display`` takes its place. Lines starting with ``%``
or ``!`` (magics) are skipped.

    python bench/notebook_as_script.py solutions/10_full_training_run.ipynb --out runs/gpu \\
        [--skip-checks] [--skip TEXT] [--until TEXT] [--stop-after N] [--before FIRST.py] [--then MORE.py]

``--skip-checks`` leaves out the cells that call ``check(...)`` (the grader's checks need
nothing from a GPU, and a GPU machine may lack their test dependencies). ``--then`` runs a
Python file afterwards in the notebook's namespace (more seeds of a run, say); ``--before``
one before the first cell (bench/emulate_t4.py, say).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
import types
from pathlib import Path


def _figure_saver(out: Path):
    count = [0]

    def save(fig) -> str:
        count[0] += 1
        path = out / f"figure_{count[0]:02d}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        return str(path)

    return save


def install_display(out: Path):
    """Make ``IPython.display.display`` save figures and print everything else. Returns
    ``(save, flush)``: save(figure) writes one PNG and returns its path; flush() saves the last
    state of every live figure (a display handle) shown since the previous flush."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    save = _figure_saver(out)

    class Handle:
        def __init__(self, obj):
            self.obj = obj

        def update(self, obj):
            self.obj = obj  # a live plot: only its last state is saved (at the end)

    handles: list[Handle] = []

    def display(*objs, display_id=None, **kwargs):
        for obj in objs:
            if isinstance(obj, Figure):
                if display_id:
                    handles.append(Handle(obj))
                    return handles[-1]
                print(f"[figure saved: {save(obj)}]")
            elif hasattr(obj, "data") and type(obj).__name__ in ("Markdown", "HTML"):
                print(obj.data)
            else:
                print(repr(obj))
        return Handle(None) if display_id else None

    class Markdown:
        def __init__(self, data):
            self.data = data

    HTML = Markdown

    module = types.ModuleType("IPython.display")
    module.display, module.Markdown, module.HTML = display, Markdown, HTML
    module.clear_output = lambda wait=False: None
    package = types.ModuleType("IPython")
    package.display = module
    package.get_ipython = lambda: None
    package.version_info = (9, 0, 0)  # matplotlib asks; a recent one needs no GUI set-up
    sys.modules["IPython"], sys.modules["IPython.display"] = package, module

    def flush_handles():
        for handle in handles:
            if handle.obj is not None:
                print(f"[live figure saved: {save(handle.obj)}]")
        handles.clear()

    return save, flush_handles


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook")
    parser.add_argument("--out", default="runs/notebook_as_script", help="folder for figures")
    parser.add_argument("--skip-checks", action="store_true", help="leave out cells that call check(...)")
    parser.add_argument("--stop-after", type=int, default=None, help="stop after this many code cells")
    parser.add_argument("--skip", action="append", default=[], metavar="TEXT",
                        help="leave out the cells whose code contains TEXT (repeatable)")
    parser.add_argument("--until", default=None, metavar="TEXT",
                        help="stop after the first cell whose code contains TEXT (then --then runs)")
    parser.add_argument("--before", default=None, help="a Python file to run first, in the same namespace")
    parser.add_argument("--then", default=None, help="a Python file to run afterwards in the notebook's namespace")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save, flush = install_display(out)
    import matplotlib.pyplot as plt

    cells = [c for c in json.loads(Path(args.notebook).read_text())["cells"] if c["cell_type"] == "code"]
    if args.until:
        last = next((i for i, c in enumerate(cells) if args.until in "".join(c["source"])), None)
        if last is None:
            parser.error(f"no code cell contains {args.until!r}")
        cells = cells[: last + 1]
    if args.before:
        cells.insert(0, {"source": Path(args.before).read_text(), "id": args.before})
    if args.then:
        cells.append({"source": Path(args.then).read_text(), "id": args.then})
    namespace = {"__name__": "__main__"}
    start = time.perf_counter()
    for i, cell in enumerate(cells[: args.stop_after]):
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if args.skip_checks and "check(" in source:
            print(f"--- cell {i}: skipped (a check)")
            continue
        if any(text in source for text in args.skip):
            print(f"--- cell {i}: skipped (--skip)")
            continue
        source = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
        print(f"--- cell {i} ({cell.get('id', '?')})", flush=True)
        t0 = time.perf_counter()
        try:
            exec(compile(source, f"<cell {i}>", "exec"), namespace)
        except Exception:  # noqa: BLE001 - report which cell failed, then stop
            traceback.print_exc()
            print(f"--- cell {i} FAILED after {time.perf_counter() - t0:.1f} s", flush=True)
            return 1
        flush()
        for number in plt.get_fignums():
            print(f"[figure saved: {save(plt.figure(number))}]")
        plt.close("all")
        print(f"--- cell {i}: {time.perf_counter() - t0:.1f} s", flush=True)
    print(f"--- all cells: {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
