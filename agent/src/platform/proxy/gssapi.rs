//! Negotiate (SPNEGO with Kerberos) through the system's GSSAPI library (RFC 2744), loaded when first
//! needed: MIT Kerberos' `libgssapi_krb5.so.2` on Linux (Heimdal's `libgssapi.so.3` otherwise), the GSS
//! framework on macOS. Loading it at run time keeps it optional: a machine without Kerberos still logs in
//! directly or through a Basic proxy. The user's ticket (`kinit`, or the session's logon) is the
//! credential; the target is the service `HTTP@proxy-host`, as browsers name it.
#![allow(unsafe_code)] // FFI: dlopen/dlsym and the GSSAPI calls

use std::ffi::{c_void, CString};
use std::sync::OnceLock;

type OmUint32 = u32;
type GssName = *mut c_void;
type GssCtx = *mut c_void;

#[repr(C)]
struct Buffer {
    length: usize,
    value: *mut c_void,
}

/// `gss_OID_desc`; Apple's headers pack it to 2 bytes on Intel Macs.
#[cfg_attr(all(target_os = "macos", target_arch = "x86_64"), repr(C, packed(2)))]
#[cfg_attr(not(all(target_os = "macos", target_arch = "x86_64")), repr(C))]
struct Oid {
    length: OmUint32,
    elements: *const c_void,
}

/// GSS_C_NT_HOSTBASED_SERVICE, 1.2.840.113554.1.2.1.4.
const NT_HOSTBASED_SERVICE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x01, 0x04];
/// SPNEGO, 1.3.6.1.5.5.2: what `Negotiate` carries.
const SPNEGO: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
const GSS_C_GSS_CODE: i32 = 1;
const GSS_C_MECH_CODE: i32 = 2;

type ImportName = unsafe extern "C" fn(*mut OmUint32, *const Buffer, *const Oid, *mut GssName) -> OmUint32;
type InitSecContext = unsafe extern "C" fn(
    *mut OmUint32,
    *mut c_void,
    *mut GssCtx,
    GssName,
    *const Oid,
    OmUint32,
    OmUint32,
    *const c_void,
    *const Buffer,
    *mut *const Oid,
    *mut Buffer,
    *mut OmUint32,
    *mut OmUint32,
) -> OmUint32;
type ReleaseBuffer = unsafe extern "C" fn(*mut OmUint32, *mut Buffer) -> OmUint32;
type ReleaseName = unsafe extern "C" fn(*mut OmUint32, *mut GssName) -> OmUint32;
type DeleteSecContext = unsafe extern "C" fn(*mut OmUint32, *mut GssCtx, *mut Buffer) -> OmUint32;
type DisplayStatus =
    unsafe extern "C" fn(*mut OmUint32, OmUint32, i32, *const Oid, *mut OmUint32, *mut Buffer) -> OmUint32;

struct Lib {
    import_name: ImportName,
    init_sec_context: InitSecContext,
    release_buffer: ReleaseBuffer,
    release_name: ReleaseName,
    delete_sec_context: DeleteSecContext,
    display_status: DisplayStatus,
}

const LIBRARIES: &[&str] = if cfg!(target_os = "macos") {
    &["/System/Library/Frameworks/GSS.framework/GSS", "libgssapi_krb5.dylib"]
} else {
    &["libgssapi_krb5.so.2", "libgssapi_krb5.so", "libgssapi.so.3"]
};

fn lib() -> Result<&'static Lib, String> {
    static LIB: OnceLock<Result<Lib, String>> = OnceLock::new();
    LIB.get_or_init(load).as_ref().map_err(Clone::clone)
}

fn load() -> Result<Lib, String> {
    let handle = LIBRARIES
        .iter()
        .find_map(|name| {
            let c = CString::new(*name).ok()?;
            // SAFETY: dlopen with a NUL-terminated name; the library stays loaded for the process's life.
            let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
            (!h.is_null()).then_some(h)
        })
        .ok_or_else(|| format!("no GSSAPI library (Kerberos) on this machine: {}", LIBRARIES.join(", ")))?;
    let sym = |name: &str| -> Result<*mut c_void, String> {
        let c = CString::new(name).map_err(|e| e.to_string())?;
        // SAFETY: dlsym on the handle dlopen gave, with a NUL-terminated name.
        let p = unsafe { libc::dlsym(handle, c.as_ptr()) };
        if p.is_null() {
            Err(format!("the GSSAPI library has no {name}"))
        } else {
            Ok(p)
        }
    };
    // SAFETY: each symbol is the RFC 2744 function of that name, whose C signature the type spells.
    unsafe {
        Ok(Lib {
            import_name: std::mem::transmute::<*mut c_void, ImportName>(sym("gss_import_name")?),
            init_sec_context: std::mem::transmute::<*mut c_void, InitSecContext>(sym(
                "gss_init_sec_context",
            )?),
            release_buffer: std::mem::transmute::<*mut c_void, ReleaseBuffer>(sym("gss_release_buffer")?),
            release_name: std::mem::transmute::<*mut c_void, ReleaseName>(sym("gss_release_name")?),
            delete_sec_context: std::mem::transmute::<*mut c_void, DeleteSecContext>(sym(
                "gss_delete_sec_context",
            )?),
            display_status: std::mem::transmute::<*mut c_void, DisplayStatus>(sym("gss_display_status")?),
        })
    }
}

fn is_error(major: OmUint32) -> bool {
    major & 0xffff_0000 != 0
}

/// The library's words for a failure (major and minor status).
fn describe(lib: &Lib, major: OmUint32, minor: OmUint32) -> String {
    let mut words = Vec::new();
    for (code, kind) in [(major, GSS_C_GSS_CODE), (minor, GSS_C_MECH_CODE)] {
        if code == 0 {
            continue;
        }
        let mut ctx: OmUint32 = 0;
        for _ in 0..8 {
            let mut m: OmUint32 = 0;
            let mut buf = Buffer { length: 0, value: std::ptr::null_mut() };
            // SAFETY: display_status with valid out-pointers; the buffer is released below.
            let r = unsafe { (lib.display_status)(&mut m, code, kind, std::ptr::null(), &mut ctx, &mut buf) };
            if is_error(r) {
                break;
            }
            if !buf.value.is_null() {
                // SAFETY: the library gave `length` bytes at `value`.
                let text = unsafe { std::slice::from_raw_parts(buf.value as *const u8, buf.length) };
                words.push(String::from_utf8_lossy(text).trim_end_matches('\0').to_owned());
                // SAFETY: a buffer the library allocated.
                unsafe { (lib.release_buffer)(&mut m, &mut buf) };
            }
            if ctx == 0 {
                break;
            }
        }
    }
    words.retain(|w| !w.is_empty());
    if words.is_empty() {
        format!("GSSAPI major {major:#x}, minor {minor}")
    } else {
        words.join(": ")
    }
}

/// A SPNEGO context toward `HTTP@host`.
pub struct Gss {
    lib: &'static Lib,
    name: GssName,
    ctx: GssCtx,
}

// SAFETY: GSSAPI names and contexts are plain handles that may be used from any thread, one at a time;
// `Gss` is only used through `&mut self`.
unsafe impl Send for Gss {}

impl Gss {
    pub fn new(host: &str) -> Result<Self, String> {
        let lib = lib()?;
        let service = CString::new(format!("HTTP@{host}")).map_err(|e| e.to_string())?;
        let bytes = service.as_bytes();
        let input = Buffer { length: bytes.len(), value: bytes.as_ptr() as *mut c_void };
        let oid =
            Oid { length: NT_HOSTBASED_SERVICE.len() as u32, elements: NT_HOSTBASED_SERVICE.as_ptr().cast() };
        let mut minor = 0;
        let mut name: GssName = std::ptr::null_mut();
        // SAFETY: valid input buffer and OID for the call's length; `name` is released in Drop.
        let major = unsafe { (lib.import_name)(&mut minor, &input, &oid, &mut name) };
        if is_error(major) {
            return Err(describe(lib, major, minor));
        }
        Ok(Self { lib, name, ctx: std::ptr::null_mut() })
    }
}

impl super::auth::Context for Gss {
    fn step(&mut self, input: Option<&[u8]>) -> Result<Vec<u8>, String> {
        let mech = Oid { length: SPNEGO.len() as u32, elements: SPNEGO.as_ptr().cast() };
        let input_buf = input.map(|t| Buffer { length: t.len(), value: t.as_ptr() as *mut c_void });
        let input_ptr = input_buf.as_ref().map_or(std::ptr::null(), |b| b as *const Buffer);
        let mut output = Buffer { length: 0, value: std::ptr::null_mut() };
        let (mut minor, mut flags, mut time) = (0, 0, 0);
        let mut actual: *const Oid = std::ptr::null();
        // SAFETY: GSS_C_NO_CREDENTIAL (the default ticket cache), the context handle this struct owns, the
        // name imported in `new`, no channel bindings, and valid out-pointers; `output` is released below.
        let major = unsafe {
            (self.lib.init_sec_context)(
                &mut minor,
                std::ptr::null_mut(),
                &mut self.ctx,
                self.name,
                &mech,
                0,
                0,
                std::ptr::null(),
                input_ptr,
                &mut actual,
                &mut output,
                &mut flags,
                &mut time,
            )
        };
        if is_error(major) {
            return Err(describe(self.lib, major, minor));
        }
        let token = if output.value.is_null() {
            Vec::new()
        } else {
            // SAFETY: the library gave `length` bytes at `value`.
            let t = unsafe { std::slice::from_raw_parts(output.value as *const u8, output.length) }.to_vec();
            // SAFETY: a buffer the library allocated.
            unsafe { (self.lib.release_buffer)(&mut minor, &mut output) };
            t
        };
        Ok(token)
    }
}

impl Drop for Gss {
    fn drop(&mut self) {
        let mut minor = 0;
        // SAFETY: the handles this struct owns, released once (GSS_C_NO_BUFFER for the output token).
        unsafe {
            if !self.ctx.is_null() {
                (self.lib.delete_sec_context)(&mut minor, &mut self.ctx, std::ptr::null_mut());
            }
            if !self.name.is_null() {
                (self.lib.release_name)(&mut minor, &mut self.name);
            }
        }
    }
}

/// Whether a GSSAPI library is there (for `diagnose`).
pub fn available() -> Result<(), String> {
    lib().map(|_| ())
}
