"""The package installs what it says, stays light to import, and the conda file agrees with pyproject."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from PyPI's
CONDA_NAMES = {"duckdb": "python-duckdb"}


def _name_and_spec(req: str) -> tuple[str, str]:
    req = req.split(";")[0].strip()
    m = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$", req)
    assert m, req
    return m.group(1).lower(), m.group(3).replace(" ", "")


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra, reqs in project["optional-dependencies"].items():
        wanted += [r for r in reqs if not r.startswith("clvmodels") and "python_version" not in r]
    expected = {CONDA_NAMES.get(n, n): s for n, s in map(_name_and_spec, wanted)}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = [d for d in env["dependencies"] if isinstance(d, dict)][0]["pip"]
    conda = dict(_name_and_spec(d) for d in env["dependencies"] + pip if isinstance(d, str) and d != "-e .")
    conda.pop("python"), conda.pop("pip")
    assert conda == expected


def test_all_extra_covers_every_other_extra():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(extras) >= {"bayes", "plot", "test", "bench", "all"}
    listed = re.search(r"\[(.*)\]", extras["all"][0]).group(1).split(",")
    assert sorted(listed) == sorted(set(extras) - {"all"})


def test_import_is_light():
    code = ("import sys, clvmodels; heavy = [m for m in ('pymc', 'pytensor', 'matplotlib', 'arviz', 'nutpie', 'scipy.optimize', 'scipy.stats') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_bundled_data_ships_with_the_package():
    import clvmodels

    data = Path(clvmodels.__file__).parent / "data" / "_cdnow"
    assert sorted(p.name for p in data.glob("*.gz")) == [
        "CDNOW_master.txt.gz", "CDNOW_sample.txt.gz", "cdnow_customers_summary_with_transactions.csv.gz"]


@pytest.mark.slow  # (starts Python) fast: test_report.py calls clv.backtest with clvmodels.backtest imported
def test_backtest_name_is_the_function_even_after_importing_the_module():
    code = ("import clvmodels.backtest, clvmodels as clv; from clvmodels.backtest import score; "
            "print(callable(clv.backtest) and clv.backtest.__module__ == 'clvmodels.backtest')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_submodules_load_on_first_use_as_attributes():
    code = ("import clvmodels as clv; f = clv.plots.plot_forest; "
            "print(clv.segments.__name__, clv.report.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.split() == ["clvmodels.segments", "clvmodels.report"], out.stderr
