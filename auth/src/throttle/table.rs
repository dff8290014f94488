//! A bounded table of throttle records that evicts the oldest idle record when full.
//!
//! Clearing a full table (the old behaviour) lifted every lockout at once, so an attacker
//! could reset all throttling by spraying enough distinct logins. Here a full table evicts
//! one record per insert, in O(log n): first the idle record touched longest ago, and only
//! when every record is under an active lockout, the lockout that ends soonest. A lockout
//! therefore survives any number of new entries unless the table is full of lockouts.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::time::Instant;

/// What the table needs to know about a record to order it for eviction.
pub(super) trait Tracked {
    /// When the record last changed.
    fn last(&self) -> Instant;
    /// When its lockout ends, if it has one (past instants mean none).
    fn locked_until(&self) -> Option<Instant>;
}

/// Which eviction index a record sits in, with its position there.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// Not locked: ordered by `last`.
    Idle(Instant),
    /// Locked: ordered by the end of the lockout.
    Locked(Instant),
}

/// Records by key, with two ordered indexes for eviction.
#[derive(Debug)]
pub(super) struct Table<K, V> {
    capacity: usize,
    entries: HashMap<K, (V, Slot)>,
    idle: BTreeSet<(Instant, K)>,
    locked: BTreeSet<(Instant, K)>,
}

impl<K: Hash + Ord + Clone, V: Tracked> Table<K, V> {
    /// An empty table holding at most `capacity` records (at least one).
    pub(super) fn new(capacity: usize) -> Table<K, V> {
        Table {
            capacity: capacity.max(1),
            entries: HashMap::new(),
            idle: BTreeSet::new(),
            locked: BTreeSet::new(),
        }
    }

    /// The record under `key`, if tracked.
    pub(super) fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key).map(|(v, _)| v)
    }

    /// How many records are tracked.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Applies `change` to the record under `key`, creating it with `fresh` first (after
    /// evicting one record if the table is full), and re-indexes it.
    pub(super) fn update<R>(
        &mut self,
        key: &K,
        now: Instant,
        fresh: impl FnOnce() -> V,
        change: impl FnOnce(&mut V) -> R,
    ) -> R {
        let mut value = match self.take(key) {
            Some(value) => value,
            None => {
                if self.entries.len() >= self.capacity {
                    self.evict_one(now);
                }
                fresh()
            }
        };
        let out = change(&mut value);
        let slot = match value.locked_until() {
            Some(until) if until > now => {
                self.locked.insert((until, key.clone()));
                Slot::Locked(until)
            }
            _ => {
                let last = value.last();
                self.idle.insert((last, key.clone()));
                Slot::Idle(last)
            }
        };
        self.entries.insert(key.clone(), (value, slot));
        out
    }

    /// Forgets the record under `key`.
    pub(super) fn remove(&mut self, key: &K) {
        self.take(key);
    }

    /// Removes `key`'s record and its index entry, returning the record.
    fn take(&mut self, key: &K) -> Option<V> {
        let (value, slot) = self.entries.remove(key)?;
        // The index entry is rebuilt from the stored slot, so removal finds exactly the
        // tuple that was inserted (an owned key is needed to probe a tuple set).
        match slot {
            Slot::Idle(at) => self.idle.remove(&(at, key.clone())),
            Slot::Locked(at) => self.locked.remove(&(at, key.clone())),
        };
        Some(value)
    }

    /// Evicts one record: the idle one touched longest ago, else the lockout ending first.
    fn evict_one(&mut self, now: Instant) {
        self.release_expired(now);
        let victim = self
            .idle
            .pop_first()
            .or_else(|| self.locked.pop_first())
            .map(|(_, key)| key);
        if let Some(key) = victim {
            self.entries.remove(&key);
        }
    }

    /// Moves records whose lockout has ended to the idle index, where they rank by age
    /// like any other record. Each record moves at most once per lockout, so this is
    /// amortised O(log n).
    fn release_expired(&mut self, now: Instant) {
        while let Some((until, key)) = self.locked.first().cloned() {
            if until > now {
                break;
            }
            self.locked.remove(&(until, key.clone()));
            if let Some((value, slot)) = self.entries.get_mut(&key) {
                let last = value.last();
                *slot = Slot::Idle(last);
                self.idle.insert((last, key));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[derive(Debug)]
    struct R {
        last: Instant,
        until: Option<Instant>,
    }

    impl Tracked for R {
        fn last(&self) -> Instant {
            self.last
        }
        fn locked_until(&self) -> Option<Instant> {
            self.until
        }
    }

    fn touch(t: &mut Table<u32, R>, key: u32, now: Instant, until: Option<Instant>) {
        t.update(
            &key,
            now,
            || R {
                last: now,
                until: None,
            },
            |r| {
                r.last = now;
                r.until = until;
            },
        );
    }

    #[test]
    fn full_table_evicts_the_oldest_idle_record_and_keeps_lockouts() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut t = Table::new(3);
        touch(&mut t, 1, at(0), Some(at(100)));
        touch(&mut t, 2, at(1), None);
        touch(&mut t, 3, at(2), None);
        // Key 2 is the oldest idle record; the older key 1 is locked and stays.
        touch(&mut t, 4, at(3), None);
        assert_eq!(t.len(), 3);
        assert!(t.get(&2).is_none());
        assert!(t.get(&1).is_some() && t.get(&3).is_some() && t.get(&4).is_some());
        // Touching key 3 makes it the newest, so key 4 goes next.
        touch(&mut t, 3, at(4), None);
        touch(&mut t, 5, at(5), None);
        assert!(t.get(&4).is_none() && t.get(&3).is_some());
        // Many new records never evict the active lockout.
        for k in 10..1000 {
            touch(&mut t, k, at(6), None);
        }
        assert_eq!(t.len(), 3);
        assert!(t.get(&1).is_some());
        // Once the lockout has ended it ages like any record and is the oldest.
        touch(&mut t, 2000, at(101), None);
        assert!(t.get(&1).is_none());
    }

    #[test]
    fn a_table_full_of_lockouts_evicts_the_one_ending_first() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut t = Table::new(2);
        touch(&mut t, 1, at(0), Some(at(50)));
        touch(&mut t, 2, at(1), Some(at(40)));
        touch(&mut t, 3, at(2), None);
        assert!(t.get(&2).is_none());
        assert!(t.get(&1).is_some() && t.get(&3).is_some());
        t.remove(&3);
        t.remove(&3);
        assert_eq!(t.len(), 1);
    }
}
