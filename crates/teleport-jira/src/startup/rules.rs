//! Which Access Monitoring Rules the process reads, from the config: shared by `start` (the
//! watch and the reconciler) and `check`.

use crate::config::Config;
use crate::rules::RuleFilter;

/// Rules notifying this plugin, and with the on-call check on, those asking its integration to
/// approve.
pub fn rule_filter(config: &Config) -> RuleFilter {
    let oncall = &config.jsm_oncall;
    RuleFilter {
        notification_name: config.access_monitoring_rules.notification_name.clone(),
        review_integration: oncall.enabled.then(|| oncall.integration.clone()),
    }
}
