//! The way to a portal through a hospital's proxy: Debian's Squid is the only way into the « outside »
//! namespace where the demo portal runs (tests/src/proxy.rs), and its names are known to Squid alone. The
//! agent's tunnel (`cpx_agent::platform::proxy`) goes through it with no authentication, with Basic, and with
//! Negotiate against a real MIT Kerberos KDC; Squid's refusals and its demands for credentials the agent
//! lacks come back as typed errors with their catalogue codes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use cpx_agent::platform::proxy::{self, ProxyError, ProxyServer, ProxySetting, Route};
use cpx_tests::agent::{free_port, ServerPki};
use cpx_tests::proxy::{Hospital, ProxyAuth, BASIC_PASSWORD, BASIC_USER, FORBIDDEN_HOST, MTLS_HOST};
use cpx_tests::{out_dir, poll};

fn world(name: &str, auth: ProxyAuth) -> Hospital {
    Hospital::start(&out_dir(name), auth, free_port())
}

/// Squid, as the agent's configuration names it.
fn proxy_of(w: &Hospital) -> ProxyServer {
    ProxyServer::parse(&w.squid.url).unwrap()
}

/// Through `route`, a TLS connection to `host:port` that must present the portal's certificate for
/// `host`, and `GET /`: the answer's status line.
fn get_through(route: &Route, host: &str, port: u16, pki: &ServerPki) -> Result<String, ProxyError> {
    let tcp = proxy::open_blocking(route, host, port, Duration::from_secs(20))?;
    Ok(https_get(tcp, host, &pki.ca_pem))
}

fn https_get(tcp: TcpStream, host: &str, ca: &Path) -> String {
    let config = cpx_tests::agent::client_config(&std::fs::read_to_string(ca).unwrap());
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    write!(tls, "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.contains("carte CPx"), "the portal's login page: {text}");
    text.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn the_proxy_is_the_only_way_and_the_tunnel_reaches_the_portal() {
    let w = world("proxy-open", ProxyAuth::None);
    // Without the proxy: the name is unknown here, and the mTLS endpoint's address is the outside's own
    // loopback (nothing listens on the stack's).
    let direct = Route::direct("test");
    let e = proxy::open_blocking(&direct, MTLS_HOST, w.portal.mtls_port, Duration::from_secs(5)).unwrap_err();
    assert!(
        matches!(&e, ProxyError::Unreachable { why, .. } if why.starts_with("name not resolved")),
        "{e:?}"
    );
    assert!(TcpStream::connect(("127.0.0.1", w.portal.mtls_port)).is_err());
    // Through it: the portal's site, by a name only Squid resolves.
    let via =
        proxy::route_for(&ProxySetting::parse(&w.squid.url).unwrap(), "portal.test", w.portal.site_port);
    assert_eq!(via.proxy, Some(proxy_of(&w)));
    assert_eq!(get_through(&via, "portal.test", w.portal.site_port, &w.pki).unwrap(), "HTTP/1.1 200 OK");
    // And the mTLS endpoint on the outside's loopback: the tunnel opens (its TLS needs the card: the
    // end-to-end login tests).
    assert!(proxy::open_blocking(&via, MTLS_HOST, w.portal.mtls_port, Duration::from_secs(20)).is_ok());
    // Squid logs a tunnel when it closes.
    let line = format!("CONNECT {MTLS_HOST}:{}", w.portal.mtls_port);
    let log = poll("Squid's log of the tunnel", Duration::from_secs(10), || {
        Some(w.squid.access_log()).filter(|l| l.contains(&line))
    });
    assert!(
        log.contains(&format!("{} TCP_TUNNEL/200", w.outside.inner_ip)),
        "the agent's side is the client: {log}"
    );
}

#[test]
fn a_refusal_of_the_proxy_is_typed() {
    let w = world("proxy-refused", ProxyAuth::None);
    let via = Route::via(proxy_of(&w), "test");
    let e = proxy::open_blocking(&via, FORBIDDEN_HOST, 443, Duration::from_secs(20)).unwrap_err();
    assert!(matches!(&e, ProxyError::Refused { status: 403, .. }), "{e:?}");
    assert_eq!(e.code().as_str(), "PROXY_REFUSED");
    // A proxy nobody runs.
    let gone = Route::via(ProxyServer::parse(&format!("http://{}:3129", w.outside.ip)).unwrap(), "test");
    let e = proxy::open_blocking(&gone, MTLS_HOST, 443, Duration::from_secs(20)).unwrap_err();
    assert_eq!(e.code().as_str(), "PROXY_UNREACHABLE", "{e:?}");
}

#[test]
fn basic_authentication_with_the_proxy_urls_credentials() {
    let w = world("proxy-basic", ProxyAuth::Basic);
    // No credentials: the proxy's demand is typed, with the schemes it offered.
    let bare = Route::via(proxy_of(&w), "test");
    let e = get_through(&bare, "portal.test", w.portal.site_port, &w.pki).unwrap_err();
    assert!(matches!(&e, ProxyError::AuthRequired { offered, .. } if offered.contains("Basic")), "{e:?}");
    assert_eq!(e.code().as_str(), "PROXY_AUTH_REQUIRED");
    // Wrong password: refused credentials.
    let wrong = format!("http://{BASIC_USER}:faux@{}:{}", w.outside.ip, w.squid.port);
    let e = get_through(
        &Route::via(ProxyServer::parse(&wrong).unwrap(), "test"),
        "portal.test",
        w.portal.site_port,
        &w.pki,
    )
    .unwrap_err();
    assert_eq!(e.code().as_str(), "PROXY_AUTH_FAILED", "{e:?}");
    // The right ones.
    let good = format!("http://{BASIC_USER}:{BASIC_PASSWORD}@{}:{}", w.outside.ip, w.squid.port);
    let via = Route::via(ProxyServer::parse(&good).unwrap(), "test");
    assert_eq!(get_through(&via, "portal.test", w.portal.site_port, &w.pki).unwrap(), "HTTP/1.1 200 OK");
    poll("Squid's log of the Basic user", Duration::from_secs(10), || {
        w.squid
            .access_log()
            .contains(&format!("CONNECT portal.test:{} {BASIC_USER} ", w.portal.site_port))
            .then_some(())
    });
}

/// The Negotiate checks, run in a process of their own (this test binary again, with
/// [`negotiate_in_a_process_with_the_ticket`]'s environment): Kerberos reads its configuration and the
/// ticket cache from the environment, which a test must not change under the others.
#[test]
fn negotiate_with_a_kerberos_ticket() {
    let w = world("proxy-negotiate", ProxyAuth::Negotiate);
    let kdc = w.kdc.as_ref().unwrap();
    let child = |ccache: &Path| {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "negotiate_in_a_process_with_the_ticket", "--ignored", "--nocapture"])
            .env("KRB5_CONFIG", &kdc.config)
            .env("KRB5CCNAME", format!("FILE:{}", ccache.display()))
            .env("CPX_TEST_PROXY", &w.squid.url)
            .env("CPX_TEST_SITE_PORT", w.portal.site_port.to_string())
            .env("CPX_TEST_CA", &w.pki.ca_pem)
            .output()
            .unwrap()
    };
    // No ticket: the agent lacks what the proxy asks for.
    let out = child(&kdc.dir.join("no-ticket"));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("negotiate: PROXY_AUTH_REQUIRED"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // With the user's ticket.
    let ccache = kdc.dir.join("ccache");
    kdc.kinit(&ccache);
    let out = child(&ccache);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("negotiate: HTTP/1.1 200 OK"), "{said}{}", String::from_utf8_lossy(&out.stderr));
    poll("Squid's log of the Kerberos user", Duration::from_secs(10), || {
        w.squid
            .access_log()
            .contains(&format!("{}@{}", cpx_tests::proxy::KRB_USER, cpx_tests::proxy::REALM))
            .then_some(())
    });
}

#[test]
#[ignore = "run by negotiate_with_a_kerberos_ticket, in a process with the Kerberos environment"]
fn negotiate_in_a_process_with_the_ticket() {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k}"));
    let via = Route::via(ProxyServer::parse(&var("CPX_TEST_PROXY")).unwrap(), "test");
    let pki = ServerPki {
        ca_pem: var("CPX_TEST_CA").into(),
        cert_pem: Default::default(),
        key_pem: Default::default(),
        card_cas_pem: Default::default(),
    };
    match get_through(&via, "portal.test", var("CPX_TEST_SITE_PORT").parse().unwrap(), &pki) {
        Ok(status) => println!("negotiate: {status}"),
        Err(e) => println!("negotiate: {} ({e})", e.code().as_str()),
    }
}
