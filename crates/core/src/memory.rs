//! Size classes shared by the device backends' buffer pools.

/// Bytes actually allocated for a request of `bytes`: 256-byte granules up to 64 KiB, then
/// powers of two with four steps per octave, so that sizes from different inputs share buckets
/// (at most 25 % over the request).
pub fn pool_bucket(bytes: u64) -> u64 {
    let b = bytes.max(16);
    if b <= 65536 {
        return b.div_ceil(256) * 256;
    }
    let top = 63 - b.leading_zeros() as u64;
    let step = 1u64 << (top - 2);
    b.div_ceil(step) * step
}

#[cfg(test)]
mod tests {
    use super::pool_bucket;

    #[test]
    fn buckets_round_up_and_share() {
        assert_eq!(pool_bucket(4), 256);
        assert_eq!(pool_bucket(257), 512);
        assert_eq!(pool_bucket(65536), 65536);
        assert!(pool_bucket(100_000) >= 100_000 && pool_bucket(100_000) < 125_000);
        assert_eq!(pool_bucket(100_000), pool_bucket(100_001));
    }
}
