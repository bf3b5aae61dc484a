//! Plugin data: the per-request key/value store plugins keep their state in, with Teleport's
//! compare-and-set semantics (teleport-wire.md §2.7).
//!
//! Records are keyed by request ID and outlive their request: Teleport gives a new record the request's
//! access expiry + 1 h, so a plugin can still read and write it while handling the DELETE event.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use prost_types::Timestamp;
use tonic::Status;

use teleport_proto::types::{
    Metadata, PluginDataEntry, PluginDataFilter, PluginDataSpecV3, PluginDataUpdateParams,
    PluginDataV3,
};

use super::requests::{ACCESS_TTL, KIND_ACCESS_REQUEST};
use super::state::{self, State};

/// How long plugin data outlives the access it belongs to.
const OUTLIVES_ACCESS_BY: Duration = Duration::from_secs(3600);

/// The stored plugin data of one access request.
#[derive(Debug, Clone)]
pub(crate) struct PluginRecord {
    expires: Timestamp,
    revision: String,
    /// Plugin name → that plugin's key/value entry.
    entries: BTreeMap<String, BTreeMap<String, String>>,
}

impl PluginRecord {
    fn new(expires: Timestamp) -> Self {
        Self {
            expires,
            revision: String::new(),
            entries: BTreeMap::new(),
        }
    }

    fn to_wire(&self, request_id: &str) -> PluginDataV3 {
        let entries = self
            .entries
            .iter()
            .map(|(plugin, data)| {
                let data = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                (plugin.clone(), PluginDataEntry { data })
            })
            .collect();
        PluginDataV3 {
            kind: "plugin_data".into(),
            sub_kind: KIND_ACCESS_REQUEST.into(),
            version: "v3".into(),
            metadata: Some(Metadata {
                name: request_id.to_owned(),
                namespace: "default".into(),
                expires: Some(self.expires),
                revision: self.revision.clone(),
                ..Metadata::default()
            }),
            spec: Some(PluginDataSpecV3 { entries }),
        }
    }

    /// `PluginDataV3.Update`: expectations first (a missing key counts as ""), then the sets
    /// ("" deletes), then an emptied entry disappears.
    fn update(
        &mut self,
        plugin: &str,
        set: &HashMap<String, String>,
        expect: &HashMap<String, String>,
    ) -> Result<(), Status> {
        let mut expected: Vec<_> = expect.iter().collect();
        expected.sort();
        let entry = self.entries.get(plugin);
        for (key, want) in expected {
            let have = entry.and_then(|e| e.get(key)).map_or("", String::as_str);
            if have != want {
                return Err(Status::failed_precondition(format!(
                    "expectations not met for field {key:?}"
                )));
            }
        }
        let entry = self.entries.entry(plugin.to_owned()).or_default();
        for (key, value) in set {
            if value.is_empty() {
                entry.remove(key);
            } else {
                entry.insert(key.clone(), value.clone());
            }
        }
        if entry.is_empty() {
            self.entries.remove(plugin);
        }
        self.revision = uuid::Uuid::new_v4().to_string();
        Ok(())
    }
}

impl State {
    /// `GetPluginData` (permissions are checked by the caller of this method).
    pub(crate) fn plugin_data_matching(
        &self,
        filter: &PluginDataFilter,
    ) -> Result<Vec<PluginDataV3>, Status> {
        check_kind(&filter.kind)?;
        let plugin_ok = |record: &PluginRecord| {
            filter.plugin.is_empty() || record.entries.contains_key(&filter.plugin)
        };
        let found = self
            .plugin_data
            .iter()
            .filter(|(id, record)| {
                (filter.resource.is_empty() || **id == filter.resource) && plugin_ok(record)
            })
            .map(|(id, record)| record.to_wire(id))
            .collect();
        Ok(found)
    }

    /// `UpdatePluginData` (permissions are checked by the caller of this method).
    pub(crate) fn update_plugin_data(
        &mut self,
        params: &PluginDataUpdateParams,
    ) -> Result<(), Status> {
        check_kind(&params.kind)?;
        let record = match self.plugin_data.get(&params.resource) {
            Some(existing) => existing.clone(),
            None => {
                // A first write needs the request, which fixes the record's expiry.
                let request = self.requests.get(&params.resource).ok_or_else(|| {
                    Status::not_found(format!("access request {:?} not found", params.resource))
                })?;
                let access_expiry = request
                    .spec
                    .as_ref()
                    .and_then(|s| s.expires)
                    .unwrap_or_else(|| state::after(&state::now(), ACCESS_TTL));
                PluginRecord::new(state::after(&access_expiry, OUTLIVES_ACCESS_BY))
            }
        };
        // Work on a copy so that a failed expectation leaves nothing half-written.
        let mut record = record;
        record.update(&params.plugin, &params.set, &params.expect)?;
        self.plugin_data.insert(params.resource.clone(), record);
        Ok(())
    }

    /// Replaces one plugin's entry without any check, to seed a cluster with existing plugin data.
    pub(crate) fn seed_plugin_data(
        &mut self,
        request_id: &str,
        plugin: &str,
        data: HashMap<String, String>,
    ) {
        let access_expiry = self
            .requests
            .get(request_id)
            .and_then(|r| r.spec.as_ref())
            .and_then(|s| s.expires)
            .unwrap_or_else(|| state::after(&state::now(), ACCESS_TTL));
        let record = self
            .plugin_data
            .entry(request_id.to_owned())
            .or_insert_with(|| PluginRecord::new(state::after(&access_expiry, OUTLIVES_ACCESS_BY)));
        let data: BTreeMap<_, _> = data.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        if data.is_empty() {
            record.entries.remove(plugin);
        } else {
            record.entries.insert(plugin.to_owned(), data);
        }
        record.revision = uuid::Uuid::new_v4().to_string();
    }

    /// One plugin's entry of one request, if present.
    pub(crate) fn plugin_entry(
        &self,
        request_id: &str,
        plugin: &str,
    ) -> Option<HashMap<String, String>> {
        let entry = self.plugin_data.get(request_id)?.entries.get(plugin)?;
        Some(entry.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}

fn check_kind(kind: &str) -> Result<(), Status> {
    if kind == KIND_ACCESS_REQUEST {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "unsupported resource kind {kind:?}"
        )))
    }
}
