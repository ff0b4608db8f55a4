"""Combine datacards: each construct against a likelihood written here in numpy/scipy.

The reference likelihoods follow Combine's documentation ("Preparing the
datacard", part2/settinguptheanalysis; "Automatic statistical uncertainties",
part2/bin-wise-stats) and the formulas of its ``ProcessNormalization``
(asymmetric log-normal) and ``CMSHistFunc`` (vertical morphing), written
independently of hepprob's code. The published asymptotic limits of Combine's
"realistic counting experiment" (part3/commonstatsmethods) are the external
numbers for the whole chain.
"""

from __future__ import annotations

import math
import pathlib

import numpy as np
import pytest
from scipy import stats

from hepprob.errors import SpecError
from hepprob.histfactory.xml_export import th1
from hepprob.io import read_datacard


# ------------------------------------------------------------------ references
def asym_lognormal(theta, k_lo, k_hi):
    """Combine's smooth asymmetric log-normal: exp(theta * lambda(theta))."""
    l_hi, l_lo = math.log(k_hi), -math.log(k_lo)
    if theta >= 0.5:
        lam = l_hi
    elif theta <= -0.5:
        lam = l_lo
    else:
        x = 2 * theta
        step = 0.125 * x * (3 * x**4 - 10 * x**2 + 15)
        lam = 0.5 * (l_hi + l_lo) + 0.5 * (l_hi - l_lo) * step
    return math.exp(theta * lam)


def smooth_step(x):
    return float(np.sign(x)) if abs(x) >= 1 else 0.125 * x * (3 * x**4 - 10 * x**2 + 15)


def vertical_morph(x, nom, up, down, region=1.0):
    """CMSHistFunc 'QuadLinear': nom + x/2 [(up-down) + (up+down-2 nom) h(x/r)]."""
    return nom + 0.5 * x * (
        (up - down) + (up + down - 2 * nom) * smooth_step(x / region)
    )


def gauss(x, mean=0.0, sigma=1.0):
    return stats.norm.logpdf(x, mean, sigma)


def pois(n, lam):
    return stats.poisson.logpmf(n, lam)


def write(tmp_path, text, name="card.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


def values_of(model, pars):
    cfg = model.config
    return {n: pars[cfg.par_slice(n)] for n in cfg.par_order}


# ------------------------------------------------------------------ counting
COUNTING = """\
# two channels, every counting systematic type
imax 3
jmax 2
kmax *
---------------
bin          sr    cr    vr
observation  12    40    7
---------------
bin          sr     sr     sr     cr     vr     vr     vr
process      sig    bkg    qcd    bkg    sig    bkg    qcd
process      0      1      2      1      0      1      2
rate         3.0    8.0    1.2    35.0   1.0    5.0    0
---------------
lumi     lnN     1.025  -      -      -      1.025  -      -
jes      lnN     0.95/1.08 1.04 -     0.97/1.02 -   1.03   -
bkgfloat lnU     -      1.5    -      1.5    -      -      -
qcd_cr   gmN 6   -      -      0.2    -      -      -      -
zero_cr  gmN 0   -      -      -      -      -      -      0.4
xs       lnN     1.1    -      -      -      1.1    -      -
kbkg     rateParam  sr  bkg  1.0 [0,5]
kbkg     rateParam  cr  bkg  1.0 [0,5]
kvr      rateParam  vr  bkg  (@0*@1) kbkg,ext
ext      extArg  1.2 [0.5,2]
xs       param   0.2 1
kbkg     param   1.0 0.1
theory   group = xs jes
theory   group += lumi
"""


def counting_reference(v):
    r, lumi, jes, u, n6, n0, xs, kbkg, ext = (
        v[k] for k in ("r", "lumi", "jes", "bkgfloat", "qcd_cr", "zero_cr", "xs", "kbkg", "ext")
    )  # fmt: skip
    f_lumi = 1.025**lumi
    f_xs = 1.1**xs
    sr = (
        3.0 * r * f_lumi * asym_lognormal(jes, 0.95, 1.08) * f_xs
        + 8.0 * 1.04**jes * 1.5**u * kbkg
        + 0.2 * n6
    )
    cr = 35.0 * asym_lognormal(jes, 0.97, 1.02) * 1.5**u * kbkg
    vr = 1.0 * r * f_lumi * f_xs + 5.0 * 1.03**jes * kbkg * ext + 0.4 * n0
    main = pois(12, sr) + pois(40, cr) + pois(7, vr)
    aux = gauss(0, lumi) + gauss(0, jes) + gauss(0.2, xs) + gauss(1.0, kbkg, 0.1)
    aux += pois(6, n6) + pois(0, n0)  # gmN: Pois(N | n), u flat in [-1, 1]
    return main + aux


def test_counting_card_equals_handwritten_likelihood(tmp_path):
    ws = read_datacard(write(tmp_path, COUNTING))
    model = ws.model()
    data = ws.data(model)
    cfg = model.config
    assert cfg.poi_name == "r"
    assert set(cfg.par_order) == {
        "r",
        "lumi",
        "jes",
        "bkgfloat",
        "qcd_cr",
        "zero_cr",
        "xs",
        "kbkg",
        "ext",
    }
    bounds = dict(zip(cfg.par_names, cfg.suggested_bounds(), strict=True))
    assert bounds["r"] == (0.0, 20.0)
    assert bounds["jes"] == (-7.0, 7.0)
    assert bounds["bkgfloat"] == (-1.0, 1.0)
    assert bounds["kbkg"] == (0.0, 5.0)
    assert ws.groups["theory"] == ["xs", "jes", "lumi"]
    init = dict(zip(cfg.par_names, cfg.suggested_init(), strict=True))
    assert init["qcd_cr"] == 7.0
    assert init["zero_cr"] == 1.0
    rng = np.random.default_rng(11)
    for _ in range(6):
        pars = np.array(cfg.suggested_init(), dtype=float)
        pars += (
            0.4
            * rng.normal(size=pars.size)
            * np.array([0.5 if n in ("bkgfloat",) else 1.0 for n in cfg.par_names])
        )
        v = {n: float(x) for n, x in zip(cfg.par_names, pars, strict=True)}
        v["bkgfloat"] = float(np.clip(v["bkgfloat"], -0.99, 0.99))
        v["qcd_cr"], v["zero_cr"], v["kbkg"], v["r"] = (
            abs(v["qcd_cr"]),
            abs(v["zero_cr"]),
            abs(v["kbkg"]),
            abs(v["r"]),
        )
        pars = np.array([v[n] for n in cfg.par_names])
        np.testing.assert_allclose(
            model.logpdf(pars, data)[0], counting_reference(v), rtol=1e-11
        )


def test_asymmetric_lognormal_beyond_the_smooth_region(tmp_path):
    card = "imax 1\njmax 1\nkmax 1\nbin a\nobservation 20\nbin a a\nprocess s b\nprocess 0 1\nrate 5 10\nk lnN 0.7/1.4 -\n"
    ws = read_datacard(write(tmp_path, card))
    model = ws.model()
    data = ws.data(model)
    for theta in (-2.0, -0.7, -0.3, 0.0, 0.2, 0.49, 0.8, 3.0):
        pars = (
            np.array([theta, 1.3])
            if model.config.par_names == ["k", "r"]
            else np.array([1.3, theta])
        )
        want = pois(20, 5 * 1.3 * asym_lognormal(theta, 0.7, 1.4) + 10) + gauss(
            0, theta
        )
        np.testing.assert_allclose(model.logpdf(pars, data)[0], want, rtol=1e-12)


# ------------------------------------------------------------------ shapes
EDGES = np.array([0.0, 1.0, 2.0, 3.5, 5.0])
SIG = np.array([2.0, 5.0, 3.0, 1.0])
SIG_UP, SIG_DN = np.array([2.5, 5.0, 3.0, 1.5]), np.array([1.8, 5.2, 2.8, 0.9])
BKG = np.array([50.0, 30.0, 10.0, 2.0])
BKG_VAR = np.array([4.0, 9.0, 4.0, 1.69])
BKG_UP, BKG_DN = np.array([55.0, 31.0, 9.0, 2.0]), np.array([46.0, 29.0, 11.0, 2.2])
BKG_BUP, BKG_BDN = np.array([52.0, 30.0, 10.0, 1.8]), np.array([48.0, 31.0, 10.5, 2.1])
SIG_VAR = np.array([0.04, 0.25, 0.16, 2.0])
DATA = np.array([55.0, 33.0, 12.0, 3.0])

SHAPE_CARD = """\
imax 1
jmax 1
kmax *
shapes * * shapes.root $CHANNEL/$PROCESS $CHANNEL/$PROCESS_$SYSTEMATIC
bin sr
observation -1
bin     sr  sr
process sig bkg
process 0   1
rate    -1  60.0
lumi  lnN    1.02 1.02
alpha shape  1    1
beta  shapeN -    1
kbkg  rateParam sr bkg 1 [0,5]
sr autoMCStats {threshold}
"""


@pytest.fixture
def shape_card(tmp_path):
    with __import__("uproot").recreate(tmp_path / "shapes.root") as f:
        for name, counts, var in [
            ("sig", SIG, SIG_VAR), ("sig_alphaUp", SIG_UP, None), ("sig_alphaDown", SIG_DN, None),
            ("bkg", BKG, BKG_VAR), ("bkg_alphaUp", BKG_UP, None), ("bkg_alphaDown", BKG_DN, None),
            ("bkg_betaUp", BKG_BUP, None), ("bkg_betaDown", BKG_BDN, None), ("data_obs", DATA, DATA),
        ]:  # fmt: skip
            f[f"sr/{name}"] = th1(name, counts, var, EDGES)

    def make(threshold):
        return write(
            tmp_path, SHAPE_CARD.format(threshold=threshold), f"shape{threshold}.txt"
        )

    return make


def shape_yields(v, bb):
    """Expected yields of the shape card; ``bb`` adds the autoMCStats terms."""
    r, lumi, alpha, beta, kbkg = v["r"], v["lumi"], v["alpha"], v["beta"], v["kbkg"]
    sig_n = SIG
    sig_shape = vertical_morph(
        alpha,
        sig_n,
        SIG_UP * sig_n.sum() / SIG_UP.sum(),
        SIG_DN * sig_n.sum() / SIG_DN.sum(),
    )
    sig_norm = asym_lognormal(alpha, SIG_DN.sum() / SIG.sum(), SIG_UP.sum() / SIG.sum())
    bkg_n = BKG * 60.0 / BKG.sum()
    bkg_shape = vertical_morph(
        alpha, bkg_n, BKG_UP * 60.0 / BKG_UP.sum(), BKG_DN * 60.0 / BKG_DN.sum()
    )
    bkg_norm = asym_lognormal(alpha, BKG_DN.sum() / BKG.sum(), BKG_UP.sum() / BKG.sum())
    # shapeN: morph log(template / nominal), exponentiate, keep the nominal sum
    lh, ll = (
        np.log(BKG_BUP / BKG_BUP.sum() * BKG.sum() / BKG),
        np.log(BKG_BDN / BKG_BDN.sum() * BKG.sum() / BKG),
    )
    delta = 0.5 * beta * ((lh - ll) + (lh + ll) * smooth_step(beta))
    ratio = np.exp(delta) * bkg_n.sum() / np.sum(bkg_n * np.exp(delta))
    beta_norm = asym_lognormal(
        beta, BKG_BDN.sum() / BKG.sum(), BKG_BUP.sum() / BKG.sum()
    )
    sig_add, bkg_add, gamma = bb(v)
    sig_y = (np.maximum(sig_shape, 0) + sig_add) * 1.02**lumi * sig_norm * r * gamma
    bkg_y = (
        (np.maximum(bkg_shape, 0) + bkg_add)
        * ratio
        * 1.02**lumi
        * bkg_norm
        * beta_norm
        * kbkg
        * gamma
    )
    return sig_y, bkg_y


def test_shape_card_bb_lite(shape_card):
    """Threshold 0: every bin has a single Barlow-Beeston-lite parameter."""
    ws = read_datacard(shape_card(0))
    model = ws.model()
    data = ws.data(model)
    assert data[:4] == DATA.tolist()
    bkg_err = np.sqrt(BKG_VAR) * 60.0 / BKG.sum()
    delta = np.sqrt(SIG_VAR + bkg_err**2) / (
        SIG + BKG * 60 / BKG.sum()
    )  # relative error per bin

    def bb(v):
        return 0.0, 0.0, v["prop_binsr"]

    rng = np.random.default_rng(5)
    cfg = model.config
    for _ in range(5):
        pars = np.array(cfg.suggested_init()) + 0.3 * rng.normal(size=cfg.npars)
        v = values_of(model, pars)
        v = {
            k: (x[0] if x.size == 1 and k != "prop_binsr" else x) for k, x in v.items()
        }
        sig_y, bkg_y = shape_yields(v, bb)
        want = pois(DATA, sig_y + bkg_y).sum()
        want += gauss(0, v["lumi"]) + gauss(0, v["alpha"]) + gauss(0, v["beta"])
        want += gauss(1.0, v["prop_binsr"], delta).sum()
        np.testing.assert_allclose(model.logpdf(pars, data)[0], want, rtol=1e-10)


def test_shape_card_per_process_terms_below_threshold(shape_card):
    """Threshold 1000: per-process parameters, Poisson (n_eff <= threshold) or Gaussian."""
    ws = read_datacard(shape_card(1000))
    model = ws.model()
    data = ws.data(model)
    names = model.config.par_order
    bkg_err = np.sqrt(BKG_VAR) * 60.0 / BKG.sum()
    bkg_n = BKG * 60.0 / BKG.sum()
    n_eff = np.floor(0.5 + bkg_n**2 / bkg_err**2)
    # signal bin 3: error > content -> additive Gaussian; other signal bins and all
    # background bins: Poisson with tau = n_eff (rounded)
    sig_eff = np.floor(0.5 + SIG**2 / SIG_VAR)
    assert "prop_binsr_bin3_sig" in names
    assert "prop_binsr_sig" in names
    assert "prop_binsr_bkg" in names

    def bb(v):
        sig_add = np.zeros(4)
        sig_add[3] = v["prop_binsr_bin3_sig"] * math.sqrt(SIG_VAR[3])
        return sig_add, 0.0, 1.0

    cfg = model.config
    rng = np.random.default_rng(8)
    for _ in range(5):
        init = np.array(cfg.suggested_init())
        pars = np.where(
            cfg.suggested_fixed(), init, init + 0.2 * rng.normal(size=cfg.npars)
        )
        pars = np.where(
            [n.startswith("prop_binsr_") and "[" in n for n in cfg.par_names],
            np.abs(pars),
            pars,
        )
        v = values_of(model, pars)
        gs, gb = v["prop_binsr_sig"], v["prop_binsr_bkg"]
        v = {k: (x[0] if x.size == 1 else x) for k, x in v.items()}
        sig_y, bkg_y = shape_yields(v, bb)
        sig_y = sig_y * np.array([gs[0], gs[1], gs[2], 1.0])
        bkg_y = bkg_y * gb
        want = pois(DATA, sig_y + bkg_y).sum()
        want += (
            gauss(0, v["lumi"])
            + gauss(0, v["alpha"])
            + gauss(0, v["beta"])
            + gauss(0, v["prop_binsr_bin3_sig"])
        )
        want += sum(
            stats.poisson.logpmf(sig_eff[j], gs[j] * sig_eff[j]) for j in range(3)
        )
        want += sum(stats.poisson.logpmf(n_eff[j], gb[j] * n_eff[j]) for j in range(4))
        # the signal's bin 3 has no Poisson term: its gamma is fixed at 1, and the
        # HistFactory convention (pyhf) keeps a constant Pois(1 | 1) for it
        assert gs[3] == 1.0
        want += stats.poisson.logpmf(1, 1.0)
        np.testing.assert_allclose(model.logpdf(pars, data)[0], want, rtol=1e-10)


def test_scaled_shape_systematic(tmp_path):
    """'shape 0.5': the nuisance is halved before morphing, kappas are raised to 0.5."""
    with __import__("uproot").recreate(tmp_path / "s.root") as f:
        for name, counts in [("a/sig", SIG), ("a/sig_wUp", SIG_UP), ("a/sig_wDown", SIG_DN),
                             ("a/bkg", BKG), ("a/data_obs", DATA)]:  # fmt: skip
            f[name] = th1(name, counts)
    card = (
        "imax 1\njmax 1\nkmax 1\nshapes * a s.root a/$PROCESS a/$PROCESS_$SYSTEMATIC\n"
        "bin a\nobservation 103\nbin a a\nprocess sig bkg\nprocess 0 1\nrate -1 -1\nw shape 0.5 -\n"
    )
    ws = read_datacard(write(tmp_path, card))
    model = ws.model()
    data = ws.data(model)
    for w in (-2.5, -0.6, 0.3, 1.7):
        pars = (
            np.array([1.4, w])
            if model.config.par_names == ["r", "w"]
            else np.array([w, 1.4])
        )
        x = 0.5 * w
        shape = vertical_morph(
            x,
            SIG,
            SIG_UP * SIG.sum() / SIG_UP.sum(),
            SIG_DN * SIG.sum() / SIG_DN.sum(),
            region=0.5,
        )
        norm = asym_lognormal(
            w, (SIG_DN.sum() / SIG.sum()) ** 0.5, (SIG_UP.sum() / SIG.sum()) ** 0.5
        )
        want = pois(DATA, 1.4 * norm * np.maximum(shape, 0) + BKG).sum() + gauss(0, w)
        np.testing.assert_allclose(model.logpdf(pars, data)[0], want, rtol=1e-11)


# ------------------------------------------------------------------ published limits
REALISTIC = """\
# Combine tutorial card data/tutorials/counting/realistic-counting-experiment.txt,
# written from its text on cms-analysis.github.io/HiggsAnalysis-CombinedLimit
# (part2/settinguptheanalysis, "A simple counting experiment")
imax 1  number of channels
jmax 3  number of backgrounds
kmax 5  number of nuisance parameters
------------
bin bin1
observation 0
------------
bin             bin1 bin1  bin1  bin1
process         ggH  qqWW  ggWW  others
process          0     1     2     3
rate           1.47  0.64  0.06  0.22
------------
lumi    lnN    1.11    -   1.11    -    lumi affects both signal and gg->WW
xs_ggH  lnN    1.16    -     -     -    gg->H cross section + signal efficiency
WW_norm gmN 4    -   0.16    -     -    4 sideband events times 0.16
xs_ggWW lnN      -     -   1.50    -    50% uncertainty on gg->WW cross section
bg_others lnN    -     -     -   1.30   30% uncertainty on the rest of the backgrounds
"""


def test_realistic_counting_experiment_limits_match_combine_docs(tmp_path):
    """Combine's published AsymptoticLimits output for this card
    (part3/commonstatsmethods, "Asymptotic Frequentist Limits"):
    observed 1.6281; expected 0.9640, 1.4329, 2.3281, 3.9800, 6.6194.
    Combine stops its search at 0.5 % relative accuracy (rRelAcc); the -2/+2
    sigma edges agree to 1 and 2 %."""
    from hepprob import infer

    ws = read_datacard(write(tmp_path, REALISTIC))
    model = ws.model()
    obs, expected = infer.upper_limit(ws.data(model), model)
    np.testing.assert_allclose(obs, 1.6281, rtol=5e-3)
    np.testing.assert_allclose(
        np.asarray(expected)[1:4], [1.4329, 2.3281, 3.9800], rtol=5e-3
    )
    np.testing.assert_allclose(
        np.asarray(expected)[[0, 4]], [0.9640, 6.6194], rtol=2e-2
    )


# ------------------------------------------------------------------ errors
BASE = "imax 1\njmax 1\nkmax *\nbin a\nobservation 5\nbin a a\nprocess s b\nprocess 0 1\nrate 1 4\n"


@pytest.mark.parametrize(
    ("text", "line", "match"),
    [
        (
            BASE.replace("rate 1 4", "rate 1"),
            9,
            "the rate line has 1 columns, the bin line 2",
        ),
        (BASE.replace("imax 1", "imax 2"), 1, "imax 2 but the card has 1 channels"),
        (
            BASE.replace("jmax 1", "jmax 3"),
            2,
            "jmax 3 but the card has 1 processes minus one",
        ),
        (
            BASE.replace("process 0 1", "process 1 1"),
            8,
            r"no signal process \(id <= 0\)",
        ),
        (
            BASE.replace("observation 5", "observation x"),
            5,
            "an observation must be a number",
        ),
        (BASE + "k lnN 1.1\n", 10, r"1 values for 2 \(bin, process\) columns"),
        (BASE + "k lnN 1.1 -0.2\n", 10, r"negative value -0.2 for \(a, b\)"),
        (
            BASE + "k gmN x - 0.5\n",
            10,
            "gmN needs the number of control-region events N",
        ),
        (
            BASE + "k gmN 4 - 0.5\n",
            10,
            r"gmN 4 with alpha 0.5 gives 2 events, but the rate of \(a, b\) is 4",
        ),
        (BASE + "k foo 1 1\n", 10, "unknown systematic type 'foo'"),
        (BASE + "k rateParam a zz 1\n", 10, "match no column of the card"),
        (
            BASE + "k rateParam a b (@0*@1) q\n",
            10,
            "argument 'q' is not a parameter of the card",
        ),
        (
            BASE + "x extArg 1\nk rateParam a b (__import__(@0)) x\n",
            11,
            "is not allowed",
        ),
        (
            BASE + "k param 0 1\n",
            10,
            "param 'k' names no lnN/shape nuisance or rateParam",
        ),
        (
            BASE + "k lnN 1.1 -\nk param 0 2\n",
            11,
            "a width other than 1 for an lnN/shape nuisance",
        ),
        (
            BASE + "nuisance edit rename a b c d\n",
            10,
            "'nuisance edit' lines are not supported",
        ),
        (
            BASE + "a autoMCStats 10\n",
            10,
            "autoMCStats on channel 'a' needs TH1 templates",
        ),
        (
            BASE + "k lnU 1.5 -\nk2 lnN 1.1 -\nk lnN 1.2 -\n",
            12,
            "systematic 'k' is defined twice",
        ),
        (BASE + "g group = k\n", 1, r"group 'g' names unknown parameters \['k'\]"),
        (
            "imax 1\nshapes * * nofile.root $PROCESS\n" + BASE[7:],
            2,
            "cannot open ROOT file",
        ),
        ("imax 1\nbin a\nobservation 2\n", 3, "no 'rate' line"),
    ],
)
def test_bad_cards_name_file_and_line(tmp_path, text, line, match):
    path = write(tmp_path, text)
    with pytest.raises(SpecError, match=match) as info:
        read_datacard(path)
    assert str(info.value).startswith(f"{path}:{line}: ")


def test_missing_systematic_template(shape_card, tmp_path):
    path = shape_card(0)
    text = (
        pathlib.Path(path)
        .read_text()
        .replace("beta  shapeN -    1", "gamma shape -  1")
    )
    bad = write(tmp_path, text, "bad.txt")
    with pytest.raises(
        SpecError, match=r"bad.txt:13: no gammaUp template for \(sr, bkg\)"
    ):
        read_datacard(bad)
