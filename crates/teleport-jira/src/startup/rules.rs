//! Which Access Monitoring Rules the process reads, from the config: shared by `start` (the
//! watch and the reconciler) and `check`.

use crate::config::Config;
use crate::rules::RuleFilter;

/// Rules notifying this plugin, and with both the rules and the on-call check on, those asking
/// its integration to approve.
pub fn rule_filter(config: &Config) -> RuleFilter {
    let oncall = &config.jsm_oncall;
    let both = oncall.enabled && config.access_monitoring_rules.enabled;
    RuleFilter {
        notification_name: config.access_monitoring_rules.notification_name.clone(),
        review_integration: both.then(|| oncall.integration.clone()),
    }
}
