//! Negotiate (Kerberos, falling back to NTLM as Windows decides) and NTLM through SSPI, with the logged-on
//! user's own credentials: no password is asked for. The target is the SPN `HTTP/proxy-host`, as WinINet
//! and browsers name it.
#![allow(unsafe_code)] // FFI: SSPI

use windows_sys::Win32::Foundation::{SEC_E_OK, SEC_I_CONTINUE_NEEDED};
use windows_sys::Win32::Security::Authentication::Identity::{
    AcquireCredentialsHandleW, DeleteSecurityContext, FreeContextBuffer, FreeCredentialsHandle,
    InitializeSecurityContextW, SecBuffer, SecBufferDesc, ISC_REQ_ALLOCATE_MEMORY, SECBUFFER_TOKEN,
    SECBUFFER_VERSION, SECPKG_CRED_OUTBOUND, SECURITY_NATIVE_DREP,
};
use windows_sys::Win32::Security::Credentials::SecHandle;

use super::auth::Scheme;

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

pub struct Sspi {
    credentials: SecHandle,
    context: Option<SecHandle>,
    target: Vec<u16>,
}

// SAFETY: SSPI handles are plain values usable from any thread, one call at a time (`&mut self`).
unsafe impl Send for Sspi {}

impl Sspi {
    pub fn new(scheme: Scheme, host: &str) -> Result<Self, String> {
        let package = wide(match scheme {
            Scheme::Ntlm => "NTLM",
            _ => "Negotiate",
        });
        let mut credentials = SecHandle { dwLower: 0, dwUpper: 0 };
        // SAFETY: the current user's credentials (no principal, no auth data) for outbound use; the handle
        // is freed in Drop.
        let status = unsafe {
            AcquireCredentialsHandleW(
                std::ptr::null(),
                package.as_ptr(),
                SECPKG_CRED_OUTBOUND,
                std::ptr::null(),
                std::ptr::null(),
                None,
                std::ptr::null(),
                &mut credentials,
                std::ptr::null_mut(),
            )
        };
        if status != SEC_E_OK {
            return Err(format!("AcquireCredentialsHandle ({}): {status:#x}", scheme.name()));
        }
        Ok(Self { credentials, context: None, target: wide(&format!("HTTP/{host}")) })
    }
}

impl super::auth::Context for Sspi {
    fn step(&mut self, input: Option<&[u8]>) -> Result<Vec<u8>, String> {
        let mut in_buffer = SecBuffer {
            cbBuffer: input.map_or(0, |t| t.len() as u32),
            BufferType: SECBUFFER_TOKEN,
            pvBuffer: input.map_or(std::ptr::null_mut(), |t| t.as_ptr() as *mut _),
        };
        let in_desc = SecBufferDesc { ulVersion: SECBUFFER_VERSION, cBuffers: 1, pBuffers: &mut in_buffer };
        let mut out_buffer =
            SecBuffer { cbBuffer: 0, BufferType: SECBUFFER_TOKEN, pvBuffer: std::ptr::null_mut() };
        let mut out_desc =
            SecBufferDesc { ulVersion: SECBUFFER_VERSION, cBuffers: 1, pBuffers: &mut out_buffer };
        let mut new_context = SecHandle { dwLower: 0, dwUpper: 0 };
        let mut attributes = 0u32;
        let previous = self.context.as_ref().map_or(std::ptr::null(), |c| c as *const SecHandle);
        // SAFETY: the credentials acquired in `new`, the context of the previous step (none at first), the
        // NUL-terminated SPN, and buffers that live across the call; the output token is allocated by SSPI
        // (ISC_REQ_ALLOCATE_MEMORY) and freed below.
        let status = unsafe {
            InitializeSecurityContextW(
                &self.credentials,
                previous,
                self.target.as_ptr(),
                ISC_REQ_ALLOCATE_MEMORY,
                0,
                SECURITY_NATIVE_DREP,
                if input.is_some() { &in_desc } else { std::ptr::null() },
                0,
                &mut new_context,
                &mut out_desc,
                &mut attributes,
                std::ptr::null_mut(),
            )
        };
        if status != SEC_E_OK && status != SEC_I_CONTINUE_NEEDED {
            return Err(format!("InitializeSecurityContext: {status:#x}"));
        }
        self.context = Some(new_context);
        let token = if out_buffer.pvBuffer.is_null() {
            Vec::new()
        } else {
            // SAFETY: SSPI gave `cbBuffer` bytes at `pvBuffer`, freed right after the copy.
            let t = unsafe {
                std::slice::from_raw_parts(out_buffer.pvBuffer as *const u8, out_buffer.cbBuffer as usize)
            }
            .to_vec();
            // SAFETY: a buffer SSPI allocated.
            unsafe { FreeContextBuffer(out_buffer.pvBuffer) };
            t
        };
        Ok(token)
    }
}

impl Drop for Sspi {
    fn drop(&mut self) {
        // SAFETY: the handles this struct owns, freed once.
        unsafe {
            if let Some(c) = &self.context {
                DeleteSecurityContext(c);
            }
            FreeCredentialsHandle(&self.credentials);
        }
    }
}
