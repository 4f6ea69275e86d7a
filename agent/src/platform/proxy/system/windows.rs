//! The proxy Windows gives for a URL, as Edge and Chrome read it: the user's WinINet settings
//! (`WinHttpGetIEProxyConfigForCurrentUser`): automatic detection (WPAD, by DHCP and DNS) and the PAC
//! script's address, evaluated by WinHTTP (`WinHttpGetProxyForUrl`); then the manual proxy with its
//! bypass list (`<local>`, `*.chu.fr`); then WinHTTP's machine setting (`netsh winhttp set proxy`,
//! `WinHttpGetDefaultProxyConfiguration`), for agents that run outside a user's session.
#![allow(unsafe_code)] // FFI: WinHTTP

use windows_sys::Win32::Foundation::GlobalFree;
use windows_sys::Win32::Networking::WinHttp::{
    WinHttpCloseHandle, WinHttpGetDefaultProxyConfiguration, WinHttpGetIEProxyConfigForCurrentUser,
    WinHttpGetProxyForUrl, WinHttpOpen, WINHTTP_ACCESS_TYPE_NAMED_PROXY, WINHTTP_ACCESS_TYPE_NO_PROXY,
    WINHTTP_AUTOPROXY_AUTO_DETECT, WINHTTP_AUTOPROXY_CONFIG_URL, WINHTTP_AUTOPROXY_OPTIONS,
    WINHTTP_AUTO_DETECT_TYPE_DHCP, WINHTTP_AUTO_DETECT_TYPE_DNS_A, WINHTTP_CURRENT_USER_IE_PROXY_CONFIG,
    WINHTTP_PROXY_INFO,
};

use crate::platform::proxy::no_proxy::bypassed;
use crate::platform::proxy::Route;

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// A string WinHTTP allocated, read and freed (GlobalFree).
fn take(p: *mut u16) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: a NUL-terminated UTF-16 string WinHTTP allocated; read up to its NUL, then freed once.
    unsafe {
        let len = (0..).take_while(|&i| *p.add(i) != 0).count();
        let s = String::from_utf16_lossy(std::slice::from_raw_parts(p, len));
        GlobalFree(p as _);
        Some(s)
    }
}

/// The manual proxy of a WinINet/WinHTTP configuration for the host, with its bypass list.
fn manual(
    proxy: Option<String>,
    bypass: Option<String>,
    host: &str,
    port: u16,
    source: &str,
) -> Option<Route> {
    let list = proxy.filter(|p| !p.trim().is_empty())?;
    let bypass = bypass.unwrap_or_default();
    if bypassed(&bypass, host, port) {
        return Some(Route::direct(format!("{source}: bypass list ({bypass})")));
    }
    Some(match super::pick_https(&list) {
        Some(p) => Route::via(p, source),
        None => Route::direct(format!("{source}: no proxy for https in {list:?}")),
    })
}

/// WinHTTP's evaluation of WPAD and/or a PAC script for `url`.
fn auto_proxy(url: &str, detect: bool, pac: Option<&str>, host: &str, port: u16) -> Result<Route, String> {
    let agent = wide("cpx-agent");
    // SAFETY: a WinHTTP session without proxy for the PAC download, closed below.
    let session = unsafe {
        WinHttpOpen(agent.as_ptr(), WINHTTP_ACCESS_TYPE_NO_PROXY, std::ptr::null(), std::ptr::null(), 0)
    };
    if session.is_null() {
        return Err(format!("WinHttpOpen: {}", std::io::Error::last_os_error()));
    }
    let pac_w = pac.map(wide);
    let mut options = WINHTTP_AUTOPROXY_OPTIONS {
        dwFlags: (if detect { WINHTTP_AUTOPROXY_AUTO_DETECT } else { 0 })
            | (if pac_w.is_some() { WINHTTP_AUTOPROXY_CONFIG_URL } else { 0 }),
        dwAutoDetectFlags: if detect {
            WINHTTP_AUTO_DETECT_TYPE_DHCP | WINHTTP_AUTO_DETECT_TYPE_DNS_A
        } else {
            0
        },
        lpszAutoConfigUrl: pac_w.as_ref().map_or(std::ptr::null(), |w| w.as_ptr()),
        lpvReserved: std::ptr::null_mut(),
        dwReserved: 0,
        fAutoLogonIfChallenged: 1,
    };
    let url_w = wide(url);
    let mut info = WINHTTP_PROXY_INFO::default();
    // SAFETY: the session opened above, a NUL-terminated URL, options whose strings outlive the call; the
    // strings WinHTTP returns are freed by `take`.
    let ok = unsafe { WinHttpGetProxyForUrl(session, url_w.as_ptr(), &mut options, &mut info) };
    let error = std::io::Error::last_os_error();
    // SAFETY: the session opened above, closed once.
    unsafe { WinHttpCloseHandle(session) };
    let (proxy, bypass) = (take(info.lpszProxy), take(info.lpszProxyBypass));
    if ok == 0 {
        return Err(format!("WinHttpGetProxyForUrl: {error}"));
    }
    let how = match (detect, pac) {
        (_, Some(p)) => format!("WinINet (PAC {p})"),
        _ => "WinINet (automatic detection, WPAD)".to_owned(),
    };
    if info.dwAccessType != WINHTTP_ACCESS_TYPE_NAMED_PROXY {
        return Ok(Route::direct(format!("{how}: DIRECT")));
    }
    Ok(manual(proxy, bypass, host, port, &how).unwrap_or_else(|| Route::direct(format!("{how}: DIRECT"))))
}

/// The route Windows gives for `https://host:port/`: the user's WinINet settings (WPAD, PAC, manual), then
/// WinHTTP's.
pub fn route(host: &str, port: u16) -> Route {
    let url = format!("https://{}/", crate::platform::proxy::connect::authority(host, port));
    let mut ie = WINHTTP_CURRENT_USER_IE_PROXY_CONFIG::default();
    // SAFETY: an out-structure whose strings are freed by `take`.
    if unsafe { WinHttpGetIEProxyConfigForCurrentUser(&mut ie) } != 0 {
        let (pac, proxy, bypass) = (take(ie.lpszAutoConfigUrl), take(ie.lpszProxy), take(ie.lpszProxyBypass));
        let detect = ie.fAutoDetect != 0;
        if detect || pac.is_some() {
            match auto_proxy(&url, detect, pac.as_deref(), host, port) {
                Ok(r) => return r,
                // As browsers do: a script that cannot be had or run falls back to the manual settings.
                Err(e) => {
                    tracing::warn!(error = %e, "automatic proxy configuration failed; manual settings apply")
                }
            }
        }
        if let Some(r) = manual(proxy, bypass, host, port, "WinINet (manual)") {
            return r;
        }
    }
    let mut info = WINHTTP_PROXY_INFO::default();
    // SAFETY: an out-structure whose strings are freed by `take`.
    if unsafe { WinHttpGetDefaultProxyConfiguration(&mut info) } != 0 {
        let (proxy, bypass) = (take(info.lpszProxy), take(info.lpszProxyBypass));
        if info.dwAccessType == WINHTTP_ACCESS_TYPE_NAMED_PROXY {
            if let Some(r) = manual(proxy, bypass, host, port, "WinHTTP (netsh winhttp)") {
                return r;
            }
        }
    }
    Route::direct("no proxy configured")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// WinINet's `DefaultConnectionSettings`: version, counter, flags (2: a proxy; 4: a PAC address; 8:
    /// automatic detection), then the proxy, the bypass list and the PAC address, each as a length and
    /// bytes, and the rest zeroes.
    fn connection_settings(flags: u32, proxy: &str, bypass: &str, pac: &str) -> Vec<u8> {
        let mut blob = Vec::new();
        for v in [0x46u32, 1, flags] {
            blob.extend(v.to_le_bytes());
        }
        for s in [proxy, bypass, pac] {
            blob.extend((s.len() as u32).to_le_bytes());
            blob.extend(s.as_bytes());
        }
        blob.extend([0u8; 32]);
        blob
    }

    /// The user's WinINet settings as Windows (and Wine) keep them, written in the registry of the test's
    /// user, then read back by [`route`]: the manual proxy for https, and its bypass list.
    #[test]
    fn the_users_manual_proxy_and_its_bypass_list() {
        use winreg::enums::HKEY_CURRENT_USER;
        const CONNECTIONS: &str = r"Software\Microsoft\Windows\CurrentVersion\Internet Settings\Connections";
        let (key, _) = winreg::RegKey::predef(HKEY_CURRENT_USER).create_subkey(CONNECTIONS).unwrap();
        let before = key.get_raw_value("DefaultConnectionSettings").ok();
        let blob =
            connection_settings(3, "http=web:80;https=proxy.chu-test.fr:3128", "<local>;*.intra.fr", "");
        let value = winreg::RegValue { bytes: blob.into(), vtype: winreg::enums::REG_BINARY };
        key.set_raw_value("DefaultConnectionSettings", &value).unwrap();
        let through = route("cpx.portail.fr", 443);
        let intra = route("dpi.intra.fr", 443);
        let local = route("serveur", 443);
        match before {
            Some(v) => key.set_raw_value("DefaultConnectionSettings", &v).unwrap(),
            None => key.delete_value("DefaultConnectionSettings").unwrap(),
        }
        let proxy = through.proxy.unwrap_or_else(|| panic!("no proxy: {}", through.source));
        assert_eq!(
            (proxy.authority(), through.source.as_str()),
            ("proxy.chu-test.fr:3128".into(), "WinINet (manual)")
        );
        assert!(intra.proxy.is_none() && intra.source.contains("bypass"), "{intra:?}");
        assert!(local.proxy.is_none(), "{local:?}");
    }
}
