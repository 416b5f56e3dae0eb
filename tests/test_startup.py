"""The server and the CLI start without the heavy parts of the scientific stack.

scikit-learn, scipy.stats and scipy.optimize together took about 1.5 s of every start (``labelwright --help``
5.3 s, ``export --help`` 4.0 s on a 2-core machine; docs/benchmarks.md). They are imported where they are
used (fitting a featuriser or the assistant's model, matching boxes and polygons); this keeps a top-level
import of them from creeping back. Run in a fresh interpreter: the test process has imported everything.
"""

from __future__ import annotations

import subprocess
import sys

from labelwright.cli import LAZY_COMMANDS

HEAVY = ("sklearn", "scipy.stats", "scipy.optimize")
PROBE = (
    "import sys, importlib\n"
    "for m in sys.argv[1:]:\n"
    "    importlib.import_module(m)\n"
    f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
)


def _loaded_after_importing(*modules: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROBE, *modules], capture_output=True, text=True, timeout=120,
                         check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def test_the_app_and_every_cli_command_module_start_without_them():
    modules = sorted({spec.split(":")[0] for spec in LAZY_COMMANDS.values()})
    assert modules, "the CLI names the modules of its commands"
    assert _loaded_after_importing("labelwright.app", "labelwright.cli", *modules) == []


def test_the_probe_sees_a_heavy_import():
    assert _loaded_after_importing("sklearn.linear_model") == ["sklearn", "scipy.stats", "scipy.optimize"]
