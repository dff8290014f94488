//! `everlock`: the composition root. It parses the command line, loads the configuration,
//! collects the compiled-in backends (see `linked.rs`) and runs the host.

mod backup_cmd;
mod cli;
mod cli_acme;
mod cli_storage;
mod error_chain;
mod linked;
mod logging;
#[cfg(feature = "backend-oci-http")]
mod oci_cmd;
mod ready_file;
mod serve;
mod site_cmd;
mod store_cmd;
mod store_copy_cmd;
mod users_cmd;

use std::process::ExitCode;

use anyhow::Context as _;
use everlock_host::Registry;
use everlock_host::config::Config;

/// `everlock --version`: the crate version and the git commit it was built from (`build.rs`).
pub(crate) const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("EVERLOCK_GIT_COMMIT"),
    ")"
);

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            logging::fatal(&e);
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let registry = Registry::collect().context("backend registry")?;
    let (cli, matches) = cli::parse(&registry);
    let cli::Cli {
        config: config_path,
        data_dir,
        command,
    } = cli;
    match command {
        cli::Command::Backends => {
            for factory in registry.factories() {
                println!(
                    "{:<16} {:<5} {}",
                    factory.kind, factory.frontend, factory.summary
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        cli::Command::Config {
            command: cli::ConfigCommand::Check { file },
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read config file {}", file.display()))?;
            let mut config = Config::parse(&text, &file)?;
            // The storage secrets may live in the environment only, as for `serve`.
            cli::overrides(None, None, &registry).apply(&mut config);
            let plan = config.plan(&registry, Some(&text))?;
            println!("{}: OK ({} instances)", file.display(), plan.specs().len());
            Ok(ExitCode::SUCCESS)
        }
        cli::Command::Store(args) => {
            let config = storage_config(config_path.as_deref(), data_dir, &registry)?;
            let manager = serve::store_manager(&config.data_dir, &config.storage)?;
            store_cmd::run(args, manager)
        }
        #[cfg(feature = "backend-oci-http")]
        cli::Command::Oci(args) => {
            let config = local_config(config_path.as_deref(), data_dir, &registry)?;
            oci_cmd::run(args, &config.data_dir)
        }
        cli::Command::Users(args) => {
            let config = local_config(config_path.as_deref(), data_dir, &registry)?;
            let options = everlock_host::auth::AuthOptions {
                min_password_chars: users_cmd::min_password_chars(&config),
                ..config.auth.options()
            };
            users_cmd::run(args, &config.data_dir, options)
        }
        cli::Command::Site(args) => site_cmd::run(args),
        cli::Command::Backup(args) => {
            let config = local_config(config_path.as_deref(), data_dir, &registry)?;
            backup_cmd::backup(args, &config.data_dir)
        }
        cli::Command::Restore(args) => {
            let config = local_config(config_path.as_deref(), data_dir, &registry)?;
            backup_cmd::restore(args, &config.data_dir)
        }
        cli::Command::Serve(args) => {
            let serve_matches = matches.subcommand_matches("serve").map(|m| (&args, m));
            let overrides = cli::overrides(data_dir, serve_matches, &registry);
            // Errors before the file is read already come out in the requested format.
            logging::prefer(overrides.log_format);
            let (config, source) = load_config(config_path.as_deref())?;
            let admin = serve::Bootstrap {
                user: args.admin_user.clone(),
                password: args.admin_password.clone(),
                ready_file: args.ready_file.clone(),
            };
            serve::serve(config, source.as_deref(), &overrides, registry, admin)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Reads the optional configuration file; defaults when there is none.
/// The configuration of an offline command that works on the local data directory: the
/// file, then the flags and environment; refused when the configuration puts the stores
/// elsewhere (S3, PostgreSQL), so the command never reads or writes the wrong copy.
fn local_config(
    path: Option<&std::path::Path>,
    data_dir: Option<std::path::PathBuf>,
    registry: &Registry,
) -> anyhow::Result<Config> {
    let config = storage_config(path, data_dir, registry)?;
    serve::refuse_remote_objects(&config.storage)?;
    Ok(config)
}

/// Like [`local_config`], but for `everlock store`, which works on S3 objects too.
fn storage_config(
    path: Option<&std::path::Path>,
    data_dir: Option<std::path::PathBuf>,
    registry: &Registry,
) -> anyhow::Result<Config> {
    let (mut config, _) = load_config(path)?;
    cli::overrides(data_dir, None, registry).apply(&mut config);
    Ok(config)
}

fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<(Config, Option<String>)> {
    match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            Ok((Config::parse(&text, path)?, Some(text)))
        }
        None => Ok((Config::default(), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_linked_backend_is_registered() {
        let registry = Registry::collect().unwrap();
        assert_eq!(
            registry.kinds().collect::<Vec<_>>(),
            linked::expected_kinds()
        );
    }
}
