//! The version line and the Teleport server version check.

/// `teleport-jira v<version> git:<commit> rustc<version>`, like the Go plugin's `version` output.
pub fn version_line() -> String {
    let commit = env!("TELEPORT_JIRA_GIT_COMMIT");
    let rustc = env!("TELEPORT_JIRA_RUSTC_VERSION");
    let version = env!("CARGO_PKG_VERSION");
    if commit.is_empty() {
        format!("teleport-jira v{version} rustc{rustc}")
    } else {
        format!("teleport-jira v{version} git:{commit} rustc{rustc}")
    }
}

/// The oldest Teleport the plugin works with, as for the Go plugin.
pub const MIN_TELEPORT_VERSION: (u64, u64, u64) = (6, 1, 0);

/// Checks a server version such as `17.0.2` or `17.1.0-dev.3` against [`MIN_TELEPORT_VERSION`].
pub fn check_server_version(version: &str) -> Result<(), String> {
    let (major, minor, patch) = MIN_TELEPORT_VERSION;
    let core = version
        .trim()
        .trim_start_matches('v')
        .split(['-', '+'])
        .next()
        .unwrap_or_default();
    let mut parts = core.split('.').map(str::parse::<u64>);
    let parsed = match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => (a, b, c),
        _ => return Err(format!("cannot parse Teleport server version {version:?}")),
    };
    if parsed < MIN_TELEPORT_VERSION {
        return Err(format!(
            "incompatible versions: {version} < {major}.{minor}.{patch}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_versions_below_6_1_0_are_refused() {
        assert!(check_server_version("17.0.2").is_ok());
        assert!(check_server_version("6.1.0").is_ok());
        assert!(check_server_version("v17.1.0-dev.3").is_ok());
        assert_eq!(
            check_server_version("6.0.9"),
            Err("incompatible versions: 6.0.9 < 6.1.0".into())
        );
        assert!(check_server_version("banana").is_err());
    }

    #[test]
    fn version_line_names_the_binary_and_toolchain() {
        let line = version_line();
        assert!(line.starts_with("teleport-jira v"), "{line}");
        assert!(line.contains(" rustc"), "{line}");
    }
}
