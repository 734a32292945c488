"""The package's layers hold by a check (import-linter, configured in pyproject.toml), not by care: no
module imports a layer above its own, and no import cycle exists anywhere in the package."""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter")

ROOT = Path(__file__).resolve().parents[1]
LINT = str(Path(sys.executable).with_name("lint-imports"))


def lint(*args):
    return subprocess.run([LINT, *args], cwd=ROOT, capture_output=True, text=True)


def test_no_module_imports_a_layer_above_its_own():
    proc = lint(str(ROOT / "pyproject.toml"))
    assert proc.returncode == 0 and " 0 broken" in proc.stdout, proc.stdout[-3000:] + proc.stderr


def test_the_check_reports_an_upward_import(tmp_path):
    # the same check with two layers swapped: the command line imports the errors module, so it fails
    config = tmp_path / "swapped.ini"
    config.write_text("[importlinter]\nroot_package = clvmodels\n\n[importlinter:contract:swapped]\n"
                      "name = swapped\ntype = layers\nlayers =\n    clvmodels.errors\n    clvmodels.cli\n")
    proc = lint(str(config))
    assert proc.returncode == 1 and "clvmodels.cli -> clvmodels.errors" in proc.stdout, proc.stdout[-3000:]


def test_no_import_cycles():
    import grimp

    graph = grimp.build_graph("clvmodels", include_external_packages=False)
    cycles = sorted((a, b) for a in graph.modules for b in graph.find_modules_directly_imported_by(a)
                    if a != b and graph.find_shortest_chain(importer=b, imported=a))
    assert not cycles, cycles


def test_every_module_of_each_layered_package_is_in_its_contract():
    """A module left out of a package's layers contract would be checked by nobody: every module of
    clvmodels/models and clvmodels/bayes is named in the contract for its package (a new model module
    is added to the "Models" layers in pyproject.toml)."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    for package in ("models", "bayes"):
        prefix = f"clvmodels.{package}."
        own = [c for c in config if all(m.strip().startswith(prefix) for layer in c["layers"] for m in layer.split("|"))]
        assert len(own) == 1, (package, [c["name"] for c in own])
        named = {m.strip() for layer in own[0]["layers"] for m in layer.split("|")}
        modules = {f"clvmodels.{package}.{p.stem}" for p in (ROOT / "clvmodels" / package).glob("*.py")
                   if p.stem != "__init__"}
        assert modules <= named, sorted(modules - named)
