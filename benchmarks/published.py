"""Published-likelihood workloads: hepprob vs pyhf (numpy, jax), first calls, one run.

Plain script::

    python benchmarks/published.py [--size big] [--patches 125] [--scan-ref 10]
        [--workspace BkgOnly.json --patch patch.json]

On a workspace shaped like a published ATLAS search likelihood
(``tests/published_like.py``; or your own ``--workspace``/``--patch``), every
timing is a fresh process, wall clock:

* ``cls``: ``hepprob cls WS --patch P`` (empty compilation cache, then the
  cache filled) against ``pyhf cls WS --patch P`` with the numpy and the jax
  backend;
* ``first fit``: ``infer.mle.fit`` on the patched model in a new process, after
  the imports and the model build (hepprob vs pyhf-jax and pyhf-numpy);
* ``patchset scan``: ``hepprob cls WS --patchset PS`` over ``--patches``
  patches (empty cache) against pyhf-jax's ``hypotest`` over the first
  ``--scan-ref`` patches in one process (a new model per patch), scaled to
  the same number of patches.

Ratios are pyhf time / hepprob time (> 1: hepprob faster).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

FIT = """
import json, sys, time
backend = sys.argv[3]
if backend == "hepprob":
    import hepprob
    from hepprob.histfactory import Workspace
    from hepprob.infer import mle
    ws = Workspace(json.load(open(sys.argv[1])))
    model = ws.model(patches=[json.load(open(sys.argv[2]))])
    fit = mle.fit
else:
    import pyhf
    pyhf.set_backend(backend)
    ws = pyhf.Workspace(json.load(open(sys.argv[1])))
    model = ws.model(patches=[json.load(open(sys.argv[2]))])
    fit = pyhf.infer.mle.fit
data = ws.data(model)
t = time.perf_counter()
fit(data, model)
print(json.dumps({"fit": time.perf_counter() - t}))
"""

PYHF_SCAN = """
import json, sys, time
import pyhf
pyhf.set_backend(sys.argv[3])
ws = pyhf.Workspace(json.load(open(sys.argv[1])))
ps = json.load(open(sys.argv[2]))
n = int(sys.argv[4])
t = time.perf_counter()
for p in ps["patches"][:n]:
    model = ws.model(patches=[p["patch"]])
    pyhf.infer.hypotest(1.0, ws.data(model), model, return_expected_set=True)
print(json.dumps({"scan": time.perf_counter() - t}))
"""


def _run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    t = time.perf_counter()
    out = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return time.perf_counter() - t, out.stdout


def _inline(code: str, *args: str, env: dict[str, str] | None = None) -> dict:
    _, out = _run([sys.executable, "-c", code, *args], env)
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="big")
    parser.add_argument("--patches", type=int, default=125)
    parser.add_argument("--scan-ref", type=int, default=10)
    parser.add_argument("--workspace")
    parser.add_argument("--patch")
    args = parser.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="hepprob_published_"))
    import published_like

    if args.workspace:
        ws_file, patch_file = pathlib.Path(args.workspace), pathlib.Path(args.patch)
        ps_file = None
    else:
        spec = published_like.workspace(args.size)
        ps = published_like.patchset(spec, args.patches, args.size)
        ws_file, patch_file, ps_file = (
            tmp / "bkg.json",
            tmp / "patch.json",
            tmp / "ps.json",
        )
        ws_file.write_text(json.dumps(spec))
        patch_file.write_text(json.dumps(ps["patches"][0]["patch"]))
        ps_file.write_text(json.dumps(ps))
    cache = tmp / "cache"
    cold = {"HEPPROB_COMPILATION_CACHE": str(cache), "HEPPROB_PROGRESS": "0"}
    rows = []
    hep_cold, _ = _run(
        ["hepprob", "cls", str(ws_file), "--patch", str(patch_file)], cold
    )
    hep_warm, _ = _run(
        ["hepprob", "cls", str(ws_file), "--patch", str(patch_file)], cold
    )
    peers = {}
    for backend in ("numpy", "jax"):
        peers[backend], _ = _run(
            [
                "pyhf",
                "cls",
                str(ws_file),
                "--patch",
                str(patch_file),
                "--backend",
                backend,
            ]
        )
    rows.append(("cls, fresh process (empty cache)", hep_cold, peers))
    rows.append(("cls, fresh process (cache filled)", hep_warm, peers))
    off = {"HEPPROB_COMPILATION_CACHE": "off"}
    fit_h = _inline(FIT, str(ws_file), str(patch_file), "hepprob", env=off)["fit"]
    fits = {
        b: _inline(FIT, str(ws_file), str(patch_file), b)["fit"]
        for b in ("numpy", "jax")
    }
    rows.append(("first fit (after model build)", fit_h, fits))
    if ps_file is not None:
        scan_cache = {
            "HEPPROB_COMPILATION_CACHE": str(tmp / "scan_cache"),
            "HEPPROB_PROGRESS": "0",
        }
        hep_scan, _ = _run(
            ["hepprob", "cls", str(ws_file), "--patchset", str(ps_file)], scan_cache
        )
        k = min(args.scan_ref, args.patches)
        ref = _inline(PYHF_SCAN, str(ws_file), str(ps_file), "jax", str(k))["scan"]
        rows.append(
            (f"patchset scan, {args.patches} patches", hep_scan,
             {"jax": ref * args.patches / k})
        )  # fmt: skip
    print(f"{'task':38s} {'hepprob (s)':>12s} {'pyhf numpy (s)':>15s} {'ratio':>7s} "
          f"{'pyhf jax (s)':>13s} {'ratio':>7s}")  # fmt: skip
    for name, ours, theirs in rows:
        cells = []
        for b in ("numpy", "jax"):
            v = theirs.get(b)
            cells.append(
                "n/a".rjust(15) + " " * 8
                if v is None
                else f"{v:15.1f} {v / ours:6.1f}x"
            )
        print(f"{name:38s} {ours:12.1f} {cells[0]} {cells[1]}")


if __name__ == "__main__":
    main()
