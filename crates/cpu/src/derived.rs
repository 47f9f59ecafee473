//! Weights rearranged once and reused: a stride-1 convolution's backward-data runs as a forward
//! convolution with the flipped, transposed weight, and rearranging a 3×3 512-channel weight
//! costs as much as the convolution at 7×7. The cache holds the rearranged copy while the
//! original buffer lives (a `Weak` to it is the key's proof: a freed buffer whose address is
//! reused does not match).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

type Entry = (Weak<Vec<f32>>, Arc<Vec<f32>>);

/// Rearranged copies of weight buffers, keyed by the original's address and a tag (what the
/// rearrangement depends on besides the values).
#[derive(Debug, Default)]
pub struct Derived {
    map: Mutex<HashMap<(usize, Vec<usize>), Entry>>,
}

impl Derived {
    /// The copy of `src` that `make` derives, computed at most once while `src` lives.
    pub fn get(
        &self,
        src: &Arc<Vec<f32>>,
        tag: &[usize],
        make: impl FnOnce(&[f32]) -> Vec<f32>,
    ) -> Arc<Vec<f32>> {
        let key = (Arc::as_ptr(src) as usize, tag.to_vec());
        {
            let mut map = self.lock();
            // Entries of freed weights go as soon as anything is looked up.
            map.retain(|_, (weak, _)| weak.strong_count() > 0);
            if let Some((weak, copy)) = map.get(&key) {
                if weak.upgrade().is_some_and(|w| Arc::ptr_eq(&w, src)) {
                    return copy.clone();
                }
            }
        }
        let copy = Arc::new(make(src));
        let mut map = self.lock();
        map.retain(|_, (weak, _)| weak.strong_count() > 0);
        map.insert(key, (Arc::downgrade(src), copy.clone()));
        copy
    }

    /// Live entries.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock()
            .values()
            .filter(|(w, _)| w.strong_count() > 0)
            .count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(usize, Vec<usize>), Entry>> {
        // A panic while holding the lock leaves only a cache behind: keep using it.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_once_per_live_buffer_and_forgets_freed_ones() {
        let d = Derived::default();
        let w = Arc::new(vec![1.0f32, 2.0]);
        let mut calls = 0;
        let a = d.get(&w, &[7], |s| {
            calls += 1;
            s.iter().map(|v| v * 2.0).collect()
        });
        let b = d.get(&w, &[7], |_| unreachable!("cached"));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(*a, vec![2.0, 4.0]);
        assert_eq!(calls, 1);
        let other_tag = d.get(&w, &[8], |s| s.to_vec());
        assert_eq!(*other_tag, vec![1.0, 2.0]);
        drop(w);
        let w2 = Arc::new(vec![5.0f32, 6.0]);
        let c = d.get(&w2, &[7], |s| s.to_vec());
        assert_eq!(*c, vec![5.0, 6.0]);
        assert_eq!(d.len(), 1);
    }
}
