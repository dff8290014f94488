//! Hiding the secrets of a PostgreSQL connection string before it reaches a message or a log.
//!
//! A connection string carries a password in three places: the user part of a URL
//! (`postgres://user:secret@host/db`), a URL query parameter (`?password=secret`, and
//! `sslpassword=` for an encrypted client key), or a `password=` pair of a key=value string
//! (`host=h password='a secret'`). Every place is redacted; whatever cannot be read with
//! certainty is hidden whole, because a message that says too little is better than a leaked
//! password.

/// The connection parameters whose values are secrets.
const SECRET_KEYS: [&str; 2] = ["password", "sslpassword"];

/// What stands in for a hidden value, or for a whole string that cannot be parsed.
const HIDDEN: &str = "***";

/// The connection string with every password replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => redact_uri(scheme, rest),
        None => redact_pairs(url).unwrap_or_else(|| HIDDEN.to_owned()),
    }
}

/// A URL: the user part's password and the secret query parameters.
fn redact_uri(scheme: &str, rest: &str) -> String {
    let head = rest.split_once('?').map_or(rest, |(head, _)| head);
    // The last `@` before the query ends the user part even when an unencoded password holds
    // `/` or `@`. A password may also hold an unencoded `?`: when a `:` comes before the
    // query but no `@` does, the user part runs to the last `@` anywhere. That hides a port
    // too if the query holds an `@`, which is the price of never showing a password.
    let at = head
        .rfind('@')
        .or_else(|| head.contains(':').then(|| rest.rfind('@')).flatten());
    let Some((user, after)) = at.map(|at| rest.split_at(at)) else {
        return format!("{scheme}://{}", redact_tail(rest));
    };
    let user = match user.split_once(':') {
        Some((name, _password)) => format!("{name}:{HIDDEN}"),
        None => user.to_owned(),
    };
    // `after` starts with the `@` itself.
    format!("{scheme}://{user}{}", redact_tail(after))
}

/// Host, path and query: only the query can hold a secret.
fn redact_tail(tail: &str) -> String {
    match tail.split_once('?') {
        Some((before, query)) => format!("{before}?{}", redact_query(query)),
        None => tail.to_owned(),
    }
}

/// `a=1&password=x` becomes `a=1&password=***`. Keys are compared after percent-decoding
/// and without regard to case, as the PostgreSQL clients read them.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if is_secret(&percent_decode(key)) => format!("{key}={HIDDEN}"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn is_secret(key: &str) -> bool {
    SECRET_KEYS
        .iter()
        .any(|s| key.trim().eq_ignore_ascii_case(s))
}

/// `%70assword` is `password`. A malformed escape stays as it is, which can only make a key
/// fail to match a secret name that the server would not have read either.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A libpq key=value string (`host=h password='a b' user=u`) with the secret values hidden,
/// or `None` when it is not one: then the caller hides it whole.
fn redact_pairs(conninfo: &str) -> Option<String> {
    let mut out = Vec::new();
    let mut rest = conninfo.trim_start();
    while !rest.is_empty() {
        let (key, after_key) = rest.split_once('=')?;
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return None;
        }
        let (value, after_value) = split_value(after_key.trim_start())?;
        if is_secret(key) {
            out.push(format!("{key}={HIDDEN}"));
        } else {
            out.push(format!("{key}={value}"));
        }
        rest = after_value.trim_start();
    }
    Some(out.join(" "))
}

/// One value of a key=value string and what follows it: single-quoted (with `\'` and `\\`
/// escapes) or up to the next whitespace. An unterminated quote is `None`.
fn split_value(text: &str) -> Option<(&str, &str)> {
    let Some(quoted) = text.strip_prefix('\'') else {
        let end = text.find(char::is_whitespace).unwrap_or(text.len());
        return Some(text.split_at(end));
    };
    let mut escaped = false;
    for (i, c) in quoted.char_indices() {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '\'') => {
                // The value with its quotes, and the text after the closing quote.
                return Some(text.split_at(i + 2));
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn url_passwords_are_hidden_in_the_user_part_and_the_query() {
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redact_url("postgres://u:p/w@h:5/db"),
            "postgres://u:***@h:5/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_url("postgres://u:p@h/db?x=1"),
            "postgres://u:***@h/db?x=1"
        );
        // An unencoded `?` or `@` in the password hides all of it.
        assert_eq!(redact_url("postgres://u:p?w@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redact_url("postgres://u:p@w@h/db?a=b@c"),
            "postgres://u:***@h/db?a=b@c"
        );
        assert_eq!(
            redact_url("postgres://h:5/db?application_name=a@b"),
            "postgres://h:***@b"
        );
        assert_eq!(
            redact_url("postgres://h/db?application_name=a@b"),
            "postgres://h/db?application_name=a@b"
        );
        assert_eq!(
            redact_url("postgres://u@h/db?sslmode=require&password=s3cret"),
            "postgres://u@h/db?sslmode=require&password=***"
        );
        assert_eq!(
            redact_url("postgresql://h/db?sslpassword=key-pw&sslmode=verify-full"),
            "postgresql://h/db?sslpassword=***&sslmode=verify-full"
        );
        // Spelled as the clients would still read it: any case, percent-encoded.
        assert_eq!(
            redact_url("postgres://h/db?PassWord=a&%70assword=b&passfile=/p"),
            "postgres://h/db?PassWord=***&%70assword=***&passfile=/p"
        );
    }

    #[test]
    fn key_value_strings_hide_their_passwords_and_the_unreadable_is_hidden_whole() {
        assert_eq!(
            redact_url("host=h password=p user=u"),
            "host=h password=*** user=u"
        );
        assert_eq!(
            redact_url("host=h password = 'a \\' b' sslpassword=k dbname=d"),
            "host=h password=*** sslpassword=*** dbname=d"
        );
        assert_eq!(redact_url("host=h password='unterminated s3cret"), "***");
        assert_eq!(redact_url("not a url pw"), "***");
    }

    fn secret() -> impl Strategy<Value = String> {
        "[A-Za-z0-9/@:?&=% '\\\\]{0,12}".prop_map(|tail| format!("S3CR3T{tail}"))
    }

    proptest! {
        /// However a password is spelled, none of its distinctive start survives in any of
        /// the three places it can be given.
        #[test]
        fn no_password_survives(pw in secret(), host in "[a-z]{1,8}") {
            let in_user = format!("postgres://u:{pw}@{host}/db");
            let in_query = format!("postgres://{host}/db?sslmode=disable&password={pw}");
            let escaped = pw.replace('\\', "\\\\").replace('\'', "\\'");
            let in_pairs = format!("host={host} password='{escaped}' user=u");
            for text in [in_user, in_query, in_pairs] {
                let shown = redact_url(&text);
                prop_assert!(!shown.contains("S3CR3T"), "{text} -> {shown}");
            }
        }
    }
}
