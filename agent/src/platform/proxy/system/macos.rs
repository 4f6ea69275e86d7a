//! The proxy macOS gives (Réglages Système › Réseau › Proxys, or a configuration profile), from
//! SystemConfiguration (`SCDynamicStoreCopyProxies`): the HTTPS proxy when enabled, unless the host is
//! in the exceptions (`ExceptionsList`, `ExcludeSimpleHostnames`); a PAC script's address
//! (`ProxyAutoConfigURLString`, `http://` or `file://`) is fetched and the script run by CFNetwork
//! (`CFNetworkCopyProxiesForAutoConfigurationScript`). Automatic discovery (WPAD) is not evaluated: the
//! agent goes straight to the portal and says so in the route's source.
#![allow(unsafe_code)] // FFI: SystemConfiguration

use core_foundation::array::CFArray;
use core_foundation::base::{CFType, TCFType};
use core_foundation::dictionary::CFDictionary;
use core_foundation::number::CFNumber;
use core_foundation::string::CFString;
use core_foundation_sys::dictionary::CFDictionaryRef;

use crate::platform::proxy::no_proxy::bypassed;
use crate::platform::proxy::{ProxyServer, Route};

#[link(name = "SystemConfiguration", kind = "framework")]
extern "C" {
    fn SCDynamicStoreCopyProxies(store: *const std::ffi::c_void) -> CFDictionaryRef;
}

#[link(name = "CFNetwork", kind = "framework")]
extern "C" {
    fn CFNetworkCopyProxiesForAutoConfigurationScript(
        script: core_foundation_sys::string::CFStringRef,
        url: core_foundation_sys::url::CFURLRef,
        error: *mut core_foundation_sys::error::CFErrorRef,
    ) -> core_foundation_sys::array::CFArrayRef;
    static kCFProxyTypeKey: core_foundation_sys::string::CFStringRef;
    static kCFProxyHostNameKey: core_foundation_sys::string::CFStringRef;
    static kCFProxyPortNumberKey: core_foundation_sys::string::CFStringRef;
    static kCFProxyTypeHTTP: core_foundation_sys::string::CFStringRef;
    static kCFProxyTypeHTTPS: core_foundation_sys::string::CFStringRef;
}

/// The PAC script at `url`: a file, or a plain HTTP GET (a few seconds at most).
fn fetch_script(url: &str) -> Result<String, String> {
    if let Some(path) = url.strip_prefix("file://") {
        return std::fs::read_to_string(path).map_err(|e| e.to_string());
    }
    let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    if parsed.scheme() != "http" {
        return Err(format!("{url}: only http:// and file:// scripts are fetched"));
    }
    let host = parsed.host_str().ok_or("no host")?.to_owned();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let timeout = std::time::Duration::from_secs(5);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let mut tcp = std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    let _ = tcp.set_read_timeout(Some(timeout));
    let path = &parsed[url::Position::BeforePath..url::Position::AfterQuery];
    use std::io::{Read, Write};
    write!(tcp, "GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    tcp.take(1024 * 1024).read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
    if !head.split_whitespace().nth(1).is_some_and(|s| s == "200") {
        return Err(format!("{url}: {}", head.lines().next().unwrap_or_default()));
    }
    Ok(body.to_owned())
}

/// The PAC script's answer for `https://host:port/`: the first HTTP(S) proxy, `None` for direct.
fn run_script(script: &str, host: &str, port: u16) -> Result<Option<ProxyServer>, String> {
    use core_foundation::url::CFURL;
    let target = format!("https://{}/", crate::platform::proxy::connect::authority(host, port));
    let script = CFString::new(script);
    let target = CFString::new(&target);
    // SAFETY: a CFURL made from a valid CFString (NULL base), owned by the wrapper (Create rule).
    let url = unsafe {
        let raw = core_foundation_sys::url::CFURLCreateWithString(
            std::ptr::null(),
            target.as_concrete_TypeRef(),
            std::ptr::null(),
        );
        if raw.is_null() {
            return Err("bad URL".into());
        }
        CFURL::wrap_under_create_rule(raw)
    };
    let mut error: core_foundation_sys::error::CFErrorRef = std::ptr::null_mut();
    // SAFETY: the script and URL live across the call; the array returned follows the Create rule.
    let raw = unsafe {
        CFNetworkCopyProxiesForAutoConfigurationScript(
            script.as_concrete_TypeRef(),
            url.as_concrete_TypeRef(),
            &mut error,
        )
    };
    if raw.is_null() {
        if !error.is_null() {
            // SAFETY: an error CFNetwork created for us (Create rule), released by the wrapper.
            let e = unsafe { core_foundation::error::CFError::wrap_under_create_rule(error) };
            return Err(e.description().to_string());
        }
        return Err("the PAC script gave no answer".into());
    }
    // SAFETY: a CFArray of CFDictionary owned by us (Create rule).
    let list: CFArray<CFDictionary<CFString, CFType>> = unsafe { CFArray::wrap_under_create_rule(raw) };
    // SAFETY: CFNetwork's constant keys and values, valid for the process's life.
    let (type_key, host_key, port_key, http, https) = unsafe {
        (
            CFString::wrap_under_get_rule(kCFProxyTypeKey),
            CFString::wrap_under_get_rule(kCFProxyHostNameKey),
            CFString::wrap_under_get_rule(kCFProxyPortNumberKey),
            CFString::wrap_under_get_rule(kCFProxyTypeHTTP),
            CFString::wrap_under_get_rule(kCFProxyTypeHTTPS),
        )
    };
    for entry in list.iter() {
        let kind = entry.find(&type_key).and_then(|v| v.downcast::<CFString>());
        let Some(kind) = kind else { continue };
        if kind != http && kind != https {
            // kCFProxyTypeNone: DIRECT (SOCKS and the rest are not used by the agent).
            if kind.to_string().ends_with("None") {
                return Ok(None);
            }
            continue;
        }
        let h = entry.find(&host_key).and_then(|v| v.downcast::<CFString>()).map(|s| s.to_string());
        let p = entry.find(&port_key).and_then(|v| v.downcast::<CFNumber>()).and_then(|n| n.to_i64());
        if let (Some(h), Some(p)) = (h, p) {
            return ProxyServer::parse(&format!("{h}:{p}")).map(Some).map_err(|e| e.to_string());
        }
    }
    Ok(None)
}

/// The route macOS gives for `https://host:port/` (SystemConfiguration, a PAC script through CFNetwork).
pub fn route(host: &str, port: u16) -> Route {
    // SAFETY: NULL asks for the current proxies; the dictionary returned follows the Create rule.
    let raw = unsafe { SCDynamicStoreCopyProxies(std::ptr::null()) };
    if raw.is_null() {
        return Route::direct("no proxy configured");
    }
    // SAFETY: a CFDictionary owned by us (Create rule), released when dropped.
    let dict: CFDictionary<CFString, CFType> = unsafe { CFDictionary::wrap_under_create_rule(raw) };
    let number =
        |k: &str| dict.find(CFString::new(k)).and_then(|v| v.downcast::<CFNumber>()).and_then(|n| n.to_i64());
    let text =
        |k: &str| dict.find(CFString::new(k)).and_then(|v| v.downcast::<CFString>()).map(|s| s.to_string());
    let exceptions: Vec<String> = dict
        .find(CFString::new("ExceptionsList"))
        .and_then(|v| v.downcast::<CFArray>())
        .map(|a| {
            a.iter()
                .filter_map(|item| {
                    // SAFETY: an element of the array, retained by the wrapper for its life.
                    let t = unsafe { CFType::wrap_under_get_rule(*item as _) };
                    t.downcast::<CFString>().map(|s| s.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    let mut bypass = exceptions.join(",");
    if number("ExcludeSimpleHostnames") == Some(1) {
        bypass.push_str(",<local>");
    }
    if bypassed(&bypass, host, port) {
        return Route::direct(format!("macOS: exceptions ({bypass})"));
    }
    if number("HTTPSEnable") == Some(1) {
        if let (Some(h), Some(p)) = (text("HTTPSProxy"), number("HTTPSPort")) {
            if let Ok(server) = ProxyServer::parse(&format!("{h}:{p}")) {
                return Route::via(server, "macOS (HTTPS proxy)");
            }
        }
    }
    if number("ProxyAutoConfigEnable") == Some(1) {
        if let Some(url) = text("ProxyAutoConfigURLString") {
            let how = format!("macOS (PAC {url})");
            return match fetch_script(&url).and_then(|script| run_script(&script, host, port)) {
                Ok(Some(p)) => Route::via(p, how),
                Ok(None) => Route::direct(format!("{how}: DIRECT")),
                // As browsers do when the script cannot be had: straight to the portal.
                Err(e) => Route::direct(format!("{how}: not evaluated ({e})")),
            };
        }
    }
    if number("ProxyAutoDiscoveryEnable") == Some(1) {
        return Route::direct("macOS: automatic discovery (WPAD) not evaluated by the agent");
    }
    Route::direct("no proxy configured")
}
