//! Weights rearranged once and reused. A stride-1 convolution's backward-data runs as a forward
//! convolution with the flipped, transposed weight, and rearranging a 3×3 512-channel weight
//! costs as much as the convolution at 7×7; a backend keeps the rearranged copy while the
//! original buffer lives (a `Weak` to it is the key's proof: a freed buffer whose address is
//! reused does not match). Buffers are never written after they are made, so a live buffer's
//! copy stays valid.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

type Entry<S, D> = (Weak<S>, Arc<D>);
type Map<S, D> = HashMap<(usize, Vec<usize>), Entry<S, D>>;

/// Copies `D` derived from buffers `S`, keyed by the original's address and a tag (what the
/// rearrangement depends on besides the values).
#[derive(Debug)]
pub struct Derived<S, D> {
    map: Mutex<Map<S, D>>,
}

impl<S, D> Default for Derived<S, D> {
    fn default() -> Self {
        Derived {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<S, D> Derived<S, D> {
    /// The copy of `src` that `make` derives, computed at most once while `src` lives.
    pub fn get(&self, src: &Arc<S>, tag: &[usize], make: impl FnOnce(&S) -> D) -> Arc<D> {
        match self.try_get(src, tag, |s| Ok::<D, std::convert::Infallible>(make(s))) {
            Ok(d) => d,
            Err(e) => match e {},
        }
    }

    /// [`Derived::get`] with a fallible `make`; an error caches nothing.
    pub fn try_get<E>(
        &self,
        src: &Arc<S>,
        tag: &[usize],
        make: impl FnOnce(&S) -> Result<D, E>,
    ) -> Result<Arc<D>, E> {
        let key = (Arc::as_ptr(src) as usize, tag.to_vec());
        {
            let mut map = self.lock();
            // Entries of freed buffers go as soon as anything is looked up.
            map.retain(|_, (weak, _)| weak.strong_count() > 0);
            if let Some((weak, copy)) = map.get(&key) {
                if weak.upgrade().is_some_and(|w| Arc::ptr_eq(&w, src)) {
                    return Ok(copy.clone());
                }
            }
        }
        let copy = Arc::new(make(src)?);
        let mut map = self.lock();
        map.retain(|_, (weak, _)| weak.strong_count() > 0);
        map.insert(key, (Arc::downgrade(src), copy.clone()));
        Ok(copy)
    }

    /// Drops the copies of buffers that no longer live (otherwise dropped at the next lookup);
    /// how many.
    pub fn purge(&self) -> usize {
        let mut map = self.lock();
        let before = map.len();
        map.retain(|_, (weak, _)| weak.strong_count() > 0);
        before - map.len()
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.lock()
            .values()
            .filter(|(w, _)| w.strong_count() > 0)
            .count()
    }

    /// Whether no live entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Map<S, D>> {
        // A panic while holding the lock leaves only a cache behind: keep using it.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_once_per_live_buffer_and_forgets_freed_ones() {
        let d = Derived::<Vec<f32>, Vec<f32>>::default();
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
        drop(w2);
        assert_eq!(d.purge(), 1);
        assert!(d.is_empty());
    }

    #[test]
    fn a_failed_derivation_caches_nothing() {
        let d = Derived::<Vec<f32>, Vec<f32>>::default();
        let w = Arc::new(vec![1.0f32]);
        assert_eq!(d.try_get(&w, &[1], |_| Err("no")), Err("no"));
        assert!(d.is_empty());
        let c = d.try_get(&w, &[1], |s| Ok::<_, ()>(s.to_vec())).unwrap();
        assert_eq!(*c, vec![1.0]);
    }
}
