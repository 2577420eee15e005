//! The Goertzel algorithm: the power of one frequency in a block of samples, at the cost of
//! one multiply-add per sample.

/// Mean power of the component at `freq` in `samples` taken at `rate`, scaled so that a sine
/// of amplitude `a` centred on the analysed frequency reads `a² / 2` (the same scale as
/// [`mean_power`]).
pub fn power(samples: &[f32], rate: f64, freq: f64) -> f64 {
    let n = samples.len();
    if n == 0 {
        return 0.0;
    }
    let coeff = (2.0 * (2.0 * std::f64::consts::PI * freq / rate).cos()) as f32;
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &x in samples {
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let (s1, s2) = (s1 as f64, s2 as f64);
    let mag2 = s1 * s1 + s2 * s2 - coeff as f64 * s1 * s2;
    2.0 * mag2 / (n as f64 * n as f64)
}

/// Mean power of the block (Σx² / n).
pub fn mean_power(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples
        .iter()
        .map(|&x| (x as f64) * (x as f64))
        .sum::<f64>()
        / samples.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_centred_sine_reads_half_its_squared_amplitude() {
        let rate = 8000.0;
        let block: Vec<f32> = (0..400)
            .map(|i| 1000.0 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / rate).sin() as f32)
            .collect();
        let p = power(&block, rate, 1000.0);
        assert!((p - 500_000.0).abs() < 5_000.0, "{p}");
        assert!((mean_power(&block) - 500_000.0).abs() < 5_000.0);
        assert!(power(&block, rate, 1500.0) < p / 1000.0);
    }
}
