//! Why an administrative change was refused: the contract's typed [`AdminError`], and how the
//! host's own causes (a configuration that fails validation, an instance that cannot be built
//! or installed) travel inside it whole, so the host can still match on them.

pub use crate::api::AdminError;
use crate::api::HostCause;
use crate::config::ConfigError;
use crate::runtime::HostError;

impl From<ConfigError> for AdminError {
    fn from(error: ConfigError) -> AdminError {
        AdminError::Config(HostCause::new(error))
    }
}

impl From<HostError> for AdminError {
    fn from(error: HostError) -> AdminError {
        AdminError::Host(HostCause::new(error))
    }
}
