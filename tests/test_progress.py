"""The one progress bar: where it shows, where it stays silent, and MCMC with it."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

from hepprob import _progress


def test_silent_when_not_a_terminal_or_switched_off(monkeypatch):
    monkeypatch.delenv(_progress.ENV_VAR, raising=False)
    assert _progress.enabled(None) is False  # pytest's stderr is not a terminal
    assert _progress.enabled(True) is True
    monkeypatch.setenv(_progress.ENV_VAR, "0")
    assert _progress.enabled(True) is False
    with _progress.progress(total=3, show=True) as bar:
        bar.update(2)
        bar.set_description("x")
    assert type(bar).__name__ == "_Silent"
    assert bar.n == 2


def test_text_bar_in_a_terminal(monkeypatch, capsys):
    monkeypatch.delenv(_progress.ENV_VAR, raising=False)
    with _progress.progress(total=4, desc="toys", show=True) as bar:
        for _ in range(4):
            bar.update(1)
    from tqdm.std import tqdm

    assert type(bar) is tqdm
    assert "toys" in capsys.readouterr().err


def test_notebook_without_ipywidgets_falls_back_to_text_without_warning(monkeypatch):
    monkeypatch.setattr(_progress, "in_notebook", lambda: True)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import fails
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a TqdmWarning would fail here
        cls = _progress._bar_class()
    from tqdm.std import tqdm

    assert cls is tqdm
    assert _progress.enabled(None) is True  # notebooks get a bar by default


def test_mcmc_progress_bar_runs_the_same_chain(capsys, monkeypatch):
    """The bar advances between chunks of the compiled loop: same draws as without."""
    import numpyro
    import numpyro.distributions as nd

    import hepprob

    monkeypatch.delenv(_progress.ENV_VAR, raising=False)

    def model(n):
        rate = hepprob.param("rate", 5.0, 0.0, 50.0)
        numpyro.sample("n", nd.Poisson(rate).expand([3]).to_event(1), obs=n)

    data = np.array([4.0, 7.0, 5.0])
    kwargs = {"num_warmup": 60, "num_samples": 60, "seed": 3}
    quiet = hepprob.mcmc(model, data, progress_bar=False, **kwargs)
    capsys.readouterr()
    shown = hepprob.mcmc(model, data, progress_bar=True, **kwargs)
    err = capsys.readouterr().err
    assert "sample" in err
    assert "120/120" in err
    np.testing.assert_allclose(
        shown.posterior["rate"].values, quiet.posterior["rate"].values, rtol=1e-12
    )


@pytest.mark.parametrize("chains", [1])
def test_one_chain_summary_has_no_r_hat_and_no_arviz_warning(chains, capfd):
    import arviz as az

    from hepprob import bayes

    idata = az.from_dict(
        posterior={"mu": np.random.default_rng(0).normal(size=(chains, 200))}
    )
    table = bayes.summary(idata)
    assert "r_hat" not in table.columns
    assert table.attrs["note"].startswith("r_hat needs at least two chains")
    assert "Shape validation" not in capfd.readouterr().err
