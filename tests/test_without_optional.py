"""hepprob imports and fits without its optional dependencies; missing ones say how to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap

OPTIONAL = ["iminuit", "pymc", "pytensor", "uproot", "matplotlib", "dask", "pyhf"]

SCRIPT = textwrap.dedent(
    f"""
    import importlib.abc, sys

    class Hide(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {OPTIONAL!r}:
                raise ImportError(f"hidden for the test: {{name}}")
            return None

    sys.meta_path.insert(0, Hide())

    import numpy as np, numpyro, numpyro.distributions as npd
    import hepprob
    from hepprob._optional import require
    from hepprob.model import ModelStructure, log_likelihood

    def model(x):
        mu = hepprob.param("mu", 0.0, -5, 5)
        numpyro.sample("x", npd.Normal(mu, 1.0), obs=x)

    x = np.array([0.5, 1.5])
    s = ModelStructure.from_model(model, x)
    print(float(log_likelihood(model, s, (x,))(s.init)))
    try:
        require("iminuit", "the Minuit backend")
    except ImportError as err:
        print(err)
    """
)


def test_core_works_without_optional_dependencies():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    # log N(0.5; 0, 1) + log N(1.5; 0, 1), written out
    import math

    expected = -math.log(2 * math.pi) - 0.5 * (0.25 + 2.25)
    assert abs(float(lines[0]) - expected) < 1e-12
    assert 'pip install "hepprob[minuit]"' in lines[1]
