//! A bounded resource shared fairly between callers: at most `total` units in use, and at most
//! `per_source` by one source address. Connections, buffered body bytes and decision slots are
//! each one: a single pod that can reach the Service cannot take what the API server needs.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Units in use, in all and per source.
pub struct Shares {
    total: usize,
    per_source: usize,
    used: Mutex<Used>,
}

#[derive(Default)]
struct Used {
    all: usize,
    by_source: HashMap<IpAddr, usize>,
}

/// Units taken by one source; given back when dropped.
pub struct Share {
    shares: Arc<Shares>,
    source: IpAddr,
    units: usize,
}

/// Why units could not be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Short {
    /// The source holds its share already.
    Source,
    /// Everything is in use.
    Total,
}

impl Shares {
    pub fn new(total: usize, per_source: usize) -> Arc<Self> {
        Arc::new(Self {
            total,
            per_source: per_source.min(total),
            used: Mutex::default(),
        })
    }

    /// `units` for `source`, at once or not at all.
    pub fn take(self: &Arc<Self>, source: IpAddr, units: usize) -> Result<Share, Short> {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        let mine = used.by_source.get(&source).copied().unwrap_or(0);
        if used.all + units > self.total {
            return Err(Short::Total);
        }
        if mine + units > self.per_source {
            return Err(Short::Source);
        }
        used.all += units;
        used.by_source.insert(source, mine + units);
        Ok(Share {
            shares: self.clone(),
            source,
            units,
        })
    }

    /// Units in use by everyone.
    pub fn in_use(&self) -> usize {
        self.used.lock().unwrap_or_else(|e| e.into_inner()).all
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut used = (self.shares.used.lock()).unwrap_or_else(|e| e.into_inner());
        used.all -= self.units;
        if let Some(n) = used.by_source.get_mut(&self.source) {
            *n -= self.units;
            if *n == 0 {
                used.by_source.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_gets_its_share_and_everyone_the_total() {
        let s = Shares::new(10, 4);
        let (a, b, c) = (
            IpAddr::from([10, 0, 0, 1]),
            IpAddr::from([10, 0, 0, 2]),
            IpAddr::from([10, 0, 0, 3]),
        );
        let a1 = s.take(a, 3).unwrap();
        assert_eq!(s.take(a, 2).err(), Some(Short::Source));
        let a2 = s.take(a, 1).unwrap();
        let _b = s.take(b, 4).unwrap();
        assert_eq!(s.take(c, 3).err(), Some(Short::Total));
        let c1 = s.take(c, 2).unwrap();
        assert_eq!(s.in_use(), 10);
        drop((a1, a2, c1));
        assert_eq!(s.in_use(), 4);
        assert!(s.take(a, 4).is_ok(), "given back when dropped");
        assert_eq!(
            s.take(b, 5).err(),
            Some(Short::Source),
            "more than any share"
        );
    }
}
