"""Backtest figures (matplotlib). Every function takes ``ax=None`` and returns the Axes it drew on.

matplotlib is imported when a function is called, never by ``import clvmodels``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["plot_frequency_holdout", "plot_tracking", "plot_error_by_horizon", "plot_decile_lift", "plot_forest",
           "plot_lorenz", "plot_frequency_recency", "plot_value_distribution", "plot_posterior", "save_figures"]


def _axes(ax):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(7, 4.2))[1]


def _first(values: pd.Series, wanted: Any = None) -> Any:
    return wanted if wanted is not None else values.iloc[0]


def _longest(result, values: pd.Series, wanted: Any = None) -> Any:
    """The requested horizon, else the longest one that was scored."""
    if wanted is not None:
        return wanted
    scored = set(values)
    return [h for h in result.horizons if h in scored][-1]


#: Draws a posterior histogram shows at most (all of a default fit's 4,000).
POSTERIOR_DRAWS = 100_000

_METRIC_NAMES = {"aggregate_error_pct": "aggregate error (%)", "cumulative_error_pct": "cumulative error (%)",
                 "mae": "mean absolute error", "rmse": "root mean squared error", "wape": "WAPE",
                 "spearman": "Spearman rank correlation", "top_decile_share": "share captured by the top decile",
                 "coverage": "interval coverage", "pit_coverage": "randomised PIT coverage"}


def plot_frequency_holdout(result, *, horizon: str | None = None, models: list[str] | None = None,
                           cutoff: str | None = None, max_frequency: int = 7, ax=None):
    """Mean holdout purchases by calibration frequency: actual (bars) and each model (lines), as in
    Fader, Hardie & Lee (2005) figure 4. Frequencies above ``max_frequency`` are pooled."""
    ax = _axes(ax)
    p = result.predictions
    horizon = _longest(result, p["horizon"], horizon)
    cutoff = _first(p["cutoff"], cutoff)
    p = p[(p["horizon"] == horizon) & (p["cutoff"] == cutoff)]
    models = models or list(dict.fromkeys(p["model"]))
    group = p["frequency"].clip(upper=max_frequency)
    labels = [str(int(g)) if g < max_frequency else f"{max_frequency}+" for g in sorted(group.unique())]
    first = p[p["model"] == models[0]]
    actual = first.groupby(first["frequency"].clip(upper=max_frequency))["actual_purchases"].mean()
    x = np.arange(len(actual))
    ax.bar(x, actual.to_numpy(), color="0.8", label="actual")
    for name in models:
        sel = p[p["model"] == name]
        pred = sel.groupby(sel["frequency"].clip(upper=max_frequency))["predicted_purchases"].mean()
        ax.plot(x, pred.to_numpy(), marker="o", label=name)
    ax.set_xticks(x, labels)
    ax.set_xlabel("repeat purchases in the calibration period")
    ax.set_ylabel(f"mean purchases in the next {horizon}")
    ax.set_title(f"Holdout purchases by calibration frequency (cut-off {cutoff})")
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def plot_tracking(result, *, cumulative: bool = True, ax=None):
    """Actual and expected repeat purchases per period since the log's first day (FHL 2005 figure 3),
    cumulative or incremental, with the calibration cut-off marked."""
    ax = _axes(ax)
    t = result.tracking
    if t.empty:
        raise ValueError("this backtest has no tracking curve (no purchase model with one)")
    series = t.drop(columns="period")
    if cumulative:
        series = series.cumsum()
    ax.plot(t["period"], series["actual"], color="black", label="actual")
    for name in series.columns.drop("actual"):
        ax.plot(t["period"], series[name], linestyle="--", label=name)
    ax.axvline(t.attrs.get("cutoff_period", np.nan), color="0.5", linestyle=":", label="calibration end")
    unit = {"D": "days", "W": "weeks", "M": "months"}.get(t.attrs.get("time_unit", ""), "periods")
    ax.set_xlabel(f"{unit} since {t.attrs.get('start', 'the start')}")
    ax.set_ylabel(("cumulative" if cumulative else "") + " repeat purchases")
    ax.set_title("Tracking: " + ("cumulative" if cumulative else "incremental") + " repeat purchases")
    ax.legend(fontsize="small")
    return ax


def plot_error_by_horizon(result, *, metric: str = "aggregate_error_pct", target: str = "purchases", ax=None):
    """One metric for every model x horizon (mean over cut-offs) as grouped bars."""
    ax = _axes(ax)
    table = result.table(metric, target)
    n_models, n_h = table.shape
    width = 0.8 / max(n_models, 1)
    x = np.arange(n_h)
    for i, (name, row) in enumerate(table.iterrows()):
        ax.bar(x + i * width - 0.4 + width / 2, row.to_numpy(float), width, label=name)
    ax.set_xticks(x, list(table.columns))
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("horizon")
    name = _METRIC_NAMES.get(metric, metric)
    ax.set_ylabel(f"{name}, {target}")
    ax.set_title(f"{name[0].upper() + name[1:]} of {target} by model and horizon")
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def plot_decile_lift(result, *, model: str | None = None, horizon: str | None = None, target: str | None = None,
                     cutoff: str | None = None, ax=None):
    """Mean actual vs predicted value by decile of the prediction (1 = lowest), for one model; ``target``
    defaults to spend, or to purchases when spend was not scored."""
    ax = _axes(ax)
    target = target or result.targets[-1]
    c = result.calibration
    model = _first(c["model"], model)
    horizon = _longest(result, c["horizon"], horizon)
    cutoff = _first(c["cutoff"], cutoff)
    sel = c[(c["model"] == model) & (c["horizon"] == horizon) & (c["target"] == target) & (c["cutoff"] == cutoff)]
    x = sel["decile"].to_numpy()
    ax.bar(x - 0.2, sel["predicted"], 0.4, label="predicted")
    ax.bar(x + 0.2, sel["actual"], 0.4, label="actual")
    ax.set_xticks(x)
    ax.set_xlabel("decile of predicted " + target)
    ax.set_ylabel(f"mean {target} per customer over {horizon}")
    ax.set_title(f"Decile lift: {model}")
    ax.legend(fontsize="small")
    return ax


def plot_forest(shrinkage: pd.DataFrame, parameter: str, *, ax=None):
    """Forest plot of a hierarchical model's segments for one parameter: posterior mean and interval
    (line), the segment's own maximum-likelihood estimate (x) and the pooled estimate (dashed), from
    :meth:`BayesBetaGeo.shrinkage <clvmodels.bayes.hierarchical._BayesModel.shrinkage>`."""
    ax = _axes(ax)
    t = shrinkage[shrinkage["parameter"] == parameter].reset_index(drop=True)
    lo_col = next(c for c in t.columns if c.startswith("lower"))
    hi_col = next(c for c in t.columns if c.startswith("upper"))
    y = np.arange(len(t))
    ax.hlines(y, t[lo_col], t[hi_col], color="C0", label=f"posterior {lo_col.split()[-1]} interval")
    ax.plot(t["posterior_mean"], y, "o", color="C0", label="posterior mean")
    ax.plot(t["unpooled_mle"], y, "x", color="C3", label="segment alone (MLE)")
    ax.axvline(t["population_mle"].iloc[0], color="0.5", linestyle="--", label="pooled MLE")
    ax.set_yticks(y, [f"{s} (n={n:,})" for s, n in zip(t["segment"], t["customers"])])
    ax.set_xlabel(parameter)
    ax.set_title(f"Partial pooling of {parameter} across segments")
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def plot_lorenz(value, *, ax=None):
    """The value's concentration: the share of the total value (y) held by the most valuable share of
    customers (x), against the diagonal of equal values."""
    ax = _axes(ax)
    v = np.sort(np.asarray(value, dtype=np.float64))[::-1]
    x = np.arange(len(v) + 1) / len(v)
    ax.plot(x, np.concatenate([[0.0], np.cumsum(v)]) / v.sum(), color="C0", label="customers by value, highest first")
    ax.plot([0, 1], [0, 1], color="0.5", linestyle="--", label="every customer worth the same")
    ax.set_xlabel("share of customers")
    ax.set_ylabel("share of value")
    ax.set_title("Value concentration")
    ax.legend(fontsize="small", loc="lower right")
    return ax


def plot_frequency_recency(model, T: float, *, horizon: Any = None, max_frequency: int = 20, ax=None):
    """A purchase model's P(alive) (or, with ``horizon``, expected purchases over it) for a customer of age
    ``T`` by repeat purchases (rows) and recency (columns), as in Fader, Hardie & Lee (2005, Marketing
    Science 24(2), figures 7-8): who is likely still a customer, and who will buy. A customer without repeat
    purchases has recency 0, so that row has one value throughout."""
    ax = _axes(ax)
    n_rec = 40
    rec = (np.arange(n_rec) + 0.5) * T / n_rec
    freq = np.arange(1, max_frequency + 1)
    grid = pd.DataFrame({"frequency": np.repeat(freq, n_rec), "recency": np.tile(rec, len(freq)), "T": float(T)})
    grid = pd.concat([pd.DataFrame({"frequency": [0], "recency": [0.0], "T": [float(T)]}), grid], ignore_index=True)
    values = (model.p_alive(grid) if horizon is None else model.expected_purchases(grid, horizon)).to_numpy()
    z = np.vstack([np.full(n_rec, values[0]), values[1:].reshape(len(freq), n_rec)])
    image = ax.imshow(z, origin="lower", aspect="auto", extent=(0, T, -0.5, max_frequency + 0.5),
                      cmap="viridis", vmin=0, vmax=1 if horizon is None else None)
    what = "P(alive)" if horizon is None else f"expected purchases over {horizon}"
    ax.figure.colorbar(image, ax=ax, label=what)
    unit = getattr(model, "time_unit_", "")
    ax.set_xlabel(f"recency: time from the first to the last purchase ({unit})")
    ax.set_ylabel("repeat purchases (frequency)")
    ax.set_title(f"{model.label}: {what}, a customer of age {T:.0f} {unit}")
    return ax


def plot_value_distribution(value, *, ax=None, bins: int = 40):
    """Histogram of the customers' values on a log scale (most customers are worth little, a few a lot);
    customers valued at zero or less are counted in the title."""
    ax = _axes(ax)
    v = np.asarray(value, dtype=np.float64)
    positive = v[v > 0]
    edges = np.geomspace(positive.min(), positive.max(), bins + 1) if len(positive) else bins
    ax.hist(positive, bins=edges, color="C0")
    ax.set_xscale("log")
    name = getattr(value, "name", None) or "value"
    ax.set_xlabel(f"{name} (log scale)")
    ax.set_ylabel("customers")
    ax.set_title(f"Distribution of {name}" + (f" ({int((v <= 0).sum()):,} customers at 0 or less not shown)"
                                              if (v <= 0).any() else ""))
    return ax


def plot_posterior(model, parameter: str, *, ax=None, bins: int = 40):
    """Posterior draws of one parameter of a fitted Bayesian model as histograms, one per segment (one
    for a pooled model), with the maximum-likelihood estimate of the whole population (dashed)."""
    ax = _axes(ax)
    if parameter not in model.param_names:
        raise ValueError(f"{type(model).__name__} has no parameter {parameter!r} (its parameters: "
                         f"{', '.join(model.param_names)})")
    draws = model.param_draws(max_draws=POSTERIOR_DRAWS)[:, :, list(model.param_names).index(parameter)]
    labels = next(iter(model.segments().values()), ["posterior"])
    for k, label in enumerate(labels):
        ax.hist(draws[:, k], bins=bins, density=True, histtype="step", label=str(label))
    ax.axvline(model.mle_.params_[parameter], color="0.5", linestyle="--", label="pooled MLE")
    ax.set_xlabel(parameter)
    ax.set_ylabel("posterior density")
    ax.set_title(f"Posterior of {parameter}")
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


def save_figures(result, folder) -> list:
    """Write the four backtest figures as PNG files into ``folder`` (atomically); return their paths."""
    from pathlib import Path

    from matplotlib.figure import Figure  # no pyplot: no global state, works without a display

    from .files import atomic_path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    drawings = {
        "frequency_holdout.png": lambda ax: plot_frequency_holdout(result, ax=ax),
        "error_by_horizon.png": lambda ax: plot_error_by_horizon(result, ax=ax),
        "decile_lift.png": lambda ax: plot_decile_lift(result, ax=ax),
    }
    if not result.tracking.empty:
        drawings["tracking_cumulative.png"] = lambda ax: plot_tracking(result, ax=ax)
        drawings["tracking_incremental.png"] = lambda ax: plot_tracking(result, cumulative=False, ax=ax)
    written = []
    for name, draw in drawings.items():
        fig = Figure(figsize=(11, 4.8))
        draw(fig.subplots())
        fig.tight_layout()
        with atomic_path(folder / name) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        written.append(folder / name)
    return written
