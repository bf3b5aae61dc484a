//! Plugin data: the per-request key/value store plugins keep their state in, with Teleport's
//! compare-and-set semantics (teleport-wire.md §2.7).
//!
//! Records are keyed by request ID and outlive their request: Teleport gives a new record the request's
//! access expiry + 1 h, so a plugin can still read and write it while handling the DELETE event.

use std::collections::HashMap;
use std::time::Duration;

use tonic::Status;

use teleport_proto::types::{PluginDataFilter, PluginDataUpdateParams, PluginDataV3};

use super::clock::{self, ACCESS_TTL};
use super::kinds::KIND_ACCESS_REQUEST;
use super::plugin_record::PluginRecord;
use super::state::State;

/// How long plugin data outlives the access it belongs to.
const OUTLIVES_ACCESS_BY: Duration = Duration::from_secs(3600);

impl State {
    /// `GetPluginData` (permissions are checked by the caller of this method).
    pub(crate) fn plugin_data_matching(
        &self,
        filter: &PluginDataFilter,
    ) -> Result<Vec<PluginDataV3>, Status> {
        check_kind(&filter.kind)?;
        let plugin_ok =
            |record: &PluginRecord| filter.plugin.is_empty() || record.has_plugin(&filter.plugin);
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
                    .unwrap_or_else(|| clock::after(&clock::now(), ACCESS_TTL));
                PluginRecord::new(clock::after(&access_expiry, OUTLIVES_ACCESS_BY))
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
            .unwrap_or_else(|| clock::after(&clock::now(), ACCESS_TTL));
        let record = self
            .plugin_data
            .entry(request_id.to_owned())
            .or_insert_with(|| PluginRecord::new(clock::after(&access_expiry, OUTLIVES_ACCESS_BY)));
        record.replace_entry(plugin, data);
    }

    /// One plugin's entry of one request, if present.
    pub(crate) fn plugin_entry(
        &self,
        request_id: &str,
        plugin: &str,
    ) -> Option<HashMap<String, String>> {
        self.plugin_data.get(request_id)?.entry(plugin)
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
