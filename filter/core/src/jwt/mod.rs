//! JSON Web Tokens: the provider's key set (`jwks`) and ID-token verification (`verify`).

mod es256;
pub mod jwks;
mod rsa;
pub mod verify;

pub use jwks::{Algorithm, JwksError, KeySet};
pub use verify::{verify_id_token, Claims, IdTokenCheck, VerifyError};
