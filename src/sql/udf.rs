//! Scalar functions for physics queries that DataFusion does not have.

use datafusion::arrow::array::{Array, AsArray, Float64Array};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use std::sync::Arc;

/// Δφ wrapped into [−π, π).
pub fn wrap_phi(d: f64) -> f64 {
    let two_pi = 2.0 * std::f64::consts::PI;
    (d + std::f64::consts::PI).rem_euclid(two_pi) - std::f64::consts::PI
}

/// `delta_r(eta1, phi1, eta2, phi2)` = √(Δη² + Δφ²) with Δφ wrapped into [−π, π).
pub fn delta_r() -> ScalarUDF {
    create_udf(
        "delta_r",
        vec![DataType::Float64; 4],
        DataType::Float64,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let a: Vec<&Float64Array> = arrays
                .iter()
                .map(|x| x.as_primitive::<Float64Type>())
                .collect();
            let out: Float64Array = (0..a[0].len())
                .map(|i| {
                    if a.iter().any(|x| x.is_null(i)) {
                        return None;
                    }
                    let deta = a[0].value(i) - a[2].value(i);
                    let dphi = wrap_phi(a[1].value(i) - a[3].value(i));
                    Some((deta * deta + dphi * dphi).sqrt())
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phi_wraps_around() {
        assert!((wrap_phi(3.0 - (-3.0)) - (6.0 - 2.0 * std::f64::consts::PI)).abs() < 1e-12);
        assert!((wrap_phi(0.5) - 0.5).abs() < 1e-12);
        assert!((wrap_phi(-0.5) + 0.5).abs() < 1e-12);
    }
}
