//! The work queue behind reconciliation: one entry per access request, so a burst of signals for
//! one request runs one step; never two steps of the same request at once; a ceiling on steps in
//! parallel across requests.
//!
//! Invariant: an id is in `slots` exactly while it is waiting in the ready channel or running.
//! A signal that arrives while its step runs sets `rerun`, so the change it announces is seen by
//! a step that starts after it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Default)]
struct Slot {
    running: bool,
    rerun: bool,
    /// Told when the step that is queued (or running) ends.
    waiters: Vec<oneshot::Sender<()>>,
    /// Told when the rerun after the running step ends.
    next_waiters: Vec<oneshot::Sender<()>>,
}

pub struct WorkQueue {
    slots: Mutex<HashMap<String, Slot>>,
    ready: mpsc::UnboundedSender<String>,
}

impl WorkQueue {
    pub fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<String>) {
        let (ready, receiver) = mpsc::unbounded_channel();
        (
            Arc::new(Self {
                slots: Mutex::new(HashMap::new()),
                ready,
            }),
            receiver,
        )
    }

    /// Asks for a step for `id`; the returned receiver fires when a step that started after this
    /// call has finished (successfully or not).
    pub fn enqueue(&self, id: &str) -> oneshot::Receiver<()> {
        let (done, receiver) = oneshot::channel();
        let mut slots = self.lock();
        match slots.get_mut(id) {
            Some(slot) if slot.running => {
                slot.rerun = true;
                slot.next_waiters.push(done);
            }
            Some(slot) => slot.waiters.push(done),
            None => {
                slots.insert(
                    id.to_owned(),
                    Slot {
                        waiters: vec![done],
                        ..Slot::default()
                    },
                );
                let _ = self.ready.send(id.to_owned());
            }
        }
        receiver
    }

    /// Number of requests waiting or running.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn start(&self, id: &str) {
        if let Some(slot) = self.lock().get_mut(id) {
            slot.running = true;
        }
    }

    fn finish(&self, id: &str) {
        let mut slots = self.lock();
        let Some(slot) = slots.get_mut(id) else {
            return;
        };
        for waiter in slot.waiters.drain(..) {
            let _ = waiter.send(());
        }
        if slot.rerun {
            slot.rerun = false;
            slot.running = false;
            slot.waiters = std::mem::take(&mut slot.next_waiters);
            let _ = self.ready.send(id.to_owned());
        } else {
            slots.remove(id);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        crate::lock::lock(&self.slots)
    }
}

/// Runs `step` for each id the queue hands out, at most `parallelism` at a time, until `shutdown`;
/// then waits for the steps already running.
pub async fn drive<F, Fut>(
    queue: Arc<WorkQueue>,
    mut ready: mpsc::UnboundedReceiver<String>,
    parallelism: usize,
    shutdown: CancellationToken,
    step: F,
) where
    F: Fn(String) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(parallelism.max(1)));
    let running = TaskTracker::new();
    loop {
        let id = tokio::select! {
            () = shutdown.cancelled() => break,
            id = ready.recv() => match id { Some(id) => id, None => break },
        };
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => match permit { Ok(permit) => permit, Err(_) => break },
        };
        queue.start(&id);
        let (queue, step) = (queue.clone(), step.clone());
        running.spawn(async move {
            step(id.clone()).await;
            queue.finish(&id);
            drop(permit);
        });
    }
    running.close();
    running.wait().await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn a_burst_for_one_request_runs_one_step() {
        let (queue, ready) = WorkQueue::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let waits: Vec<_> = (0..10).map(|_| queue.enqueue("a")).collect();
        let shutdown = CancellationToken::new();
        let counter = runs.clone();
        let driver = tokio::spawn(drive(
            queue.clone(),
            ready,
            4,
            shutdown.clone(),
            move |_| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            },
        ));
        for wait in waits {
            wait.await.unwrap();
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(queue.is_empty());
        shutdown.cancel();
        driver.await.unwrap();
    }

    #[tokio::test]
    async fn a_signal_during_a_step_runs_one_more_step_never_two_at_once() {
        let (queue, ready) = WorkQueue::new();
        let active = Arc::new(AtomicUsize::new(0));
        let runs = Arc::new(AtomicUsize::new(0));
        let shutdown = CancellationToken::new();
        let (a, r) = (active.clone(), runs.clone());
        let driver = tokio::spawn(drive(
            queue.clone(),
            ready,
            4,
            shutdown.clone(),
            move |_| {
                let (active, runs) = (a.clone(), r.clone());
                async move {
                    assert_eq!(
                        active.fetch_add(1, Ordering::SeqCst),
                        0,
                        "two steps of one request at once"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    runs.fetch_add(1, Ordering::SeqCst);
                    active.fetch_sub(1, Ordering::SeqCst);
                }
            },
        ));
        let first = queue.enqueue("a");
        tokio::time::sleep(Duration::from_millis(10)).await;
        let during: Vec<_> = (0..5).map(|_| queue.enqueue("a")).collect();
        first.await.unwrap();
        for wait in during {
            wait.await.unwrap();
        }
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        shutdown.cancel();
        driver.await.unwrap();
    }

    #[tokio::test]
    async fn different_requests_run_in_parallel_up_to_the_ceiling() {
        let (queue, ready) = WorkQueue::new();
        let active = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let shutdown = CancellationToken::new();
        let (a, p) = (active.clone(), peak.clone());
        let driver = tokio::spawn(drive(
            queue.clone(),
            ready,
            3,
            shutdown.clone(),
            move |_| {
                let (active, peak) = (a.clone(), p.clone());
                async move {
                    let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    active.fetch_sub(1, Ordering::SeqCst);
                }
            },
        ));
        let waits: Vec<_> = (0..10).map(|i| queue.enqueue(&i.to_string())).collect();
        for wait in waits {
            wait.await.unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 3);
        shutdown.cancel();
        driver.await.unwrap();
    }
}
