"""Toy CMS detector: turns one event's visible particles into a 125x125x3 jet image.

Image: centred on the jet axis, rows = eta, columns = phi, pixel = one ECAL
barrel crystal (0.0174 x 0.0174).  Pixel (62, 62) contains the jet axis.
Channels (all GeV, float32, never negative or NaN):

  0 Tracks  pT of charged particles with pT > track_pt_min and |eta| < 2.5,
            smeared by a relative Gaussian track_res (1 %).
  1 ECAL    energy of photons and electrons, smeared per particle with
            sigma/E = a/sqrt(E) (+) b/E (+) c   (2.8 %, 0.12 GeV noise, 0.3 %),
            clipped at 0, then shared over the 3x3 crystals around the impact
            point with a compact lateral profile (double exponential, scale
            ecal_spread crystals, integrated over each crystal from the exact
            sub-crystal impact point), then zero-suppressed per pixel.
  2 HCAL    full energy of hadrons (charged and neutral) summed in 5x5-pixel
            towers (0.087 x 0.087; 125 = 25 towers x 5 pixels, tower grid aligned
            to the image), smeared per tower with sigma/E = a/sqrt(E) (+) c
            (100 %, 5 %), clipped at 0, zero-suppressed per tower, and each
            surviving tower's energy written as float32(E/25) into all its 25
            pixels, so the 25 pixels of a tower are exactly equal.

Charged particles reach the calorimeters on a helix in the 3.8 T solenoid:
their phi at radius R is phi0 - q*asin(0.3*B*R/(2*pT)) (eta unchanged).  The
track channel uses the position at the ECAL surface (R = 1.29 m), the ECAL
deposit of electrons likewise, and charged hadrons shower at the HCAL front
face (R = 1.77 m).  Particles that curl up before reaching a radius
(pT < 0.3*B*R/2) deposit nothing there; a track that cannot reach the ECAL is
drawn at its helix apex (phi0 -/+ pi/2), i.e. usually outside the image.
Muons only leave a track.  There is no pile-up and no electronic noise hits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

NPIX = 125
PIX = 0.0174          # ECAL crystal in eta and phi
TOWER = 5             # pixels per HCAL tower side
HALF = NPIX / 2.0     # 62.5


@dataclass(frozen=True)
class DetectorConfig:
    bfield: float = 3.8             # T; 0 = straight lines
    r_ecal: float = 1.29            # m, ECAL barrel front face
    r_hcal: float = 1.77            # m, HCAL barrel front face
    track_pt_min: float = 0.5       # GeV
    track_eta_max: float = 2.5
    track_res: float = 0.01         # relative pT smearing
    ecal_stoch: float = 0.028       # GeV^1/2
    ecal_noise: float = 0.12        # GeV
    ecal_const: float = 0.003
    ecal_spread: float = 0.2        # lateral profile scale, in crystals
    ecal_threshold: float = 0.1     # GeV per pixel
    hcal_stoch: float = 1.0         # GeV^1/2
    hcal_const: float = 0.05
    hcal_threshold: float = 1.0     # GeV per tower


def wrap_dphi(dphi: np.ndarray) -> np.ndarray:
    """Map an angle difference to [-pi, pi)."""
    return np.mod(dphi + math.pi, 2.0 * math.pi) - math.pi


def bend_phi(phi0, pt, charge, bfield, radius):
    """phi of a helix at cylinder ``radius``; NaN where the particle cannot reach it."""
    phi0 = np.asarray(phi0, dtype=np.float64)
    if bfield == 0.0:
        return phi0.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        s = 0.3 * bfield * radius / (2.0 * np.asarray(pt, dtype=np.float64))
        d = np.where(s <= 1.0, np.arcsin(np.minimum(s, 1.0)), np.nan)
    return phi0 - np.asarray(charge) * np.where(np.asarray(charge) == 0, 0.0, d)


def _pixel_coords(eta, phi, jet_eta, jet_phi):
    """Continuous pixel coordinates (u = row, v = column); pixel k spans [k, k+1)."""
    u = (eta - jet_eta) / PIX + HALF
    v = wrap_dphi(phi - jet_phi) / PIX + HALF
    return u, v


def _inside(u, v):
    return np.isfinite(u) & np.isfinite(v) & (u >= 0) & (u < NPIX) & (v >= 0) & (v < NPIX)


def _laplace_cdf(x, b):
    return np.where(x < 0, 0.5 * np.exp(np.minimum(x, 0) / b),
                    1.0 - 0.5 * np.exp(-np.maximum(x, 0) / b))


def _share_3(frac_off, b):
    """Fractions in the 3 cells (-1, 0, +1) for impact offsets in [-0.5, 0.5)."""
    edges = np.stack([_laplace_cdf(k - frac_off, b) for k in (-1.5, -0.5, 0.5, 1.5)], axis=-1)
    w = np.diff(edges, axis=-1)
    return w / w.sum(axis=-1, keepdims=True)


def ecal_deposit(img: np.ndarray, u, v, energy, spread: float) -> None:
    """Add energies at continuous pixel coords (u, v) to 2-D ``img`` with 3x3 sharing."""
    if len(energy) == 0:
        return
    r = np.floor(u).astype(np.int64)
    c = np.floor(v).astype(np.int64)
    wr = _share_3(u - r - 0.5, spread)
    wc = _share_3(v - c - 0.5, spread)
    n = img.shape[0]
    for i, dr in enumerate((-1, 0, 1)):
        for j, dc in enumerate((-1, 0, 1)):
            rr, cc = r + dr, c + dc
            ok = (rr >= 0) & (rr < n) & (cc >= 0) & (cc < img.shape[1])
            np.add.at(img, (rr[ok], cc[ok]), (energy * wr[:, i] * wc[:, j])[ok])


def ecal_smear(rng: np.random.Generator, e, cfg) -> np.ndarray:
    e = np.asarray(e, dtype=np.float64)
    sigma = np.sqrt(cfg.ecal_stoch ** 2 * e + cfg.ecal_noise ** 2 + (cfg.ecal_const * e) ** 2)
    return np.maximum(e + sigma * rng.standard_normal(e.shape), 0.0)


def make_image(ev, rng: np.random.Generator, cfg: DetectorConfig) -> np.ndarray:
    """Image (125, 125, 3) float32 for one physics.JetEvent."""
    img = np.zeros((NPIX, NPIX, 3), dtype=np.float64)
    charged = ev.p_charge != 0

    # --- tracks
    sel = charged & (ev.p_pt > cfg.track_pt_min) & (np.abs(ev.p_eta) < cfg.track_eta_max)
    phi_t = bend_phi(ev.p_phi[sel], ev.p_pt[sel], ev.p_charge[sel], cfg.bfield, cfg.r_ecal)
    apex = ev.p_phi[sel] - np.sign(ev.p_charge[sel]) * (math.pi / 2)
    phi_t = np.where(np.isnan(phi_t), apex, phi_t)
    pt_t = np.maximum(ev.p_pt[sel] * (1.0 + cfg.track_res * rng.standard_normal(phi_t.shape)), 0.0)
    u, v = _pixel_coords(ev.p_eta[sel], phi_t, ev.eta, ev.phi)
    ok = _inside(u, v)
    np.add.at(img[:, :, 0], (np.floor(u[ok]).astype(np.int64), np.floor(v[ok]).astype(np.int64)), pt_t[ok])

    # --- ECAL: photons and electrons
    sel = (ev.p_absid == 22) | (ev.p_absid == 11)
    phi_e = bend_phi(ev.p_phi[sel], ev.p_pt[sel], ev.p_charge[sel], cfg.bfield, cfg.r_ecal)
    e_meas = ecal_smear(rng, ev.p_e[sel], cfg)
    u, v = _pixel_coords(ev.p_eta[sel], phi_e, ev.eta, ev.phi)
    ok = _inside(u, v)
    ecal = np.zeros((NPIX, NPIX), dtype=np.float64)
    ecal_deposit(ecal, u[ok], v[ok], e_meas[ok], cfg.ecal_spread)
    ecal[ecal < cfg.ecal_threshold] = 0.0
    img[:, :, 1] = ecal

    # --- HCAL: hadrons in 5x5 towers
    sel = ev.p_hadron
    phi_h = bend_phi(ev.p_phi[sel], ev.p_pt[sel], ev.p_charge[sel], cfg.bfield, cfg.r_hcal)
    u, v = _pixel_coords(ev.p_eta[sel], phi_h, ev.eta, ev.phi)
    ok = _inside(u, v)
    nt = NPIX // TOWER
    towers = np.zeros((nt, nt), dtype=np.float64)
    np.add.at(towers, (np.floor(u[ok]).astype(np.int64) // TOWER,
                       np.floor(v[ok]).astype(np.int64) // TOWER), ev.p_e[sel][ok])
    hit = towers > 0
    e_true = towers[hit]
    sigma = np.sqrt(cfg.hcal_stoch ** 2 * e_true + (cfg.hcal_const * e_true) ** 2)
    e_meas = np.maximum(e_true + sigma * rng.standard_normal(e_true.shape), 0.0)
    e_meas[e_meas < cfg.hcal_threshold] = 0.0
    towers[hit] = e_meas
    per_pix = (towers / (TOWER * TOWER)).astype(np.float32)
    out = img.astype(np.float32)
    out[:, :, 2] = np.kron(per_pix, np.ones((TOWER, TOWER), dtype=np.float32))
    return out
