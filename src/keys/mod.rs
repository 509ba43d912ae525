//! Signing keys: the key ring that signs and verifies tokens and renders the JWKS, and the rules of the keys'
//! life (see [`policy`]). Their life in the database, shared by every instance, is the registry's
//! (`registry/signing_keys.rs` for the storage, `registry/live_keys.rs` for the ring every instance reloads when
//! the change feed says the keys changed, `registry/key_schedule.rs` for the automatic rotation): this module
//! reads no database.
//!
//! Tokens are assembled and signed here with `ring` key pairs parsed once at load: every `jsonwebtoken`
//! version re-parses the private key on each `encode()`, which costs more than the whole rest of a token.
//!
//! A keys directory of PKCS#8 PEM files (`<kid>.pem`, mode 0600, the signing one named in `active`) is what
//! older versions signed with; its keys are imported into the database on the first start, or by
//! `keys import`. [`KeyRing::load`] still reads such a directory.

pub mod kek;
mod pem;
pub mod policy;
mod signing_key;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;

pub use policy::{KeyPolicy, KeyRecord, KeyState, RotationSchedule};
pub use signing_key::{thumbprint, Algorithm, PublicJwk, SigningKey};

const ACTIVE_FILE: &str = "active";

/// What the server needs to change its keys: the key-encryption key, the rotation bounds and the clock.
#[derive(Clone)]
pub struct KeyManager {
    pub kek: std::sync::Arc<kek::KeyEncryptionKey>,
    pub policy: KeyPolicy,
    pub clock: crate::clock::SharedClock,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}`")]
    Permissions { path: PathBuf, mode: u32 },
    #[error("{path} is writable by group or others (mode {mode:o}), so they could plant or swap a signing key; run `chmod go-w {path}`")]
    Writable { path: PathBuf, mode: u32 },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("no signing keys in {0}")]
    Empty(PathBuf),
    #[error("the active file names {0}, which is not a key in the directory")]
    UnknownActive(String),
    #[error("{0}")]
    Generation(String),
    #[error("{0}")]
    Kek(String),
    #[error("the stored signing keys have no active key; run `partnergate keys activate KID`")]
    NoActive,
    #[error("stored signing key {kid}: {message}")]
    Stored { kid: String, message: String },
}

pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io { path: path.to_path_buf(), source }
}

/// A key read from a keys directory, with its PKCS#8 document (to import it) and where it came from.
pub struct PemKey {
    pub der: Vec<u8>,
    pub key: SigningKey,
    pub path: PathBuf,
    /// Named by the directory's `active` file (or, without one, the most recently modified key).
    pub active: bool,
}

/// A key of the ring and its state.
#[derive(Debug)]
struct RingKey {
    key: SigningKey,
    state: KeyState,
    file: Option<String>,
}

/// A key ring's listing entry, for `keys list`.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: Algorithm,
    pub file: String,
    pub active: bool,
}

#[derive(Debug, Serialize)]
pub struct JwkSet<'a> {
    pub keys: Vec<&'a PublicJwk>,
}

#[derive(Debug)]
pub struct KeyRing {
    keys: Vec<RingKey>,
    active: usize,
    /// `base64url(header)` of the active key, computed once.
    active_header: String,
    /// The JWKS document, serialized once per ring: `/.well-known/jwks.json` is the busiest read of all, and
    /// `Bytes` so that a response shares this buffer instead of copying it.
    jwks_json: bytes::Bytes,
    /// When the active key began to sign, when the ring came from the database (for `/metrics`: the ring is
    /// reloaded on every key change, so a scrape needs no query).
    active_since: Option<chrono::NaiveDateTime>,
}

impl KeyRing {
    /// A ring of keys and their states; exactly one must be active. Removed keys do not belong in it.
    pub fn from_keys(keys: Vec<(SigningKey, KeyState)>) -> Result<Self, KeyError> {
        Self::build(keys.into_iter().map(|(key, state)| RingKey { key, state, file: None }).collect())
    }

    fn build(mut keys: Vec<RingKey>) -> Result<Self, KeyError> {
        keys.retain(|k| k.state != KeyState::Removed);
        keys.sort_by(|a, b| a.key.kid().cmp(b.key.kid()));
        keys.dedup_by(|a, b| a.key.kid() == b.key.kid());
        let active = keys.iter().position(|k| k.state == KeyState::Active).ok_or(KeyError::NoActive)?;
        let active_key = &keys[active].key;
        let header = serde_json::json!({ "alg": active_key.alg().as_str(), "typ": "at+jwt", "kid": active_key.kid() });
        let active_header = URL_SAFE_NO_PAD.encode(header.to_string());
        let jwks = JwkSet { keys: keys.iter().map(|k| k.key.jwk()).collect() };
        let jwks_json = serde_json::to_vec(&jwks).expect("a JWKS serializes").into();
        Ok(KeyRing { keys, active, active_header, jwks_json, active_since: None })
    }

    /// The ring of a keys directory: every key published, the one its `active` file names (or the newest)
    /// active. Refuses private key files that group or others can read.
    pub fn load(dir: &Path) -> Result<Self, KeyError> {
        let keys = read_dir_keys(dir)?;
        if keys.is_empty() {
            return Err(KeyError::Empty(dir.to_path_buf()));
        }
        Self::build(
            keys.into_iter()
                .map(|k| RingKey {
                    state: if k.active { KeyState::Active } else { KeyState::Published },
                    file: k.path.file_name().map(|n| n.to_string_lossy().into_owned()),
                    key: k.key,
                })
                .collect(),
        )
    }

    /// Loads the ring, first generating an active ES256 key if the directory has no key at all.
    pub fn load_or_init(dir: &Path) -> Result<Self, KeyError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        check_not_writable(dir)?;
        if !has_keys(dir)? {
            let kid = generate(dir, Algorithm::ES256, true)?;
            log::info!("generated signing key {kid} (ES256) in {}", dir.display());
        }
        Self::load(dir)
    }

    /// The ring, noting when its active key began to sign.
    pub fn with_active_since(self, since: chrono::NaiveDateTime) -> Self {
        KeyRing { active_since: Some(since), ..self }
    }

    /// When the active key began to sign, if known.
    pub fn active_since(&self) -> Option<chrono::NaiveDateTime> {
        self.active_since
    }

    pub fn active(&self) -> &SigningKey {
        &self.keys[self.active].key
    }

    /// The key `kid` if the ring has it (in any state: an instance that has not yet heard of an activation
    /// still holds the new key as published, and must verify the tokens another instance signs with it).
    pub fn find(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().map(|k| &k.key).find(|k| k.kid() == kid)
    }

    pub fn jwks(&self) -> JwkSet<'_> {
        JwkSet { keys: self.keys.iter().map(|k| k.key.jwk()).collect() }
    }

    /// [`KeyRing::jwks`] as JSON, serialized when the ring was built.
    pub fn jwks_json(&self) -> bytes::Bytes {
        self.jwks_json.clone()
    }

    pub fn algorithms(&self) -> Vec<Algorithm> {
        let mut algs: Vec<Algorithm> = self.keys.iter().map(|k| k.key.alg()).collect();
        algs.sort_by_key(|a| a.as_str());
        algs.dedup();
        algs
    }

    pub fn list(&self) -> Vec<KeyInfo> {
        self.keys
            .iter()
            .enumerate()
            .map(|(i, k)| KeyInfo {
                kid: k.key.kid().to_string(),
                alg: k.key.alg(),
                file: k.file.clone().unwrap_or_default(),
                active: i == self.active,
            })
            .collect()
    }

    /// A compact JWS over `claims` with the active key: header `{"alg", "typ": "at+jwt", "kid"}`.
    pub fn sign_jwt<T: Serialize>(&self, claims: &T) -> String {
        self.sign_encoded(&self.active_header, claims)
    }

    /// A compact JWS of another type over `claims` with the active key (a Security Event Token's `typ` is
    /// `secevent+jwt`, RFC 8417): its header is built per call, which the token path's own type avoids.
    pub fn sign_jwt_typed<T: Serialize>(&self, typ: &str, claims: &T) -> String {
        let key = self.active();
        let header = serde_json::json!({ "alg": key.alg().as_str(), "typ": typ, "kid": key.kid() });
        self.sign_encoded(&URL_SAFE_NO_PAD.encode(header.to_string()), claims)
    }

    fn sign_encoded<T: Serialize>(&self, encoded_header: &str, claims: &T) -> String {
        let payload = serde_json::to_vec(claims).expect("claims serialize to JSON");
        let mut token = String::with_capacity(encoded_header.len() + payload.len() * 4 / 3 + 100);
        token.push_str(encoded_header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let signature = self.active().sign(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        token
    }
}

/// Every key of a keys directory (none when it is missing), sorted by kid; refuses a directory or `active`
/// file that group or others may write and key files they may read.
pub fn read_dir_keys(dir: &Path) -> Result<Vec<PemKey>, KeyError> {
    // A readable directory only lists kids, which JWKS publishes anyway; a writable one is a forgery.
    check_not_writable(dir)?;
    check_not_writable(&dir.join(ACTIVE_FILE))?;
    if !has_keys(dir)? {
        return Ok(Vec::new());
    }
    let mut keys = Vec::new();
    let mut modified = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("pem") {
            continue;
        }
        let key = read_key_file(&path)?;
        let modified_at = fs::metadata(&path).and_then(|m| m.modified()).map_err(io_error(&path))?;
        modified.push((modified_at, key.key.kid().to_string()));
        keys.push(key);
    }
    keys.sort_by(|a, b| a.key.kid().cmp(b.key.kid()));
    keys.dedup_by(|a, b| a.key.kid() == b.key.kid());
    let active_kid = match read_active_kid(dir)? {
        Some(kid) if keys.iter().any(|k| k.key.kid() == kid) => kid,
        Some(kid) => return Err(KeyError::UnknownActive(kid)),
        None => modified.into_iter().max().map(|(_, kid)| kid).unwrap_or_default(),
    };
    for key in &mut keys {
        key.active = key.key.kid() == active_kid;
    }
    Ok(keys)
}

/// One PEM key file, refused when group or others can read it.
pub fn read_key_file(path: &Path) -> Result<PemKey, KeyError> {
    let metadata = fs::metadata(path).map_err(io_error(path))?;
    check_permissions(path, &metadata)?;
    let text = fs::read_to_string(path).map_err(io_error(path))?;
    let der = pem::decode_pkcs8(&text).map_err(|message| KeyError::Invalid { path: path.to_path_buf(), message })?;
    let key =
        SigningKey::from_pkcs8(&der).map_err(|message| KeyError::Invalid { path: path.to_path_buf(), message })?;
    Ok(PemKey { der, key, path: path.to_path_buf(), active: false })
}

/// Whether `dir` holds any key file, loadable or not (a missing directory holds none).
pub fn has_keys(dir: &Path) -> Result<bool, KeyError> {
    let entries = match fs::read_dir(dir) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        other => other.map_err(io_error(dir))?,
    };
    for entry in entries {
        if entry.map_err(io_error(dir))?.path().extension().and_then(|e| e.to_str()) == Some("pem") {
            return Ok(true);
        }
    }
    Ok(false)
}

fn read_active_kid(dir: &Path) -> Result<Option<String>, KeyError> {
    let path = dir.join(ACTIVE_FILE);
    match fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => Ok(Some(text.trim().to_string())),
        Ok(_) => Ok(None),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(KeyError::Io { path, source: err }),
    }
}

#[cfg(unix)]
pub(crate) fn check_permissions(path: &Path, metadata: &fs::Metadata) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions { path: path.to_path_buf(), mode });
    }
    Ok(())
}

/// Refuses `path` (if it exists) when group or others may write it.
#[cfg(unix)]
pub fn check_not_writable(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = match fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(KeyError::Io { path: path.to_path_buf(), source }),
    };
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(KeyError::Writable { path: path.to_path_buf(), mode });
    }
    Ok(())
}

#[cfg(not(unix))]
pub fn check_not_writable(_path: &Path) -> Result<(), KeyError> {
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn check_permissions(_path: &Path, _metadata: &fs::Metadata) -> Result<(), KeyError> {
    Ok(())
}

/// Generates a key into `dir` as `<kid>.pem` (mode 0600) and, if `activate`, makes it the signing key.
pub fn generate(dir: &Path, alg: Algorithm, activate: bool) -> Result<String, KeyError> {
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let der = SigningKey::generate_pkcs8(alg).map_err(KeyError::Generation)?;
    let key = SigningKey::from_pkcs8(&der).map_err(KeyError::Generation)?;
    let path = dir.join(format!("{}.pem", key.kid()));
    write_private(&path, pem::encode_pkcs8(&der).as_bytes())?;
    if activate {
        set_active(dir, key.kid())?;
    }
    Ok(key.kid().to_string())
}

/// Writes the `active` file through a rename, so a concurrent reader never sees it half-written.
pub fn set_active(dir: &Path, kid: &str) -> Result<(), KeyError> {
    let tmp = dir.join(".active.tmp");
    fs::write(&tmp, format!("{kid}\n")).map_err(io_error(&tmp))?;
    let path = dir.join(ACTIVE_FILE);
    fs::rename(&tmp, &path).map_err(io_error(&path))
}

pub(crate) fn write_private(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_error(path))?;
    file.write_all(contents).and_then(|_| file.sync_all()).map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_generates_an_active_es256_key_and_reloads_it() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::load_or_init(dir.path()).unwrap();
        assert_eq!(ring.active().alg(), Algorithm::ES256);
        let again = KeyRing::load_or_init(dir.path()).unwrap();
        assert_eq!(again.active().kid(), ring.active().kid());
        assert_eq!(again.list().len(), 1);
    }

    #[test]
    fn active_file_selects_the_signing_key() {
        let dir = tempfile::tempdir().unwrap();
        let first = generate(dir.path(), Algorithm::ES256, true).unwrap();
        let second = generate(dir.path(), Algorithm::EdDSA, false).unwrap();
        let ring = KeyRing::load(dir.path()).unwrap();
        assert_eq!(ring.active().kid(), first);
        assert_eq!(ring.jwks().keys.len(), 2);
        assert_eq!(ring.jwks_json(), serde_json::to_vec(&ring.jwks()).unwrap());
        set_active(dir.path(), &second).unwrap();
        assert_eq!(KeyRing::load(dir.path()).unwrap().active().alg(), Algorithm::EdDSA);
    }

    #[cfg(unix)]
    #[test]
    fn group_readable_key_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let kid = generate(dir.path(), Algorithm::ES256, true).unwrap();
        let path = dir.path().join(format!("{kid}.pem"));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = KeyRing::load(dir.path()).unwrap_err();
        assert!(matches!(err, KeyError::Permissions { .. }), "{err}");
        assert!(err.to_string().contains("chmod 600"));
    }

    #[cfg(unix)]
    #[test]
    fn writable_directory_or_active_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), Algorithm::ES256, true).unwrap();
        for (path, mode) in [(dir.path().to_path_buf(), 0o777), (dir.path().to_path_buf(), 0o770)] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let err = KeyRing::load(dir.path()).unwrap_err();
            assert!(matches!(err, KeyError::Writable { .. }), "{mode:o}: {err}");
            assert!(err.to_string().contains("chmod go-w"), "{err}");
        }
        // Readable by all is fine: the directory lists kids, which the JWKS publishes.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        KeyRing::load(dir.path()).unwrap();
        let active = dir.path().join(ACTIVE_FILE);
        fs::set_permissions(&active, fs::Permissions::from_mode(0o666)).unwrap();
        assert!(matches!(KeyRing::load(dir.path()).unwrap_err(), KeyError::Writable { .. }));
    }
}
