//! The moving average of an observed duration (a consultation, a chat's handling time) behind
//! the estimated waits shown to patients: the first observation replaces the starting guess, each
//! later one moves the average by a quarter, so a trend shows within a few observations and one
//! odd case does not swing every estimate.

/// The weight of one observation, in quarters.
const OBSERVED_WEIGHT: u64 = 1;

/// The average after one more observation of `sample` seconds, given the average so far and how
/// many observations it has seen (0: it is still the starting guess).
pub fn moving_average(avg: u32, observed: u32, sample: u64) -> u32 {
    if observed == 0 {
        u32::try_from(sample).unwrap_or(u32::MAX)
    } else {
        u32::try_from((u64::from(avg) * (4 - OBSERVED_WEIGHT) + sample * OBSERVED_WEIGHT) / 4).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_replaces_then_quarter_steps() {
        assert_eq!(moving_average(480, 0, 300), 300);
        assert_eq!(moving_average(300, 1, 700), 400);
        assert_eq!(moving_average(400, 2, 400), 400);
    }
}
