//! Upper bounds on what one message from Unity may make the decoder allocate.
//!
//! Every size in a message (agent counts, observation shapes, PNG image sizes,
//! discrete branches) is chosen by whoever sends the bytes. The decoder checks
//! each against the bytes actually present and against these limits, with
//! checked arithmetic, before it allocates anything sized by it: a
//! 60-byte message declaring a `(2^20, 2^20)` observation is an error, not a
//! 4 TB allocation. The defaults are far above what a real Unity scene sends
//! (see `docs/protocol.md`, "Decoder limits"); the Python side lets a user raise
//! them (`MLAGENTS_FAST_DECODE_LIMITS`).

use super::ProtoError;

/// Observations of higher rank are rejected outright: numpy arrays have at most
/// 32 axes (one is the batch axis), and Unity sends rank 1 to 3.
pub const MAX_OBSERVATION_RANK: usize = 16;

/// Decoder limits, per message. See the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Agents of one behavior in one message.
    pub max_agents: usize,
    /// Observations (sensors) per agent.
    pub max_observations: usize,
    /// Elements of one observation of one agent: the product of its shape, zero
    /// dimensions counted as 1 (so a zero next to huge dimensions is caught too).
    pub max_observation_elements: usize,
    /// Pixels (width x height) of one PNG image.
    pub max_png_pixels: usize,
    /// Discrete action branches of a behavior.
    pub max_discrete_branches: usize,
    /// Continuous actions of a behavior, and the sum of its discrete branch sizes
    /// (the width of the action mask).
    pub max_action_size: usize,
    /// Bytes of arrays one message decodes into: observations (4 bytes per
    /// float), action masks, per-agent values and decoded PNG samples.
    pub max_message_bytes: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl DecodeLimits {
    /// The defaults: far above any real scene, far below what would exhaust memory.
    pub const DEFAULT: DecodeLimits = DecodeLimits {
        max_agents: 1 << 20,
        max_observations: 1 << 10,
        max_observation_elements: 1 << 26,
        max_png_pixels: 1 << 26,
        max_discrete_branches: 1 << 10,
        max_action_size: 1 << 20,
        max_message_bytes: 1 << 32,
    };

    /// The limits as `(name, value)` pairs, in declaration order (names as in the docs).
    pub fn named(&self) -> [(&'static str, usize); 7] {
        [
            ("max_agents", self.max_agents),
            ("max_observations", self.max_observations),
            ("max_observation_elements", self.max_observation_elements),
            ("max_png_pixels", self.max_png_pixels),
            ("max_discrete_branches", self.max_discrete_branches),
            ("max_action_size", self.max_action_size),
            ("max_message_bytes", self.max_message_bytes),
        ]
    }

    /// An error when `value` (None: it overflowed) is above `limit`.
    pub(crate) fn check(
        value: Option<usize>,
        limit: usize,
        limit_name: &str,
        what: impl FnOnce() -> String,
    ) -> Result<usize, ProtoError> {
        match value {
            Some(value) if value <= limit => Ok(value),
            Some(value) => Err(ProtoError::Limit(format!(
                "{} is {value}, above the decoder limit {limit_name} = {limit}",
                what()
            ))),
            None => Err(ProtoError::Limit(format!(
                "{} overflows 64 bits, above the decoder limit {limit_name} = {limit}",
                what()
            ))),
        }
    }

    /// Validates a declared observation shape and returns its dimensions.
    pub(crate) fn observation_shape(
        &self,
        shape: &[i32],
        what: impl Fn() -> String,
    ) -> Result<Vec<usize>, ProtoError> {
        let dims = shape
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<Result<Vec<usize>, _>>()
            .map_err(|_| {
                ProtoError::Observation(format!(
                    "{} has a negative dimension: shape {shape:?}",
                    what()
                ))
            })?;
        self.check_dims(&dims, what)?;
        Ok(dims)
    }

    /// Checks the rank and element count of an observation shape (zero dimensions
    /// counted as 1, so that a zero next to huge dimensions cannot hide them).
    pub(crate) fn check_dims(
        &self,
        dims: &[usize],
        what: impl Fn() -> String,
    ) -> Result<(), ProtoError> {
        if dims.len() > MAX_OBSERVATION_RANK {
            return Err(ProtoError::Limit(format!(
                "{} has rank {}, above the decoder's maximum rank {MAX_OBSERVATION_RANK}",
                what(),
                dims.len()
            )));
        }
        let nonzero_product = dims
            .iter()
            .try_fold(1usize, |product, &d| product.checked_mul(d.max(1)));
        Self::check(
            nonzero_product,
            self.max_observation_elements,
            "max_observation_elements",
            || {
                format!(
                    "the element count of {} (shape {dims:?}, zero dimensions counted as 1)",
                    what()
                )
            },
        )?;
        Ok(())
    }

    /// Validates an action spec: continuous size, branch count and sizes.
    pub(crate) fn action_spec(
        &self,
        continuous: i64,
        branches: &[i64],
        what: impl Fn() -> String,
    ) -> Result<(), ProtoError> {
        if continuous < 0 || branches.iter().any(|&b| b <= 0) {
            return Err(ProtoError::Decode(format!(
                "{}: invalid action spec (continuous {continuous}, branches {branches:?})",
                what()
            )));
        }
        Self::check(
            usize::try_from(continuous).ok(),
            self.max_action_size,
            "max_action_size",
            || format!("the continuous action count of {}", what()),
        )?;
        Self::check(
            Some(branches.len()),
            self.max_discrete_branches,
            "max_discrete_branches",
            || format!("the discrete branch count of {}", what()),
        )?;
        let width = branches.iter().try_fold(0usize, |sum, &b| {
            usize::try_from(b).ok().and_then(|b| sum.checked_add(b))
        });
        Self::check(width, self.max_action_size, "max_action_size", || {
            format!("the sum of the discrete branch sizes of {}", what())
        })?;
        Ok(())
    }
}

/// What is left of `max_message_bytes` while one message is decoded.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    used: usize,
}

impl Budget {
    pub(crate) fn new(limits: &DecodeLimits) -> Self {
        Budget {
            limit: limits.max_message_bytes,
            used: 0,
        }
    }

    /// Takes `count * unit_bytes` bytes from the budget, or fails naming `what`.
    pub(crate) fn charge(
        &mut self,
        count: usize,
        unit_bytes: usize,
        what: impl FnOnce() -> String,
    ) -> Result<(), ProtoError> {
        let total = count
            .checked_mul(unit_bytes)
            .and_then(|bytes| bytes.checked_add(self.used));
        self.used = DecodeLimits::check(total, self.limit, "max_message_bytes", || {
            format!(
                "the decoded size of this message with {}, in bytes,",
                what()
            )
        })?;
        Ok(())
    }
}

/// A zero-filled vector of `len` values allocated without aborting: an
/// allocation the system refuses is an error, not a process abort.
pub(crate) fn try_zeroed<T: Zeroable>(len: usize, what: &str) -> Result<Vec<T>, ProtoError> {
    if len == 0 || std::mem::size_of::<T>() == 0 {
        return Ok(Vec::new());
    }
    let fail = || ProtoError::Limit(format!("could not allocate {len} values for {what}"));
    let layout = std::alloc::Layout::array::<T>(len).map_err(|_| fail())?;
    // SAFETY: the layout has a non-zero size (len > 0, size_of::<T>() > 0); a
    // non-null pointer from alloc_zeroed with the layout of [T; len] owns `len`
    // all-zero values, which `Zeroable` guarantees are valid `T`, and Vec frees it
    // with the same layout through the global allocator.
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout).cast::<T>();
        if ptr.is_null() {
            return Err(fail());
        }
        Ok(Vec::from_raw_parts(ptr, len, len))
    }
}

/// Types whose all-zero bit pattern is a valid value (false, 0, 0.0).
///
/// # Safety
/// Implement only for types for which all-zero bytes are a valid value.
pub(crate) unsafe trait Zeroable {}
// SAFETY: 0.0, false and 0 are all-zero bytes.
unsafe impl Zeroable for f32 {}
unsafe impl Zeroable for bool {}
unsafe impl Zeroable for u8 {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_checks_count_zero_dimensions_as_one() {
        let limits = DecodeLimits {
            max_observation_elements: 1000,
            ..DecodeLimits::default()
        };
        let what = || "obs".to_string();
        assert_eq!(
            limits.observation_shape(&[10, 100], what).unwrap(),
            [10, 100]
        );
        assert_eq!(
            limits.observation_shape(&[0, 10, 100], what).unwrap(),
            [0, 10, 100]
        );
        for bad in [&[0, 1 << 20, 1 << 20][..], &[i32::MAX, i32::MAX], &[1001]] {
            let err = limits.observation_shape(bad, what).unwrap_err();
            assert!(matches!(err, ProtoError::Limit(m) if m.contains("max_observation_elements")));
        }
        assert!(matches!(
            limits.observation_shape(&[3, -1], what),
            Err(ProtoError::Observation(_))
        ));
        assert!(matches!(
            limits.observation_shape(&[1; 17], what),
            Err(ProtoError::Limit(m)) if m.contains("rank 17")
        ));
    }

    #[test]
    fn action_spec_checks_overflowing_branch_sums() {
        let limits = DecodeLimits::default();
        let what = || "B".to_string();
        limits.action_spec(2, &[3, 2], what).unwrap();
        let huge = [i64::from(i32::MAX); 8];
        assert!(
            matches!(limits.action_spec(0, &huge, what), Err(ProtoError::Limit(m)) if m.contains("max_action_size"))
        );
        assert!(matches!(
            limits.action_spec(0, &[0], what),
            Err(ProtoError::Decode(_))
        ));
        assert!(matches!(
            limits.action_spec(-1, &[], what),
            Err(ProtoError::Decode(_))
        ));
        let many = vec![1i64; 1025];
        assert!(
            matches!(limits.action_spec(0, &many, what), Err(ProtoError::Limit(m)) if m.contains("max_discrete_branches"))
        );
    }

    #[test]
    fn budget_is_cumulative_and_overflow_safe() {
        let mut budget = Budget::new(&DecodeLimits {
            max_message_bytes: 100,
            ..DecodeLimits::default()
        });
        budget.charge(10, 4, || "a".into()).unwrap();
        budget.charge(15, 4, || "b".into()).unwrap();
        assert!(budget.charge(1, 1, || "c".into()).is_err());
        assert!(budget.charge(usize::MAX, 4, || "d".into()).is_err());
    }

    #[test]
    fn zeroed_vectors() {
        let v: Vec<f32> = try_zeroed(1000, "x").unwrap();
        assert!(v.len() == 1000 && v.iter().all(|&x| x == 0.0));
        let b: Vec<bool> = try_zeroed(0, "x").unwrap();
        assert!(b.is_empty());
        // A layout larger than isize::MAX is refused before the allocator is asked.
        assert!(try_zeroed::<f32>(usize::MAX / 2, "x").is_err());
    }
}
