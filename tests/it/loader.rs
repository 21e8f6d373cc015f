//! The sharded loader against the points table read back directly: padding and masks,
//! neighbours, rank coverage and disjointness for world sizes 1–4, exact resume at random
//! points, determinism, shard mixing, the hash split, and cached standardisation statistics.

use crate::common::*;
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float32Type, Int8Type, UInt16Type, UInt64Type};
use jetpipe::engine::run;
use jetpipe::loader::plan::split_unit;
use jetpipe::loader::spec::parse_loader;
use jetpipe::loader::{Batch, Loader, LoaderSpec, Subset};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const JETS: usize = 230;
const R: u32 = 64;

/// One jet as stored: n points, features (tracks, eta, row as f32), kNN list and k_eff, label.
#[derive(Debug, Clone)]
struct Stored {
    n: usize,
    tracks: Vec<f32>,
    eta: Vec<f32>,
    row: Vec<f32>,
    knn: Vec<u16>,
    knn_k: u16,
    label: i8,
}

struct Fixture {
    _dir: tempfile::TempDir,
    out: PathBuf,
    jets: HashMap<u64, Stored>,
    order: Vec<u64>,
}

/// 230 random jets (some empty, some with fewer than k points) at resolutions 16 and 64,
/// shards of 40 jets (the last one 30) in row groups of 16: 6 shards, 18 row groups.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let h5 = dir.path().join("jets.h5");
        write_h5(&h5, &random_jets(5, JETS, 40, 40, 3), &Write::default());
        let out = dir.path().join("out");
        let cfg = config(
            &[&h5],
            &out,
            "stages:\n  pointcloud:\n    resolutions: [16, 64]\n  knn:\n    k: 4\n",
        );
        run(&cfg, &quiet()).unwrap();
        let mut jets = HashMap::new();
        let mut order = Vec::new();
        for b in read_parquet(&shards(&out, &format!("points/res={R}"))) {
            read_back(&b, &mut jets, &mut order);
        }
        Fixture {
            _dir: dir,
            out,
            jets,
            order,
        }
    })
}

fn f32s(b: &RecordBatch, col: &str, row: usize) -> Vec<f32> {
    let l = b.column_by_name(col).unwrap().as_list::<i32>().value(row);
    match l.data_type() {
        arrow::datatypes::DataType::UInt16 => l
            .as_primitive::<UInt16Type>()
            .values()
            .iter()
            .map(|&x| f32::from(x))
            .collect(),
        _ => l.as_primitive::<Float32Type>().values().to_vec(),
    }
}

fn read_back(b: &RecordBatch, jets: &mut HashMap<u64, Stored>, order: &mut Vec<u64>) {
    let ids = b
        .column_by_name("jet_id")
        .unwrap()
        .as_primitive::<UInt64Type>();
    let labels = b
        .column_by_name("label")
        .unwrap()
        .as_primitive::<Int8Type>();
    let n = b
        .column_by_name("n_points")
        .unwrap()
        .as_primitive::<UInt16Type>();
    let kk = b
        .column_by_name("knn_k")
        .unwrap()
        .as_primitive::<UInt16Type>();
    for row in 0..b.num_rows() {
        let knn = b.column_by_name("knn").unwrap().as_list::<i32>().value(row);
        order.push(ids.value(row));
        jets.insert(
            ids.value(row),
            Stored {
                n: n.value(row) as usize,
                tracks: f32s(b, "tracks", row),
                eta: f32s(b, "eta", row),
                row: f32s(b, "row", row),
                knn: knn.as_primitive::<UInt16Type>().values().to_vec(),
                knn_k: kk.value(row),
                label: labels.value(row),
            },
        );
    }
}

fn spec(extra: &str) -> LoaderSpec {
    let f = fixture();
    parse_loader(
        &format!(
            "loader:\n  dataset: \"{}\"\n  resolution: {R}\n  features: [tracks, eta, row]\n  batch_size: 7\n  open_shards: 3\n  shuffle_buffer: 50\n{extra}",
            f.out.display()
        ),
        "test.yaml",
    )
    .unwrap()
}

fn epoch(loader: &Loader, e: u64) -> Vec<Batch> {
    loader.epoch(e).unwrap().map(Result::unwrap).collect()
}

fn ids(batches: &[Batch]) -> Vec<u64> {
    batches.iter().flat_map(|b| b.jet_ids.clone()).collect()
}

/// Every jet of `b` equals its stored row, padded with zeros, masked, neighbours padded with
/// the point's own index.
fn check_batch(b: &Batch) {
    let (r, f, k) = (b.res, b.features, b.k);
    assert_eq!((r, f, k), (R as usize, 3, 4));
    assert_eq!(b.points.len(), b.size * r * f);
    assert_eq!(b.neighbours.len(), b.size * r * k);
    for (i, id) in b.jet_ids.iter().enumerate() {
        let s = &fixture().jets[id];
        assert_eq!(b.n_points[i] as usize, s.n);
        assert_eq!(b.labels[i], s.label);
        assert_eq!(b.knn_k[i], s.knn_k);
        for p in 0..r {
            let real = p < s.n;
            assert_eq!(b.mask[i * r + p], u8::from(real), "jet {id} point {p}");
            let got = &b.points[(i * r + p) * f..][..f];
            let want = if real {
                [s.tracks[p], s.eta[p], s.row[p]]
            } else {
                [0.0; 3]
            };
            assert_eq!(got, want, "jet {id} point {p}");
            let nb = &b.neighbours[(i * r + p) * k..][..k];
            if real {
                assert_eq!(nb, &s.knn[p * k..(p + 1) * k]);
            } else {
                assert!(nb.iter().all(|&x| x as usize == p));
            }
        }
        let m = b.neighbour_mask();
        for p in 0..r {
            for j in 0..k {
                let real = p < s.n && j < s.knn_k as usize;
                assert_eq!(m[(i * r + p) * k + j], u8::from(real));
            }
        }
    }
}

#[test]
fn sequential_read_gives_every_stored_jet_padded_and_masked() {
    let loader = Loader::open(&spec("  shuffle: false\n")).unwrap();
    let batches = epoch(&loader, 0);
    assert_eq!(batches.len(), JETS.div_ceil(7));
    assert_eq!(ids(&batches), fixture().order);
    for b in &batches {
        check_batch(b);
    }
    let sizes: HashSet<usize> = fixture().jets.values().map(|s| s.n).collect();
    assert!(
        sizes.contains(&0)
            && sizes.iter().any(|&n| (1..5).contains(&n))
            && sizes.contains(&(R as usize))
    );
}

#[test]
fn derived_point_index_and_jet_fractions_match_the_stored_points() {
    let f = fixture();
    let yaml = format!(
        "loader:\n  dataset: \"{}\"\n  resolution: {R}\n  features: [eta, {{column: point_index, transforms: [{{scale: 0.5}}]}}, {{column: tracks, transforms: [{{scale: 3.0}}, jet_fraction]}}]\n  batch_size: 9\n  shuffle: false\n",
        f.out.display()
    );
    let loader = Loader::open(&parse_loader(&yaml, "test.yaml").unwrap()).unwrap();
    let r = R as usize;
    let (mut seen, mut fractions) = (0, 0);
    for b in epoch(&loader, 0) {
        assert_eq!(b.features, 3);
        for (i, id) in b.jet_ids.iter().enumerate() {
            let s = &f.jets[id];
            // Independent sum in f64 of the stored values.
            let sum: f64 = s.tracks.iter().map(|&x| 3.0 * f64::from(x)).sum();
            for p in 0..r {
                let got = &b.points[(i * r + p) * 3..][..3];
                if p < s.n {
                    assert_eq!(got[..2], [s.eta[p], p as f32 * 0.5], "jet {id} point {p}");
                    let want = if sum > 0.0 {
                        3.0 * f64::from(s.tracks[p]) / sum
                    } else {
                        0.0
                    };
                    assert!(
                        (f64::from(got[2]) - want).abs() < 1e-6,
                        "jet {id} point {p}: {} vs {want}",
                        got[2]
                    );
                    fractions += usize::from(want > 0.0);
                } else {
                    assert_eq!(got, [0.0; 3], "jet {id} padding point {p}");
                }
            }
            seen += 1;
        }
    }
    assert_eq!(seen, JETS);
    assert!(fractions > 100);
}

#[test]
fn reflect_negates_a_random_half_of_the_jets_per_epoch_reproducibly() {
    let f = fixture();
    let yaml = |extra: &str| {
        format!(
            "loader:\n  dataset: \"{}\"\n  resolution: {R}\n  features: [tracks, {{column: eta, transforms: [{{scale: 2.0}}]}}]\n  batch_size: 9\n  shuffle: false\n{extra}",
            f.out.display()
        )
    };
    let loader =
        Loader::open(&parse_loader(&yaml("  reflect: [eta]\n"), "test.yaml").unwrap()).unwrap();
    let r = R as usize;
    // Sign of each jet with a nonzero η in an epoch (+1 or −1), checking every point.
    let signs = |e: u64| -> HashMap<u64, f32> {
        let mut out = HashMap::new();
        for b in epoch(&loader, e) {
            for (i, id) in b.jet_ids.iter().enumerate() {
                let s = &f.jets[id];
                let got = |p: usize| &b.points[(i * r + p) * 2..][..2];
                let Some(p0) = (0..s.n).find(|&p| s.eta[p] != 0.0) else {
                    continue;
                };
                let sign = got(p0)[1] / (2.0 * s.eta[p0]);
                assert!(sign == 1.0 || sign == -1.0, "jet {id}: {sign}");
                for p in 0..s.n {
                    assert_eq!(
                        got(p),
                        [s.tracks[p], sign * 2.0 * s.eta[p]],
                        "jet {id} point {p}"
                    );
                }
                out.insert(*id, sign);
            }
        }
        out
    };
    let (e0, e0_again, e1) = (signs(0), signs(0), signs(1));
    assert_eq!(e0, e0_again);
    assert!(e0.len() > 150);
    let flipped = e0.values().filter(|&&x| x < 0.0).count();
    assert!(
        (e0.len() * 3 / 10..e0.len() * 7 / 10).contains(&flipped),
        "{flipped} of {}",
        e0.len()
    );
    let changed = e0.iter().filter(|(id, s)| e1[*id] != **s).count();
    assert!(
        (e0.len() * 3 / 10..e0.len() * 7 / 10).contains(&changed),
        "{changed} of {}",
        e0.len()
    );
    let err = parse_loader(&yaml("  reflect: [phi]\n"), "test.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`phi` is not one of the features"), "{err}");
}

#[test]
fn shuffled_batches_are_correct_and_recycled_buffers_are_cleared() {
    let loader = Loader::open(&spec("  prefetch: 3\n")).unwrap();
    for e in 0..2 {
        for b in loader.epoch(e).unwrap() {
            let b = b.unwrap();
            check_batch(&b);
            loader.recycle(b);
        }
    }
}

#[test]
fn ranks_cover_every_jet_exactly_once_for_world_sizes_1_to_4() {
    for world in 1..=4 {
        for drop_last in [false, true] {
            let mut seen: HashMap<u64, usize> = HashMap::new();
            let mut counts = HashSet::new();
            for rank in 0..world {
                let l = Loader::open(&spec(&format!(
                    "  world_size: {world}\n  rank: {rank}\n  drop_last: {drop_last}\n  seed: 3\n"
                )))
                .unwrap();
                let batches = epoch(&l, 1);
                assert_eq!(batches.len(), l.batches_per_epoch());
                counts.insert(batches.len());
                for id in ids(&batches) {
                    *seen.entry(id).or_default() += 1;
                }
                if drop_last {
                    assert!(batches.iter().all(|b| b.size == 7));
                }
            }
            assert_eq!(
                counts.len(),
                1,
                "world {world}: unequal batch counts {counts:?}"
            );
            assert!(
                seen.values().all(|&c| c == 1),
                "world {world}: a jet served twice"
            );
            if drop_last {
                assert_eq!(seen.len(), JETS / world / 7 * 7 * world);
            } else {
                assert_eq!(seen.len(), JETS, "world {world}: not every jet served");
            }
        }
    }
}

#[test]
fn resume_at_random_points_continues_with_the_same_batches() {
    let s = spec("  seed: 11\n  prefetch: 2\n  world_size: 2\n  rank: 1\n  reflect: [eta]\n");
    let loader = Loader::open(&s).unwrap();
    let mut rng = Rng(77);
    for e in [0u64, 4] {
        let full = epoch(&loader, e);
        for _ in 0..6 {
            let stop = rng.below(full.len() as u64 + 1) as usize;
            let mut it = loader.epoch(e).unwrap();
            for want in &full[..stop] {
                assert_eq!(&it.next().unwrap().unwrap(), want);
            }
            let state = it.state();
            assert_eq!((state.epoch, state.batches), (e, stop));
            drop(it);
            // A new process: a fresh loader from the saved state (as JSON).
            let state = serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
            let again = Loader::open(&s).unwrap();
            let rest: Vec<Batch> = again.resume(&state).unwrap().map(Result::unwrap).collect();
            assert_eq!(rest, full[stop..], "epoch {e}, resumed after {stop}");
        }
    }
    let mut other = s.clone();
    other.batch_size = 8;
    let state = loader.epoch(0).unwrap().state();
    let e = Loader::open(&other)
        .unwrap()
        .resume(&state)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("other loader settings"), "{e}");
}

/// Worker parts (PyTorch DataLoader workers) taken in turn give exactly the whole epoch.
#[test]
fn epoch_parts_taken_in_turn_are_the_epoch() {
    let s = spec(
        "  seed: 5
  prefetch: 1
  world_size: 2
  rank: 0
",
    );
    let loader = Loader::open(&s).unwrap();
    for (e, parts) in [(0u64, 2usize), (3, 3), (1, 1)] {
        let full = epoch(&loader, e);
        let got: Vec<Vec<Batch>> = (0..parts)
            .map(|p| {
                (loader.epoch_part(e, p, parts).unwrap())
                    .map(Result::unwrap)
                    .collect()
            })
            .collect();
        let mut turn = Vec::new();
        for i in 0..full.len() {
            turn.push(got[i % parts][i / parts].clone());
        }
        assert_eq!(got.iter().map(Vec::len).sum::<usize>(), full.len());
        assert_eq!(turn, full, "epoch {e} in {parts} parts");
    }
    assert!(loader.epoch_part(0, 2, 2).is_err());
}

#[test]
fn order_depends_only_on_seed_and_epoch() {
    let a = Loader::open(&spec("  seed: 1\n  prefetch: 1\n")).unwrap();
    let b = Loader::open(&spec("  seed: 1\n  prefetch: 4\n")).unwrap();
    let c = Loader::open(&spec("  seed: 2\n")).unwrap();
    assert_eq!(ids(&epoch(&a, 0)), ids(&epoch(&b, 0)));
    assert_ne!(ids(&epoch(&a, 0)), ids(&epoch(&a, 1)));
    assert_ne!(ids(&epoch(&a, 0)), ids(&epoch(&c, 0)));
    let mut sorted = ids(&epoch(&c, 0));
    sorted.sort();
    let mut all = fixture().order.clone();
    all.sort();
    assert_eq!(sorted, all);
}

#[test]
fn consecutive_batches_are_not_dominated_by_one_shard() {
    // Shards hold 40 consecutive jets; with 3 open shards and a 50-jet window, a batch of
    // 14 should rarely be mostly one shard, and the label sequence should not be periodic.
    let mut s = spec("  seed: 5\n");
    s.batch_size = 14;
    let l = Loader::open(&s).unwrap();
    let mut worst = Vec::new();
    for e in 0..5 {
        for b in epoch(&l, e).iter().filter(|b| b.size == 14) {
            let mut per: HashMap<u64, usize> = HashMap::new();
            for id in &b.jet_ids {
                *per.entry((id & 0xffff_ffff) / 40).or_default() += 1;
            }
            worst.push(*per.values().max().unwrap());
        }
    }
    let mean = worst.iter().sum::<usize>() as f64 / worst.len() as f64;
    assert!(mean < 10.0, "mean largest-shard share {mean} of 14");
    // Unshuffled, every batch is one or two shards: the statistic does separate the cases.
    s.shuffle = false;
    let seq = Loader::open(&s).unwrap();
    let b = &epoch(&seq, 0)[0];
    assert!(b.jet_ids.iter().all(|id| id / 40 == 0));
}

#[test]
fn split_is_a_partition_by_jet_id_hash() {
    let mut all = HashSet::new();
    for subset in ["train", "val", "test"] {
        let l = Loader::open(&spec(&format!(
            "  split: {{train: 0.6, val: 0.25, seed: 9, subset: {subset}}}\n"
        )))
        .unwrap();
        let got = ids(&epoch(&l, 0));
        for &id in &got {
            let u = split_unit(id, 9);
            let want = match subset {
                "train" => u < 0.6,
                "val" => (0.6..0.85).contains(&u),
                _ => u >= 0.85,
            };
            assert!(want, "{id} in {subset} with u={u}");
            assert!(all.insert(id), "{id} in two subsets");
        }
        let _ = Subset::Train;
    }
    assert_eq!(all.len(), JETS);
}

fn numpy_percentile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(v.len() - 1);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

#[test]
fn standardise_statistics_are_computed_once_and_cached_in_the_manifest() {
    // A copy of the dataset: this test writes its manifest.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("ds");
    copy_dir(&fixture().out, &copy);
    let yaml = format!(
        "loader:\n  dataset: \"{}\"\n  resolution: {R}\n  shuffle: false\n  stats_fraction: 0.5\n  features:\n    - column: tracks\n      transforms: [log1p, standardise, {{clip: [-2, 2]}}]\n    - eta\n",
        copy.display()
    );
    let s = parse_loader(&yaml, "t.yaml").unwrap();
    let l = Loader::open(&s).unwrap();
    // Independent reference: the chosen jets' log1p(tracks), percentiles as numpy computes them.
    let mut v: Vec<f64> = fixture()
        .jets
        .iter()
        .filter(|(id, _)| split_unit(**id, 0x57A75) < 0.5)
        .flat_map(|(_, s)| s.tracks.iter().map(|&x| f64::from(x.ln_1p())))
        .collect();
    let (med, p16, p84) = (
        numpy_percentile(&mut v, 0.5),
        numpy_percentile(&mut v, 0.16),
        numpy_percentile(&mut v, 0.84),
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(copy.join("manifest.json")).unwrap())
            .unwrap();
    let stats = manifest["stats"].as_object().unwrap();
    assert_eq!(stats.len(), 1, "{stats:?}");
    let st = stats.values().next().unwrap();
    for (k, want) in [("median", med), ("p16", p16), ("p84", p84)] {
        let got = st[k].as_f64().unwrap();
        assert!(
            (got - want).abs() < 1e-5 * (1.0 + want.abs()),
            "{k}: {got} vs {want}"
        );
    }
    assert_eq!(st["points"].as_u64().unwrap() as usize, v.len());
    // The batches apply log1p → (x − median)/((p84 − p16)/2) → clip.
    let half = (p84 - p16) / 2.0;
    for b in epoch(&l, 0) {
        for (i, id) in b.jet_ids.iter().enumerate() {
            let s = &fixture().jets[id];
            for p in 0..s.n {
                let want = ((f64::from(s.tracks[p].ln_1p()) - med) / half).clamp(-2.0, 2.0);
                let got = b.points[(i * b.res + p) * 2];
                assert!((f64::from(got) - want).abs() < 1e-4, "{got} vs {want}");
                assert_eq!(b.points[(i * b.res + p) * 2 + 1], s.eta[p]);
            }
        }
    }
    // Cached: a second loader reads the statistics (poisoned here to prove it does not
    // recompute them).
    let mut m = manifest.clone();
    let key = stats.keys().next().unwrap().clone();
    m["stats"][&key]["median"] = serde_json::json!(100.0);
    std::fs::write(
        copy.join("manifest.json"),
        serde_json::to_string(&m).unwrap(),
    )
    .unwrap();
    let again = Loader::open(&s).unwrap();
    assert_eq!(
        again.ops()[0][1],
        jetpipe::loader::preprocess::Op::Affine {
            sub: 100.0,
            mul: (1.0 / half) as f32
        }
    );
}

fn copy_dir(from: &Path, to: &Path) {
    for f in tree(from) {
        let dst = to.join(&f);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(from.join(&f), dst).unwrap();
    }
}

#[test]
fn bad_settings_name_what_is_wrong() {
    let err = |s: LoaderSpec| Loader::open(&s).err().unwrap().to_string();
    let mut s = spec("");
    s.resolution = 32;
    let e = err(s);
    assert!(
        e.contains("resolution 32 not in this dataset") && e.contains("[16, 64]"),
        "{e}"
    );
    let mut s = spec("");
    s.features
        .push(jetpipe::loader::FeatureSpec::Column("energy".into()));
    let e = err(s);
    assert!(
        e.contains("no column `energy`") && e.contains("tracks"),
        "{e}"
    );
    let mut s = spec("");
    s.batch_size = 300;
    s.drop_last = true;
    let e = err(s);
    assert!(e.contains("230 jets selected"), "{e}");
    let e = err(LoaderSpec::new("/nonexistent/ds", 64));
    assert!(
        e.contains("/nonexistent/ds") && e.contains("no manifest.json"),
        "{e}"
    );
}
