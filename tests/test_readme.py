"""The README's Python blocks that use only bundled data run as written."""

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_quick_start_and_model_blocks_run():
    namespace: dict = {}
    quick = next(b for b in BLOCKS if "In five lines" in README.split(b)[0][-200:] or "customer_value(bg, gg, cal" in b)
    exec(compile(quick, "README quick start", "exec"), namespace)
    assert len(namespace["value"]) == 2357 and "value_3y" in namespace["value"].columns
    models = next(b for b in BLOCKS if "bg.summary()" in b)
    exec(compile(models.replace('bg.save("bgnbd.json"); clv.BetaGeo.load("bgnbd.json")', ""), "README models", "exec"),
         namespace)
    assert namespace["bg"].params_["r"] > 0
