//! The access-request watch: a stream that starts with INIT and then carries every change, kept
//! open across disconnects and credential renewals.
//!
//! Teleport does not replay what happened while a watch was down, so every INIT is passed on: the
//! consumer treats it as "list again", which is how nothing is missed across a reconnect.

use std::sync::Arc;
use std::time::Duration;

use teleport_proto::proto::{Event, Operation, event::Resource};
use teleport_proto::teleport::accessmonitoringrules::v1::AccessMonitoringRule;
use teleport_proto::types::AccessRequestV3;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::client::TeleportClient;
use super::error::TeleportError;
use crate::backoff::Backoff;
use crate::rules::RuleFilter;

/// How long Teleport may take to send INIT after a watch is opened, as in the Go plugin.
const INIT_TIMEOUT: Duration = Duration::from_secs(15);

/// What the watch reports.
#[derive(Clone, Debug)]
pub enum WatchEvent {
    /// The watch is (re)established; changes from before it may have been missed.
    Init,
    Put(Box<AccessRequestV3>),
    Delete {
        id: String,
    },
    /// The Access Monitoring Rules in force as of this (re)connection. Sent before
    /// [`WatchEvent::Init`].
    Rules(Vec<AccessMonitoringRule>),
    /// Teleport will not stream or list the rules to this plugin: none are known. Sent instead of
    /// [`WatchEvent::Rules`].
    RulesUnreadable,
    RulePut(Box<AccessMonitoringRule>),
    RuleDelete {
        name: String,
    },
}

/// Options of [`run`].
#[derive(Clone, Debug, Default)]
pub struct WatchOptions {
    /// `TELEPORT_PLUGIN_FAIL_FAST`: end with an error on the first disconnect instead of reconnecting.
    pub fail_fast: bool,
    /// Also watch the Access Monitoring Rules this filter keeps.
    pub rules: Option<RuleFilter>,
}

/// Keeps a watch open until `shutdown`, sending what it sees to `events` and whether it is
/// connected to `connected`. Returns an error only with `fail_fast`, or when Teleport refuses the
/// watch itself (a permission or a protocol problem that reconnecting cannot fix).
pub async fn run(
    client: Arc<TeleportClient>,
    events: mpsc::Sender<WatchEvent>,
    connected: watch::Sender<bool>,
    shutdown: CancellationToken,
    options: WatchOptions,
) -> Result<(), TeleportError> {
    let mut backoff = Backoff::reconnect();
    let mut connection_changes = client.connection_changes();
    let mut rules = options.rules.clone().map(RuleWatch::new);
    loop {
        connection_changes.mark_unchanged();
        let mut stream = Stream {
            client: &client,
            events: &events,
            connected: &connected,
            rules: rules.as_mut(),
        };
        let outcome = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            outcome = stream.watch_once(&mut backoff, &mut connection_changes) => outcome,
        };
        connected.send_replace(false);
        match outcome {
            StreamEnd::ConsumerGone => return Ok(()),
            StreamEnd::CredentialsRenewed => {
                tracing::info!("Reopening the watch with renewed credentials");
                continue;
            }
            StreamEnd::Failed(err)
                if !err.is_transient() && !matches!(err, TeleportError::NotFound(_)) =>
            {
                tracing::error!(error = %err, "Watcher event loop failed");
                return Err(err);
            }
            StreamEnd::Failed(err) if options.fail_fast => {
                return Err(TeleportError::Unavailable(format!(
                    "Connection problem detected. Exiting as fail fast is on: {err}"
                )));
            }
            StreamEnd::Failed(err) => {
                tracing::error!(error = %err, "Connection problem detected. Attempting to reconnect.");
            }
            StreamEnd::Closed if options.fail_fast => {
                return Err(TeleportError::Unavailable(
                    "Watcher stream closed. Exiting as fail fast is on.".into(),
                ));
            }
            StreamEnd::Closed => tracing::error!("Watcher stream closed. Attempting to reconnect."),
        }
        let delay = backoff.next_delay();
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(delay) => {}
            _ = connection_changes.changed() => {}
        }
    }
}

enum StreamEnd {
    Closed,
    Failed(TeleportError),
    CredentialsRenewed,
    ConsumerGone,
}

/// One watch stream and where its events go.
struct Stream<'a> {
    client: &'a TeleportClient,
    events: &'a mpsc::Sender<WatchEvent>,
    connected: &'a watch::Sender<bool>,
    rules: Option<&'a mut RuleWatch>,
}

impl Stream<'_> {
    async fn watch_once(
        &mut self,
        backoff: &mut Backoff,
        connection_changes: &mut watch::Receiver<u64>,
    ) -> StreamEnd {
        let (client, events, connected) = (self.client, self.events, self.connected);
        let mut stream = match client.watch_access_requests(self.rules.is_some()).await {
            Ok(stream) => stream,
            Err(err) => return StreamEnd::Failed(err),
        };
        let init = match first_event_is_init(&mut stream).await {
            Ok(init) => init,
            Err(end) => return end,
        };
        if let Some(rules) = self.rules.as_deref_mut() {
            // Rules first: the listing that INIT sets off must be routed by them.
            let listed = match rules.after_init(client, &init).await {
                Ok(listed) => listed,
                Err(err) => return StreamEnd::Failed(err),
            };
            let event = listed.map_or(WatchEvent::RulesUnreadable, WatchEvent::Rules);
            if events.send(event).await.is_err() {
                return StreamEnd::ConsumerGone;
            }
        }
        tracing::debug!("Watcher connected");
        backoff.reset();
        connected.send_replace(true);
        if events.send(WatchEvent::Init).await.is_err() {
            return StreamEnd::ConsumerGone;
        }
        loop {
            let message = tokio::select! {
                message = stream.message() => message,
                _ = connection_changes.changed() => return StreamEnd::CredentialsRenewed,
            };
            let event = match message {
                Ok(Some(event)) => event,
                Ok(None) => return StreamEnd::Closed,
                Err(status) => return StreamEnd::Failed(status.into()),
            };
            let Some(event) = decode(event) else { continue };
            if events.send(event).await.is_err() {
                return StreamEnd::ConsumerGone;
            }
        }
    }
}

/// The stream's first event, which must be INIT (within [`INIT_TIMEOUT`]).
async fn first_event_is_init(stream: &mut tonic::Streaming<Event>) -> Result<Event, StreamEnd> {
    match tokio::time::timeout(INIT_TIMEOUT, stream.message()).await {
        Err(_) => Err(StreamEnd::Failed(TeleportError::Unavailable(
            "watcher initialization timed out".into(),
        ))),
        Ok(Err(status)) => Err(StreamEnd::Failed(status.into())),
        Ok(Ok(None)) => Err(StreamEnd::Closed),
        Ok(Ok(Some(event))) if event.r#type != Operation::Init as i32 => {
            Err(StreamEnd::Failed(TeleportError::Unavailable(format!(
                "unexpected event type {:?}",
                Operation::try_from(event.r#type).map_or_else(
                    |_| event.r#type.to_string(),
                    |op| op.as_str_name().to_owned()
                )
            ))))
        }
        Ok(Ok(Some(init))) => Ok(init),
    }
}

/// Turns a wire event into a [`WatchEvent`]; events of other kinds or shapes are skipped.
fn decode(event: Event) -> Option<WatchEvent> {
    match (Operation::try_from(event.r#type), event.resource) {
        (Ok(Operation::Put), Some(Resource::AccessRequest(request))) => {
            Some(WatchEvent::Put(Box::new(request)))
        }
        (Ok(Operation::Delete), Some(Resource::ResourceHeader(header)))
            if header.kind == super::ACCESS_REQUEST_KIND =>
        {
            header
                .metadata
                .map(|metadata| WatchEvent::Delete { id: metadata.name })
        }
        (Ok(Operation::Put), Some(Resource::AccessMonitoringRule(rule))) => {
            Some(WatchEvent::RulePut(Box::new(rule)))
        }
        (Ok(Operation::Delete), Some(Resource::ResourceHeader(header)))
            if header.kind == super::ACCESS_MONITORING_RULE_KIND =>
        {
            header.metadata.map(|metadata| WatchEvent::RuleDelete {
                name: metadata.name,
            })
        }
        (Ok(Operation::Init), _) => Some(WatchEvent::Init),
        (op, _) => {
            tracing::warn!(operation = ?op, "Skipping an unexpected watch event");
            None
        }
    }
}

/// The rules side of the watch: what each INIT means for them, told to the operator once.
struct RuleWatch {
    filter: RuleFilter,
    told_not_streamed: bool,
}

impl RuleWatch {
    fn new(filter: RuleFilter) -> Self {
        Self {
            filter,
            told_not_streamed: false,
        }
    }

    /// The rules in force, listed after INIT when Teleport accepted the rule kind; none when it
    /// did not (the role lacks `access_monitoring_rule: read, list`, or the server is older).
    async fn after_init(
        &mut self,
        client: &TeleportClient,
        init: &Event,
    ) -> Result<Option<Vec<AccessMonitoringRule>>, TeleportError> {
        // A server that sends no status predates partial success: it would have refused the
        // watch rather than drop a kind.
        let accepted = match &init.resource {
            Some(Resource::WatchStatus(status)) => status.spec.as_ref().is_some_and(|spec| {
                spec.kinds
                    .iter()
                    .any(|k| k.kind == super::ACCESS_MONITORING_RULE_KIND)
            }),
            _ => true,
        };
        if !accepted {
            self.tell_not_streamed("Teleport does not stream Access Monitoring Rules to this plugin (grant its role access_monitoring_rule: [read, list])");
            return Ok(None);
        }
        match client.access_monitoring_rules(&self.filter).await {
            Ok(rules) => {
                self.told_not_streamed = false;
                tracing::info!(rules = rules.len(), notification_name = %self.filter.notification_name, "Access Monitoring Rules loaded");
                Ok(Some(rules))
            }
            Err(err @ (TeleportError::AccessDenied(_) | TeleportError::NotImplemented(_))) => {
                self.tell_not_streamed(&format!("Teleport will not list Access Monitoring Rules ({err}); grant the plugin's role access_monitoring_rule: [read, list]"));
                Ok(None)
            }
            // Anything else may pass: reconnect and list again.
            Err(err) => Err(TeleportError::Unavailable(format!(
                "listing Access Monitoring Rules: {err}"
            ))),
        }
    }

    fn tell_not_streamed(&mut self, why: &str) {
        if !self.told_not_streamed {
            tracing::info!("{why}; every request goes to [jira] project");
            self.told_not_streamed = true;
        }
    }
}

/// Reads `TELEPORT_PLUGIN_FAIL_FAST` as Go's `strconv.ParseBool` would.
pub fn fail_fast_from_env(value: Option<&str>) -> Result<bool, String> {
    match value {
        None | Some("") => Ok(false),
        Some("1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(true),
        Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Ok(false),
        Some(other) => Err(format!(
            "failed to parse content '{other}' of the TELEPORT_PLUGIN_FAIL_FAST environment variable"
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fail_fast_accepts_go_booleans_only() {
        assert_eq!(fail_fast_from_env(None), Ok(false));
        assert_eq!(fail_fast_from_env(Some("TRUE")), Ok(true));
        assert_eq!(fail_fast_from_env(Some("f")), Ok(false));
        assert!(
            fail_fast_from_env(Some("yes"))
                .unwrap_err()
                .contains("'yes'")
        );
    }
}
