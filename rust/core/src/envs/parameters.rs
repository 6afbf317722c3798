//! Environment parameters as Unity's `EnvironmentParameters` holds them: a
//! key maps to a fixed float or to a seeded sampler that draws a new value at
//! every read. Environments read their parameters at each episode start, so a
//! sampler gives every episode its own value, as in ML-Agents' randomization.

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg32;

use crate::error::{CoreError, CoreResult};

/// What one key resolves to.
#[derive(Clone, Debug)]
pub enum Parameter {
    /// A fixed value (`EnvironmentParametersChannel.set_float_parameter`).
    Float(f32),
    /// Uniform in `[min, max)`.
    Uniform { min: f32, max: f32, rng: Pcg32 },
    /// Normal with `mean` and `std_dev` (Box-Muller).
    Gaussian { mean: f32, std_dev: f32, rng: Pcg32 },
    /// Uniform over a union of intervals, each chosen in proportion to its length.
    MultiRangeUniform {
        intervals: Vec<(f32, f32)>,
        rng: Pcg32,
    },
}

fn sampler_rng(seed: i32) -> Pcg32 {
    Pcg32::seed_from_u64(seed as i64 as u64)
}

fn check_finite(argument: &str, values: &[f32]) -> CoreResult<()> {
    if values.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(CoreError::invalid(
            argument,
            format!("sampler bounds must be finite, got {values:?}"),
        ))
    }
}

impl Parameter {
    /// Uniform sampler; `min <= max` is required.
    pub fn uniform(seed: i32, min: f32, max: f32) -> CoreResult<Self> {
        check_finite("uniform sampler", &[min, max])?;
        if min > max {
            return Err(CoreError::invalid(
                "uniform sampler",
                format!("min_value {min} is greater than max_value {max}"),
            ));
        }
        Ok(Parameter::Uniform {
            min,
            max,
            rng: sampler_rng(seed),
        })
    }

    /// Gaussian sampler; `std_dev >= 0` is required.
    pub fn gaussian(seed: i32, mean: f32, std_dev: f32) -> CoreResult<Self> {
        check_finite("gaussian sampler", &[mean, std_dev])?;
        if std_dev < 0.0 {
            return Err(CoreError::invalid(
                "gaussian sampler",
                format!("st_dev must be >= 0, got {std_dev}"),
            ));
        }
        Ok(Parameter::Gaussian {
            mean,
            std_dev,
            rng: sampler_rng(seed),
        })
    }

    /// Multi-range sampler from flattened `[min0, max0, min1, max1, ...]`.
    pub fn multi_range_uniform(seed: i32, flat_intervals: &[f32]) -> CoreResult<Self> {
        check_finite("multirange_uniform sampler", flat_intervals)?;
        if flat_intervals.is_empty() || flat_intervals.len() % 2 != 0 {
            return Err(CoreError::invalid(
                "multirange_uniform sampler",
                format!(
                    "expected a non-empty, even-length list [min0, max0, ...], got {} values",
                    flat_intervals.len()
                ),
            ));
        }
        let intervals: Vec<(f32, f32)> = flat_intervals
            .chunks_exact(2)
            .map(|pair| (pair[0], pair[1]))
            .collect();
        if let Some((min, max)) = intervals.iter().find(|(min, max)| min > max) {
            return Err(CoreError::invalid(
                "multirange_uniform sampler",
                format!("interval min {min} is greater than max {max}"),
            ));
        }
        Ok(Parameter::MultiRangeUniform {
            intervals,
            rng: sampler_rng(seed),
        })
    }

    /// The value for one read: fixed, or a fresh draw from the sampler.
    pub fn draw(&mut self) -> f32 {
        match self {
            Parameter::Float(value) => *value,
            Parameter::Uniform { min, max, rng } => *min + (*max - *min) * rng.random::<f32>(),
            Parameter::Gaussian { mean, std_dev, rng } => {
                // Box-Muller; 1 - u keeps the logarithm's argument in (0, 1].
                let u1: f32 = 1.0 - rng.random::<f32>();
                let u2: f32 = rng.random::<f32>();
                let standard = (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
                *mean + *std_dev * standard
            }
            Parameter::MultiRangeUniform { intervals, rng } => {
                let total: f32 = intervals.iter().map(|(min, max)| max - min).sum();
                let mut offset = total * rng.random::<f32>();
                for (min, max) in intervals.iter() {
                    let width = max - min;
                    if offset <= width {
                        return min + offset;
                    }
                    offset -= width;
                }
                intervals.last().map_or(0.0, |(_, max)| *max)
            }
        }
    }
}

/// The parameters an environment was sent, by key.
#[derive(Clone, Debug, Default)]
pub struct Parameters {
    by_key: HashMap<String, Parameter>,
}

impl Parameters {
    pub fn set(&mut self, key: impl Into<String>, parameter: Parameter) {
        self.by_key.insert(key.into(), parameter);
    }

    /// Unity's `GetWithDefault`: the parameter's value (a new draw for a
    /// sampler) or `default` when the key was never sent.
    pub fn get_with_default(&mut self, key: &str, default: f32) -> f32 {
        self.by_key
            .get_mut(key)
            .map_or(default, |parameter| parameter.draw())
    }

    pub fn contains(&self, key: &str) -> bool {
        self.by_key.contains_key(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_and_default() {
        let mut parameters = Parameters::default();
        assert_eq!(parameters.get_with_default("mass", 1.5), 1.5);
        parameters.set("mass", Parameter::Float(3.0));
        assert_eq!(parameters.get_with_default("mass", 1.5), 3.0);
    }

    #[test]
    fn uniform_stays_in_range_and_is_seeded() {
        let mut a = Parameter::uniform(7, 0.5, 10.0).unwrap();
        let mut b = Parameter::uniform(7, 0.5, 10.0).unwrap();
        let draws: Vec<f32> = (0..1000).map(|_| a.draw()).collect();
        assert!(draws.iter().all(|v| (0.5..10.0).contains(v)));
        assert_eq!(draws, (0..1000).map(|_| b.draw()).collect::<Vec<_>>());
        // Not constant: a sampler draws anew at every read.
        assert!(draws.iter().any(|v| (v - draws[0]).abs() > 1e-3));
    }

    #[test]
    fn gaussian_moments() {
        let mut sampler = Parameter::gaussian(1, 2.0, 0.5).unwrap();
        let draws: Vec<f32> = (0..20000).map(|_| sampler.draw()).collect();
        let mean = draws.iter().sum::<f32>() / draws.len() as f32;
        let var = draws.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / draws.len() as f32;
        assert!((mean - 2.0).abs() < 0.02, "mean {mean}");
        assert!((var.sqrt() - 0.5).abs() < 0.02, "std {}", var.sqrt());
    }

    #[test]
    fn multi_range_only_inside_intervals_and_by_length() {
        let mut sampler = Parameter::multi_range_uniform(3, &[0.0, 1.0, 10.0, 13.0]).unwrap();
        let draws: Vec<f32> = (0..20000).map(|_| sampler.draw()).collect();
        assert!(draws
            .iter()
            .all(|v| (0.0..=1.0).contains(v) || (10.0..=13.0).contains(v)));
        let in_second = draws.iter().filter(|v| **v >= 10.0).count() as f32 / 20000.0;
        assert!((in_second - 0.75).abs() < 0.02, "fraction {in_second}");
    }

    #[test]
    fn bad_samplers_are_refused() {
        assert!(Parameter::uniform(0, 2.0, 1.0).is_err());
        assert!(Parameter::uniform(0, f32::NAN, 1.0).is_err());
        assert!(Parameter::gaussian(0, 0.0, -1.0).is_err());
        assert!(Parameter::multi_range_uniform(0, &[0.0, 1.0, 2.0]).is_err());
        assert!(Parameter::multi_range_uniform(0, &[]).is_err());
        assert!(Parameter::multi_range_uniform(0, &[3.0, 1.0]).is_err());
    }
}
