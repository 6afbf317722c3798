//! Discounted returns, generalized advantage estimation (GAE) and lambda
//! returns, over `f32` or `f64` slices.
//!
//! Single-trajectory kernels follow ML-Agents 1.1.0 exactly (same recursion,
//! same order of floating-point operations as its numpy code under numpy 2):
//! - [`discount_rewards`]: `R[t] = r[t] + gamma * R[t+1]`, `R[T] = value_next`
//!   (`mlagents/trainers/trainer/trainer_utils.py`).
//! - [`gae`]: `delta[t] = r[t] + gamma * V[t+1] - V[t]` with `V[T] = value_next`,
//!   then `A[t] = delta[t] + gamma * lambda * A[t+1]`, `A[T] = 0`
//!   (Schulman et al. 2016, arXiv:1506.02438; `get_gae` in ML-Agents).
//! - [`lambda_return`]: `G[T-1] = r[T-1] + gamma * value_next`,
//!   `G[t] = gamma * lambda * G[t+1] + r[t] + (1 - lambda) * gamma * V[t+1]`
//!   (`mlagents/trainers/poca/trainer.py`).
//!
//! Batched GAE, [`gae_ragged`]: many trajectories concatenated, split by
//! `offsets`, each with its own bootstrap value (pass 0 for a trajectory that
//! terminated), returning advantages and returns (`returns = advantages +
//! values`). Trajectories come from agents that act and end their episodes at
//! different times, so they are ragged by nature: the trainers lay them out
//! one after another, which is this kernel's layout.

use std::mem::MaybeUninit;
use std::ops::{Add, Mul, Sub};

use rayon::prelude::*;

use crate::parallel;
use crate::{CoreError, CoreResult};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// The element types the kernels run on: `f32` and `f64`.
pub trait Real:
    sealed::Sealed
    + Copy
    + Send
    + Sync
    + PartialEq
    + std::fmt::Debug
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + 'static
{
    const ZERO: Self;
    /// Rounds a hyperparameter given in double precision to this type, like
    /// numpy does when a Python float multiplies an array of this type.
    fn from_f64(value: f64) -> Self;
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    fn from_f64(value: f64) -> Self {
        value as f32
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    fn from_f64(value: f64) -> Self {
        value
    }
}

/// Advantages and returns of a batched GAE call, in the input's layout.
#[derive(Debug, Clone, PartialEq)]
pub struct AdvantagesAndReturns<F> {
    /// GAE advantage of every step.
    pub advantages: Vec<F>,
    /// Value targets: `advantages + values`.
    pub returns: Vec<F>,
}

/// Below this many steps a ragged batch runs on the calling thread. Measured
/// on the 2-core development machine (busy with other jobs): 64 x 1000 steps
/// took 58 us on one thread and 75 us through the rayon pool; 1024 x 1000
/// took 2.19 ms on one thread and 0.79 ms through the pool.
pub const PARALLEL_MIN_STEPS: usize = 256 * 1024;

/// How many trajectories the ragged kernel advances in lockstep: independent
/// recursions hide the latency of each one's dependent multiply-add chain.
const INTERLEAVE: usize = 8;

/// Output slots that the kernels fill completely, never read.
type Slots<F> = [MaybeUninit<F>];

/// Views initialized storage as output slots.
fn as_slots<F>(out: &mut [F]) -> &mut Slots<F> {
    // SAFETY: `MaybeUninit<F>` has the layout of `F`, and the kernels only
    // ever store initialized values through the view, so `out` stays valid.
    unsafe { &mut *(out as *mut [F] as *mut Slots<F>) }
}

/// A vector of `len` results written by `fill`, without zeroing it first:
/// zeroed buffers of this size come from `calloc` as fresh pages, whose page
/// faults cost more than the kernel itself.
fn filled_vec<F>(
    len: usize,
    fill: impl FnOnce(&mut Slots<F>) -> CoreResult<()>,
) -> CoreResult<Vec<F>> {
    let mut out = Vec::with_capacity(len);
    fill(&mut out.spare_capacity_mut()[..len])?;
    // SAFETY: every kernel that returns Ok has written all `len` slots.
    unsafe { out.set_len(len) };
    Ok(out)
}

/// Two result vectors of `len`, written by `fill` (see [`filled_vec`]).
fn filled_pair<F>(
    len: usize,
    fill: impl FnOnce(&mut Slots<F>, &mut Slots<F>) -> CoreResult<()>,
) -> CoreResult<AdvantagesAndReturns<F>> {
    let mut advantages = Vec::with_capacity(len);
    let mut returns = Vec::with_capacity(len);
    fill(
        &mut advantages.spare_capacity_mut()[..len],
        &mut returns.spare_capacity_mut()[..len],
    )?;
    // SAFETY: every kernel that returns Ok has written all `len` slots of both.
    unsafe {
        advantages.set_len(len);
        returns.set_len(len);
    }
    Ok(AdvantagesAndReturns {
        advantages,
        returns,
    })
}

fn check_factor(argument: &str, value: f64) -> CoreResult<()> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(CoreError::invalid(
            argument,
            format!("must be a finite number, got {value}"),
        ))
    }
}

fn check_len(argument: &str, got: usize, expected: usize, what: &str) -> CoreResult<()> {
    if got == expected {
        Ok(())
    } else {
        Err(CoreError::invalid(
            argument,
            format!("expected length {expected} ({what}), got {got}"),
        ))
    }
}

fn discount_rewards_slots<F: Real>(
    rewards: &[F],
    gamma: f64,
    value_next: F,
    out: &mut Slots<F>,
) -> CoreResult<()> {
    check_factor("gamma", gamma)?;
    check_len("out", out.len(), rewards.len(), "one per reward")?;
    let gamma = F::from_f64(gamma);
    let mut running = value_next;
    for (slot, &reward) in out.iter_mut().zip(rewards).rev() {
        running = running * gamma + reward;
        slot.write(running);
    }
    Ok(())
}

/// Discounted sum of future rewards, bootstrapped with `value_next` after the
/// last step. Writes `out[t] = rewards[t] + gamma * out[t+1]`.
pub fn discount_rewards_into<F: Real>(
    rewards: &[F],
    gamma: f64,
    value_next: F,
    out: &mut [F],
) -> CoreResult<()> {
    discount_rewards_slots(rewards, gamma, value_next, as_slots(out))
}

/// [`discount_rewards_into`] into a new vector.
pub fn discount_rewards<F: Real>(rewards: &[F], gamma: f64, value_next: F) -> CoreResult<Vec<F>> {
    filled_vec(rewards.len(), |out| {
        discount_rewards_slots(rewards, gamma, value_next, out)
    })
}

fn gae_slots<F: Real>(
    rewards: &[F],
    values: &[F],
    value_next: F,
    gamma: f64,
    lambda: f64,
    advantages: &mut Slots<F>,
) -> CoreResult<()> {
    check_factor("gamma", gamma)?;
    check_factor("lambd", lambda)?;
    check_len(
        "value_estimates",
        values.len(),
        rewards.len(),
        "one per reward",
    )?;
    check_len(
        "advantages",
        advantages.len(),
        rewards.len(),
        "one per reward",
    )?;
    let gamma_lambda = F::from_f64(gamma * lambda);
    let gamma = F::from_f64(gamma);
    let mut running = F::ZERO;
    let mut next_value = value_next;
    for t in (0..rewards.len()).rev() {
        let delta = (rewards[t] + gamma * next_value) - values[t];
        running = running * gamma_lambda + delta;
        advantages[t].write(running);
        next_value = values[t];
    }
    Ok(())
}

/// GAE of one trajectory, bootstrapped with `value_next` (the value of the
/// state after the last step; 0 when the episode terminated there).
pub fn gae_into<F: Real>(
    rewards: &[F],
    values: &[F],
    value_next: F,
    gamma: f64,
    lambda: f64,
    advantages: &mut [F],
) -> CoreResult<()> {
    gae_slots(
        rewards,
        values,
        value_next,
        gamma,
        lambda,
        as_slots(advantages),
    )
}

/// [`gae_into`] into a new vector.
pub fn gae<F: Real>(
    rewards: &[F],
    values: &[F],
    value_next: F,
    gamma: f64,
    lambda: f64,
) -> CoreResult<Vec<F>> {
    filled_vec(rewards.len(), |out| {
        gae_slots(rewards, values, value_next, gamma, lambda, out)
    })
}

fn lambda_return_slots<F: Real>(
    rewards: &[F],
    values: &[F],
    gamma: f64,
    lambda: f64,
    value_next: F,
    out: &mut Slots<F>,
) -> CoreResult<()> {
    check_factor("gamma", gamma)?;
    check_factor("lambd", lambda)?;
    check_len(
        "value_estimates",
        values.len(),
        rewards.len(),
        "one per reward",
    )?;
    check_len("out", out.len(), rewards.len(), "one per reward")?;
    let Some(last) = rewards.len().checked_sub(1) else {
        return Ok(());
    };
    let gamma_lambda = F::from_f64(gamma * lambda);
    let gamma_rest = F::from_f64((1.0 - lambda) * gamma);
    let mut running = rewards[last] + F::from_f64(gamma) * value_next;
    out[last].write(running);
    for t in (0..last).rev() {
        running = (gamma_lambda * running + rewards[t]) + gamma_rest * values[t + 1];
        out[t].write(running);
    }
    Ok(())
}

/// Lambda returns (TD(lambda) targets) of one trajectory, as POCA computes
/// them: `G[t] = gamma * lambda * G[t+1] + r[t] + (1 - lambda) * gamma * V[t+1]`.
pub fn lambda_return_into<F: Real>(
    rewards: &[F],
    values: &[F],
    gamma: f64,
    lambda: f64,
    value_next: F,
    out: &mut [F],
) -> CoreResult<()> {
    lambda_return_slots(rewards, values, gamma, lambda, value_next, as_slots(out))
}

/// [`lambda_return_into`] into a new vector.
pub fn lambda_return<F: Real>(
    rewards: &[F],
    values: &[F],
    gamma: f64,
    lambda: f64,
    value_next: F,
) -> CoreResult<Vec<F>> {
    filled_vec(rewards.len(), |out| {
        lambda_return_slots(rewards, values, gamma, lambda, value_next, out)
    })
}

fn lambda_return_ragged_slots<F: Real>(
    rewards: &[F],
    values: &[F],
    offsets: &[usize],
    value_next: &[F],
    gamma: f64,
    lambda: f64,
    out: &mut Slots<F>,
) -> CoreResult<()> {
    check_factor("gamma", gamma)?;
    check_factor("lambd", lambda)?;
    let total = rewards.len();
    check_len("values", values.len(), total, "one per reward")?;
    check_len("out", out.len(), total, "one per reward")?;
    // Valid offsets cover every step exactly once: every slot gets written.
    check_offsets(offsets, value_next.len(), total)?;
    for (i, &bootstrap) in value_next.iter().enumerate() {
        let span = offsets[i]..offsets[i + 1];
        lambda_return_slots(
            &rewards[span.clone()],
            &values[span.clone()],
            gamma,
            lambda,
            bootstrap,
            &mut out[span],
        )?;
    }
    Ok(())
}

/// Batched lambda returns (POCA's value targets) over trajectories
/// concatenated along one axis: trajectory `i` is
/// `rewards[offsets[i]..offsets[i+1]]` (same for `values`), bootstrapped with
/// `value_next[i]`, and gets exactly what [`lambda_return`] gives it alone.
/// `offsets` follows the rules of [`gae_ragged_into`].
#[allow(clippy::too_many_arguments)]
pub fn lambda_return_ragged_into<F: Real>(
    rewards: &[F],
    values: &[F],
    offsets: &[usize],
    value_next: &[F],
    gamma: f64,
    lambda: f64,
    out: &mut [F],
) -> CoreResult<()> {
    lambda_return_ragged_slots(
        rewards,
        values,
        offsets,
        value_next,
        gamma,
        lambda,
        as_slots(out),
    )
}

/// [`lambda_return_ragged_into`] into a new vector.
pub fn lambda_return_ragged<F: Real>(
    rewards: &[F],
    values: &[F],
    offsets: &[usize],
    value_next: &[F],
    gamma: f64,
    lambda: f64,
) -> CoreResult<Vec<F>> {
    filled_vec(rewards.len(), |out| {
        lambda_return_ragged_slots(rewards, values, offsets, value_next, gamma, lambda, out)
    })
}

/// Checks that `offsets` splits `total` steps into `trajectories` pieces:
/// `offsets[0] == 0`, non-decreasing, `offsets[trajectories] == total`.
pub fn check_offsets(offsets: &[usize], trajectories: usize, total: usize) -> CoreResult<()> {
    check_len(
        "offsets",
        offsets.len(),
        trajectories + 1,
        "one more than value_next",
    )?;
    if offsets[0] != 0 {
        return Err(CoreError::invalid(
            "offsets",
            format!("must start at 0, starts at {}", offsets[0]),
        ));
    }
    if let Some(i) = offsets.windows(2).position(|pair| pair[1] < pair[0]) {
        return Err(CoreError::invalid(
            "offsets",
            format!(
                "must be non-decreasing, but offsets[{}] = {} > offsets[{}] = {}",
                i,
                offsets[i],
                i + 1,
                offsets[i + 1]
            ),
        ));
    }
    let end = offsets[trajectories];
    if end != total {
        return Err(CoreError::invalid(
            "offsets",
            format!("must end at the number of steps {total}, ends at {end}"),
        ));
    }
    Ok(())
}

/// One trajectory of a ragged batch: its inputs and its output slots.
struct RaggedPiece<'a, F> {
    rewards: &'a [F],
    values: &'a [F],
    value_next: F,
    advantages: &'a mut Slots<F>,
    returns: &'a mut Slots<F>,
}

/// GAE of the first `len` steps of one trajectory, continuing from `running`
/// (the advantage of step `len`) and `next_value` (the value of step `len`).
#[inline(always)]
fn gae_head<F: Real>(
    piece: &mut RaggedPiece<'_, F>,
    len: usize,
    mut running: F,
    mut next_value: F,
    gamma: F,
    gamma_lambda: F,
) {
    let rewards = &piece.rewards[..len];
    let values = &piece.values[..len];
    let advantages = &mut piece.advantages[..len];
    let returns = &mut piece.returns[..len];
    for t in (0..len).rev() {
        let value = values[t];
        let delta = (rewards[t] + gamma * next_value) - value;
        running = running * gamma_lambda + delta;
        next_value = value;
        advantages[t].write(running);
        returns[t].write(running + value);
    }
}

/// GAE of `LANES` trajectories advanced together from their ends: each lane
/// is an independent multiply-add chain, so the processor overlaps them
/// instead of waiting on one. Each lane does exactly what [`gae`] does.
#[inline(always)]
fn gae_lanes<F: Real, const LANES: usize>(
    pieces: &mut [RaggedPiece<'_, F>; LANES],
    gamma: F,
    gamma_lambda: F,
) {
    // Lockstep over the last `common` steps of every trajectory.
    let common = pieces.iter().map(|p| p.rewards.len()).min().unwrap_or(0);
    let mut running = [F::ZERO; LANES];
    let mut next_value: [F; LANES] = std::array::from_fn(|lane| pieces[lane].value_next);
    {
        let mut tails = pieces.each_mut().map(|piece| {
            let start = piece.rewards.len() - common;
            (
                &piece.rewards[start..],
                &piece.values[start..],
                &mut piece.advantages[start..],
                &mut piece.returns[start..],
            )
        });
        for tail in tails.iter() {
            // Equal lengths known to the compiler: no bounds checks below.
            assert!(tail.0.len() == common && tail.1.len() == common);
            assert!(tail.2.len() == common && tail.3.len() == common);
        }
        for t in (0..common).rev() {
            for (lane, (rewards, values, advantages, returns)) in tails.iter_mut().enumerate() {
                let value = values[t];
                let delta = (rewards[t] + gamma * next_value[lane]) - value;
                let advantage = running[lane] * gamma_lambda + delta;
                running[lane] = advantage;
                next_value[lane] = value;
                advantages[t].write(advantage);
                returns[t].write(advantage + value);
            }
        }
    }
    // Whatever is longer than the shortest one finishes lane by lane.
    for (lane, piece) in pieces.iter_mut().enumerate() {
        let rest = piece.rewards.len() - common;
        gae_head(
            piece,
            rest,
            running[lane],
            next_value[lane],
            gamma,
            gamma_lambda,
        );
    }
}

/// GAE of a group of trajectories, [`INTERLEAVE`] at a time.
#[inline(always)]
fn gae_group_body<F: Real>(group: &mut [RaggedPiece<'_, F>], gamma: F, gamma_lambda: F) {
    let mut rest = group;
    while !rest.is_empty() {
        // Widest lane count that fits, so that leftovers still overlap.
        let lanes = [INTERLEAVE, 4, 2, 1]
            .into_iter()
            .find(|&lanes| lanes <= rest.len())
            .unwrap_or(1);
        let (head, tail) = rest.split_at_mut(lanes);
        if let Ok(head) = <&mut [_; INTERLEAVE]>::try_from(&mut *head) {
            gae_lanes(head, gamma, gamma_lambda);
        } else if let Ok(head) = <&mut [_; 4]>::try_from(&mut *head) {
            gae_lanes(head, gamma, gamma_lambda);
        } else if let Ok(head) = <&mut [_; 2]>::try_from(&mut *head) {
            gae_lanes(head, gamma, gamma_lambda);
        } else {
            for piece in head.iter_mut() {
                let (len, value_next) = (piece.rewards.len(), piece.value_next);
                gae_head(piece, len, F::ZERO, value_next, gamma, gamma_lambda);
            }
        }
        rest = tail;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn gae_group_avx2<F: Real>(group: &mut [RaggedPiece<'_, F>], gamma: F, gamma_lambda: F) {
    gae_group_body(group, gamma, gamma_lambda)
}

/// [`gae_group_body`], compiled for AVX2 where the processor has it (same
/// operations in the same order, so the same results, bit for bit).
fn gae_group<F: Real>(group: &mut [RaggedPiece<'_, F>], gamma: F, gamma_lambda: F) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor supports AVX2, checked just above.
        return unsafe { gae_group_avx2(group, gamma, gamma_lambda) };
    }
    gae_group_body(group, gamma, gamma_lambda)
}

#[allow(clippy::too_many_arguments)]
fn gae_ragged_slots<F: Real>(
    rewards: &[F],
    values: &[F],
    offsets: &[usize],
    value_next: &[F],
    gamma: f64,
    lambda: f64,
    advantages: &mut Slots<F>,
    returns: &mut Slots<F>,
) -> CoreResult<()> {
    check_factor("gamma", gamma)?;
    check_factor("lambd", lambda)?;
    let total = rewards.len();
    check_len("values", values.len(), total, "one per reward")?;
    check_len("advantages", advantages.len(), total, "one per reward")?;
    check_len("returns", returns.len(), total, "one per reward")?;
    // Valid offsets cover every step exactly once: every slot gets written.
    check_offsets(offsets, value_next.len(), total)?;

    // Cut inputs and outputs into per-trajectory pieces (disjoint borrows).
    let mut pieces = Vec::with_capacity(value_next.len());
    let (mut adv_rest, mut ret_rest) = (advantages, returns);
    for (i, &bootstrap) in value_next.iter().enumerate() {
        let (start, end) = (offsets[i], offsets[i + 1]);
        let (adv_piece, adv_tail) = std::mem::take(&mut adv_rest).split_at_mut(end - start);
        let (ret_piece, ret_tail) = std::mem::take(&mut ret_rest).split_at_mut(end - start);
        adv_rest = adv_tail;
        ret_rest = ret_tail;
        pieces.push(RaggedPiece {
            rewards: &rewards[start..end],
            values: &values[start..end],
            value_next: bootstrap,
            advantages: adv_piece,
            returns: ret_piece,
        });
    }

    let gamma_lambda = F::from_f64(gamma * lambda);
    let gamma = F::from_f64(gamma);
    if total >= PARALLEL_MIN_STEPS && pieces.len() > INTERLEAVE && parallel::enabled() {
        pieces
            .par_chunks_mut(INTERLEAVE)
            .for_each(|group| gae_group(group, gamma, gamma_lambda));
    } else {
        gae_group(&mut pieces, gamma, gamma_lambda);
    }
    Ok(())
}

/// Batched GAE over trajectories concatenated along one axis.
///
/// Trajectory `i` is `rewards[offsets[i]..offsets[i+1]]` (same for `values`),
/// bootstrapped with `value_next[i]`; each gets exactly what [`gae`] would
/// give it. `offsets` has one more entry than `value_next`, starts at 0, never
/// decreases and ends at `rewards.len()` (empty trajectories are allowed).
/// Writes `advantages` and `returns = advantages + values`.
#[allow(clippy::too_many_arguments)]
pub fn gae_ragged_into<F: Real>(
    rewards: &[F],
    values: &[F],
    offsets: &[usize],
    value_next: &[F],
    gamma: f64,
    lambda: f64,
    advantages: &mut [F],
    returns: &mut [F],
) -> CoreResult<()> {
    gae_ragged_slots(
        rewards,
        values,
        offsets,
        value_next,
        gamma,
        lambda,
        as_slots(advantages),
        as_slots(returns),
    )
}

/// [`gae_ragged_into`] into new vectors.
pub fn gae_ragged<F: Real>(
    rewards: &[F],
    values: &[F],
    offsets: &[usize],
    value_next: &[F],
    gamma: f64,
    lambda: f64,
) -> CoreResult<AdvantagesAndReturns<F>> {
    filled_pair(rewards.len(), |advantages, returns| {
        gae_ragged_slots(
            rewards, values, offsets, value_next, gamma, lambda, advantages, returns,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_pcg::Pcg64;

    fn close(a: &[f64], b: &[f64], tolerance: f64) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (x - y).abs() <= tolerance * (1.0 + y.abs()))
    }

    fn random_vec(rng: &mut Pcg64, len: usize) -> Vec<f64> {
        (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    /// GAE the long way: deltas first, then their discounted sum (as ML-Agents does).
    fn gae_by_definition(r: &[f64], v: &[f64], v_next: f64, g: f64, l: f64) -> Vec<f64> {
        let deltas: Vec<f64> = (0..r.len())
            .map(|t| {
                let next = if t + 1 < r.len() { v[t + 1] } else { v_next };
                r[t] + g * next - v[t]
            })
            .collect();
        discount_rewards(&deltas, g * l, 0.0).unwrap()
    }

    #[test]
    fn discount_rewards_by_hand() {
        let out = discount_rewards(&[1.0f64, 0.0, 2.0], 0.5, 4.0).unwrap();
        // R2 = 2 + 0.5*4 = 4, R1 = 0 + 0.5*4 = 2, R0 = 1 + 0.5*2 = 2
        assert_eq!(out, vec![2.0, 2.0, 4.0]);
        assert!(discount_rewards::<f32>(&[], 0.9, 1.0).unwrap().is_empty());
    }

    #[test]
    fn gae_matches_its_definition_and_lambda_one_is_monte_carlo() {
        let mut rng = Pcg64::seed_from_u64(7);
        for len in [1, 3, 1000] {
            let r = random_vec(&mut rng, len);
            let v = random_vec(&mut rng, len);
            let v_next = rng.random_range(-1.0..1.0);
            let got = gae(&r, &v, v_next, 0.99, 0.95).unwrap();
            assert!(close(
                &got,
                &gae_by_definition(&r, &v, v_next, 0.99, 0.95),
                1e-12
            ));
            // lambda = 1: A + V is the discounted return bootstrapped with v_next.
            let a1 = gae(&r, &v, v_next, 0.97, 1.0).unwrap();
            let returns: Vec<f64> = a1.iter().zip(&v).map(|(a, v)| a + v).collect();
            assert!(close(
                &returns,
                &discount_rewards(&r, 0.97, v_next).unwrap(),
                1e-9
            ));
        }
    }

    #[test]
    fn gae_constant_value_one_terminal_reward() {
        // V = 1 everywhere, reward 1 on the last step, episode ends (value_next 0):
        // delta = [g-1, g-1, 0] (last: 1 + 0 - 1), A[t] = delta[t] + g*l*A[t+1].
        let (g, l) = (0.9f64, 0.8f64);
        let got = gae(&[0.0, 0.0, 1.0], &[1.0, 1.0, 1.0], 0.0, g, l).unwrap();
        let a2 = 0.0;
        let a1 = (g - 1.0) + g * l * a2;
        let a0 = (g - 1.0) + g * l * a1;
        assert!(close(&got, &[a0, a1, a2], 1e-15));
    }

    #[test]
    fn lambda_return_limits() {
        let mut rng = Pcg64::seed_from_u64(3);
        let r = random_vec(&mut rng, 50);
        let v = random_vec(&mut rng, 50);
        // lambda = 1: the Monte Carlo return.
        let g1 = lambda_return(&r, &v, 0.9, 1.0, 0.5).unwrap();
        assert!(close(&g1, &discount_rewards(&r, 0.9, 0.5).unwrap(), 1e-12));
        // lambda = 0: one-step TD targets r[t] + gamma * V[t+1].
        let g0 = lambda_return(&r, &v, 0.9, 0.0, 0.5).unwrap();
        let td: Vec<f64> = (0..50)
            .map(|t| r[t] + 0.9 * if t < 49 { v[t + 1] } else { 0.5 })
            .collect();
        assert!(close(&g0, &td, 1e-12));
        assert!(lambda_return::<f64>(&[], &[], 0.9, 0.8, 1.0)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn f32_kernels_agree_with_f64() {
        let mut rng = Pcg64::seed_from_u64(11);
        let r = random_vec(&mut rng, 1000);
        let v = random_vec(&mut rng, 1000);
        let r32: Vec<f32> = r.iter().map(|&x| x as f32).collect();
        let v32: Vec<f32> = v.iter().map(|&x| x as f32).collect();
        let widen = |x: Vec<f32>| x.into_iter().map(f64::from).collect::<Vec<f64>>();
        let got = widen(gae(&r32, &v32, 0.25, 0.99, 0.95).unwrap());
        assert!(close(&got, &gae(&r, &v, 0.25, 0.99, 0.95).unwrap(), 1e-4));
        let got = widen(lambda_return(&r32, &v32, 0.99, 0.8, 0.25).unwrap());
        assert!(close(
            &got,
            &lambda_return(&r, &v, 0.99, 0.8, 0.25).unwrap(),
            1e-4
        ));
    }

    fn random_ragged(rng: &mut Pcg64, trajectories: usize, max_len: usize) -> Vec<usize> {
        let mut offsets = vec![0];
        for _ in 0..trajectories {
            let len = rng.random_range(0..=max_len);
            offsets.push(offsets.last().unwrap() + len);
        }
        offsets
    }

    #[test]
    fn ragged_equals_one_gae_per_trajectory() {
        let mut rng = Pcg64::seed_from_u64(5);
        // Ragged lengths, empty trajectories included.
        // The last batch is big enough for the thread pool (PARALLEL_MIN_STEPS).
        for (trajectories, max_len) in [(1, 0), (3, 5), (13, 40), (70, 2000), (300, 2000)] {
            let offsets = random_ragged(&mut rng, trajectories, max_len);
            let total = *offsets.last().unwrap();
            let r = random_vec(&mut rng, total);
            let v = random_vec(&mut rng, total);
            let v_next = random_vec(&mut rng, trajectories);
            let out = gae_ragged(&r, &v, &offsets, &v_next, 0.99, 0.95).unwrap();
            for i in 0..trajectories {
                let span = offsets[i]..offsets[i + 1];
                let expected = gae(&r[span.clone()], &v[span.clone()], v_next[i], 0.99, 0.95);
                // Same operations in the same order: bit-identical.
                assert_eq!(out.advantages[span.clone()], expected.unwrap()[..]);
                for t in span {
                    assert_eq!(out.returns[t], out.advantages[t] + v[t]);
                }
            }
        }
    }

    #[test]
    fn ragged_lambda_returns_equal_one_call_per_trajectory() {
        let mut rng = Pcg64::seed_from_u64(9);
        for (trajectories, max_len) in [(1, 0), (4, 6), (25, 60)] {
            let offsets = random_ragged(&mut rng, trajectories, max_len);
            let total = *offsets.last().unwrap();
            let r = random_vec(&mut rng, total);
            let v = random_vec(&mut rng, total);
            let v_next = random_vec(&mut rng, trajectories);
            let out = lambda_return_ragged(&r, &v, &offsets, &v_next, 0.99, 0.8).unwrap();
            for i in 0..trajectories {
                let span = offsets[i]..offsets[i + 1];
                let expected =
                    lambda_return(&r[span.clone()], &v[span.clone()], 0.99, 0.8, v_next[i]);
                assert_eq!(out[span], expected.unwrap()[..]);
            }
        }
        let r = [0.0f32; 4];
        let err = lambda_return_ragged(&r, &r, &[0, 3], &[0.0], 0.99, 0.8).unwrap_err();
        assert!(
            matches!(err, CoreError::InvalidArgument { ref argument, .. } if argument == "offsets")
        );
        let err = lambda_return_ragged(&r, &r[..2], &[0, 4], &[0.0], 0.99, 0.8).unwrap_err();
        assert!(
            matches!(err, CoreError::InvalidArgument { ref argument, .. } if argument == "values")
        );
    }

    #[test]
    fn ragged_rejects_bad_offsets() {
        let r = [0.0f32; 4];
        let cases: [(&[usize], &str); 4] = [
            (&[0, 2], "one more than value_next"),
            (&[1, 2, 4], "must start at 0"),
            (&[0, 3, 2], "non-decreasing"),
            (&[0, 2, 5], "must end at the number of steps 4"),
        ];
        for (offsets, message) in cases {
            let err = gae_ragged(&r, &r, offsets, &[0.0, 0.0], 0.99, 0.95).unwrap_err();
            match err {
                CoreError::InvalidArgument {
                    argument,
                    message: m,
                } => {
                    assert_eq!(argument, "offsets");
                    assert!(m.contains(message), "{m}");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let err = gae_ragged(&r, &r[..3], &[0, 4], &[0.0], 0.99, 0.95).unwrap_err();
        assert!(
            matches!(err, CoreError::InvalidArgument { ref argument, .. } if argument == "values")
        );
        let err = gae(&r, &r, 0.0, f64::NAN, 0.95).unwrap_err();
        assert!(
            matches!(err, CoreError::InvalidArgument { ref argument, .. } if argument == "gamma")
        );
    }

    #[test]
    fn dispatched_kernels_match_the_portable_build_bit_for_bit() {
        // Where the processor has AVX2 the kernels run a build for it; it must
        // give exactly what the portable build gives.
        let mut rng = Pcg64::seed_from_u64(21);
        let (steps, envs) = (200, 37);
        let n = steps * envs;
        let r: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let (gamma, gamma_lambda) = (0.99f32, (0.99f64 * 0.95) as f32);
        let offsets: Vec<usize> = (0..=envs).map(|i| i * steps).collect();
        let value_next = vec![0.5f32; envs];
        let dispatched = gae_ragged(&r, &v, &offsets, &value_next, 0.99, 0.95).unwrap();
        let portable = filled_pair(n, |adv, ret| {
            let mut pieces: Vec<RaggedPiece<'_, f32>> = Vec::new();
            for ((i, a), b) in adv.chunks_mut(steps).enumerate().zip(ret.chunks_mut(steps)) {
                pieces.push(RaggedPiece {
                    rewards: &r[i * steps..(i + 1) * steps],
                    values: &v[i * steps..(i + 1) * steps],
                    value_next: 0.5,
                    advantages: a,
                    returns: b,
                });
            }
            gae_group_body(&mut pieces, gamma, gamma_lambda);
            Ok(())
        })
        .unwrap();
        assert_eq!(dispatched, portable);
    }
}
