#!/usr/bin/env python3
"""jetpipe data-samples generator (CLI).

Modes:
  qg      Pythia 8 Z(->nu nu)+jet events, leading anti-kt R=0.4 jet imaged by a toy
          CMS detector -> CMS E2E quark/gluon HDF5 (X_jets, m0, pt, y).
  egamma  parametric single electron / photon ECAL showers -> ML4Sci e/gamma
          HDF5 (X (N,32,32,2) [energy, time], y).
  bench   large benchmark file made by resampling the jets of an existing
          qg file with random eta/phi reflections (no Pythia), streamed.

Every option has a documented default (``generate.py MODE --help``).  With the
same --seed and options a file is reproduced byte for byte, independently of
--workers.  See ../README.md for the commands that made the committed files.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import detector  # noqa: E402
import physics  # noqa: E402


def _add_common(p, seed=1):
    p.add_argument("--out", required=True, help="output HDF5 path")
    p.add_argument("--n", type=int, required=True, help="number of jets/showers (even: classes are balanced)")
    p.add_argument("--seed", type=int, default=seed, help="master random seed (default %(default)s)")
    p.add_argument("--gzip", type=int, default=4, choices=range(0, 10), metavar="0-9",
                   help="gzip level of the image dataset, 0 = uncompressed (default %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    d = argparse.ArgumentDefaultsHelpFormatter

    q = sub.add_parser("qg", help="quark/gluon jet images (Pythia 8 + FastJet + toy detector)", formatter_class=d)
    _add_common(q)
    q.add_argument("--workers", type=int, default=1, help="worker processes (does not change the output)")
    q.add_argument("--block-size", type=int, default=100,
                   help="accepted jets per class per seeded block (changes the output)")
    q.add_argument("--meta", default="auto",
                   help="per-jet truth CSV sidecar; 'auto' = <out without .h5>_truth.csv, 'none' = off")
    P = physics.PhysicsConfig()
    q.add_argument("--ecm", type=float, default=P.ecm, help="pp centre-of-mass energy, GeV")
    q.add_argument("--pt-min", type=float, default=P.pt_min, help="leading-jet pT lower edge, GeV")
    q.add_argument("--pt-max", type=float, default=P.pt_max, help="leading-jet pT upper edge, GeV")
    q.add_argument("--eta-max", type=float, default=P.eta_max, help="leading-jet |eta| limit")
    q.add_argument("--jet-r", type=float, default=P.jet_r, help="anti-kt radius")
    q.add_argument("--pthat-min", type=float, default=None, help="PhaseSpace:pTHatMin (default 0.8*pt-min)")
    q.add_argument("--pthat-max", type=float, default=None, help="PhaseSpace:pTHatMax (default 1.2*pt-max)")
    q.add_argument("--pileup", type=float, default=P.pileup,
                   help="mean number of overlaid minimum-bias events (Poisson); 0 = none")
    q.add_argument("--no-mpi", action="store_true", help="switch off multiparton interactions")
    q.add_argument("--no-hadronisation", action="store_true", help="switch off hadronisation")
    q.add_argument("--pythia", action="append", default=[], metavar="'Key = value'",
                   help="extra Pythia setting (repeatable)")
    D = detector.DetectorConfig()
    for name, help_ in [
        ("bfield", "solenoid field, T (0 = no bending)"),
        ("r_ecal", "ECAL front radius, m"),
        ("r_hcal", "HCAL front radius, m"),
        ("track_pt_min", "track pT threshold, GeV"),
        ("track_eta_max", "tracker |eta| acceptance"),
        ("track_res", "relative track pT resolution"),
        ("ecal_stoch", "ECAL stochastic term, GeV^1/2"),
        ("ecal_noise", "ECAL noise term, GeV"),
        ("ecal_const", "ECAL constant term"),
        ("ecal_spread", "ECAL lateral profile scale, crystals"),
        ("ecal_threshold", "ECAL pixel zero-suppression, GeV"),
        ("hcal_stoch", "HCAL stochastic term, GeV^1/2"),
        ("hcal_const", "HCAL constant term"),
        ("hcal_threshold", "HCAL tower zero-suppression, GeV"),
    ]:
        q.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(D, name), help=help_)

    e = sub.add_parser("egamma", help="electron vs photon 32x32x2 [energy, time] showers", formatter_class=d)
    _add_common(e)
    import egamma
    egamma.add_arguments(e)

    b = sub.add_parser("bench", help="large file by resampling + reflecting jets of a qg file", formatter_class=d)
    b.add_argument("--input", required=True, help="source qg HDF5 file (e.g. qg_sample.h5)")
    b.add_argument("--out", required=True, help="output HDF5 path")
    b.add_argument("--n", type=int, default=139306, help="number of jets (139306 = the real file)")
    b.add_argument("--seed", type=int, default=1, help="random seed")
    b.add_argument("--gzip", type=int, default=4, choices=range(0, 10), metavar="0-9", help="gzip level")
    b.add_argument("--block", type=int, default=4096, help="jets per streamed block")
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.mode == "qg":
        import qg
        phys = physics.PhysicsConfig(
            ecm=args.ecm, pt_min=args.pt_min, pt_max=args.pt_max, eta_max=args.eta_max,
            jet_r=args.jet_r, pthat_min=args.pthat_min, pthat_max=args.pthat_max,
            mpi=not args.no_mpi, pileup=args.pileup, hadronisation=not args.no_hadronisation, extra=tuple(args.pythia))
        det = detector.DetectorConfig(**{k: getattr(args, k) for k in detector.DetectorConfig.__dataclass_fields__})
        meta = args.meta
        if meta == "auto":
            meta = (args.out[:-3] if args.out.endswith(".h5") else args.out) + "_truth.csv"
        elif meta == "none":
            meta = None
        qg.generate(args.out, args.n, args.seed, args.block_size, max(1, args.workers), args.gzip,
                    phys, det, meta_path=meta)
    elif args.mode == "egamma":
        import egamma
        egamma.generate(args)
    elif args.mode == "bench":
        import bench
        bench.generate(args.input, args.out, args.n, args.seed, args.gzip, args.block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
