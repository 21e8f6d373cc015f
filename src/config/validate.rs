//! Value checks for the YAML config that serde's types cannot express (garde custom rules).
//!
//! serde-saphyr maps a failed rule back to the YAML line and column of the offending value.

/// Column names the tables use themselves; a channel may not take one.
pub const RESERVED_COLUMNS: &[&str] = &[
    "jet_id",
    "source_file",
    "source_index",
    "label",
    "pt",
    "m0",
    "n_hits",
    "n_points",
    "row",
    "col",
    "eta",
    "phi",
    "res",
];

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub fn identifier(value: &str, _ctx: &()) -> garde::Result {
    if is_identifier(value) {
        Ok(())
    } else {
        Err(garde::Error::new(format!(
            "`{value}` is not a valid name: use letters, digits and `_`, starting with a letter"
        )))
    }
}

pub fn channel_names(value: &[String], _ctx: &()) -> garde::Result {
    for (i, name) in value.iter().enumerate() {
        identifier(name, &())?;
        if RESERVED_COLUMNS.contains(&name.as_str()) {
            return Err(garde::Error::new(format!(
                "channel name `{name}` is a reserved column name ({})",
                RESERVED_COLUMNS.join(", ")
            )));
        }
        if value[..i].contains(name) {
            return Err(garde::Error::new(format!(
                "channel name `{name}` appears twice"
            )));
        }
    }
    Ok(())
}

pub fn subset_of(value: &[String], channels: &[String]) -> garde::Result {
    match value.iter().find(|v| !channels.contains(v)) {
        Some(v) => Err(garde::Error::new(format!(
            "`{v}` is not one of the channels ({})",
            channels.join(", ")
        ))),
        None => Ok(()),
    }
}

/// Checks of the stages against the source channels.
pub fn stages(stages: &super::StagesConfig, channels: &[String]) -> garde::Result {
    rank_channels(stages, channels)?;
    if let Some(knn) = &stages.knn {
        for c in &knn.coordinates {
            let known = ["eta", "phi", "row", "col"].contains(&c.as_str()) || channels.contains(c);
            if !known {
                return Err(garde::Error::new(format!(
                    "knn.coordinates: `{c}` is not eta, phi, row, col or a channel ({})",
                    channels.join(", ")
                )));
            }
        }
        if let Some(s) = &knn.scales {
            if s.len() != knn.coordinates.len() {
                return Err(garde::Error::new(format!(
                    "knn.scales has {} entries but knn.coordinates has {}",
                    s.len(),
                    knn.coordinates.len()
                )));
            }
            if s.iter().any(|v| !v.is_finite()) {
                return Err(garde::Error::new("knn.scales must be finite"));
            }
        }
    }
    Ok(())
}

fn rank_channels(stages: &super::StagesConfig, channels: &[String]) -> garde::Result {
    match &stages.pointcloud.rank_channels {
        Some(r) if r.is_empty() => Err(garde::Error::new(
            "pointcloud.rank_channels must name at least one channel (or be null for all)",
        )),
        Some(r) => subset_of(r, channels)
            .map_err(|e| garde::Error::new(format!("pointcloud.rank_channels: {e}"))),
        None => Ok(()),
    }
}

pub fn unique_labels(value: &[i8], _ctx: &()) -> garde::Result {
    for (i, l) in value.iter().enumerate() {
        if value[..i].contains(l) {
            return Err(garde::Error::new(format!("label {l} appears twice")));
        }
    }
    Ok(())
}

pub fn resolutions(value: &[u32], _ctx: &()) -> garde::Result {
    for (i, &r) in value.iter().enumerate() {
        if !(1..=u32::from(u16::MAX)).contains(&r) {
            return Err(garde::Error::new(format!(
                "resolution {r} is out of range: each must be between 1 and 65535 points"
            )));
        }
        if i > 0 && r <= value[i - 1] {
            return Err(garde::Error::new(format!(
                "resolutions must be strictly increasing, but {r} follows {}",
                value[i - 1]
            )));
        }
    }
    Ok(())
}

pub fn finite(value: &f32, _ctx: &()) -> garde::Result {
    if value.is_finite() {
        Ok(())
    } else {
        Err(garde::Error::new("must be a finite number"))
    }
}

pub fn positive(value: &f32, _ctx: &()) -> garde::Result {
    if value.is_finite() && *value > 0.0 {
        Ok(())
    } else {
        Err(garde::Error::new("must be a finite number greater than 0"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_accept_and_reject() {
        assert!(identifier("qg1024", &()).is_ok());
        assert!(identifier("1abc", &()).is_err());
        assert!(identifier("a-b", &()).is_err());
        assert!(channel_names(&["a".into(), "b".into()], &()).is_ok());
        assert!(channel_names(&["a".into(), "a".into()], &()).is_err());
        assert!(channel_names(&["eta".into()], &()).is_err());
        assert!(resolutions(&[256, 512], &()).is_ok());
        assert!(resolutions(&[512, 256], &()).is_err());
        assert!(resolutions(&[256, 256], &()).is_err());
        assert!(resolutions(&[0], &()).is_err());
        assert!(resolutions(&[70000], &()).is_err());
        assert!(unique_labels(&[0, 1, 0], &()).is_err());
        assert!(positive(&0.0, &()).is_err());
        assert!(finite(&f32::NAN, &()).is_err());
    }
}
