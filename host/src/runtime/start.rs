//! Starting the host: the runtime records of `everlock-system` laid over the configuration,
//! one validation of the result, provisioning, every instance installed at once, and the
//! background tasks (maintenance, following other nodes) started.

use std::sync::atomic::Ordering;

use super::Host;
use crate::admin::{AdminError, overlay};
use crate::config::{Config, SYSTEM_STORE};

impl Host {
    /// Starts serving `config`: opens the `everlock-system` store, lays the runtime changes
    /// recorded there over `config`, validates the result and installs every instance at once.
    pub async fn start(&self, mut config: Config) -> Result<(), AdminError> {
        // From here on the granted kind's instances are built with their administration
        // handle; the changes they make are persisted once `state.system` is set below, under
        // the admin lock they must take first.
        self.started.store(true, Ordering::SeqCst);
        let system = self.stores.open(SYSTEM_STORE).await?;
        let base = config.clone();
        overlay(&mut config, self, &system).await?;
        // One validation of the whole effective configuration; only its plan is installed,
        // and a zero-config default that cannot be planned stops startup here.
        let plan = config
            .plan(&self.registry, None)
            .map_err(AdminError::from)?;
        self.provision_defaults(&config, &system).await?;
        self.start_instances(&plan)?;
        crate::maintenance::spawn(self, &config.storage, self.shutdown.clone());
        let mut state = self.admin.lock().await;
        // Provisioning may have committed: the seq is read after it, so the follower does not
        // rebuild every instance for this node's own records.
        state.seq = system.head().await?.map_or(0, |c| c.seq);
        self.seen.store(state.seq, Ordering::SeqCst);
        state.config = config;
        state.base = base;
        crate::follow::spawn(self, &system, self.shutdown.clone());
        state.system = Some(system);
        Ok(())
    }
}
