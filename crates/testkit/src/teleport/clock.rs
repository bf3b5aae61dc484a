//! Time on the fake cluster: the current time as protobuf timestamps, Go's zero time, and how long
//! granted access lasts. A leaf: the rules, the plugin-data store and the watch all read it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost_types::Timestamp;

/// Go's zero `time.Time` on the wire: gogoproto always sends non-nullable timestamps, and an unset one
/// arrives as 0001-01-01T00:00:00Z. The fake sends it where Teleport would.
pub(crate) const GO_ZERO_TIME: Timestamp = Timestamp {
    seconds: -62_135_596_800,
    nanos: 0,
};

/// How long granted access lasts, measured from creation (the fake's `Spec.Expires`).
pub(crate) const ACCESS_TTL: Duration = Duration::from_secs(3600);

/// The current time as a protobuf timestamp.
pub(crate) fn now() -> Timestamp {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since_epoch.subsec_nanos()).unwrap_or(0),
    }
}

/// `ts + d`, saturating.
pub(crate) fn after(ts: &Timestamp, d: Duration) -> Timestamp {
    Timestamp {
        seconds: ts
            .seconds
            .saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        nanos: ts.nanos,
    }
}

/// Whether a non-nullable timestamp was left unset: absent, or Go's zero time. (`{0, 0}` is not unset:
/// Go decodes it as 1970-01-01.)
pub(crate) fn is_unset(ts: Option<&Timestamp>) -> bool {
    ts.is_none_or(|t| *t == GO_ZERO_TIME)
}
