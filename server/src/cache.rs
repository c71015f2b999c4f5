//! Answers cached per (route, parameters, lake state): a dashboard refreshed by fifty people runs
//! its SQL once. Each [`crate::LiveEngine`] has its own cache, so a new lake commit (a new engine)
//! starts an empty one and nothing stale is ever served. Concurrent requests for one key wait for
//! the first to compute it; a failed computation is not kept.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use tokio::sync::OnceCell;

/// The most answers one engine keeps; beyond it, answers are computed and not kept.
const MAX_ENTRIES: usize = 2048;

/// One engine's answers, as the bytes sent.
#[derive(Default)]
pub struct ResponseCache {
    entries: Mutex<HashMap<String, Arc<OnceCell<Bytes>>>>,
}

impl ResponseCache {
    /// The answer for `key`, computed by `compute` when not cached yet; `true` with an answer
    /// that was cached (or computed by a concurrent request for the same key).
    pub async fn get_or_compute<E, F>(&self, key: String, compute: F) -> Result<(Bytes, bool), E>
    where
        F: Future<Output = Result<Bytes, E>>,
    {
        let cell = {
            let mut entries = self
                .entries
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match entries.get(&key) {
                Some(cell) => Some(Arc::clone(cell)),
                None if entries.len() < MAX_ENTRIES => {
                    let cell = Arc::new(OnceCell::new());
                    entries.insert(key, Arc::clone(&cell));
                    Some(cell)
                }
                None => None,
            }
        };
        let mut computed = false;
        let compute = async {
            computed = true;
            compute.await
        };
        let answer = match cell {
            Some(cell) => cell.get_or_try_init(|| compute).await.cloned(),
            None => compute.await,
        }?;
        Ok((answer, !computed))
    }

    /// How many answers are kept.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_answer_is_computed_once_and_a_failure_not_kept() {
        let cache = ResponseCache::default();
        let runs = std::sync::atomic::AtomicUsize::new(0);
        let compute = || async {
            runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, ()>(Bytes::from_static(b"42"))
        };
        let answer = Bytes::from_static(b"42");
        assert_eq!(
            cache.get_or_compute("a".into(), compute()).await,
            Ok((answer.clone(), false))
        );
        assert_eq!(
            cache.get_or_compute("a".into(), compute()).await,
            Ok((answer.clone(), true))
        );
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
        let failed = cache
            .get_or_compute("b".into(), async { Err::<Bytes, _>("no") })
            .await;
        assert_eq!(failed, Err("no"));
        assert_eq!(
            cache.get_or_compute("b".into(), compute()).await,
            Ok((answer, false))
        );
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
