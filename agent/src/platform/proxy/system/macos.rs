//! The proxy macOS gives (Réglages Système › Réseau › Proxys, or a configuration profile), from
//! SystemConfiguration (`SCDynamicStoreCopyProxies`): the HTTPS proxy when enabled, unless the host is
//! in the exceptions (`ExceptionsList`, `ExcludeSimpleHostnames`). An automatic configuration (PAC, WPAD)
//! is not evaluated here: the agent goes straight to the portal and says so in the route's source.
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
    if number("ProxyAutoConfigEnable") == Some(1) || number("ProxyAutoDiscoveryEnable") == Some(1) {
        let url = text("ProxyAutoConfigURLString").unwrap_or_else(|| "WPAD".into());
        return Route::direct(format!("macOS: automatic configuration ({url}) not evaluated by the agent"));
    }
    Route::direct("no proxy configured")
}
