//! WatchEvents: which kinds a caller may watch, and the fan-out of access-request and
//! access-monitoring-rule events to open streams.
//!
//! A watch is checked in two layers, as in Teleport: permissions per kind (the `ServerWithRoles` layer,
//! where `AllowPartialSuccess` drops what the caller may not watch), then support per kind (the event
//! fan-out, where it drops what the server cannot stream). Each stream has a bounded queue; a watcher
//! that falls that far behind is closed, as Teleport closes slow watchers.

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use teleport_proto::proto::{Event, Operation, event};
use teleport_proto::teleport::accessmonitoringrules::v1::AccessMonitoringRule;
use teleport_proto::types::{
    AccessRequestV3, Metadata, RequestState, ResourceHeader, WatchKind, WatchStatusSpecV1,
    WatchStatusV1,
};

use super::kinds::{KIND_ACCESS_MONITORING_RULE, KIND_ACCESS_REQUEST, request_id, rule_name};
use super::users::{Caller, action_denied, require_rule_read};

/// The permission layer: returns the kinds the caller may watch.
pub(crate) fn authorize(
    caller: &Caller,
    kinds: Vec<WatchKind>,
    allow_partial: bool,
) -> Result<Vec<WatchKind>, Status> {
    if kinds.is_empty() {
        return Err(Status::permission_denied("can't setup global watch"));
    }
    let mut permitted = Vec::with_capacity(kinds.len());
    for kind in kinds {
        match permission(caller, &kind) {
            Ok(()) => permitted.push(kind),
            Err(_) if allow_partial => {}
            Err(denied) => return Err(denied),
        }
    }
    if permitted.is_empty() {
        return Err(Status::invalid_argument(
            "none of the requested kinds can be watched",
        ));
    }
    Ok(permitted)
}

fn permission(caller: &Caller, kind: &WatchKind) -> Result<(), Status> {
    if kind.kind == KIND_ACCESS_MONITORING_RULE {
        return require_rule_read(caller, "read");
    }
    if kind.kind != KIND_ACCESS_REQUEST {
        return if caller.spec.admin {
            Ok(())
        } else {
            Err(action_denied("read", &kind.kind))
        };
    }
    let filter = RequestFilter::parse(&kind.filter)?;
    // Users may always watch their own requests.
    if caller.spec.manages_requests() || (!filter.user.is_empty() && filter.user == caller.name) {
        Ok(())
    } else {
        Err(action_denied("read", KIND_ACCESS_REQUEST))
    }
}

/// The fan-out layer: keeps the kinds this server can stream (access requests and rules).
pub(crate) fn supported(
    kinds: Vec<WatchKind>,
    allow_partial: bool,
) -> Result<Vec<WatchKind>, Status> {
    let mut valid = Vec::with_capacity(kinds.len());
    for kind in kinds {
        let streamable = [KIND_ACCESS_REQUEST, KIND_ACCESS_MONITORING_RULE];
        if streamable.contains(&kind.kind.as_str()) && kind.sub_kind.is_empty() {
            valid.push(kind);
        } else if !allow_partial {
            return Err(Status::invalid_argument(format!(
                "resource type {:?} is not supported by this event stream",
                kind.kind
            )));
        }
    }
    if valid.is_empty() {
        return Err(Status::invalid_argument(
            "none of the requested resources are supported by this fanoutWatcher",
        ));
    }
    Ok(valid)
}

/// The INIT event, carrying the accepted kinds when `with_status` (as v15+ servers do).
pub(crate) fn init_event(kinds: &[WatchKind], with_status: bool) -> Event {
    let resource = with_status.then(|| {
        event::Resource::WatchStatus(WatchStatusV1 {
            kind: "watch_status".into(),
            sub_kind: String::new(),
            version: "v1".into(),
            metadata: Some(Metadata {
                name: "watch_status".into(),
                ..Metadata::default()
            }),
            spec: Some(WatchStatusSpecV1 {
                kinds: kinds.to_vec(),
            }),
        })
    });
    Event {
        r#type: Operation::Init.into(),
        resource,
    }
}

/// The `id`/`user`/`state` filter of an access-request watch (`AccessRequestFilter.FromMap`).
#[derive(Debug, Clone, Default)]
struct RequestFilter {
    id: String,
    user: String,
    state: Option<i32>,
}

impl RequestFilter {
    fn parse(map: &HashMap<String, String>) -> Result<Self, Status> {
        let mut filter = Self::default();
        let mut keys: Vec<_> = map.keys().collect();
        keys.sort();
        for key in keys {
            let value = &map[key];
            match key.as_str() {
                "id" => filter.id.clone_from(value),
                "user" => filter.user.clone_from(value),
                "state" => {
                    let state = RequestState::from_str_name(value).ok_or_else(|| {
                        Status::invalid_argument(format!("unknown request state: {value:?}"))
                    })?;
                    filter.state = Some(state.into());
                }
                _ => {
                    return Err(Status::invalid_argument(format!(
                        "unknown filter key {key}"
                    )));
                }
            }
        }
        Ok(filter)
    }

    fn matches(&self, request: &AccessRequestV3) -> bool {
        let Some(spec) = request.spec.as_ref() else {
            return false;
        };
        (self.id.is_empty() || self.id == request_id(request))
            && (self.user.is_empty() || self.user == spec.user)
            && self.state.is_none_or(|s| s == spec.state)
    }
}

/// One accepted kind of one watcher.
#[derive(Debug, Clone)]
struct KindMatcher {
    kind: String,
    name: String,
    filter: RequestFilter,
}

#[derive(Debug)]
struct Watcher {
    kinds: Vec<KindMatcher>,
    events: mpsc::Sender<Event>,
    close: Option<oneshot::Sender<Status>>,
}

impl Watcher {
    /// Filters apply to PUT only; DELETE is filtered by resource name alone (`WatchKind.Matches`).
    fn wants(&self, kind: &str, name: &str, put: Option<&AccessRequestV3>) -> bool {
        self.kinds.iter().any(|k| {
            k.kind == kind
                && (k.name.is_empty() || k.name == name)
                && put.is_none_or(|request| k.filter.matches(request))
        })
    }

    fn close(&mut self, status: Status) {
        if let Some(close) = self.close.take() {
            let _ = close.send(status);
        }
    }
}

/// The open watch streams.
#[derive(Debug, Default)]
pub(crate) struct WatchHub {
    watchers: Vec<Watcher>,
}

impl WatchHub {
    /// Opens a stream whose first event is `init`, delivering later events that match `kinds`.
    pub(crate) fn subscribe(
        &mut self,
        kinds: &[WatchKind],
        init: Event,
        buffer: usize,
    ) -> WatchStream {
        let (events_tx, events) = mpsc::channel(buffer.max(1));
        let (close_tx, close) = oneshot::channel();
        events_tx
            .try_send(init)
            .expect("invariant: a new channel has room for INIT");
        let kinds = kinds
            .iter()
            .map(|k| KindMatcher {
                kind: k.kind.clone(),
                name: k.name.clone(),
                filter: RequestFilter::parse(&k.filter).unwrap_or_default(),
            })
            .collect();
        self.watchers.push(Watcher {
            kinds,
            events: events_tx,
            close: Some(close_tx),
        });
        WatchStream {
            events,
            close: Some(close),
            done: false,
        }
    }

    pub(crate) fn publish_put(&mut self, request: &AccessRequestV3) {
        let event = Event {
            r#type: Operation::Put.into(),
            resource: Some(event::Resource::AccessRequest(request.clone())),
        };
        self.publish(
            KIND_ACCESS_REQUEST,
            request_id(request),
            Some(request),
            &event,
        );
    }

    pub(crate) fn publish_delete(&mut self, id: &str) {
        let event = delete_event(KIND_ACCESS_REQUEST, "v3", id);
        self.publish(KIND_ACCESS_REQUEST, id, None, &event);
    }

    pub(crate) fn publish_rule_put(&mut self, rule: &AccessMonitoringRule) {
        let event = Event {
            r#type: Operation::Put.into(),
            resource: Some(event::Resource::AccessMonitoringRule(rule.clone())),
        };
        self.publish(KIND_ACCESS_MONITORING_RULE, rule_name(rule), None, &event);
    }

    pub(crate) fn publish_rule_delete(&mut self, name: &str) {
        let event = delete_event(KIND_ACCESS_MONITORING_RULE, "v1", name);
        self.publish(KIND_ACCESS_MONITORING_RULE, name, None, &event);
    }

    fn publish(&mut self, kind: &str, name: &str, put: Option<&AccessRequestV3>, event: &Event) {
        self.watchers.retain_mut(|watcher| {
            if !watcher.wants(kind, name, put) {
                return !watcher.events.is_closed();
            }
            match watcher.events.try_send(event.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    watcher.close(Status::unavailable(
                        "watcher fell too far behind and was closed",
                    ));
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    /// Ends every open stream with `status`.
    pub(crate) fn close_all(&mut self, status: &Status) {
        for mut watcher in self.watchers.drain(..) {
            watcher.close(status.clone());
        }
    }

    /// Streams still open (a client that went away is forgotten here).
    pub(crate) fn open(&mut self) -> usize {
        self.watchers.retain(|w| !w.events.is_closed());
        self.watchers.len()
    }
}

/// A DELETE names the resource with a header only, as Teleport's fan-out sends it.
fn delete_event(kind: &str, version: &str, name: &str) -> Event {
    let header = ResourceHeader {
        kind: kind.into(),
        sub_kind: String::new(),
        version: version.into(),
        metadata: Some(Metadata {
            name: name.to_owned(),
            namespace: "default".into(),
            ..Metadata::default()
        }),
    };
    Event {
        r#type: Operation::Delete.into(),
        resource: Some(event::Resource::ResourceHeader(header)),
    }
}

/// The server side of one WatchEvents stream.
#[derive(Debug)]
pub(crate) struct WatchStream {
    events: mpsc::Receiver<Event>,
    close: Option<oneshot::Receiver<Status>>,
    done: bool,
}

impl Stream for WatchStream {
    type Item = Result<Event, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        // A close wins over queued events: a closed Teleport watcher does not drain its buffer.
        if let Some(close) = self.close.as_mut() {
            match Pin::new(close).poll(cx) {
                Poll::Ready(Ok(status)) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(status)));
                }
                Poll::Ready(Err(_)) => self.close = None,
                Poll::Pending => {}
            }
        }
        match self.events.poll_recv(cx) {
            Poll::Ready(Some(event)) => Poll::Ready(Some(Ok(event))),
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use futures_util::StreamExt as _;
    use teleport_proto::types::AccessRequestSpecV3;

    use super::*;

    fn request(id: &str) -> AccessRequestV3 {
        AccessRequestV3 {
            metadata: Some(Metadata {
                name: id.into(),
                ..Metadata::default()
            }),
            spec: Some(AccessRequestSpecV3::default()),
            ..AccessRequestV3::default()
        }
    }

    #[tokio::test]
    async fn a_watcher_that_falls_behind_its_buffer_is_closed() {
        let mut hub = WatchHub::default();
        let kinds = [WatchKind {
            kind: KIND_ACCESS_REQUEST.into(),
            ..WatchKind::default()
        }];
        let mut stream = hub.subscribe(&kinds, init_event(&kinds, true), 2);
        hub.publish_put(&request("a"));
        hub.publish_put(&request("b"));
        assert_eq!(hub.open(), 0, "the overflowing watcher is dropped");
        let end = stream.next().await.unwrap().unwrap_err();
        assert_eq!(end.code(), tonic::Code::Unavailable);
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn name_filter_applies_to_delete_events() {
        let mut hub = WatchHub::default();
        let kinds = [WatchKind {
            kind: KIND_ACCESS_REQUEST.into(),
            name: "b".into(),
            ..WatchKind::default()
        }];
        let mut stream = hub.subscribe(&kinds, init_event(&kinds, false), 8);
        hub.publish_delete("a");
        hub.publish_delete("b");
        assert!(
            stream.next().await.unwrap().unwrap().resource.is_none(),
            "INIT without status"
        );
        let Some(event::Resource::ResourceHeader(header)) =
            stream.next().await.unwrap().unwrap().resource
        else {
            panic!("expected a DELETE")
        };
        assert_eq!(header.metadata.unwrap().name, "b");
    }
}
