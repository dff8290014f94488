//! One fetch per missing blob: the first request for a digest leads the fetch, later ones
//! follow it and wait until it is over, then read the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use crate::names::OciDigest;

/// Blobs fetched at the same time at most; more missing blobs wait for a slot. Each fetch
/// holds an upstream connection and a staged file.
pub(crate) const MAX_FLIGHTS: usize = 64;

/// The fetches in progress, by digest; the receiver turns `true` when a fetch is over.
#[derive(Clone, Default)]
pub(crate) struct Flights(Arc<Mutex<HashMap<OciDigest, watch::Receiver<bool>>>>);

/// What a request for a missing blob does.
pub(crate) enum Role {
    /// Fetch it; dropping the guard ends the flight and wakes the followers.
    Leader(FlightGuard),
    /// Wait for the leader, then read the store.
    Follower(watch::Receiver<bool>),
}

/// The leader's claim on a digest.
pub(crate) struct FlightGuard {
    flights: Flights,
    digest: OciDigest,
    done: watch::Sender<bool>,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        self.flights
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.digest);
        let _ = self.done.send(true);
    }
}

impl Flights {
    /// Joins the flight of `digest`, leading it if there is none.
    pub(crate) fn join(&self, digest: &OciDigest) -> Role {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(rx) = map.get(digest) {
            return Role::Follower(rx.clone());
        }
        let (done, rx) = watch::channel(false);
        map.insert(digest.clone(), rx);
        Role::Leader(FlightGuard {
            flights: self.clone(),
            digest: digest.clone(),
            done,
        })
    }

    /// Fetches in progress.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// Waits until a followed flight is over (however it ended).
pub(crate) async fn follow(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|done| *done).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_leader_per_digest_and_followers_wake_when_it_ends() {
        let flights = Flights::default();
        let d = OciDigest::sha256_of(b"x");
        let Role::Leader(guard) = flights.join(&d) else {
            panic!("first is the leader");
        };
        let Role::Follower(rx) = flights.join(&d) else {
            panic!("second follows");
        };
        let other = OciDigest::sha256_of(b"y");
        assert!(matches!(flights.join(&other), Role::Leader(_)));
        assert_eq!(flights.len(), 1, "the dropped leader of y ended its flight");
        let waiter = tokio::spawn(follow(rx));
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(guard);
        waiter.await.unwrap();
        assert_eq!(flights.len(), 0);
        assert!(matches!(flights.join(&d), Role::Leader(_)));
    }
}
