//! jira (in progress)
