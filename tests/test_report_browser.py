"""The report in a real browser (headless Chromium, as a reader opens it): its first screen holds the
customers' total value and the name of the model that produced it.

Needs Debian's ``chromium`` (``.ci/run`` installs it); skipped with the reason where it is absent.
"""

import json
import re
import shutil
import subprocess

import pytest

import clvmodels as clv
from clvmodels.report import build_report
from clvmodels.segments import at_risk
from clvmodels.value_table import value_table

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (.ci/run installs Debian's "
                                                          "chromium: apt-get install chromium)")

#: Injected into a copy of the report: after loading, lists the text of every element the first screen
#: (the window's height) shows, in a <pre> that --dump-dom prints.
PROBE = """<script>
window.addEventListener("load", () => {
  const seen = [];
  for (const el of document.querySelectorAll("h1, h2, p, caption, th, td")) {
    const r = el.getBoundingClientRect();
    if (r.height > 0 && r.top < window.innerHeight && r.bottom > 0) seen.push(el.textContent);
  }
  const out = document.createElement("pre");
  out.id = "first-screen";
  out.textContent = JSON.stringify({height: window.innerHeight, text: seen});
  document.body.appendChild(out);
});
</script>"""


def first_screen(html_path, width=1280, height=900) -> dict:
    """What headless Chromium shows of the page in a window of ``width`` x ``height``."""
    probe = html_path.with_name("probe.html")
    probe.write_text(html_path.read_text().replace("</body>", PROBE + "</body>"))
    proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           f"--window-size={width},{height}", "--virtual-time-budget=10000", "--dump-dom",
                           probe.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="first-screen">(.*?)</pre>', proc.stdout, re.S)
    assert found, proc.stderr[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                      .replace("&gt;", ">"))


def test_the_first_screen_holds_the_total_value_and_the_models_name(cdnow_tx, tmp_path):
    chosen = clv.select_model(cdnow_tx, folds=1, show_progress=False, purchase_candidates=[clv.BetaGeo()],
                              spend_candidates=[clv.GammaGamma()])
    summary = clv.rfm_summary(cdnow_tx, time_unit="W")
    table = value_table(chosen.purchase_model_, chosen.spend_model_, summary)
    report = build_report(summary, value_table=table, selection=chosen, at_risk=at_risk(table), currency="USD")
    report.save(tmp_path / "report.html")
    screen = first_screen(tmp_path / "report.html")
    text = " ".join(screen["text"])
    totals = chosen.totals(summary)
    assert screen["height"] > 0
    assert f"{totals.loc['1y', 'value']:,.0f}" in screen["text"]  # the 1-year total, a cell of its own
    assert "The forecasts come from BG/NBD for purchases and Gamma-Gamma for spend per purchase" in text
