"""Run a module of another checkout (a git worktree of an older commit) with this venv:

    .venv/bin/python bench/run_checkout.py WORKTREE MODULE [ARGS...]

This venv's editable install of yibao resolves `core`, `app`, `commands`... to this checkout
before PYTHONPATH is looked at; the finder is removed so the worktree's packages are imported."""

import runpy
import sys

sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f)]
sys.path_hooks[:] = [h for h in sys.path_hooks if "editable" not in repr(h)]
worktree, target, *rest = sys.argv[1:]
sys.path.insert(0, worktree)
sys.argv = [target, *rest]
if target.endswith(".py"):
    runpy.run_path(target, run_name="__main__")
else:
    runpy.run_module(target, run_name="__main__", alter_sys=True)
