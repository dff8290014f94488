//! `everlock users passwd <login>`: sets a password with the server stopped, for an operator
//! who lost the administrator's password and so cannot log in to the console.
//!
//! The command takes the users store's `LOCK` (a running server holds it, and then the console
//! is the way), reads the new password from `EVERLOCK_PASSWORD` or a prompt without echo (never
//! from the command line, where `ps` and shell history would keep it), and records the change
//! as one commit by `system`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use everlock_host::auth::{Auth, AuthError, AuthOptions, DEFAULT_MIN_PASSWORD_CHARS, USERS_STORE};
use everlock_host::config::Config;
use everlock_host::storage::{StorageError, StoreManager};

/// The environment variable a script sets instead of answering the prompt.
const PASSWORD_ENV: &str = "EVERLOCK_PASSWORD";

/// Arguments of `everlock users`.
#[derive(clap::Args, Debug)]
pub(crate) struct UsersArgs {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: UsersCommand,
}

/// The `everlock users` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum UsersCommand {
    /// Set a user's password while the server is stopped (lost administrator password). The
    /// password comes from EVERLOCK_PASSWORD or a prompt, never from the command line.
    Passwd {
        /// The user's login.
        login: String,
    },
}

/// Runs `everlock users …` against the stores in `data_dir`.
pub(crate) fn run(
    args: UsersArgs,
    data_dir: &Path,
    options: AuthOptions,
) -> anyhow::Result<ExitCode> {
    let UsersCommand::Passwd { login } = args.command;
    let stores = StoreManager::new(data_dir);
    // Opening would create an empty users store; recovering a password needs the real one.
    let names = stores
        .list()
        .with_context(|| format!("cannot list the stores in {}", data_dir.display()))?;
    if !names.iter().any(|n| n == USERS_STORE) {
        anyhow::bail!(
            "no users store in {}: start the server once, it creates the administrator",
            data_dir.display()
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let (auth, authority) = match Auth::open_with_authority(&stores, options).await {
            Ok(opened) => opened,
            Err(AuthError::Storage(StorageError::InUse(_))) => anyhow::bail!(
                "the users store is in use by a running server; change the password in its \
                 console instead: /users passwd {login} <new password>"
            ),
            Err(e) => return Err(e.into()),
        };
        if !auth.directory().users.keys().any(|l| l.as_str() == login) {
            anyhow::bail!("no user '{login}' in {}", data_dir.display());
        }
        let password = read_password(&login)?;
        auth.recover_password(&authority, &login, &password).await?;
        println!("Password of '{login}' changed (one commit by system in {USERS_STORE}).");
        Ok(ExitCode::SUCCESS)
    })
}

/// The shortest password the offline path accepts: the console's `min-password-length` when
/// the configuration file sets one, otherwise the console's default. `auth` enforces it, so a
/// recovered password meets the same rule as one set in the console.
pub(crate) fn min_password_chars(config: &Config) -> usize {
    let instances = config
        .backends
        .get("admin-ssh")
        .and_then(|kind| kind.instances.as_ref());
    instances
        .into_iter()
        .flatten()
        .find_map(|(_, instance)| {
            let settings = instance.settings.as_ref()?.get_ref();
            settings.get("min-password-length")?.as_integer()
        })
        .and_then(|chars| usize::try_from(chars).ok())
        .unwrap_or(DEFAULT_MIN_PASSWORD_CHARS)
}

/// The new password: `EVERLOCK_PASSWORD` when set, otherwise asked twice on the terminal.
fn read_password(login: &str) -> anyhow::Result<String> {
    if let Some(password) = std::env::var_os(PASSWORD_ENV) {
        return password
            .into_string()
            .map_err(|_| anyhow::anyhow!("{PASSWORD_ENV} is not valid UTF-8"));
    }
    let prompt = |text: String| {
        rpassword::prompt_password(text).with_context(|| {
            format!("cannot read the password from the terminal (or set {PASSWORD_ENV})")
        })
    };
    let first = prompt(format!("New password for {login}: "))?;
    let second = prompt(format!("Repeat the password for {login}: "))?;
    if first != second {
        anyhow::bail!("the two passwords differ; nothing was changed");
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn config(text: &str) -> Config {
        Config::parse(text, Path::new("everlock.toml")).unwrap()
    }

    /// The offline path takes the console's configured minimum, and its default otherwise.
    #[test]
    fn the_offline_minimum_is_the_consoles() {
        assert_eq!(min_password_chars(&config("")), DEFAULT_MIN_PASSWORD_CHARS);
        let set = "[backends.admin-ssh.instances.console.settings]\nmin-password-length = 12\n";
        assert_eq!(min_password_chars(&config(set)), 12);
    }
}
