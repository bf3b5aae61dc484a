//! The connections Jira calls go over. HTTP/2 lets a server cap the streams of one connection
//! (the RFC asks for at least 100; common front ends allow 100 to 256), and calls past the cap
//! queue inside the connection however many the governor allows in flight: with 256 allowed and
//! a cap of 200, a burst of 10,000 issues took a third longer than its 256 would. So calls fill
//! one connection up to [`STREAMS_PER_CONNECTION`] and spill over to the next, as Go's HTTP/2
//! client does. A connection is a client of its own (reqwest keeps one HTTP/2 connection per
//! client and host), made when first needed, so an idle or lightly loaded process holds one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use super::error::JiraError;

/// The streams one connection carries before calls spill over to the next: the least a server
/// should allow (RFC 9113, `SETTINGS_MAX_CONCURRENT_STREAMS`).
pub const STREAMS_PER_CONNECTION: usize = 100;

/// How each connection's client is made (the same for all).
pub type MakeClient = Arc<dyn Fn() -> Result<reqwest::Client, JiraError> + Send + Sync>;

/// Up to `ceil(max calls in flight / STREAMS_PER_CONNECTION)` clients, each one connection.
pub struct Connections {
    make: MakeClient,
    first: reqwest::Client,
    /// The connections after the first, each made when a call first spills over to it.
    more: Box<[OnceLock<reqwest::Client>]>,
    /// Calls on each connection now, the first's at 0.
    in_flight: Box<[AtomicUsize]>,
}

/// A call's place on a connection; dropping it ends the call there.
pub struct OnConnection<'a> {
    pub client: &'a reqwest::Client,
    in_flight: &'a AtomicUsize,
}

impl Drop for OnConnection<'_> {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

impl Connections {
    /// Room for `max_calls` in flight; the first client is made now, so a bad TLS setup is a
    /// start-up error.
    pub fn new(max_calls: usize, make: MakeClient) -> Result<Self, JiraError> {
        let count = max_calls.div_ceil(STREAMS_PER_CONNECTION).max(1);
        Ok(Self {
            first: make()?,
            make,
            more: (1..count).map(|_| OnceLock::new()).collect(),
            in_flight: (0..count).map(|_| AtomicUsize::new(0)).collect(),
        })
    }

    /// The connection the next call goes over: the first with a stream to spare, else the
    /// least busy. If another client cannot be made (the first was made with the same
    /// settings, so this is not expected), the call goes over the first.
    pub fn pick(&self) -> OnConnection<'_> {
        let (index, client) = self.client(self.choose()).unwrap_or((0, &self.first));
        self.in_flight[index].fetch_add(1, Ordering::Relaxed);
        OnConnection {
            client,
            in_flight: &self.in_flight[index],
        }
    }

    /// The first client, for building requests (every client builds the same request).
    pub fn first(&self) -> &reqwest::Client {
        &self.first
    }

    fn choose(&self) -> usize {
        let loads = self.in_flight.iter().map(|n| n.load(Ordering::Relaxed));
        let mut least = (0, usize::MAX);
        for (index, load) in loads.enumerate() {
            if load < STREAMS_PER_CONNECTION {
                return index;
            }
            if load < least.1 {
                least = (index, load);
            }
        }
        least.0
    }

    fn client(&self, index: usize) -> Option<(usize, &reqwest::Client)> {
        let Some(slot) = index.checked_sub(1).and_then(|more| self.more.get(more)) else {
            return Some((0, &self.first));
        };
        if let Some(client) = slot.get() {
            return Some((index, client));
        }
        match (self.make)() {
            Ok(client) => Some((index, slot.get_or_init(|| client))),
            Err(err) => {
                tracing::warn!(error = %err, "Could not open another connection to Jira; calls share the first");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connections for `max_calls` whose clients are counted as they are made.
    fn counted(max_calls: usize) -> (Connections, Arc<AtomicUsize>) {
        let made = Arc::new(AtomicUsize::new(0));
        let make: MakeClient = {
            let made = made.clone();
            Arc::new(move || {
                made.fetch_add(1, Ordering::SeqCst);
                crate::http_common::client_builder()
                    .build()
                    .map_err(|err| JiraError::Other(err.to_string()))
            })
        };
        let connections = Connections::new(max_calls, make).expect("connections");
        (connections, made)
    }

    fn index_of(connections: &Connections, call: &OnConnection<'_>) -> usize {
        let in_flight: *const AtomicUsize = call.in_flight;
        connections
            .in_flight
            .iter()
            .position(|slot| std::ptr::eq(slot, in_flight))
            .expect("a connection of these")
    }

    #[test]
    fn calls_fill_one_connection_before_another_is_opened() {
        let (connections, made) = counted(256);
        let calls: Vec<_> = (0..STREAMS_PER_CONNECTION)
            .map(|_| connections.pick())
            .collect();
        assert!(calls.iter().all(|call| index_of(&connections, call) == 0));
        assert_eq!(
            made.load(Ordering::SeqCst),
            1,
            "one client while one connection does"
        );
        let spilled = connections.pick();
        assert_eq!(index_of(&connections, &spilled), 1);
        assert_eq!(made.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_stream_freed_on_the_first_connection_takes_the_next_call() {
        let (connections, _) = counted(256);
        let mut calls: Vec<_> = (0..=STREAMS_PER_CONNECTION)
            .map(|_| connections.pick())
            .collect();
        calls.swap_remove(0);
        let next = connections.pick();
        assert_eq!(index_of(&connections, &next), 0);
    }

    #[test]
    fn with_every_connection_full_calls_go_to_the_least_busy() {
        let (connections, made) = counted(200);
        let calls: Vec<_> = (0..2 * STREAMS_PER_CONNECTION + 3)
            .map(|_| connections.pick())
            .collect();
        let on_second = calls
            .iter()
            .filter(|call| index_of(&connections, call) == 1)
            .count();
        assert_eq!(
            on_second,
            STREAMS_PER_CONNECTION + 1,
            "extra calls alternate"
        );
        assert_eq!(
            made.load(Ordering::SeqCst),
            2,
            "no more than the ceiling needs"
        );
    }
}
