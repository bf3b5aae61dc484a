//! The watch on Teleport as a part of the process, and the loop that feeds the engine: watch
//! events, the watch's connection state (which readiness follows) and the periodic scan.

use std::sync::Arc;

use futures_util::FutureExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::reconcile::Running;
use super::{RunOptions, StartError};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::rules::RuleFilter;
use crate::teleport::watch::{self as teleport_watch, WatchEvent, WatchOptions};
use crate::teleport::{TeleportClient, TeleportError};

/// Events buffered between the watch and the engine.
const EVENT_BUFFER: usize = 1024;

/// What the watch task sends: the events, and whether it is connected.
pub struct Signals {
    events: mpsc::Receiver<WatchEvent>,
    connected: watch::Receiver<bool>,
}

/// The running watch task.
pub struct Watch {
    task: JoinHandle<Result<(), TeleportError>>,
}

impl Watch {
    /// Starts the watch; with `rules`, it also watches the Access Monitoring Rules they keep.
    pub fn start(
        client: Arc<TeleportClient>,
        options: RunOptions,
        rules: Option<RuleFilter>,
        tasks: &TaskTracker,
        shutdown: &CancellationToken,
    ) -> (Self, Signals) {
        let (events_tx, events) = mpsc::channel(EVENT_BUFFER);
        let (connected_tx, connected) = watch::channel(false);
        let task = tasks.spawn(teleport_watch::run(
            client,
            events_tx,
            connected_tx,
            shutdown.clone(),
            WatchOptions {
                fail_fast: options.fail_fast,
                rules,
            },
        ));
        (Self { task }, Signals { events, connected })
    }

    /// How the watch ended, once the process drained: an error only with `fail_fast`.
    pub fn outcome(self) -> Result<(), StartError> {
        match self.task.now_or_never() {
            Some(Ok(Err(err))) => Err(err.into()),
            _ => Ok(()),
        }
    }
}

/// Feeds the engine until shutdown (or the watch ends), then stops intake everywhere.
pub async fn run(
    config: &Config,
    running: &Running,
    metrics: &Metrics,
    mut signals: Signals,
    shutdown: &CancellationToken,
) {
    let engine = &running.engine;
    let every = config.reconcile.scan_interval;
    let mut scan = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut ready_logged = false;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            changed = signals.connected.changed() => {
                if changed.is_err() { break; }
                let up = *signals.connected.borrow();
                metrics.watch_connected.set(i64::from(up));
                if up && !ready_logged {
                    tracing::info!("Plugin is ready");
                    ready_logged = true;
                }
            }
            event = signals.events.recv() => match event {
                Some(event) => engine.on_watch_event(event).await,
                None => break,
            },
            _ = scan.tick() => engine.scan(),
        }
    }
    // Intake stops first (webhook, watch, scan); steps already running get the grace period.
    shutdown.cancel();
}
