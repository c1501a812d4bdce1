//! How the bridge gets Microsoft Entra ID tokens for itself, as settings:
//! which credential, for which application, from which tenant and
//! authority. The variables are the ones the Azure Identity libraries read
//! (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`,
//! `AZURE_CLIENT_CERTIFICATE_PATH`, `AZURE_FEDERATED_TOKEN_FILE`,
//! `AZURE_AUTHORITY_HOST`), so a host set up for them is set up for the
//! bridge. https://learn.microsoft.com/en-us/azure/developer/rust/sdk/authentication/credential-chains
//! Getting the tokens is `crate::entra`'s.

use std::fmt;
use std::path::PathBuf;

use super::settings::SettingsError;

/// Which credential gets the tokens.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum EntraCredential {
    /// An application (service principal) with a client secret.
    ClientSecret {
        tenant_id: String,
        client_id: String,
        secret: String,
    },
    /// An application with a certificate: a PEM file holding the
    /// certificate and its private key.
    ClientCertificate {
        tenant_id: String,
        client_id: String,
        path: PathBuf,
    },
    /// The host's managed identity: the system-assigned one, or a
    /// user-assigned one by its client id.
    ManagedIdentity { client_id: Option<String> },
    /// A federated token in a file (Kubernetes workload identity, CI
    /// systems), exchanged for the application's token.
    WorkloadIdentity {
        tenant_id: String,
        client_id: String,
        token_file: PathBuf,
    },
    /// A credential the embedding program holds, registered with
    /// `crate::entra::provide` under this name: on Databricks, a Unity
    /// Catalog service credential (the job's own identity); in Python, any
    /// Azure Identity credential.
    Provided { name: String },
    /// The account signed in to the Azure CLI (`az login`), through
    /// `az account get-access-token`.
    AzureCli { tenant_id: Option<String> },
    /// The Azure Identity default chain for a service: the environment's
    /// application credential, workload identity, managed identity, then
    /// the Azure CLI's signed-in account.
    Default {
        /// A user-assigned managed identity's (or workload identity's)
        /// client id.
        client_id: Option<String>,
    },
}

/// A credential and the authority host it asks.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EntraSignIn {
    pub credential: EntraCredential,
    /// `AZURE_AUTHORITY_HOST`; `None` is the public cloud's.
    pub authority_host: Option<String>,
}

impl fmt::Debug for EntraCredential {
    /// The secret is never shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntraCredential::ClientSecret {
                tenant_id,
                client_id,
                ..
            } => f
                .debug_struct("ClientSecret")
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field("secret", &"<redacted>")
                .finish(),
            EntraCredential::ClientCertificate {
                tenant_id,
                client_id,
                path,
            } => f
                .debug_struct("ClientCertificate")
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field("path", path)
                .finish(),
            EntraCredential::ManagedIdentity { client_id } => f
                .debug_struct("ManagedIdentity")
                .field("client_id", client_id)
                .finish(),
            EntraCredential::WorkloadIdentity {
                tenant_id,
                client_id,
                token_file,
            } => f
                .debug_struct("WorkloadIdentity")
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field("token_file", token_file)
                .finish(),
            EntraCredential::Provided { name } => {
                f.debug_struct("Provided").field("name", name).finish()
            }
            EntraCredential::AzureCli { tenant_id } => f
                .debug_struct("AzureCli")
                .field("tenant_id", tenant_id)
                .finish(),
            EntraCredential::Default { client_id } => f
                .debug_struct("Default")
                .field("client_id", client_id)
                .finish(),
        }
    }
}

impl fmt::Debug for EntraSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntraSignIn")
            .field("credential", &self.credential)
            .field("authority_host", &self.authority_host)
            .finish()
    }
}

impl fmt::Display for EntraSignIn {
    /// How `test-connection`, readiness and the audit name the method:
    /// the kind and the application, never a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.credential {
            EntraCredential::ClientSecret { client_id, .. } => {
                write!(f, "Entra ID service principal {client_id} (client secret)")
            }
            EntraCredential::ClientCertificate { client_id, .. } => {
                write!(f, "Entra ID service principal {client_id} (certificate)")
            }
            EntraCredential::ManagedIdentity { client_id: None } => {
                f.write_str("Entra ID managed identity (system-assigned)")
            }
            EntraCredential::ManagedIdentity {
                client_id: Some(id),
            } => write!(f, "Entra ID managed identity {id} (user-assigned)"),
            EntraCredential::WorkloadIdentity { client_id, .. } => {
                write!(f, "Entra ID workload identity {client_id}")
            }
            EntraCredential::AzureCli { .. } => f.write_str("Entra ID through the Azure CLI"),
            EntraCredential::Provided { .. } => {
                f.write_str("Entra ID credential given by the caller")
            }
            EntraCredential::Default { .. } => f.write_str("Entra ID default credential chain"),
        }
    }
}

/// The Entra ID methods of SqlClient's `Authentication` keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntraMethod {
    ServicePrincipal,
    ManagedIdentity,
    WorkloadIdentity,
    Default,
}

/// What a method was given: `User ID` and `Password` (from flags,
/// variables or the connection string, already resolved) and the
/// environment.
pub struct Given<'a> {
    /// Where the method was named, for errors.
    pub source: &'a str,
    pub user_id: &'a str,
    pub password: &'a str,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl Given<'_> {
    fn var(&self, name: &str) -> Option<String> {
        (self.env)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn invalid(&self, message: String) -> SettingsError {
        SettingsError::Invalid {
            source_name: self.source.to_string(),
            message,
        }
    }

    /// The application's client id: `User ID`, else `AZURE_CLIENT_ID`.
    fn client_id(&self, method: &str) -> Result<String, SettingsError> {
        Some(self.user_id.trim().to_string())
            .filter(|u| !u.is_empty())
            .or_else(|| self.var("AZURE_CLIENT_ID"))
            .ok_or_else(|| {
                self.invalid(format!(
                    "Authentication={method} needs the application (client) id as User ID (or AZURE_CLIENT_ID)"
                ))
            })
    }

    fn tenant(&self, method: &str) -> Result<String, SettingsError> {
        self.var("AZURE_TENANT_ID").ok_or_else(|| {
            self.invalid(format!(
                "Authentication={method} needs the tenant: set AZURE_TENANT_ID to the directory (tenant) id"
            ))
        })
    }
}

/// Resolves an Entra ID method into the credential it uses, as SqlClient
/// reads `User ID` and `Password` for it
/// (https://learn.microsoft.com/en-us/sql/connect/ado-net/sql/azure-active-directory-authentication):
/// the application's client id and secret for a service principal (here
/// also the path of a PEM certificate, or `AZURE_CLIENT_CERTIFICATE_PATH`),
/// the client id of a user-assigned identity for a managed identity,
/// workload identity or the default chain.
pub fn resolve(method: EntraMethod, given: &Given) -> Result<EntraSignIn, SettingsError> {
    let authority_host = given.var("AZURE_AUTHORITY_HOST");
    if let Some(host) = &authority_host {
        if !host.starts_with("https://") {
            return Err(SettingsError::Invalid {
                source_name: "AZURE_AUTHORITY_HOST".into(),
                message: format!("'{host}' is not an https:// URL"),
            });
        }
    }
    let user_id = given.user_id.trim();
    let credential = match method {
        EntraMethod::ServicePrincipal => {
            let name = "ActiveDirectoryServicePrincipal";
            let client_id = given.client_id(name)?;
            let tenant_id = given.tenant(name)?;
            let password = given.password;
            let certificate = if !password.is_empty() {
                is_pem_file(password).then(|| PathBuf::from(password))
            } else {
                given
                    .var("AZURE_CLIENT_CERTIFICATE_PATH")
                    .map(PathBuf::from)
            };
            match certificate {
                Some(path) => EntraCredential::ClientCertificate {
                    tenant_id,
                    client_id,
                    path,
                },
                None => {
                    let secret = Some(password.to_string())
                        .filter(|p| !p.is_empty())
                        .or_else(|| given.var("AZURE_CLIENT_SECRET"))
                        .ok_or_else(|| {
                            given.invalid(format!(
                                "Authentication={name} needs the client secret as Password (or AZURE_CLIENT_SECRET), or a certificate: Password or AZURE_CLIENT_CERTIFICATE_PATH naming a PEM file with the certificate and its key"
                            ))
                        })?;
                    EntraCredential::ClientSecret {
                        tenant_id,
                        client_id,
                        secret,
                    }
                }
            }
        }
        EntraMethod::ManagedIdentity => {
            no_password(given, "ActiveDirectoryManagedIdentity")?;
            EntraCredential::ManagedIdentity {
                client_id: Some(user_id.to_string()).filter(|u| !u.is_empty()),
            }
        }
        EntraMethod::WorkloadIdentity => {
            let name = "ActiveDirectoryWorkloadIdentity";
            no_password(given, name)?;
            let client_id = given.client_id(name)?;
            let tenant_id = given.tenant(name)?;
            let token_file = given
                .var("AZURE_FEDERATED_TOKEN_FILE")
                .map(PathBuf::from)
                .ok_or_else(|| {
                    given.invalid(format!(
                        "Authentication={name} needs AZURE_FEDERATED_TOKEN_FILE: the file the platform writes the federated token to"
                    ))
                })?;
            EntraCredential::WorkloadIdentity {
                tenant_id,
                client_id,
                token_file,
            }
        }
        EntraMethod::Default => {
            no_password(given, "ActiveDirectoryDefault")?;
            EntraCredential::Default {
                client_id: Some(user_id.to_string()).filter(|u| !u.is_empty()),
            }
        }
    };
    Ok(EntraSignIn {
        credential,
        authority_host,
    })
}

fn no_password(given: &Given, method: &str) -> Result<(), SettingsError> {
    if given.password.is_empty() {
        Ok(())
    } else {
        Err(given.invalid(format!(
            "Authentication={method} takes no Password (the platform holds the credential); remove it"
        )))
    }
}

/// Whether a `Password` value is the path of a PEM file rather than a
/// secret: an existing file that starts as PEM does.
fn is_pem_file(value: &str) -> bool {
    let path = std::path::Path::new(value);
    path.is_file()
        && std::fs::read(path)
            .map(|b| String::from_utf8_lossy(&b[..b.len().min(4096)]).contains("-----BEGIN "))
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given<'a>(
        user_id: &'a str,
        password: &'a str,
        env: &'a dyn Fn(&str) -> Option<String>,
    ) -> Given<'a> {
        Given {
            source: "SQLSERVER_CONNECTION_STRING",
            user_id,
            password,
            env,
        }
    }

    #[test]
    fn each_method_takes_what_sqlclient_reads_for_it() {
        let env = |k: &str| match k {
            "AZURE_TENANT_ID" => Some("t1".to_string()),
            "AZURE_FEDERATED_TOKEN_FILE" => Some("/var/run/token".to_string()),
            _ => None,
        };
        let sp = resolve(EntraMethod::ServicePrincipal, &given("app", "s3cret", &env)).unwrap();
        assert_eq!(
            sp.credential,
            EntraCredential::ClientSecret {
                tenant_id: "t1".into(),
                client_id: "app".into(),
                secret: "s3cret".into()
            }
        );
        assert!(!format!("{sp:?} {sp}").contains("s3cret"));
        let dir = std::env::temp_dir().join(format!("bridge-entra-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pem = dir.join("app.pem");
        std::fs::write(&pem, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let cert = resolve(
            EntraMethod::ServicePrincipal,
            &given("app", pem.to_str().unwrap(), &env),
        )
        .unwrap();
        assert!(
            matches!(cert.credential, EntraCredential::ClientCertificate { ref path, .. } if path == &pem)
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            resolve(EntraMethod::ManagedIdentity, &given("", "", &env))
                .unwrap()
                .credential,
            EntraCredential::ManagedIdentity { client_id: None }
        );
        assert_eq!(
            resolve(EntraMethod::ManagedIdentity, &given("mi-1", "", &env))
                .unwrap()
                .to_string(),
            "Entra ID managed identity mi-1 (user-assigned)"
        );
        assert_eq!(
            resolve(EntraMethod::WorkloadIdentity, &given("app", "", &env))
                .unwrap()
                .credential,
            EntraCredential::WorkloadIdentity {
                tenant_id: "t1".into(),
                client_id: "app".into(),
                token_file: "/var/run/token".into()
            }
        );
    }

    #[test]
    fn what_is_missing_or_misplaced_is_named() {
        let none = |_: &str| None;
        let e = resolve(EntraMethod::ServicePrincipal, &given("app", "x", &none))
            .unwrap_err()
            .to_string();
        assert!(e.contains("AZURE_TENANT_ID"), "{e}");
        let tenant = |k: &str| (k == "AZURE_TENANT_ID").then(|| "t".to_string());
        let e = resolve(EntraMethod::ServicePrincipal, &given("", "x", &tenant))
            .unwrap_err()
            .to_string();
        assert!(e.contains("client) id as User ID"), "{e}");
        let e = resolve(EntraMethod::ServicePrincipal, &given("app", "", &tenant))
            .unwrap_err()
            .to_string();
        assert!(e.contains("client secret as Password"), "{e}");
        let e = resolve(EntraMethod::ManagedIdentity, &given("", "pw", &tenant))
            .unwrap_err()
            .to_string();
        assert!(e.contains("takes no Password") && !e.contains("pw'"), "{e}");
        let e = resolve(EntraMethod::WorkloadIdentity, &given("app", "", &tenant))
            .unwrap_err()
            .to_string();
        assert!(e.contains("AZURE_FEDERATED_TOKEN_FILE"), "{e}");
        let http = |k: &str| (k == "AZURE_AUTHORITY_HOST").then(|| "http://x".to_string());
        let e = resolve(EntraMethod::ManagedIdentity, &given("", "", &http))
            .unwrap_err()
            .to_string();
        assert!(e.contains("AZURE_AUTHORITY_HOST"), "{e}");
    }
}
