//! Windows authentication with Kerberos, as SQL Server does it for a client
//! on Linux: LOGIN7 carries the client's first security token in its SSPI
//! data (OptionFlags2.fIntSecurity); the server accepts it, answering each
//! token it needs more of with an SSPI token (0xED) and reading the
//! client's next in an SSPI message (packet type 0x11), until the context
//! is complete; the last token it produces goes back with the login
//! response ([MS-TDS] 2.2.6.8 SSPI, 2.2.7.22 SSPI token:
//! https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-tds/1dc6c197-f606-410b-add9-e6fe1dff0e8b).
//! The acceptor is the system's GSSAPI (MIT Kerberos) with the service's
//! keytab (`MSSQLSvc/host:port`), read when each connection signs in: no
//! Kerberos of our own. The principal `user@REALM` is the Windows login
//! `REALM\user` — the realm's first label as its NetBIOS domain, as an
//! Active Directory realm and its domain are named — created with `CREATE
//! LOGIN [DOMAIN\user] FROM WINDOWS`.

use std::ffi::CString;
use std::path::Path;

use libgssapi::context::{SecurityContext, ServerCtx};
use libgssapi::credential::Cred;

/// A server context accepting one client's tokens.
pub struct Acceptor {
    ctx: ServerCtx,
}

impl Acceptor {
    /// Acceptor credentials for every service principal in `keytab`
    /// (`gss_acquire_cred_from` with a `keytab` credential store, so the
    /// process's environment is left alone).
    pub fn new(keytab: &Path) -> Result<Acceptor, String> {
        let key = CString::new("keytab").map_err(|e| e.to_string())?;
        let value = CString::new(keytab.as_os_str().as_encoded_bytes())
            .map_err(|_| format!("keytab path {} holds a NUL", keytab.display()))?;
        let mut element = libgssapi_sys::gss_key_value_element_desc {
            key: key.as_ptr(),
            value: value.as_ptr(),
        };
        let store = libgssapi_sys::gss_key_value_set_desc {
            count: 1,
            elements: &mut element,
        };
        let mut minor: libgssapi_sys::OM_uint32 = 0;
        let mut cred: libgssapi_sys::gss_cred_id_t = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; the output handle is
        // owned by the `Cred` it is wrapped in, which releases it.
        let major = unsafe {
            libgssapi_sys::gss_acquire_cred_from(
                &mut minor,
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut(),
                libgssapi_sys::GSS_C_ACCEPT as libgssapi_sys::gss_cred_usage_t,
                &store,
                &mut cred,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if major != 0 {
            return Err(format!(
                "cannot use the service keytab {} (GSS major {major:#x}, minor {minor})",
                keytab.display()
            ));
        }
        // SAFETY: `cred` was just acquired and is owned by nothing else.
        let cred = unsafe { Cred::from_c(cred) };
        Ok(Acceptor {
            ctx: ServerCtx::new(Some(cred)),
        })
    }

    /// Takes a client token; the token to send back, if any.
    pub fn step(&mut self, token: &[u8]) -> Result<Option<Vec<u8>>, String> {
        self.ctx
            .step(token, None)
            .map(|out| out.map(|b| b.to_vec()))
            .map_err(|e| format!("the client's security token was refused: {e}"))
    }

    pub fn is_complete(&self) -> bool {
        self.ctx.is_complete()
    }

    /// The authenticated client's principal, `user@REALM`.
    pub fn principal(&self) -> Result<String, String> {
        self.ctx
            .source_name()
            .map(|n| n.to_string())
            .map_err(|e| format!("no client name: {e}"))
    }
}

/// The Windows login of a Kerberos principal: `user@BRIDGE.TEST` is
/// `BRIDGE\user`.
pub fn windows_login(principal: &str) -> Option<String> {
    let (user, realm) = principal.rsplit_once('@')?;
    let domain = realm.split('.').next().filter(|d| !d.is_empty())?;
    Some(format!("{}\\{user}", domain.to_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn principals_are_named_as_windows_logins() {
        assert_eq!(
            super::windows_login("bridge@BRIDGE.TEST").as_deref(),
            Some("BRIDGE\\bridge")
        );
        assert_eq!(
            super::windows_login("etl@corp.example.com").as_deref(),
            Some("CORP\\etl")
        );
        assert_eq!(super::windows_login("no-realm"), None);
    }
}
