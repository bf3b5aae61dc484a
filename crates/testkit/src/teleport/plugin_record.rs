//! The plugin data of one access request: each plugin's key/value entry, the record's expiry and
//! revision, and Teleport's compare-and-set update (teleport-wire.md §2.7).

use std::collections::{BTreeMap, HashMap};

use prost_types::Timestamp;
use tonic::Status;

use teleport_proto::types::{Metadata, PluginDataEntry, PluginDataSpecV3, PluginDataV3};

use super::kinds::KIND_ACCESS_REQUEST;

/// The stored plugin data of one access request.
#[derive(Debug, Clone)]
pub(crate) struct PluginRecord {
    expires: Timestamp,
    revision: String,
    /// Plugin name → that plugin's key/value entry.
    entries: BTreeMap<String, BTreeMap<String, String>>,
}

impl PluginRecord {
    pub(crate) fn new(expires: Timestamp) -> Self {
        Self {
            expires,
            revision: String::new(),
            entries: BTreeMap::new(),
        }
    }

    pub(crate) fn to_wire(&self, request_id: &str) -> PluginDataV3 {
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
    pub(crate) fn update(
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

    pub(crate) fn has_plugin(&self, plugin: &str) -> bool {
        self.entries.contains_key(plugin)
    }

    /// One plugin's entry, if present.
    pub(crate) fn entry(&self, plugin: &str) -> Option<HashMap<String, String>> {
        let entry = self.entries.get(plugin)?;
        Some(entry.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    /// Replaces one plugin's entry without expectations (empty values are dropped, as a delete).
    pub(crate) fn replace_entry(&mut self, plugin: &str, data: HashMap<String, String>) {
        let data: BTreeMap<_, _> = data.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        if data.is_empty() {
            self.entries.remove(plugin);
        } else {
            self.entries.insert(plugin.to_owned(), data);
        }
        self.revision = uuid::Uuid::new_v4().to_string();
    }
}
