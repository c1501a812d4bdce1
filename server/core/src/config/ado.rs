//! ADO.NET connection strings (`SQLSERVER_CONNECTION_STRING`) as
//! Microsoft.Data.SqlClient reads them: `keyword=value` pairs separated by
//! `;`, keywords case-insensitive with their documented synonyms, values
//! quoted with `"`, `'` or `{}`. SqlClient refuses a keyword it does not know
//! ("Keyword not supported"), and so does the bridge, naming it — a typo
//! is never silently ignored. Each keyword SqlClient knows is one of: used
//! by the bridge; accepted with no effect on what the bridge does (pooling,
//! retries and timeouts are the bridge's own); or refused, with the reason,
//! where ignoring it would do something other than what was asked (Always
//! Encrypted, an attached file, a pinned certificate, read-only routing, an
//! authentication method the bridge does not have).
//! https://learn.microsoft.com/dotnet/api/microsoft.data.sqlclient.sqlconnection.connectionstring

use std::collections::HashMap;

use super::entra::{EntraMethod, EntraSignIn};
use super::settings::SettingsError;

/// Where the errors say the value came from.
pub const SOURCE: &str = "SQLSERVER_CONNECTION_STRING";

/// What the bridge does with a keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handling {
    /// Read by the settings.
    Used,
    /// Accepted; the bridge's own behaviour covers it.
    NoEffect,
    /// Accepted only with these values (lower case, spaces removed);
    /// any other is refused with the reason.
    Only(&'static [&'static str], &'static str),
    /// Refused whatever the value, with the reason.
    Refused(&'static str),
}

/// Every keyword of SqlConnection.ConnectionString, its synonyms after it
/// (lower case), and what the bridge does with it.
#[rustfmt::skip]
const KEYWORDS: &[(&[&str], Handling)] = &[
    (&["data source", "server", "address", "addr", "network address"], Handling::Used),
    (&["initial catalog", "database"], Handling::Used),
    (&["user id", "uid", "user", "username"], Handling::Used),
    (&["password", "pwd"], Handling::Used),
    (&["encrypt"], Handling::Used),
    (&["trust server certificate", "trustservercertificate"], Handling::Used),
    (&["packet size"], Handling::Used),
    (&["application name", "app"], Handling::Used),
    (&["authentication"], Handling::Used),
    // Not SqlClient's (it takes a token as a property), but JDBC's and
    // go-mssqldb's way of giving one in the string.
    (&["accesstoken", "access token"], Handling::Used),
    (&["integrated security", "trusted_connection"], Handling::Only(
        &["false", "no", "true", "yes", "sspi"],
        "Integrated Security takes true, false, yes, no or SSPI",
    )),
    (&["application intent", "applicationintent"], Handling::Only(
        &["readwrite"],
        "read-only routing to an availability group secondary is not supported; connect to the replica you want to read",
    )),
    (&["column encryption setting"], Handling::Only(
        &["disabled"],
        "Always Encrypted is not supported: the bridge would read the encrypted bytes, not the values",
    )),
    (&["attestation protocol"], Handling::Only(&["none", "notspecified"], "Always Encrypted with secure enclaves is not supported")),
    (&["enclave attestation url"], Handling::Only(&[""], "Always Encrypted with secure enclaves is not supported")),
    (&["attachdbfilename", "extended properties", "initial file name"], Handling::Refused(
        "attaching a database file is not supported; attach it on the server and name it with Database",
    )),
    (&["user instance"], Handling::Only(&["false", "no"], "user instances (SQL Server Express) are not supported")),
    (&["failover partner"], Handling::Refused(
        "database mirroring failover is not supported; connect to an availability group listener instead",
    )),
    (&["server certificate", "servercertificate"], Handling::Refused(
        "pinning the server's certificate is not supported; give its CA with SQLSERVER_CA_FILE",
    )),
    (&["host name in certificate", "hostnameincertificate"], Handling::Refused(
        "checking the certificate against another host name is not supported; connect with the name the certificate holds",
    )),
    (&["network library", "network", "net"], Handling::Only(&["dbmssocn"], "the bridge connects over TCP/IP (dbmssocn) only")),
    (&["current language", "language"], Handling::Only(
        &["", "us_english", "english"],
        "the bridge signs in with the server's default language (us_english); another language changes how dates in text are read",
    )),
    (&["connect timeout", "connection timeout", "timeout"], Handling::NoEffect),
    (&["command timeout"], Handling::NoEffect),
    (&["connect retry count", "connectretrycount"], Handling::NoEffect),
    (&["connect retry interval", "connectretryinterval"], Handling::NoEffect),
    (&["pooling"], Handling::NoEffect),
    (&["min pool size"], Handling::NoEffect),
    (&["max pool size"], Handling::NoEffect),
    (&["load balance timeout", "connection lifetime"], Handling::NoEffect),
    (&["pool blocking period", "poolblockingperiod"], Handling::NoEffect),
    (&["enlist"], Handling::NoEffect),
    (&["multiple active result sets", "multipleactiveresultsets"], Handling::NoEffect),
    (&["multi subnet failover", "multisubnetfailover"], Handling::NoEffect),
    (&["transparent network ip resolution", "transparentnetworkipresolution"], Handling::NoEffect),
    (&["ip address preference", "ipaddresspreference"], Handling::NoEffect),
    (&["persist security info", "persistsecurityinfo"], Handling::NoEffect),
    (&["workstation id", "wsid"], Handling::NoEffect),
    (&["type system version"], Handling::NoEffect),
    (&["transaction binding"], Handling::NoEffect),
    (&["replication"], Handling::NoEffect),
    (&["server spn", "serverspn"], Handling::Used),
    (&["failover partner spn", "failoverpartnerspn"], Handling::NoEffect),
];

/// How the bridge signs in to SQL Server.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Authentication {
    /// A SQL login and its password (`Authentication=SqlPassword`, or none).
    #[default]
    SqlPassword,
    /// A Microsoft Entra ID access token obtained elsewhere
    /// (`Authentication=ActiveDirectoryAccessToken` with `AccessToken=` or
    /// `SQLSERVER_ACCESS_TOKEN`), sent in the login's FEDAUTH feature. It is
    /// not refreshed: it must outlive the run.
    AccessToken(String),
    /// Windows authentication with Kerberos (`Integrated Security=true`):
    /// the system's GSSAPI signs in as the principal of the credential
    /// cache (`KRB5CCNAME`) or of a client keytab (`KRB5_CLIENT_KTNAME`),
    /// for the service `MSSQLSvc/host:port`.
    Kerberos,
    /// Tokens the bridge gets from Microsoft Entra ID itself (a service
    /// principal, a managed identity, workload identity, the default
    /// chain), a fresh one for each new connection.
    Entra(EntraSignIn),
}

impl std::fmt::Debug for Authentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Authentication::SqlPassword => f.write_str("SqlPassword"),
            Authentication::AccessToken(_) => f.write_str("AccessToken(<redacted>)"),
            Authentication::Entra(e) => write!(f, "Entra({e:?})"),
            Authentication::Kerberos => f.write_str("Kerberos"),
        }
    }
}

/// The methods of SqlClient's `Authentication` keyword (spaces and case
/// ignored): the Entra ID method each is, or why the bridge does not have
/// it. `ActiveDirectoryMSI` is SqlClient's synonym of
/// `ActiveDirectoryManagedIdentity`.
const AUTHENTICATION: &[(&str, Result<Option<EntraMethod>, &str>)] = &[
    ("sqlpassword", Ok(None)),
    ("activedirectoryserviceprincipal", Ok(Some(EntraMethod::ServicePrincipal))),
    ("activedirectorymanagedidentity", Ok(Some(EntraMethod::ManagedIdentity))),
    ("activedirectorymsi", Ok(Some(EntraMethod::ManagedIdentity))),
    ("activedirectoryworkloadidentity", Ok(Some(EntraMethod::WorkloadIdentity))),
    ("activedirectorydefault", Ok(Some(EntraMethod::Default))),
    ("activedirectorypassword", Err("Microsoft deprecates signing in with a user's password, and a service has no user; use ActiveDirectoryServicePrincipal")),
    ("activedirectoryintegrated", Err("a service has no Windows desktop session to sign in with")),
    ("activedirectoryinteractive", Err("a service has no person at a browser to sign in")),
    ("activedirectorydeviceflow", Err("a service has no person at a browser to sign in")),
    ("activedirectorydevicecodeflow", Err("a service has no person at a browser to sign in")),
];

/// The method asked for, before its credential is resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requested {
    SqlPassword,
    Kerberos,
    AccessToken(String),
    Entra(EntraMethod),
}

/// A connection string's keywords: each resolved to its canonical name
/// (the first of its synonyms), its value as written.
#[derive(Debug, Default)]
pub struct AdoString {
    values: HashMap<&'static str, String>,
}

impl std::fmt::Display for Authentication {
    /// How `test-connection` and the logs name the method.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Authentication::SqlPassword => f.write_str("SQL login"),
            Authentication::AccessToken(_) => f.write_str("Entra ID access token"),
            Authentication::Entra(e) => e.fmt(f),
            Authentication::Kerberos => f.write_str("Kerberos (Windows authentication)"),
        }
    }
}

impl AdoString {
    /// Parses and checks a connection string; an unknown keyword, a keyword
    /// given twice under two synonyms, or a refused one is an error naming
    /// it (never its value: it may be a password).
    pub fn parse(text: &str) -> Result<AdoString, SettingsError> {
        let mut values: HashMap<&'static str, String> = HashMap::new();
        let mut written: HashMap<&'static str, String> = HashMap::new();
        for (key, value) in pairs(text)? {
            let Some((names, handling)) = KEYWORDS
                .iter()
                .find(|(names, _)| names.contains(&key.as_str()))
            else {
                let hint = nearest(&key)
                    .map(|k| format!(" (did you mean '{k}'?)"))
                    .unwrap_or_default();
                return Err(invalid(format!("keyword not supported: '{key}'{hint}")));
            };
            let canonical = names[0];
            match handling {
                Handling::Refused(why) => {
                    return Err(invalid(format!("'{key}' is refused: {why}")));
                }
                Handling::Only(allowed, why) => {
                    let v = value.to_ascii_lowercase().replace(' ', "");
                    if !allowed.contains(&v.as_str()) {
                        return Err(invalid(format!("'{key}={value}' is refused: {why}")));
                    }
                }
                Handling::Used | Handling::NoEffect => {}
            }
            // SqlClient keeps the last of a keyword given twice; two
            // synonyms that disagree are more likely a mistake.
            if let Some(first) = written.get(canonical) {
                if first != &key && values.get(canonical) != Some(&value) {
                    return Err(invalid(format!(
                        "'{first}' and '{key}' are the same keyword with two values; give it once"
                    )));
                }
            }
            written.insert(canonical, key);
            values.insert(canonical, value);
        }
        Ok(AdoString { values })
    }

    /// The value of a keyword, by its canonical name.
    pub fn get(&self, canonical: &str) -> Option<&str> {
        self.values.get(canonical).map(String::as_str)
    }

    /// Whether Windows (Kerberos) authentication is asked for: `flag`
    /// (`SQLSERVER_INTEGRATED_SECURITY`) wins over `Integrated Security`.
    fn integrated(&self, flag: Option<bool>) -> bool {
        flag.unwrap_or_else(|| {
            self.get("integrated security").is_some_and(|v| {
                matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "true" | "yes" | "sspi"
                )
            })
        })
    }

    /// The authentication method asked for; `token` is
    /// `SQLSERVER_ACCESS_TOKEN`, which wins over `AccessToken=` and implies
    /// the access-token method; `method` a method named outside the string
    /// (`--sqlserver-authentication`, `SQLSERVER_AUTHENTICATION`: where,
    /// and the name), which wins over `Authentication=`.
    pub fn requested(
        &self,
        token: Option<&str>,
        method: Option<(&str, &str)>,
        integrated: Option<bool>,
    ) -> Result<Requested, SettingsError> {
        let token = token
            .or_else(|| self.get("accesstoken"))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let (source, written) = match method.filter(|(_, m)| !m.trim().is_empty()) {
            Some((source, m)) => (source, Some(m.trim())),
            None => (SOURCE, self.get("authentication")),
        };
        let invalid = |message: String| SettingsError::Invalid {
            source_name: source.into(),
            message,
        };
        let method = written.map(|w| w.to_ascii_lowercase().replace([' ', '_', '-'], ""));
        if self.integrated(integrated) {
            if token.is_some() || method.is_some() {
                return Err(invalid(
                    "Integrated Security signs in with Kerberos; it goes with no Authentication method and no access token".into(),
                ));
            }
            return Ok(Requested::Kerberos);
        }
        if method.as_deref() == Some("activedirectoryaccesstoken") || token.is_some() {
            let Some(token) = token else {
                return Err(invalid(
                    "Authentication=ActiveDirectoryAccessToken needs a token: set SQLSERVER_ACCESS_TOKEN (or AccessToken= in the string)".into(),
                ));
            };
            if self.get("user id").is_some() || self.get("password").is_some() {
                return Err(invalid(
                    "an access token cannot be given with User ID or Password; remove them".into(),
                ));
            }
            if method
                .as_deref()
                .is_some_and(|m| m != "activedirectoryaccesstoken")
            {
                return Err(invalid(format!(
                    "an access token was given with Authentication={}; use Authentication=ActiveDirectoryAccessToken or leave it out",
                    written.unwrap_or_default()
                )));
            }
            return Ok(Requested::AccessToken(token.to_string()));
        }
        let (Some(written), Some(method)) = (written, method) else {
            return Ok(Requested::SqlPassword);
        };
        match AUTHENTICATION.iter().find(|(name, _)| *name == method) {
            Some((_, Ok(None))) => Ok(Requested::SqlPassword),
            Some((_, Ok(Some(m)))) => Ok(Requested::Entra(*m)),
            Some((_, Err(why))) => Err(invalid(format!(
                "Authentication={written} is not supported: {why}"
            ))),
            None => Err(invalid(format!(
                "Authentication={written} is not an authentication method SqlClient knows (SqlPassword, ActiveDirectoryServicePrincipal, ActiveDirectoryManagedIdentity, ActiveDirectoryWorkloadIdentity, ActiveDirectoryDefault, ActiveDirectoryAccessToken)"
            ))),
        }
    }
}

fn invalid(message: String) -> SettingsError {
    SettingsError::Invalid {
        source_name: SOURCE.into(),
        message,
    }
}

/// The known keyword closest to a misspelt one (at most two edits).
fn nearest(key: &str) -> Option<&'static str> {
    KEYWORDS
        .iter()
        .flat_map(|(names, _)| names.iter().copied())
        .map(|k| (distance(key, k), k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance, for suggestions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The `keyword=value` pairs, keywords lower-cased and trimmed. Values may
/// be quoted with `"`, `'` or `{}`; a doubled closing quote is one.
fn pairs(s: &str) -> Result<Vec<(String, String)>, SettingsError> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ';') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            key.push(c);
        }
        let key = key.trim().to_ascii_lowercase();
        while chars.peek().is_some_and(|c| *c == ' ') {
            chars.next();
        }
        let mut value = String::new();
        match chars.peek().copied() {
            Some(q @ ('"' | '\'' | '{')) => {
                let close = if q == '{' { '}' } else { q };
                chars.next();
                loop {
                    match chars.next() {
                        Some(c) if c == close => {
                            if chars.peek() == Some(&close) {
                                chars.next();
                                value.push(close);
                            } else {
                                break;
                            }
                        }
                        Some(c) => value.push(c),
                        None => {
                            return Err(invalid(format!("unterminated quoted value for '{key}'")))
                        }
                    }
                }
                while chars.peek().is_some_and(|c| *c != ';') {
                    chars.next();
                }
            }
            _ => {
                while let Some(&c) = chars.peek() {
                    if c == ';' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
                value = value.trim().to_string();
            }
        }
        if key.is_empty() {
            return Err(invalid("a value without a key".into()));
        }
        out.push((key, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        AdoString::parse(s)
            .and_then(|a| a.requested(None, None, None).map(|_| a))
            .expect_err(s)
            .to_string()
    }

    #[test]
    fn synonyms_resolve_and_quotes_hold_separators() {
        let a = AdoString::parse(
            "Data Source=db.example,1433; Initial Catalog=ventas;UID=bridge;PWD={a;b}}c};App='ETL nightly'",
        )
        .unwrap();
        assert_eq!(a.get("data source"), Some("db.example,1433"));
        assert_eq!(a.get("initial catalog"), Some("ventas"));
        assert_eq!(a.get("user id"), Some("bridge"));
        assert_eq!(a.get("password"), Some("a;b}c"));
        assert_eq!(a.get("application name"), Some("ETL nightly"));
        assert_eq!(
            a.requested(None, None, None).unwrap(),
            Requested::SqlPassword
        );
    }

    #[test]
    fn keywords_with_no_effect_are_accepted() {
        let a = AdoString::parse(
            "Server=h;MultipleActiveResultSets=True;Pooling=false;Max Pool Size=50;Connect Timeout=30;\
             Persist Security Info=False;Integrated Security=false;Application Intent=ReadWrite;\
             Column Encryption Setting=Disabled;Authentication=Sql Password",
        )
        .unwrap();
        assert_eq!(
            a.requested(None, None, None).unwrap(),
            Requested::SqlPassword
        );
    }

    #[test]
    fn an_access_token_signs_in_on_its_own() {
        let token = |cs: &str, env: Option<&str>| {
            AdoString::parse(cs).and_then(|a| a.requested(env, None, None))
        };
        assert_eq!(
            token(
                "Server=h;Authentication=ActiveDirectoryAccessToken;AccessToken=eyJ.x.y",
                None
            )
            .unwrap(),
            Requested::AccessToken("eyJ.x.y".into())
        );
        // The variable implies the method and wins over the string's token.
        assert_eq!(
            token("Server=h;AccessToken=old", Some("eyJ.new")).unwrap(),
            Requested::AccessToken("eyJ.new".into())
        );
        for (cs, says) in [
            (
                "Server=h;Authentication=Active Directory Access Token",
                "needs a token",
            ),
            (
                "Server=h;AccessToken=eyJ.x.y;UID=sa;PWD=s3cret",
                "cannot be given with User ID or Password",
            ),
            (
                "Server=h;AccessToken=eyJ.x.y;Authentication=SqlPassword",
                "use Authentication=ActiveDirectoryAccessToken",
            ),
        ] {
            let e = token(cs, None).unwrap_err().to_string();
            assert!(
                e.contains(says) && !e.contains("eyJ") && !e.contains("s3cret"),
                "{e}"
            );
        }
        let a = Authentication::AccessToken("eyJ.x.y".into());
        assert_eq!(format!("{a:?}"), "AccessToken(<redacted>)");
        assert_eq!(a.to_string(), "Entra ID access token");
    }

    #[test]
    fn typos_and_refusals_name_the_keyword_never_the_secret() {
        let e = err("Servr=h;Password=hunter2");
        assert!(
            e.contains("keyword not supported: 'servr'") && e.contains("did you mean 'server'"),
            "{e}"
        );
        let e = err("Server=h;Authentication=ActiveDirectoryInteractive;Password=hunter2");
        assert!(
            e.contains("Authentication=ActiveDirectoryInteractive is not supported"),
            "{e}"
        );
        assert!(e.contains("no person at a browser"), "{e}");
        let e = err("Server=h;Authentication=ActiveDirectoryPassword");
        assert!(e.contains("use ActiveDirectoryServicePrincipal"), "{e}");
        for (written, method) in [
            (
                "Active Directory Service Principal",
                EntraMethod::ServicePrincipal,
            ),
            ("ActiveDirectoryMSI", EntraMethod::ManagedIdentity),
            (
                "activedirectorymanagedidentity",
                EntraMethod::ManagedIdentity,
            ),
            (
                "ActiveDirectoryWorkloadIdentity",
                EntraMethod::WorkloadIdentity,
            ),
            ("Active Directory Default", EntraMethod::Default),
        ] {
            let a = AdoString::parse(&format!("Server=h;Authentication={written}")).unwrap();
            assert_eq!(
                a.requested(None, None, None).unwrap(),
                Requested::Entra(method),
                "{written}"
            );
        }
        // A method named outside the string wins, and errors name where.
        let a = AdoString::parse("Server=h;Authentication=SqlPassword").unwrap();
        assert_eq!(
            a.requested(
                None,
                Some(("SQLSERVER_AUTHENTICATION", "ActiveDirectoryDefault")),
                None
            )
            .unwrap(),
            Requested::Entra(EntraMethod::Default)
        );
        let e = a
            .requested(None, Some(("SQLSERVER_AUTHENTICATION", "Kerberos5")), None)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("SQLSERVER_AUTHENTICATION: "), "{e}");
        let e = err("Server=h;Authentication=Kerbros");
        assert!(
            e.contains("not an authentication method SqlClient knows"),
            "{e}"
        );
        let e = err("Server=h;Trusted_Connection=maybe");
        assert!(e.contains("'trusted_connection=maybe' is refused"), "{e}");
        for yes in [
            "Trusted_Connection=yes",
            "Integrated Security=SSPI",
            "integrated security=True",
        ] {
            let a = AdoString::parse(&format!("Server=h;{yes}")).unwrap();
            assert_eq!(
                a.requested(None, None, None).unwrap(),
                Requested::Kerberos,
                "{yes}"
            );
        }
        let e = err("Server=h;Integrated Security=true;Authentication=ActiveDirectoryDefault");
        assert!(
            e.contains("Integrated Security signs in with Kerberos"),
            "{e}"
        );
        let e = err("Server=h;Column Encryption Setting=Enabled");
        assert!(e.contains("Always Encrypted"), "{e}");
        let e = err("Server=h;ApplicationIntent=ReadOnly");
        assert!(e.contains("read-only routing"), "{e}");
        let e = err("Server=h;AttachDbFilename=|DataDirectory|x.mdf");
        assert!(e.contains("attaching a database file"), "{e}");
        let e = err("Server=h;Pwd=s3cret1;Password=s3cret2");
        assert!(
            e.contains("same keyword with two values") && !e.contains("one") && !e.contains("two;"),
            "{e}"
        );
        for s in [
            err("Servr=h;Password=hunter2"),
            err("Server=h;Authentication=x;Password=hunter2"),
        ] {
            assert!(!s.contains("hunter2"), "{s}");
        }
    }
}
