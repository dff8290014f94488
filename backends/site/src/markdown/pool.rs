//! Where pages render: on tokio's blocking pool, never on the async workers, and only a
//! bounded number at a time.
//!
//! Rendering is CPU work (Markdown, highlighting, sanitising, the layout). On an async worker
//! a slow layout stalled every other site and the console. On the blocking pool it only
//! occupies its own thread, but a flood of renders could still take all of the pool's
//! threads, so each render first takes a permit: one of [`slots`] for the whole process and
//! one of half as many for its own site, so a single site can never hold every slot and other
//! sites keep rendering while one site's layouts burn their budgets. The permits travel with
//! the job, so a client that disconnects does not free a slot its render still uses.

use std::sync::{Arc, LazyLock};

use everlock_host::storage::StorageError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::markdown::layout::LayoutError;

/// Why a site file could not be read as text. It lives here, with the render error that
/// wraps it, so that this module imports nothing of the site model that uses it.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The file is not UTF-8 text.
    #[error("{0} is not UTF-8")]
    NotUtf8(String),
}

/// Why a page could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The page's source could not be read from the store.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The layout failed beyond what the built-in fallback can cover (over budget, or the
    /// built-in layout itself failed).
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The render thread failed: the job panicked, or the runtime is shutting down.
    #[error("render worker failed")]
    Worker(#[from] tokio::task::JoinError),
    /// The render slots are closed; they never are while the process serves.
    #[error("render slots closed")]
    Closed(#[from] tokio::sync::AcquireError),
}

impl RenderError {
    /// Whether the page's layout ran past its budget (the site author's problem, not ours).
    pub fn is_over_budget(&self) -> bool {
        matches!(self, RenderError::Layout(LayoutError::OverBudget { .. }))
    }
}

/// Renders running at once in the whole process.
pub fn slots() -> usize {
    std::thread::available_parallelism()
        .map_or(2, std::num::NonZeroUsize::get)
        .max(2)
}

static SLOTS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| Arc::new(Semaphore::new(slots())));

/// One site's share of the render slots.
#[derive(Debug)]
pub struct RenderPool {
    site: Arc<Semaphore>,
}

impl Default for RenderPool {
    fn default() -> Self {
        RenderPool {
            site: Arc::new(Semaphore::new((slots() / 2).max(1))),
        }
    }
}

impl RenderPool {
    /// Runs `job` on the blocking pool once this site and the process both have a free slot.
    pub async fn run<T, F>(&self, job: F) -> Result<T, RenderError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let site = acquire(&self.site).await?;
        let global = acquire(&SLOTS).await?;
        tokio::task::spawn_blocking(move || {
            let _permits = (site, global);
            job()
        })
        .await
        .map_err(RenderError::from)
    }
}

async fn acquire(semaphore: &Arc<Semaphore>) -> Result<OwnedSemaphorePermit, RenderError> {
    semaphore
        .clone()
        .acquire_owned()
        .await
        .map_err(RenderError::from)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a panic is a test failure")]

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn renders_are_bounded_per_site() {
        let pool = Arc::new(RenderPool::default());
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut jobs = Vec::new();
        for _ in 0..8 {
            let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
            jobs.push(tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
                .unwrap()
            }));
        }
        for job in jobs {
            job.await.unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= (slots() / 2).max(1));
    }
}
