//! DNS rebinding protection: a page on any site can make its own name resolve
//! to 127.0.0.1 and then read a loopback listener as "same origin". Browsers
//! still send that name as `Host`, so a loopback listener answers only Host
//! values that name an IP address, `localhost`, or a configured host
//! (`sse.allowed_hosts`, `SCADA_SSE_ALLOWED_HOSTS`; `*`: any).

use std::net::IpAddr;

/// `Err` with the refused Host when this request must not be answered.
pub fn check(allowed: &[String], loopback: bool, host: Option<&str>) -> Result<(), String> {
    // No Host (HTTP/1.0): not a browser request.
    let Some(host) = host else { return Ok(()) };
    if allowed.iter().any(|h| h == "*") {
        return Ok(());
    }
    let name = without_port(host);
    if allowed.iter().any(|h| h.eq_ignore_ascii_case(name)) || is_address(name) {
        return Ok(());
    }
    // A listener exposed on purpose (behind a proxy) with no list: any name.
    if !loopback && allowed.is_empty() {
        return Ok(());
    }
    Err(host.to_string())
}

fn without_port(host: &str) -> &str {
    let is_port = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if host.starts_with('[') {
        // `[v6]` or `[v6]:port`; anything else stays whole (and is no address).
        return match host.find(']') {
            Some(end) if end + 1 == host.len() => host,
            Some(end) if host[end + 1..].strip_prefix(':').is_some_and(is_port) => &host[..=end],
            _ => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if is_port(port) => name,
        _ => host,
    }
}

fn is_address(name: &str) -> bool {
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    name.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn a_loopback_listener_answers_addresses_localhost_and_listed_names_only() {
        let none: Vec<String> = Vec::new();
        for ok in [
            "127.0.0.1:8090",
            "127.0.0.1",
            "localhost:8090",
            "LOCALHOST",
            "[::1]:8090",
            "[::1]",
            "10.0.0.5:80",
        ] {
            assert_eq!(check(&none, true, Some(ok)), Ok(()), "{ok}");
        }
        for bad in [
            "evil.example:8090",
            "evil.example",
            "127.0.0.1.evil.example",
            "localhost.evil.example:8090",
            "[::1].evil:80",
        ] {
            assert_eq!(check(&none, true, Some(bad)), Err(bad.to_string()), "{bad}");
        }
        let listed = vec!["plant.example".to_string()];
        assert_eq!(check(&listed, true, Some("Plant.Example:443")), Ok(()));
        assert!(check(&listed, true, Some("evil.example")).is_err());
        assert_eq!(
            check(&["*".to_string()], true, Some("evil.example")),
            Ok(())
        );
        assert_eq!(check(&none, true, None), Ok(()));
    }

    #[test]
    fn an_exposed_listener_checks_names_only_when_a_list_is_given() {
        let none: Vec<String> = Vec::new();
        assert_eq!(check(&none, false, Some("scada.plant.example")), Ok(()));
        let listed = vec!["scada.plant.example".to_string()];
        assert_eq!(check(&listed, false, Some("scada.plant.example")), Ok(()));
        assert!(check(&listed, false, Some("evil.example")).is_err());
    }
}
