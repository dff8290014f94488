//! One line of a session, shared by the terminal (`console`) and scripts (`script`): running
//! it with its audit record, and writing its reply. It sits below both so that `console`
//! hands piped sessions to `script` without `script` reaching back up into `console`.

use everlock_host::auth::Principal;
use everlock_host::{SessionOutput, SshSession};

use crate::exec::{Console, Reply};

/// Executes a line and records it in the audit log: only its parsed, redacted form.
pub(crate) async fn run_line(
    console: &Console,
    actor: &Principal,
    session: &SshSession,
    line: &str,
) -> Reply {
    let reply = console.execute(actor, line).await;
    if !line.trim().is_empty() {
        tracing::info!(
            target: "everlock::audit",
            actor = %actor,
            remote = %session.remote,
            command = %crate::audit::audit_form(console.families(), line),
            status = reply.status,
            "console command"
        );
    }
    reply
}

/// Records a command whose passwords were asked for (never the passwords themselves).
pub(crate) fn audit_prompted(actor: &Principal, session: &SshSession, command: &str, status: u32) {
    tracing::info!(
        target: "everlock::audit",
        actor = %actor,
        remote = %session.remote,
        command = %command,
        status = status,
        "console command"
    );
}

/// Writes a reply; `Some(status)` when the client is gone and the session should end.
pub(crate) async fn write_reply(
    output: &SessionOutput,
    reply: &Reply,
    terminal: bool,
) -> Option<u32> {
    let ok = output.stdout(reply.stdout.clone()).await
        && if terminal {
            // On a terminal both streams land on the same screen; one stream keeps their
            // order exact.
            output.stdout(reply.stderr.clone()).await
        } else {
            output.stderr(reply.stderr.clone()).await
        };
    (!ok).then_some(reply.status)
}
