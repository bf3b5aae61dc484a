//! Rendering errors for people: one line that keeps the cause a transport error hides in its
//! sources.

/// Renders an error and its sources on one line; transport errors hide the useful part in a source.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// What is wrong with the peer's certificate, when `err` (or one of its sources) is a TLS
/// certificate verification failure: a configuration error to report, not an outage to wait out.
pub fn certificate_problem(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = Some(err);
    while let Some(cause) = current {
        if let Some(rustls::Error::InvalidCertificate(problem)) = cause.downcast_ref() {
            return Some(describe_certificate(problem));
        }
        // `io::Error` hides the error it wraps from `source()` (and connectors nest them).
        current = match cause.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => cause.source(),
        };
    }
    None
}

fn describe_certificate(problem: &rustls::CertificateError) -> String {
    use rustls::CertificateError as E;
    match problem {
        E::UnknownIssuer => "it is issued by an authority not in the trust store".to_owned(),
        E::Expired | E::ExpiredContext { .. } => "it has expired".to_owned(),
        E::NotValidYet | E::NotValidYetContext { .. } => "it is not valid yet".to_owned(),
        E::NotValidForName | E::NotValidForNameContext { .. } => {
            "it is not valid for this host name".to_owned()
        }
        E::Revoked => "it is revoked".to_owned(),
        other => format!("it was refused ({other:?})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_problem_is_found_inside_an_io_error() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let inner = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let io = std::io::Error::other(inner);
        let problem = certificate_problem(&io).expect("found");
        assert!(problem.contains("not in the trust store"), "{problem}");
        let unrelated = std::io::Error::other("connection reset");
        assert_eq!(certificate_problem(&unrelated), None);
    }
}
