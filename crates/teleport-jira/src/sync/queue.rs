//! The work queue behind reconciliation: one entry per access request, so a burst of signals for
//! one request runs one step; never two steps of the same request at once; a ceiling on steps in
//! parallel across requests; and two lanes, so steps someone waits for start before the re-reads
//! a periodic scan asks for.
//!
//! Invariant: an id is in `slots` exactly while it is waiting in a ready channel or running, and
//! a waiting id always has a delivery on its way (a second one when its lane was raised: the
//! later delivery finds it running or gone and is dropped). A signal that arrives while its step
//! runs sets `rerun`, so the change it announces is seen by a step that starts after it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How soon a step is wanted. Ordered: the more urgent lane is the smaller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lane {
    /// A watch event, a webhook, a retry: something changed, or someone waits.
    #[default]
    Now,
    /// A periodic scan's look at a request nothing announced a change for.
    Scan,
}

struct Slot {
    running: bool,
    /// The lane of the step waiting (or running).
    lane: Lane,
    rerun: bool,
    /// The lane of the rerun after the running step.
    rerun_lane: Lane,
    /// Told when the step that is queued (or running) ends.
    waiters: Vec<oneshot::Sender<()>>,
    /// Told when the rerun after the running step ends.
    next_waiters: Vec<oneshot::Sender<()>>,
}

pub struct WorkQueue {
    slots: Mutex<HashMap<String, Slot>>,
    now: mpsc::UnboundedSender<String>,
    scan: mpsc::UnboundedSender<String>,
}

/// The receiving ends of the two lanes, for [`drive`].
pub struct Ready {
    now: mpsc::UnboundedReceiver<String>,
    scan: mpsc::UnboundedReceiver<String>,
}

impl WorkQueue {
    pub fn new() -> (Arc<Self>, Ready) {
        let (now, now_receiver) = mpsc::unbounded_channel();
        let (scan, scan_receiver) = mpsc::unbounded_channel();
        (
            Arc::new(Self {
                slots: Mutex::new(HashMap::new()),
                now,
                scan,
            }),
            Ready {
                now: now_receiver,
                scan: scan_receiver,
            },
        )
    }

    /// Asks for a step for `id` in [`Lane::Now`]; see [`WorkQueue::enqueue_in`].
    pub fn enqueue(&self, id: &str) -> oneshot::Receiver<()> {
        self.enqueue_in(id, Lane::Now)
    }

    /// Asks for a step for `id` in `lane`; the returned receiver fires when a step that started
    /// after this call has finished (successfully or not). A more urgent signal for a step still
    /// waiting moves it to the more urgent lane.
    pub fn enqueue_in(&self, id: &str, lane: Lane) -> oneshot::Receiver<()> {
        let (done, receiver) = oneshot::channel();
        self.ask(id, lane, Some(done));
        receiver
    }

    /// [`WorkQueue::enqueue_in`] for a caller that does not wait: no channel is made, and a
    /// request waiting for its step holds no allocation for it (a burst queues thousands).
    pub fn signal_in(&self, id: &str, lane: Lane) {
        self.ask(id, lane, None);
    }

    fn ask(&self, id: &str, lane: Lane, done: Option<oneshot::Sender<()>>) {
        let mut slots = self.lock();
        match slots.get_mut(id) {
            Some(slot) if slot.running => {
                slot.rerun_lane = if slot.rerun {
                    slot.rerun_lane.min(lane)
                } else {
                    lane
                };
                slot.rerun = true;
                slot.next_waiters.extend(done);
            }
            Some(slot) => {
                slot.waiters.extend(done);
                if lane < slot.lane {
                    slot.lane = lane;
                    self.deliver(id, lane);
                }
            }
            None => {
                slots.insert(
                    id.to_owned(),
                    Slot {
                        running: false,
                        lane,
                        rerun: false,
                        rerun_lane: lane,
                        waiters: done.into_iter().collect(),
                        next_waiters: Vec::new(),
                    },
                );
                self.deliver(id, lane);
            }
        }
    }

    #[cfg(test)]
    fn slot_allocations(&self, id: &str) -> Option<usize> {
        let slots = self.lock();
        let slot = slots.get(id)?;
        Some(slot.waiters.capacity() + slot.next_waiters.capacity())
    }

    /// Number of requests waiting or running.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn deliver(&self, id: &str, lane: Lane) {
        let channel = match lane {
            Lane::Now => &self.now,
            Lane::Scan => &self.scan,
        };
        let _ = channel.send(id.to_owned());
    }

    /// Marks `id` running and returns its lane; `None` for a delivery with nothing waiting (the
    /// second delivery of a step whose lane was raised).
    fn start(&self, id: &str) -> Option<Lane> {
        let mut slots = self.lock();
        let slot = slots.get_mut(id).filter(|slot| !slot.running)?;
        slot.running = true;
        Some(slot.lane)
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
            slot.lane = slot.rerun_lane;
            slot.waiters = std::mem::take(&mut slot.next_waiters);
            let lane = slot.lane;
            drop(slots);
            self.deliver(id, lane);
        } else {
            slots.remove(id);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        crate::lock::lock(&self.slots)
    }
}

/// Scan steps running at once: enough to keep a healthy Jira busy between signals, few enough
/// that a step someone waits for never finds Jira's budget taken by re-reads.
const SCAN_PARALLELISM: usize = 8;

/// Runs `step` for each id the queue hands out, at most `parallelism` at a time (of which at most
/// [`SCAN_PARALLELISM`] from [`Lane::Scan`]), until `shutdown`; then waits for the steps already
/// running. A free worker takes from [`Lane::Now`] first.
pub async fn drive<F, Fut>(
    queue: Arc<WorkQueue>,
    mut ready: Ready,
    parallelism: usize,
    shutdown: CancellationToken,
    step: F,
) where
    F: Fn(String, Lane) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let parallelism = parallelism.max(1);
    let permits = Arc::new(Semaphore::new(parallelism));
    let scan_permits = Arc::new(Semaphore::new(SCAN_PARALLELISM.min(parallelism)));
    let running = TaskTracker::new();
    loop {
        // The worker first, then the id: an id taken while every worker is busy would hold its
        // place ahead of more urgent ones that come meanwhile.
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => match permit { Ok(permit) => permit, Err(_) => break },
        };
        let scan_turn = async {
            let scan_permit = scan_permits.clone().acquire_owned().await.ok()?;
            Some((ready.scan.recv().await?, scan_permit))
        };
        let (id, scan_permit) = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            id = ready.now.recv() => match id { Some(id) => (id, None), None => break },
            turn = scan_turn => match turn { Some((id, permit)) => (id, Some(permit)), None => break },
        };
        let Some(lane) = queue.start(&id) else {
            continue;
        };
        let (queue, step) = (queue.clone(), step.clone());
        running.spawn(async move {
            step(id.clone(), lane).await;
            queue.finish(&id);
            drop((permit, scan_permit));
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

    /// Drives `queue` with four workers whose steps only count themselves.
    fn drive_counting(
        queue: &Arc<WorkQueue>,
        ready: Ready,
        shutdown: &CancellationToken,
    ) -> (tokio::task::JoinHandle<()>, Arc<AtomicUsize>) {
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = runs.clone();
        let driver = tokio::spawn(drive(
            queue.clone(),
            ready,
            4,
            shutdown.clone(),
            move |_, _| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            },
        ));
        (driver, runs)
    }

    #[tokio::test]
    async fn a_burst_for_one_request_runs_one_step() {
        let (queue, ready) = WorkQueue::new();
        let waits: Vec<_> = (0..10).map(|_| queue.enqueue("a")).collect();
        let shutdown = CancellationToken::new();
        let (driver, runs) = drive_counting(&queue, ready, &shutdown);
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
            move |_, _| {
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
            move |_, _| {
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

    /// The steps that ran, in order, with their lane.
    type RunOrder = Arc<Mutex<Vec<(String, Lane)>>>;

    /// Runs the queue with one worker, recording the order steps ran in; the first step holds
    /// the worker until `release` fires.
    fn one_worker(
        queue: &Arc<WorkQueue>,
        ready: Ready,
        release: Arc<tokio::sync::Notify>,
        shutdown: &CancellationToken,
    ) -> (RunOrder, tokio::task::JoinHandle<()>) {
        let order = Arc::new(Mutex::new(Vec::new()));
        let seen = order.clone();
        let driver = tokio::spawn(drive(
            queue.clone(),
            ready,
            1,
            shutdown.clone(),
            move |id, lane| {
                let (seen, release) = (seen.clone(), release.clone());
                async move {
                    if id == "blocker" {
                        release.notified().await;
                    }
                    seen.lock().unwrap().push((id, lane));
                }
            },
        ));
        (order, driver)
    }

    #[tokio::test]
    async fn a_step_someone_waits_for_starts_before_the_scans_queued_ahead_of_it() {
        let (queue, ready) = WorkQueue::new();
        let release = Arc::new(tokio::sync::Notify::new());
        let shutdown = CancellationToken::new();
        let (order, driver) = one_worker(&queue, ready, release.clone(), &shutdown);
        let blocker = queue.enqueue("blocker");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let scans: Vec<_> = (0..3)
            .map(|i| queue.enqueue_in(&format!("scan-{i}"), Lane::Scan))
            .collect();
        let urgent = queue.enqueue("urgent");
        release.notify_one();
        blocker.await.unwrap();
        urgent.await.unwrap();
        for scan in scans {
            scan.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        assert_eq!(order[1], ("urgent".to_owned(), Lane::Now), "{order:?}");
        assert_eq!(order.len(), 5, "{order:?}");
        shutdown.cancel();
        driver.await.unwrap();
    }

    #[tokio::test]
    async fn a_waiting_scan_step_that_becomes_urgent_runs_once_in_the_urgent_lane() {
        let (queue, ready) = WorkQueue::new();
        let release = Arc::new(tokio::sync::Notify::new());
        let shutdown = CancellationToken::new();
        let (order, driver) = one_worker(&queue, ready, release.clone(), &shutdown);
        let blocker = queue.enqueue("blocker");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let scanned = queue.enqueue_in("a", Lane::Scan);
        let signalled = queue.enqueue("a");
        release.notify_one();
        blocker.await.unwrap();
        scanned.await.unwrap();
        signalled.await.unwrap();
        // The second delivery of "a" comes after the step and must not start another.
        let again = queue.enqueue_in("b", Lane::Scan);
        again.await.unwrap();
        let order = order.lock().unwrap().clone();
        let runs_of_a: Vec<_> = order.iter().filter(|(id, _)| id == "a").collect();
        assert_eq!(runs_of_a, [&("a".to_owned(), Lane::Now)], "{order:?}");
        assert!(queue.is_empty());
        shutdown.cancel();
        driver.await.unwrap();
    }

    #[tokio::test]
    async fn scan_steps_take_only_a_few_workers_however_many_are_free() {
        let (queue, ready) = WorkQueue::new();
        let active = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let shutdown = CancellationToken::new();
        let (a, p) = (active.clone(), peak.clone());
        let driver = tokio::spawn(drive(
            queue.clone(),
            ready,
            64,
            shutdown.clone(),
            move |_, _| {
                let (active, peak) = (a.clone(), p.clone());
                async move {
                    let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    active.fetch_sub(1, Ordering::SeqCst);
                }
            },
        ));
        let waits: Vec<_> = (0..40)
            .map(|i| queue.enqueue_in(&i.to_string(), Lane::Scan))
            .collect();
        for wait in waits {
            wait.await.unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), SCAN_PARALLELISM);
        shutdown.cancel();
        driver.await.unwrap();
    }

    #[tokio::test]
    async fn a_signal_nobody_waits_for_holds_no_waiter_and_still_gets_its_step() {
        let (queue, ready) = WorkQueue::new();
        queue.signal_in("a", Lane::Now);
        queue.signal_in("a", Lane::Scan);
        assert_eq!(queue.slot_allocations("a"), Some(0));
        let waited = queue.enqueue_in("a", Lane::Now);
        assert_eq!(queue.len(), 1);
        let shutdown = CancellationToken::new();
        let (driver, runs) = drive_counting(&queue, ready, &shutdown);
        waited.await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        shutdown.cancel();
        driver.await.unwrap();
    }
}
