//! Password prompts on a terminal: `/users add|passwd <login>` without the password (an
//! administrator setting someone's password) and `/passwd` (a user changing their own). The
//! editor reads each answer hidden, so no password shows on screen or enters any history.

use crate::command::{Command, UsersCmd, tokenize};

/// A password prompt in progress: which one, and the answers given so far.
#[derive(Debug)]
pub enum Prompt {
    /// An administrator's `/users add|passwd <login>`: the password, then its repeat.
    Admin {
        /// `add` rather than `passwd`.
        add: bool,
        /// The account.
        login: String,
        /// The first entry, waiting for the repeat.
        first: Option<String>,
    },
    /// `/passwd`: the current password, the new one, then its repeat.
    Own {
        /// The current password, once given.
        current: Option<String>,
        /// The new password, waiting for the repeat.
        first: Option<String>,
    },
}

/// What to do after an answer.
#[derive(Debug)]
pub enum Step {
    /// Ask the next question (the text to print).
    Ask(Prompt, String),
    /// All answers are in: run this command.
    Admin(Command),
    /// All answers to `/passwd` are in: current, new, repeat.
    Own {
        /// The current password.
        current: String,
        /// The new password.
        new: String,
        /// Its repeat.
        repeat: String,
    },
    /// The two entries differ.
    Mismatch,
}

impl Prompt {
    /// `Some((prompt, question))` when `line` asks for a password prompt.
    pub fn for_line(line: &str) -> Option<(Prompt, String)> {
        let words = tokenize(line).ok()?;
        match words
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["/users", verb @ ("add" | "passwd"), login] => Some((
                Prompt::Admin {
                    add: *verb == "add",
                    login: (*login).to_owned(),
                    first: None,
                },
                format!("password for '{login}': "),
            )),
            ["/passwd"] => Some((
                Prompt::Own {
                    current: None,
                    first: None,
                },
                "current password: ".to_owned(),
            )),
            _ => None,
        }
    }

    /// Takes one hidden answer.
    pub fn answer(self, entry: String) -> Step {
        match self {
            Prompt::Admin {
                add,
                login,
                first: None,
            } => Step::Ask(
                Prompt::Admin {
                    add,
                    login,
                    first: Some(entry),
                },
                "repeat: ".to_owned(),
            ),
            Prompt::Admin {
                add,
                login,
                first: Some(first),
            } => {
                if first != entry {
                    return Step::Mismatch;
                }
                let password = entry;
                Step::Admin(Command::Users(if add {
                    UsersCmd::Add { login, password }
                } else {
                    UsersCmd::Passwd { login, password }
                }))
            }
            Prompt::Own { current: None, .. } => Step::Ask(
                Prompt::Own {
                    current: Some(entry),
                    first: None,
                },
                "new password: ".to_owned(),
            ),
            Prompt::Own {
                current: Some(current),
                first: None,
            } => Step::Ask(
                Prompt::Own {
                    current: Some(current),
                    first: Some(entry),
                },
                "repeat new password: ".to_owned(),
            ),
            Prompt::Own {
                current: Some(current),
                first: Some(new),
            } => Step::Own {
                current,
                new,
                repeat: entry,
            },
        }
    }

    /// The audit form of the command the prompt completes.
    pub fn audit_form(&self) -> String {
        match self {
            Prompt::Admin { add, login, .. } => crate::audit::prompted(*add, login),
            Prompt::Own { .. } => "/passwd".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_password_asks_three_questions() {
        let (p, q) = Prompt::for_line("/passwd").unwrap();
        assert_eq!(q, "current password: ");
        let Step::Ask(p, q) = p.answer("old".into()) else {
            panic!()
        };
        assert_eq!(q, "new password: ");
        let Step::Ask(p, q) = p.answer("new-password".into()) else {
            panic!()
        };
        assert_eq!(q, "repeat new password: ");
        assert_eq!(p.audit_form(), "/passwd");
        match p.answer("new-password".into()) {
            Step::Own {
                current,
                new,
                repeat,
            } => assert_eq!(
                (current, new, repeat),
                ("old".into(), "new-password".into(), "new-password".into())
            ),
            other => panic!("{other:?}"),
        }
        assert!(Prompt::for_line("/passwd x").is_none());
    }

    #[test]
    fn admin_prompts_name_the_login_in_the_audit() {
        let (p, q) = Prompt::for_line("/users add carol").unwrap();
        assert_eq!(q, "password for 'carol': ");
        assert_eq!(p.audit_form(), "/users add carol <prompted>");
        let Step::Ask(p, _) = p.answer("a".into()) else {
            panic!()
        };
        assert!(matches!(p.answer("b".into()), Step::Mismatch));
    }
}
