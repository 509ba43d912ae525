//! The key-encryption key (KEK): seals the signing keys' PKCS#8 private keys with AES-256-GCM (`ring`) before
//! they are stored, so that the database never holds a private key in clear. The key's `kid` is the
//! additional authenticated data: a sealed key copied onto another row does not open.
//!
//! The KEK is 32 random bytes, written in base64, from `PARTNERGATE_KEY_ENCRYPTION_KEY` or from a file
//! (`--key-encryption-key-file`, default `<keys-dir>/key-encryption-key`, mode 0600). On SQLite (one host) a
//! missing default file is generated; on PostgreSQL every instance must be given the same KEK.

use std::fs;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use super::KeyError;

/// The default file name inside the keys directory.
pub const DEFAULT_FILE: &str = "key-encryption-key";
/// The environment variable that may carry the KEK itself.
pub const ENV_VALUE: &str = "PARTNERGATE_KEY_ENCRYPTION_KEY";

/// Where the KEK comes from, as configured.
#[derive(Clone, Default)]
pub struct KekSource {
    /// The KEK itself (base64), from the environment.
    pub value: Option<String>,
    /// An explicitly configured file.
    pub file: Option<PathBuf>,
}

impl std::fmt::Debug for KekSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KekSource")
            .field("value", &self.value.as_ref().map(|_| "<set>"))
            .field("file", &self.file)
            .finish()
    }
}

/// What to do when no KEK is configured and the default file is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenMissing {
    /// Generate it (SQLite: one host, so one file serves every process).
    Generate,
    /// Refuse (PostgreSQL: instances on several hosts must share one KEK, which only the operator can give).
    Refuse,
}

pub struct KeyEncryptionKey {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey(..)")
    }
}

impl KeyEncryptionKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| KeyError::Kek("the key-encryption key must be 32 bytes (base64-encoded)".into()))?;
        Ok(KeyEncryptionKey { key: LessSafeKey::new(unbound), rng: SystemRandom::new() })
    }

    fn from_text(text: &str, origin: &str) -> Result<Self, KeyError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| KeyError::Kek(format!("{origin}: the key-encryption key is not base64")))?;
        if bytes.len() != 32 {
            return Err(KeyError::Kek(format!(
                "{origin}: the key-encryption key must be 32 bytes, not {}; create one with `openssl rand -base64 32`",
                bytes.len()
            )));
        }
        Self::from_bytes(&bytes)
    }

    /// Resolves the configured source: the environment value, else the file (explicit or the default one in
    /// `keys_dir`), generating the default file when allowed.
    pub fn load(source: &KekSource, keys_dir: &Path, when_missing: WhenMissing) -> Result<Self, KeyError> {
        if let Some(value) = source.value.as_deref().filter(|v| !v.trim().is_empty()) {
            return Self::from_text(value, ENV_VALUE);
        }
        let path = source.file.clone().unwrap_or_else(|| keys_dir.join(DEFAULT_FILE));
        match fs::metadata(&path) {
            Ok(metadata) => {
                super::check_permissions(&path, &metadata)?;
                let text = fs::read_to_string(&path).map_err(super::io_error(&path))?;
                Self::from_text(&text, &path.display().to_string())
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                if source.file.is_some() || when_missing == WhenMissing::Refuse {
                    return Err(KeyError::Kek(format!(
                        "no key-encryption key: {} does not exist and {ENV_VALUE} is not set. Every instance on \
                         one PostgreSQL database needs the same one: create it with `openssl rand -base64 32 > {}` \
                         (mode 0600) and give it to each, or set {ENV_VALUE}",
                        path.display(),
                        path.display()
                    )));
                }
                let mut bytes = [0u8; 32];
                SystemRandom::new().fill(&mut bytes).map_err(|_| KeyError::Generation("no randomness".into()))?;
                fs::create_dir_all(keys_dir).map_err(super::io_error(keys_dir))?;
                super::write_private(&path, format!("{}\n", STANDARD.encode(bytes)).as_bytes())?;
                log::warn!(
                    "generated the key-encryption key {} (mode 0600): it seals the signing keys in the database; \
                     back it up with the database, without it the stored keys cannot be used",
                    path.display()
                );
                Self::from_bytes(&bytes)
            }
            Err(source) => Err(KeyError::Io { path, source }),
        }
    }

    /// Seals `plaintext` for the key `kid`: (nonce, ciphertext with its tag).
    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<(Vec<u8>, Vec<u8>), KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| KeyError::Generation("no randomness".into()))?;
        let mut sealed = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(kid.as_bytes()), &mut sealed)
            .map_err(|_| KeyError::Kek("sealing failed".into()))?;
        Ok((nonce.to_vec(), sealed))
    }

    /// Opens what [`seal`](Self::seal) sealed for `kid`; fails with a wrong KEK or a tampered row.
    pub fn open(&self, kid: &str, nonce: &[u8], sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        let wrong = || {
            KeyError::Kek(format!(
                "the key-encryption key does not open signing key {kid}: every instance must have the KEK the keys \
                 were stored with"
            ))
        };
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut buffer = sealed.to_vec();
        let plain = self.key.open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buffer).map_err(|_| wrong())?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_with_the_same_key_and_kid() {
        let kek = KeyEncryptionKey::from_bytes(&[7u8; 32]).unwrap();
        let (nonce, sealed) = kek.seal("kid-1", b"private").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"private"), "not in clear");
        assert_eq!(kek.open("kid-1", &nonce, &sealed).unwrap(), b"private");
        assert!(kek.open("kid-2", &nonce, &sealed).is_err(), "bound to its kid");
        let other = KeyEncryptionKey::from_bytes(&[8u8; 32]).unwrap();
        assert!(other.open("kid-1", &nonce, &sealed).is_err(), "another KEK does not open it");
    }

    #[test]
    fn the_default_file_is_generated_private_on_sqlite_and_refused_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let source = KekSource::default();
        let err = KeyEncryptionKey::load(&source, dir.path(), WhenMissing::Refuse).unwrap_err();
        assert!(err.to_string().contains("openssl rand -base64 32"), "{err}");
        let kek = KeyEncryptionKey::load(&source, dir.path(), WhenMissing::Generate).unwrap();
        let (nonce, sealed) = kek.seal("k", b"x").unwrap();
        let again = KeyEncryptionKey::load(&source, dir.path(), WhenMissing::Refuse).unwrap();
        assert_eq!(again.open("k", &nonce, &sealed).unwrap(), b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join(DEFAULT_FILE);
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                KeyEncryptionKey::load(&source, dir.path(), WhenMissing::Refuse),
                Err(KeyError::Permissions { .. })
            ));
        }
        let from_env = KekSource { value: Some(STANDARD.encode([1u8; 32])), file: None };
        KeyEncryptionKey::load(&from_env, dir.path(), WhenMissing::Refuse).unwrap();
        let short = KekSource { value: Some(STANDARD.encode([1u8; 16])), file: None };
        assert!(KeyEncryptionKey::load(&short, dir.path(), WhenMissing::Refuse).is_err());
    }
}
