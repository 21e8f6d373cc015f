#!/usr/bin/env python3
"""Markdown tables of `pipeline generate` / `pipeline reconstruct` metrics.json files, as
docs/generative.md prints them: `python3 docs/generative/tables.py gen/metrics.json
recon/metrics.json`. Per set: mean W1/σ and separation power over the observables, the
Fréchet distance and the two-sample AUC; reconstructions add the pixel MSE of log(1 + E)
and the per-channel energy bias and resolution (tracks / ECAL / HCAL). Then one table per
observable of every generated set in the files given (W1/σ / separation power)."""
import json
import sys


def channels(v):
    return " / ".join(f"{x:+.2f}" if abs(x) >= 0.005 else f"{abs(x):.2f}" for x in v)


def table(path):
    m = json.load(open(path))
    recon = m["kind"] == "reconstruct"
    head = "| set | W1/σ (mean) | separation power | Fréchet | two-sample AUC |"
    if recon:
        head += " pixel MSE log(1+E) | energy bias tracks/ECAL/HCAL | energy resolution |"
    print(f"{m['kind']}: {m['real_jets']} real test jets, sampler {m['sampler']}, "
          f"guidance {m['guidance']}\n")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name, s in m["sets"].items():
        d = s["distribution"]
        row = (f"| {name} | {d['mean_w1_over_sd']:.3g} | {d['mean_separation_power']:.3f} | "
               f"{d['frechet']:,.4g} | {d['two_sample_auc']:.3f} |")
        r = s.get("reconstruction")
        if recon and r:
            row += (f" {r['pixel_mse']:.3g} | {channels(r['energy_bias'])} | "
                    f"{' / '.join(f'{x:.2f}' for x in r['energy_resolution'])} |")
        elif recon:
            row += " | | |"
        print(row)
    print()


def observables(paths):
    sets = {}
    for p in paths:
        m = json.load(open(p))
        if m["kind"] == "generate":
            sets.update({k: v["distribution"] for k, v in m["sets"].items()})
    if not sets:
        return
    names = list(sets)
    print("per observable, generation: W1/σ / separation power\n")
    print("| observable | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for o in next(iter(sets.values()))["w1_over_sd"]:
        cells = (f"{sets[n]['w1_over_sd'][o]:.2f} / {sets[n]['separation_power'][o]:.2f}"
                 for n in names)
        print(f"| {o} | " + " | ".join(cells) + " |")
    print()


for p in sys.argv[1:]:
    table(p)
observables(sys.argv[1:])
