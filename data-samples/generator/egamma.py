"""egamma mode: parametric single electron / photon showers in a 32x32 ECAL crop.

Schema (ML4Sci e/gamma): X float32 (N, 32, 32, 2) [energy (GeV), time (ns)],
y float32 (N,) with y = 1 electron, y = 0 photon; rows = eta, columns = phi,
one pixel = one ECAL crystal (0.0174).  Classes exactly balanced, shuffled.

Model (every number is a CLI option):
  * energy uniform in [e_min, e_max] GeV, |eta| uniform below eta_max (barrel),
    charge +-1 at random for electrons.
  * tracker material of x0 radiation lengths spread uniformly in radius up to
    the ECAL (R = 1.29 m, B = 3.8 T).  Charged tracks are stepped in the
    transverse plane (1 cm steps): they bend (radius pT/(0.3 B)) and radiate
    bremsstrahlung photons with dN/dz = (4/3)/z per X0, z in [z_min, 1]; each
    photon flies straight on from where it was emitted.  Electrons thus end
    up with a brems tail along phi.
  * photons convert with probability 1 - exp(-7/9 x0) at a uniform radius;
    the e+ e- pair (flat energy sharing) is then stepped like electrons, so a
    converted photon gives two (or more) displaced / spread deposits.
  * each deposit: energy smeared with 2.8 %/sqrt(E) (+) 0.12/E (+) 0.3 %,
    shared over a 7x7 window with a core+halo lateral profile (double
    exponentials, scales 0.2 and 1.0 crystals, halo fraction 8 %) integrated
    from the exact impact point; per-crystal Gaussian noise (40 MeV) on every
    crystal, zero-suppressed below 0.1 GeV (so a few isolated noise hits).
  * time: pixels with energy get t = t0 + N(0, sigma_t), sigma_t = 0.4 ns GeV / E
    (+) 0.07 ns, t0 ~ N(0, 0.1 ns) per shower; pixels without energy are 0.
  * the crop is centred on the most energetic crystal (at row/column 16).
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np

import h5io

NPIX = 32
CANVAS = 96
PIX = 0.0174
ELECTRON, PHOTON = 1, 0


def add_arguments(p) -> None:
    p.add_argument("--e-min", type=float, default=10.0, help="minimum particle energy, GeV")
    p.add_argument("--e-max", type=float, default=100.0, help="maximum particle energy, GeV")
    p.add_argument("--eta-max", type=float, default=1.44, help="|eta| range (ECAL barrel)")
    p.add_argument("--x0", type=float, default=0.5, help="tracker material in front of the ECAL, X0")
    p.add_argument("--z-min", type=float, default=0.02, help="smallest brems energy fraction")
    p.add_argument("--bfield", type=float, default=3.8, help="solenoid field, T")
    p.add_argument("--r-ecal", type=float, default=1.29, help="ECAL radius, m")
    p.add_argument("--core", type=float, default=0.2, help="core lateral profile scale, crystals")
    p.add_argument("--halo", type=float, default=1.0, help="halo lateral profile scale, crystals")
    p.add_argument("--halo-frac", type=float, default=0.08, help="fraction of a deposit in the halo")
    p.add_argument("--noise", type=float, default=0.04, help="per-crystal noise sigma, GeV")
    p.add_argument("--threshold", type=float, default=0.1, help="pixel zero-suppression, GeV")
    p.add_argument("--time-noise", type=float, default=0.4, help="time resolution noise term, ns*GeV")
    p.add_argument("--time-const", type=float, default=0.07, help="time resolution constant term, ns")


def _cdf(x, b):
    return np.where(x < 0, 0.5 * np.exp(np.minimum(x, 0) / b), 1.0 - 0.5 * np.exp(-np.maximum(x, 0) / b))


def _axis_fracs(off, a):
    k = np.arange(-3, 5) - 0.5  # 8 edges -> 7 cells
    return np.diff(_cdf(k - off, a.core)), np.diff(_cdf(k - off, a.halo))


def _deposit(img, u, v, e, a):
    r, c = int(math.floor(u)), int(math.floor(v))
    cu, wu = _axis_fracs(u - r - 0.5, a)
    cv, wv = _axis_fracs(v - c - 0.5, a)
    w = (1 - a.halo_frac) * np.outer(cu, cv) + a.halo_frac * np.outer(wu, wv)
    w /= w.sum()
    r0, c0 = r - 3, c - 3
    if r0 < 0 or c0 < 0 or r0 + 7 > img.shape[0] or c0 + 7 > img.shape[1]:
        return
    img[r0:r0 + 7, c0:c0 + 7] += e * w


def _track(rng, a, e, charge, r_start, phi_start, dirn, pt_over_e, deposits):
    """Step a charged track from radius r_start to the ECAL; append (phi, E) deposits."""
    x, y = r_start * math.cos(phi_start), r_start * math.sin(phi_start)
    step = 0.01
    rate = (4.0 / 3.0) * math.log(1.0 / a.z_min) * a.x0 / a.r_ecal  # photons per metre
    for _ in range(int(4 * a.r_ecal / step)):  # bound: a track reaching the ECAL needs < 2R/step
        if x * x + y * y >= a.r_ecal ** 2:
            deposits.append((math.atan2(y, x), e))
            return
        pt = e * pt_over_e
        if pt < 0.3 * a.bfield * a.r_ecal / 2.0:
            return  # too soft to reach the ECAL radius: curls up, lost
        dirn -= charge * step * 0.3 * a.bfield / max(pt, 1e-6)
        x += step * math.cos(dirn)
        y += step * math.sin(dirn)
        if rng.random() < rate * step:
            z = a.z_min ** (1.0 - rng.random())
            eg = z * e
            e -= eg
            deposits.append((_straight_to(x, y, dirn, a.r_ecal), eg))


def _straight_to(x, y, dirn, radius):
    dx, dy = math.cos(dirn), math.sin(dirn)
    b = x * dx + y * dy
    c = x * x + y * y - radius * radius
    s = -b + math.sqrt(max(b * b - c, 0.0))
    return math.atan2(y + s * dy, x + s * dx)


def make_shower(rng: np.random.Generator, label: int, a) -> np.ndarray:
    energy = rng.uniform(a.e_min, a.e_max)
    eta = rng.uniform(-a.eta_max, a.eta_max)
    pt_over_e = 1.0 / math.cosh(eta)
    deposits = []  # (phi at ECAL, energy); the particle flies along phi = 0
    if label == ELECTRON:
        charge = 1.0 if rng.random() < 0.5 else -1.0
        _track(rng, a, energy, charge, 0.0, 0.0, 0.0, pt_over_e, deposits)
    else:
        if rng.random() < 1.0 - math.exp(-7.0 / 9.0 * a.x0):
            rc = rng.uniform(0.0, a.r_ecal)
            z = rng.random()
            for q, ee in ((1.0, z * energy), (-1.0, (1 - z) * energy)):
                _track(rng, a, ee, q, rc, 0.0, 0.0, pt_over_e, deposits)
        else:
            deposits.append((0.0, energy))
    canvas = np.zeros((CANVAS, CANVAS))
    u0 = CANVAS / 2 + rng.uniform(-0.5, 0.5)
    v0 = CANVAS / 2 + rng.uniform(-0.5, 0.5)
    for phi, e in deposits:
        sigma = math.sqrt(0.028 ** 2 * e + 0.12 ** 2 + (0.003 * e) ** 2)
        em = max(e + sigma * rng.standard_normal(), 0.0)
        _deposit(canvas, u0, v0 + phi / PIX, em, a)
    canvas += a.noise * rng.standard_normal(canvas.shape)
    canvas[canvas < a.threshold] = 0.0
    r, c = np.unravel_index(int(np.argmax(canvas)), canvas.shape)
    r = min(max(r, NPIX // 2), CANVAS - NPIX // 2)
    c = min(max(c, NPIX // 2), CANVAS - NPIX // 2)
    en = canvas[r - NPIX // 2:r + NPIX // 2, c - NPIX // 2:c + NPIX // 2]
    t0 = 0.1 * rng.standard_normal()
    with np.errstate(divide="ignore"):
        st = np.sqrt((a.time_noise / np.where(en > 0, en, 1.0)) ** 2 + a.time_const ** 2)
    t = np.where(en > 0, t0 + st * rng.standard_normal(en.shape), 0.0)
    return np.stack([en, t], axis=-1).astype(np.float32)


def generate(a, log=sys.stderr) -> None:
    n = a.n
    if n <= 0 or n % 2:
        raise SystemExit("--n must be a positive even number (classes are exactly balanced)")
    t0 = time.time()
    half = n // 2
    labels = np.array([ELECTRON] * half + [PHOTON] * half)
    order = np.random.default_rng(np.random.SeedSequence(a.seed, spawn_key=(2,))).permutation(n)
    X = np.zeros((n, NPIX, NPIX, 2), np.float32)
    y = labels[order].astype(np.float32)
    for i in range(n):
        j = int(order[i])  # unshuffled index -> its own seed, independent of the rest
        rng = np.random.default_rng(np.random.SeedSequence(a.seed, spawn_key=(1, j)))
        X[i] = make_shower(rng, int(labels[j]), a)
    with h5io.open_new(a.out) as f:
        d = h5io.image_dataset(f, "X", X.shape, a.gzip)
        d[...] = X
        h5io.vector_dataset(f, "y", y)
    dt = time.time() - t0
    print(f"wrote {a.out}: {n} showers in {dt:.1f} s ({n / dt:.1f}/s)", file=log)
